/**
 * The planner's numbers against hand calculations from the models' config.json dimensions
 * (../shared/reference/vllm-qwen2vl-facts.md §4, §6). Every expected number below is worked out
 * in the test from the raw dimensions, not taken from the planner.
 */
import { describe, expect, it } from "vitest";
import { MODELS } from "../catalogs/models";
import { planMemory, planStack, tensorParallelProblem, allowedTensorParallelSizes } from "../plan";
import { readStackFile } from "../config/stack-file";
import {
  GiB,
  checkpointBytes,
  kvBytesPerToken,
  kvHeadsPerRank,
  layersPerStage,
  visionBytes,
  weightShare,
} from "../plan/memory";
import { QWEN2_VL_VISION } from "../catalogs/models";
import { SINGLE_GPU_7B_SETUP } from "./support/plans";

const m7 = MODELS.get("Qwen/Qwen2-VL-7B-Instruct")!;
const m2 = MODELS.get("Qwen/Qwen2-VL-2B-Instruct")!;
const m72 = MODELS.get("Qwen/Qwen2-VL-72B-Instruct")!;

describe("KV cache bytes per token (2 · layers · KV heads · head_dim · 2 bytes)", () => {
  it("matches the reference table: 2B 28 KiB, 7B 56 KiB, 72B 320 KiB in bf16", () => {
    expect(kvBytesPerToken(m2, 28, 1, 2)).toBe(2 * 28 * 2 * 128 * 2);
    expect(kvBytesPerToken(m2, 28, 1, 2)).toBe(28 * 1024);
    expect(kvBytesPerToken(m7, 28, 1, 2)).toBe(56 * 1024);
    expect(kvBytesPerToken(m72, 80, 1, 2)).toBe(320 * 1024);
  });
  it("splits KV heads over tensor-parallel ranks and replicates them beyond the KV-head count", () => {
    expect(kvHeadsPerRank(4, 2)).toBe(2);
    expect(kvHeadsPerRank(4, 4)).toBe(1);
    expect(kvHeadsPerRank(4, 8)).toBe(1); // 8 ranks, 4 heads: each rank keeps a copy of one
    expect(kvBytesPerToken(m7, 14, 4, 2)).toBe(2 * 14 * 1 * 128 * 2);
    expect(kvBytesPerToken(m2, 28, 4, 2)).toBe(2 * 28 * 1 * 128 * 2); // 2 KV heads, TP 4
  });
});

describe("weights from dimensions", () => {
  it("the vision tower is the paper's 675M-parameter ViT (+ merger into the LM width)", () => {
    const E = 1280;
    const M = 5120;
    const block = E * 3 * E + 3 * E + E * E + E + E * M + M + M * E + E + 4 * E;
    const params =
      32 * block + 3 * 2 * 14 * 14 * E + (2 * E + 5120 * 5120 + 5120 + 5120 * 3584 + 3584);
    expect(params).toBe(675_759_104);
    expect(visionBytes(QWEN2_VL_VISION, 3584, 2)).toBe(params * 2);
  });

  it("7B: 8.29 B parameters, 16.58 GB in bf16 — the published checkpoint size", () => {
    const H = 3584,
      I = 18944,
      V = 152064;
    const layer = H * H + 2 * H * 512 + H * H + 3 * H * I + (H + 1024) + 2 * H;
    const params = 28 * layer + 2 * V * H + 675_759_104;
    expect(params / 1e9).toBeCloseTo(8.29, 2);
    expect(checkpointBytes(m7)).toBe(params * 2);
    expect(
      Math.abs(checkpointBytes(m7) - m7.publishedWeightBytes!) / m7.publishedWeightBytes!,
    ).toBeLessThan(0.005);
  });

  it("2B (tied embeddings): 2.21 B parameters ≈ 4.42 GB", () => {
    expect(checkpointBytes(m2) / 2 / 1e9).toBeCloseTo(2.21, 2);
    expect(
      Math.abs(checkpointBytes(m2) - m2.publishedWeightBytes!) / m2.publishedWeightBytes!,
    ).toBeLessThan(0.01);
  });

  it("72B: ≈ 73.4 B parameters ≈ 147 GB", () => {
    expect(checkpointBytes(m72) / 2 / 1e9).toBeCloseTo(73.4, 1);
    expect(
      Math.abs(checkpointBytes(m72) - m72.publishedWeightBytes!) / m72.publishedWeightBytes!,
    ).toBeLessThan(0.01);
  });

  it("AWQ int4 keeps the vision tower and embeddings in fp16 and packs decoder linears to ~4.1 bits", () => {
    const awq = MODELS.get("Qwen/Qwen2-VL-7B-Instruct-AWQ")!;
    const H = 3584,
      I = 18944;
    const linear = H * H + 2 * H * 512 + H * H + 3 * H * I;
    const packed = linear / 2 + (linear / 128) * (2 + 0.5);
    const other = (H + 1024) * 2 + 2 * H * 2;
    const expected = 28 * (packed + other) + 2 * 152064 * H * 2 + 675_759_104 * 2;
    expect(checkpointBytes(awq)).toBeCloseTo(expected, 0);
    expect(checkpointBytes(awq) / GiB).toBeGreaterThan(5.5);
    expect(checkpointBytes(awq) / GiB).toBeLessThan(6.5);
  });

  it("tensor parallelism divides every sharded part by TP", () => {
    const w1 = weightShare(m72, 1, "bfloat16");
    const w8 = weightShare(m72, 8, "bfloat16");
    expect(w8.embedding).toBeCloseTo(w1.embedding / 8, 6);
    expect(w8.vision).toBeCloseTo(w1.vision / 8, 6);
    // Only the norms (2·H per layer) are replicated.
    expect(w8.perLayer).toBeCloseTo((w1.perLayer - 2 * 8192 * 2) / 8 + 2 * 8192 * 2, 3);
  });

  it("pipeline stages split layers the way vLLM's get_pp_indices does", () => {
    expect(layersPerStage(28, 2)).toEqual([14, 14]);
    // Extra layers go to the stages before the last one (the last also holds the LM head).
    expect(layersPerStage(80, 3)).toEqual([27, 27, 26]);
    expect(layersPerStage(28, 3)).toEqual([9, 10, 9]);
    expect(layersPerStage(28, 1)).toEqual([28]);
  });
});

describe("tensor-parallel rules", () => {
  it("TP must divide the attention heads and fit the KV and vision heads", () => {
    expect(tensorParallelProblem(m7, 3)).toMatch(/28 attention heads/);
    expect(allowedTensorParallelSizes(m7, 8)).toEqual([1, 2, 4]);
    expect(allowedTensorParallelSizes(m72, 8)).toEqual([1, 2, 4, 8]);
  });
  it("the original 72B intermediate size 29568 does not align for quantized TP 2/4/8; the padded 29696 does", () => {
    const awq = MODELS.get("Qwen/Qwen2-VL-72B-Instruct-AWQ")!;
    expect(awq.intermediateSize).toBe(29696);
    for (const tp of [2, 4, 8]) expect(tensorParallelProblem(awq, tp)).toBeUndefined();
    const unpadded = { ...awq, intermediateSize: 29568 };
    for (const tp of [2, 4, 8])
      expect(tensorParallelProblem(unpadded, tp)).toMatch(
        /not a multiple of the quantization group size 128/,
      );
    expect(tensorParallelProblem(unpadded, 1)).toBeUndefined();
  });
});

describe("a whole plan by hand: 7B on one A10G, the single-gpu stack's settings", () => {
  it("budget − weights − activation − non-torch = KV cache, in whole 16-token blocks", () => {
    // One GPU, bf16 weights and 16-bit KV in 16-token blocks; the stack's 8192 tokens at 0.8, four
    // images of ≤ 1003520 px, no video, eager.
    const p = planMemory(SINGLE_GPU_7B_SETUP);
    const s = SINGLE_GPU_7B_SETUP;
    expect(s.model).toBe(m7);
    expect([s.gpu.name, s.tp, s.pp, s.dtype, s.kvBytes, s.blockSize].join(" ")).toBe(
      "A10G 1 1 bfloat16 2 16",
    );
    expect(
      [s.maxModelLen, s.util, s.imageLimit, s.videoLimit, s.maxPixels, s.enforceEager].join(" "),
    ).toBe("8192 0.8 4 0 1003520 true");
    const budget = 22.19 * 0.8 * GiB; // A10G as PyTorch reports it (catalogs/gpus.ts)
    const weights = 16_582_744_064;
    // V1 on a < 70 GiB card profiles 2048 tokens. 0.11.0's largest image under 1003520 px is a
    // 980 × 980 square (smart_resize): 35² = 1225 tokens, 4900 patches; one fits the encoder budget
    // (2048), and with "video": 0 rendered no dummy video is profiled. The tower peaks at 35300
    // B/patch (calibrated on C01). 0.11.0 pads the kept output to the budget: 2048 × hidden.
    // The sampler's dummy run sorts 256 × vocab logits (PyTorch's top-k/top-p: 39 B an element)
    // beside the decoder's 2048 hidden states. The peak is the encoder's, or the kept output beside
    // the decoder's or the sampler's run.
    const decoder = 2048 * (3 * 18944 + 3 * 3584) * 2;
    const sampler = 256 * 152064 * 39 + 2048 * 3584 * 2;
    const encoder = 4900 * 35300;
    const encoderOutputs = 2048 * 3584 * 2;
    const activation = Math.max(encoder, decoder + encoderOutputs, sampler + encoderOutputs);
    const kv = budget - weights - activation - 0.35 * GiB;
    const tokens = Math.floor(kv / (57344 * 16)) * 16;
    expect(p.profile).toEqual({
      maxNumBatchedTokens: 2048,
      maxNumSeqs: 256,
      tokensPerImage: 1225,
      modality: "image",
      itemsProfiled: 1,
      tokensPerItem: 1225,
      videoFrames: 0,
      // The release, card and settings have a row in catalogs/vllm-profile.ts: vLLM's own numbers.
      encoderBudget: 2048,
      sources: {
        batch: { source: "vllm", computedWith: "0.11.0+cpu" },
        encoder: { source: "vllm", computedWith: "0.11.0+cpu" },
      },
    });
    expect(p.stages[0]!.weightsGiB * GiB).toBeCloseTo(weights, 0);
    expect(p.stages[0]!.activationGiB * GiB).toBeCloseTo(activation, 0);
    expect(p.kvCacheTokens).toBe(tokens);
    expect(p.maxConcurrency).toBeCloseTo(tokens / 8192, 6);
    expect(p.fits).toBe(true);
  });
});

describe("AWS vCPU quota named in the plan", () => {
  it("multi-gpu needs 96 vCPUs of the on-demand G and VT quota; large 192 of P; spot its own quota", () => {
    const multi = planStack(readStackFile("multi-gpu").sections);
    expect(multi.quota).toEqual({
      name: "Running On-Demand G and VT instances",
      code: "L-DB2E81BA",
      vcpus: 96,
    });
    const large = planStack(readStackFile("large").sections);
    expect(large.quota).toEqual({
      name: "Running On-Demand P instances",
      code: "L-417A185B",
      vcpus: 192,
    });
    const s = readStackFile("single-gpu").sections;
    const spot = planStack({
      ...s,
      target: { ...(s["target"] as object), spot: { enabled: true } },
    });
    expect(spot.quota).toEqual({
      name: "All G and VT Spot Instance Requests",
      code: "L-3819A6DF",
      vcpus: 4,
    });
    // P spot: P5 has a quota of its own (AWS using-spot-limits.html), P4 and P3 share one.
    const pSpot = (instanceType: string) =>
      planStack({
        ...readStackFile("large").sections,
        target: { kind: "aws", region: "us-east-1", instanceType, spot: { enabled: true } },
      }).quota;
    expect(pSpot("p5.48xlarge")).toEqual({ name: "All P5 Spot Instance Requests", vcpus: 192 });
    expect(pSpot("p4de.24xlarge")).toEqual({
      name: "All P4, P3 and P2 Spot Instance Requests",
      code: "L-7212CCBC",
      vcpus: 96,
    });
    expect(planStack(readStackFile("hosts").sections).quota).toBeUndefined();
  });
});

describe("vLLM's CPU build (the lab): the KV cache VLLM_CPU_KVCACHE_SPACE gives, in tokens", () => {
  const lab = readStackFile("lab-single").sections as Record<string, Record<string, unknown>>;
  const withVllm = (v: Record<string, unknown>) =>
    planStack({ ...lab, vllm: { ...lab["vllm"], ...v } }, { stack: "lab-single" });
  // The tiny checkpoint: 2 layers × 2 KV heads × head size 32 × K and V × 2 bytes (bf16).
  const perToken = 2 * 2 * 32 * 2 * 2;

  it("G GiB ÷ the per-token bytes, in blocks of 128 (the CPU build's default block size)", () => {
    const p = withVllm({});
    expect(perToken).toBe(512);
    expect(p.kvCachePlanned).toEqual({
      device: "cpu",
      cpuKvCacheGiB: 1,
      tokens: (2 ** 30 / perToken / 128) * 128,
      how: "VLLM_CPU_KVCACHE_SPACE=1 GiB ÷ 512 B per token, in blocks of 128 (vLLM's CPU build)",
    });
    expect(withVllm({ cpuKvCacheGiB: 3 }).kvCachePlanned.tokens).toBe(3 * 2_097_152);
  });

  it("a context that is not a whole number of blocks: vLLM's capacity, blocks ÷ ⌈len ÷ 128⌉ × len", () => {
    const blocks = 2 ** 30 / (perToken * 128); // 16,384
    const len = 3000; // 24 blocks per request, the last one part-used
    expect(withVllm({ maxModelLen: len }).kvCachePlanned.tokens).toBe(
      Math.floor((blocks / Math.ceil(len / 128)) * len),
    );
    // A rendered --block-size is the user's, which vLLM keeps.
    expect(withVllm({ blockSize: 32 }).kvCachePlanned.tokens).toBe(
      Math.floor(2 ** 30 / (perToken * 32)) * 32,
    );
  });

  it("the CUDA build: the memory plan's figure, and the unit gets no VLLM_CPU_KVCACHE_SPACE", () => {
    const p = planStack(readStackFile("single-gpu").sections, { stack: "single-gpu" });
    expect(p.kvCachePlanned).toMatchObject({ device: "gpu", tokens: p.kvCacheTokens });
    expect(p.kvCachePlanned.cpuKvCacheGiB).toBeUndefined();
  });
});
