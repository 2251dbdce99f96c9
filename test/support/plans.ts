/** Helpers for tests that look at what the planner refuses. */
import { ConfigError } from "../../config/errors";
import { planStack } from "../../plan";

/** Every problem of a raw stack config as "path: message", or [] when it plans. */
export function planProblems(raw: Record<string, unknown>): string[] {
  try {
    planStack(raw);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
}

/** The vision_config of Qwen/Qwen3-VL-8B-Instruct and larger (27 × 1152, patch 16). */
export const QWEN3_VL_VISION_CONFIG = {
  depth: 27,
  hidden_size: 1152,
  intermediate_size: 4304,
  num_heads: 16,
  patch_size: 16,
  spatial_merge_size: 2,
  temporal_patch_size: 2,
  deepstack_visual_indexes: [8, 16, 24],
};
