/**
 * Which model is served: a catalog entry, custom dimensions from the stack, or a Hugging Face
 * `config.json` given to `fit --model-config`. All three end as one `ModelSpec`.
 */
import {
  ARCHITECTURES,
  MODELS,
  scaledActivationBytesPerPatch,
  type Architecture,
  type ModelSpec,
  type Quantization,
  type VisionTower,
} from "../catalogs/models";
import {
  HF_CONFIG_DEFAULTS,
  type DefaultedField,
  type TextDefaults,
} from "../catalogs/hf-config-defaults";
import type { Issue } from "../config/errors";
import type { CustomModelConfig, ModelConfig } from "../config/schema";

export interface ResolvedModel {
  readonly spec: ModelSpec;
  readonly revision: string;
  readonly servedModelName: string;
  /** Whole-checkpoint size given by the user when dimensions cannot give it. */
  readonly weightsGiBOverride?: number;
}

export const REVISION_RE = /^[0-9a-f]{40}$/;

/** The vision tower of a family, with the widths a custom model or config.json gives. */
function customVision(c: CustomModelConfig): VisionTower | undefined {
  if (c.vision === false) return undefined;
  const family = familyVision(c.architecture);
  if (c.vision === true) return family;
  const v = c.vision;
  return {
    ...family,
    depth: v.depth,
    embedDim: v.embedDim,
    mlpHiddenSize: v.mlpHiddenSize,
    numHeads: v.numHeads,
    patchSize: v.patchSize,
    spatialMergeSize: v.spatialMergeSize,
    temporalPatchSize: v.temporalPatchSize,
    deepstackMergers: v.deepstackMergers ?? family.deepstackMergers,
    activationBytesPerPatch: scaledActivationBytesPerPatch(family.kind, v.embedDim),
  };
}

/** The catalog tower of an architecture's family (its medium sizes). */
function familyVision(a: Architecture): VisionTower {
  const sample: Record<Architecture, string> = {
    Qwen2VLForConditionalGeneration: "Qwen/Qwen2-VL-7B-Instruct",
    Qwen2_5_VLForConditionalGeneration: "Qwen/Qwen2.5-VL-7B-Instruct",
    Qwen3VLForConditionalGeneration: "Qwen/Qwen3-VL-8B-Instruct",
    Qwen3VLMoeForConditionalGeneration: "Qwen/Qwen3-VL-30B-A3B-Instruct",
  };
  return MODELS.get(sample[a])!.vision!;
}

export function customSpec(
  given: Omit<CustomModelConfig, "architecture"> & { architecture?: Architecture },
): ModelSpec {
  const c: CustomModelConfig = {
    ...given,
    architecture: given.architecture ?? "Qwen2VLForConditionalGeneration",
  };
  const qwen3 = c.architecture.startsWith("Qwen3");
  const vision = customVision(c);
  return {
    id: c.name,
    architecture: c.architecture,
    layers: c.layers,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    attentionHeads: c.attentionHeads,
    kvHeads: c.kvHeads,
    headDim: c.headDim ?? c.hiddenSize / c.attentionHeads,
    vocabSize: c.vocabSize,
    tiedEmbeddings: c.tiedEmbeddings,
    maxPositions: c.maxPositions,
    qkvBias: !qwen3,
    qkNorm: qwen3,
    ...(c.moe ? { moe: c.moe } : {}),
    torchDtype: c.torchDtype,
    ...(c.quantization ? { quantization: c.quantization } : {}),
    ...(vision ? { vision } : {}),
    license: "unknown",
  };
}

export function resolveModel(
  m: ModelConfig,
  warnings: string[],
): { model?: ResolvedModel; issues: Issue[] } {
  const issues: Issue[] = [];
  if ((m.id === undefined) === (m.custom === undefined)) {
    issues.push({
      path: "model",
      value: { id: m.id, custom: m.custom ? "{…}" : undefined },
      message: "give exactly one of model.id (a catalog model) or model.custom (dimensions)",
    });
  }
  const spec = m.id ? MODELS.get(m.id) : m.custom ? customSpec(m.custom) : undefined;
  if (m.custom) {
    const hd = m.custom.headDim ?? m.custom.hiddenSize / m.custom.attentionHeads;
    if (!Number.isInteger(hd)) {
      issues.push({
        path: "model.custom.headDim",
        value: m.custom.headDim,
        message: `hiddenSize ${m.custom.hiddenSize} / attentionHeads ${m.custom.attentionHeads} is not whole; give headDim`,
      });
    }
    if (m.custom.attentionHeads % m.custom.kvHeads !== 0) {
      issues.push({
        path: "model.custom.kvHeads",
        value: m.custom.kvHeads,
        message: `must divide attentionHeads (${m.custom.attentionHeads})`,
      });
    }
  }
  if (!REVISION_RE.test(m.revision)) {
    const example = spec?.knownRevision ? ` e.g. "${spec.knownRevision}"` : "";
    const how = `find it with \`git ls-remote https://huggingface.co/${spec?.id ?? "<repo>"} refs/heads/main\``;
    if (m.allowFloatingRevision) {
      warnings.push(
        `model.revision "${m.revision}" is not a commit: every deployment may get different weights (allowFloatingRevision is set)`,
      );
    } else {
      issues.push({
        path: "model.revision",
        value: m.revision,
        message: /^[0-9a-fA-F]{7,39}$/.test(m.revision)
          ? `looks like an abbreviated or upper-case commit; give all 40 lower-case hex digits${example}`
          : `is a branch or tag name, which moves; pin a 40-hex commit${example} (${how}), or set model.allowFloatingRevision: true to accept the risk`,
      });
    }
  }
  // The spec is returned even with issues, so that the plan's other checks still run and report.
  if (!spec) return { issues };
  return {
    model: {
      spec,
      revision: m.revision,
      servedModelName: m.servedModelName ?? spec.id,
      ...(m.custom?.weightsGiB ? { weightsGiBOverride: m.custom.weightsGiB } : {}),
    },
    issues,
  };
}

/**
 * A Hugging Face `config.json` → custom model dimensions, for the architectures vLLM serves as Qwen
 * VL models, read the way transformers reads it: the text config (top level for Qwen2/2.5-VL,
 * `text_config` for Qwen3-VL), the `vision_config`, MoE fields and `quantization_config` (awq, gptq,
 * fp8, compressed-tensors, bitsandbytes: their shapes as vLLM 0.11's `from_config` reads them). A
 * field the file omits takes its config class's default (catalogs/hf-config-defaults.ts), and is
 * listed in `defaulted`. Anything but these architectures is refused with what is known: a Llama or
 * other config would otherwise be planned with wrong numbers.
 */
export function readHfConfig(
  json: unknown,
  name: string,
  weightsGiB?: number,
): { custom: CustomModelConfig; defaulted: DefaultedField[] } {
  if (!json || typeof json !== "object") throw new Error("config.json: not a JSON object");
  const top = json as Record<string, unknown>;
  const archs = Array.isArray(top["architectures"]) ? (top["architectures"] as unknown[]) : [];
  const architecture = archs.find((a): a is Architecture =>
    (ARCHITECTURES as readonly unknown[]).includes(a),
  );
  if (!architecture)
    throw new Error(
      `config.json: architectures ${JSON.stringify(archs)} is not a Qwen vision-language model this planner knows (${ARCHITECTURES.join(", ")}); its memory cannot be planned with these formulas`,
    );
  const defaults = HF_CONFIG_DEFAULTS[architecture];
  const defaulted: DefaultedField[] = [];
  const nested = top["text_config"] && typeof top["text_config"] === "object";
  const text = (nested ? { ...top, ...(top["text_config"] as object) } : top) as Record<
    string,
    unknown
  >;
  const textWhere = nested ? "text_config." : "";
  /** The file's value, or the class default when it is absent or null (recorded); a wrong type is refused. */
  const read = <T extends number | boolean | readonly number[]>(
    from: Record<string, unknown>,
    where: string,
    key: string,
    fallback: T,
    source: string,
  ): T => {
    const v = from[key];
    if (v === undefined || v === null) {
      defaulted.push({ field: `${where}${key}`, value: fallback, source });
      return fallback;
    }
    const ok =
      typeof fallback === "number"
        ? typeof v === "number" && Number.isFinite(v)
        : typeof fallback === "boolean"
          ? typeof v === "boolean"
          : Array.isArray(v);
    if (!ok)
      throw new Error(
        `config.json: "${where}${key}" is ${JSON.stringify(v)}; expected ${typeof fallback === "number" ? "a number" : typeof fallback === "boolean" ? "true or false" : "a list"} (${source}'s default: ${JSON.stringify(fallback)})`,
      );
    return v as T;
  };
  const t = defaults.text;
  const num = (key: keyof TextDefaults) =>
    read(text, textWhere, key, t[key] as number, defaults.textClass);
  const heads = num("num_attention_heads");
  const hidden = num("hidden_size");
  const headDim =
    t.head_dim !== undefined || text["head_dim"] !== undefined
      ? read(text, textWhere, "head_dim", t.head_dim ?? hidden / heads, defaults.textClass)
      : hidden / heads;
  const given = text["torch_dtype"] ?? text["dtype"] ?? top["torch_dtype"];
  // PreTrainedConfig's dtype default is None: no class default to take; the planner assumes bfloat16.
  if (given === undefined)
    defaulted.push({
      field: "torch_dtype",
      value: "bfloat16",
      source: "assumed: no class default",
    });
  const dtype = String(given ?? "bfloat16");
  if (dtype !== "bfloat16" && dtype !== "float16" && dtype !== "float32")
    throw new Error(
      `config.json: torch_dtype "${dtype}" not supported (bfloat16, float16, float32)`,
    );
  // transformers builds the default vision config when vision_config is absent.
  const vc = (top["vision_config"] ?? {}) as Record<string, unknown>;
  const vnum = (key: string) =>
    read(vc, "vision_config.", key, defaults.vision[key] as number, defaults.visionClass);
  const qwen2 = architecture === "Qwen2VLForConditionalGeneration";
  const qwen3 = architecture.startsWith("Qwen3");
  const embedDim = vnum(qwen2 ? "embed_dim" : "hidden_size");
  const vision: CustomModelConfig["vision"] = {
    depth: vnum("depth"),
    embedDim,
    mlpHiddenSize: qwen2 ? embedDim * vnum("mlp_ratio") : vnum("intermediate_size"),
    numHeads: vnum("num_heads"),
    patchSize: vnum("patch_size"),
    spatialMergeSize: vnum("spatial_merge_size"),
    temporalPatchSize: vnum("temporal_patch_size"),
    ...(qwen3
      ? {
          deepstackMergers: read(
            vc,
            "vision_config.",
            "deepstack_visual_indexes",
            defaults.vision["deepstack_visual_indexes"] as readonly number[],
            defaults.visionClass,
          ).length,
        }
      : {}),
  };
  const moe =
    architecture === "Qwen3VLMoeForConditionalGeneration"
      ? {
          experts: num("num_experts"),
          activeExperts: num("num_experts_per_tok"),
          expertIntermediateSize: num("moe_intermediate_size"),
        }
      : undefined;
  const qc = (top["quantization_config"] ?? text["quantization_config"]) as
    Record<string, unknown> | undefined;
  const custom: CustomModelConfig = {
    name,
    architecture,
    layers: num("num_hidden_layers"),
    hiddenSize: hidden,
    intermediateSize: num("intermediate_size"),
    attentionHeads: heads,
    // transformers: an absent num_key_value_heads takes the class default, an explicit null the heads.
    kvHeads:
      text["num_key_value_heads"] === null
        ? read({}, textWhere, "num_key_value_heads", heads, `${defaults.textClass}: null`)
        : num("num_key_value_heads"),
    headDim,
    vocabSize: num("vocab_size"),
    tiedEmbeddings: read(
      text,
      textWhere,
      "tie_word_embeddings",
      t.tie_word_embeddings,
      defaults.textClass,
    ),
    maxPositions: num("max_position_embeddings"),
    torchDtype: dtype,
    ...(moe ? { moe } : {}),
    ...(qc ? { quantization: quantizationFromHf(qc) } : {}),
    vision,
    ...(weightsGiB !== undefined ? { weightsGiB } : {}),
  };
  return { custom, defaulted };
}

/** `readHfConfig`'s dimensions alone. */
export function customFromHfConfig(
  json: unknown,
  name: string,
  weightsGiB?: number,
): CustomModelConfig {
  return readHfConfig(json, name, weightsGiB).custom;
}

/** `quantization_config` → what the planner needs: method, weight bits, weights per scale. */
export function quantizationFromHf(qc: Record<string, unknown>): Quantization {
  const method = String(qc["quant_method"] ?? "");
  const group = (v: unknown): number => (typeof v === "number" && v > 0 ? v : 0);
  switch (method) {
    case "awq":
    case "gptq": {
      const bits = Number(qc["bits"] ?? qc["w_bit"]);
      if (bits !== 4 && bits !== 8)
        throw new Error(`config.json: ${method} bits ${bits} not supported (4, 8)`);
      return { method, bits, groupSize: group(qc["group_size"] ?? qc["q_group_size"]) };
    }
    case "fp8": {
      const block = qc["weight_block_size"];
      const size = Array.isArray(block) ? Number(block[0]) * Number(block[1]) : 0;
      return { method: "fp8", bits: 8, groupSize: size, float: true };
    }
    case "compressed-tensors": {
      const groups = Object.values((qc["config_groups"] ?? {}) as Record<string, unknown>);
      const w = (groups[0] as { weights?: Record<string, unknown> } | undefined)?.weights;
      if (!w)
        throw new Error("config.json: compressed-tensors config_groups has no weights scheme");
      const bits = Number(w["num_bits"]);
      if (bits !== 4 && bits !== 8)
        throw new Error(`config.json: compressed-tensors num_bits ${bits} not supported (4, 8)`);
      const strategy = String(w["strategy"] ?? "");
      const blk = w["block_structure"];
      const size =
        strategy === "group"
          ? group(w["group_size"])
          : strategy === "block" && Array.isArray(blk)
            ? Number(blk[0]) * Number(blk[1])
            : 0;
      return { method: "compressed-tensors", bits, groupSize: size, float: w["type"] === "float" };
    }
    case "bitsandbytes": {
      const four = Boolean(qc["load_in_4bit"]);
      return {
        method: "bitsandbytes",
        bits: four ? 4 : 8,
        groupSize: four ? 64 : 0,
        doubleQuant: Boolean(qc["bnb_4bit_use_double_quant"]),
      };
    }
    default:
      throw new Error(
        `config.json: quantization_config.quant_method "${method}" is not supported (awq, gptq, fp8, compressed-tensors, bitsandbytes)`,
      );
  }
}
