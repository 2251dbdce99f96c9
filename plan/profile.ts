/**
 * Memory per rank as vLLM's startup profile will find it: the encoder profile and the KV cache.
 */
import { vllmDefaults } from "../catalogs/vllm";
import { VLLM_PROFILE } from "../catalogs/vllm-profile";
import {
  tableBatchDefaults,
  tableProfile,
  type ProfileTable,
} from "../catalogs/vllm-profile-table";
import {
  CUDA_CONTEXT_GiB,
  DTYPE_BYTES,
  GiB,
  NON_TORCH_DISTRIBUTED_GiB,
  NON_TORCH_GiB,
  cudaGraphBytes,
  decoderActivationBytes,
  fusedMoeChunk,
  moeActivationBytes,
  samplerBytesPerElement,
  encoderActivationBytes,
  kvBytesPerToken,
  QWEN3_VIDEO_MAX_PIXELS,
  maxImageTokens,
  mostFeaturesImage,
  processorMaxPixels,
  profiledVideoFrames,
  qwen3ProfiledVideoFrames,
  qwen3VideoTokens,
  videoTokens,
  layersPerStage,
  weightShare,
} from "./memory";
import type { KvCachePlanned, StageMemory, MemoryPlan, ProfileSource, Setup } from "./types";

/** What vLLM's profile run sends through the vision tower, per engine (see `profileEncoder`). */
export interface EncoderProfile {
  readonly modality: "image" | "video" | "none";
  readonly items: number;
  /** Merged visual tokens per item (what the decoder sees). */
  readonly tokensPerItem: number;
  /** Video frames of each profiled item (0 for images). */
  readonly frames: number;
  readonly tokensPerImage: number;
  /** V1: min(encoder compute budget, encoder cache size), in the budget's tokens. */
  readonly encoderBudget?: number;
  /** V1: the profiled item's tokens as the budget counts them (Qwen3-VL video up to 0.12: × 12.5). */
  readonly itemBudgetTokens?: number;
  /**
   * V0: the merged visual tokens of each call to the vision tower, in order: the images of all
   * dummy sequences in one call, then their videos in another (qwen2_vl.py / qwen2_5_vl.py
   * `get_input_embeddings_v0`). V1 encodes its whole dummy batch at once.
   */
  readonly towerCalls?: readonly number[];
  /** V0: tokens through the decoder (the whole dummy prompts where they outgrow their share). */
  readonly decoderTokens?: number;
  /** V0: dummy sequences of the profile run, after the multimodal cap (`_dummy_run`). */
  readonly sequences?: number;
  /** V0: how many of the items are videos (the rest are images). */
  readonly videos?: number;
  /** V0 0.7.0–0.8.2: the dummy prompt that outgrew its share and was profiled as text only. */
  readonly droppedPrompt?: { readonly tokens: number; readonly share: number };
}

/**
 * The encoder input of vLLM's memory profile.
 *  - V1 (vllm/v1/worker/utils.py `MultiModalBudget`, gpu_model_runner `profile_run`, 0.11.0): the
 *    modality with the most tokens per item among those whose limit is > 0 — a video of up to 14
 *    frames at the largest image size that fits max_model_len wins unless `"video": 0` — and as
 *    many items as the encoder budget max(max_num_batched_tokens, tokens per item) holds, at most
 *    max_num_seqs × min(limit, max_model_len ÷ tokens per item), at least one.
 *  - V0: one dummy prompt carrying every allowed image (and, from 0.7's processor profiler, one
 *    video in what the images leave of the context).
 */
export function modelledEncoderProfile(s: Setup, tokens: number, seqs: number): EncoderProfile {
  const v = s.model.vision;
  const none = {
    modality: "none",
    items: 0,
    tokensPerItem: 0,
    frames: 0,
    tokensPerImage: 0,
  } as const;
  if (!v || (s.imageLimit <= 0 && s.videoLimit <= 0)) return none;
  const how = s.features.mostFeaturesImage;
  // Up to 0.12.0 Qwen3-VL's dummy image is sized by its image processor's own longest_edge, which
  // max_pixels does not change (qwen3_vl.py `_get_vision_info`); 0.13.0's sizing reads max_pixels.
  const pixels = v.kind === "qwen3-vl" && how === "square" ? processorMaxPixels(v) : s.maxPixels;
  const perImage = maxImageTokens(v, pixels, how);
  const maxFrames = s.features.maxVideoFrames;
  // Up to 0.10.1 the video's frames fit what one image leaves of the context (0.10.2 dropped it).
  const imageFirst = s.features.videoAfterImage;
  if (s.features.engine === "v0") {
    // Every dummy sequence carries each modality at its limit, videos too (0.6.x: images only),
    // and the batch holds as many sequences as max_num_batched_tokens covers, at least one
    // (worker/model_runner.py `_dummy_run`: min(max_num_seqs, tokens // max_mm_tokens)).
    const images = s.imageLimit;
    const videos = s.features.mmProfileMustFitContext ? 0 : Math.max(0, s.videoLimit);
    // get_num_frames_with_most_features: the frames of one video whose tokens fit what the images
    // leave of `seqLen` (`_get_max_video_frames`, two a visual token group), shared among the
    // videos, 1 to _MAX_FRAMES_PER_VIDEO each.
    const framesPerVideo = (seqLen: number, counts = { images, videos }) => {
      const room = seqLen - counts.images * perImage;
      const total = room >= perImage ? 2 * Math.floor(room / perImage) : 0;
      return Math.max(1, Math.min(Math.floor(total / counts.videos), maxFrames));
    };
    const videoItem = (seqLen: number, counts = { images, videos }) =>
      videos > 0 ? videoTokens(v, pixels, framesPerVideo(seqLen, counts), how) : 0;
    // max_mm_tokens (multimodal/registry.py): each limit × its item's most tokens at max_model_len,
    // the item sized with the limits up to 0.8.3 and with one item a modality from 0.8.4
    // (`get_mm_max_tokens(seq_len, {modality: 1})`); each dummy sequence builds its videos with the
    // limits at its share of the batch.
    const itemCounts = s.features.v0MmTokensPerItemAtOne ? { images: 1, videos: 1 } : undefined;
    const mmTokens = images * perImage + videos * videoItem(s.maxModelLen, itemCounts);
    const seqCount = Math.max(1, Math.min(seqs, Math.floor(tokens / Math.max(1, mmTokens))));
    const share = Math.floor(tokens / seqCount);
    const perVideo = videoItem(share);
    // The dummy prompt is the placeholders alone (qwen2_vl.py: image_token × images + video_token
    // × videos, each expanded to its tokens).
    const prompt = images * perImage + videos * perVideo;
    if (
      prompt > share &&
      s.features.v0LongMmProfile === "text-only" &&
      !s.features.mmProfileMustFitContext
    )
      return {
        ...none,
        tokensPerImage: perImage,
        decoderTokens: tokens,
        sequences: seqCount,
        droppedPrompt: { tokens: prompt, share },
      };
    const items = seqCount * (images + videos);
    return {
      modality: videos > 0 && images === 0 ? "video" : "image",
      items,
      tokensPerItem: (seqCount * prompt) / Math.max(1, items),
      frames: videos > 0 ? framesPerVideo(share) : 0,
      tokensPerImage: perImage,
      towerCalls: [seqCount * images * perImage, seqCount * videos * perVideo],
      videos: seqCount * videos,
      // Sequence i is tokens // n (+1 for the first tokens % n) long, or its whole prompt.
      decoderTokens: prompt > share ? seqCount * prompt : tokens,
      sequences: seqCount,
    };
  }
  const videoSeq = imageFirst && s.imageLimit > 0 ? s.maxModelLen - perImage : s.maxModelLen;
  const vid = s.videoLimit > 0 ? modelledVideo(s, v, pixels, videoSeq) : undefined;
  // The encoder budget ranks modalities by their tokens per item as it counts them.
  const imageBudget = s.imageLimit > 0 ? perImage : 0;
  const video =
    vid !== undefined &&
    (vid.budgetTokens > imageBudget ||
      (vid.budgetTokens === imageBudget && s.features.mmTieGoesTo === "video"));
  const perItem = video ? vid.budgetTokens : perImage;
  const limit = video ? s.videoLimit : s.imageLimit;
  const budget = Math.max(tokens, perItem);
  const perPrompt = Math.max(1, Math.min(limit, Math.floor(s.maxModelLen / perItem)));
  const items = Math.max(1, Math.min(Math.floor(budget / perItem), seqs * perPrompt));
  return {
    modality: video ? "video" : "image",
    items,
    tokensPerItem: video ? vid.tokens : perImage,
    frames: video ? vid.frames : 0,
    tokensPerImage: perImage,
    // compute_encoder_budget: both the compute budget and the cache are max(max_num_batched_tokens,
    // the most tokens an item has), 0.11.0 to 0.31.0.
    encoderBudget: budget,
    itemBudgetTokens: perItem,
  };
}

/**
 * The dummy video of V1's profile: frames and visual tokens, and the tokens the encoder budget
 * counts for it.
 *  - Qwen2/2.5-VL: up to 14 frames (16 before 0.11.0) at the image size with most features, as
 *    many as fit `seqLen` (qwen2_vl.py `_get_max_video_frames`).
 *  - Qwen3-VL up to 0.14: frames from 2 up while they fit `seqLen`, at the image size with most
 *    features, each shrunk by its video processor to 25,165,824 px over the video
 *    (`qwen3ProfiledVideoFrames`); up to 0.12.0 the budget counts 12.5 tokens a visual token (its
 *    timestamps, qwen3_vl.py `get_max_video_tokens`), so the video outranks a 16,384-token image.
 *  - Qwen3-VL from 0.15.0: visual tokens of a frame pair under half of max_pixels (or of the video
 *    processor's cap) — half the image's, so the image outranks it, as in every row of 0.19.1's
 *    and 0.31.0's table; its own size matters only with imageLimit 0 ⚠.
 */
function modelledVideo(
  s: Setup,
  v: NonNullable<Setup["model"]["vision"]>,
  pixels: number,
  seqLen: number,
): { frames: number; tokens: number; budgetTokens: number } {
  const how = s.features.mostFeaturesImage;
  if (v.kind === "qwen3-vl" && s.features.qwen3VideoSizing !== "half-pixels") {
    const base = mostFeaturesImage(v, pixels, how);
    // One video per prompt: the budget and the dummy item are built with {video: 1} (multimodal
    // registry `get_max_tokens_per_item_by_modality`, gpu_model_runner `_get_mm_dummy_batch`).
    const frames = qwen3ProfiledVideoFrames(base.width, base.height, seqLen, 1);
    const tokens = qwen3VideoTokens(base.width, base.height, frames);
    const timestamps = s.features.qwen3VideoSizing === "timestamps";
    return { frames, tokens, budgetTokens: timestamps ? Math.floor(tokens * 12.5) : tokens };
  }
  if (v.kind === "qwen3-vl") {
    // A frame pair at the image size with most features under half the video's pixels (0.19.1's
    // get_max_video_tokens: max_pixels, else the video processor's longest_edge, ÷ temporal patch):
    // at or above what vLLM builds (490 / 980 / 12,288 tokens where 0.19.1 says 475 / 972 / 12,288).
    const cap = s.maxPixelsSet === false ? QWEN3_VIDEO_MAX_PIXELS : s.maxPixels;
    const tokens = maxImageTokens(v, Math.floor(cap / 2), how);
    return { frames: 2, tokens, budgetTokens: tokens };
  }
  const frames = profiledVideoFrames(v, pixels, seqLen, s.features.maxVideoFrames, how);
  const tokens = videoTokens(v, pixels, frames, how);
  return { frames, tokens, budgetTokens: tokens };
}

/** Where a profile input came from: the release's row of the table, computed by vLLM's code. */
function fromTable(t: ProfileTable, s: Setup): ProfileSource {
  return { source: "vllm", computedWith: t[s.features.version.text]!.computedWith };
}
const MODELLED: ProfileSource = { source: "modelled" };

/**
 * max_num_batched_tokens and max_num_seqs as vLLM resolves them: the stack's, or vLLM's defaults
 * for `vllm serve` on the card — from the table (EngineArgs run on that card's name and memory)
 * where it has the release, card and max_model_len and neither is set, else modelled
 * (`vllmDefaults`). V1 only: the table holds no V0 engine.
 */
export function batchSizes(
  s: Setup,
  t: ProfileTable = VLLM_PROFILE,
): { tokens: number; seqs: number; from: ProfileSource } {
  const row =
    s.features.engine === "v1" && s.maxNumBatchedTokens === undefined && s.maxNumSeqs === undefined
      ? tableBatchDefaults(
          t,
          s.features.version.text,
          s.model.architecture,
          s.gpu.name,
          s.maxModelLen,
        )
      : undefined;
  if (row) return { tokens: row.maxNumBatchedTokens, seqs: row.maxNumSeqs, from: fromTable(t, s) };
  const d = vllmDefaults(
    s.features,
    s.gpu.memoryGiB,
    s.maxModelLen,
    s.gpu.name,
    Boolean(s.model.vision),
  );
  const given = s.maxNumBatchedTokens !== undefined && s.maxNumSeqs !== undefined;
  return {
    tokens: s.maxNumBatchedTokens ?? d.maxNumBatchedTokens,
    seqs: s.maxNumSeqs ?? d.maxNumSeqs,
    from: given ? { source: "stack" } : MODELLED,
  };
}

/**
 * What the profile run encodes: the table's row for the release and these exact settings (vLLM's
 * MultiModalBudget and dummy-inputs builder), else `modelledEncoderProfile`. Where both exist and
 * differ, the table is what vLLM does.
 */
export function profileEncoder(
  s: Setup,
  tokens: number,
  seqs: number,
  t: ProfileTable = VLLM_PROFILE,
): EncoderProfile & { from: ProfileSource; encoderBudget?: number } {
  const v = s.model.vision;
  const row =
    v && s.features.engine === "v1" && (s.imageLimit > 0 || s.videoLimit > 0)
      ? tableProfile(t, s.features.version.text, {
          architecture: s.model.architecture,
          maxModelLen: s.maxModelLen,
          imageLimit: s.imageLimit,
          videoLimit: s.videoLimit,
          maxPixels: s.maxPixelsSet === false ? null : s.maxPixels,
          maxNumBatchedTokens: tokens,
          maxNumSeqs: seqs,
        })
      : undefined;
  if (!row) return { ...modelledEncoderProfile(s, tokens, seqs), from: MODELLED };
  const item = row.item;
  return {
    modality: row.modality,
    items: row.items,
    tokensPerItem: item?.tokens ?? 0,
    frames: item?.frames ?? 0,
    tokensPerImage:
      row.budgetTokensPerItem.image ??
      maxImageTokens(v!, s.maxPixels, s.features.mostFeaturesImage),
    from: fromTable(t, s),
    encoderBudget: Math.min(row.encoderComputeBudget, row.encoderCacheSize),
    ...(row.modality !== "none" && row.budgetTokensPerItem[row.modality] !== undefined
      ? { itemBudgetTokens: row.budgetTokensPerItem[row.modality] }
      : {}),
  };
}

/**
 * The model runner vLLM picks (vllm/config/vllm.py): V2 by default for dense models from 0.25.0
 * and MoE models from 0.29.0; V1 before; V0 engines have neither.
 */
export function modelRunner(s: Pick<Setup, "features" | "model">): "v0" | "v1" | "v2" {
  if (s.features.engine === "v0") return "v0";
  return (s.model.moe ? s.features.v2RunnerMoe : s.features.v2RunnerDense) ? "v2" : "v1";
}

/** Whether the runner takes its CUDA-graph estimate out of the KV-cache budget. */
export function cudaGraphsInBudget(s: Pick<Setup, "features" | "model">): boolean {
  const runner = modelRunner(s);
  if (runner === "v2") return s.features.v2CudaGraphsInBudget;
  return runner === "v1" && s.features.cudaGraphsInBudget;
}

export function planMemory(s: Setup): MemoryPlan {
  const { tokens, seqs, from: batchFrom } = batchSizes(s);
  const enc = profileEncoder(s, tokens, seqs);
  const graphSizes = VLLM_PROFILE[s.features.version.text]?.cudaGraphSizes[`${seqs}/${tokens}`];
  const hasVision = enc.items > 0;
  const visualTokens = enc.items * enc.tokensPerItem;
  const act = DTYPE_BYTES[s.dtype];
  const kvPerLayerScale = s.kvBytes;
  const w = weightShare(s.model, s.tp, s.dtype);
  const layers = layersPerStage(s.model.layers, s.pp);
  const capacity = s.gpu.memoryGiB;
  const budget = capacity * s.util;
  const distributed = s.tp * s.pp > 1;
  const runner = modelRunner(s);
  const v1 = s.features.engine === "v1";
  const graphsInBudget = cudaGraphsInBudget(s);
  // Qwen3-VL's model allocates deepstack_num_level × [max_num_batched_tokens, hidden] input buffers
  // in __init__ (qwen3_vl.py; 0.11.0 only with the tower built, 0.31.0 always): vLLM counts them
  // in "Model loading took", the plan with what the profile reserves (the weights stay the
  // checkpoint's), on the safe side whatever the limits.
  const deepstack = s.model.vision
    ? s.model.vision.deepstackMergers * tokens * s.model.hiddenSize * act
    : 0;

  const stages: StageMemory[] = layers.map((n, i) => {
    const first = i === 0;
    const last = i === layers.length - 1;
    // Tied embeddings share the embedding matrix unless the LM head sits on another stage.
    const lmHead = s.model.tiedEmbeddings ? (s.pp > 1 ? w.embedding : 0) : w.lmHead;
    // vLLM builds `self.visual` on every rank, pipeline stages included, unless both the image and
    // the video limit are 0 (qwen2_vl.py / qwen2_5_vl.py / qwen3_vl.py __init__, vLLM 0.11.0).
    const tower = s.imageLimit > 0 || s.videoLimit > 0 ? w.vision : 0;
    const weights =
      s.weightsScale * (n * w.perLayer + (first ? w.embedding : 0) + tower + (last ? lmHead : 0));
    // V1's model runner runs the dummy encoder batch on every rank; V0, and V2 from 0.27.0, only
    // where the inputs are embedded (the first stage); V2 before 0.27 not at all.
    const encodes = runner === "v1" || (first && (runner === "v0" || s.features.v2ProfilesEncoder));
    const decoderTokens = enc.decoderTokens ?? tokens;
    const decoder = s.model.moe
      ? moeActivationBytes(s.model, decoderTokens, s.tp, act, fusedMoeChunk(s.features.version))
      : decoderActivationBytes(s.model, decoderTokens, s.tp, act);
    // The sampler's dummy run on min(max_num_seqs, tokens) rows of logits, on every TP rank of the
    // last stage (V1 gathers the logits), beside the decoder's hidden states (V1); V0 samples the
    // last token of each dummy sequence.
    const rows = v1 ? Math.min(seqs, tokens) : (enc.sequences ?? seqs);
    const sampler = last
      ? rows *
          s.model.vocabSize *
          samplerBytesPerElement(
            s.features.engine,
            runner === "v2" ? "v2" : "v1",
            s.features.flashinferSampler,
          ) +
        (v1 ? tokens * s.model.hiddenSize * act : 0)
      : 0;
    const v = s.model.vision;
    const merge = v ? v.spatialMergeSize ** 2 : 0;
    // V0 moves every dummy item's pixel values to the GPU before the forward (3 × temporal patch ×
    // patch² values a patch, `MultiModalKwargs.as_kwargs`): float32 as the HF processor made them
    // up to 0.8.x, cast to the model's dtype from 0.9.0 (as_kwargs(dtype=...), then
    // `maybe_cast_dtype`); they stay alive through the decoder's run (forward's kwargs).
    const pixelBytes =
      encodes && v && hasVision && enc.towerCalls
        ? 3 * v.temporalPatchSize * v.patchSize ** 2 * (s.features.mmInputsInModelDtype ? act : 4)
        : 0;
    const heldPixels = pixelBytes * visualTokens * merge;
    let encoder = 0;
    if (encodes && v && hasVision && enc.towerCalls) {
      // V0: each call beside the prompt's inputs_embeds, the embeddings of the calls before it and
      // the other items' pixel values.
      const embeds = (enc.decoderTokens ?? tokens) * s.model.hiddenSize * act;
      let before = 0;
      for (const call of enc.towerCalls) {
        if (call <= 0) continue;
        const peak =
          encoderActivationBytes(v, call * merge, s.tp, act) +
          embeds +
          before * s.model.hiddenSize * act +
          pixelBytes * (visualTokens - call) * merge;
        encoder = Math.max(encoder, peak);
        before += call;
      }
    } else if (encodes && v && hasVision)
      encoder = encoderActivationBytes(v, visualTokens * merge, s.tp, act);
    // V1 keeps the dummy encoder outputs in its encoder cache through the decoder's and the
    // sampler's dummy runs, each padded to the encoder budget (0.11.x) or to the item's budget
    // tokens (0.12.x) where shorter.
    const padTo =
      s.features.encoderOutputPadding === "budget"
        ? enc.encoderBudget
        : s.features.encoderOutputPadding === "item"
          ? enc.itemBudgetTokens
          : undefined;
    const keptTokens =
      padTo !== undefined ? enc.items * Math.max(padTo, enc.tokensPerItem) : visualTokens;
    // Qwen3-VL's tower returns each token with its deepstack features concatenated:
    // out_hidden × (1 + deepstack levels) (qwen3_vl.py Qwen3_VisionTransformer.forward).
    const outputWidth = s.model.hiddenSize * (1 + (v?.deepstackMergers ?? 0));
    // (V0 merges them into the prompt's inputs_embeds, which the decoder's figure counts.)
    const encoderOutputs =
      encodes && hasVision && !enc.towerCalls ? keptTokens * outputWidth * act : 0;
    // The peak of the profile run: the encoder's own, or the kept outputs beside the decoder's
    // dummy run or the sampler's (no empty_cache or peak reset between them: gpu_model_runner
    // profile_run, 0.11.0–0.31.0).
    const activation =
      Math.max(encoder, decoder + encoderOutputs + heldPixels, sampler + encoderOutputs) +
      deepstack;
    const nonTorch = (NON_TORCH_GiB + (distributed ? NON_TORCH_DISTRIBUTED_GiB : 0)) * GiB;
    const graphs = s.enforceEager ? 0 : cudaGraphBytes(n);
    const reserved = activation + nonTorch + (graphsInBudget ? graphs : 0);
    const kvBytes = Math.max(0, budget * GiB - weights - reserved);
    const perToken = kvBytesPerToken(s.model, n, s.tp, kvPerLayerScale);
    const blocks = Math.floor(kvBytes / (perToken * s.blockSize));
    return {
      stage: i,
      layers: n,
      capacityGiB: capacity,
      budgetGiB: budget,
      weightsGiB: weights / GiB,
      activationGiB: activation / GiB,
      nonTorchGiB: nonTorch / GiB,
      cudaGraphGiB: graphs / GiB,
      reservedGiB: reserved / GiB,
      kvCacheGiB: kvBytes / GiB,
      kvBytesPerToken: perToken,
      kvCacheTokens: blocks * s.blockSize,
    };
  });
  const kvCacheTokens = Math.min(...stages.map((st) => st.kvCacheTokens));
  return {
    stages,
    kvCacheTokens,
    maxConcurrency: kvCacheTokens / s.maxModelLen,
    fits: kvCacheTokens > 0 && kvCacheTokens >= s.maxModelLen,
    profile: {
      maxNumBatchedTokens: tokens,
      maxNumSeqs: seqs,
      tokensPerImage: enc.tokensPerImage,
      modality: enc.modality,
      itemsProfiled: enc.items,
      tokensPerItem: enc.tokensPerItem,
      videoFrames: enc.frames,
      ...(enc.encoderBudget !== undefined ? { encoderBudget: enc.encoderBudget } : {}),
      ...(enc.droppedPrompt ? { droppedPrompt: enc.droppedPrompt } : {}),
      ...(enc.videos && enc.videos < enc.items ? { videosProfiled: enc.videos } : {}),
      ...(graphSizes && !s.enforceEager
        ? { cudaGraphCaptureSizes: { count: graphSizes.length, largest: graphSizes.at(-1)! } }
        : {}),
      sources: { batch: batchFrom, encoder: enc.from },
    },
    headroomGiB: capacity * (1 - s.util) - CUDA_CONTEXT_GiB,
    runner,
    cudaGraphsInBudget: graphsInBudget,
  };
}

/** vLLM's CPU build's block size when `--block-size` is not given (vllm/platforms/cpu.py, 0.31.0). */
export const CPU_DEFAULT_BLOCK_SIZE = 128;

/**
 * The KV cache vLLM reports at startup, as the readiness gate and verify compare it.
 *  - The CUDA build: the memory plan's tokens (its error band applies).
 *  - The CPU build with VLLM_CPU_KVCACHE_SPACE=G: exactly G GiB (vllm/platforms/cpu.py sets
 *    cache_config.kv_cache_memory_bytes = int(G) × 2^30), cut into blocks of every layer the rank
 *    holds (v1/core/kv_cache_utils.py: bytes // page size // layers), the page being block_size ×
 *    the per-token bytes; blocks of 128 unless `--block-size` is rendered. The tokens it logs
 *    ("CPU KV cache size: N tokens") and exports (cache_config_info's kv_cache_size_tokens) are
 *    int(blocks ÷ ⌈max_model_len ÷ block_size⌉ × max_model_len) (get_kv_cache_capacity), the
 *    smallest over pipeline stages.
 */
export function plannedKvCache(
  s: Setup,
  memory: MemoryPlan,
  cpuKvCacheGiB: number | undefined,
): KvCachePlanned {
  if (cpuKvCacheGiB === undefined)
    return {
      tokens: memory.kvCacheTokens,
      device: "gpu",
      how: "the memory plan (GPU memory × utilization − weights − the profile's reserve)",
    };
  // The renderer leaves --block-size out at its GPU default (16): vLLM's CPU build then picks its own.
  const blockSize = s.blockSize === 16 ? CPU_DEFAULT_BLOCK_SIZE : s.blockSize;
  const perRequest = Math.ceil(s.maxModelLen / blockSize);
  const stages = memory.stages.map((st) => {
    const blocks = Math.floor((cpuKvCacheGiB * GiB) / (st.kvBytesPerToken * blockSize));
    return Math.floor((blocks / perRequest) * s.maxModelLen);
  });
  const perToken = Math.max(...memory.stages.map((st) => st.kvBytesPerToken));
  return {
    tokens: Math.min(...stages),
    device: "cpu",
    cpuKvCacheGiB,
    how: `VLLM_CPU_KVCACHE_SPACE=${cpuKvCacheGiB} GiB ÷ ${perToken} B per token, in blocks of ${blockSize} (vLLM's CPU build)`,
  };
}
