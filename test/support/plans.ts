/** Helpers for tests that look at what the planner refuses. */
import type { LockSummary } from "../../catalogs/locks";
import { LOCKS } from "../../catalogs/python-locks";
import { GPUS, type Gpu } from "../../catalogs/gpus";
import { MODELS } from "../../catalogs/models";
import { parseVersion, vllmFeatures } from "../../catalogs/vllm";
import { ConfigError } from "../../config/errors";
import { planStack, type PlanOptions, type Setup } from "../../plan";

/** Every problem of a raw stack config as "path: message", or [] when it plans. */
export function planProblems(raw: Record<string, unknown>, opts: PlanOptions = {}): string[] {
  try {
    planStack(raw, opts);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
}

/** The vision_config of Qwen/Qwen3-VL-8B-Instruct and larger (27 × 1152, patch 16). */
export const QWEN3_VL_VISION_CONFIG = {
  depth: 27,
  hidden_size: 1152,
  intermediate_size: 4304,
  num_heads: 16,
  patch_size: 16,
  spatial_merge_size: 2,
  temporal_patch_size: 2,
  deepstack_visual_indexes: [8, 16, 24],
};

/**
 * A memory-plan setup for a catalog model on `gpu` at a vLLM release: one GPU, bf16, a 16-bit KV
 * cache, 16-token blocks, CUDA graphs on; `given` sets the rest.
 */
export function setupFor(
  id: string,
  gpu: Gpu,
  version: string,
  given: Partial<Setup> &
    Pick<Setup, "maxModelLen" | "util" | "imageLimit" | "videoLimit" | "maxPixels">,
): Setup {
  return {
    model: MODELS.get(id)!,
    weightsScale: 1,
    gpu,
    tp: 1,
    pp: 1,
    dtype: "bfloat16",
    kvBytes: 2,
    features: vllmFeatures(parseVersion(version)!, gpu.computeCapability),
    enforceEager: false,
    blockSize: 16,
    ...given,
  };
}

/**
 * A lock for a release without a checked-in one (tests of old releases' flags), or with the pins
 * given: its path for provisioning.pythonLock and the index that knows it (PlanOptions.locks).
 */
export function testLock(
  version: string,
  pins: Record<string, string> = {
    vllm: version,
    transformers: "4.57.6",
    "huggingface-hub": "0.36.2",
    ray: "2.51.2",
  },
): { path: string; locks: Record<string, LockSummary> } {
  const path = `test-locks/vllm-${version}-${Object.keys(pins).join("-")}.txt`;
  return {
    path,
    locks: { ...LOCKS, [path]: { sha256: "0".repeat(64), packages: 100, pins } },
  };
}

/**
 * A stack of Qwen2-VL-2B on an AWS instance (default g5.xlarge) at vLLM `version`, with a test lock
 * for that release: the raw sections and the plan options that know the lock, for planStack or
 * previewStack.
 */
export function stackAt(
  version: string,
  vllm: Record<string, unknown>,
  instanceType = "g5.xlarge",
): [Record<string, unknown>, PlanOptions] {
  const lock = testLock(version);
  return [
    {
      model: { id: "Qwen/Qwen2-VL-2B-Instruct", revision: "a".repeat(40) },
      target: { kind: "aws", region: "us-east-1", instanceType },
      vllm: { version, ...vllm },
      provisioning: { pythonLock: lock.path },
    },
    { locks: lock.locks },
  ];
}

/**
 * The single-gpu stack's memory setup: Qwen2-VL-7B on one A10G at vLLM 0.11.0, max-model-len 8192,
 * utilization 0.8, 4 images of at most 1003520 px, no video, eager (the hand-computed plan's case).
 */
export const SINGLE_GPU_7B_SETUP: Setup = setupFor(
  "Qwen/Qwen2-VL-7B-Instruct",
  GPUS.get("A10G")!,
  "0.11.0",
  {
    maxModelLen: 8192,
    util: 0.8,
    imageLimit: 4,
    videoLimit: 0,
    maxPixels: 1003520,
    enforceEager: true,
  },
);

/** Sets `value` at a dotted path of raw stack sections ("target.hosts.0.address"; arrays where the next key is a number). */
export function setAt<T extends Record<string, Record<string, unknown>>>(
  raw: T,
  path: string,
  value: unknown,
): T {
  const keys = path.split(".");
  let cur: Record<string, unknown> = raw;
  keys.slice(0, -1).forEach((k, i) => {
    cur[k] ??= /^\d+$/.test(keys[i + 1]!) ? [] : {};
    cur = cur[k] as Record<string, unknown>;
  });
  cur[keys[keys.length - 1]!] = value;
  return raw;
}
