/**
 * Every port the deployment uses, in one table: security groups, the Ray/vLLM units, the Prometheus
 * scrape config and the connectivity gate all read it. Ray's ports are pinned here (Ray picks random
 * ones otherwise, which no firewall rule or check could name). Sources: Ray "Configuring Ray" port
 * docs; vLLM docs (8000); Prometheus default ports registry (9090, 9100, 9400 for DCGM exporter).
 */
export const PORTS = {
  ssh: 22,
  /** The load balancer's listeners: HTTP, and HTTPS with a certificate. */
  http: 80,
  https: 443,
  vllm: 8000,
  rayGcs: 6379,
  rayClient: 10001,
  rayDashboard: 8265,
  rayNodeManager: 6380,
  rayObjectManager: 6381,
  rayMetrics: 8080,
  rayDashboardAgentGrpc: 8266,
  rayRuntimeEnvAgent: 8267,
  rayWorkerMin: 10002,
  rayWorkerMax: 19999,
  prometheus: 9090,
  nodeExporter: 9100,
  dcgmExporter: 9400,
  grafana: 3000,
} as const;

export type PortName = keyof typeof PORTS;

/** Ports every cluster member must reach on every other member (multi-node only). */
export const CLUSTER_PORTS: readonly PortName[] = [
  "rayGcs",
  "rayNodeManager",
  "rayObjectManager",
  "rayMetrics",
  "rayDashboardAgentGrpc",
  "nodeExporter",
];
