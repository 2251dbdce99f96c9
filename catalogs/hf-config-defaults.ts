/**
 * What transformers fills in when a config.json omits a field: the defaults of each architecture's
 * config classes, for the fields the planner reads. A checkpoint saved by `save_pretrained` writes
 * only what differs from its class's defaults (`to_diff_dict`), so official configs omit fields:
 * Qwen/Qwen2.5-VL-3B-Instruct-AWQ has no `vision_config.depth`, transformers reads 32.
 *
 * Source: huggingface/transformers, src/transformers/models/<family>/configuration_<family>.py,
 * read at these commits (transformers 5 sources, `PreTrainedConfig`): qwen2_vl and qwen2_5_vl at
 * 018c8e0394c47749c55861e11f5f7e2a577973d7, qwen3_vl at 000c33fdfde12e1ffafbfcdb3c926df5727a00b6,
 * qwen3_vl_moe at 008e574391258935f3ecc3035c882e73bbcac419. `TRANSFORMERS_DEFAULTS_FOR` is the
 * release these stand for: the transformers the default lock pins (test/plan-models.test.ts holds
 * the two together).
 *
 * The defaults are not the released models' values (Qwen2_5_VLVisionConfig's hidden_size is 3584,
 * every released tower is 1280 wide): they only fill what a file leaves out, and the plan lists
 * each field it filled.
 */
import type { Architecture } from "./models";

export const TRANSFORMERS_DEFAULTS_FOR = "5.17.0";

/** The text model's fields (the top level for Qwen2/2.5-VL, `text_config` for Qwen3-VL). */
export interface TextDefaults {
  readonly vocab_size: number;
  readonly hidden_size: number;
  readonly intermediate_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  /** The signature's default: "None → num_attention_heads" applies only to an explicit null. */
  readonly num_key_value_heads: number;
  /** Absent: hidden_size / num_attention_heads (Qwen2/2.5-VL have no head_dim; Qwen3-VL-MoE's is None). */
  readonly head_dim?: number;
  readonly max_position_embeddings: number;
  readonly tie_word_embeddings: boolean;
  readonly num_experts?: number;
  readonly num_experts_per_tok?: number;
  readonly moe_intermediate_size?: number;
}

export type VisionDefaults = Readonly<Record<string, number | readonly number[]>>;

export interface ConfigDefaults {
  readonly textClass: string;
  readonly visionClass: string;
  readonly text: TextDefaults;
  readonly vision: VisionDefaults;
}

const QWEN2_TEXT: TextDefaults = {
  vocab_size: 152064,
  hidden_size: 8192,
  intermediate_size: 29568,
  num_hidden_layers: 80,
  num_attention_heads: 64,
  num_key_value_heads: 8,
  max_position_embeddings: 32768,
  tie_word_embeddings: false,
};

const QWEN3_VISION: VisionDefaults = {
  depth: 27,
  hidden_size: 1152,
  intermediate_size: 4304,
  num_heads: 16,
  patch_size: 16,
  spatial_merge_size: 2,
  temporal_patch_size: 2,
  deepstack_visual_indexes: [8, 16, 24],
};

export const HF_CONFIG_DEFAULTS: Readonly<Record<Architecture, ConfigDefaults>> = {
  Qwen2VLForConditionalGeneration: {
    textClass: "Qwen2VLTextConfig",
    visionClass: "Qwen2VLVisionConfig",
    text: QWEN2_TEXT,
    vision: {
      depth: 32,
      embed_dim: 1280,
      mlp_ratio: 4,
      num_heads: 16,
      patch_size: 14,
      spatial_merge_size: 2,
      temporal_patch_size: 2,
    },
  },
  Qwen2_5_VLForConditionalGeneration: {
    textClass: "Qwen2_5_VLTextConfig",
    visionClass: "Qwen2_5_VLVisionConfig",
    text: QWEN2_TEXT,
    vision: {
      depth: 32,
      hidden_size: 3584,
      intermediate_size: 3420,
      num_heads: 16,
      patch_size: 14,
      spatial_merge_size: 2,
      temporal_patch_size: 2,
    },
  },
  Qwen3VLForConditionalGeneration: {
    textClass: "Qwen3VLTextConfig",
    visionClass: "Qwen3VLVisionConfig",
    text: {
      vocab_size: 151936,
      hidden_size: 4096,
      intermediate_size: 22016,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 32,
      head_dim: 128,
      max_position_embeddings: 128000,
      tie_word_embeddings: false,
    },
    vision: QWEN3_VISION,
  },
  Qwen3VLMoeForConditionalGeneration: {
    textClass: "Qwen3VLMoeTextConfig",
    visionClass: "Qwen3VLMoeVisionConfig",
    text: {
      vocab_size: 151936,
      hidden_size: 2048,
      intermediate_size: 5632,
      num_hidden_layers: 24,
      num_attention_heads: 16,
      num_key_value_heads: 16,
      max_position_embeddings: 128000,
      // The text class's (vLLM's decoder reads text_config); Qwen3VLMoeConfig's own is False.
      tie_word_embeddings: true,
      num_experts: 60,
      num_experts_per_tok: 4,
      moe_intermediate_size: 1408,
    },
    vision: QWEN3_VISION,
  },
};

/** A field a config.json left out, and the class default the plan used for it. */
export interface DefaultedField {
  /** As written in config.json: "vision_config.depth", "num_key_value_heads". */
  readonly field: string;
  readonly value: number | boolean | readonly number[] | string;
  /** The transformers class whose default it is ("Qwen2_5_VLVisionConfig"), or how it was derived. */
  readonly source: string;
}
