/**
 * The planner's KV-cache estimate against what vLLM itself reported at startup, from public logs.
 * Each case names its source; the model dimensions are those models' config.json. The test plans
 * them through the same path as `fit --model-config` (custom dimensions, no vision tower).
 * Acceptance: within 10 % of vLLM's reported KV capacity.
 */
import { describe, expect, it } from "vitest";
import { GPUS, customGpu, type Gpu } from "../catalogs/gpus";
import { MODELS, type ModelSpec } from "../catalogs/models";
import { parseVersion, vllmFeatures } from "../catalogs/vllm";
import { planMemory } from "../plan";
import { customSpec } from "../plan/model";
import { ERROR_BANDS, accuracyClass } from "../plan/accuracy";

// meta-llama/Llama-3.1-8B-Instruct and Meta-Llama-3-8B config.json: identical shapes.
const llama8b = customSpec({
  name: "meta-llama/Llama-3.1-8B-Instruct",
  layers: 32,
  hiddenSize: 4096,
  intermediateSize: 14336,
  attentionHeads: 32,
  kvHeads: 8,
  headDim: 128,
  vocabSize: 128256,
  tiedEmbeddings: false,
  maxPositions: 131072,
  torchDtype: "bfloat16",
  vision: false,
});
// Qwen/Qwen2.5-32B-Instruct: the decoder of Qwen2.5-VL-32B (the catalog's dimensions, checked below
// against its config.json: 64 layers, hidden 5120, intermediate 27648, 40/8 heads, vocab 152064),
// with its own 32768 positions and no vision tower.
const vl32b = MODELS.get("Qwen/Qwen2.5-VL-32B-Instruct")!;
const qwen25_32b = customSpec({
  ...vl32b,
  name: "Qwen/Qwen2.5-32B-Instruct",
  maxPositions: 32768,
  vision: false,
});

interface Case {
  source: string;
  setup: Parameters<typeof planMemory>[0];
  /** What vLLM logged: "# GPU blocks" × block size, or the KV-cache GiB over bytes per token. */
  reportedTokens: number;
}

const v0 = (version: string, cc: number) => vllmFeatures(parseVersion(version)!, cc);
const base = {
  weightsScale: 1,
  dtype: "bfloat16" as const,
  kvBytes: 2,
  imageLimit: 0,
  videoLimit: 0,
  maxPixels: 1,
  enforceEager: false,
  blockSize: 16,
};

/** A case from a log: one model on `tp` GPUs (no PP), utilization 0.90, a V0 engine. */
const logged = (
  source: string,
  model: ModelSpec,
  gpu: Gpu,
  tp: number,
  version: string,
  maxModelLen: number,
  reportedTokens: number,
): Case => ({
  source,
  setup: {
    ...base,
    model,
    gpu,
    tp,
    pp: 1,
    features: v0(version, gpu.computeCapability),
    maxModelLen,
    util: 0.9,
  },
  reportedTokens,
});
const llama8k = { ...llama8b, maxPositions: 8192 };
const h100 = customGpu(79.22, 9.0);

const cases: Case[] = [
  // vllm #10517 (2024-12, V0 ≈ 0.6.4): RTX 3090, util 0.90, max-model-len 20000 → "# GPU blocks: 1952".
  logged(
    "vllm-project/vllm#10517 (Llama-3.1-8B, RTX 3090, 20k)",
    llama8b,
    GPUS.get("RTX-3090")!,
    1,
    "0.6.4",
    20000,
    1952 * 16,
  ),
  // Same thread, max-model-len 29000: "maximum number of tokens that can be stored in KV cache (23648)".
  logged(
    "vllm-project/vllm#10517 (Llama-3.1-8B, RTX 3090, 29k)",
    llama8b,
    GPUS.get("RTX-3090")!,
    1,
    "0.6.4",
    29000,
    23648,
  ),
  // vllm #15815 (2025-04, V0): 2 × L40S, TP 2, util 0.90, max-model-len 10000 → "# CUDA blocks: 3947".
  logged(
    "vllm-project/vllm#15815 (Qwen2.5-32B, 2 × L40S, TP 2)",
    qwen25_32b,
    GPUS.get("L40S")!,
    2,
    "0.7.3",
    10000,
    3947 * 16,
  ),
  // vllm PR #10511 (2024-12, V0 0.6.5): Meta-Llama-3-8B on one 80 GB GPU (79.22 GiB), util 0.90,
  // default max-model-len 8192: available_kv_cache_memory 53.29 GiB at 128 KiB per token.
  logged(
    "vllm-project/vllm#10511 (Meta-Llama-3-8B, 79.22 GiB, TP 1)",
    llama8k,
    h100,
    1,
    "0.6.5",
    8192,
    Math.floor((53.29 * 1024 ** 3) / (128 * 1024)),
  ),
  // Same PR, -tp 2: 71.29 − 7.48 weights − 3.58 non-torch − 1.26 activation = 58.97 GiB at 64 KiB per token per rank.
  logged(
    "vllm-project/vllm#10511 (Meta-Llama-3-8B, 79.22 GiB, TP 2)",
    llama8k,
    h100,
    2,
    "0.6.5",
    8192,
    Math.floor((58.97 * 1024 ** 3) / (64 * 1024)),
  ),
];

describe("KV-cache estimate vs vLLM startup logs", () => {
  for (const c of cases) {
    it(`${c.source}: within 10 %`, () => {
      const p = planMemory(c.setup);
      const error = (p.kvCacheTokens - c.reportedTokens) / c.reportedTokens;
      expect(
        Math.abs(error),
        `planned ${p.kvCacheTokens} vs reported ${c.reportedTokens}`,
      ).toBeLessThan(0.1);
    });
  }

  it("Qwen2.5-32B's decoder is the catalog's Qwen2.5-VL-32B's (Qwen2.5-32B-Instruct config.json)", () => {
    const m = qwen25_32b;
    expect([m.layers, m.hiddenSize, m.intermediateSize, m.attentionHeads, m.kvHeads].join()).toBe(
      "64,5120,27648,40,8",
    );
    expect([m.headDim, m.vocabSize, m.tiedEmbeddings, m.vision].join()).toBe("128,152064,false,");
  });

  it("agrees with vLLM on the verdict of the 29k case: it did not fit (23648 < 29000)", () => {
    const p = planMemory(cases[1]!.setup);
    expect(p.fits).toBe(false);
    expect(planMemory(cases[0]!.setup).fits).toBe(true);
  });

  it("the text-only error band the plan warns with (plan/accuracy.ts) is the worst error here", () => {
    expect(cases.every((c) => accuracyClass(c.setup.model) === "text-only")).toBe(true);
    const errors = cases.map((c) =>
      Math.abs((planMemory(c.setup).kvCacheTokens - c.reportedTokens) / c.reportedTokens),
    );
    expect({ error: ERROR_BANDS["text-only"].error, logs: ERROR_BANDS["text-only"].logs }).toEqual({
      error: Math.ceil(Math.max(...errors) * 1000) / 1000,
      logs: cases.length,
    });
  });
});
