/**
 * How a plan reads: a text report for people and a JSON document for machines.
 */
import { PORTS } from "../catalogs/ports";
import { formatValue, type Issue } from "../config/errors";
import type { PlanDraft, PlanPreview, StageMemory } from "./types";
import { shellJoin } from "./vllm-args";
import { round } from "./memory";
import { ERROR_BANDS } from "./accuracy";

/** The plan and what keeps it from deploying (a missing lock file), beside its memory verdict. */
export function planToJson({
  plan: p,
  problems,
  deployable,
}: PlanPreview): Record<string, unknown> {
  return {
    stack: p.stack ?? null,
    fits: p.fits,
    deployable,
    errorBand: p.errorBand,
    problems,
    kvCacheTokens: p.kvCacheTokens,
    kvCachePlanned: p.kvCachePlanned,
    maxConcurrency: p.maxConcurrency,
    maxModelLen: p.maxModelLen,
    tensorParallelSize: p.tensorParallelSize,
    pipelineParallelSize: p.pipelineParallelSize,
    dtype: p.dtype,
    perGpu: p.perGpu,
    stages: p.memory.stages.map((s) => ({
      stage: s.stage,
      layers: s.layers,
      capacityGiB: round(s.capacityGiB, 2),
      budgetGiB: round(s.budgetGiB, 2),
      weightsGiB: round(s.weightsGiB, 2),
      activationGiB: round(s.activationGiB, 2),
      nonTorchGiB: round(s.nonTorchGiB, 2),
      cudaGraphGiB: round(s.cudaGraphGiB, 2),
      reservedGiB: round(s.reservedGiB, 2),
      kvCacheGiB: round(s.kvCacheGiB, 2),
      kvBytesPerToken: s.kvBytesPerToken,
      kvCacheTokens: s.kvCacheTokens,
    })),
    profile: p.memory.profile,
    model: p.model,
    gpu: {
      name: p.gpu.name,
      memoryGiB: p.gpu.memoryGiB,
      computeCapability: p.gpu.computeCapability,
    },
    target: p.target,
    instanceType: p.instanceType ?? null,
    region: p.region ?? null,
    gpusPerNode: p.gpusPerNode,
    nodesPerReplica: p.nodesPerReplica,
    replicas: p.replicas,
    nodes: p.nodes.map((n) => ({
      name: n.name,
      role: n.role,
      replica: n.replica,
      stage: n.stage,
      gpus: n.gpus,
      ...(n.host ? { address: n.host.address } : {}),
    })),
    vllmVersion: p.vllmVersion,
    engine: p.engine,
    vllmArgs: p.vllmArgs,
    ports: p.ports,
    rootVolumeGiB: p.rootVolumeGiB,
    costPerHourUsd: p.costPerHourUsd,
    costNote: p.costNote,
    ...(p.quota ? { quota: p.quota } : {}),
    driver: p.driver,
    python: p.python ?? null,
    disk: p.disk,
    warnings: p.warnings,
    waysOut: p.waysOut,
  };
}

const BAR = 48;

/** One GPU's memory as a bar: weights █, reserved ▓, KV cache ▒, outside the budget ░. */
export function memoryBar(s: StageMemory): string {
  const cells = (gib: number) => Math.max(0, Math.round((gib / s.capacityGiB) * BAR));
  const w = Math.min(BAR, cells(s.weightsGiB));
  const r = Math.min(BAR - w, cells(s.reservedGiB));
  const k = Math.min(BAR - w - r, cells(s.kvCacheGiB));
  const over = s.weightsGiB + s.reservedGiB > s.budgetGiB;
  const rest = BAR - w - r - k;
  return `[${"█".repeat(w)}${"▓".repeat(r)}${"▒".repeat(k)}${(over ? "!" : "░").repeat(rest)}]`;
}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}

function sourceText(s: PlanDraft["memory"]["profile"]["sources"]["batch"]): string {
  return s.source === "vllm" ? `vLLM's code (${s.computedWith})` : s.source;
}

const frames = (n: number) => `${fmt(n)} frame${n === 1 ? "" : "s"}`;

/** What the startup profile runs, and where each input came from (the table or the model). */
function profileText(p: PlanDraft): string {
  const f = p.memory.profile;
  const batch = `${fmt(f.maxNumBatchedTokens)} batched tokens, ${fmt(f.maxNumSeqs)} sequences [${sourceText(f.sources.batch)}]`;
  const encoder =
    f.modality === "none"
      ? f.droppedPrompt
        ? `no vision profile (V0 drops its ${fmt(f.droppedPrompt.tokens)}-token dummy prompt, longer than its ${fmt(f.droppedPrompt.share)}-token share)`
        : "no vision profile"
      : f.videosProfiled
        ? `${f.itemsProfiled - f.videosProfiled} × image and ${f.videosProfiled} × video of ${frames(f.videoFrames)}, ${fmt(f.itemsProfiled * f.tokensPerItem)} visual tokens in all [${sourceText(f.sources.encoder)}]`
        : `${f.itemsProfiled} × ${f.modality}${f.videoFrames ? ` of ${frames(f.videoFrames)}` : ""}, ${fmt(f.tokensPerItem)} tokens each [${sourceText(f.sources.encoder)}]`;
  const runner =
    p.memory.runner === "v0"
      ? "V0 engine"
      : `model runner ${p.memory.runner.toUpperCase()}${p.memory.cudaGraphsInBudget && p.memory.stages.some((st) => st.cudaGraphGiB > 0) ? ", CUDA graphs in the budget" : ""}`;
  return `${batch}; ${encoder}; ${runner}`;
}

export function planToText(p: PlanDraft, problems: readonly Issue[] = []): string {
  const out: string[] = [];
  const line = (label: string, text: string) => out.push(`  ${label.padEnd(11)}${text}`);
  out.push(p.stack ? `Plan for stack "${p.stack}"` : "Plan");
  line(
    "Model",
    `${p.model.id}${p.model.quantization ? ` (${p.model.quantization})` : ""} @ ${p.model.revision.slice(0, 12)}, ${p.model.checkpointGiB} GiB of weights, license ${p.model.license}`,
  );
  if (p.model.defaulted?.length)
    line(
      "Defaulted",
      `config.json omits ${p.model.defaulted.length} field(s), filled as transformers does: ${p.model.defaulted.map((d) => `${d.field} = ${JSON.stringify(d.value)} (${d.source})`).join(", ")}`,
    );
  const where =
    p.target === "aws"
      ? `AWS ${p.region}: ${p.nodesPerReplica * p.replicas} × ${p.instanceType}`
      : `${p.nodes.length} existing host(s) over SSH`;
  line(
    "Target",
    `${where}; ${p.gpusPerNode} × ${p.gpu.name} (${p.gpu.memoryGiB} GiB, cc ${p.gpu.computeCapability}) per node; ${p.replicas} replica(s)`,
  );
  line(
    "Parallel",
    `TP ${p.tensorParallelSize} × PP ${p.pipelineParallelSize}, dtype ${p.dtype}, vLLM ${p.vllmVersion} (${p.engine.toUpperCase()} engine)`,
  );
  out.push("  Nodes");
  for (const n of p.nodes) {
    const addr = n.host ? `  ${n.host.user}@${n.host.address}:${n.host.port}` : "";
    out.push(
      `    ${n.name.padEnd(12)} ${n.role.padEnd(7)} replica ${n.replica}  stage ${n.stage}  ${n.gpus} × ${p.gpu.name}${addr}`,
    );
  }
  out.push(
    `  Memory per GPU (█ weights ▓ reserved ▒ KV cache ░ outside ${Math.round(p.gpuMemoryUtilization * 100)} % budget)`,
  );
  for (const s of p.memory.stages) {
    out.push(`    stage ${s.stage} ${memoryBar(s)} ${s.layers} layers`);
    out.push(
      `            weights ${s.weightsGiB.toFixed(2)} + reserved ${s.reservedGiB.toFixed(2)} (activations ${s.activationGiB.toFixed(2)}, non-torch ${s.nonTorchGiB.toFixed(2)}${p.memory.cudaGraphsInBudget && s.cudaGraphGiB > 0 ? `, CUDA graphs ${s.cudaGraphGiB.toFixed(2)}` : ""}) + KV ${s.kvCacheGiB.toFixed(2)} of ${s.budgetGiB.toFixed(2)} GiB → ${fmt(s.kvCacheTokens)} tokens`,
    );
  }
  line("Profile", profileText(p));
  line(
    "KV cache",
    `${fmt(p.kvCacheTokens)} tokens ("GPU KV cache size" at startup) → ${p.maxConcurrency}× requests of ${fmt(p.maxModelLen)} tokens at once`,
  );
  if (p.kvCachePlanned.device === "cpu")
    line(
      "KV on CPU",
      `${fmt(p.kvCachePlanned.tokens)} tokens ("CPU KV cache size" at startup): ${p.kvCachePlanned.how}; the gate holds vLLM to it`,
    );
  line("Verdict", verdictText(p));
  for (const w of p.waysOut) out.push(`    - ${w}`);
  line(
    "vLLM",
    `${p.vllmUseV1 !== undefined ? `VLLM_USE_V1=${p.vllmUseV1} ` : ""}vllm ${shellJoin(p.vllmArgs)}`,
  );
  const ports = p.ports.map((x) => `${x.port} ${x.name} (${x.exposure})`).join(", ");
  line("Ports", ports);
  const api = p.network.apiCidrs;
  line(
    "API access",
    api.length
      ? `port ${p.apiPort} from ${api.join(", ")}`
      : `closed to the outside; reach it with: ssh -L ${p.apiPort}:localhost:${p.apiPort} <head> (or SSM port forwarding)`,
  );
  if (p.monitoring.enabled)
    line(
      "Monitoring",
      `Prometheus on the head (:${PORTS.prometheus}, through a tunnel)${p.monitoring.grafana ? `, Grafana :${PORTS.grafana}` : ""}`,
    );
  line(
    "Driver",
    `NVIDIA ≥ ${p.driver.min} (vLLM ${p.vllmVersion} wheels are CUDA ${p.driver.cuda}); disk ≥ ${p.rootVolumeGiB} GiB per node`,
  );
  const py = p.python;
  if (py)
    line("Python", `${py.lock}: ${lockPins(py)} (${py.packages} packages, the same on every node)`);
  if (problems.length) {
    line("Deploy", `not yet: ${problems.length} problem${problems.length === 1 ? "" : "s"}`);
    for (const i of problems) out.push(`    - ${i.path}: ${formatValue(i.value)} — ${i.message}`);
  }
  line("Cost", `$${p.costPerHourUsd.toFixed(3)}/hour — ${p.costNote}`);
  if (p.quota)
    line(
      "AWS quota",
      `${p.quota.vcpus} vCPUs of "${p.quota.name}"${p.quota.code ? ` (${p.quota.code})` : ""} in the region: check it before pulumi up (aws service-quotas get-service-quota --service-code ec2${p.quota.code ? ` --quota-code ${p.quota.code}` : ""}); new accounts often have 0`,
    );
  if (p.warnings.length) {
    out.push("  Warnings");
    for (const w of p.warnings) out.push(`    - ${w}`);
  }
  return out.join("\n");
}

/** The memory verdict: it fits, fits within the planner's error band, or does not fit. */
export function verdictText(p: PlanDraft): string {
  if (!p.fits)
    return `DOES NOT FIT: one ${fmt(p.maxModelLen)}-token sequence needs more KV cache than is left`;
  if (!p.errorBand.withinBand) return "FITS";
  const b = p.errorBand;
  return `FITS, but within the error band: the planner has been off by up to ${(b.error * 100).toFixed(1)} % on ${ERROR_BANDS[b.class].label} startups (${b.logs} log${b.logs === 1 ? "" : "s"}); at that error vLLM finds ${fmt(b.lowKvCacheTokens)} KV tokens, less than one ${fmt(p.maxModelLen)}-token request, and refuses to start`;
}

/** The lock's versions a person looks for first (the plan's text, and python-env's log on the node). */
export function lockPins(py: NonNullable<PlanDraft["python"]>): string {
  return `vllm ${py.vllm}${py.torch ? `, torch ${py.torch}` : ""}, transformers ${py.transformers}, hf CLI ${py.huggingfaceHub}${py.ray ? `, Ray ${py.ray}` : ""}`;
}
