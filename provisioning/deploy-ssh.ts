/**
 * Deploys a `hosts` stack over SSH the way a real deployment runs: the rendered files uploaded to
 * every node, then each step in order, on all nodes at once (a step that does not apply to a role
 * says so and changes nothing), a reboot and a second run of the step when the driver step asks for
 * one, and a report with every step's outcome and timing.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import type { NodeSSH } from "node-ssh";
import { join, resolve } from "node:path";
import type { HostConfig, HostsTarget } from "../config/schema";
import { PROJECT_ROOT } from "../config/stack-file";
import type { Plan } from "../plan";
import {
  NODE_HOME,
  NODE_STATE,
  renderProvisioning,
  shellQuote,
  STEPS,
  type NodeBundle,
  type StepId,
} from "./render";
import { connect, exec, putFiles, type SshTarget } from "./ssh";

export interface StepRecord {
  readonly node: string;
  readonly step: StepId;
  readonly ok: boolean;
  readonly changed: boolean;
  readonly seconds: number;
  readonly rebooted?: boolean;
  readonly tail: string;
}

export interface DeployReport {
  readonly stack: string;
  readonly startedAt: string;
  readonly ok: boolean;
  readonly nodes: { name: string; address: string; role: string }[];
  readonly steps: StepRecord[];
  /** Sum of each node's step times (its cold or re-apply provisioning time). */
  readonly secondsPerNode: Record<string, number>;
  /** Wall-clock time of the whole deployment (nodes run in parallel). */
  readonly totalSeconds: number;
  readonly changedSteps: number;
  readonly error?: string;
}

export class DeployError extends Error {
  constructor(
    message: string,
    readonly report: DeployReport,
  ) {
    super(message);
  }
}

/** What must be right on this machine before any node is touched (keys, known hosts): every problem at once. */
export class DeploySetupError extends Error {}

function expandPath(p: string): string {
  return p.startsWith("~/") ? join(homedir(), p.slice(2)) : resolve(PROJECT_ROOT, p);
}

/** known_hosts lines "address key-type base64" → the key for an address. */
export function knownHostKey(knownHostsPath: string, host: HostConfig): string {
  const lines = readFileSync(knownHostsPath, "utf8").split("\n");
  for (const l of lines) {
    const [names, type, key] = l.trim().split(/\s+/);
    if (!names || !type || !key) continue;
    const list = names.split(",").map((n) => n.replace(/^\[(.*)\]:\d+$/, "$1"));
    if (list.includes(host.address) || list.includes(host.name)) return `${type} ${key}`;
  }
  throw new DeploySetupError(
    `${knownHostsPath} has no host key for ${host.name} (${host.address}): add it with ssh-keyscan -p ${host.port} ${host.address} >> ${knownHostsPath} after checking its fingerprint out of band — host keys are never skipped`,
  );
}

/** The SSH key and every node's host key, checked before connecting; all problems in one error. */
function checkSetup(target: HostsTarget, keyPath: string, knownHosts: string): void {
  const problems: string[] = [];
  if (!existsSync(keyPath))
    problems.push(
      `target.sshPrivateKeyPath: ${target.sshPrivateKeyPath ?? "~/.ssh/id_ed25519 (default)"} → ${keyPath} does not exist`,
    );
  if (!existsSync(knownHosts))
    problems.push(
      `target.knownHostsPath: ${target.knownHostsPath ?? "~/.ssh/known_hosts (default)"} → ${knownHosts} does not exist: host keys are always checked; create it with ssh-keyscan, checking each fingerprint out of band`,
    );
  else
    for (const h of target.hosts) {
      try {
        knownHostKey(knownHosts, h);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
  if (problems.length)
    throw new DeploySetupError(
      `Cannot connect to the nodes yet; nothing was changed on any of them:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
}

export interface DeployOptions {
  readonly log?: (line: string) => void;
  /** Runs on each node after connecting, before the steps (the lab installs its GPU double here). */
  readonly beforeSteps?: (ssh: NodeSSH, bundle: NodeBundle) => Promise<void>;
  /** Secret environment (VLLM_API_KEY, HF_TOKEN) written to /etc/qwen-vl/secrets.env, 0600 root. */
  readonly secrets?: Readonly<Record<string, string>>;
}

/**
 * How to reach each node of a hosts stack (its key, its known host key), after checking on this
 * machine what must be right before any connection (DeploySetupError lists every problem).
 */
export function sshTargets(plan: Plan): (host: HostConfig) => SshTarget {
  const target = plan.config.target as HostsTarget;
  if (target.kind !== "hosts")
    throw new DeploySetupError("deploy over SSH needs a stack with target.kind hosts");
  const keyPath = expandPath(target.sshPrivateKeyPath ?? "~/.ssh/id_ed25519");
  const knownHosts = expandPath(target.knownHostsPath ?? "~/.ssh/known_hosts");
  checkSetup(target, keyPath, knownHosts);
  return (host) => ({
    host: host.address,
    port: host.port,
    user: host.user,
    privateKeyPath: keyPath,
    hostKey: knownHostKey(knownHosts, host),
  });
}

export async function deploy(plan: Plan, opts: DeployOptions = {}): Promise<DeployReport> {
  const log = opts.log ?? (() => {});
  const sshTarget = sshTargets(plan);
  const addresses = Object.fromEntries(
    plan.nodes.map((n) => [n.name, n.host!.privateAddress ?? n.host!.address]),
  );
  const bundles = renderProvisioning(plan, { addresses });
  const started = Date.now();
  const report: DeployReport = {
    stack: plan.stack ?? "(unnamed)",
    startedAt: new Date(started).toISOString(),
    ok: false,
    nodes: bundles.map((b) => ({ name: b.node.name, address: b.address, role: b.node.role })),
    steps: [],
    secondsPerNode: Object.fromEntries(bundles.map((b) => [b.node.name, 0])),
    totalSeconds: 0,
    changedSteps: 0,
  };
  const targetOf = (b: NodeBundle): SshTarget => sshTarget(b.node.host!);
  const sessions = new Map<string, NodeSSH>();
  const finish = (error?: string): DeployReport => {
    const r = {
      ...report,
      ok: !error,
      totalSeconds: (Date.now() - started) / 1000,
      changedSteps: report.steps.filter((s) => s.changed).length,
      ...(error ? { error } : {}),
    };
    return r;
  };
  try {
    await Promise.all(
      bundles.map(async (b) => {
        const t0 = Date.now();
        // A host that is down or filtered fails within about a minute, not after many handshakes.
        const ssh = await connect(targetOf(b), 6);
        sessions.set(b.node.name, ssh);
        if (opts.beforeSteps) await opts.beforeSteps(ssh, b);
        await putFiles(ssh, b.files);
        if (opts.secrets && Object.keys(opts.secrets).length) {
          // Quoted as node.env is: the scripts source it, and a token may hold any character.
          const body =
            Object.entries(opts.secrets)
              .map(([k, v]) => `${k}=${shellQuote(v)}`)
              .join("\n") + "\n";
          await putFiles(ssh, [{ path: "/etc/qwen-vl/secrets.env", content: body, mode: 0o600 }]);
        }
        report.secondsPerNode[b.node.name]! += (Date.now() - t0) / 1000;
      }),
    );
    for (const step of STEPS) {
      log(`step ${step.id}: ${step.title}`);
      const results = await Promise.all(
        bundles.map(async (b) => {
          const t0 = Date.now();
          let ssh = sessions.get(b.node.name)!;
          const command = b.steps.find((s) => s.id === step.id)!.command;
          let r = await exec(ssh, command);
          let rebooted = false;
          if (
            r.code === 0 &&
            step.mayRequestReboot &&
            (await exec(ssh, `test -f ${NODE_STATE}/reboot-required`)).code === 0
          ) {
            log(`  ${b.node.name}: rebooting as the driver step asked`);
            await exec(ssh, "systemctl reboot").catch(() => undefined);
            ssh.dispose();
            await new Promise((res) => setTimeout(res, 3000));
            ssh = await connect(targetOf(b), 90);
            sessions.set(b.node.name, ssh);
            r = await exec(ssh, command);
            rebooted = true;
          }
          const out = `${r.stdout}\n${r.stderr}`.trim();
          const rec: StepRecord = {
            node: b.node.name,
            step: step.id,
            ok: r.code === 0,
            changed: /RESULT changed/.test(r.stdout) || rebooted,
            seconds: (Date.now() - t0) / 1000,
            ...(rebooted ? { rebooted } : {}),
            tail: out.split("\n").slice(-12).join("\n"),
          };
          report.secondsPerNode[b.node.name]! += rec.seconds;
          log(
            `  ${b.node.name}: ${rec.ok ? (rec.changed ? "changed" : "unchanged") : "FAILED"} (${rec.seconds.toFixed(1)} s)${
              rec.ok
                ? ""
                : `\n${out
                    .split("\n")
                    .slice(-8)
                    .map((l) => `    ${l}`)
                    .join("\n")}`
            }`,
          );
          return rec;
        }),
      );
      report.steps.push(...results);
      const failed = results.filter((r) => !r.ok);
      if (failed.length) {
        const msg = `step ${step.id} failed on ${failed.map((f) => f.node).join(", ")}:\n${failed.map((f) => f.tail).join("\n")}`;
        throw new DeployError(msg, finish(msg));
      }
    }
    return finish();
  } catch (e) {
    if (e instanceof DeployError) throw e;
    const msg = (e as Error).message;
    throw new DeployError(msg, finish(msg));
  } finally {
    for (const s of sessions.values()) s.dispose();
  }
}

export interface NodeCheck {
  readonly node: string;
  readonly role: string;
  readonly check: string;
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * Checks every node of a deployed hosts stack without changing it: each node runs its provisioned
 * verify.sh (units, driver, weights, connectivity, Ray, Prometheus targets, a real image request).
 * `full` re-hashes every weight file instead of trusting the last verification's stamp.
 */
export async function verifyNodes(plan: Plan, opts: { full?: boolean } = {}): Promise<NodeCheck[]> {
  const sshTarget = sshTargets(plan);
  const perNode = await Promise.all(
    plan.nodes.map(async (n): Promise<NodeCheck[]> => {
      const base = { node: n.name, role: n.role };
      let ssh: NodeSSH;
      try {
        ssh = await connect(sshTarget(n.host!), 6);
      } catch (e) {
        return [{ ...base, check: "ssh", ok: false, detail: (e as Error).message }];
      }
      try {
        const script = `${NODE_HOME}/bin/verify.sh`;
        const r = await exec(
          ssh,
          `test -x ${script} || { echo 'CHECK provisioned FAIL ${script} is missing: run npm run deploy first'; exit 1; }; ${opts.full ? "VERIFY_FULL=1 " : ""}bash ${script}`,
        );
        const checks = r.stdout
          .split("\n")
          .map((l) => /^CHECK (\S+) (ok|FAIL) ?(.*)$/.exec(l))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => ({ ...base, check: m[1]!, ok: m[2] === "ok", detail: m[3] ?? "" }));
        if (r.code !== 0 && checks.every((c) => c.ok))
          checks.push({
            ...base,
            check: "verify.sh",
            ok: false,
            detail: `exited ${r.code}: ${`${r.stdout}\n${r.stderr}`.trim().split("\n").pop()}`,
          });
        return checks;
      } finally {
        ssh.dispose();
      }
    }),
  );
  return perNode.flat();
}
