/**
 * The refusals and cautions of a stack, each with its path, the value and what is allowed.
 */
import { AMIS } from "../catalogs/amis";
import {
  defaultLockPath,
  labVllmBuild,
  lockedVllmVersions,
  publicVersion,
  type LockSummary,
} from "../catalogs/locks";
import { LOCKS } from "../catalogs/python-locks";
import type { Gpu } from "../catalogs/gpus";
import { MIN_VLLM_FOR, awqVariantOf, type ModelSpec } from "../catalogs/models";
import { PORTS, type PortName } from "../catalogs/ports";
import { VLLM_FLAG_SPANS, VLLM_FLAGS_READ_UP_TO, VLLM_SHORT_FLAGS } from "../catalogs/vllm-flags";
import {
  NEWEST_VERIFIED_VLLM,
  compareVersions,
  parseVersion,
  newestReleaseWhere,
  unreleasedProblem,
  v1SettingsOf,
  v1Unsupported,
  vllmDefaults,
  vllmFeatures,
  type VllmFeatures,
} from "../catalogs/vllm";
import { describeExposure, exposure, sshTooOpen } from "../config/cidr";
import { closest, type Issue } from "../config/errors";
import { secretSource, type StackConfig, type VllmConfig } from "../config/schema";
import { CUDA_CONTEXT_GiB, effectiveMaxPixels, maxImageTokens, type Dtype } from "./memory";
import { RENDERED_FLAGS, extraFlags } from "./vllm-args";
import {
  tensorParallelProblem,
  allowedTensorParallelSizes,
  quantizationProblem,
  resolveDtype,
} from "./parallel";
import type { Hardware } from "./hardware";
import type { PlanOptions, PythonEnvPlan } from "./types";

export function checkNetworkAndSecrets(c: StackConfig, opts: PlanOptions, issues: Issue[]): void {
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
  } else if (sshTooOpen(ssh)) {
    issues.push({
      path: "network.sshCidrs",
      value: c.network.sshCidrs,
      message: `${c.network.sshCidrs.join(", ")} ${c.network.sshCidrs.length > 1 ? "let" : "lets"} ${ssh.ipv4Addresses.toLocaleString("en-US")} public addresses reach SSH; allowed: at most a /16's worth (65,536) together, private ranges not counted. Give your own address as a /32 (curl -s https://checkip.amazonaws.com), or none and use SSM Session Manager`,
    });
  }
  for (const key of ["hfToken", "apiKey"] as const) {
    const ref = c.secrets[key];
    if (!ref) continue;
    const source = secretSource(ref)!;
    if (source.kind === "config" && opts.secretKeys && !opts.secretKeys.has(source.name)) {
      issues.push({
        path: `secrets.${key}`,
        value: ref,
        message: `names Pulumi config key "${source.name}", which the stack does not hold as a secret; run: pulumi config set --secret ${source.name} <value>`,
      });
    }
    if (source.kind === "ssm" && c.target.kind !== "aws") {
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
export function checkPort(port: number, issues: Issue[]): void {
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

/** Whether the pinned release has `flag` (its spans in catalogs/vllm-flags.ts). */
export function releaseHas(flag: string, version: ReturnType<typeof parseVersion>): boolean {
  if (!version) return false;
  return (VLLM_FLAG_SPANS[flag] ?? "").split(",").some((span) => {
    if (!span) return false;
    const [from, to] = span.split("-");
    return (
      compareVersions(version, parseVersion(from!)!) >= 0 &&
      (!to || compareVersions(version, parseVersion(to)!) <= 0)
    );
  });
}

/**
 * A flag that takes no value in the pinned release: one of a pair `--x` / `--no-x` (argparse's
 * BooleanOptionalAction, vLLM ≥ 0.8.5's boolean config fields: nargs 0, so "--x=true" is refused
 * with "ignored explicit argument" and a value after it is a stray positional).
 */
function isBooleanFlag(flag: string, version: ReturnType<typeof parseVersion>): boolean {
  const positive = flag.startsWith("--no-") ? `--${flag.slice(5)}` : flag;
  return releaseHas(`--no-${positive.slice(2)}`, version);
}

/**
 * Extra flags: none that the plan renders (under any spelling: a short alias such as `-tp`, or the
 * negation `--no-enforce-eager`, would slip past a check of long names), none that the pinned
 * release does not have (its flags as read from its sdist, catalogs/vllm-flags.ts) — vLLM would
 * refuse to start with "unrecognized arguments" after the machines are paid for — and no value on
 * a flag that takes none.
 */
export function checkExtraArgs(v: VllmConfig, issues: Issue[]): void {
  const version = parseVersion(v.version);
  const checkable =
    version !== undefined && compareVersions(version, parseVersion(VLLM_FLAGS_READ_UP_TO)!) <= 0;
  const flags = extraFlags(v.extraArgs, VLLM_SHORT_FLAGS);
  v.extraArgs.forEach((arg, i) => {
    const path = `vllm.extraArgs[${i}]`;
    if (!arg.startsWith("-") || /^-\d/.test(arg)) {
      // A value: after a flag that takes none, vLLM reads it as a second model name.
      const prev = flags.find((f) => f.index === i - 1);
      if (checkable && prev && prev.inline === undefined && isBooleanFlag(prev.flag, version))
        issues.push({
          path,
          value: arg,
          message: `follows ${prev.name}, which takes no value in vLLM ${v.version} (a --x / --no-x switch): vLLM would stop with "unrecognized arguments: ${arg}"; remove it, or write the negation (--no-${prev.flag.replace(/^--(no-)?/, "")}) to turn it off`,
        });
      return;
    }
    const { name, flag, inline } = flags.find((f) => f.index === i)!;
    if (!flag.startsWith("--")) {
      issues.push({
        path,
        value: arg,
        message: `${name} is not one of vLLM's short aliases (${Object.keys(VLLM_SHORT_FLAGS).join(", ")}); write the long flag`,
      });
      return;
    }
    const positive = flag.startsWith("--no-") ? `--${flag.slice(5)}` : undefined;
    const owner = RENDERED_FLAGS[flag] ?? (positive ? RENDERED_FLAGS[positive] : undefined);
    if (owner) {
      const spelled = name === flag ? flag : `${name} (${flag})`;
      issues.push({
        path,
        value: arg,
        message: RENDERED_FLAGS[flag]
          ? `${spelled} is rendered from ${owner}; set that instead`
          : `${spelled} negates ${positive}, which is rendered from ${owner}; set that instead`,
      });
      return;
    }
    if (!checkable) return;
    if (inline !== undefined && isBooleanFlag(flag, version)) {
      const base = flag.replace(/^--(no-)?/, "");
      issues.push({
        path,
        value: arg,
        message: `${name} takes no value in vLLM ${v.version} (argparse BooleanOptionalAction: "ignored explicit argument '${inline}'"); write --${base} to turn it on, --no-${base} to turn it off`,
      });
      return;
    }
    if (releaseHas(flag, version)) return;
    const spans = VLLM_FLAG_SPANS[flag];
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

/** The pinned vLLM release: real, new enough for the architecture, built for the card and the image's Python. */
export function checkVersion(
  c: StackConfig,
  spec: ModelSpec | undefined,
  gpu: Gpu | undefined,
  issues: Issue[],
  warnings: string[],
): VllmFeatures | undefined {
  const v = c.vllm;
  const version = parseVersion(v.version);
  if (!version) {
    issues.push({
      path: "vllm.version",
      value: v.version,
      message: 'must be an exact PyPI version such as "0.11.0" (no ranges: the plan depends on it)',
    });
  } else {
    const arch = spec?.architecture ?? "Qwen2VLForConditionalGeneration";
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
  const v1Settings = v1SettingsOf(v);
  if (version && v.engine !== undefined) {
    // What this release has: V0 alone (before 0.8.0), both (0.8.0–0.10.x), V1 alone (0.11.0 on).
    const base = vllmFeatures(version, gpu?.computeCapability ?? 8.0);
    const unsupported = gpu ? v1Unsupported(version, gpu.computeCapability, v1Settings) : undefined;
    const engineProblem =
      v.engine === "v0" && !base.hasV0
        ? `vLLM ${v.version} has no V0 engine (removed in 0.11.0); remove vllm.engine or pin vLLM ≤ 0.10.2`
        : v.engine === "v1" && !base.readsUseV1 && base.hasV0
          ? `this project plans the V1 engine from vLLM 0.8.0, its first release by default; remove vllm.engine or pin vLLM ≥ 0.8.0`
          : v.engine === "v1" && unsupported
            ? `vLLM ${v.version} refuses it here ("VLLM_USE_V1=1 is not supported with ${unsupported}.": engine/arg_utils.py); remove vllm.engine to let vLLM run V0${unsupported === "Compute Capability < 8.0" ? ", or pin vLLM ≥ 0.10.2" : ""}`
            : undefined;
    if (engineProblem)
      issues.push({ path: "vllm.engine", value: v.engine, message: engineProblem });
  }
  const features =
    version && gpu ? vllmFeatures(version, gpu.computeCapability, v.engine, v1Settings) : undefined;
  if (features && gpu && gpu.computeCapability < features.minComputeCapability)
    issues.push({
      path: "vllm.version",
      value: v.version,
      message: `its wheels are built for CUDA ${features.cudaVersion}, which has no kernels for ${gpu.name} (compute capability ${gpu.computeCapability}; CUDA 13 dropped Volta); pin vLLM ≤ ${newestReleaseWhere(gpu.computeCapability, (f) => gpu.computeCapability >= f.minComputeCapability) ?? "an older release"} (the newest built for it)`,
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
        message: `needs Python ≥ ${features.minPython} (its wheel's Requires-Python), but ${c.target.ami} ships Python ${ami.python}; pin vLLM ≤ ${newestReleaseWhere(gpu?.computeCapability ?? 8.0, (f) => compareVersions(parseVersion(`${ami.python}.0`)!, parseVersion(`${f.minPython}.0`)!) >= 0) ?? "an older release"}, or set target.ami to an image with a newer Python (${Object.entries(
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
  return features;
}

/** Provisioning settings that contradict each other or the target. */
export function checkProvisioning(c: StackConfig, issues: Issue[], warnings: string[]): void {
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
}

/**
 * The Python lock the nodes sync to: it exists, pins the release the plan is for, the transformers
 * floor the plan computed, the hf CLI the weights step runs and (multi-node) Ray. Returns what the
 * plan shows of it.
 */
/** vLLM's CPU build serves on hosts (the lab); an AWS GPU instance runs the CUDA build. */
export function checkCpuBuild(c: StackConfig, issues: Issue[]): void {
  if (c.vllm.cpuKvCacheGiB !== undefined && c.target.kind === "aws")
    issues.push({
      path: "vllm.cpuKvCacheGiB",
      value: c.vllm.cpuKvCacheGiB,
      message:
        "is for vLLM's CPU build on hosts (target.kind hosts, the lab); an AWS GPU instance serves with the CUDA build: drop it",
    });
}

export function checkPythonLock(
  c: StackConfig,
  features: VllmFeatures | undefined,
  multiNode: boolean,
  issues: Issue[],
  locks: Readonly<Record<string, LockSummary>> = LOCKS,
): PythonEnvPlan | undefined {
  const path = c.provisioning.pythonLock ?? defaultLockPath(c.vllm.version);
  const where =
    c.provisioning.pythonLock !== undefined
      ? "provisioning.pythonLock"
      : "provisioning.pythonLock (default: locks/vllm-<vllm.version>.txt)";
  const lock = locks[path];
  if (!lock) {
    issues.push({
      path: where,
      value: path,
      message: `no lock file there: make it with "npm run lock -- ${c.vllm.version}" (resolves vLLM ${c.vllm.version}'s environment from PyPI once and pins every package, so every node gets the same) and commit it with catalogs/python-locks.ts; a lock of your own goes under locks/ and is indexed with "npm run lock -- --index" (locked releases: ${lockedVllmVersions().join(", ") || "none"})`,
    });
    return undefined;
  }
  const problems: string[] = [];
  const pinned = lock.pins["vllm"];
  if (!pinned) problems.push("it pins no vllm");
  else if (publicVersion(pinned) !== c.vllm.version)
    problems.push(`it pins vllm ${pinned}, the stack's vllm.version is ${c.vllm.version}`);
  const transformers = lock.pins["transformers"];
  const floor = features?.minTransformers;
  if (!transformers) problems.push("it pins no transformers");
  else if (
    floor &&
    transformers
      .split(" / ")
      .some(
        (t) => compareVersions(parseVersion(t) ?? parseVersion("0.0.0")!, parseVersion(floor)!) < 0,
      )
  )
    problems.push(
      `it pins transformers ${transformers}, older than the ${floor} this model and release need`,
    );
  // vLLM's CPU build (a `+cpu` vllm, lab/build_vllm_wheel.py) allocates VLLM_CPU_KVCACHE_SPACE,
  // not GPU memory: the plan can predict its KV cache only with the space given.
  const cpuBuild = labVllmBuild(pinned) === "cpu";
  if (cpuBuild && c.vllm.cpuKvCacheGiB === undefined)
    problems.push(
      `it pins vLLM's CPU build (vllm ${pinned}): set vllm.cpuKvCacheGiB (its KV cache in GiB of host memory, VLLM_CPU_KVCACHE_SPACE)`,
    );
  if (!cpuBuild && c.vllm.cpuKvCacheGiB !== undefined)
    problems.push(
      `vllm.cpuKvCacheGiB (${c.vllm.cpuKvCacheGiB}) is for vLLM's CPU build, and it pins vllm ${pinned ?? "nothing"}: drop vllm.cpuKvCacheGiB, or use a CPU lock (npm run lock -- ${c.vllm.version} --lab cpu)`,
    );
  if (!lock.pins["huggingface-hub"]) problems.push("it pins no huggingface-hub (the hf CLI)");
  if (multiNode && !lock.pins["ray"])
    problems.push("it pins no ray, which a multi-node replica runs");
  if (problems.length) {
    issues.push({
      path: where,
      value: path,
      message: `${problems.join("; ")}: remake it with "npm run lock -- ${c.vllm.version}"`,
    });
    return undefined;
  }
  const pick = (name: string) => lock.pins[name];
  return {
    lock: path,
    packages: lock.packages,
    vllm: pinned!,
    ...(pick("torch") ? { torch: pick("torch") } : {}),
    transformers: transformers!,
    huggingfaceHub: pick("huggingface-hub")!,
    ...(pick("ray") ? { ray: pick("ray") } : {}),
  };
}

/**
 * The model on this hardware and vLLM: dtype, parallelism, context, quantization, utilization,
 * batch and image limits — every problem into `issues`, every caution into `warnings`.
 */
export function checkModelOnHardware(
  c: StackConfig,
  m: ModelSpec,
  gpu: Gpu,
  hw: Hardware,
  features: VllmFeatures | undefined,
  issues: Issue[],
  warnings: string[],
): { dtype?: Dtype; tp: number; pp: number } {
  const v = c.vllm;
  const d = resolveDtype(v.dtype, m, gpu, warnings);
  if (d.problem) issues.push({ path: "vllm.dtype", value: v.dtype, message: d.problem });
  const dtype = d.dtype;
  if (
    (m.quantization?.method === "awq" || m.quantization?.method === "gptq") &&
    dtype === "bfloat16"
  )
    warnings.push(
      `${m.quantization.method.toUpperCase()} kernels are written for float16: "half" is recommended for quantized models`,
    );

  const tp = v.tensorParallelSize ?? hw.gpusPerNode;
  const pp = v.pipelineParallelSize ?? hw.nodesPerReplica;
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
        path: v.maxNumBatchedTokens !== undefined ? "vllm.maxNumBatchedTokens" : "vllm.maxNumSeqs",
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
        message: `vLLM ${v.version} runs the V1 engine, which has no --swap-space; remove it${features.hasV0 ? ", or set vllm.engine: v0" : ""}`,
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
      const maxPixels = effectiveMaxPixels(v, m.vision);
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
  return { ...(dtype ? { dtype } : {}), tp, pp };
}
