/**
 * vLLM versions: what changes between them that this project renders or relies on.
 * One row per fact, each with the version it starts at and its source. The plan reads these
 * through `vllmFeatures(version, gpu)`; nothing else compares vLLM versions.
 */

export interface Version {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** `.postN` → N; 0 when absent. */
  readonly post: number;
  readonly text: string;
}

/** `X.Y.Z`, `X.Y.Z.postN`, or vLLM's four-part hotfixes (`0.9.0.1`, `0.10.1.1`), ordered as posts. */
const VERSION_RE = /^(\d+)\.(\d+)\.(\d+)(?:\.post(\d+)|\.(\d+))?$/;

export function parseVersion(text: string): Version | undefined {
  const m = VERSION_RE.exec(text);
  if (!m) return undefined;
  const post = m[4] ?? m[5];
  return { major: +m[1]!, minor: +m[2]!, patch: +m[3]!, post: post ? +post : 0, text };
}

/**
 * Every vLLM release on PyPI from 0.6.0 (the first to list Qwen2-VL's predecessor fixes) to the
 * newest, with its upload date: https://pypi.org/pypi/vllm/json `releases`, read 2026-11-25, release
 * candidates and dev builds left out, none yanked. A version not listed here was never released
 * (0.10.3, 0.9.3, 0.8.6, 0.6.7 …) and is refused.
 */
export const VLLM_RELEASES: readonly (readonly [string, string])[] = [
  ["0.6.0", "2024-09-05"],
  ["0.6.1", "2024-09-11"],
  ["0.6.1.post1", "2024-09-13"],
  ["0.6.1.post2", "2024-09-13"],
  ["0.6.2", "2024-09-25"],
  ["0.6.3", "2024-10-14"],
  ["0.6.3.post1", "2024-10-17"],
  ["0.6.4", "2024-11-15"],
  ["0.6.4.post1", "2024-11-15"],
  ["0.6.5", "2024-12-18"],
  ["0.6.6", "2024-12-27"],
  ["0.6.6.post1", "2024-12-27"],
  ["0.7.0", "2025-01-27"],
  ["0.7.1", "2025-02-01"],
  ["0.7.2", "2025-02-06"],
  ["0.7.3", "2025-02-20"],
  ["0.8.0", "2025-03-18"],
  ["0.8.1", "2025-03-19"],
  ["0.8.2", "2025-03-25"],
  ["0.8.3", "2025-04-06"],
  ["0.8.4", "2025-04-15"],
  ["0.8.5", "2025-04-28"],
  ["0.8.5.post1", "2025-05-02"],
  ["0.9.0", "2025-05-28"],
  ["0.9.0.1", "2025-05-30"],
  ["0.9.1", "2025-06-10"],
  ["0.9.2", "2025-07-08"],
  ["0.10.0", "2025-07-25"],
  ["0.10.1", "2025-08-19"],
  ["0.10.1.1", "2025-08-20"],
  ["0.10.2", "2025-09-13"],
  ["0.11.0", "2025-10-04"],
  ["0.11.1", "2025-11-19"],
  ["0.11.2", "2025-11-20"],
  ["0.12.0", "2025-12-03"],
  ["0.13.0", "2025-12-19"],
  ["0.14.0", "2026-01-20"],
  ["0.14.1", "2026-01-24"],
  ["0.15.0", "2026-01-29"],
  ["0.15.1", "2026-02-05"],
  ["0.16.0", "2026-02-26"],
  ["0.17.0", "2026-03-07"],
  ["0.17.1", "2026-03-11"],
  ["0.18.0", "2026-03-20"],
  ["0.18.1", "2026-03-31"],
  ["0.19.0", "2026-04-03"],
  ["0.19.1", "2026-04-18"],
  ["0.20.0", "2026-04-27"],
  ["0.20.1", "2026-05-03"],
  ["0.20.2", "2026-05-10"],
  ["0.21.0", "2026-05-15"],
  ["0.22.0", "2026-05-29"],
  ["0.22.1", "2026-06-05"],
  ["0.23.0", "2026-06-13"],
  ["0.24.0", "2026-06-30"],
  ["0.25.0", "2026-07-11"],
  ["0.25.1", "2026-07-14"],
  ["0.26.0", "2026-07-25"],
  ["0.27.0", "2026-08-10"],
  ["0.27.1", "2026-08-11"],
  ["0.28.0", "2026-08-26"],
  ["0.29.0", "2026-09-09"],
  ["0.30.0", "2026-09-22"],
  ["0.31.0", "2026-10-05"],
  ["0.32.0", "2026-10-18"],
  ["0.33.0", "2026-11-02"],
];

export const NEWEST_VLLM = VLLM_RELEASES[VLLM_RELEASES.length - 1]![0];

/** Whether release text `a` is `min` or later (for tables outside this file that change at a release). */
export function vllmAtLeast(text: string, min: string): boolean {
  const v = parseVersion(text);
  return v !== undefined && compareVersions(v, parseVersion(min)!) >= 0;
}

/** The newest release that `ok` accepts (by its features on a card of `computeCapability`). */
export function newestReleaseWhere(
  computeCapability: number,
  ok: (f: VllmFeatures) => boolean,
): string | undefined {
  for (let i = VLLM_RELEASES.length - 1; i >= 0; i--) {
    const text = VLLM_RELEASES[i]![0];
    if (ok(vllmFeatures(parseVersion(text)!, computeCapability))) return text;
  }
  return undefined;
}

/** Why `text` is not a release, with the releases of its minor line; undefined when it is one. */
export function unreleasedProblem(text: string): string | undefined {
  if (VLLM_RELEASES.some(([r]) => r === text)) return undefined;
  const v = parseVersion(text);
  const line = v
    ? VLLM_RELEASES.filter(([r]) => r.startsWith(`${v.major}.${v.minor}.`)).map(([r]) => r)
    : [];
  return `was never released on PyPI${line.length ? ` (releases of ${v!.major}.${v!.minor}: ${line.join(", ")})` : ""}; the newest is ${NEWEST_VLLM}`;
}

/**
 * Facts that change at a release, each with the first version it holds for (ascending), read from
 * that release's own files: `Requires-Dist: torch==` and `Requires-Python` of the wheel METADATA,
 * `transformers>=` likewise, and the CUDA of the default wheel: `MAIN_CUDA_VERSION` in setup.py up to
 * 0.10.2, `VLLM_MAIN_CUDA_VERSION` in vllm/envs.py from 0.11.0.
 */
const BY_RELEASE = {
  torch: [
    ["0.6.0", "2.4.0"],
    ["0.6.4", "2.5.1"],
    ["0.8.0", "2.6.0"],
    ["0.9.0", "2.7.0"],
    ["0.10.0", "2.7.1"],
    ["0.10.2", "2.8.0"],
    ["0.11.1", "2.9.0"],
    ["0.14.0", "2.9.1"],
    ["0.17.0", "2.10.0"],
    ["0.20.0", "2.11.0"],
    ["0.27.0", "2.13.0"],
    ["0.33.0", "2.14.0"],
  ],
  python: [
    ["0.6.0", "3.8"],
    ["0.6.4", "3.9"],
    ["0.11.1", "3.10"],
    ["0.32.0", "3.11"],
  ],
  cuda: [
    ["0.6.0", "12.1"],
    ["0.8.0", "12.4"],
    ["0.9.0", "12.8"],
    ["0.12.0", "12.9"],
    ["0.20.0", "13.0"],
  ],
  transformers: [
    ["0.6.0", "4.43.2"],
    ["0.6.2", "4.45.0"],
    ["0.6.3.post1", "4.45.2"],
    ["0.7.1", "4.48.2"],
    ["0.8.3", "4.51.0"],
    ["0.8.4", "4.51.1"],
    ["0.10.0", "4.53.2"],
    ["0.10.1", "4.55.0"],
    ["0.10.2", "4.55.2"],
    ["0.11.1", "4.56.0"],
    ["0.24.0", "5.5.3"],
    ["0.29.0", "5.10.4"],
    ["0.32.0", "5.16.1"],
  ],
} as const satisfies Record<string, readonly (readonly [string, string])[]>;

function atRelease(v: Version, table: readonly (readonly [string, string])[]): string {
  let out = table[0]![1];
  for (const [from, value] of table) if (compareVersions(v, parseVersion(from)!) >= 0) out = value;
  return out;
}

export function compareVersions(a: Version, b: Version): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch || a.post - b.post;
}

function atLeast(v: Version, text: string): boolean {
  return compareVersions(v, parseVersion(text)!) >= 0;
}

/** transformers that fixes the 'qwen2_vl' KeyError and rope_scaling 'factor' (transformers #33401). */
export const MIN_TRANSFORMERS_FOR_QWEN2_VL = "4.45.2";
/**
 * Newest version whose flags and profiling this project has read in its sdist (catalogs/vllm-flags.ts,
 * the MultiModalBudget and CUDA-graph code quoted in plan/). Later versions plan, with a warning.
 */
export const NEWEST_VERIFIED_VLLM = NEWEST_VLLM;
/**
 * The version new stacks pin: the newest release whose wheels install on the default image's
 * Python. 0.32.0 on require Python ≥ 3.11 (their METADATA), and Ubuntu 22.04 — the Deep Learning
 * Base AMI — ships 3.10, so 0.31.0 is the newest that installs there; stacks on Ubuntu 24.04 or
 * Debian 12 may pin 0.33.0.
 */
export const DEFAULT_VLLM_VERSION = "0.31.0";

/** Minimum NVIDIA driver for a CUDA major version under minor-version compatibility (CUDA docs). */
export const DRIVER_FOR_CUDA_MAJOR: Readonly<Record<number, string>> = {
  11: "450.80.02",
  12: "525.60.13",
  13: "580.65.06",
};
/** The project's floor whatever the CUDA build: the seed's requirement (driver ≥ 515.65.01, CUDA ≥ 11.7). */
export const MIN_DRIVER = "515.65.01";

/** The higher of two NVIDIA driver versions ("525.60.13"; two-part versions are padded). */
export function higherDriver(a: string, b: string): string {
  const pad = (v: string) => parseVersion(v.split(".").length === 2 ? `${v}.0` : v);
  const pa = pad(a);
  const pb = pad(b);
  if (!pa || !pb) throw new Error(`not a driver version: ${!pa ? a : b}`);
  return compareVersions(pa, pb) >= 0 ? a : b;
}
export const MIN_CUDA = "11.7";

export interface VllmFeatures {
  readonly version: Version;
  /** Engine the version runs by default for this GPU. */
  readonly engine: "v0" | "v1";
  /** vLLM reads VLLM_USE_V1 to pick its engine (0.8.0–0.10.x; 0.11.0 has V1 alone). */
  readonly readsUseV1: boolean;
  /** The V0 engine is there to run (up to 0.10.x). */
  readonly hasV0: boolean;
  /** `--limit-mm-per-prompt image=4` (kv) or `'{"image": 4}'` (json). */
  readonly limitMmSyntax: "kv" | "json";
  /** `--swap-space` exists (V0 only; removed with V1). */
  readonly swapSpace: boolean;
  /** `--mm-processor-kwargs` exists (server-wide min/max pixels). */
  readonly mmProcessorKwargs: boolean;
  /**
   * vLLM's V1 model runner profiles CUDA-graph memory and takes it out of the KV-cache budget
   * (default since 0.20.0). The V2 runner: `v2CudaGraphsInBudget`; which runs: `v2RunnerDense`/`Moe`.
   */
  readonly cudaGraphsInBudget: boolean;
  /**
   * Model runner V2 is the default for dense models (0.25.0: `_is_default_v2_model_runner_model`
   * returns `... or not model_config.is_moe`) and for MoE models too (0.29.0: `use_v2_model_runner`
   * is True unless a feature it lacks is asked for) — vllm/config/vllm.py of each release.
   */
  readonly v2RunnerDense: boolean;
  readonly v2RunnerMoe: boolean;
  /**
   * The V2 runner's CUDA-graph estimate: 0 up to 0.28 ("It is TBD whether we keep this API"), profiled
   * from 0.29.0 (v1/worker/gpu/model_runner.py `profile_cudagraph_memory`).
   */
  readonly v2CudaGraphsInBudget: boolean;
  /**
   * The V1 runner's dummy top-k/top-p sampling runs FlashInfer's kernels: by default from 0.21.0
   * (envs.py VLLM_USE_FLASHINFER_SAMPLER defaults to True); opt-in from 0.11.1 to 0.20; up to 0.11.0
   * only where flashinfer is installed, which vLLM's wheel does not require (an extra), so not for a
   * pip/uv install. Otherwise the PyTorch-native path sorts the logits (v1/sample/ops/topk_topp_sampler.py).
   */
  readonly flashinferSampler: boolean;
  /**
   * What the profile run pads each kept dummy encoder output to, when it is shorter (a zeros tensor
   * kept through the decoder's dummy run; gpu_model_runner.py profile_run): the encoder budget
   * (0.11.0–0.11.2), the modality's most tokens per item as the budget counts them (0.12.x), or
   * nothing (0.10.2 and before, 0.13.0 on).
   */
  readonly encoderOutputPadding: "budget" | "item" | "none";
  /**
   * The V2 model runner's profile run encodes a dummy multimodal batch (0.27.0 on, on the first
   * pipeline stage only: v1/worker/gpu/model_runner.py `profile_run`); 0.25–0.26's does not.
   */
  readonly v2ProfilesEncoder: boolean;
  /**
   * The image with most features the profile builds: `smart_resize` of a 9,999,999-px square (up to
   * 0.12.0; for Qwen3-VL at the image processor's own longest_edge, whatever max_pixels says) or the
   * most merged patches max_pixels allows, factored into the squarest pair with an aspect ratio ≤ 200
   * (0.13.0: qwen2_vl.py `get_image_size_with_most_features`, vllm PR #29692, not in 0.12.0's sdist).
   */
  readonly mostFeaturesImage: "square" | "factor-pair";
  /**
   * Which modality the profile runs when image and video have equal tokens per item: the first,
   * image (max over the dict), up to 0.16; video from 0.17.0 (max by (tokens, name):
   * multimodal/encoder_budget.py `get_modality_with_max_tokens`).
   */
  readonly mmTieGoesTo: "image" | "video";
  /**
   * How Qwen3-VL's dummy video is sized (qwen3_vl.py `get_max_video_tokens`): "timestamps", frames
   * fitting max_model_len counted 12.5 budget tokens a token (up to 0.12.0); "frames", the same
   * frames counted as they are (0.13.0–0.14.x); "half-pixels", a frame pair under half the video's
   * max pixels (0.15.0 on: `video_max_pixels // temporal_patch_size`).
   */
  readonly qwen3VideoSizing: "timestamps" | "frames" | "half-pixels";
  /**
   * Qwen2-VL's dummy profile prompt holds image limit × max image tokens and startup fails when it
   * exceeds max_model_len ("Qwen2-VL cannot process N images in a prompt", vllm 0.6.x
   * model_executor/models/qwen2_vl.py `dummy_data_for_qwen2_vl`); from 0.7 it is a warning ⚠.
   */
  readonly mmProfileMustFitContext: boolean;
  /**
   * What V0's profile does with a dummy multimodal prompt longer than its share of
   * max_num_batched_tokens (vllm/multimodal/profiling.py, each release's sdist): "text-only", 0.7.0
   * to 0.8.2 drop the multimodal data and profile that share as text (`get_dummy_data` /
   * `get_decoder_dummy_data` return `from_prompt_token_counts((0, seq_len))`, warning that
   * multimodal inputs may then fail); "whole", 0.8.3 to 0.10.x keep the whole prompt, so the decoder
   * runs all of it. (Before 0.7.0 Qwen2-VL refuses to start instead: `mmProfileMustFitContext`.)
   */
  readonly v0LongMmProfile: "text-only" | "whole";
  /**
   * V0's max_mm_tokens sizes each modality's item with one item a modality (0.8.4 on:
   * multimodal/registry.py `get_max_tokens_per_item_by_modality` passes `{modality: 1}`), not with
   * the limits (up to 0.8.3), before multiplying by the limits.
   */
  readonly v0MmTokensPerItemAtOne: boolean;
  /**
   * Multimodal inputs reach the model in its dtype (0.9.0 on: `MultiModalKwargs.as_kwargs(...,
   * dtype=model_config.dtype)` in V0's model runner, then inputs/registry.py `maybe_cast_dtype`);
   * before, the HF processor's float32 pixel values went to the GPU as they were.
   */
  readonly mmInputsInModelDtype: boolean;
  /** The shipped config needs the rope_scaling 'mrope' fix on disk (vllm #8281, fixed by PR #9250). */
  readonly needsRopeScalingFix: boolean;
  /** CUDA major version the PyPI wheels are built for. */
  readonly cudaMajor: number;
  readonly cudaVersion: string;
  readonly minDriver: string;
  readonly minTransformers: string;
  /** The wheel's `Requires-Python` floor, e.g. "3.10". */
  readonly minPython: string;
  /** torch the release pins. */
  readonly torch: string;
  /** Lowest compute capability its default wheels are built for (CUDA 13 dropped Volta). */
  readonly minComputeCapability: number;
  /** Frames of Qwen2/2.5-VL's profiled dummy video at most (`_MAX_FRAMES_PER_VIDEO`: 16, 14 from 0.11.0). */
  readonly maxVideoFrames: number;
  /** The dummy video fits what one image leaves of the context (up to 0.10.1; 0.10.2 dropped it). */
  readonly videoAfterImage: boolean;
  /** Within the range of versions this project has checked. */
  readonly verified: boolean;
}

/** The settings vLLM's V1 oracle looks at that a stack can set. */
export interface V1Settings {
  readonly kvCacheFp8?: boolean;
  readonly float32?: boolean;
}

/** A stack's vllm section as the V1 oracle sees it. */
export function v1SettingsOf(v: {
  readonly kvCacheDtype: string;
  readonly dtype: string;
}): V1Settings {
  return { kvCacheFp8: v.kvCacheDtype === "fp8", float32: v.dtype === "float32" };
}

/**
 * Why vLLM 0.8.0–0.10.2 would not run V1 here (engine/arg_utils.py `_is_v1_supported_oracle`):
 * the feature name it logs before falling back to V0 ("<feature> is not supported by the V1
 * Engine. Falling back to V0.") and refuses with VLLM_USE_V1=1 ("VLLM_USE_V1=1 is not supported
 * with <feature>."); undefined where V1 runs.
 *  - compute capability < 8.0, up to 0.10.1 (the check is gone in 0.10.2);
 *  - an fp8 KV cache: always up to 0.8.1; from 0.8.2 unless FlashAttention 3 takes fp8 (compute
 *    9.x: fa_utils.py `flash_attn_supports_fp8`), and from 0.10.0 also on compute 10.0
 *    (platforms/cuda.py `is_kv_cache_dtype_supported`);
 *  - float32, up to 0.9.1 (`V1_SUPPORTED_DTYPES`).
 * From 0.11.0 there is no V0 to fall back to.
 */
export function v1Unsupported(
  version: Version,
  computeCapability: number,
  settings: V1Settings = {},
): string | undefined {
  if (!atLeast(version, "0.8.0") || atLeast(version, "0.11.0")) return undefined;
  if (computeCapability < 8.0 && !atLeast(version, "0.10.2")) return "Compute Capability < 8.0";
  if (settings.kvCacheFp8) {
    const fa3 = Math.floor(computeCapability) === 9;
    const ok =
      atLeast(version, "0.8.2") &&
      (fa3 || (atLeast(version, "0.10.0") && computeCapability === 10));
    if (!ok) return "--kv-cache-dtype";
  }
  if (settings.float32 && !atLeast(version, "0.9.2")) return "--dtype torch.float32";
  return undefined;
}

/**
 * Facts by version (sources):
 *  - V1 engine default from 0.8.0 (vLLM 0.8.0 release notes); V0 removed in 0.11.0 (release notes).
 *    Where V1 does not support a setting vLLM falls back to V0 (`v1Unsupported`). `engine` is the
 *    stack's vllm.engine, VLLM_USE_V1 in vLLM's environment (envs.py, 0.8.0–0.10.2;
 *    engine/arg_utils.py asserts an explicit choice is honoured).
 *  - limit-mm-per-prompt key=value rejected from 0.10.0 (vllm #21615); JSON accepted since ≤ 0.9.1.
 *  - --swap-space removed with V1 (reference file §1).
 *  - --mm-processor-kwargs since 0.6.2 ⚠ (vllm PR #8657).
 *  - CUDA-graph memory profiled into the budget by default from 0.20.0: its vllm/envs.py sets
 *    VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS to "1" (0.19.1: "0"), and gpu_worker.py subtracts the
 *    estimate (its log line says "default since v0.21.0"; the code is the source).
 *  - rope_scaling KeyError 'factor' fixed by vLLM PR #9250, released in 0.6.3 ⚠.
 *  - torch, Python, CUDA and transformers floors: `BY_RELEASE` above.
 *  - Compute capability: CMakeLists.txt CUDA_SUPPORTED_ARCHS for CUDA ≥ 13.0 starts at 7.5 (13.0
 *    dropped sm_70); CUDA 12 builds include 7.0.
 */
export function vllmFeatures(
  version: Version,
  computeCapability: number,
  engine?: "v0" | "v1",
  settings: V1Settings = {},
): VllmFeatures {
  const v1 =
    engine !== undefined
      ? engine === "v1"
      : atLeast(version, "0.8.0") &&
        v1Unsupported(version, computeCapability, settings) === undefined;
  const cudaVersion = atRelease(version, BY_RELEASE.cuda);
  const cudaMajor = Number(cudaVersion.split(".")[0]);
  const vllmTransformers = atRelease(version, BY_RELEASE.transformers);
  return {
    version,
    engine: v1 ? "v1" : "v0",
    limitMmSyntax: atLeast(version, "0.10.0") ? "json" : "kv",
    swapSpace: !v1,
    readsUseV1: atLeast(version, "0.8.0") && !atLeast(version, "0.11.0"),
    hasV0: !atLeast(version, "0.11.0"),
    mmProcessorKwargs: atLeast(version, "0.6.2"),
    cudaGraphsInBudget: atLeast(version, "0.20.0"),
    v2RunnerDense: v1 && atLeast(version, "0.25.0"),
    v2RunnerMoe: v1 && atLeast(version, "0.29.0"),
    v2CudaGraphsInBudget: atLeast(version, "0.29.0"),
    flashinferSampler: atLeast(version, "0.21.0"),
    encoderOutputPadding: !atLeast(version, "0.11.0")
      ? "none"
      : !atLeast(version, "0.12.0")
        ? "budget"
        : !atLeast(version, "0.13.0")
          ? "item"
          : "none",
    v2ProfilesEncoder: atLeast(version, "0.27.0"),
    mostFeaturesImage: atLeast(version, "0.13.0") ? "factor-pair" : "square",
    mmTieGoesTo: atLeast(version, "0.17.0") ? "video" : "image",
    qwen3VideoSizing: atLeast(version, "0.15.0")
      ? "half-pixels"
      : atLeast(version, "0.13.0")
        ? "frames"
        : "timestamps",
    mmProfileMustFitContext: !atLeast(version, "0.7.0"),
    v0LongMmProfile: atLeast(version, "0.8.3") ? "whole" : "text-only",
    v0MmTokensPerItemAtOne: atLeast(version, "0.8.4"),
    mmInputsInModelDtype: atLeast(version, "0.9.0"),
    needsRopeScalingFix: !atLeast(version, "0.6.3"),
    cudaMajor,
    cudaVersion,
    // The wheel's CUDA floor, never below the project's own (the seed's 515.65.01).
    minDriver: higherDriver(DRIVER_FOR_CUDA_MAJOR[cudaMajor] ?? MIN_DRIVER, MIN_DRIVER),
    minTransformers:
      compareVersions(
        parseVersion(vllmTransformers)!,
        parseVersion(MIN_TRANSFORMERS_FOR_QWEN2_VL)!,
      ) > 0
        ? vllmTransformers
        : MIN_TRANSFORMERS_FOR_QWEN2_VL,
    minPython: atRelease(version, BY_RELEASE.python),
    torch: atRelease(version, BY_RELEASE.torch),
    minComputeCapability: cudaMajor >= 13 ? 7.5 : 7.0,
    maxVideoFrames: atLeast(version, "0.11.0") ? 14 : 16,
    videoAfterImage: !atLeast(version, "0.10.2"),
    verified: compareVersions(version, parseVersion(NEWEST_VERIFIED_VLLM)!) <= 0,
  };
}

/**
 * vLLM's defaults that the planner must know to predict what it profiles (engine arg_utils
 * `_set_default_args`, OpenAI API server): V1 8192 tokens / 1024 sequences on cards of ≥ 70 GiB
 * (0.8.0–0.8.4: on H100/H200 by name), except A100s from 0.9.0 ("a100" not in device_name, PR
 * #17885), 16384 / 1024 on ≥ 160 GiB from 0.28.0, else 2048 / 256. V0: no chunked prefill for
 * multimodal models, max(max_model_len, 5120) / 256. gpu_memory_utilization 0.92 from 0.20.0.
 */
export function vllmDefaults(
  f: VllmFeatures,
  gpuMemoryGiB: number,
  maxModelLen: number,
  gpuName = "",
  multimodal = true,
): { maxNumBatchedTokens: number; maxNumSeqs: number; gpuMemoryUtilization: number } {
  const util = atLeast(f.version, "0.20.0") ? 0.92 : 0.9;
  if (f.engine === "v0") {
    // Chunked prefill is off for multimodal models (forced from 0.6.5), and the batch must hold a
    // whole sequence and the multimodal floor: 5120 tokens (4096 before 0.6.3) — arg_utils.
    const floor = multimodal ? (atLeast(f.version, "0.6.3") ? 5120 : 4096) : 2048;
    return {
      maxNumBatchedTokens: Math.max(maxModelLen, floor),
      maxNumSeqs: 256,
      gpuMemoryUtilization: util,
    };
  }
  const huge = atLeast(f.version, "0.28.0") && gpuMemoryGiB >= 160;
  const a100 = atLeast(f.version, "0.9.0") && /a100/i.test(gpuName);
  // 0.8.0–0.8.4 chose by name (h100/h200), 0.8.5 on by memory.
  const large = atLeast(f.version, "0.8.5")
    ? gpuMemoryGiB >= 70 && !a100
    : /h100|h200/i.test(gpuName);
  return {
    maxNumBatchedTokens: huge ? 16384 : large ? 8192 : 2048,
    maxNumSeqs: huge || large ? 1024 : 256,
    gpuMemoryUtilization: util,
  };
}
