import type { Interconnect } from "./gpus";
import { vllmAtLeast } from "./vllm";

/**
 * Versions of the tools provisioning installs on a node outside vLLM's environment, pinned so that
 * every node (and every re-run) gets the same: uv, which makes and syncs that environment (whose
 * packages, the hf CLI and Ray among them, are pinned by the release's lock file: catalogs/locks.ts).
 */
export const TOOL_VERSIONS = {
  uv: "0.13.9",
  /** The AWS SDK's core, for the S3 weights mirror (presigned URLs for aria2c; PyPI, 2026-11). */
  botocore: "1.44.8",
} as const;

/**
 * vLLM's Grafana dashboard at the pinned version. The examples moved twice: production_monitoring/
 * (0.6.x), online_serving/prometheus_grafana/ (0.7.0–0.19.1), observability/prometheus_grafana/
 * (0.20.0 on) — the examples/ folders of each release's sdist, and the repository's file list.
 */
export function vllmDashboardUrl(vllmVersion: string): string {
  const at = vllmAtLeast(vllmVersion, "0.20.0")
    ? "observability/prometheus_grafana/grafana.json"
    : vllmAtLeast(vllmVersion, "0.7.0")
      ? "online_serving/prometheus_grafana/grafana.json"
      : "production_monitoring/grafana.json";
  return `https://raw.githubusercontent.com/vllm-project/vllm/v${vllmVersion}/examples/${at}`;
}

/**
 * The Hugging Face Hub when provisioning.hfEndpoint names no other: huggingface_hub's own default
 * (`_HF_DEFAULT_ENDPOINT = "https://huggingface.co"`, huggingface_hub/constants.py). node.env always
 * states HF_ENDPOINT, so the node's tools and scripts agree on one hub.
 */
export const HF_HUB_ENDPOINT = "https://huggingface.co";

/**
 * How long a node waits for Ray (seconds): its own daemon's ports (ray.sh) and, before vLLM starts
 * on the head, every node and GPU of the replica (cluster-ready.sh). A worker may start before its
 * head; the lab's three nodes on two cores took up to ~45 s.
 */
export const RAY_WAIT_SECONDS = 300;
/** Bound on the connectivity gate's NCCL all-reduce, rendezvous included (seconds). */
export const NCCL_CHECK_TIMEOUT_SECONDS = 300;

/**
 * Minimum NCCL all-reduce bus bandwidth (GB/s, 1 GiB messages) below which the connectivity gate
 * fails: per GPU interconnect inside a node, and across nodes by the network the replica's NCCL
 * rides (a multi-node all-reduce is bound by its slowest link). Floors catch a broken path (PCIe
 * P2P off, NVSwitch without Fabric Manager, NCCL on a 1 Gb/s interface), not a tuning target:
 * nccl-tests' results on these links are several times higher (PCIe 4.0 ≈ 20, NVLink ≥ 100,
 * NVSwitch H100 ≈ 450; a 10–100 Gb/s TCP socket 1–10; EFA on p4d/p5 ≥ 40).
 */
export const NCCL_MIN_BUSBW_GBPS: Readonly<Record<Interconnect | "network" | "efa", number>> = {
  pcie: 5,
  nvlink: 50,
  nvswitch: 100,
  /** Across nodes over TCP sockets: NCCL reaches ≈ 1 GB/s on a 10 Gb/s link (g5.xlarge's "up to"). */
  network: 0.4,
  /** Across nodes over EFA (target.efa). */
  efa: 10,
};

/** The floor for the links the gate's all-reduce crosses: the network when the replica spans nodes. */
export function ncclFloorGbps(
  interconnect: Interconnect,
  multiNode: boolean,
  efa: boolean,
): number {
  return NCCL_MIN_BUSBW_GBPS[multiNode ? (efa ? "efa" : "network") : interconnect];
}
