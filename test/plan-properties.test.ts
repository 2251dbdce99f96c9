/**
 * Properties of the memory plan over the whole catalog (fast-check): what must hold whatever the
 * model, card, parallelism and knobs.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GPUS } from "../catalogs/gpus";
import { MODELS } from "../catalogs/models";
import { parseVersion, vllmFeatures } from "../catalogs/vllm";
import { allowedTensorParallelSizes, planMemory, type Setup } from "../plan";
import { DTYPE_BYTES, GiB, visionBytes } from "../plan/memory";

// One seed: the same cases on every run and machine (a failure names its counterexample).
fc.configureGlobal({ seed: 20261126 });

const models = [...MODELS.values()];
const gpus = [...GPUS.values()];
const versions = ["0.6.3", "0.7.3", "0.8.5", "0.9.2", "0.10.2", "0.11.0", "0.21.0"];

const setupArb: fc.Arbitrary<Setup> = fc
  .record({
    model: fc.constantFrom(...models),
    gpu: fc.constantFrom(...gpus),
    version: fc.constantFrom(...versions),
    tpIndex: fc.nat(),
    pp: fc.integer({ min: 1, max: 4 }),
    util: fc.integer({ min: 50, max: 98 }).map((u) => u / 100),
    maxModelLen: fc.integer({ min: 256, max: 32768 }),
    imageLimit: fc.integer({ min: 0, max: 8 }),
    videoLimit: fc.integer({ min: 0, max: 2 }),
    maxPixels: fc.integer({ min: 4, max: 16384 }).map((t) => t * 784),
    enforceEager: fc.boolean(),
    blockSize: fc.constantFrom(8, 16, 32),
    fp8: fc.boolean(),
  })
  .map((r) => {
    const tps = allowedTensorParallelSizes(r.model, 8);
    const tp = tps[r.tpIndex % tps.length]!;
    const dtype =
      r.gpu.computeCapability >= 8 && !r.model.quantization
        ? ("bfloat16" as const)
        : ("float16" as const);
    return {
      model: r.model,
      weightsScale: 1,
      gpu: r.gpu,
      tp,
      pp: r.pp,
      dtype,
      kvBytes: r.fp8 ? 1 : 2,
      features: vllmFeatures(parseVersion(r.version)!, r.gpu.computeCapability),
      maxModelLen: r.maxModelLen,
      util: r.util,
      imageLimit: r.imageLimit,
      videoLimit: r.videoLimit,
      maxPixels: r.maxPixels,
      enforceEager: r.enforceEager,
      blockSize: r.blockSize,
    };
  });

describe("plan properties", () => {
  it("fits exactly when one max-length sequence fits in the KV cache", () => {
    fc.assert(
      fc.property(setupArb, (s) => {
        const p = planMemory(s);
        expect(p.fits).toBe(p.kvCacheTokens >= s.maxModelLen && p.kvCacheTokens > 0);
        expect(p.maxConcurrency >= 1).toBe(p.fits);
      }),
      { numRuns: 400 },
    );
  });

  it("KV capacity is whole blocks and never negative", () => {
    fc.assert(
      fc.property(setupArb, (s) => {
        const p = planMemory(s);
        expect(p.kvCacheTokens).toBeGreaterThanOrEqual(0);
        expect(p.kvCacheTokens % s.blockSize).toBe(0);
        for (const st of p.stages) expect(st.kvCacheGiB).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 300 },
    );
  });

  it("more GPUs never means less KV cache: doubling TP (where allowed) or adding a pipeline stage", () => {
    fc.assert(
      fc.property(setupArb, (s) => {
        const p = planMemory(s);
        const moreStages = planMemory({ ...s, pp: s.pp + 1 });
        expect(moreStages.kvCacheTokens).toBeGreaterThanOrEqual(p.kvCacheTokens);
        if (allowedTensorParallelSizes(s.model, 64).includes(s.tp * 2)) {
          expect(planMemory({ ...s, tp: s.tp * 2 }).kvCacheTokens).toBeGreaterThanOrEqual(
            p.kvCacheTokens,
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  it("a larger memory budget never means less KV cache; the vision profile stays within its budget", () => {
    fc.assert(
      fc.property(setupArb, fc.integer({ min: 1, max: 20 }), (s, d) => {
        const p = planMemory(s);
        if (s.util + d / 100 <= 1)
          expect(planMemory({ ...s, util: s.util + d / 100 }).kvCacheTokens).toBeGreaterThanOrEqual(
            p.kvCacheTokens,
          );
        // Both engines fill a budget with whole dummy items (V0: whole sequences of every allowed
        // item, V1: whole items of one modality), so a bigger image can mean fewer of them (vLLM's
        // own floor): what holds is the budget bound, whenever more than one item is profiled.
        const bigger = planMemory({ ...s, maxPixels: s.maxPixels + d * 784 * 64 });
        const pr = bigger.profile;
        if (s.features.engine === "v1" && pr.itemsProfiled > 1)
          expect(pr.itemsProfiled * pr.tokensPerItem).toBeLessThanOrEqual(
            Math.max(pr.maxNumBatchedTokens, pr.tokensPerItem),
          );
      }),
      { numRuns: 300 },
    );
  });

  it("weights per GPU add up to the checkpoint across the TP × PP grid (nothing lost, nothing double-counted beyond replicas)", () => {
    fc.assert(
      fc.property(setupArb, (s) => {
        const one = planMemory({ ...s, tp: 1, pp: 1 }).stages[0]!.weightsGiB;
        const grid = planMemory({ ...s, pp: s.pp });
        // vLLM builds the vision tower on every pipeline stage: count it once.
        const towers =
          s.model.vision && (s.imageLimit > 0 || s.videoLimit > 0)
            ? ((grid.stages.length - 1) *
                visionBytes(s.model.vision, s.model.hiddenSize, DTYPE_BYTES[s.dtype])) /
              GiB
            : 0;
        // A tied model's LM head is a second copy of the embeddings when it sits on another stage.
        const lmCopy =
          s.model.tiedEmbeddings && grid.stages.length > 1
            ? (s.model.vocabSize * s.model.hiddenSize * DTYPE_BYTES[s.dtype]) / GiB
            : 0;
        const sum = grid.stages.reduce((a, st) => a + st.weightsGiB, 0) * s.tp - towers - lmCopy;
        // Replicated norms and KV heads can only add.
        expect(sum).toBeGreaterThanOrEqual(one * 0.999);
        expect(sum).toBeLessThan(one * 1.35);
      }),
      { numRuns: 300 },
    );
  });
});
