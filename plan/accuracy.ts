/**
 * How far the planner's KV cache has been from vLLM's own, per class of setup: a fit whose margin
 * is smaller than that error may not fit when vLLM profiles it.
 */
import type { ModelSpec } from "../catalogs/models";

export type AccuracyClass = "text-only" | "qwen2-vl" | "qwen3-vl" | "qwen3-vl-moe";

export interface ErrorBand {
  /** The worst |planned − reported| / reported over the class's startup logs, rounded up to 0.1 %. */
  readonly error: number;
  /** How many logs with a KV number it rests on. */
  readonly logs: number;
  readonly label: string;
}

/**
 * Measured on the startup logs of test/plan-calibration.test.ts (text-only) and
 * test/plan-calibration-vl.test.ts (C01, C02, C20: Qwen2/2.5-VL; C06: Qwen3-VL; C05: the MoE);
 * those tests recompute each band from the planner and fail when it moves.
 */
export const ERROR_BANDS: Readonly<Record<AccuracyClass, ErrorBand>> = {
  "text-only": { error: 0.063, logs: 5, label: "text-only dense" },
  "qwen2-vl": { error: 0.062, logs: 3, label: "Qwen2-VL / Qwen2.5-VL" },
  // C06 at 0.11.0 profiles vLLM's own dummy video (2 frames, 12,100 tokens: catalogs/vllm-profile.ts)
  // instead of the modelled 16,384-token one: −8.6 % before the table, −1.6 % with it.
  "qwen3-vl": { error: 0.016, logs: 1, label: "Qwen3-VL dense" },
  "qwen3-vl-moe": { error: 0.192, logs: 1, label: "Qwen3-VL MoE" },
};

export function accuracyClass(m: ModelSpec): AccuracyClass {
  if (m.moe) return "qwen3-vl-moe";
  if (!m.vision) return "text-only";
  return m.architecture.startsWith("Qwen3") ? "qwen3-vl" : "qwen2-vl";
}

/** What the plan says of its margin (Plan.errorBand). */
export interface MarginVerdict {
  readonly class: AccuracyClass;
  readonly error: number;
  readonly logs: number;
  /** The KV cache if vLLM finds the band's worst overestimate less than planned. */
  readonly lowKvCacheTokens: number;
  /** It fits as planned, but not one max_model_len request at the low end. */
  readonly withinBand: boolean;
}

export function marginVerdict(
  m: ModelSpec,
  kvCacheTokens: number,
  maxModelLen: number,
  fits: boolean,
): MarginVerdict {
  const cls = accuracyClass(m);
  const band = ERROR_BANDS[cls];
  // error = (planned − reported) / reported, so at the worst overestimate reported = planned / (1 + error).
  const low = Math.floor(kvCacheTokens / (1 + band.error));
  return {
    class: cls,
    error: band.error,
    logs: band.logs,
    lowKvCacheTokens: low,
    withinBand: fits && low < maxModelLen,
  };
}
