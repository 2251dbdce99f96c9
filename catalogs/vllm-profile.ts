// Written by `npm run vllm-profile` (tools/vllm-profile.ts) from vLLM's own code: do not edit.
import type { ProfileTable } from "./vllm-profile-table";

export const VLLM_PROFILE: ProfileTable = {};
