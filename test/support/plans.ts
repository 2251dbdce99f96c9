/** Helpers for tests that look at what the planner refuses. */
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Gpu } from "../../catalogs/gpus";
import { MODELS } from "../../catalogs/models";
import { parseVersion, vllmFeatures } from "../../catalogs/vllm";
import { ConfigError } from "../../config/errors";
import { planStack, type Setup } from "../../plan";

/** Every problem of a raw stack config as "path: message", or [] when it plans. */
export function planProblems(raw: Record<string, unknown>): string[] {
  try {
    planStack(raw);
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
 * A lock file for a release without a checked-in one (tests of old releases' flags): the pins the
 * plan checks, in a temporary folder. Returns its absolute path for provisioning.pythonLock.
 */
export function testLock(version: string): string {
  const dir = join(tmpdir(), `qwen-vl-test-locks-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `vllm-${version}.txt`);
  writeFileSync(
    path,
    `vllm==${version}\ntransformers==4.57.6\nhuggingface-hub==0.36.2\nray==2.51.2\n`,
  );
  return path;
}
