/**
 * Model catalog: Qwen2-VL Instruct models and their official quantized variants.
 *
 * Dimensions are the `config.json` of the official repositories (Qwen/Qwen2-VL-{2B,7B,72B}-Instruct),
 * as tabulated in ../shared/reference/vllm-qwen2vl-facts.md §4. Vision tower (same for all sizes,
 * `vision_config`): depth 32, embed_dim 1280, mlp_ratio 4, num_heads 16, patch 14, spatial merge 2,
 * temporal patch 2 — the "675M ViT" of the Qwen2-VL paper (arXiv 2409.12191, Table 1).
 * Quantized repos (Qwen/Qwen2-VL-*-Instruct-AWQ, -GPTQ-Int4, -GPTQ-Int8): group size 128
 * (their `quantization_config`); the 72B ones are re-uploaded with intermediate_size padded to
 * 29696 so TP 2/4/8 aligns (QwenLM/Qwen3-VL #230, #231). AWQ/GPTQ checkpoints are float16.
 * Licenses: 2B/7B Apache-2.0; 72B the Qwen license (model cards).
 */

export interface VisionTower {
  readonly depth: number;
  readonly embedDim: number;
  readonly mlpHiddenSize: number;
  readonly numHeads: number;
  readonly patchSize: number;
  readonly spatialMergeSize: number;
  readonly temporalPatchSize: number;
}

export interface Quantization {
  readonly method: "awq" | "gptq";
  readonly bits: 4 | 8;
  readonly groupSize: number;
}

export interface ModelSpec {
  /** Hugging Face repository, also the catalog key. */
  readonly id: string;
  readonly layers: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly attentionHeads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocabSize: number;
  readonly tiedEmbeddings: boolean;
  readonly maxPositions: number;
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

export const QWEN2_VL_VISION: VisionTower = {
  depth: 32,
  embedDim: 1280,
  mlpHiddenSize: 5120,
  numHeads: 16,
  patchSize: 14,
  spatialMergeSize: 2,
  temporalPatchSize: 2,
};

interface Base {
  size: "2B" | "7B" | "72B";
  layers: number;
  hiddenSize: number;
  intermediateSize: number;
  quantizedIntermediateSize: number;
  attentionHeads: number;
  kvHeads: number;
  vocabSize: number;
  tiedEmbeddings: boolean;
  license: string;
  knownRevision?: string;
  publishedWeightBytes?: number;
}

const bases: readonly Base[] = [
  // 2B: 2 shards; model-00001-of-00002 is 3,988,609,112 B and the second ≈ 0.43 GB ⚠;
  // revision 895c3a49… seen in public HF cache snapshot paths.
  {
    size: "2B",
    layers: 28,
    hiddenSize: 1536,
    intermediateSize: 8960,
    quantizedIntermediateSize: 8960,
    attentionHeads: 12,
    kvHeads: 2,
    vocabSize: 151936,
    tiedEmbeddings: true,
    license: "apache-2.0",
    knownRevision: "895c3a49bc3fa70a340399125c650a463535e71c",
    publishedWeightBytes: 4_418_000_000,
  },
  // 7B: 5 shards ≈ 16.6 GB at revision a7a06a1c… (reference file §4).
  {
    size: "7B",
    layers: 28,
    hiddenSize: 3584,
    intermediateSize: 18944,
    quantizedIntermediateSize: 18944,
    attentionHeads: 28,
    kvHeads: 4,
    vocabSize: 152064,
    tiedEmbeddings: false,
    license: "apache-2.0",
    knownRevision: "a7a06a1cc11b4514ce9edcde0e3ca1d16e5ff2fc",
    publishedWeightBytes: 16_580_000_000,
  },
  // 72B: ≈ 147 GB bf16 ⚠; revision f400120e… seen in public HF cache snapshot paths.
  {
    size: "72B",
    layers: 80,
    hiddenSize: 8192,
    intermediateSize: 29568,
    quantizedIntermediateSize: 29696,
    attentionHeads: 64,
    kvHeads: 8,
    vocabSize: 152064,
    tiedEmbeddings: false,
    license: "qwen",
    knownRevision: "f400120e59a6196b024298b7d09fb517f742db7d",
    publishedWeightBytes: 147_000_000_000,
  },
];

const variants: readonly { suffix: string; quantization?: Quantization }[] = [
  { suffix: "" },
  { suffix: "-AWQ", quantization: { method: "awq", bits: 4, groupSize: 128 } },
  { suffix: "-GPTQ-Int4", quantization: { method: "gptq", bits: 4, groupSize: 128 } },
  { suffix: "-GPTQ-Int8", quantization: { method: "gptq", bits: 8, groupSize: 128 } },
];

function build(): ModelSpec[] {
  const out: ModelSpec[] = [];
  for (const b of bases) {
    for (const v of variants) {
      const q = v.quantization;
      out.push({
        id: `Qwen/Qwen2-VL-${b.size}-Instruct${v.suffix}`,
        layers: b.layers,
        hiddenSize: b.hiddenSize,
        intermediateSize: q ? b.quantizedIntermediateSize : b.intermediateSize,
        attentionHeads: b.attentionHeads,
        kvHeads: b.kvHeads,
        headDim: 128,
        vocabSize: b.vocabSize,
        tiedEmbeddings: b.tiedEmbeddings,
        maxPositions: 32768,
        torchDtype: q ? "float16" : "bfloat16",
        ...(q ? { quantization: q } : {}),
        vision: QWEN2_VL_VISION,
        license: b.license,
        ...(q
          ? {}
          : { knownRevision: b.knownRevision, publishedWeightBytes: b.publishedWeightBytes }),
      });
    }
  }
  return out;
}

const rows = build();
export const MODELS: ReadonlyMap<string, ModelSpec> = new Map(rows.map((m) => [m.id, m]));
export const MODEL_IDS = rows.map((m) => m.id) as [string, ...string[]];

/** The catalog's quantized sibling of a model, e.g. 7B-Instruct → 7B-Instruct-AWQ. */
export function awqVariantOf(id: string): ModelSpec | undefined {
  if (id.endsWith("-AWQ") || id.includes("-GPTQ-")) return undefined;
  return MODELS.get(`${id}-AWQ`);
}
