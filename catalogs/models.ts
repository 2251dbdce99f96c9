/**
 * Model catalog: the Qwen vision-language families vLLM serves, with their official quantized
 * variants. Each number is the `config.json` of the official repository; sources per family below
 * (research notes of issue 11: verbatim config copies in public repositories, transformers 4.57.1
 * and vLLM sdists from PyPI; ⚠ marks a value seen in one weak source only).
 *
 *  - Qwen2-VL 2B/7B/72B (`Qwen2VLForConditionalGeneration`, vLLM ≥ 0.6.1): flat config with a nested
 *    `vision_config`; ViT depth 32, embed 1280, plain fc1/fc2 MLP 5120, LayerNorm (arXiv 2409.12191
 *    Table 1; ../shared/reference/vllm-qwen2vl-facts.md §4). AWQ/GPTQ repos: group 128, float16;
 *    the 72B ones padded to intermediate 29696 so TP 2/4/8 align (QwenLM/Qwen3-VL #230, #231).
 *  - Qwen2.5-VL 3B/7B/32B/72B (`Qwen2_5_VLForConditionalGeneration`, vLLM ≥ 0.7.2): flat config;
 *    ViT depth 32, hidden 1280, gated (SwiGLU) MLP 3420 (3B/7B) or 3456 (32B/72B ⚠), RMSNorm,
 *    window attention 112 with full attention in blocks 7/15/23/31; max_position_embeddings 128000.
 *    The -AWQ repos keep intermediate 29568 for 72B, which TP 2 cannot split (vllm #13640).
 *  - Qwen3-VL 2B/4B/8B/32B dense (`Qwen3VLForConditionalGeneration`) and 30B-A3B/235B-A22B MoE
 *    (`Qwen3VLMoeForConditionalGeneration`), vLLM ≥ 0.11.0: nested `text_config`/`vision_config`;
 *    head_dim 128 (not hidden/heads for 4B and 32B), q/k RMSNorm, no qkv bias; MoE 128 experts,
 *    8 active, no shared expert; ViT patch 16, learned position embeddings (2304), LayerNorm with
 *    bias, plain MLP, 3 DeepStack mergers; depth 24/hidden 1024 for 2B/4B, 27/1152 above. The
 *    parameter formula of plan/memory.ts reproduces the published safetensors totals of 8B,
 *    30B-A3B and 235B-A22B exactly (test/plan-models.test.ts). -FP8 repos: fp8 e4m3, 128×128 blocks.
 */

export type VisionKind = "qwen2-vl" | "qwen2.5-vl" | "qwen3-vl";

export interface VisionTower {
  readonly kind: VisionKind;
  readonly depth: number;
  readonly embedDim: number;
  readonly mlpHiddenSize: number;
  readonly numHeads: number;
  readonly patchSize: number;
  readonly spatialMergeSize: number;
  readonly temporalPatchSize: number;
  /** Gate/up/down (Qwen2.5-VL) or fc1/fc2. */
  readonly gatedMlp: boolean;
  /** LayerNorm with bias (2 vectors) or RMSNorm (1). */
  readonly layerNorm: boolean;
  /** Learned position embeddings (Qwen3-VL: 2304), 0 when rotary only. */
  readonly positionEmbeddings: number;
  /** Extra DeepStack mergers feeding decoder layers (Qwen3-VL: 3). */
  readonly deepstackMergers: number;
  /** Peak activation per patch at TP 1 in bf16 (see `MEASURED_BYTES_PER_PATCH`). */
  readonly activationBytesPerPatch: number;
}

export type QuantMethod = "awq" | "gptq" | "fp8" | "compressed-tensors" | "bitsandbytes";

export interface Quantization {
  readonly method: QuantMethod;
  /** Weight bits. */
  readonly bits: 4 | 8;
  /** Weights per scale: a group (AWQ/GPTQ/W4A16), a 128×128 block (16384) or a channel (0). */
  readonly groupSize: number;
  /** compressed-tensors: FP8 or integer weights; bitsandbytes: double quantization. */
  readonly float?: boolean;
  readonly doubleQuant?: boolean;
}

export interface Moe {
  readonly experts: number;
  readonly activeExperts: number;
  readonly expertIntermediateSize: number;
}

export type Architecture =
  | "Qwen2VLForConditionalGeneration"
  | "Qwen2_5_VLForConditionalGeneration"
  | "Qwen3VLForConditionalGeneration"
  | "Qwen3VLMoeForConditionalGeneration";

/** First vLLM release that registers each architecture (PyPI sdists compared release to release). */
export const MIN_VLLM_FOR: Readonly<Record<Architecture, string>> = {
  Qwen2VLForConditionalGeneration: "0.6.1",
  Qwen2_5_VLForConditionalGeneration: "0.7.2",
  Qwen3VLForConditionalGeneration: "0.11.0",
  Qwen3VLMoeForConditionalGeneration: "0.11.0",
};
export const ARCHITECTURES = Object.keys(MIN_VLLM_FOR) as Architecture[];

export interface ModelSpec {
  /** Hugging Face repository, also the catalog key. */
  readonly id: string;
  readonly architecture: Architecture;
  readonly layers: number;
  readonly hiddenSize: number;
  /** Dense MLP width (unused by MoE layers). */
  readonly intermediateSize: number;
  readonly attentionHeads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  readonly tiedEmbeddings: boolean;
  readonly maxPositions: number;
  /** q/k/v projections carry a bias (Qwen2, Qwen2.5). */
  readonly qkvBias: boolean;
  /** Per-head q/k RMSNorm (Qwen3). */
  readonly qkNorm: boolean;
  readonly moe?: Moe;
  /** `torch_dtype` of the checkpoint: what `--dtype auto` resolves to. */
  readonly torchDtype: "bfloat16" | "float16" | "float32";
  readonly quantization?: Quantization;
  readonly vision?: VisionTower;
  readonly license: string;
  /**
   * A commit of the repository known to exist (seen in public snapshot paths), offered in errors
   * as an example of a pin. Not a recommendation of that commit over a newer one.
   */
  readonly knownRevision?: string;
  /** Sum of the safetensors shards as published, in bytes, where a source states it. */
  readonly publishedWeightBytes?: number;
}

/**
 * Peak bytes per patch of the vision towers in bf16 at TP 1. Measured on an H200 with transformers'
 * towers (test/gpu/h200-encoder-memory.json): 44176 (Qwen2-VL, Qwen2.5-VL), 50560 (Qwen3-VL).
 * vLLM's own towers need less: its startup log C01 (test/support/vl-startup-logs.ts: "Available KV
 * cache memory" with one 65536-patch image, the tower's peak being the profile run's) puts
 * Qwen2/2.5-VL at 35300, and Qwen3-VL is taken at the same vLLM/transformers ratio (0.80).
 */
const TRANSFORMERS_BYTES_PER_PATCH = { "qwen2-vl": 44176, "qwen2.5-vl": 44176, "qwen3-vl": 50560 };
const VLLM_TO_TRANSFORMERS = 35300 / TRANSFORMERS_BYTES_PER_PATCH["qwen2-vl"];
const MEASURED_BYTES_PER_PATCH: Readonly<Record<VisionKind, { bytes: number; embedDim: number }>> =
  {
    "qwen2-vl": { bytes: 35300, embedDim: 1280 },
    "qwen2.5-vl": { bytes: 35300, embedDim: 1280 },
    "qwen3-vl": {
      bytes: Math.round(TRANSFORMERS_BYTES_PER_PATCH["qwen3-vl"] * VLLM_TO_TRANSFORMERS),
      embedDim: 1152,
    },
  };

/** A tower of a known kind with other widths: the measured figure scaled by its width. */
export function scaledActivationBytesPerPatch(kind: VisionKind, embedDim: number): number {
  const m = MEASURED_BYTES_PER_PATCH[kind];
  return Math.round((m.bytes * embedDim) / m.embedDim);
}

export const QWEN2_VL_VISION: VisionTower = {
  kind: "qwen2-vl",
  depth: 32,
  embedDim: 1280,
  mlpHiddenSize: 5120,
  numHeads: 16,
  patchSize: 14,
  spatialMergeSize: 2,
  temporalPatchSize: 2,
  gatedMlp: false,
  layerNorm: true,
  positionEmbeddings: 0,
  deepstackMergers: 0,
  activationBytesPerPatch: MEASURED_BYTES_PER_PATCH["qwen2-vl"].bytes,
};

const qwen25Vision = (mlp: number): VisionTower => ({
  ...QWEN2_VL_VISION,
  kind: "qwen2.5-vl",
  mlpHiddenSize: mlp,
  gatedMlp: true,
  layerNorm: false,
  activationBytesPerPatch: MEASURED_BYTES_PER_PATCH["qwen2.5-vl"].bytes,
});

const qwen3Vision = (depth: number, embedDim: number, mlp: number): VisionTower => ({
  kind: "qwen3-vl",
  depth,
  embedDim,
  mlpHiddenSize: mlp,
  numHeads: 16,
  patchSize: 16,
  spatialMergeSize: 2,
  temporalPatchSize: 2,
  gatedMlp: false,
  layerNorm: true,
  positionEmbeddings: 2304,
  deepstackMergers: 3,
  activationBytesPerPatch: scaledActivationBytesPerPatch("qwen3-vl", embedDim),
});

type Dims = Omit<ModelSpec, "id" | "license" | "quantization" | "torchDtype"> & {
  readonly name: string;
  readonly license: string;
  /** intermediate_size of the quantized re-uploads where it differs (72B AWQ/GPTQ). */
  readonly quantizedIntermediateSize?: number;
};

const AWQ: Quantization = { method: "awq", bits: 4, groupSize: 128 };
const GPTQ4: Quantization = { method: "gptq", bits: 4, groupSize: 128 };
const GPTQ8: Quantization = { method: "gptq", bits: 8, groupSize: 128 };
const FP8_BLOCK: Quantization = { method: "fp8", bits: 8, groupSize: 128 * 128, float: true };

const QWEN2: Pick<Dims, "qkvBias" | "qkNorm" | "maxPositions" | "architecture"> = {
  architecture: "Qwen2VLForConditionalGeneration",
  qkvBias: true,
  qkNorm: false,
  maxPositions: 32768,
};
const QWEN25: typeof QWEN2 = {
  architecture: "Qwen2_5_VLForConditionalGeneration",
  qkvBias: true,
  qkNorm: false,
  maxPositions: 128000,
};
const QWEN3: typeof QWEN2 = {
  architecture: "Qwen3VLForConditionalGeneration",
  qkvBias: false,
  qkNorm: true,
  maxPositions: 262144,
};

type Variants = readonly { suffix: string; q?: Quantization }[];
/** The repositories Qwen publishes for every Qwen2-VL size: bf16, AWQ, GPTQ Int4 and Int8. */
const QWEN2_VL_VARIANTS: Variants = [
  { suffix: "" },
  { suffix: "-AWQ", q: AWQ },
  { suffix: "-GPTQ-Int4", q: GPTQ4 },
  { suffix: "-GPTQ-Int8", q: GPTQ8 },
];
/** Qwen2.5-VL: bf16 and AWQ. */
const QWEN25_VL_VARIANTS: Variants = [{ suffix: "" }, { suffix: "-AWQ", q: AWQ }];
/** Qwen3-VL: bf16 and block-wise FP8. */
const QWEN3_VL_VARIANTS: Variants = [{ suffix: "" }, { suffix: "-FP8", q: FP8_BLOCK }];

const families: readonly { dims: Dims; variants: Variants }[] = [
  // Qwen2-VL-2B: model-00001-of-00002 is 3,988,609,112 B and the second ≈ 0.43 GB ⚠;
  // revision 895c3a49… seen in public HF cache snapshot paths.
  {
    dims: {
      ...QWEN2,
      name: "Qwen/Qwen2-VL-2B-Instruct",
      layers: 28,
      hiddenSize: 1536,
      intermediateSize: 8960,
      attentionHeads: 12,
      kvHeads: 2,
      headDim: 128,
      vocabSize: 151936,
      tiedEmbeddings: true,
      vision: QWEN2_VL_VISION,
      license: "apache-2.0",
      knownRevision: "895c3a49bc3fa70a340399125c650a463535e71c",
      publishedWeightBytes: 4_418_000_000,
    },
    variants: QWEN2_VL_VARIANTS,
  },
  // Qwen2-VL-7B: 5 shards ≈ 16.6 GB at revision a7a06a1c… (reference file §4).
  {
    dims: {
      ...QWEN2,
      name: "Qwen/Qwen2-VL-7B-Instruct",
      layers: 28,
      hiddenSize: 3584,
      intermediateSize: 18944,
      attentionHeads: 28,
      kvHeads: 4,
      headDim: 128,
      vocabSize: 152064,
      tiedEmbeddings: false,
      vision: QWEN2_VL_VISION,
      license: "apache-2.0",
      knownRevision: "a7a06a1cc11b4514ce9edcde0e3ca1d16e5ff2fc",
      publishedWeightBytes: 16_580_000_000,
    },
    variants: QWEN2_VL_VARIANTS,
  },
  // Qwen2-VL-72B: ≈ 147 GB bf16 ⚠; revision f400120e… seen in public HF cache snapshot paths.
  {
    dims: {
      ...QWEN2,
      name: "Qwen/Qwen2-VL-72B-Instruct",
      layers: 80,
      hiddenSize: 8192,
      intermediateSize: 29568,
      quantizedIntermediateSize: 29696,
      attentionHeads: 64,
      kvHeads: 8,
      headDim: 128,
      vocabSize: 152064,
      tiedEmbeddings: false,
      vision: QWEN2_VL_VISION,
      license: "qwen",
      knownRevision: "f400120e59a6196b024298b7d09fb517f742db7d",
      publishedWeightBytes: 147_000_000_000,
    },
    variants: QWEN2_VL_VARIANTS,
  },
  {
    dims: {
      ...QWEN25,
      name: "Qwen/Qwen2.5-VL-3B-Instruct",
      layers: 36,
      hiddenSize: 2048,
      intermediateSize: 11008,
      attentionHeads: 16,
      kvHeads: 2,
      headDim: 128,
      vocabSize: 151936,
      tiedEmbeddings: true,
      vision: qwen25Vision(3420),
      license: "qwen-research",
    },
    variants: QWEN25_VL_VARIANTS,
  },
  {
    dims: {
      ...QWEN25,
      name: "Qwen/Qwen2.5-VL-7B-Instruct",
      layers: 28,
      hiddenSize: 3584,
      intermediateSize: 18944,
      attentionHeads: 28,
      kvHeads: 4,
      headDim: 128,
      vocabSize: 152064,
      tiedEmbeddings: false,
      vision: qwen25Vision(3420),
      license: "apache-2.0",
    },
    variants: QWEN25_VL_VARIANTS,
  },
  {
    dims: {
      ...QWEN25,
      name: "Qwen/Qwen2.5-VL-32B-Instruct",
      layers: 64,
      hiddenSize: 5120,
      intermediateSize: 27648,
      attentionHeads: 40,
      kvHeads: 8,
      headDim: 128,
      vocabSize: 152064,
      tiedEmbeddings: false,
      vision: qwen25Vision(3456),
      license: "apache-2.0",
    },
    variants: QWEN25_VL_VARIANTS,
  },
  {
    dims: {
      ...QWEN25,
      name: "Qwen/Qwen2.5-VL-72B-Instruct",
      layers: 80,
      hiddenSize: 8192,
      intermediateSize: 29568,
      attentionHeads: 64,
      kvHeads: 8,
      headDim: 128,
      vocabSize: 152064,
      tiedEmbeddings: false,
      vision: qwen25Vision(3456),
      license: "qwen",
    },
    variants: QWEN25_VL_VARIANTS,
  },
  {
    dims: {
      ...QWEN3,
      name: "Qwen/Qwen3-VL-2B-Instruct",
      layers: 28,
      hiddenSize: 2048,
      intermediateSize: 6144,
      attentionHeads: 16,
      kvHeads: 8,
      headDim: 128,
      vocabSize: 151936,
      tiedEmbeddings: true,
      vision: qwen3Vision(24, 1024, 4096),
      license: "apache-2.0",
    },
    variants: QWEN3_VL_VARIANTS,
  },
  {
    dims: {
      ...QWEN3,
      name: "Qwen/Qwen3-VL-4B-Instruct",
      layers: 36,
      hiddenSize: 2560,
      intermediateSize: 9728,
      attentionHeads: 32,
      kvHeads: 8,
      headDim: 128,
      vocabSize: 151936,
      tiedEmbeddings: true,
      vision: qwen3Vision(24, 1024, 4096),
      license: "apache-2.0",
    },
    variants: QWEN3_VL_VARIANTS,
  },
  {
    dims: {
      ...QWEN3,
      name: "Qwen/Qwen3-VL-8B-Instruct",
      layers: 36,
      hiddenSize: 4096,
      intermediateSize: 12288,
      attentionHeads: 32,
      kvHeads: 8,
      headDim: 128,
      vocabSize: 151936,
      tiedEmbeddings: false,
      vision: qwen3Vision(27, 1152, 4304),
      license: "apache-2.0",
      publishedWeightBytes: 8_767_123_696 * 2,
    },
    variants: QWEN3_VL_VARIANTS,
  },
  {
    dims: {
      ...QWEN3,
      name: "Qwen/Qwen3-VL-32B-Instruct",
      layers: 64,
      hiddenSize: 5120,
      intermediateSize: 25600,
      attentionHeads: 64,
      kvHeads: 8,
      headDim: 128,
      vocabSize: 151936,
      tiedEmbeddings: false,
      vision: qwen3Vision(27, 1152, 4304),
      license: "apache-2.0",
    },
    variants: QWEN3_VL_VARIANTS,
  },
  {
    dims: {
      ...QWEN3,
      architecture: "Qwen3VLMoeForConditionalGeneration",
      name: "Qwen/Qwen3-VL-30B-A3B-Instruct",
      layers: 48,
      hiddenSize: 2048,
      intermediateSize: 6144,
      attentionHeads: 32,
      kvHeads: 4,
      headDim: 128,
      vocabSize: 151936,
      tiedEmbeddings: false,
      moe: { experts: 128, activeExperts: 8, expertIntermediateSize: 768 },
      vision: qwen3Vision(27, 1152, 4304),
      license: "apache-2.0",
      publishedWeightBytes: 31_070_754_032 * 2,
    },
    variants: QWEN3_VL_VARIANTS,
  },
  {
    dims: {
      ...QWEN3,
      architecture: "Qwen3VLMoeForConditionalGeneration",
      name: "Qwen/Qwen3-VL-235B-A22B-Instruct",
      layers: 94,
      hiddenSize: 4096,
      intermediateSize: 12288,
      attentionHeads: 64,
      kvHeads: 4,
      headDim: 128,
      vocabSize: 151936,
      tiedEmbeddings: false,
      moe: { experts: 128, activeExperts: 8, expertIntermediateSize: 1536 },
      vision: qwen3Vision(27, 1152, 4304),
      license: "apache-2.0",
      publishedWeightBytes: 235_670_022_896 * 2,
    },
    variants: QWEN3_VL_VARIANTS,
  },
];

function build(): ModelSpec[] {
  const out: ModelSpec[] = [];
  for (const { dims, variants } of families) {
    const { name, quantizedIntermediateSize, ...d } = dims;
    for (const v of variants) {
      const q = v.q;
      // AWQ/GPTQ checkpoints are float16; FP8 ones keep bf16 for what they do not quantize.
      const intGroups = q && q.method !== "fp8";
      out.push({
        ...d,
        id: `${name}${v.suffix}`,
        intermediateSize: intGroups
          ? (quantizedIntermediateSize ?? d.intermediateSize)
          : d.intermediateSize,
        torchDtype: intGroups ? "float16" : "bfloat16",
        ...(q ? { quantization: q } : {}),
        // Pins and published sizes are of the unquantized repositories only.
        ...(q ? { knownRevision: undefined, publishedWeightBytes: undefined } : {}),
      });
    }
  }
  return out.map((m) => JSON.parse(JSON.stringify(m)) as ModelSpec);
}

const rows = build();
export const MODELS: ReadonlyMap<string, ModelSpec> = new Map(rows.map((m) => [m.id, m]));
export const MODEL_IDS = rows.map((m) => m.id) as [string, ...string[]];

/** The catalog's quantized siblings of a model (7B-Instruct → 7B-Instruct-AWQ, …), 4-bit first. */
export function quantizedVariantsOf(id: string): ModelSpec[] {
  if (MODELS.get(id)?.quantization) return [];
  return rows
    .filter((m) => m.quantization && m.id.startsWith(`${id}-`))
    .sort((a, b) => a.quantization!.bits - b.quantization!.bits);
}

/** The catalog's 4-bit sibling of a model, e.g. 7B-Instruct → 7B-Instruct-AWQ. */
export function awqVariantOf(id: string): ModelSpec | undefined {
  return quantizedVariantsOf(id).find((m) => m.quantization!.method === "awq");
}
