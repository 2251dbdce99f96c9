/**
 * The plan: typed config + catalogs → everything the deployment needs to know, with no I/O.
 * A plan that cannot work fails here, before any resource exists: `planStack` throws a ConfigError
 * listing every problem; a plan whose model does not fit comes back with `fits: false`, the numbers
 * and the ways out, and the callers (Pulumi program, `plan`, `fit`) refuse to go on.
 */
import { AMIS } from "../catalogs/amis";
import { GPUS, supportsBf16, type Gpu } from "../catalogs/gpus";
import { INSTANCE_TYPES, vcpuQuota, PRICES_AS_OF } from "../catalogs/instances";
import {
  MIN_VLLM_FOR,
  awqVariantOf,
  quantizedVariantsOf,
  type ModelSpec,
  type Quantization,
} from "../catalogs/models";
import { CLUSTER_PORTS, PORTS, type PortName } from "../catalogs/ports";
import { VLLM_FLAG_SPANS, VLLM_FLAGS_READ_UP_TO, VLLM_SHORT_FLAGS } from "../catalogs/vllm-flags";
import {
  NEWEST_VERIFIED_VLLM,
  compareVersions,
  parseVersion,
  unreleasedProblem,
  vllmDefaults,
  vllmFeatures,
  type VllmFeatures,
} from "../catalogs/vllm";
import { describeExposure, exposure } from "../config/cidr";
import { ConfigError, closest, type Issue } from "../config/errors";
import { parseSections } from "../config/parse";
import type { HostConfig, StackConfig, VllmConfig } from "../config/schema";
import {
  CUDA_CONTEXT_GiB,
  DEFAULT_MAX_PIXELS,
  DTYPE_BYTES,
  GiB,
  NON_TORCH_DISTRIBUTED_GiB,
  NON_TORCH_GiB,
  PIXELS_PER_VISUAL_TOKEN,
  checkpointBytes,
  cudaGraphBytes,
  decoderActivationBytes,
  encoderActivationBytes,
  kvBytesPerToken,
  maxImageTokens,
  profiledVideoFrames,
  videoTokens,
  layersPerStage,
  weightShare,
  type Dtype,
} from "./memory";
import { resolveModel } from "./model";
import { RENDERED_FLAGS, modelDir, renderVllmArgs } from "./vllm-args";

// ---- types ---------------------------------------------------------------------------------

export interface StageMemory {
  readonly stage: number;
  readonly layers: number;
  readonly capacityGiB: number;
  readonly budgetGiB: number;
  readonly weightsGiB: number;
  readonly activationGiB: number;
  readonly nonTorchGiB: number;
  readonly cudaGraphGiB: number;
  /** Memory vLLM keeps back from the KV cache: activation peak + non-torch (+ CUDA graphs ≥ 0.21). */
  readonly reservedGiB: number;
  readonly kvCacheGiB: number;
  readonly kvBytesPerToken: number;
  readonly kvCacheTokens: number;
}

export interface MemoryPlan {
  readonly stages: readonly StageMemory[];
  readonly kvCacheTokens: number;
  readonly maxConcurrency: number;
  readonly fits: boolean;
  readonly profile: {
    readonly maxNumBatchedTokens: number;
    readonly maxNumSeqs: number;
    readonly tokensPerImage: number;
    /** What the profile run sends through the vision tower (see `profileEncoder`). */
    readonly modality: "image" | "video" | "none";
    readonly itemsProfiled: number;
    readonly tokensPerItem: number;
    readonly videoFrames: number;
  };
  /** CUDA graphs captured outside the budget must fit in what utilization leaves free. */
  readonly headroomGiB: number;
}

export interface PlanNode {
  readonly name: string;
  readonly role: "head" | "worker";
  readonly replica: number;
  /** Pipeline stage this node runs (its index within the replica). */
  readonly stage: number;
  readonly gpus: number;
  readonly host?: HostConfig;
}

export interface PlannedPort {
  readonly name: PortName;
  readonly port: number;
  /** api: reachable from apiCidrs; cluster: between members only; local: on the node only. */
  readonly exposure: "api" | "cluster" | "local";
}

export interface Plan {
  readonly stack?: string;
  readonly model: {
    readonly id: string;
    readonly revision: string;
    readonly servedModelName: string;
    readonly quantization?: string;
    readonly checkpointGiB: number;
    readonly license: string;
    readonly dir: string;
  };
  readonly target: "aws" | "hosts";
  readonly instanceType?: string;
  readonly region?: string;
  readonly gpu: Gpu;
  readonly gpusPerNode: number;
  readonly nodesPerReplica: number;
  readonly replicas: number;
  readonly nodes: readonly PlanNode[];
  readonly tensorParallelSize: number;
  readonly pipelineParallelSize: number;
  readonly dtype: Dtype;
  readonly vllmVersion: string;
  readonly engine: "v0" | "v1";
  readonly features: VllmFeatures;
  readonly maxModelLen: number;
  readonly gpuMemoryUtilization: number;
  readonly imageLimit: number;
  readonly memory: MemoryPlan;
  readonly fits: boolean;
  readonly kvCacheTokens: number;
  readonly maxConcurrency: number;
  /** The binding (smallest-KV) stage's numbers. */
  readonly perGpu: Pick<StageMemory, "weightsGiB" | "kvCacheGiB" | "reservedGiB" | "capacityGiB">;
  readonly waysOut: readonly string[];
  readonly warnings: readonly string[];
  readonly vllmArgs: readonly string[];
  readonly ports: readonly PlannedPort[];
  readonly rootVolumeGiB: number;
  readonly costPerHourUsd: number;
  readonly costNote: string;
  /** AWS: the vCPU quota the launch draws on and how many vCPUs it needs (all nodes, all replicas). */
  readonly quota?: { readonly name: string; readonly code?: string; readonly vcpus: number };
  readonly driver: { readonly min: string; readonly cuda: string };
  readonly config: StackConfig;
}

// ---- memory --------------------------------------------------------------------------------

export interface Setup {
  readonly model: ModelSpec;
  /** Scales computed weights to a user-given checkpoint size (1 when derived). */
  readonly weightsScale: number;
  readonly gpu: Gpu;
  readonly tp: number;
  readonly pp: number;
  readonly dtype: Dtype;
  readonly kvBytes: number;
  readonly features: VllmFeatures;
  readonly maxModelLen: number;
  readonly util: number;
  readonly imageLimit: number;
  /** Videos per prompt as vLLM sees the limit (0 when `"video": 0` is rendered). */
  readonly videoLimit: number;
  readonly maxPixels: number;
  readonly enforceEager: boolean;
  readonly blockSize: number;
  readonly maxNumBatchedTokens?: number;
  readonly maxNumSeqs?: number;
}

/** What vLLM's profile run sends through the vision tower, per engine (see `profileEncoder`). */
export interface EncoderProfile {
  readonly modality: "image" | "video" | "none";
  readonly items: number;
  /** Merged visual tokens per item (what the decoder sees). */
  readonly tokensPerItem: number;
  /** Video frames of each profiled item (0 for images). */
  readonly frames: number;
  readonly tokensPerImage: number;
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
export function profileEncoder(s: Setup, tokens: number, seqs: number): EncoderProfile {
  const v = s.model.vision;
  const none = {
    modality: "none",
    items: 0,
    tokensPerItem: 0,
    frames: 0,
    tokensPerImage: 0,
  } as const;
  if (!v || (s.imageLimit <= 0 && s.videoLimit <= 0)) return none;
  const perImage = maxImageTokens(v, s.maxPixels);
  const ver = s.features.version;
  const maxFrames = ver.minor >= 11 || ver.major > 0 ? 14 : 16;
  // Up to 0.10.1 the video's frames fit what one image leaves of the context (0.10.2 dropped it).
  const imageFirst = ver.major === 0 && (ver.minor < 10 || (ver.minor === 10 && ver.patch < 2));
  if (s.features.engine === "v0") {
    // Every dummy sequence carries each modality at its limit (0.6.x: images only), and the batch
    // holds as many such sequences as max_num_batched_tokens covers, at least one.
    const images = s.imageLimit;
    const left = s.maxModelLen - images * perImage;
    // (`_get_max_video_frames` starts at one frame, so a video is there even when images fill it.)
    const video = s.videoLimit > 0 && !s.features.mmProfileMustFitContext;
    const frames = video ? profiledVideoFrames(v, s.maxPixels, left, maxFrames) : 0;
    const perSeq = images * perImage + (video ? videoTokens(v, s.maxPixels, frames) : 0);
    const seqCount = Math.max(1, Math.min(seqs, Math.floor(tokens / Math.max(1, perSeq))));
    const items = seqCount * (images + (video ? 1 : 0));
    return {
      modality: video && images === 0 ? "video" : "image",
      items,
      tokensPerItem: (seqCount * perSeq) / Math.max(1, items),
      frames,
      tokensPerImage: perImage,
    };
  }
  const videoSeq = imageFirst && s.imageLimit > 0 ? s.maxModelLen - perImage : s.maxModelLen;
  const frames = s.videoLimit > 0 ? profiledVideoFrames(v, s.maxPixels, videoSeq, maxFrames) : 0;
  const perVideo = frames ? videoTokens(v, s.maxPixels, frames) : 0;
  // Ties go to video (the last of the modalities with the most tokens per item).
  const video = frames > 0 && perVideo >= (s.imageLimit > 0 ? perImage : 0);
  const perItem = video ? perVideo : perImage;
  const limit = video ? s.videoLimit : s.imageLimit;
  const budget = Math.max(tokens, perItem);
  const perPrompt = Math.max(1, Math.min(limit, Math.floor(s.maxModelLen / perItem)));
  const items = Math.max(1, Math.min(Math.floor(budget / perItem), seqs * perPrompt));
  return {
    modality: video ? "video" : "image",
    items,
    tokensPerItem: perItem,
    frames: video ? frames : 0,
    tokensPerImage: perImage,
  };
}

export function planMemory(s: Setup): MemoryPlan {
  const defaults = vllmDefaults(
    s.features,
    s.gpu.memoryGiB,
    s.maxModelLen,
    s.gpu.name,
    Boolean(s.model.vision),
  );
  const tokens = s.maxNumBatchedTokens ?? defaults.maxNumBatchedTokens;
  const seqs = s.maxNumSeqs ?? defaults.maxNumSeqs;
  const enc = profileEncoder(s, tokens, seqs);
  const hasVision = enc.items > 0;
  const visualTokens = enc.items * enc.tokensPerItem;
  const act = DTYPE_BYTES[s.dtype];
  const kvPerLayerScale = s.kvBytes;
  const w = weightShare(s.model, s.tp, s.dtype);
  const layers = layersPerStage(s.model.layers, s.pp);
  const capacity = s.gpu.memoryGiB;
  const budget = capacity * s.util;
  const distributed = s.tp * s.pp > 1;

  const stages: StageMemory[] = layers.map((n, i) => {
    const first = i === 0;
    const last = i === layers.length - 1;
    // Tied embeddings share the embedding matrix unless the LM head sits on another stage.
    const lmHead = s.model.tiedEmbeddings ? (s.pp > 1 ? w.embedding : 0) : w.lmHead;
    const weights =
      s.weightsScale *
      (n * w.perLayer + (first ? w.embedding + w.vision : 0) + (last ? lmHead : 0));
    const decoder = decoderActivationBytes(s.model, tokens, s.tp, act);
    const sampler = last ? seqs * s.model.vocabSize * 4 : 0;
    const v = s.model.vision;
    const patches = visualTokens * (v ? v.spatialMergeSize ** 2 : 0);
    const encoder = first && v && hasVision ? encoderActivationBytes(v, patches, s.tp, act) : 0;
    // V1 keeps the dummy encoder outputs in its encoder cache through the decoder's dummy run.
    const encoderOutputs = first && hasVision ? visualTokens * s.model.hiddenSize * act : 0;
    const activation = Math.max(decoder, sampler, encoder) + encoderOutputs;
    const nonTorch = (NON_TORCH_GiB + (distributed ? NON_TORCH_DISTRIBUTED_GiB : 0)) * GiB;
    const graphs = s.enforceEager ? 0 : cudaGraphBytes(n);
    const reserved = activation + nonTorch + (s.features.cudaGraphsInBudget ? graphs : 0);
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
    },
    headroomGiB: capacity * (1 - s.util) - CUDA_CONTEXT_GiB,
  };
}

// ---- parallelism ---------------------------------------------------------------------------

/** Why `tp` cannot shard `model`, or undefined when it can (vLLM's checks at model load). */
export function tensorParallelProblem(model: ModelSpec, tp: number): string | undefined {
  if (model.attentionHeads % tp !== 0)
    return `does not divide the model's ${model.attentionHeads} attention heads`;
  if (model.kvHeads % tp !== 0 && tp % model.kvHeads !== 0)
    return `neither divides nor is a multiple of the model's ${model.kvHeads} KV heads`;
  if (model.vision && model.vision.numHeads % tp !== 0)
    return `does not divide the vision tower's ${model.vision.numHeads} attention heads`;
  const q = model.quantization;
  if (q && q.groupSize > 0) {
    // Group scales (AWQ/GPTQ/W4A16) must not straddle ranks; FP8 128×128 blocks likewise
    // ("… is not divisible by weight quantization block_n = 128", vLLM fp8.py).
    const unit = q.groupSize >= 128 * 128 ? Math.sqrt(q.groupSize) : q.groupSize;
    const width = model.moe ? model.moe.expertIntermediateSize : model.intermediateSize;
    const shard = width / tp;
    if (!Number.isInteger(shard) || shard % unit !== 0)
      return `splits ${model.moe ? "the experts' intermediate size" : "intermediate_size"} ${width} into ${shard} per GPU, not a multiple of the quantization ${unit === q.groupSize ? "group" : "block"} size ${unit} ("input size is not aligned", QwenLM/Qwen3-VL #231)`;
  }
  return undefined;
}

export function allowedTensorParallelSizes(model: ModelSpec, max = 64): number[] {
  const out: number[] = [];
  for (let tp = 1; tp <= max; tp++) if (!tensorParallelProblem(model, tp)) out.push(tp);
  return out;
}

// ---- quantization ----------------------------------------------------------------------------

/**
 * Why vLLM cannot run this checkpoint's quantization on `gpu` at `tp`, or undefined (with a warning
 * where it runs a slower fallback). Floors are each method's `get_min_capability` in vLLM 0.11.0:
 * awq 7.5 (awq_marlin 8.0), gptq 6.0 (gptq_marlin 8.0), fp8 8.0 with W8A8 from 8.9 and weight-only
 * Marlin below ("use_marlin = not has_device_capability(89)"), compressed-tensors FP8 W8A8 8.9
 * (Marlin W8A16 from 8.0), W4A16/W8A16 8.0, bitsandbytes 7.0; pre-quantized bitsandbytes refuses
 * TP > 1 ("Prequant BitsAndBytes models with tensor parallelism is not supported").
 */
export function quantizationProblem(
  q: Quantization,
  gpu: Gpu,
  tp: number,
  warnings: string[],
): string | undefined {
  const cc = gpu.computeCapability;
  const on = `${gpu.name} (compute capability ${cc})`;
  switch (q.method) {
    case "awq":
      if (cc < 7.5) return `AWQ needs compute capability ≥ 7.5; ${on} has none of its kernels`;
      if (cc < 8.0)
        warnings.push(`AWQ on ${on} runs the plain AWQ kernel (Marlin needs ≥ 8.0): slower`);
      return undefined;
    case "gptq":
      if (cc < 6.0) return `GPTQ needs compute capability ≥ 6.0 (${on})`;
      return undefined;
    case "fp8":
    case "compressed-tensors":
      if (q.method === "compressed-tensors" && !q.float) {
        if (cc < 8.0 && q.bits === 4)
          return `compressed-tensors W4A16 runs on Marlin kernels, compute capability ≥ 8.0; ${on} has none`;
        return undefined;
      }
      if (cc < 8.0)
        return `FP8 weights need compute capability ≥ 8.0 (8.9 for FP8 compute); ${on} cannot load them. Serve the bf16/fp16 model or an AWQ/GPTQ one`;
      if (cc < 8.9)
        warnings.push(
          `${on} has no FP8 compute (needs ≥ 8.9): vLLM runs the FP8 weights weight-only through Marlin, dequantizing to 16 bits`,
        );
      return undefined;
    case "bitsandbytes":
      if (cc < 7.0) return `bitsandbytes needs compute capability ≥ 7.0 (${on})`;
      if (tp > 1)
        return `a pre-quantized bitsandbytes checkpoint cannot be split by tensor parallelism (vLLM: "Prequant BitsAndBytes models with tensor parallelism is not supported. Please try with pipeline parallelism."); set vllm.tensorParallelSize: 1 and use pipeline stages`;
      return undefined;
  }
}

/** "awq-int4", "fp8", "bitsandbytes-nf4", "compressed-tensors-fp8": what the checkpoint holds. */
export function quantizationLabel(q: Quantization): string {
  if (q.method === "fp8") return "fp8";
  if (q.method === "bitsandbytes") return q.bits === 4 ? "bitsandbytes-nf4" : "bitsandbytes-int8";
  if (q.method === "compressed-tensors" && q.float) return "compressed-tensors-fp8";
  return `${q.method}-int${q.bits}`;
}

// ---- dtype ---------------------------------------------------------------------------------

export function resolveDtype(
  requested: VllmConfig["dtype"],
  model: ModelSpec,
  gpu: Gpu,
  notes: string[],
): { dtype?: Dtype; problem?: string } {
  if (requested === "bfloat16" && !supportsBf16(gpu)) {
    return {
      problem: `${gpu.name} (compute capability ${gpu.computeCapability}) has no bf16 (needs ≥ 8.0); use "half" or "auto"`,
    };
  }
  if (requested === "half" || requested === "float16") return { dtype: "float16" };
  if (requested === "bfloat16" || requested === "float32") return { dtype: requested };
  if (model.torchDtype === "bfloat16" && !supportsBf16(gpu)) {
    notes.push(
      `dtype auto → half: ${gpu.name} (compute capability ${gpu.computeCapability}) has no bf16`,
    );
    return { dtype: "float16" };
  }
  return { dtype: model.torchDtype };
}

// ---- hardware ------------------------------------------------------------------------------

interface Hardware {
  gpu: Gpu;
  gpusPerNode: number;
  nodesPerReplica: number;
  replicas: number;
  pricePerNode: number;
  priceNote: string;
  hosts?: readonly HostConfig[];
}

function resolveHardware(c: StackConfig, issues: Issue[]): Hardware | undefined {
  const t = c.target;
  if (t.kind === "aws") {
    const it = INSTANCE_TYPES.get(t.instanceType)!;
    const gpu = GPUS.get(it.gpu)!;
    const spot = t.spot?.enabled;
    // A max price is the price only while spot is on; off, the instance is on-demand.
    const price =
      (spot ? t.spot?.maxPriceUsdPerHour : undefined) ?? t.pricePerHourUsd ?? it.onDemandUsdPerHour;
    if (t.availabilityZone && t.availabilityZone.slice(0, -1) !== t.region)
      issues.push({
        path: "target.availabilityZone",
        value: t.availabilityZone,
        message: `is not a zone of target.region ${t.region}; its zones are named ${t.region}a, ${t.region}b, …`,
      });
    if (t.capacityBlock && !t.capacityReservationId)
      issues.push({
        path: "target.capacityBlock",
        value: true,
        message: "needs target.capacityReservationId: the Capacity Block's reservation id (cr-…)",
      });
    if (t.capacityBlock && t.spot?.enabled)
      issues.push({
        path: "target.spot.enabled",
        value: true,
        message: "a Capacity Block is paid for up front: spot does not apply (remove target.spot)",
      });
    if (t.efa && it.efaInterfaces === 0)
      issues.push({
        path: "target.efa",
        value: true,
        message: `${t.instanceType} has no EFA; types with EFA: ${[...INSTANCE_TYPES.values()]
          .filter((x) => x.efaInterfaces > 0)
          .map((x) => x.name)
          .join(", ")}`,
      });
    return {
      gpu,
      gpusPerNode: it.gpuCount,
      nodesPerReplica: t.nodes,
      replicas: t.replicas,
      pricePerNode: price,
      priceNote: spot
        ? t.spot?.maxPriceUsdPerHour
          ? "spot, at most the configured max price"
          : `spot: the on-demand price (as of ${PRICES_AS_OF}) is the ceiling; spot is usually far lower`
        : t.pricePerHourUsd
          ? "on-demand, configured price"
          : `on-demand, us-east-1 list price as of ${PRICES_AS_OF}`,
    };
  }
  const first = t.hosts[0]!;
  let ok = true;
  t.hosts.forEach((h, i) => {
    if (h.gpu !== first.gpu) {
      issues.push({
        path: `target.hosts[${i}].gpu`,
        value: h.gpu,
        message: `differs from hosts[0] (${first.gpu}); every node of a vLLM cluster needs the same GPU model`,
      });
      ok = false;
    }
    if (h.gpuCount !== first.gpuCount) {
      issues.push({
        path: `target.hosts[${i}].gpuCount`,
        value: h.gpuCount,
        message: `differs from hosts[0] (${first.gpuCount}); every node needs the same GPU count`,
      });
      ok = false;
    }
  });
  const names = new Set<string>();
  t.hosts.forEach((h, i) => {
    if (names.has(h.name)) {
      issues.push({
        path: `target.hosts[${i}].name`,
        value: h.name,
        message: "is used twice; host names must be unique",
      });
      ok = false;
    }
    names.add(h.name);
  });
  if (t.hosts.length % t.replicas !== 0) {
    issues.push({
      path: "target.replicas",
      value: t.replicas,
      message: `must divide the ${t.hosts.length} hosts into equal groups`,
    });
    ok = false;
  }
  if (!ok) return undefined;
  return {
    gpu: GPUS.get(first.gpu)!,
    gpusPerNode: first.gpuCount,
    nodesPerReplica: t.hosts.length / t.replicas,
    replicas: t.replicas,
    pricePerNode: t.pricePerHourUsd,
    priceNote:
      t.pricePerHourUsd > 0
        ? "configured price per host"
        : "existing machines (no price configured)",
    hosts: t.hosts,
  };
}

// ---- the plan ------------------------------------------------------------------------------

export interface PlanOptions {
  readonly stack?: string;
  /** Pulumi config keys that hold secrets; `config:` references are checked against it when given. */
  readonly secretKeys?: ReadonlySet<string>;
  /** Override the GPU (fit --gpu-memory-gib): a card outside the catalog. */
  readonly gpu?: Gpu;
  /** Checkpoint size given by the user when the dimensions cannot give it. */
  readonly weightsGiB?: number;
}

/** Raw sections (as read from Pulumi config or a stack file) → a plan, or every problem at once. */
export function planStack(raw: Readonly<Record<string, unknown>>, opts: PlanOptions = {}): Plan {
  const parsed = parseSections(raw);
  const issues = [...parsed.issues];
  const s = parsed.sections;
  if (issues.length === 0) return planConfig(s as StackConfig, opts);
  // Run the plan's checks on what did parse, so one run reports everything it can.
  const complete =
    s.model && s.target && s.vllm && s.network && s.monitoring && s.secrets && s.provisioning;
  if (!complete && s.model) issues.push(...resolveModel(s.model, []).issues);
  if (complete) {
    try {
      planConfig(s as StackConfig, opts);
    } catch (e) {
      if (e instanceof ConfigError) issues.push(...e.issues);
      else throw e;
    }
  }
  throw new ConfigError(issues);
}

export function planConfig(c: StackConfig, opts: PlanOptions = {}): Plan {
  const issues: Issue[] = [];
  const warnings: string[] = [];
  const v = c.vllm;

  const resolved = resolveModel(c.model, warnings);
  issues.push(...resolved.issues);
  const hw = resolveHardware(c, issues);
  const gpu = opts.gpu ?? hw?.gpu;

  const version = parseVersion(v.version);
  if (!version) {
    issues.push({
      path: "vllm.version",
      value: v.version,
      message: 'must be an exact PyPI version such as "0.11.0" (no ranges: the plan depends on it)',
    });
  } else {
    const arch = resolved.model?.spec.architecture ?? "Qwen2VLForConditionalGeneration";
    const min = MIN_VLLM_FOR[arch];
    if (compareVersions(version, parseVersion(min)!) < 0)
      issues.push({
        path: "vllm.version",
        value: v.version,
        message: `cannot serve ${arch}; needs ≥ ${min} (the first release that registers it)${arch === "Qwen2VLForConditionalGeneration" ? ". The seed's 0.4.2 predates Qwen2-VL (vllm PR #7905)" : ""}`,
      });
    else if (unreleasedProblem(v.version))
      issues.push({
        path: "vllm.version",
        value: v.version,
        message: unreleasedProblem(v.version)!,
      });
  }
  const features = version && gpu ? vllmFeatures(version, gpu.computeCapability) : undefined;
  if (features && gpu && gpu.computeCapability < features.minComputeCapability)
    issues.push({
      path: "vllm.version",
      value: v.version,
      message: `its wheels are built for CUDA ${features.cudaVersion}, which has no kernels for ${gpu.name} (compute capability ${gpu.computeCapability}; CUDA 13 dropped Volta); pin vLLM ≤ 0.19.1 (the last CUDA 12.9 build) for this card`,
    });
  if (features && c.target.kind === "aws") {
    const ami = AMIS[c.target.ami];
    if (
      !c.target.amiId &&
      compareVersions(parseVersion(`${ami.python}.0`)!, parseVersion(`${features.minPython}.0`)!) <
        0
    )
      issues.push({
        path: "vllm.version",
        value: v.version,
        message: `needs Python ≥ ${features.minPython} (its wheel's Requires-Python), but ${c.target.ami} ships Python ${ami.python}; pin vLLM ${features.minPython === "3.11" ? "≤ 0.31.0" : "older"}, or set target.ami to an image with a newer Python (${Object.entries(
          AMIS,
        )
          .filter(
            ([, a]) =>
              compareVersions(
                parseVersion(`${a.python}.0`)!,
                parseVersion(`${features.minPython}.0`)!,
              ) >= 0,
          )
          .map(([n]) => n)
          .join(", ")})`,
      });
  }
  if (features && !features.verified) {
    warnings.push(
      `vLLM ${v.version} is newer than ${NEWEST_VERIFIED_VLLM}, the newest this project has checked flags against; flags are assumed unchanged`,
    );
  }

  checkNetworkAndSecrets(c, opts, issues);
  if (c.provisioning.weightsSource === "mirror" && !c.provisioning.mirrorUrl)
    issues.push({
      path: "provisioning.mirrorUrl",
      value: undefined,
      message: 'required when provisioning.weightsSource is "mirror"',
    });
  if (c.provisioning.mirrorUrl?.startsWith("s3://") && c.target.kind !== "aws")
    warnings.push(
      "provisioning.mirrorUrl is an S3 bucket: the hosts need AWS credentials of their own (the AWS CLI's usual chain) to read it",
    );
  if (c.provisioning.pythonIndexUrl && c.provisioning.pythonFindLinks)
    issues.push({
      path: "provisioning.pythonFindLinks",
      value: c.provisioning.pythonFindLinks,
      message: "give pythonIndexUrl or pythonFindLinks, not both",
    });
  checkExtraArgs(v, issues);
  checkPort(v.port, issues);

  const model = resolved.model;
  let dtype: Dtype | undefined;
  let tp = 0;
  let pp = 0;
  if (model && gpu && hw) {
    const m = model.spec;
    const d = resolveDtype(v.dtype, m, gpu, warnings);
    if (d.problem) issues.push({ path: "vllm.dtype", value: v.dtype, message: d.problem });
    dtype = d.dtype;
    if (
      (m.quantization?.method === "awq" || m.quantization?.method === "gptq") &&
      dtype === "bfloat16"
    )
      warnings.push(
        `${m.quantization.method.toUpperCase()} kernels are written for float16: "half" is recommended for quantized models`,
      );

    tp = v.tensorParallelSize ?? hw.gpusPerNode;
    pp = v.pipelineParallelSize ?? hw.nodesPerReplica;
    const tpProblem = tensorParallelProblem(m, tp);
    if (tpProblem) {
      issues.push({
        path:
          v.tensorParallelSize !== undefined
            ? "vllm.tensorParallelSize"
            : "vllm.tensorParallelSize (default: GPUs per node)",
        value: tp,
        message: `${tpProblem} (allowed: ${allowedTensorParallelSizes(m, Math.max(8, hw.gpusPerNode)).join(", ")})`,
      });
    }
    const total = hw.gpusPerNode * hw.nodesPerReplica;
    if (tp * pp > total) {
      issues.push({
        path: "vllm.pipelineParallelSize",
        value: pp,
        message: `TP ${tp} × PP ${pp} = ${tp * pp} GPUs, but a replica has ${hw.nodesPerReplica} node(s) × ${hw.gpusPerNode} GPU(s) = ${total}`,
      });
    } else if (tp * pp < total) {
      warnings.push(
        `TP ${tp} × PP ${pp} uses ${tp * pp} of the replica's ${total} GPUs; the rest stay idle`,
      );
    }
    if (tp > hw.gpusPerNode)
      warnings.push(
        `TP ${tp} spans nodes (a node has ${hw.gpusPerNode} GPUs): all-reduce over the network is slow; prefer PP across nodes`,
      );
    if (pp > m.layers)
      issues.push({
        path: "vllm.pipelineParallelSize",
        value: pp,
        message: `exceeds the model's ${m.layers} layers`,
      });
    if (hw.nodesPerReplica > 1 && pp < hw.nodesPerReplica && tp <= hw.gpusPerNode)
      warnings.push(`${hw.nodesPerReplica} nodes but PP ${pp}: some nodes get no stage`);

    if (v.maxModelLen > m.maxPositions)
      issues.push({
        path: "vllm.maxModelLen",
        value: v.maxModelLen,
        message: `exceeds the model's max_position_embeddings (${m.maxPositions}); vLLM refuses it`,
      });
    const qProblem = m.quantization
      ? quantizationProblem(m.quantization, gpu, tp, warnings)
      : undefined;
    if (qProblem) issues.push({ path: "model", value: m.id, message: qProblem });
    if (v.quantization) {
      const base = v.quantization.replace("_marlin", "");
      if (!m.quantization)
        issues.push({
          path: "vllm.quantization",
          value: v.quantization,
          message: `${m.id} is not quantized; remove it, or serve ${awqVariantOf(m.id)?.id ?? "an AWQ/GPTQ checkpoint"} instead`,
        });
      else if (m.quantization.method !== base)
        issues.push({
          path: "vllm.quantization",
          value: v.quantization,
          message: `${m.id} is ${m.quantization.method}-quantized; use "${m.quantization.method}" or leave it unset (read from config.json)`,
        });
    }
    // vLLM checks at startup that util × total is free (V1 gpu_worker.init_device: "Free memory on
    // device … is less than desired GPU memory utilization"); the CUDA context is already taken by
    // then (0.51 GiB measured on an H200, test/gpu/h200-encoder-memory.json), so 1.0 never starts.
    const maxUtil = Math.floor((1 - CUDA_CONTEXT_GiB / gpu.memoryGiB) * 100) / 100;
    if (v.gpuMemoryUtilization > maxUtil)
      issues.push({
        path: "vllm.gpuMemoryUtilization",
        value: v.gpuMemoryUtilization,
        message: `${v.gpuMemoryUtilization} × ${gpu.memoryGiB} GiB = ${(v.gpuMemoryUtilization * gpu.memoryGiB).toFixed(2)} GiB, but the CUDA context (~${CUDA_CONTEXT_GiB} GiB) is taken before vLLM's check that this much is free ("Free memory on device … is less than desired GPU memory utilization"); allowed: ≤ ${maxUtil.toFixed(2)} on ${gpu.name}`,
      });
    if (features) {
      const d = vllmDefaults(features, gpu.memoryGiB, v.maxModelLen, gpu.name, Boolean(m.vision));
      const tokens = v.maxNumBatchedTokens ?? d.maxNumBatchedTokens;
      const seqs = v.maxNumSeqs ?? d.maxNumSeqs;
      if (tokens < seqs)
        issues.push({
          path:
            v.maxNumBatchedTokens !== undefined ? "vllm.maxNumBatchedTokens" : "vllm.maxNumSeqs",
          value: v.maxNumBatchedTokens !== undefined ? tokens : seqs,
          message: `max_num_batched_tokens (${tokens}${v.maxNumBatchedTokens === undefined ? ", vLLM's default here" : ""}) must be ≥ max_num_seqs (${seqs}${v.maxNumSeqs === undefined ? ", vLLM's default here" : ""}): vLLM's SchedulerConfig refuses to start otherwise; raise vllm.maxNumBatchedTokens or lower vllm.maxNumSeqs`,
        });
    }
    if (v.minPixels !== undefined && v.maxPixels !== undefined && v.minPixels > v.maxPixels)
      issues.push({
        path: "vllm.minPixels",
        value: v.minPixels,
        message: `must be ≤ vllm.maxPixels (${v.maxPixels})`,
      });
    if (features) {
      if (v.swapSpaceGiB !== undefined && !features.swapSpace)
        issues.push({
          path: "vllm.swapSpaceGiB",
          value: v.swapSpaceGiB,
          message: `vLLM ${v.version} runs the V1 engine, which has no --swap-space; remove it`,
        });
      if ((v.minPixels !== undefined || v.maxPixels !== undefined) && !features.mmProcessorKwargs)
        issues.push({
          path: "vllm.maxPixels",
          value: v.maxPixels,
          message: `vLLM ${v.version} has no --mm-processor-kwargs (needs ≥ 0.6.2)`,
        });
      if (
        features.engine === "v0" &&
        v.maxNumBatchedTokens !== undefined &&
        v.maxNumBatchedTokens < v.maxModelLen
      )
        issues.push({
          path: "vllm.maxNumBatchedTokens",
          value: v.maxNumBatchedTokens,
          message: `must be ≥ vllm.maxModelLen (${v.maxModelLen}) on the V0 engine without chunked prefill; vLLM refuses to start`,
        });
      if (m.vision && v.imageLimit > 0) {
        const maxPixels = v.maxPixels ?? DEFAULT_MAX_PIXELS;
        const perImage = maxImageTokens(m.vision, maxPixels);
        const need = v.imageLimit * perImage + 2;
        if (need > v.maxModelLen) {
          // The largest square image whose tokens leave room for the others and 256 of text.
          const unit = m.vision.patchSize * m.vision.spatialMergeSize;
          const sideFit = Math.floor(Math.sqrt(Math.max(1, (v.maxModelLen - 256) / v.imageLimit)));
          const maxPixelsFit = (sideFit * unit) ** 2;
          const text = `${v.imageLimit} images × ${perImage} visual tokens (max ${maxPixels} px each) = ${need - 2} tokens > maxModelLen ${v.maxModelLen}`;
          const ways = `set vllm.maxPixels ≤ ${maxPixelsFit} (${sideFit ** 2} tokens per image, 256 left for text), lower vllm.imageLimit to ${Math.max(0, Math.floor((v.maxModelLen - 256) / perImage))}, or raise vllm.maxModelLen to ≥ ${need + 256}`;
          if (features.mmProfileMustFitContext)
            issues.push({
              path: "vllm.maxPixels",
              value: v.maxPixels,
              message: `vLLM ${v.version} refuses to start ("Qwen2-VL cannot process ${v.imageLimit} images in a prompt"): ${text}; ${ways}`,
            });
          else warnings.push(`a prompt with ${text} is rejected; ${ways}`);
        }
      }
      if (!m.vision && v.imageLimit > 0)
        warnings.push(`${m.id} has no vision tower: vllm.imageLimit ${v.imageLimit} is ignored`);
      if (features.needsRopeScalingFix)
        warnings.push(
          `vLLM ${v.version} needs the rope_scaling fix in config.json (KeyError: 'factor'); provisioning applies it`,
        );
    }
  }

  let rootVolumeGiB = 0;
  if (model) {
    const ckptGiB =
      opts.weightsGiB ?? model.weightsGiBOverride ?? checkpointBytes(model.spec) / GiB;
    rootVolumeGiB = Math.ceil(ckptGiB + 64);
    if (
      c.target.kind === "aws" &&
      c.target.rootVolumeGiB !== undefined &&
      c.target.rootVolumeGiB < rootVolumeGiB
    )
      issues.push({
        path: "target.rootVolumeGiB",
        value: c.target.rootVolumeGiB,
        message: `too small for ${ckptGiB.toFixed(1)} GiB of weights + 64 GiB for the system and Python environment; needs ≥ ${rootVolumeGiB}`,
      });
    if (c.target.kind === "aws" && c.target.rootVolumeGiB !== undefined)
      rootVolumeGiB = c.target.rootVolumeGiB;
  }

  if (issues.length > 0 || !model || !gpu || !hw || !features || !dtype) {
    throw new ConfigError(
      issues.length
        ? issues
        : [{ path: "", value: undefined, message: "incomplete configuration" }],
    );
  }

  const m = model.spec;
  const derivedGiB = checkpointBytes(m) / GiB;
  const givenGiB = opts.weightsGiB ?? model.weightsGiBOverride;
  const setup: Setup = {
    model: m,
    weightsScale: givenGiB ? (givenGiB * GiB) / checkpointBytes(m) : 1,
    gpu,
    tp,
    pp,
    dtype,
    kvBytes: v.kvCacheDtype === "fp8" ? 1 : DTYPE_BYTES[dtype],
    features,
    maxModelLen: v.maxModelLen,
    util: v.gpuMemoryUtilization,
    imageLimit: m.vision ? v.imageLimit : 0,
    videoLimit: m.vision ? v.videoLimit : 0,
    maxPixels: v.maxPixels ?? DEFAULT_MAX_PIXELS,
    enforceEager: v.enforceEager,
    blockSize: v.blockSize,
    ...(v.maxNumBatchedTokens !== undefined ? { maxNumBatchedTokens: v.maxNumBatchedTokens } : {}),
    ...(v.maxNumSeqs !== undefined ? { maxNumSeqs: v.maxNumSeqs } : {}),
  };
  const memory = planMemory(setup);
  const binding = memory.stages.reduce((a, b) => (b.kvCacheTokens < a.kvCacheTokens ? b : a));

  if (!features.cudaGraphsInBudget && !v.enforceEager) {
    const graphs = Math.max(...memory.stages.map((st) => st.cudaGraphGiB));
    if (graphs > memory.headroomGiB)
      warnings.push(
        `CUDA graphs (~${graphs.toFixed(2)} GiB) are captured outside the ${(v.gpuMemoryUtilization * 100).toFixed(0)} % budget, but only ${Math.max(0, memory.headroomGiB).toFixed(2)} GiB is left beside the CUDA context: lower vllm.gpuMemoryUtilization or set vllm.enforceEager`,
      );
  }

  const multiNode = pp > 1 && hw.nodesPerReplica > 1;
  const dir = modelDir(m.id, model.revision);
  const vllmArgs = renderVllmArgs({
    modelDir: dir,
    servedModelName: model.servedModelName,
    vllm: v,
    features,
    dtype,
    tp,
    pp,
    multiNode,
    hasVision: Boolean(m.vision),
  });
  const nodes = planNodes(hw);
  const ports = planPorts(c, hw.nodesPerReplica > 1);
  const instances = hw.nodesPerReplica * hw.replicas;

  const plan: Plan = {
    ...(opts.stack ? { stack: opts.stack } : {}),
    model: {
      id: m.id,
      revision: model.revision,
      servedModelName: model.servedModelName,
      ...(m.quantization ? { quantization: quantizationLabel(m.quantization) } : {}),
      checkpointGiB: round(givenGiB ?? derivedGiB, 2),
      license: m.license,
      dir,
    },
    target: c.target.kind,
    ...(c.target.kind === "aws"
      ? { instanceType: c.target.instanceType, region: c.target.region }
      : {}),
    gpu,
    gpusPerNode: hw.gpusPerNode,
    nodesPerReplica: hw.nodesPerReplica,
    replicas: hw.replicas,
    nodes,
    tensorParallelSize: tp,
    pipelineParallelSize: pp,
    dtype,
    vllmVersion: v.version,
    engine: features.engine,
    features,
    maxModelLen: v.maxModelLen,
    gpuMemoryUtilization: v.gpuMemoryUtilization,
    imageLimit: setup.imageLimit,
    memory,
    fits: memory.fits,
    kvCacheTokens: memory.kvCacheTokens,
    maxConcurrency: round(memory.maxConcurrency, 2),
    perGpu: {
      weightsGiB: round(binding.weightsGiB, 2),
      kvCacheGiB: round(binding.kvCacheGiB, 2),
      reservedGiB: round(binding.reservedGiB, 2),
      capacityGiB: round(binding.capacityGiB, 2),
    },
    waysOut: memory.fits ? [] : waysOut(setup, c, hw),
    warnings,
    vllmArgs,
    ports,
    rootVolumeGiB,
    costPerHourUsd: round(hw.pricePerNode * instances, 3),
    costNote: `${instances} × ${c.target.kind === "aws" ? c.target.instanceType : "host"} at $${hw.pricePerNode}/h (${hw.priceNote})`,
    ...(c.target.kind === "aws"
      ? {
          quota: {
            ...vcpuQuota(c.target.instanceType, Boolean(c.target.spot?.enabled)),
            vcpus: instances * INSTANCE_TYPES.get(c.target.instanceType)!.vcpu,
          },
        }
      : {}),
    driver: { min: features.minDriver, cuda: features.cudaVersion },
    config: c,
  };
  return plan;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function planNodes(hw: Hardware): PlanNode[] {
  const out: PlanNode[] = [];
  for (let r = 0; r < hw.replicas; r++) {
    for (let i = 0; i < hw.nodesPerReplica; i++) {
      const host = hw.hosts?.[r * hw.nodesPerReplica + i];
      out.push({
        name: host?.name ?? (hw.replicas > 1 ? `r${r}-` : "") + (i === 0 ? "head" : `worker${i}`),
        role: i === 0 ? "head" : "worker",
        replica: r,
        stage: i,
        gpus: hw.gpusPerNode,
        ...(host ? { host } : {}),
      });
    }
  }
  return out;
}

function planPorts(c: StackConfig, multiNode: boolean): PlannedPort[] {
  const ports: PlannedPort[] = [{ name: "vllm", port: c.vllm.port, exposure: "api" }];
  if (c.monitoring.enabled) {
    ports.push({ name: "prometheus", port: PORTS.prometheus, exposure: "local" });
    ports.push({
      name: "nodeExporter",
      port: PORTS.nodeExporter,
      exposure: multiNode ? "cluster" : "local",
    });
    if (c.monitoring.dcgmExporter)
      ports.push({
        name: "dcgmExporter",
        port: PORTS.dcgmExporter,
        exposure: multiNode ? "cluster" : "local",
      });
    if (c.monitoring.grafana)
      ports.push({ name: "grafana", port: PORTS.grafana, exposure: "local" });
  }
  if (multiNode) {
    for (const name of CLUSTER_PORTS)
      if (!ports.some((p) => p.name === name))
        ports.push({ name, port: PORTS[name], exposure: "cluster" });
    if (c.monitoring.rayDashboard)
      ports.push({ name: "rayDashboard", port: PORTS.rayDashboard, exposure: "local" });
  }
  return ports;
}

function checkNetworkAndSecrets(c: StackConfig, opts: PlanOptions, issues: Issue[]): void {
  const api = exposure(c.network.apiCidrs);
  const apiList = c.network.apiCidrs.join(", ");
  if (api.open && !(c.network.allowPublicApi && c.secrets.apiKey)) {
    issues.push({
      path: "network.apiCidrs",
      value: c.network.apiCidrs,
      message: `${apiList} ${c.network.apiCidrs.length > 1 ? "together cover" : "covers"} ${describeExposure(api)}: that opens the API to the whole internet, which needs network.allowPublicApi: true and secrets.apiKey set (vLLM's --api-key protects /v1 only). Prefer your office CIDR, or an SSH tunnel`,
    });
  }
  if (api.open && c.network.allowPublicApi && !c.network.certificateArn)
    issues.push({
      path: "network.certificateArn",
      value: undefined,
      message:
        "is needed with network.allowPublicApi: the API key would cross the internet in clear text over HTTP; give an ACM certificate (the API is then served over HTTPS by a load balancer)",
    });
  const ssh = exposure(c.network.sshCidrs);
  if (ssh.open) {
    issues.push({
      path: "network.sshCidrs",
      value: c.network.sshCidrs,
      message: `${c.network.sshCidrs.join(", ")} ${c.network.sshCidrs.length > 1 ? "together cover" : "covers"} ${describeExposure(ssh)}: SSH open to the whole internet is refused (any union reaching a /8's worth of public addresses counts); give your own CIDR, or none and use SSM Session Manager`,
    });
  }
  for (const key of ["hfToken", "apiKey"] as const) {
    const ref = c.secrets[key];
    if (!ref) continue;
    if (ref.startsWith("config:") && opts.secretKeys && !opts.secretKeys.has(ref.slice(7))) {
      issues.push({
        path: `secrets.${key}`,
        value: ref,
        message: `names Pulumi config key "${ref.slice(7)}", which the stack does not hold as a secret; run: pulumi config set --secret ${ref.slice(7)} <value>`,
      });
    }
    if (ref.startsWith("ssm:") && c.target.kind !== "aws") {
      issues.push({
        path: `secrets.${key}`,
        value: ref,
        message:
          'SSM parameters are read with the AWS instance role; on target.kind "hosts" use "config:" or "file:"',
      });
    }
  }
}

/** The API port must not take a port the deployment already uses, whatever is enabled today. */
function checkPort(port: number, issues: Issue[]): void {
  const taken = (Object.entries(PORTS) as [PortName, number][]).find(
    ([name, p]) => name !== "vllm" && p === port,
  );
  const rayWorkers = port >= PORTS.rayWorkerMin && port <= PORTS.rayWorkerMax;
  if (taken || rayWorkers)
    issues.push({
      path: "vllm.port",
      value: port,
      message: `is used by ${taken ? taken[0] : `Ray's worker port range ${PORTS.rayWorkerMin}–${PORTS.rayWorkerMax}`} (catalogs/ports.ts); taken: ${Object.entries(
        PORTS,
      )
        .filter(([n]) => n !== "vllm" && n !== "rayWorkerMin" && n !== "rayWorkerMax")
        .map(([, p]) => p)
        .join(
          ", ",
        )} and ${PORTS.rayWorkerMin}–${PORTS.rayWorkerMax}; e.g. 8000 (vLLM's default) or 8001`,
    });
}

/**
 * Extra flags: none that the plan renders (under any spelling: a short alias such as `-tp` would
 * slip past a check of long names), and none that the pinned release does not have (its flags as
 * read from its sdist, catalogs/vllm-flags.ts) — vLLM would refuse to start with "unrecognized
 * arguments" after the machines are paid for.
 */
function checkExtraArgs(v: VllmConfig, issues: Issue[]): void {
  const version = parseVersion(v.version);
  v.extraArgs.forEach((arg, i) => {
    if (!arg.startsWith("-") || /^-\d/.test(arg)) return; // a value
    const path = `vllm.extraArgs[${i}]`;
    const name = arg.split("=")[0]!;
    let flag = name.replace(/_/g, "-");
    if (!flag.startsWith("--")) {
      const short = /^-O\d/.test(flag) ? "-O" : flag;
      const long = VLLM_SHORT_FLAGS[short];
      if (!long) {
        issues.push({
          path,
          value: arg,
          message: `${name} is not one of vLLM's short aliases (${Object.keys(VLLM_SHORT_FLAGS).join(", ")}); write the long flag`,
        });
        return;
      }
      flag = long;
    }
    const owner = RENDERED_FLAGS[flag];
    if (owner) {
      issues.push({
        path,
        value: arg,
        message: `${name === flag ? flag : `${name} (${flag})`} is rendered from ${owner}; set that instead`,
      });
      return;
    }
    if (!version || compareVersions(version, parseVersion(VLLM_FLAGS_READ_UP_TO)!) > 0) return;
    const spans = VLLM_FLAG_SPANS[flag];
    const has = (spans ?? "").split(",").some((span) => {
      if (!span) return false;
      const [from, to] = span.split("-");
      return (
        compareVersions(version, parseVersion(from!)!) >= 0 &&
        (!to || compareVersions(version, parseVersion(to)!) <= 0)
      );
    });
    if (has) return;
    const hint = closest(flag, Object.keys(VLLM_FLAG_SPANS));
    issues.push({
      path,
      value: arg,
      message: spans
        ? `${flag} is not a flag of vLLM ${v.version}; it exists in ${spans
            .split(",")
            .map((sp) => (sp.endsWith("-") ? `${sp.slice(0, -1)} on` : sp.replace("-", "–")))
            .join(", ")}`
        : `${flag} is not a flag of any vLLM release${hint ? ` (did you mean ${hint}?)` : ""}; vLLM ${v.version} would stop with "unrecognized arguments"`,
    });
  });
}

// ---- ways out ------------------------------------------------------------------------------

/**
 * One machine of another type, with the model or one of its quantized variants, that fits: the
 * three cheapest per hour, each with the KV cache it leaves. The same model is tried before its
 * variants; a variant must run on the type's GPU (`quantizationProblem`) and split over its GPUs.
 */
function instanceWaysOut(s: Setup, hw: Hardware): string[] {
  const options: { price: number; text: string }[] = [];
  const models = [s.model, ...quantizedVariantsOf(s.model.id)];
  for (const it of INSTANCE_TYPES.values()) {
    if (
      it.onDemandUsdPerHour >= hw.pricePerNode * hw.nodesPerReplica &&
      it.gpu === s.gpu.name &&
      it.gpuCount <= s.tp * s.pp
    )
      continue;
    const gpu = GPUS.get(it.gpu)!;
    const features = vllmFeatures(s.features.version, gpu.computeCapability);
    if (gpu.computeCapability < features.minComputeCapability) continue;
    for (const m of models) {
      if (m.quantization && quantizationProblem(m.quantization, gpu, it.gpuCount, []) !== undefined)
        continue;
      const tps = allowedTensorParallelSizes(m, it.gpuCount).filter((t) => t <= it.gpuCount);
      const tp = tps[tps.length - 1];
      if (!tp) continue;
      const dtype: Dtype =
        m.quantization && m.quantization.method !== "fp8"
          ? "float16"
          : s.dtype === "bfloat16" && !supportsBf16(gpu)
            ? "float16"
            : s.dtype;
      const p = planMemory({
        ...s,
        model: m,
        weightsScale: m === s.model ? s.weightsScale : 1,
        gpu,
        features,
        tp,
        pp: 1,
        dtype,
      });
      if (!p.fits) continue;
      options.push({
        price: it.onDemandUsdPerHour,
        text: `${m === s.model ? "" : `serve ${m.id} `}on ${it.name} (${it.gpuCount} × ${it.gpu}, TP ${tp}) at $${it.onDemandUsdPerHour.toFixed(2)}/h: ${p.kvCacheTokens} KV tokens`,
      });
      break;
    }
  }
  return options
    .sort((a, b) => a.price - b.price)
    .slice(0, 3)
    .map((o) => o.text);
}

/** The fewest GPUs of this card (TP within a node, PP across nodes) on which the setup fits. */
function smallestGrid(
  s: Setup,
  gpusPerNode: number,
): { tp: number; pp: number; tokens: number } | undefined {
  let best: { tp: number; pp: number; tokens: number } | undefined;
  for (const tp of allowedTensorParallelSizes(s.model, Math.max(8, gpusPerNode))) {
    for (let pp = 1; pp <= 16 && pp <= s.model.layers; pp++) {
      if (tp * pp <= s.tp * s.pp) continue;
      if (best && tp * pp >= best.tp * best.pp) break;
      const p = planMemory({ ...s, tp, pp });
      if (p.fits) {
        best = { tp, pp, tokens: p.kvCacheTokens };
        break;
      }
    }
  }
  return best;
}

function waysOut(s: Setup, c: StackConfig, hw: Hardware): string[] {
  const out: string[] = [];
  const st = planMemory(s);
  const binding = st.stages.reduce((a, b) => (b.kvCacheTokens < a.kvCacheTokens ? b : a));
  out.push(
    `KV cache per GPU: ${binding.kvCacheGiB.toFixed(2)} GiB = ${binding.budgetGiB.toFixed(2)} GiB budget − ${binding.weightsGiB.toFixed(2)} GiB weights − ${binding.reservedGiB.toFixed(2)} GiB reserved → ${st.kvCacheTokens} tokens < maxModelLen ${s.maxModelLen}`,
  );

  // Largest max model length that fits (binary search: fewer tokens never need more memory).
  let lo = 0;
  let hi = s.maxModelLen - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (planMemory({ ...s, maxModelLen: mid }).fits) lo = mid;
    else hi = mid - 1;
  }
  if (lo >= 256) out.push(`set vllm.maxModelLen ≤ ${lo}`);

  for (let u = Math.round(s.util * 100) + 1; u <= 98; u++) {
    if (planMemory({ ...s, util: u / 100 }).fits) {
      out.push(`raise vllm.gpuMemoryUtilization to ${(u / 100).toFixed(2)}`);
      break;
    }
  }
  if (s.imageLimit > 0 && s.maxPixels > 1280 * PIXELS_PER_VISUAL_TOKEN) {
    const mp = 1280 * PIXELS_PER_VISUAL_TOKEN; // ≈ 1000 × 1000 px
    if (planMemory({ ...s, maxPixels: mp }).fits)
      out.push(
        `set vllm.maxPixels to ${mp} (${maxImageTokens(s.model.vision!, mp)} visual tokens per image at most) to shrink what the vision profile reserves`,
      );
  }
  if (
    !s.enforceEager &&
    s.features.cudaGraphsInBudget &&
    planMemory({ ...s, enforceEager: true }).fits
  )
    out.push("set vllm.enforceEager: true (no CUDA graphs; slower decode)");

  const awq = awqVariantOf(s.model.id);
  const awqSetup = awq
    ? {
        ...s,
        model: awq,
        weightsScale: 1,
        dtype: s.dtype === "bfloat16" ? ("float16" as const) : s.dtype,
      }
    : undefined;
  if (awqSetup && !tensorParallelProblem(awqSetup.model, s.tp)) {
    const a = planMemory(awqSetup);
    if (a.fits) out.push(`serve ${awqSetup.model.id} (4-bit AWQ): ${a.kvCacheTokens} KV tokens`);
  }
  const grid = smallestGrid(s, hw.gpusPerNode);
  if (grid)
    out.push(
      `use more GPUs: ${grid.tp * grid.pp} × ${s.gpu.name} as TP ${grid.tp} × PP ${grid.pp} (${grid.pp} node(s) of ${grid.tp}): ${grid.tokens} KV tokens`,
    );
  else if (awqSetup) {
    const g = smallestGrid(awqSetup, hw.gpusPerNode);
    if (g)
      out.push(
        `serve ${awqSetup.model.id} on ${g.tp * g.pp} × ${s.gpu.name} (TP ${g.tp} × PP ${g.pp}): ${g.tokens} KV tokens`,
      );
  }
  if (c.target.kind === "aws") out.push(...instanceWaysOut(s, hw));
  return out;
}
