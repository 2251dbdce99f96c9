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
import type { ModelSpec, Quantization, VisionTower } from "../catalogs/models";

export const GiB = 1024 ** 3;

/** `x` to `digits` decimals, as the plan shows its figures. */
export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export type Dtype = "bfloat16" | "float16" | "float32";
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = { bfloat16: 2, float16: 2, float32: 4 };

/** One visual token covers 28×28 pixels (patch 14, 2×2 merge). vLLM/Qwen2-VL processor defaults: */
export const PIXELS_PER_VISUAL_TOKEN = 28 * 28;
export const DEFAULT_MIN_PIXELS = 4 * PIXELS_PER_VISUAL_TOKEN; // 3136
export const DEFAULT_MAX_PIXELS = 16384 * PIXELS_PER_VISUAL_TOKEN; // 12,845,056

/**
 * Qwen3-VL's image processor default: `size.longest_edge` 16,777,216 px (16,384 tokens of 32 × 32 px;
 * Qwen/Qwen3-VL-8B-Instruct preprocessor_config.json).
 */
export const QWEN3_DEFAULT_MAX_PIXELS = 16384 * 32 * 32;

/** The preprocessor's own max_pixels for a tower (Qwen2/2.5-VL: 12,845,056; Qwen3-VL: 16,777,216). */
export function processorMaxPixels(tower: Pick<VisionTower, "kind"> | undefined): number {
  return tower?.kind === "qwen3-vl" ? QWEN3_DEFAULT_MAX_PIXELS : DEFAULT_MAX_PIXELS;
}

/** The largest image vLLM resizes to: vllm.maxPixels, or the model's processor default. */
export function effectiveMaxPixels(
  v: { readonly maxPixels?: number | undefined },
  tower?: Pick<VisionTower, "kind">,
): number {
  return v.maxPixels ?? processorMaxPixels(tower);
}

/**
 * CUDA context and driver state outside vLLM's budget: 0.3–0.5 GiB in nvidia-smi on 24–80 GB cards;
 * 0.51 GiB measured on an H200 (test/gpu/h200-encoder-memory.json), the largest card here.
 */
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

/**
 * Bytes per weight of a quantized linear layer (the checkpoint's tensors as vLLM loads them):
 * packed integers plus one fp16 scale and one packed zero point per group (AWQ, GPTQ,
 * compressed-tensors W4A16/W8A16); FP8 plus one fp32 scale per block or channel; bitsandbytes NF4
 * with one fp32 absmax per 64 weights (8-bit absmax per 256 and an fp32 per-group scale with double
 * quantization). Per channel: the scale per row is negligible.
 */
export function quantBytesPerWeight(q: Quantization): number {
  if (q.method === "fp8" || (q.method === "compressed-tensors" && q.float))
    return 1 + (q.groupSize > 0 ? 4 / q.groupSize : 0);
  if (q.method === "bitsandbytes")
    return q.bits === 8 ? 1 : 0.5 + (q.doubleQuant ? 1 / 64 + 4 / (64 * 256) : 4 / 64);
  return q.bits / 8 + (q.groupSize > 0 ? (2 + q.bits / 8) / q.groupSize : 0);
}

function linearBytes(params: number, bytes: number, q: Quantization | undefined): number {
  return q ? params * quantBytesPerWeight(q) : params * bytes;
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
  const mlp = m.moe
    ? linearBytes((m.moe.experts * 3 * H * m.moe.expertIntermediateSize) / tp, b, q4) +
      H * m.moe.experts * b // the router stays unquantized and replicated
    : linearBytes((3 * H * m.intermediateSize) / tp, b, q4); // gate, up, down
  const perLayer =
    linearBytes((H * q) / tp, b, q4) + // q_proj
    2 * linearBytes(H * kvPerRank, b, q4) + // k_proj, v_proj (replicated heads when tp > kvHeads)
    linearBytes((q * H) / tp, b, q4) + // o_proj
    mlp +
    (m.qkvBias ? (q / tp + 2 * kvPerRank) * b : 0) + // qkv biases (Qwen2, Qwen2.5)
    (m.qkNorm ? 2 * hd * b : 0) + // q_norm, k_norm (Qwen3)
    2 * H * b; // two RMSNorms, replicated
  const embedding = (m.vocabSize * H * b) / tp;
  const lmHead = m.tiedEmbeddings ? 0 : embedding;
  return { perLayer, embedding, lmHead, vision: m.vision ? visionBytes(m.vision, H, b) / tp : 0 };
}

/** Vision tower parameters (never quantized in the official repos). */
export function visionParams(v: VisionTower, lmHidden: number): number {
  const E = v.embedDim;
  const M = v.mlpHiddenSize;
  const norm = v.layerNorm ? 2 : 1;
  const mlp = v.gatedMlp ? 2 * (E * M + M) + M * E + E : E * M + M + M * E + E;
  const block = E * 3 * E + 3 * E + E * E + E + mlp + 2 * norm * E;
  const patchEmbed =
    3 * v.temporalPatchSize * v.patchSize * v.patchSize * E + (v.kind === "qwen3-vl" ? E : 0);
  const mergedIn = E * v.spatialMergeSize * v.spatialMergeSize;
  const mergerMlp = mergedIn * mergedIn + mergedIn + mergedIn * lmHidden + lmHidden;
  const merger = norm * E + mergerMlp;
  // DeepStack mergers normalise the merged 4E vector (Qwen3-VL `use_postshuffle_norm`).
  const deepstack = v.deepstackMergers * (norm * mergedIn + mergerMlp);
  return v.depth * block + patchEmbed + v.positionEmbeddings * E + merger + deepstack;
}

export function visionBytes(v: VisionTower, lmHidden: number, bytes: number): number {
  return visionParams(v, lmHidden) * bytes;
}

/** Whole-model parameters (unquantized count), for the published-size checks. */
export function modelParams(m: ModelSpec): number {
  const H = m.hiddenSize;
  const q = m.attentionHeads * m.headDim;
  const kv = m.kvHeads * m.headDim;
  const mlp = m.moe
    ? m.moe.experts * 3 * H * m.moe.expertIntermediateSize + H * m.moe.experts
    : 3 * H * m.intermediateSize;
  const layer =
    H * q +
    2 * H * kv +
    q * H +
    mlp +
    (m.qkvBias ? q + 2 * kv : 0) +
    (m.qkNorm ? 2 * m.headDim : 0) +
    2 * H;
  const embeddings = m.vocabSize * H * (m.tiedEmbeddings ? 1 : 2);
  return m.layers * layer + embeddings + H + (m.vision ? visionParams(m.vision, H) : 0);
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

/**
 * `VLLM_FUSED_MOE_CHUNK_SIZE`'s default: tokens a fused-MoE call takes at once (envs.py): 32768 up
 * to 0.11.x, 16384 from 0.12.0 to 0.17.x; gone from 0.18.0, whose fused_experts_impl takes all.
 */
export function fusedMoeChunk(version: { readonly major: number; readonly minor: number }): number {
  if (version.major === 0 && version.minor < 12) return 32768;
  if (version.major === 0 && version.minor < 18) return 16384;
  return Number.POSITIVE_INFINITY;
}

/**
 * Peak activation of a MoE decoder layer on `tokens` tokens, from vLLM's Triton fused-MoE path
 * (fused_moe.py `fused_experts_impl`, 0.11.0/0.13.0; 0.27.0's modular kernel holds the same two
 * buffers in one workspace): per token of a chunk, the gate/up output and the down output sharing
 * one cache of topk × max(2I/TP, H), the activated topk × I/TP, the router logits (E) in the
 * activation dtype, and topk weights and ids (12 B each); plus the residual and attention buffers
 * of a dense layer (3 × hidden). M = min(tokens, the fused-MoE chunk).
 */
export function moeActivationBytes(
  m: ModelSpec,
  tokens: number,
  tp: number,
  actBytes: number,
  chunk: number,
): number {
  const e = m.moe!;
  const M = Math.min(tokens, chunk);
  const shard = e.expertIntermediateSize / tp;
  const perToken =
    actBytes * e.activeExperts * Math.max(2 * shard, m.hiddenSize) +
    actBytes * e.activeExperts * shard +
    actBytes * e.experts +
    12 * e.activeExperts;
  return M * perToken + tokens * 3 * m.hiddenSize * actBytes;
}

/**
 * Bytes per element of the sampler's dummy run on max_num_seqs × vocab logits (vLLM V1
 * gpu_model_runner `_dummy_sampler_run`: temperature 0.5, top-k vocab − 1, top-p 0.9):
 *  - V1 runner, PyTorch's top-k/top-p (v1/sample/ops/topk_topp_sampler.py `apply_top_k_top_p`):
 *    the bf16 logits (2), their fp32 copy (4), the sorted values (4) and int64 indices (8), the
 *    masks (1 + 1), the softmaxed sort (4) and the scattered result (4) all alive at once: 28 B,
 *    a floor; torch's full segmented sort holds two int2 buffers (16 B) and cub's storage on top
 *    while it sorts, ⚠ about 39 B as the MoE log C05 shows (test/plan-calibration-vl.test.ts).
 *  - V1 runner with FlashInfer's kernels (`flashinferSampler`): masked logits and probabilities,
 *    14 B.
 *  - V2 runner: the bf16 logits only (its dummy batch skips top-k/top-p; v1/worker/gpu
 *    sample/sampler.py returns the logits untouched): 2 B.
 *  - V0: 4 B (one fp32 copy; calibrated with the text-only logs).
 */
export function samplerBytesPerElement(
  engine: "v0" | "v1",
  runner: "v1" | "v2",
  flashinfer: boolean,
): number {
  if (engine === "v0") return 4;
  if (runner === "v2") return 2;
  return flashinfer ? 14 : SORTING_SAMPLER_BYTES;
}
export const SORTING_SAMPLER_BYTES = 39;

/**
 * Vision tower peak on `patches` patches (pre-merge): the measured bytes per patch at TP 1
 * (catalogs/models.ts `activationBytesPerPatch`, bf16), whose sharded part (qkv, rotary, MLP)
 * divides by TP while the residual stream (2 × embed) stays whole on every rank.
 */
export function encoderActivationBytes(
  v: VisionTower,
  patches: number,
  tp: number,
  actBytes: number,
): number {
  const replicated = 2 * v.embedDim * 2;
  const perPatch = (v.activationBytesPerPatch - replicated) / tp + replicated;
  return patches * perPatch * (actBytes / 2);
}

/** How a release sizes the profile's image with most features (VllmFeatures.mostFeaturesImage). */
export type ImageSizing = "square" | "factor-pair";

/**
 * The image with most visual tokens under `maxPixels`, in whole merged patches (unit = patch ×
 * merge px):
 *  - "factor-pair", what the processor allows a request: ⌊maxPixels / unit²⌋ merged patches (or the
 *    most below that) factored into the squarest pair whose aspect ratio is ≤ 200, which
 *    `smart_resize` leaves as it is; vLLM's profile from 0.13.0 (qwen2_vl.py
 *    `get_image_size_with_most_features`, `closest_factor_pair`). 1003520 px → 32 × 40 = 1280 tokens.
 *  - "square", vLLM's profile up to 0.12.0: `smart_resize(9999999, 9999999)`, a square of
 *    ⌊√maxPixels / unit⌋ merged patches a side. 1003520 px → 35² = 1225 tokens.
 */
export function mostFeaturesImage(
  v: Pick<VisionTower, "patchSize" | "spatialMergeSize">,
  maxPixels: number,
  how: ImageSizing = "factor-pair",
): { width: number; height: number; tokens: number } {
  const unit = v.patchSize * v.spatialMergeSize;
  if (how === "square") {
    const side = Math.max(1, Math.floor(Math.sqrt(maxPixels) / unit));
    return { width: side * unit, height: side * unit, tokens: side * side };
  }
  for (let n = Math.max(1, Math.floor(maxPixels / (unit * unit))); n >= 1; n--) {
    let d = Math.floor(Math.sqrt(n));
    while (n % d !== 0) d--;
    if (n / d / d <= 200) return { width: unit * (n / d), height: unit * d, tokens: n };
  }
  return { width: unit, height: unit, tokens: 1 };
}

/** Visual tokens of the image with most features under `maxPixels` (`mostFeaturesImage`). */
export function maxImageTokens(
  v: Pick<VisionTower, "patchSize" | "spatialMergeSize">,
  maxPixels: number,
  how: ImageSizing = "factor-pair",
): number {
  return mostFeaturesImage(v, maxPixels, how).tokens;
}

/** Python's round(): halves to even (smart_resize rounds with it). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The size the Qwen2-VL processor resizes a `width` × `height` image to: each side a multiple of
 * patch × merge, the area brought within [minPixels, maxPixels] with the aspect ratio kept
 * (transformers' qwen2_vl image processing `smart_resize`, which vLLM's processor calls).
 */
export function smartResize(
  v: Pick<VisionTower, "patchSize" | "spatialMergeSize">,
  width: number,
  height: number,
  maxPixels: number,
  minPixels: number = DEFAULT_MIN_PIXELS,
): { width: number; height: number } {
  const factor = v.patchSize * v.spatialMergeSize;
  let h = roundHalfEven(height / factor) * factor;
  let w = roundHalfEven(width / factor) * factor;
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return { width: w, height: h };
}

/** Visual tokens (after the merge) of one `width` × `height` image: its smart_resize'd patches. */
export function imageTokens(
  v: Pick<VisionTower, "patchSize" | "spatialMergeSize">,
  width: number,
  height: number,
  maxPixels: number,
  minPixels: number = DEFAULT_MIN_PIXELS,
): number {
  const r = smartResize(v, width, height, maxPixels, minPixels);
  return ((r.width / v.patchSize) * (r.height / v.patchSize)) / v.spatialMergeSize ** 2;
}

/** Visual tokens of a video of `frames` frames at the largest image size (frames padded to pairs). */
export function videoTokens(
  v: VisionTower,
  maxPixels: number,
  frames: number,
  how: ImageSizing = "factor-pair",
): number {
  const padded = frames + (frames % v.temporalPatchSize);
  return Math.max(1, Math.floor(padded / v.temporalPatchSize)) * maxImageTokens(v, maxPixels, how);
}

/**
 * Frames of the dummy video vLLM profiles: the most whose tokens fit `seqLen`, at most 14 for
 * Qwen2-VL/Qwen2.5-VL from 0.11.0 (16 before: `_MAX_FRAMES_PER_VIDEO`) and 24576 for Qwen3-VL,
 * starting from 1 (Qwen3: 2) (qwen2_vl.py `_get_max_video_frames`, `get_num_frames_with_most_features`).
 */
export function profiledVideoFrames(
  v: VisionTower,
  maxPixels: number,
  seqLen: number,
  maxFrames = 14,
  how: ImageSizing = "factor-pair",
): number {
  const cap = v.kind === "qwen3-vl" ? 24576 : maxFrames;
  let n = v.kind === "qwen3-vl" ? 2 : 1;
  while (n < cap && videoTokens(v, maxPixels, n + 1, how) <= seqLen) n++;
  return Math.min(n, cap);
}

/**
 * Qwen3-VL's video processor: at most 25,165,824 px over all frames of a video (its
 * video_preprocessor_config.json size.longest_edge, 12,288 visual tokens of a frame pair; the
 * 2-frame 3520 × 3520 video vLLM 0.11.0 profiles, catalogs/vllm-profile.ts), in 32-px units,
 * frames in pairs (transformers' qwen3_vl video `smart_resize`).
 */
export const QWEN3_VIDEO_MAX_PIXELS = 12288 * 32 * 32 * 2;
/** Qwen3-VL's `_MAX_FRAMES_PER_VIDEO` (vLLM qwen3_vl.py). */
export const QWEN3_MAX_VIDEO_FRAMES = 24576;

/**
 * Visual tokens of a Qwen3-VL video of `frames` frames of `width` × `height` px: the video
 * smart_resize shrinks every frame until t·h·w ≤ `maxPixels`, then ⌈frames ÷ 2⌉ × (h/32)·(w/32)
 * (vLLM qwen3_vl.py `_get_vision_info` with the video processor).
 */
export function qwen3VideoTokens(
  width: number,
  height: number,
  frames: number,
  maxPixels: number = QWEN3_VIDEO_MAX_PIXELS,
): number {
  const f = 32;
  let h = roundHalfEven(height / f) * f;
  let w = roundHalfEven(width / f) * f;
  const t = roundHalfEven(frames / 2) * 2;
  if (t * h * w > maxPixels) {
    const beta = Math.sqrt((frames * height * width) / maxPixels);
    h = Math.max(f, Math.floor(height / beta / f) * f);
    w = Math.max(f, Math.floor(width / beta / f) * f);
  }
  return Math.max(1, (frames + (frames % 2)) / 2) * (h / f) * (w / f);
}

const qwen3FramesMemo = new Map<string, number>();
/**
 * Frames of Qwen3-VL's profiled dummy video (vLLM qwen2_vl.py `get_num_frames_with_most_features`
 * with Qwen3's start of 2 and cap of 24,576): the most frames n whose tokens (`qwen3VideoTokens`)
 * stay within `seqLen` as n grows from 2, shared among `videoLimit` videos.
 */
export function qwen3ProfiledVideoFrames(
  width: number,
  height: number,
  seqLen: number,
  videoLimit: number,
  maxPixels: number = QWEN3_VIDEO_MAX_PIXELS,
): number {
  const key = `${width}x${height}/${seqLen}/${videoLimit}/${maxPixels}`;
  const known = qwen3FramesMemo.get(key);
  if (known !== undefined) return known;
  const cap = QWEN3_MAX_VIDEO_FRAMES * Math.max(1, videoLimit);
  let n = 2;
  // Once frames are shrunk to one 32-px unit, tokens are ⌈n ÷ 2⌉: the loop would end at 2·seqLen.
  while (n < cap && qwen3VideoTokens(width, height, n + 1, maxPixels) <= seqLen) {
    if (
      n > QWEN3_MAX_VIDEO_FRAMES + 2 &&
      qwen3VideoTokens(width, height, n, maxPixels) === Math.ceil(n / 2)
    ) {
      n = Math.min(cap, Math.max(n, 2 * seqLen));
      break;
    }
    n++;
  }
  const frames = Math.max(
    1,
    Math.min(Math.floor(n / Math.max(1, videoLimit)), QWEN3_MAX_VIDEO_FRAMES),
  );
  qwen3FramesMemo.set(key, frames);
  return frames;
}

/** CUDA graphs for decode batch sizes up to 256/512: grows with layers on the rank. ⚠ estimate. */
export function cudaGraphBytes(layersOnRank: number): number {
  return (0.3 + 0.012 * layersOnRank) * GiB;
}
