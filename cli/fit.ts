/**
 * `npm run fit -- …`: does a model fit on some GPUs, without a stack? Catalog models and GPUs by
 * name, or anything else: `--model-config` reads a Hugging Face config.json, `--gpu-memory-gib`
 * describes a card outside the catalog. Same planner, same checks, same JSON as `plan`. Any release
 * in the catalog is answered, locked or not: the lock a deployment would need is listed as a problem.
 */
import { readFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { customGpu, GPU_NAMES, GPUS } from "../catalogs/gpus";
import { INSTANCE_TYPES } from "../catalogs/instances";
import { MODELS } from "../catalogs/models";
import { ConfigError } from "../config/errors";
import { previewStack } from "../plan";
import type { DefaultedField } from "../catalogs/hf-config-defaults";
import { readHfConfig } from "../plan/model";
import { runCommand, UsageError } from "../config/errors";
import { flags, planReply, printed, stringFlags } from "./main";

export const FIT_USAGE = `usage: npm run fit -- (--model <id> | --model-config <config.json> [--weights-gib W])
                     (--gpu <name> | --gpu-memory-gib G [--compute-capability C] | --instance-type <type>)
                     [--gpus-per-node N] [--nodes M] [--max-model-len L] [--gpu-memory-utilization U]
                     [--dtype auto|half|bfloat16|float32] [--vllm-version V] [--image-limit K]
                     [--video-limit K] [--max-pixels P] [--max-num-seqs S] [--max-num-batched-tokens B]
                     [--kv-cache-dtype auto|fp8] [--engine v0|v1] [--tp T] [--pp P] [--enforce-eager]
                     [--json]
  A log's settings map onto these; what vLLM leaves at its defaults (its batch sizes for the card,
  its engine) is planned as vLLM picks it. The limits are the stacks' (4 images, no video) unless
  given: vLLM's own are 999 each on V1 and 1 each on V0 (--image-limit 1 --video-limit 1).
  --engine is VLLM_USE_V1 (0.8.0–0.10.x): v0 for a log whose run set VLLM_USE_V1=0.
  models: ${[...MODELS.keys()].join(", ")}
  GPUs:   ${GPU_NAMES.join(", ")}`;

function positiveNumber(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`${flag}: "${text}" is not a positive number`);
  return n;
}

/** Stack-config paths → the fit flag that sets them. */
const FLAG_OF: Readonly<Record<string, string>> = {
  "vllm.maxModelLen": "--max-model-len",
  "vllm.gpuMemoryUtilization": "--gpu-memory-utilization",
  "vllm.imageLimit": "--image-limit",
  "vllm.videoLimit": "--video-limit",
  "vllm.maxPixels": "--max-pixels",
  "vllm.maxNumSeqs": "--max-num-seqs",
  "vllm.maxNumBatchedTokens": "--max-num-batched-tokens",
  "vllm.kvCacheDtype": "--kv-cache-dtype",
  "vllm.engine": "--engine",
  "vllm.tensorParallelSize": "--tp",
  "vllm.pipelineParallelSize": "--pp",
  "vllm.dtype": "--dtype",
  "vllm.version": "--vllm-version",
  "vllm.enforceEager": "--enforce-eager",
  "target.instanceType": "--instance-type",
  "target.nodes": "--nodes",
  "model.id": "--model",
  "model.custom": "--model-config",
  "model.revision": "--model",
};

function flagOf(path: string): string {
  if (path.startsWith("vllm.tensorParallelSize (default")) return "--tp (default: --gpus-per-node)";
  const key = Object.keys(FLAG_OF).find(
    (k) =>
      path === k ||
      path.startsWith(`${k} `) ||
      path.startsWith(`${k}.`) ||
      path.startsWith(`${k}[`),
  );
  if (key) return FLAG_OF[key]!;
  if (path.startsWith("target.hosts")) return "--gpu / --gpus-per-node";
  return path;
}

/**
 * A readable name for a config.json's model: its `_name_or_path` when it names a repository, else
 * the folder holding the file (models/Qwen3-VL-8B-Instruct/config.json → Qwen3-VL-8B-Instruct).
 */
export function modelConfigName(json: unknown, path: string): string {
  const named = (json as Record<string, unknown> | null)?.["_name_or_path"];
  if (typeof named === "string" && /^[\w.-]+\/[\w.-]+$/.test(named)) return named;
  const dir = basename(dirname(resolve(path)));
  return dir && dir !== "." && dir !== "/" ? dir : basename(path);
}

export function fitCommand(argv: string[]): { code: number; output: string } {
  const { values: o } = flags(argv, {
    ...stringFlags(
      "model",
      "model-config",
      "weights-gib",
      "gpu",
      "gpu-memory-gib",
      "compute-capability",
      "instance-type",
      "gpus-per-node",
      "nodes",
      "max-model-len",
      "gpu-memory-utilization",
      "dtype",
      "vllm-version",
      "image-limit",
      "video-limit",
      "max-pixels",
      "max-num-seqs",
      "max-num-batched-tokens",
      "kv-cache-dtype",
      "engine",
      "tp",
      "pp",
    ),
    "enforce-eager": { type: "boolean" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (o.help) return { code: 0, output: FIT_USAGE };

  // Model.
  if (Boolean(o.model) === Boolean(o["model-config"]))
    throw new UsageError("give exactly one of --model or --model-config");
  const weightsGiB = positiveNumber("--weights-gib", o["weights-gib"]);
  let model: Record<string, unknown>;
  let modelDefaults: DefaultedField[] = [];
  if (o.model) {
    const spec = MODELS.get(o.model);
    model = { id: o.model, revision: spec?.knownRevision ?? "0".repeat(40) };
  } else {
    const path = o["model-config"]!;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new UsageError(`--model-config ${path}: ${(e as Error).message}`);
    }
    let custom;
    try {
      ({ custom, defaulted: modelDefaults } = readHfConfig(
        json,
        modelConfigName(json, path),
        weightsGiB,
      ));
    } catch (e) {
      throw new UsageError(`--model-config ${path}: ${(e as Error).message}`);
    }
    model = { custom, revision: "0".repeat(40) };
  }
  // vLLM's own default when --max-model-len is not given: the model's max_position_embeddings.
  const maxPositions = o.model
    ? MODELS.get(o.model)?.maxPositions
    : ((model["custom"] as { maxPositions?: number } | undefined)?.maxPositions ?? undefined);

  // Hardware.
  const hwFlags = [o.gpu, o["gpu-memory-gib"], o["instance-type"]].filter(
    (x) => x !== undefined,
  ).length;
  if (hwFlags !== 1)
    throw new UsageError("give exactly one of --gpu, --gpu-memory-gib or --instance-type");
  const nodes = positiveNumber("--nodes", o.nodes) ?? 1;
  let target: Record<string, unknown>;
  let gpuOverride;
  if (o["instance-type"]) {
    target = { kind: "aws", region: "us-east-1", instanceType: o["instance-type"], nodes };
    if (
      o["gpus-per-node"] &&
      INSTANCE_TYPES.get(o["instance-type"])?.gpuCount !== Number(o["gpus-per-node"])
    )
      throw new UsageError(
        `--gpus-per-node ${o["gpus-per-node"]} contradicts --instance-type ${o["instance-type"]}`,
      );
  } else {
    const gpusPerNode = positiveNumber("--gpus-per-node", o["gpus-per-node"]) ?? 1;
    let gpuName = o.gpu;
    if (o["gpu-memory-gib"]) {
      gpuOverride = customGpu(
        positiveNumber("--gpu-memory-gib", o["gpu-memory-gib"])!,
        positiveNumber("--compute-capability", o["compute-capability"]) ?? 8.0,
      );
      gpuName = GPU_NAMES[0];
    } else if (!GPUS.has(gpuName!)) {
      throw new UsageError(
        `--gpu: "${gpuName}" is not in the catalog (${GPU_NAMES.join(", ")}); use --gpu-memory-gib for another card`,
      );
    }
    target = {
      kind: "hosts",
      hosts: Array.from({ length: nodes }, (_, i) => ({
        name: `node${i}`,
        address: `node${i}`,
        gpu: gpuName,
        gpuCount: gpusPerNode,
      })),
    };
  }

  const vllm: Record<string, unknown> = {};
  const num = (flag: string, key: string) => {
    const text = o[flag as keyof typeof o] as string | undefined;
    if (text === undefined) return;
    const n = Number(text);
    if (Number.isNaN(n)) throw new UsageError(`--${flag}: "${text}" is not a number (NaN)`);
    if (!Number.isFinite(n))
      throw new UsageError(`--${flag}: ${text} is infinite; give a finite number`);
    vllm[key] = n;
  };
  if (o["max-model-len"] === undefined && maxPositions !== undefined)
    vllm["maxModelLen"] = maxPositions;
  num("max-model-len", "maxModelLen");
  num("gpu-memory-utilization", "gpuMemoryUtilization");
  num("image-limit", "imageLimit");
  num("video-limit", "videoLimit");
  num("max-pixels", "maxPixels");
  num("max-num-seqs", "maxNumSeqs");
  num("max-num-batched-tokens", "maxNumBatchedTokens");
  if (o["kv-cache-dtype"]) vllm["kvCacheDtype"] = o["kv-cache-dtype"];
  if (o.engine) vllm["engine"] = o.engine;
  num("tp", "tensorParallelSize");
  num("pp", "pipelineParallelSize");
  if (o.dtype) vllm["dtype"] = o.dtype;
  if (o["vllm-version"]) vllm["version"] = o["vllm-version"];
  if (o["enforce-eager"]) vllm["enforceEager"] = true;

  let preview;
  try {
    preview = previewStack(
      { model, target, vllm },
      {
        ...(gpuOverride ? { gpu: gpuOverride } : {}),
        ...(weightsGiB ? { weightsGiB } : {}),
        modelDefaults,
      },
    );
  } catch (e) {
    // Name what the user typed: --tp, not vllm.tensorParallelSize.
    if (e instanceof ConfigError)
      throw new ConfigError(
        e.issues.map((i) => ({ ...i, path: flagOf(i.path) })),
        "The fit cannot be planned",
      );
    throw e;
  }
  // The problems that keep it from deploying, named by the flags too.
  const problems = preview.problems.map((i) => ({ ...i, path: flagOf(i.path) }));
  return planReply({ ...preview, problems }, o.json, "fits");
}

if (require.main === module)
  void runCommand(FIT_USAGE, () => printed(fitCommand(process.argv.slice(2))));
