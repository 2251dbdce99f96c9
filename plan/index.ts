/**
 * The plan: typed config + catalogs → everything the deployment needs to know, with no I/O.
 * A plan that cannot work fails here, before any resource exists: `planStack` throws a ConfigError
 * listing every problem, a missing lock file among them; a plan whose model does not fit comes back
 * with `fits: false`, the numbers and the ways out, and the callers (Pulumi program, `plan`, `fit`)
 * refuse to go on. `previewStack` (`plan`, `fit`) answers the memory question even when the stack
 * cannot deploy yet, and lists what keeps it from deploying beside the plan.
 */
import { INSTANCE_TYPES, vcpuQuota } from "../catalogs/instances";
import { labVllmBuild } from "../catalogs/locks";
import { v1SettingsOf } from "../catalogs/vllm";
import { ncclFloorGbps } from "../catalogs/tools";
import { ConfigError, type Issue } from "../config/errors";
import { parseSections } from "../config/parse";
import type { StackConfig } from "../config/schema";
import { DTYPE_BYTES, GiB, checkpointBytes, effectiveMaxPixels, round, type Dtype } from "./memory";
import { resolveModel } from "./model";
import { modelDir, repoFolder } from "./layout";
import { renderVllmArgs } from "./vllm-args";
import type { Plan, PlanDraft, PlanOptions, PlanPreview, PythonEnvPlan, Setup } from "./types";
import { planMemory, plannedKvCache } from "./profile";
import { quantizationLabel } from "./parallel";
import {
  checkRootVolume,
  diskBudget,
  resolveHardware,
  planNodes,
  planPorts,
  type EnvironmentKind,
} from "./hardware";
import {
  checkNetworkAndSecrets,
  checkPort,
  checkExtraArgs,
  checkVersion,
  checkProvisioning,
  checkPythonLock,
  checkCpuBuild,
  checkModelOnHardware,
} from "./checks";
import { waysOut } from "./ways-out";
import { marginVerdict } from "./accuracy";
import {
  checkApiKeyForAnyCidr,
  checkAwsTarget,
  checkChunking,
  checkCustomModel,
  checkHalfPrecision,
  checkHostAddresses,
  checkOneImageFits,
  checkRevisionOwner,
  checkSecretFiles,
} from "./input-checks";

export * from "./types";
export {
  batchSizes,
  modelledEncoderProfile,
  planMemory,
  profileEncoder,
  type EncoderProfile,
} from "./profile";
export {
  allowedTensorParallelSizes,
  quantizationLabel,
  quantizationProblem,
  resolveDtype,
  tensorParallelProblem,
} from "./parallel";

// ---- the plan ------------------------------------------------------------------------------

/** Raw sections (as read from Pulumi config or a stack file) → a plan, or every problem at once. */
export function planStack(raw: Readonly<Record<string, unknown>>, opts: PlanOptions = {}): Plan {
  return deployablePlan(previewStack(raw, opts));
}

/**
 * Raw sections → the plan and what keeps it from deploying (a missing lock file): the memory
 * question is answered for any release. Anything else wrong throws, every problem at once.
 */
export function previewStack(
  raw: Readonly<Record<string, unknown>>,
  opts: PlanOptions = {},
): PlanPreview {
  const parsed = parseSections(raw);
  const issues = [...parsed.issues];
  const s = parsed.sections;
  if (issues.length === 0) return previewConfig(s as StackConfig, opts);
  // Run the plan's checks on what did parse, so one run reports everything it can.
  const complete =
    s.model && s.target && s.vllm && s.network && s.monitoring && s.secrets && s.provisioning;
  if (!complete && s.model) issues.push(...resolveModel(s.model, []).issues);
  if (complete) {
    try {
      issues.push(...previewConfig(s as StackConfig, opts).problems);
    } catch (e) {
      // A field the parser refused is said once, by the parser.
      const refused = new Set(parsed.issues.map((i) => i.path));
      if (e instanceof ConfigError) issues.push(...e.issues.filter((i) => !refused.has(i.path)));
      else throw e;
    }
  }
  throw new ConfigError(issues);
}

export function planConfig(c: StackConfig, opts: PlanOptions = {}): Plan {
  return deployablePlan(previewConfig(c, opts));
}

/** The preview's plan when nothing keeps it from deploying; its problems as a ConfigError otherwise. */
function deployablePlan({ plan, problems }: PlanPreview): Plan {
  if (problems.length > 0 || !plan.python) throw new ConfigError(problems);
  return { ...plan, python: plan.python };
}

export function previewConfig(c: StackConfig, opts: PlanOptions = {}): PlanPreview {
  const issues: Issue[] = [];
  // What keeps a plannable stack from deploying, not its memory plan: its lock file (a
  // provisioning concern), and a context no full-size image fits (vLLM starts; requests fail).
  const problems: Issue[] = [];
  const warnings: string[] = [];
  const v = c.vllm;

  const resolved = resolveModel(c.model, warnings);
  issues.push(...resolved.issues);
  const hw = resolveHardware(c, issues);
  const gpu = opts.gpu ?? hw?.gpu;

  const features = checkVersion(c, resolved.model?.spec, gpu, issues, warnings);

  checkNetworkAndSecrets(c, opts, issues);
  checkProvisioning(c, issues, warnings);
  checkExtraArgs(v, issues);
  checkPort(v.port, issues);
  checkCpuBuild(c, issues);
  checkApiKeyForAnyCidr(c, issues);
  checkSecretFiles(c, opts.fileExists, issues);
  checkHostAddresses(c, issues);
  checkAwsTarget(c, issues);
  checkCustomModel(c, issues);
  checkRevisionOwner(c, issues);

  const model = resolved.model;
  let dtype: Dtype | undefined;
  let tp = 0;
  let pp = 0;
  if (model && gpu && hw)
    ({ dtype, tp, pp } = checkModelOnHardware(c, model.spec, gpu, hw, features, issues, warnings));
  if (model && gpu) {
    checkOneImageFits(c, model.spec, problems);
    checkChunking(c, model.spec, gpu, features, issues);
    checkHalfPrecision(model.spec, gpu, dtype, warnings);
  }
  // One definition of multi-node: the vLLM group spans machines (by pipeline stages, or tensor
  // parallelism wider than a node), so Ray runs across them and the members must reach each other.
  const multiNode = hw !== undefined && tp * pp > hw.gpusPerNode;
  const python = checkPythonLock(c, features, multiNode, problems, opts.locks);

  // What the steps write: the checkpoint (given, or derived from the model), the lock's
  // environment and caches (small without torch); and the volume that holds them with the system.
  const givenGiB = opts.weightsGiB ?? model?.weightsGiBOverride;
  const checkpointGiB = model ? (givenGiB ?? checkpointBytes(model.spec) / GiB) : undefined;
  const disk =
    checkpointGiB === undefined ? undefined : diskBudget(checkpointGiB, environmentKind(python));
  const rootVolumeGiB =
    disk && checkpointGiB !== undefined ? checkRootVolume(c, checkpointGiB, disk, issues) : 0;

  if (issues.length > 0 || !model || !gpu || !hw || !features || !dtype) {
    throw new ConfigError(
      issues.length
        ? issues
        : [{ path: "", value: undefined, message: "incomplete configuration" }],
    );
  }

  const m = model.spec;
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
    maxPixels: effectiveMaxPixels(v, m.vision),
    maxPixelsSet: v.maxPixels !== undefined,
    enforceEager: v.enforceEager,
    blockSize: v.blockSize,
    ...(v.maxNumBatchedTokens !== undefined ? { maxNumBatchedTokens: v.maxNumBatchedTokens } : {}),
    ...(v.maxNumSeqs !== undefined ? { maxNumSeqs: v.maxNumSeqs } : {}),
    ...(v.engine !== undefined ? { engineSet: v.engine } : {}),
    v1Settings: v1SettingsOf(v),
  };
  const memory = planMemory(setup);
  const binding = memory.stages.reduce((a, b) => (b.kvCacheTokens < a.kvCacheTokens ? b : a));

  if (!memory.cudaGraphsInBudget && !v.enforceEager) {
    const graphs = Math.max(...memory.stages.map((st) => st.cudaGraphGiB));
    if (graphs > memory.headroomGiB)
      warnings.push(
        `CUDA graphs (~${graphs.toFixed(2)} GiB) are captured outside the ${(v.gpuMemoryUtilization * 100).toFixed(0)} % budget, but only ${Math.max(0, memory.headroomGiB).toFixed(2)} GiB is left beside the CUDA context: lower vllm.gpuMemoryUtilization or set vllm.enforceEager`,
      );
  }

  const dropped = memory.profile.droppedPrompt;
  if (dropped)
    warnings.push(
      `vLLM ${v.version} (V0) profiles no image: its dummy prompt (${dropped.tokens} tokens: ${v.imageLimit} image(s) and ${v.videoLimit} video(s) at max_pixels) outgrows its ${dropped.share}-token share of max_num_batched_tokens, so it is profiled as text: the vision tower's peak is not reserved, the KV cache takes that memory and an image request can then run out of memory; lower vllm.maxPixels or vllm.imageLimit / vllm.videoLimit until the prompt fits, or raise vllm.maxNumBatchedTokens`,
    );

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
  const ports = planPorts(c, multiNode);
  const instances = hw.nodesPerReplica * hw.replicas;

  const plan: PlanDraft = {
    ...(opts.stack ? { stack: opts.stack } : {}),
    model: {
      id: m.id,
      revision: model.revision,
      servedModelName: model.servedModelName,
      ...(m.quantization ? { quantization: quantizationLabel(m.quantization) } : {}),
      checkpointGiB: disk!.weightsGiB,
      license: m.license,
      dir,
      ...(opts.modelDefaults?.length ? { defaulted: opts.modelDefaults } : {}),
    },
    target: c.target.kind,
    ...(c.target.kind === "aws"
      ? { instanceType: c.target.instanceType, region: c.target.region }
      : {}),
    gpu,
    gpusPerNode: hw.gpusPerNode,
    nodesPerReplica: hw.nodesPerReplica,
    multiNode,
    replicas: hw.replicas,
    nodes,
    tensorParallelSize: tp,
    pipelineParallelSize: pp,
    dtype,
    vllmVersion: v.version,
    engine: features.engine,
    ...(v.engine !== undefined && features.readsUseV1
      ? { vllmUseV1: v.engine === "v0" ? ("0" as const) : ("1" as const) }
      : {}),
    features,
    maxModelLen: v.maxModelLen,
    gpuMemoryUtilization: v.gpuMemoryUtilization,
    imageLimit: setup.imageLimit,
    memory,
    fits: memory.fits,
    errorBand: marginVerdict(m, memory.kvCacheTokens, v.maxModelLen, memory.fits),
    kvCacheTokens: memory.kvCacheTokens,
    kvCachePlanned: plannedKvCache(setup, memory, v.cpuKvCacheGiB),
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
    apiPort: v.port,
    maxPixels: setup.maxPixels,
    nvswitch:
      c.target.kind === "aws"
        ? INSTANCE_TYPES.get(c.target.instanceType)!.nvswitch
        : gpu.interconnect === "nvswitch",
    efa: c.target.kind === "aws" && c.target.efa,
    ncclMinBusbwGbps: ncclFloorGbps(
      gpu.interconnect,
      multiNode,
      c.target.kind === "aws" && c.target.efa,
    ),
    ...(c.target.kind === "aws" ? { aws: c.target } : { hosts: c.target }),
    network: c.network,
    monitoring: c.monitoring,
    provisioning: {
      ...c.provisioning,
      ...(c.provisioning.mirrorUrl
        ? { mirrorUrl: expandMirrorUrl(c.provisioning.mirrorUrl, m.id, model.revision) }
        : {}),
    },
    secrets: c.secrets,
    ...(python ? { python } : {}),
    disk: disk!,
  };
  return { plan, problems, deployable: plan.fits && problems.length === 0 };
}

/** What the lock installs: torch's CUDA stack (a missing lock is planned as one), vLLM's CPU build, or no torch. */
function environmentKind(python: PythonEnvPlan | undefined): EnvironmentKind {
  if (!python) return "cuda";
  if (!python.torch) return "none";
  return labVllmBuild(python.vllm) === "cpu" ? "cpu" : "cuda";
}

/** provisioning.mirrorUrl with `{repo}` ("/" as "--") and `{revision}` filled in. */
export function expandMirrorUrl(url: string, repo: string, revision: string): string {
  return url.replaceAll("{repo}", repoFolder(repo)).replaceAll("{revision}", revision);
}
