/**
 * The `vllm serve` command line in the pinned version's syntax. Secrets never appear here: the API
 * key reaches vLLM as VLLM_API_KEY from a root-only environment file.
 */
import type { VllmFeatures } from "../catalogs/vllm";
import type { VllmConfig } from "../config/schema";
import type { Dtype } from "./memory";

/** Where weights live on every node (the same path on all nodes, as Ray multi-node requires). */
export const MODEL_ROOT = "/var/lib/qwen-vl/models";

export function modelDir(modelId: string, revision: string): string {
  return `${MODEL_ROOT}/${modelId.replace(/\//g, "--")}/${revision}`;
}

/** Flags this project renders from typed settings; `extraArgs` may not repeat them. */
export const RENDERED_FLAGS: Readonly<Record<string, string>> = {
  "--served-model-name": "model.servedModelName",
  "--host": "(fixed: 0.0.0.0)",
  "--port": "vllm.port",
  "--dtype": "vllm.dtype",
  "--max-model-len": "vllm.maxModelLen",
  "--gpu-memory-utilization": "vllm.gpuMemoryUtilization",
  "--limit-mm-per-prompt": "vllm.imageLimit / vllm.videoLimit",
  "--tensor-parallel-size": "vllm.tensorParallelSize",
  "--pipeline-parallel-size": "vllm.pipelineParallelSize",
  "--distributed-executor-backend": "(rendered from the node count)",
  "--worker-use-ray": "(deprecated: rendered as --distributed-executor-backend ray)",
  "--enforce-eager": "vllm.enforceEager",
  "--max-num-batched-tokens": "vllm.maxNumBatchedTokens",
  "--max-num-seqs": "vllm.maxNumSeqs",
  "--block-size": "vllm.blockSize",
  "--quantization": "vllm.quantization",
  "--kv-cache-dtype": "vllm.kvCacheDtype",
  "--mm-processor-kwargs": "vllm.minPixels / vllm.maxPixels",
  "--swap-space": "vllm.swapSpaceGiB",
  "--disable-custom-all-reduce": "vllm.disableCustomAllReduce",
  "--api-key": "secrets.apiKey (a flag would show the key in process lists)",
  "--model": "model.id",
  "--revision": "model.revision",
};

export interface ArgsInput {
  readonly modelDir: string;
  readonly servedModelName: string;
  readonly vllm: VllmConfig;
  readonly features: VllmFeatures;
  readonly dtype: Dtype;
  readonly tp: number;
  readonly pp: number;
  readonly multiNode: boolean;
  readonly hasVision: boolean;
}

const DTYPE_FLAG: Readonly<Record<Dtype, string>> = {
  bfloat16: "bfloat16",
  float16: "half",
  float32: "float32",
};

export function renderVllmArgs(a: ArgsInput): string[] {
  const v = a.vllm;
  const args = [
    "serve",
    a.modelDir,
    "--served-model-name",
    a.servedModelName,
    "--host",
    "0.0.0.0",
    "--port",
    String(v.port),
    "--dtype",
    DTYPE_FLAG[a.dtype],
    "--max-model-len",
    String(v.maxModelLen),
    "--gpu-memory-utilization",
    String(v.gpuMemoryUtilization),
  ];
  if (a.hasVision) {
    args.push(
      "--limit-mm-per-prompt",
      a.features.limitMmSyntax === "json"
        ? JSON.stringify({ image: v.imageLimit, video: v.videoLimit })
        : `image=${v.imageLimit},video=${v.videoLimit}`,
    );
  }
  if (a.tp > 1) args.push("--tensor-parallel-size", String(a.tp));
  if (a.pp > 1) args.push("--pipeline-parallel-size", String(a.pp));
  if (a.multiNode) args.push("--distributed-executor-backend", "ray");
  if (v.enforceEager) args.push("--enforce-eager");
  if (v.maxNumBatchedTokens !== undefined)
    args.push("--max-num-batched-tokens", String(v.maxNumBatchedTokens));
  if (v.maxNumSeqs !== undefined) args.push("--max-num-seqs", String(v.maxNumSeqs));
  if (v.blockSize !== 16) args.push("--block-size", String(v.blockSize));
  if (v.quantization) args.push("--quantization", v.quantization);
  if (v.kvCacheDtype !== "auto") args.push("--kv-cache-dtype", v.kvCacheDtype);
  if (
    a.hasVision &&
    (v.minPixels !== undefined || v.maxPixels !== undefined) &&
    a.features.mmProcessorKwargs
  ) {
    const kw: Record<string, number> = {};
    if (v.minPixels !== undefined) kw["min_pixels"] = v.minPixels;
    if (v.maxPixels !== undefined) kw["max_pixels"] = v.maxPixels;
    args.push("--mm-processor-kwargs", JSON.stringify(kw));
  }
  if (v.swapSpaceGiB !== undefined && a.features.swapSpace)
    args.push("--swap-space", String(v.swapSpaceGiB));
  if (v.disableCustomAllReduce) args.push("--disable-custom-all-reduce");
  args.push(...v.extraArgs);
  return args;
}

/** A POSIX-shell rendering of an argv, for people to read and paste. */
export function shellJoin(argv: readonly string[]): string {
  return argv
    .map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(" ");
}
