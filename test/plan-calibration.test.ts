/**
 * The planner's KV-cache estimate against what vLLM itself reported at startup, from public logs.
 * Each case names its source; the model dimensions are those models' config.json. The test plans
 * them through the same path as `fit --model-config` (custom dimensions, no vision tower).
 * Acceptance: within 10 % of vLLM's reported KV capacity.
 */
import { describe, expect, it } from "vitest";
import { GPUS, customGpu } from "../catalogs/gpus";
import { parseVersion, vllmFeatures } from "../catalogs/vllm";
import { planMemory } from "../plan";
import { customSpec } from "../plan/model";

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
// Qwen/Qwen2.5-32B-Instruct config.json.
const qwen25_32b = customSpec({
  name: "Qwen/Qwen2.5-32B-Instruct",
  layers: 64,
  hiddenSize: 5120,
  intermediateSize: 27648,
  attentionHeads: 40,
  kvHeads: 8,
  headDim: 128,
  vocabSize: 152064,
  tiedEmbeddings: false,
  maxPositions: 32768,
  torchDtype: "bfloat16",
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

const cases: Case[] = [
  {
    // vllm #10517 (2024-12, V0 ≈ 0.6.4): RTX 3090, util 0.90, max-model-len 20000 → "# GPU blocks: 1952".
    source: "vllm-project/vllm#10517 (Llama-3.1-8B, RTX 3090, 20k)",
    setup: {
      ...base,
      model: llama8b,
      gpu: GPUS.get("RTX-3090")!,
      tp: 1,
      pp: 1,
      features: v0("0.6.4", 8.6),
      maxModelLen: 20000,
      util: 0.9,
    },
    reportedTokens: 1952 * 16,
  },
  {
    // Same thread, max-model-len 29000: "maximum number of tokens that can be stored in KV cache (23648)".
    source: "vllm-project/vllm#10517 (Llama-3.1-8B, RTX 3090, 29k)",
    setup: {
      ...base,
      model: llama8b,
      gpu: GPUS.get("RTX-3090")!,
      tp: 1,
      pp: 1,
      features: v0("0.6.4", 8.6),
      maxModelLen: 29000,
      util: 0.9,
    },
    reportedTokens: 23648,
  },
  {
    // vllm #15815 (2025-04, V0): 2 × L40S, TP 2, util 0.90, max-model-len 10000 → "# CUDA blocks: 3947".
    source: "vllm-project/vllm#15815 (Qwen2.5-32B, 2 × L40S, TP 2)",
    setup: {
      ...base,
      model: qwen25_32b,
      gpu: GPUS.get("L40S")!,
      tp: 2,
      pp: 1,
      features: v0("0.7.3", 8.9),
      maxModelLen: 10000,
      util: 0.9,
    },
    reportedTokens: 3947 * 16,
  },
  {
    // vllm PR #10511 (2024-12, V0 0.6.5): Meta-Llama-3-8B on one 80 GB GPU (79.22 GiB), util 0.90,
    // default max-model-len 8192: available_kv_cache_memory 53.29 GiB at 128 KiB per token.
    source: "vllm-project/vllm#10511 (Meta-Llama-3-8B, 79.22 GiB, TP 1)",
    setup: {
      ...base,
      model: { ...llama8b, maxPositions: 8192 },
      gpu: customGpu(79.22, 9.0),
      tp: 1,
      pp: 1,
      features: v0("0.6.5", 9.0),
      maxModelLen: 8192,
      util: 0.9,
    },
    reportedTokens: Math.floor((53.29 * 1024 ** 3) / (128 * 1024)),
  },
  {
    // Same PR, -tp 2: 71.29 − 7.48 weights − 3.58 non-torch − 1.26 activation = 58.97 GiB at 64 KiB per token per rank.
    source: "vllm-project/vllm#10511 (Meta-Llama-3-8B, 79.22 GiB, TP 2)",
    setup: {
      ...base,
      model: { ...llama8b, maxPositions: 8192 },
      gpu: customGpu(79.22, 9.0),
      tp: 2,
      pp: 1,
      features: v0("0.6.5", 9.0),
      maxModelLen: 8192,
      util: 0.9,
    },
    reportedTokens: Math.floor((58.97 * 1024 ** 3) / (64 * 1024)),
  },
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

  it("agrees with vLLM on the verdict of the 29k case: it did not fit (23648 < 29000)", () => {
    const p = planMemory(cases[1]!.setup);
    expect(p.fits).toBe(false);
    expect(planMemory(cases[0]!.setup).fits).toBe(true);
  });
});
