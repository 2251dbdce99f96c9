/**
 * Which model is served: a catalog entry, custom dimensions from the stack, or a Hugging Face
 * `config.json` given to `fit --model-config`. All three end as one `ModelSpec`.
 */
import { MODELS, QWEN2_VL_VISION, type ModelSpec } from "../catalogs/models";
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

export function customSpec(c: CustomModelConfig): ModelSpec {
  return {
    id: c.name,
    layers: c.layers,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    attentionHeads: c.attentionHeads,
    kvHeads: c.kvHeads,
    headDim: c.headDim ?? c.hiddenSize / c.attentionHeads,
    vocabSize: c.vocabSize,
    tiedEmbeddings: c.tiedEmbeddings,
    maxPositions: c.maxPositions,
    torchDtype: c.torchDtype,
    ...(c.quantization ? { quantization: c.quantization } : {}),
    ...(c.vision ? { vision: QWEN2_VL_VISION } : {}),
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
 * A Hugging Face `config.json` → custom model dimensions. Reads the text config (top level or
 * `text_config`), `quantization_config` and whether a `vision_config` is present.
 */
export function customFromHfConfig(
  json: unknown,
  name: string,
  weightsGiB?: number,
): CustomModelConfig {
  if (!json || typeof json !== "object") throw new Error("config.json: not a JSON object");
  const top = json as Record<string, unknown>;
  const text = (
    top["text_config"] && typeof top["text_config"] === "object"
      ? { ...top, ...(top["text_config"] as object) }
      : top
  ) as Record<string, unknown>;
  const num = (key: string, ...alts: string[]): number => {
    for (const k of [key, ...alts]) {
      const v = text[k];
      if (typeof v === "number") return v;
    }
    throw new Error(`config.json: "${key}" is missing or not a number`);
  };
  const heads = num("num_attention_heads");
  const qc = top["quantization_config"] as Record<string, unknown> | undefined;
  let quantization: CustomModelConfig["quantization"];
  if (qc) {
    const method = String(qc["quant_method"] ?? "");
    if (method !== "awq" && method !== "gptq")
      throw new Error(
        `config.json: quantization_config.quant_method "${method}" is not supported (awq, gptq)`,
      );
    const bits = Number(qc["bits"] ?? qc["w_bit"]);
    if (bits !== 4 && bits !== 8)
      throw new Error(`config.json: quantization bits ${bits} not supported (4, 8)`);
    quantization = {
      method,
      bits,
      groupSize: Number(qc["group_size"] ?? qc["q_group_size"] ?? 128),
    };
  }
  const dtype = String(text["torch_dtype"] ?? text["dtype"] ?? "bfloat16");
  if (dtype !== "bfloat16" && dtype !== "float16" && dtype !== "float32")
    throw new Error(`config.json: torch_dtype "${dtype}" not supported`);
  const hidden = num("hidden_size");
  return {
    name,
    layers: num("num_hidden_layers"),
    hiddenSize: hidden,
    intermediateSize: num("intermediate_size"),
    attentionHeads: heads,
    kvHeads:
      typeof text["num_key_value_heads"] === "number"
        ? (text["num_key_value_heads"] as number)
        : heads,
    headDim: typeof text["head_dim"] === "number" ? (text["head_dim"] as number) : hidden / heads,
    vocabSize: num("vocab_size"),
    tiedEmbeddings: Boolean(text["tie_word_embeddings"] ?? false),
    maxPositions: num("max_position_embeddings"),
    torchDtype: dtype,
    ...(quantization ? { quantization } : {}),
    vision: top["vision_config"] !== undefined,
    ...(weightsGiB !== undefined ? { weightsGiB } : {}),
  };
}
