/**
 * Existing machines (target.kind hosts) over SSH: how to reach each one (its key, its known host
 * key, every problem on this machine named before any connection), and `verify`, which checks every
 * node of a deployed stack without changing it. Deploying is `pulumi up` (program.ts).
 */
import { UserError } from "../config/errors";
import { createHmac } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import type { NodeSSH } from "node-ssh";
import { join, resolve } from "node:path";
import type { HostConfig, HostsTarget } from "../config/schema";
import { PROJECT_ROOT } from "../config/stack-file";
import type { Plan, PlanNode } from "../plan";
import { NODE_HOME } from "../plan/layout";
import { asRoot } from "./remote";
import { connect, exec, type SshTarget } from "./ssh";

/** What must be right on this machine before any node is touched (keys, known hosts): every problem at once. */
export class DeploySetupError extends UserError {}

function expandPath(p: string): string {
  return p.startsWith("~/") ? join(homedir(), p.slice(2)) : resolve(PROJECT_ROOT, p);
}

/** One known_hosts line, as sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT" defines it. */
export interface KnownHostsEntry {
  readonly marker?: "@revoked" | "@cert-authority";
  /** Comma-separated patterns, `[host]:port` forms and `|1|salt|hash` hashed names. */
  readonly hosts: string;
  /** "type base64". */
  readonly key: string;
}

/** Every entry of a known_hosts text (comments, blank and malformed lines skipped). Pure. */
export function parseKnownHosts(text: string): KnownHostsEntry[] {
  const out: KnownHostsEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const fields = raw.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith("#")) continue;
    const marker =
      fields[0] === "@revoked" || fields[0] === "@cert-authority" ? fields.shift() : undefined;
    const [hosts, type, key] = fields;
    if (!hosts || !type || !key) continue;
    out.push({
      ...(marker ? { marker: marker as KnownHostsEntry["marker"] } : {}),
      hosts,
      key: `${type} ${key}`,
    });
  }
  return out;
}

/**
 * Whether a known_hosts host field names `host` on `port` as OpenSSH reads it: the name looked up
 * is the host for port 22 and `[host]:port` otherwise; a pattern may use `*` and `?` and be negated
 * with `!` (a negated match excludes the line); a hashed name `|1|<salt>|<hash>` is
 * HMAC-SHA1(salt, name), as `ssh-keygen -H` and `ssh-keyscan -H` write it (Debian and Ubuntu
 * hash by default: HashKnownHosts yes). Pure.
 */
export function knownHostsFieldMatches(field: string, host: string, port: number): boolean {
  const name = (port === 22 ? host : `[${host}]:${port}`).toLowerCase();
  let matched = false;
  for (const pattern of field.split(",")) {
    const hashed = /^\|1\|([A-Za-z0-9+/=]+)\|([A-Za-z0-9+/=]+)$/.exec(pattern);
    if (hashed) {
      const mac = createHmac("sha1", Buffer.from(hashed[1]!, "base64"))
        .update(name)
        .digest("base64");
      if (mac === hashed[2]) matched = true;
      continue;
    }
    const negated = pattern.startsWith("!");
    const glob = (negated ? pattern.slice(1) : pattern).toLowerCase();
    const re = new RegExp(
      `^${glob
        .replace(/[.+^${}()|[\]\\]/g, "\\$&")
        .replace(/\*/g, ".*")
        .replace(/\?/g, ".")}$`,
    );
    if (re.test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/**
 * Every key known_hosts holds for the host at its address and port, as OpenSSH reads the file:
 * all lines that name it (ssh-keyscan writes one per key type: rsa, ecdsa, ed25519), hashed names
 * included, less any key marked `@revoked` (for any host). `@cert-authority` lines are host
 * certificate authorities, which this deployer does not use: a host known only through one is
 * refused with a way out.
 */
export function knownHostKeys(knownHostsPath: string, host: HostConfig): string[] {
  const entries = parseKnownHosts(readFileSync(knownHostsPath, "utf8"));
  const revoked = new Set(entries.filter((e) => e.marker === "@revoked").map((e) => e.key));
  const named = entries.filter((e) => knownHostsFieldMatches(e.hosts, host.address, host.port));
  const keys = [
    ...new Set(
      named.filter((e) => e.marker === undefined && !revoked.has(e.key)).map((e) => e.key),
    ),
  ];
  if (keys.length > 0) return keys;
  const scan = `ssh-keyscan -H -p ${host.port} ${host.address} >> ${knownHostsPath}`;
  const why = named.some((e) => e.marker === undefined)
    ? "every key it lists for the host is marked @revoked"
    : named.some((e) => e.marker === "@cert-authority")
      ? "it names only a certificate authority for the host (host certificates are not supported)"
      : `it has no host key for ${host.name} (${host.port === 22 ? host.address : `[${host.address}]:${host.port}`})`;
  throw new DeploySetupError(
    `${knownHostsPath}: ${why}: add the host's own keys with ${scan} after checking their fingerprints out of band (ssh-keygen -lf) — host keys are never skipped`,
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
        knownHostKeys(knownHosts, h);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
  if (problems.length)
    throw new DeploySetupError(
      `Cannot connect to the nodes yet; nothing was changed on any of them:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
}

/**
 * How to reach each node of a hosts stack (its key, its known host key), after checking on this
 * machine what must be right before any connection (DeploySetupError lists every problem).
 */
export function sshTargets(plan: Plan): (host: HostConfig) => SshTarget {
  const target = plan.hosts!;
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
    hostKeys: knownHostKeys(knownHosts, host),
  });
}

function hostsTarget(plan: Plan): (node: PlanNode) => SshTarget {
  const sshTarget = sshTargets(plan);
  return (n) => sshTarget(n.host!);
}

export interface NodeCheck {
  readonly node: string;
  readonly role: string;
  readonly check: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** How to reach a node that is not one of target.hosts: an AWS node, as read from the stack's state. */
export interface NodeAccess {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** The deployment's private key (the DeployKey resource's secret output). */
  readonly privateKey: string;
  /** Every host key the node is known by (read from the instance's console). */
  readonly hostKeys: readonly string[];
}

/** The SSH target for a node reached with the deployment's key and its console host keys. */
export function accessTarget(a: NodeAccess): SshTarget {
  return {
    host: a.host,
    port: a.port,
    user: a.user,
    privateKey: a.privateKey,
    hostKeys: a.hostKeys,
  };
}

/**
 * Checks every node of a deployed stack without changing it: each node runs its provisioned
 * verify.sh (units, driver, weights, connectivity, Ray, Prometheus targets, a real image request).
 * `full` re-hashes every weight file instead of trusting the last verification's stamp. `target`:
 * how to reach each node (AWS: from the stack's state); default, a hosts stack's target.hosts with
 * its key and known hosts (every problem on this machine named before any connection).
 */
export async function verifyNodes(
  plan: Plan,
  opts: { full?: boolean; target?: (node: PlanNode) => SshTarget } = {},
): Promise<NodeCheck[]> {
  const target = opts.target ?? hostsTarget(plan);
  const perNode = await Promise.all(
    plan.nodes.map(async (n): Promise<NodeCheck[]> => {
      const base = { node: n.name, role: n.role };
      let ssh: NodeSSH;
      const t = target(n);
      try {
        ssh = await connect(t, 6);
      } catch (e) {
        return [{ ...base, check: "ssh", ok: false, detail: (e as Error).message }];
      }
      try {
        const script = `${NODE_HOME}/bin/verify.sh`;
        const r = await exec(
          ssh,
          // As root, as the steps ran (an AWS image's login is ubuntu or admin): verify.sh reads the
          // root-only secrets file and runs checks as the service account (runuser).
          asRoot(
            t.user,
            `test -x ${script} || { echo 'CHECK provisioned FAIL ${script} is missing: deploy first (npm run pulumi -- up --stack <stack> --yes)'; exit 1; }; ${opts.full ? "VERIFY_FULL=1 " : ""}bash ${script}`,
          ),
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
