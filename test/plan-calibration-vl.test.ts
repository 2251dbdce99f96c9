/**
 * The planner against public vLLM startup logs of Qwen vision-language models (issue 11 item 4,
 * issue 20): V0 and V1, vLLM 0.7 to 0.27, successful and failed startups, the cases in
 * test/support/vl-startup-logs.ts. Each quotes its source, the settings the log shows (defaults it
 * did not print are vLLM's for that version, noted) and the number vLLM logged. The planner's error
 * on each is printed; the acceptance is issue 20's: median error ≤ 5 %, worst ≤ 15 %, every failed
 * startup predicted as failing.
 *
 * What the KV number is: V1 "GPU KV cache size: N tokens"; V0 "# GPU blocks" × 16, or "the rest of
 * the memory reserved for KV Cache is X GiB" over the model's KV bytes per token.
 */
import { describe, expect, it } from "vitest";
import { planMemory } from "../plan";
import { ERROR_BANDS, accuracyClass, type AccuracyClass } from "../plan/accuracy";
import { VL_CASES, VL_LIMITS, type VlCase } from "./support/vl-startup-logs";

function errorOf(c: VlCase): number | undefined {
  if (c.reportedTokens === undefined) return undefined;
  const p = planMemory(c.setup);
  return (p.kvCacheTokens - c.reportedTokens) / c.reportedTokens;
}

describe("Qwen-VL startup logs", () => {
  it("prints the planner's error on every case", () => {
    for (const c of [...VL_CASES, ...VL_LIMITS]) {
      const p = planMemory(c.setup);
      const e = errorOf(c);
      console.log(
        `${c.id} ${c.source}: planned ${p.kvCacheTokens} KV tokens (${p.profile.modality} ×${p.profile.itemsProfiled}, ${p.profile.tokensPerItem} tokens each), reported ${c.reportedTokens ?? "—"}${e === undefined ? "" : `, error ${(e * 100).toFixed(1)} %`}${c.failed ? ", failed startup" : ""}`,
      );
    }
  });

  it("every failed startup is predicted as not fitting", () => {
    for (const c of VL_CASES.filter((x) => x.failed))
      expect(planMemory(c.setup).fits, `${c.id} ${c.source}`).toBe(false);
  });

  it("median error ≤ 5 %, worst ≤ 15 % over the cases with a logged KV number", () => {
    const errors = VL_CASES.map(errorOf)
      .filter((e): e is number => e !== undefined)
      .map(Math.abs)
      .sort((a, b) => a - b);
    const mid = errors.length / 2;
    const median = Number.isInteger(mid)
      ? (errors[mid - 1]! + errors[mid]!) / 2
      : errors[Math.floor(mid)]!;
    expect(median).toBeLessThanOrEqual(0.05);
    expect(errors[errors.length - 1]!).toBeLessThanOrEqual(0.15);
  });

  it("the error bands the plan warns with (plan/accuracy.ts) are the worst error of each class here", () => {
    const worst: Partial<Record<AccuracyClass, { error: number; logs: number }>> = {};
    for (const cls of ["qwen2-vl", "qwen3-vl", "qwen3-vl-moe"] as AccuracyClass[]) {
      const errors = VL_CASES.filter((c) => accuracyClass(c.setup.model) === cls)
        .map(errorOf)
        .filter((e): e is number => e !== undefined)
        .map(Math.abs);
      if (errors.length)
        worst[cls] = { error: Math.ceil(Math.max(...errors) * 1000) / 1000, logs: errors.length };
    }
    // A class without a scored log takes the widest band of those with one.
    const widest = Math.max(...Object.values(worst).map((b) => b.error));
    for (const cls of ["qwen2-vl", "qwen3-vl", "qwen3-vl-moe"] as AccuracyClass[])
      expect({ error: ERROR_BANDS[cls].error, logs: ERROR_BANDS[cls].logs }, cls).toEqual(
        worst[cls] ?? { error: widest, logs: 0 },
      );
  });
});
