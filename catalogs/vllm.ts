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

const VERSION_RE = /^(\d+)\.(\d+)\.(\d+)(?:\.post(\d+))?$/;

export function parseVersion(text: string): Version | undefined {
  const m = VERSION_RE.exec(text);
  if (!m) return undefined;
  return { major: +m[1]!, minor: +m[2]!, patch: +m[3]!, post: m[4] ? +m[4] : 0, text };
}

export function compareVersions(a: Version, b: Version): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch || a.post - b.post;
}

function atLeast(v: Version, text: string): boolean {
  return compareVersions(v, parseVersion(text)!) >= 0;
}

/** First vLLM that serves Qwen2-VL (vllm PR #7905; 0.6.0 fails, QwenLM/Qwen3 #914). */
export const MIN_VLLM_FOR_QWEN2_VL = "0.6.1";
/** transformers that fixes the 'qwen2_vl' KeyError and rope_scaling 'factor' (transformers #33401). */
export const MIN_TRANSFORMERS_FOR_QWEN2_VL = "4.45.2";
/**
 * Newest version whose flags this project has checked against vLLM's docs/changelogs. Later versions
 * plan, with a warning that their flags are assumed unchanged.
 */
export const NEWEST_VERIFIED_VLLM = "0.11.0";
/** The version new stacks pin: the newest verified one. */
export const DEFAULT_VLLM_VERSION = "0.11.0";

/** Minimum NVIDIA driver for a CUDA major version under minor-version compatibility (CUDA docs). */
export const DRIVER_FOR_CUDA_MAJOR: Readonly<Record<number, string>> = {
  11: "450.80.02",
  12: "525.60.13",
  13: "580.65.06",
};
/** The project's floor whatever the CUDA build: the seed's requirement (driver ≥ 515.65.01, CUDA ≥ 11.7). */
export const MIN_DRIVER = "515.65.01";
export const MIN_CUDA = "11.7";

export interface VllmFeatures {
  readonly version: Version;
  /** Engine the version runs by default for this GPU. */
  readonly engine: "v0" | "v1";
  /** `--limit-mm-per-prompt image=4` (kv) or `'{"image": 4}'` (json). */
  readonly limitMmSyntax: "kv" | "json";
  /** `--swap-space` exists (V0 only; removed with V1). */
  readonly swapSpace: boolean;
  /** `--mm-processor-kwargs` exists (server-wide min/max pixels). */
  readonly mmProcessorKwargs: boolean;
  /** CUDA-graph memory is profiled and taken out of the KV-cache budget (default since 0.21.0). */
  readonly cudaGraphsInBudget: boolean;
  /**
   * Qwen2-VL's dummy profile prompt holds image limit × max image tokens and startup fails when it
   * exceeds max_model_len ("Qwen2-VL cannot process N images in a prompt", vllm 0.6.x
   * model_executor/models/qwen2_vl.py `dummy_data_for_qwen2_vl`); from 0.7 it is a warning ⚠.
   */
  readonly mmProfileMustFitContext: boolean;
  /** The shipped config needs the rope_scaling 'mrope' fix on disk (vllm #8281, fixed by PR #9250). */
  readonly needsRopeScalingFix: boolean;
  /** CUDA major version the PyPI wheels are built for. */
  readonly cudaMajor: number;
  readonly cudaVersion: string;
  readonly minDriver: string;
  readonly minTransformers: string;
  /** Within the range of versions this project has checked. */
  readonly verified: boolean;
}

/**
 * Facts by version (sources):
 *  - V1 engine default from 0.8.0 (vLLM 0.8.0 release notes); V0 removed in 0.11.0 (release notes).
 *    Before 0.10, V1 needed compute capability ≥ 8.0 and fell back to V0 below it ⚠ (V1 FlashAttention
 *    requirement; fallback message "Compute Capability < 8.0 is not supported by the V1 Engine").
 *  - limit-mm-per-prompt key=value rejected from 0.10.0 (vllm #21615); JSON accepted since ≤ 0.9.1.
 *  - --swap-space removed with V1 (reference file §1).
 *  - --mm-processor-kwargs since 0.6.2 ⚠ (vllm PR #8657).
 *  - CUDA-graph memory profiling default since 0.21.0 (its own startup message, quoted in vllm #46462).
 *  - rope_scaling KeyError 'factor' fixed by vLLM PR #9250, released in 0.6.3 ⚠.
 *  - Wheels: 0.6.x CUDA 12.1 (torch 2.4); 0.7–0.8 CUDA 12.4 (torch 2.5/2.6); 0.9–0.11 CUDA 12.8
 *    (torch 2.7/2.8); later CUDA 12.9 ⚠ (vLLM install docs, "pip install vllm" default build).
 *  - vLLM 0.11 requires transformers ≥ 4.56 ⚠ (its requirements/common.txt).
 */
export function vllmFeatures(version: Version, computeCapability: number): VllmFeatures {
  const v1 = atLeast(version, "0.8.0") && (atLeast(version, "0.10.0") || computeCapability >= 8.0);
  const cudaVersion = atLeast(version, "0.12.0")
    ? "12.9"
    : atLeast(version, "0.9.0")
      ? "12.8"
      : atLeast(version, "0.7.0")
        ? "12.4"
        : "12.1";
  const cudaMajor = Number(cudaVersion.split(".")[0]);
  return {
    version,
    engine: v1 ? "v1" : "v0",
    limitMmSyntax: atLeast(version, "0.10.0") ? "json" : "kv",
    swapSpace: !v1,
    mmProcessorKwargs: atLeast(version, "0.6.2"),
    cudaGraphsInBudget: atLeast(version, "0.21.0"),
    mmProfileMustFitContext: !atLeast(version, "0.7.0"),
    needsRopeScalingFix: !atLeast(version, "0.6.3"),
    cudaMajor,
    cudaVersion,
    minDriver: DRIVER_FOR_CUDA_MAJOR[cudaMajor] ?? MIN_DRIVER,
    minTransformers: atLeast(version, "0.11.0") ? "4.56.0" : MIN_TRANSFORMERS_FOR_QWEN2_VL,
    verified: compareVersions(version, parseVersion(NEWEST_VERIFIED_VLLM)!) <= 0,
  };
}

/** vLLM's defaults that the planner must know to predict what it profiles (engine arg_utils). */
export function vllmDefaults(
  f: VllmFeatures,
  gpuMemoryGiB: number,
  maxModelLen: number,
): { maxNumBatchedTokens: number; maxNumSeqs: number; gpuMemoryUtilization: number } {
  if (f.engine === "v0") {
    // V0 without chunked prefill: max_num_batched_tokens = max(max_model_len, 2048); 256 seqs.
    return {
      maxNumBatchedTokens: Math.max(maxModelLen, 2048),
      maxNumSeqs: 256,
      gpuMemoryUtilization: 0.9,
    };
  }
  // V1 API server: 8192 tokens / 1024 seqs on ≥ 70 GiB cards, else 2048 / 256 (arg_utils
  // `_set_default_args_v1`, vllm ≥ 0.8; vllm #15228 comment: "in V1 we set this to be 1024").
  const large = gpuMemoryGiB >= 70;
  return {
    maxNumBatchedTokens: large ? 8192 : 2048,
    maxNumSeqs: large ? 1024 : 256,
    gpuMemoryUtilization: 0.9,
  };
}
