/**
 * Where everything lives on a node: one table. The renderer writes it into node.env (the scripts
 * read their paths there, with no defaults of their own), names it in the systemd units, and the
 * plan derives the weights' folder from it.
 */

/** The deployment's three folders; `undo.sh --bundle` removes them (the weights may stay). */
export const NODE_LAYOUT = {
  /** Scripts (bin/), the rendered files (rendered/), vLLM's venv and the tools'. */
  home: "/opt/qwen-vl",
  /** node.env, secrets.env and grafana-admin-password (root only), cluster.env, vllm.args. */
  etc: "/etc/qwen-vl",
  /** The ledger, backups, reports, the service account's home, Ray's temp dir and the weights. */
  state: "/var/lib/qwen-vl",
} as const;

export const NODE_HOME = NODE_LAYOUT.home;
export const NODE_ETC = NODE_LAYOUT.etc;
export const NODE_STATE = NODE_LAYOUT.state;
/** The unprivileged account vLLM and Ray run as; its home holds their caches. */
export const SERVICE_USER = "qwen-vl";
export const SERVICE_HOME = `${NODE_STATE}/service`;
/** Ray's temp dir (sessions, logs, sockets): set on the head, used by every node (Ray's rule). */
export const RAY_TEMP_DIR = `${NODE_STATE}/ray`;
/** Where weights live on every node (the same path on all nodes, as Ray multi-node requires). */
export const MODEL_ROOT = `${NODE_STATE}/models`;

/**
 * The folder whose *.prom files the node exporter's textfile collector reads: Debian's and Ubuntu's
 * prometheus-node-exporter packages build it in as --collector.textfile.directory's default
 * (Debian 12's 1.5.0-1 binary holds the path; upstream's default is empty), and monitoring.sh
 * installs that package. The weights check and the readiness gate write their gauges there.
 */
export const NODE_EXPORTER_TEXTFILE_DIR = "/var/lib/prometheus/node-exporter";

/** A repository id as one folder name ("Qwen/Qwen2-VL-7B-Instruct" → "Qwen--Qwen2-VL-7B-Instruct"). */
export function repoFolder(modelId: string): string {
  return modelId.replace(/\//g, "--");
}

/** One checkpoint's folder: the repository and the pinned revision. */
export function modelDir(modelId: string, revision: string): string {
  return `${MODEL_ROOT}/${repoFolder(modelId)}/${revision}`;
}

/**
 * The layout as node.env states it. (Only where node.env itself is, /etc/qwen-vl, lib.sh must know
 * before reading it.)
 */
export function layoutEnv(): Record<string, string> {
  return {
    QWEN_VL_HOME: NODE_HOME,
    QWEN_VL_STATE: NODE_STATE,
    SERVICE_USER,
    SERVICE_HOME,
    RAY_TEMP_DIR,
    MODEL_PARENT: MODEL_ROOT,
    NODE_EXPORTER_TEXTFILE_DIR,
  };
}
