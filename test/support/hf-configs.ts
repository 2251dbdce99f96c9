/** Official config.json files, as published, for tests of `fit --model-config`. */

/**
 * https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct-AWQ/blob/main/config.json (saved by
 * transformers 4.49.0, which writes only what differs from the class defaults): its
 * vision_config has no depth, intermediate_size, num_heads, patch_size, spatial_merge_size or
 * temporal_patch_size. `in_chans` and `spatial_patch_size` are keys no current class reads.
 * Transcribed, not byte-compared (the hub is out of reach here); its quantization_config and
 * tie_word_embeddings agree with public write-ups of this checkpoint.
 */
export const QWEN25_VL_3B_AWQ_CONFIG = {
  architectures: ["Qwen2_5_VLForConditionalGeneration"],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: "silu",
  hidden_size: 2048,
  image_token_id: 151655,
  initializer_range: 0.02,
  intermediate_size: 11008,
  max_position_embeddings: 128000,
  max_window_layers: 70,
  model_type: "qwen2_5_vl",
  num_attention_heads: 16,
  num_hidden_layers: 36,
  num_key_value_heads: 2,
  quantization_config: {
    bits: 4,
    group_size: 128,
    modules_to_not_convert: ["visual"],
    quant_method: "awq",
    version: "gemm",
    zero_point: true,
  },
  rms_norm_eps: 1e-6,
  rope_scaling: { mrope_section: [16, 24, 24], rope_type: "default", type: "default" },
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "float16",
  transformers_version: "4.49.0",
  use_cache: true,
  use_sliding_window: false,
  video_token_id: 151656,
  vision_config: {
    hidden_size: 1280,
    in_chans: 3,
    model_type: "qwen2_5_vl",
    out_hidden_size: 2048,
    spatial_patch_size: 14,
    tokens_per_second: 2,
    torch_dtype: "float16",
  },
  vision_end_token_id: 151653,
  vision_start_token_id: 151652,
  vision_token_id: 151654,
  vocab_size: 151936,
};
