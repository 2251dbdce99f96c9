/**
 * Plan → what each node runs: its files (the static scripts, its node.env, systemd units, Prometheus
 * and Grafana configuration, vLLM's argument file) and the ordered steps. Pure: the scripts' text is
 * passed in (`loadScripts()` reads them), the nodes' cluster addresses too (known only once the
 * machines exist). `pulumi up` (components/node-provisioning.ts) writes these files and runs these
 * steps, one resource per step per node, on AWS nodes, existing hosts and the lab alike.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { PORTS } from "../catalogs/ports";
import {
  HF_HUB_ENDPOINT,
  NCCL_CHECK_TIMEOUT_SECONDS,
  RAY_WAIT_SECONDS,
  TOOL_VERSIONS,
  vllmDashboardUrl,
} from "../catalogs/tools";
import { MIN_CUDA } from "../catalogs/vllm";
import type { Plan, PlanNode } from "../plan";
import { indexedLockText } from "./python-lock";
import { lockPins } from "../plan/report";
import {
  layoutEnv,
  NODE_ETC,
  NODE_HOME,
  RAY_TEMP_DIR,
  SERVICE_HOME,
  SERVICE_USER,
} from "../plan/layout";
export const SCRIPTS_DIR = join(__dirname, "scripts");

export interface RenderedFile {
  /** Absolute path on the node. */
  readonly path: string;
  readonly content: string;
  readonly mode: number;
}

export type StepId =
  | "preflight"
  | "driver"
  | "cuda"
  | "python-env"
  | "weights"
  | "monitoring"
  | "ray"
  | "connectivity"
  | "vllm"
  | "readiness";

export interface StepSpec {
  readonly id: StepId;
  readonly title: string;
  /** The step may leave NODE_STATE/reboot-required: reboot, then run it again. */
  readonly mayRequestReboot: boolean;
  /** Steps of the same node that must have run before this one (none: right after the bundle). */
  readonly after: readonly StepId[];
  /**
   * Steps of the same node whose result this one builds on: when one of them runs again, this one
   * runs again too (a new vLLM in python-env restarts the vllm unit).
   */
  readonly uses: readonly StepId[];
  /** The same, on every member of the node's replica (connectivity tests every member's Ray). */
  readonly usesMembers: readonly StepId[];
  /** Steps of the replica's head that must have run before this one on a worker (Ray joins its head). */
  readonly afterHead: readonly StepId[];
  /** Steps of every member that must have run before this one on the head (vLLM after the cluster's gate). */
  readonly headAfterMembers: readonly StepId[];
  /** Reads the secrets file (its content is an input: new secrets re-run it). */
  readonly usesSecrets: boolean;
}

export interface Step extends StepSpec {
  readonly command: string;
  /** Undoes what `command` did, for `pulumi destroy` on machines that stay (hosts stacks). */
  readonly undo: string;
  /**
   * sha256 of everything the step reads: its script, lib.sh and the helpers it runs, the rendered
   * files it installs, and the node.env settings those texts name. Only a change of these re-runs it.
   */
  readonly digest: string;
}

export interface NodeBundle {
  readonly node: PlanNode;
  readonly address: string;
  readonly files: readonly RenderedFile[];
  readonly steps: readonly Step[];
  readonly env: Readonly<Record<string, string>>;
}

const spec = (
  id: StepId,
  title: string,
  more: Partial<Omit<StepSpec, "id" | "title">> = {},
): StepSpec => ({
  id,
  title,
  mayRequestReboot: false,
  after: [],
  uses: [],
  usesMembers: [],
  afterHead: [],
  headAfterMembers: [],
  usesSecrets: false,
  ...more,
});

/**
 * The steps, in the order a person reads them; every node runs each (a step that does not apply
 * says so). On one node a step waits only for the steps it needs (`after`): weights, monitoring and
 * Ray run side by side once the Python environment is there. Nodes run in parallel; only Ray's join
 * (workers after their head) and the cluster gate (vLLM on the head after every member's
 * connectivity) wait on another node.
 */
export const STEPS: readonly StepSpec[] = [
  spec("preflight", "system, GPUs and disk match the plan"),
  spec("driver", "NVIDIA driver", { after: ["preflight"], mayRequestReboot: true }),
  spec("cuda", "CUDA supported by the driver", { after: ["driver"], uses: ["driver"] }),
  spec("python-env", "uv, vLLM, transformers, hf CLI, Ray", { after: ["cuda"] }),
  spec("weights", "weights at the pinned revision, verified", {
    after: ["python-env"],
    usesSecrets: true,
  }),
  spec("monitoring", "node_exporter, DCGM exporter, Prometheus", { after: ["python-env"] }),
  spec("ray", "Ray head/worker", {
    after: ["python-env"],
    uses: ["python-env"],
    afterHead: ["ray"],
  }),
  spec("connectivity", "every member reaches every other on the cluster ports", {
    after: ["ray", "monitoring"],
    usesMembers: ["ray", "monitoring"],
  }),
  spec("vllm", "vLLM under systemd", {
    after: ["weights", "connectivity"],
    uses: ["python-env", "weights"],
    usesMembers: ["ray"],
    headAfterMembers: ["connectivity"],
    usesSecrets: true,
  }),
  spec("readiness", "a real image+text request answers", {
    after: ["vllm"],
    uses: ["vllm"],
    usesSecrets: true,
  }),
];

export function loadScripts(dir = SCRIPTS_DIR): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    if (f.isFile() && /\.(sh|py)$/.test(f.name))
      out[f.name] = readFileSync(join(dir, f.name), "utf8");
  }
  return out;
}

export function shellQuote(v: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]*$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

export function envFile(env: Readonly<Record<string, string>>): string {
  return (
    "# Rendered from the plan by qwen-vl-deploy; read by the scripts in /opt/qwen-vl/bin.\n" +
    Object.entries(env)
      .map(([k, v]) => `${k}=${shellQuote(v)}`)
      .join("\n") +
    "\n"
  );
}

export interface RenderOptions {
  /** Cluster (private) address of every node, by plan node name. */
  readonly addresses: Readonly<Record<string, string>>;
  /** Script texts by file name (default: the files in provisioning/scripts). */
  readonly scripts?: Readonly<Record<string, string>>;
  /** The Python lock's text (default: the plan's lock file, held to the index's sha256). */
  readonly pythonLock?: string;
}

export function renderProvisioning(plan: Plan, opts: RenderOptions): NodeBundle[] {
  const scripts = opts.scripts ?? loadScripts();
  const pythonLock = opts.pythonLock ?? indexedLockText(plan.python.lock);
  const multiNode = plan.multiNode;
  const monitoring = plan.monitoring.enabled;
  const address = (name: string): string => {
    const a = opts.addresses[name];
    if (!a) throw new Error(`no address for node ${name}`);
    return a;
  };

  return plan.nodes.map((node) => {
    const replicaNodes = plan.nodes.filter((n) => n.replica === node.replica);
    const head = replicaNodes.find((n) => n.role === "head")!;
    const peers = replicaNodes.filter((n) => n.name !== node.name);
    const checkTargets = peers.flatMap((p) => {
      const ports = [
        PORTS.rayNodeManager,
        PORTS.rayObjectManager,
        ...(monitoring ? [PORTS.nodeExporter] : []),
        ...(p.role === "head" ? [PORTS.rayGcs] : []),
      ];
      return ports.map((port) => `${p.name}:${address(p.name)}:${port}`);
    });
    const env: Record<string, string> = {
      ROLE: node.role,
      NODE_NAME: node.name,
      NODE_IP: address(node.name),
      HEAD_IP: address(head.name),
      REPLICA: String(node.replica),
      GPU_MODEL: plan.gpu.name,
      GPU_SMI_NAME: plan.gpu.smiName,
      GPU_COUNT: String(node.gpus),
      // Accept a card reporting up to 3 % less than the catalog (driver and ECC reservations vary).
      GPU_MEMORY_MIB_MIN: String(Math.floor(plan.gpu.memoryGiB * 1024 * 0.97)),
      GPU_ARCHITECTURE: plan.gpu.architecture,
      DRIVER_FLAVOR: plan.gpu.architecture === "volta" ? "proprietary" : "open",
      // R580 is the last branch for Volta (NVIDIA's CUDA toolkit, driver and architecture matrix):
      // an unpinned cuda-drivers would install a branch that does not drive a V100.
      DRIVER_BRANCH: plan.gpu.architecture === "volta" ? "580" : "",
      NVSWITCH: plan.nvswitch ? "1" : "0",
      EFA: plan.efa ? "1" : "0",
      MIN_DRIVER: plan.driver.min,
      MIN_CUDA,
      VLLM_CUDA: plan.driver.cuda,
      VLLM_VERSION: plan.vllmVersion,
      // Which vLLM build the lock installs: "cpu" (vLLM's CPU build, the lab) needs libnuma.
      VLLM_BUILD: plan.kvCachePlanned.device === "cpu" ? "cpu" : "cuda",
      VLLM_MIN_PYTHON: plan.features.minPython,
      LOCK_PINS: lockPins(plan.python),
      UV_VERSION: TOOL_VERSIONS.uv,
      BOTOCORE_VERSION: TOOL_VERSIONS.botocore,
      ...layoutEnv(),
      // The steps in order, for undo.sh --bundle to undo what is still recorded, last first.
      STEP_ORDER: STEPS.map((s) => s.id).join(" "),
      MODEL_ID: plan.model.id,
      REVISION: plan.model.revision,
      MODEL_DIR: plan.model.dir,
      WEIGHTS_KIB: String(Math.ceil(plan.disk.weightsGiB * 1024 * 1024)),
      VENV_KIB: String(plan.disk.venvGiB * 1024 * 1024),
      CACHES_KIB: String(plan.disk.cachesGiB * 1024 * 1024),
      WEIGHTS_SOURCE: plan.provisioning.weightsSource,
      HF_ENDPOINT: plan.provisioning.hfEndpoint ?? HF_HUB_ENDPOINT,
      MIRROR_URL: plan.provisioning.mirrorUrl ?? "",
      PYTHON_INDEX_URL: plan.provisioning.pythonIndexUrl ?? "",
      PYTHON_FIND_LINKS: plan.provisioning.pythonFindLinks ?? "",
      INSTALL_DRIVER: plan.provisioning.installDriver ? "1" : "0",
      INSTALL_CUDA_TOOLKIT: plan.provisioning.installCudaToolkit ? "1" : "0",
      ROPE_FIX: plan.features.needsRopeScalingFix ? "1" : "0",
      MONITORING: monitoring ? "1" : "0",
      DCGM_EXPORTER: plan.monitoring.dcgmExporter ? "1" : "0",
      GRAFANA: plan.monitoring.grafana ? "1" : "0",
      GRAFANA_DATASOURCE_UID,
      GRAFANA_PORT: String(PORTS.grafana),
      VLLM_DASHBOARD_URL: vllmDashboardUrl(plan.vllmVersion),
      MULTI_NODE: multiNode ? "1" : "0",
      NODES_PER_REPLICA: String(plan.nodesPerReplica),
      TOTAL_GPUS: String(plan.tensorParallelSize * plan.pipelineParallelSize),
      RAY_ADDRESS: multiNode ? `${address(head.name)}:${PORTS.rayGcs}` : "",
      RAY_GCS_PORT: String(PORTS.rayGcs),
      RAY_NODE_MANAGER_PORT: String(PORTS.rayNodeManager),
      RAY_OBJECT_MANAGER_PORT: String(PORTS.rayObjectManager),
      RAY_WAIT_SECONDS: String(RAY_WAIT_SECONDS),
      NCCL_TIMEOUT: String(NCCL_CHECK_TIMEOUT_SECONDS),
      NETWORK_INTERFACE: node.host?.networkInterface ?? "",
      CHECK_TARGETS: checkTargets.join(" "),
      NCCL_MIN_BUSBW_GBPS: String(plan.ncclMinBusbwGbps),
      API_PORT: String(plan.apiPort),
      PROMETHEUS_PORT: String(PORTS.prometheus),
      SERVED_MODEL_NAME: plan.model.servedModelName,
      READINESS_TIMEOUT: String(plan.provisioning.readinessTimeoutSec),
      // What the gate and verify hold vLLM's allocated KV cache against (readiness.py).
      MAX_MODEL_LEN: String(plan.maxModelLen),
      PLANNED_KV_TOKENS: String(plan.kvCachePlanned.tokens),
      PLANNED_KV_DEVICE: plan.kvCachePlanned.device,
      KEEP_WEIGHTS: plan.provisioning.keepWeightsOnDestroy ? "1" : "0",
    };
    // The AWS SDK on the node signs S3 mirror URLs for the stack's region (the mirror's bucket).
    if (plan.aws) env["AWS_DEFAULT_REGION"] = plan.aws.region;
    // The root volume's planned size, named by preflight: raising target.rootVolumeGiB changes
    // preflight's digest, so the step that grows the partition and filesystem runs again.
    if (plan.aws) env["ROOT_VOLUME_GIB"] = String(plan.rootVolumeGiB);

    const files: RenderedFile[] = [];
    // node.env before the scripts: a bundle write cut off half-way leaves new settings with old
    // scripts (which tolerate them), never new scripts (which keep no defaults) with old settings.
    files.push({ path: `${NODE_ETC}/node.env`, content: envFile(env), mode: 0o644 });
    for (const [name, text] of Object.entries(scripts))
      files.push({ path: `${NODE_HOME}/bin/${name}`, content: text, mode: 0o755 });
    const r = (name: string, content: string) =>
      files.push({ path: `${NODE_HOME}/rendered/${name}`, content, mode: 0o644 });
    r("python.lock", pythonLock);
    if (node.role === "head") {
      r("vllm.args", plan.vllmArgs.join("\n") + "\n");
      r("qwen-vl-vllm.service", vllmUnit(plan, multiNode));
      if (monitoring) {
        r(
          "prometheus.yml",
          prometheusConfig(
            plan,
            replicaNodes.map((n) => ({ name: n.name, address: address(n.name) })),
            multiNode,
          ),
        );
        r(
          "prometheus.default",
          `# Rendered by qwen-vl-deploy\nARGS="--storage.tsdb.retention.time=${plan.monitoring.retentionDays}d --web.listen-address=127.0.0.1:${PORTS.prometheus}"\n`,
        );
        if (plan.monitoring.grafana) {
          r(
            "grafana-datasource.yaml",
            // A fixed uid: vLLM's exported dashboard names its datasource "${DS_PROMETHEUS}", which
            // only Grafana's import dialog fills in; monitoring.sh binds it to this uid.
            `apiVersion: 1\ndatasources:\n  - name: Prometheus\n    uid: ${GRAFANA_DATASOURCE_UID}\n    type: prometheus\n    access: proxy\n    url: http://127.0.0.1:${PORTS.prometheus}\n    isDefault: true\n`,
          );
          r(
            "grafana-dashboards.yaml",
            `apiVersion: 1\nproviders:\n  - name: qwen-vl\n    type: file\n    options:\n      path: /var/lib/grafana/dashboards\n`,
          );
          r("grafana.ini", GRAFANA_INI);
          r("grafana-server.conf", GRAFANA_DROP_IN);
        }
      }
    }
    if (multiNode)
      r(
        "qwen-vl-ray.service",
        rayUnit(plan, node, plan.provisioning.rayObjectStoreMiB, plan.monitoring.rayDashboard),
      );
    if (monitoring && plan.monitoring.dcgmExporter) r("nvidia-dcgm-exporter.conf", dcgmDropIn());
    r("qwen-vl-weights-check.service", WEIGHTS_CHECK_SERVICE);
    r("qwen-vl-weights-check.timer", WEIGHTS_CHECK_TIMER);

    const steps: Step[] = STEPS.map((s) => ({
      ...s,
      command: `bash ${NODE_HOME}/bin/${s.id}.sh`,
      undo: `bash ${NODE_HOME}/bin/undo.sh ${s.id}`,
      digest: stepDigest(s.id, files, env),
    }));
    return { node, address: address(node.name), files, steps, env };
  });
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * What a step reads, found from its texts: its script, the scripts and rendered files those name
 * (transitively: the vLLM unit names run-vllm.sh), lib.sh, and the node.env settings any of them
 * names. A setting no text of the step names cannot change what it does. A file named only in a
 * whole-line comment ("# …", the scripts', Python's and systemd's) is not read: a comment that
 * mentions the vLLM unit must not make every step depend on vllm.args.
 */
export function stepDigest(
  step: StepId,
  files: readonly RenderedFile[],
  env: Readonly<Record<string, string>>,
): string {
  const byName = new Map(files.map((f) => [f.path.split("/").pop()!, f]));
  const read = new Set<string>([`${step}.sh`, "lib.sh"]);
  const queue = [...read];
  while (queue.length) {
    const text = withoutCommentLines(byName.get(queue.pop()!)?.content ?? "");
    for (const name of byName.keys()) {
      if (!read.has(name) && name !== "node.env" && text.includes(name)) {
        read.add(name);
        queue.push(name);
      }
    }
  }
  const texts = [...read].sort().map((n) => `${n}\0${byName.get(n)?.content ?? ""}`);
  const all = texts.join("\0");
  const settings = Object.keys(env)
    .filter((k) => new RegExp(`\\b${k}\\b`).test(all))
    .sort()
    .map((k) => `${k}=${env[k]}`);
  return sha256(JSON.stringify({ texts, settings }));
}

/** A text without its whole-line "#" comments (the shebang goes too: it names an interpreter, not a file). */
function withoutCommentLines(text: string): string {
  return text
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("#"))
    .join("\n");
}

/**
 * The node's files as one payload for a single round trip (standard input of `bundleWriter`):
 * gzip of JSON [{p, c (base64), m}], base64.
 */
export function bundlePayload(files: readonly RenderedFile[]): string {
  const json = JSON.stringify(
    files.map((f) => ({ p: f.path, c: Buffer.from(f.content).toString("base64"), m: f.mode })),
  );
  return gzipSync(json, { level: 9 }).toString("base64");
}

/**
 * Writes a bundle payload (standard input) on the node, atomically per file; files of the folders
 * it owns that are no longer in the bundle are removed, so a dropped script does not linger.
 */
export const BUNDLE_WRITER = `python3 -c 'import base64, gzip, json, os, sys
files = json.loads(gzip.decompress(base64.b64decode(sys.stdin.read())))
keep = set()
for f in files:
    os.makedirs(os.path.dirname(f["p"]), exist_ok=True)
    tmp = f["p"] + ".qwen-vl-tmp"
    with open(tmp, "wb") as out:
        out.write(base64.b64decode(f["c"]))
    os.chmod(tmp, f["m"])
    os.replace(tmp, f["p"])
    keep.add(f["p"])
for d in ("${NODE_HOME}/bin", "${NODE_HOME}/rendered"):
    for n in os.listdir(d) if os.path.isdir(d) else []:
        p = os.path.join(d, n)
        if os.path.isfile(p) and p not in keep:
            os.remove(p)
print("[qwen-vl bundle] wrote %d files" % len(files))
'`;

/** The uid of the provisioned Prometheus datasource in Grafana (GRAFANA_DATASOURCE_UID in node.env). */
export const GRAFANA_DATASOURCE_UID = "qwen-vl-prometheus";

/**
 * Grafana's admin password: generated on the head by monitoring.sh, root-only in NODE_ETC, never
 * sent anywhere. Grafana does not run as root, so systemd hands the file to it as a credential
 * (systemd.exec LoadCredential=, systemd ≥ 247; readable by the service's user only, under
 * /run/credentials/<unit>/) and grafana.ini reads it with Grafana's file provider ($__file{…},
 * "Configure Grafana": variable expansion).
 */
export const GRAFANA_ADMIN_PASSWORD_FILE = `${NODE_ETC}/grafana-admin-password`;
const GRAFANA_CREDENTIAL = "/run/credentials/grafana-server.service/admin-password";
/**
 * Replaces the package's grafana.ini (every line a comment: Grafana's defaults, http_addr empty =
 * all interfaces, admin/admin); install_file keeps the original for undo. Mode 0644: it names the
 * password's place, not the password.
 */
const GRAFANA_INI = `# Rendered by qwen-vl-deploy
[server]
# Loopback only ("If empty will bind to all interfaces"): reach it through a tunnel to the head.
http_addr = 127.0.0.1
http_port = ${PORTS.grafana}

[security]
# Set once, when Grafana creates its database ("Set once on first-run"): monitoring.sh sets it with
# grafana cli admin reset-admin-password when the database was there first.
admin_password = $__file{${GRAFANA_CREDENTIAL}}
`;
/** The grafana-server unit (Grafana's package) gets the password as a systemd credential. */
const GRAFANA_DROP_IN = `# Rendered by qwen-vl-deploy
[Service]
LoadCredential=admin-password:${GRAFANA_ADMIN_PASSWORD_FILE}
`;

/** The weekly full weights check (weights-check.sh), low priority so serving is not disturbed. */
const WEIGHTS_CHECK_SERVICE = `# Rendered by qwen-vl-deploy
[Unit]
Description=Full check of the model weights against their manifest (qwen-vl-deploy)

[Service]
Type=oneshot
ExecStart=${NODE_HOME}/bin/weights-check.sh
Nice=10
IOSchedulingClass=idle
SyslogIdentifier=qwen-vl-weights-check
`;
const WEIGHTS_CHECK_TIMER = `# Rendered by qwen-vl-deploy
[Unit]
Description=Weekly full check of the model weights (qwen-vl-deploy)

[Timer]
OnCalendar=weekly
RandomizedDelaySec=6h
Persistent=true

[Install]
WantedBy=timers.target
`;

/** A long-running unit's service account (unprivileged, its home under the node's state). */
const AS_SERVICE_USER = `User=${SERVICE_USER}
Group=${SERVICE_USER}
Environment=HOME=${SERVICE_HOME}
`;

/** A long-running unit's tail: logs to the journal under `identifier`, started at boot. */
function journalAndBoot(identifier: string): string {
  return `StandardOutput=journal
StandardError=journal
SyslogIdentifier=${identifier}

[Install]
WantedBy=multi-user.target
`;
}

function vllmUnit(plan: Plan, multiNode: boolean): string {
  return `# Rendered by qwen-vl-deploy from the plan
[Unit]
Description=vLLM serving ${plan.model.servedModelName} (qwen-vl-deploy)
Wants=network-online.target
After=network-online.target${multiNode ? " qwen-vl-ray.service\nRequires=qwen-vl-ray.service" : ""}
StartLimitIntervalSec=600
StartLimitBurst=30

[Service]
Type=simple
EnvironmentFile=${NODE_ETC}/cluster.env
EnvironmentFile=-${NODE_ETC}/secrets.env
${AS_SERVICE_USER}${plan.kvCachePlanned.cpuKvCacheGiB !== undefined ? `# vLLM's CPU build: its KV cache in GiB of host memory (vllm.cpuKvCacheGiB).\nEnvironment=VLLM_CPU_KVCACHE_SPACE=${plan.kvCachePlanned.cpuKvCacheGiB}\n` : ""}${plan.vllmUseV1 !== undefined ? `# The engine the plan was made for (vllm.engine).\nEnvironment=VLLM_USE_V1=${plan.vllmUseV1}\n` : ""}# Weights must match their manifest before every start (vllm PR #53537: silent corruption). As root
# ("+"): it writes the report and the verified stamp beside root's weights.
ExecStartPre=+${NODE_HOME}/bin/weights-check.sh --quick
${multiNode ? `ExecStartPre=${NODE_HOME}/bin/cluster-ready.sh\n` : ""}ExecStart=${NODE_HOME}/bin/run-vllm.sh ${NODE_ETC}/vllm.args
Restart=on-failure
RestartSec=2
# Backoff (systemd ≥ 254; older versions ignore these two and keep RestartSec).
RestartSteps=5
RestartMaxDelaySec=60
TimeoutStartSec=1800
TimeoutStopSec=60
LimitNOFILE=1048576
# NCCL over EFA/InfiniBand registers (pins) memory: unlimited, as root had it.
LimitMEMLOCK=infinity
${journalAndBoot("qwen-vl-vllm")}`;
}

function rayUnit(
  plan: Plan,
  node: PlanNode,
  objectStoreMiB: number | undefined,
  dashboard: boolean,
): string {
  const common = [
    `--node-ip-address=\${VLLM_HOST_IP}`,
    `--node-manager-port=${PORTS.rayNodeManager}`,
    `--object-manager-port=${PORTS.rayObjectManager}`,
    `--metrics-export-port=${PORTS.rayMetrics}`,
    `--dashboard-agent-grpc-port=${PORTS.rayDashboardAgentGrpc}`,
    `--runtime-env-agent-port=${PORTS.rayRuntimeEnvAgent}`,
    `--min-worker-port=${PORTS.rayWorkerMin}`,
    `--max-worker-port=${PORTS.rayWorkerMax}`,
    `--num-gpus=${node.gpus}`,
    ...(objectStoreMiB ? [`--object-store-memory=${objectStoreMiB * 1024 * 1024}`] : []),
    "--disable-usage-stats",
    "--block",
  ];
  const start =
    node.role === "head"
      ? [
          "--head",
          `--port=${PORTS.rayGcs}`,
          `--ray-client-server-port=${PORTS.rayClient}`,
          `--temp-dir=${RAY_TEMP_DIR}`,
          // The dashboard only when asked (monitoring.rayDashboard): a lean head starts sooner;
          // each node's agent still exports Ray's metrics.
          ...(dashboard
            ? [
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                `--dashboard-port=${PORTS.rayDashboard}`,
              ]
            : ["--include-dashboard=false"]),
          ...common,
        ]
      : [`--address=\${RAY_ADDRESS}`, ...common];
  return `# Rendered by qwen-vl-deploy from the plan
[Unit]
Description=Ray ${node.role} for ${plan.model.servedModelName} (qwen-vl-deploy)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
${AS_SERVICE_USER}EnvironmentFile=${NODE_ETC}/cluster.env
ExecStart=${NODE_HOME}/venv/bin/ray start ${start.join(" ")}
ExecStop=${NODE_HOME}/venv/bin/ray stop
# A worker started before its head keeps retrying until the head answers.
Restart=always
RestartSec=5
KillMode=mixed
TimeoutStopSec=30
LimitNOFILE=1048576
LimitMEMLOCK=infinity
${journalAndBoot("qwen-vl-ray")}`;
}

/**
 * A drop-in for the unit NVIDIA's datacenter-gpu-manager-exporter package ships
 * (nvidia-dcgm-exporter.service: /usr/bin/dcgm-exporter with its default counters, logging to a
 * file, Restart=on-abort): the plan's port, logs in the journal, restarted on any failure.
 */
function dcgmDropIn(): string {
  return `# Rendered by qwen-vl-deploy
[Service]
ExecStart=
ExecStart=/usr/bin/dcgm-exporter -f /etc/dcgm-exporter/default-counters.csv --address :${PORTS.dcgmExporter}
StandardOutput=journal
StandardError=journal
Restart=on-failure
RestartSec=5
`;
}

export function prometheusConfig(
  plan: Plan,
  nodes: readonly { name: string; address: string }[],
  multiNode: boolean,
): string {
  const job = (name: string, targets: { target: string; node: string }[]) =>
    `  - job_name: ${name}\n    static_configs:\n` +
    targets
      .map((t) => `      - targets: ["${t.target}"]\n        labels: { node: "${t.node}" }\n`)
      .join("");
  const head = nodes[0]!;
  let out = `# Rendered by qwen-vl-deploy from the plan\nglobal:\n  scrape_interval: 15s\n  evaluation_interval: 15s\nscrape_configs:\n`;
  out += job("vllm", [{ target: `127.0.0.1:${plan.apiPort}`, node: head.name }]);
  out += job(
    "node",
    nodes.map((n) => ({ target: `${n.address}:${PORTS.nodeExporter}`, node: n.name })),
  );
  if (plan.monitoring.dcgmExporter)
    out += job(
      "dcgm",
      nodes.map((n) => ({ target: `${n.address}:${PORTS.dcgmExporter}`, node: n.name })),
    );
  if (multiNode)
    out += job(
      "ray",
      nodes.map((n) => ({ target: `${n.address}:${PORTS.rayMetrics}`, node: n.name })),
    );
  return out;
}
