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
 * test/support/vl-startup-logs.ts, scored by test/plan-calibration-vl.test.ts (Qwen2/2.5-VL: C01,
 * C02, C20, C22, C23; Qwen3-VL dense: C06; the MoE: C05, C21); those tests recompute each band from
 * the planner and fail when it moves (a class without a scored log would take the widest band).
 */
export const ERROR_BANDS: Readonly<Record<AccuracyClass, ErrorBand>> = {
  "text-only": { error: 0.063, logs: 5, label: "text-only dense" },
  "qwen2-vl": { error: 0.11, logs: 5, label: "Qwen2-VL / Qwen2.5-VL" },
  "qwen3-vl": { error: 0.091, logs: 1, label: "Qwen3-VL dense" },
  // Two logs, both where the sampler's dummy run is the peak (0.11.0 and 0.13.0, PyTorch's sort).
  "qwen3-vl-moe": { error: 0.008, logs: 2, label: "Qwen3-VL MoE" },
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
