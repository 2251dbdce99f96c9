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

/** Minimum NCCL all-reduce bus bandwidth (GB/s, 1 GiB messages) per GPU interconnect, below which the gate fails. */
export const NCCL_MIN_BUSBW_GBPS: Readonly<Record<string, number>> = {
  pcie: 5,
  nvlink: 50,
  nvswitch: 100,
};
