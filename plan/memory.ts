/**
 * GPU memory per rank, the way vLLM accounts for it at startup:
 *
 *   budget      = total × gpu_memory_utilization
 *   KV cache    = budget − weights − peak activation (profile run) − non-torch memory
 *                 [− CUDA graphs, from vLLM 0.21 on, where they are profiled into the budget]
 *   KV tokens   = ⌊KV cache / (block_size × KV bytes per token)⌋ × block_size, min over ranks
 *
 * (vllm/worker/worker.py `determine_num_available_blocks` (V0) and vllm/v1/worker/gpu_worker.py
 * `determine_available_memory` (V1); vllm PR #10511 "overhaul memory profiling"). The activation
 * terms are estimates calibrated on published startup logs (test/plan-calibration.test.ts).
 * Pure: numbers in, numbers out.
 */
import type { ModelSpec, VisionTower } from "../catalogs/models";

export const GiB = 1024 ** 3;

export type Dtype = "bfloat16" | "float16" | "float32";
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = { bfloat16: 2, float16: 2, float32: 4 };

/** One visual token covers 28×28 pixels (patch 14, 2×2 merge). vLLM/Qwen2-VL processor defaults: */
export const PIXELS_PER_VISUAL_TOKEN = 28 * 28;
export const DEFAULT_MIN_PIXELS = 4 * PIXELS_PER_VISUAL_TOKEN; // 3136
export const DEFAULT_MAX_PIXELS = 16384 * PIXELS_PER_VISUAL_TOKEN; // 12,845,056

/** CUDA context and driver state outside vLLM's budget (seen as 0.3–0.5 GiB in nvidia-smi). */
export const CUDA_CONTEXT_GiB = 0.45;
/** Non-torch memory inside the budget: 0.35 GiB measured single-GPU (vllm #10517), more with NCCL. */
export const NON_TORCH_GiB = 0.35;
export const NON_TORCH_DISTRIBUTED_GiB = 0.3;

// ---- weights -------------------------------------------------------------------------------

export interface WeightShare {
  /** Bytes of decoder layers per rank for one layer. */
  readonly perLayer: number;
  readonly embedding: number;
  readonly lmHead: number;
  readonly vision: number;
}

function linearBytes(params: number, bytes: number, q: ModelSpec["quantization"]): number {
  if (!q) return params * bytes;
  // Packed integer weights + one fp16 scale and one packed zero point per group (AWQ/GPTQ layout).
  const groups = params / q.groupSize;
  return (params * q.bits) / 8 + groups * (2 + q.bits / 8);
}

/** KV heads each tensor-parallel rank holds: split while TP ≤ KV heads, replicated beyond. */
export function kvHeadsPerRank(kvHeads: number, tp: number): number {
  return Math.max(1, Math.floor(kvHeads / tp));
}

/** Per-rank weight bytes of each part, for tensor-parallel size `tp` and a load dtype. */
export function weightShare(m: ModelSpec, tp: number, dtype: Dtype): WeightShare {
  const b = DTYPE_BYTES[dtype];
  const H = m.hiddenSize;
  const hd = m.headDim;
  const q = m.attentionHeads * hd;
  const kvPerRank = kvHeadsPerRank(m.kvHeads, tp) * hd;
  const q4 = m.quantization;
  const perLayer =
    linearBytes((H * q) / tp, b, q4) + // q_proj
    2 * linearBytes(H * kvPerRank, b, q4) + // k_proj, v_proj (replicated heads when tp > kvHeads)
    linearBytes((q * H) / tp, b, q4) + // o_proj
    linearBytes((3 * H * m.intermediateSize) / tp, b, q4) + // gate, up, down
    (q / tp + 2 * kvPerRank) * b + // qkv biases (Qwen2)
    2 * H * b; // two RMSNorms, replicated
  const embedding = (m.vocabSize * H * b) / tp;
  const lmHead = m.tiedEmbeddings ? 0 : embedding;
  return { perLayer, embedding, lmHead, vision: m.vision ? visionBytes(m.vision, H, b) / tp : 0 };
}

/** Vision tower parameters × bytes (never quantized in the official AWQ/GPTQ repos). */
export function visionBytes(v: VisionTower, lmHidden: number, bytes: number): number {
  const E = v.embedDim;
  const M = v.mlpHiddenSize;
  const block = E * 3 * E + 3 * E + E * E + E + E * M + M + M * E + E + 4 * E;
  const patchEmbed = 3 * v.temporalPatchSize * v.patchSize * v.patchSize * E;
  const mergedIn = E * v.spatialMergeSize * v.spatialMergeSize;
  const merger = 2 * E + mergedIn * mergedIn + mergedIn + mergedIn * lmHidden + lmHidden;
  return (v.depth * block + patchEmbed + merger) * bytes;
}

/** Whole-checkpoint bytes (TP 1): what is downloaded and verified. */
export function checkpointBytes(m: ModelSpec, dtype: Dtype = m.torchDtype): number {
  const w = weightShare(m, 1, dtype);
  return m.layers * w.perLayer + w.embedding + w.lmHead + w.vision;
}

/** vLLM's split of decoder layers over pipeline stages (vllm/distributed/utils.py get_pp_indices). */
export function layersPerStage(layers: number, pp: number): number[] {
  const base = Math.floor(layers / pp);
  const parts = Array.from({ length: pp }, () => base);
  const remaining = layers % pp;
  for (let i = 2; i < remaining + 2; i++) parts[pp - i]! += 1;
  return parts;
}

// ---- KV cache ------------------------------------------------------------------------------

/** 2 (K and V) · layers · KV heads per rank · head_dim · bytes (V0 CacheEngine.get_cache_block_size). */
export function kvBytesPerToken(m: ModelSpec, layers: number, tp: number, kvBytes: number): number {
  return 2 * layers * kvHeadsPerRank(m.kvHeads, tp) * m.headDim * kvBytes;
}

// ---- what the profile run reserves ---------------------------------------------------------

export interface ProfileShape {
  /** Tokens in the dummy batch (max_num_batched_tokens as vLLM resolves it). */
  readonly tokens: number;
  readonly maxNumSeqs: number;
  /** Images the encoder runs on in the profile, and visual tokens (after merge) per image. */
  readonly images: number;
  readonly tokensPerImage: number;
}

export interface Reserve {
  readonly activationBytes: number;
  readonly encoderBytes: number;
  readonly samplerBytes: number;
  readonly nonTorchBytes: number;
  readonly cudaGraphBytes: number;
}

/**
 * Peak activation of the decoder on `tokens` tokens: the MLP's gate/up output and activation
 * (≈ 3 × intermediate / TP) plus residual and attention buffers (≈ 3 × hidden), per token.
 * Calibrated: Llama-3.1-8B at 20k/29k tokens → 2.07/2.99 GiB measured (vllm #10517) vs 2.06/2.99.
 */
export function decoderActivationBytes(
  m: ModelSpec,
  tokens: number,
  tp: number,
  actBytes: number,
): number {
  return tokens * (3 * (m.intermediateSize / tp) + 3 * m.hiddenSize) * actBytes;
}

/** Vision tower peak on `patches` patches (pre-merge): MLP hidden ×2, qkv, residuals. ⚠ estimate. */
export function encoderActivationBytes(
  v: VisionTower,
  patches: number,
  tp: number,
  actBytes: number,
): number {
  return patches * ((2 * v.mlpHiddenSize + 3 * v.embedDim) / tp + 2 * v.embedDim) * actBytes;
}

/** CUDA graphs for decode batch sizes up to 256/512: grows with layers on the rank. ⚠ estimate. */
export function cudaGraphBytes(layersOnRank: number): number {
  return (0.3 + 0.012 * layersOnRank) * GiB;
}
