/**
 * SSH to a node with node-ssh: key authentication, the host key checked against the keys the
 * deployment knows the node by (never disabled), bounded connection attempts, keepalive on.
 */
import { UserError } from "../config/errors";
import { readFileSync } from "node:fs";
import { Socket } from "node:net";
import { NodeSSH } from "node-ssh";

export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Path of the private key on this machine; or `privateKey`, the key itself (a Pulumi secret). */
  readonly privateKeyPath?: string;
  readonly privateKey?: string;
  /**
   * Every host public key the node is known by, "ssh-ed25519 AAAA…" (known_hosts, or the instance's
   * console): a fresh Debian or Ubuntu host has three (rsa, ecdsa, ed25519), and which one the
   * server presents depends on the client's algorithm order, so all of them are accepted.
   */
  readonly hostKeys: readonly string[];
}

/** A connection as stored by an earlier release of this program: one `hostKey`. */
export type StoredSshTarget = Omit<SshTarget, "hostKeys"> & {
  readonly hostKeys?: readonly string[];
  readonly hostKey?: string;
};

/** The host keys of a target, also from state written before `hostKeys` (one `hostKey`). */
export function targetHostKeys(t: StoredSshTarget): readonly string[] {
  return t.hostKeys ?? (t.hostKey ? [t.hostKey] : []);
}

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export class HostKeyMismatch extends Error {}
/** The key or the login is wrong: trying again cannot help. */
export class SshAuthError extends UserError {}

/**
 * The server host key algorithms to offer for the known key types, in ssh2's own order of
 * preference: OpenSSH does the same (ssh_config(5) HostKeyAlgorithms: "the algorithms of host keys
 * already known are preferred"), so the server presents a key we hold. An RSA key is signed with
 * rsa-sha2-512/256 (RFC 8332) or, on old servers, ssh-rsa.
 */
export function hostKeyAlgorithms(keys: readonly string[]): string[] {
  const types = new Set(keys.map((k) => k.split(" ")[0]));
  const order = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
  ];
  return order.filter((a) =>
    a.startsWith("rsa-sha2-") || a === "ssh-rsa" ? types.has("ssh-rsa") : types.has(a),
  );
}

/**
 * Keepalive: a probe every 15 s, the link given up after 4 unanswered (a minute), so that a laptop
 * that slept or a VPN that reconnected is noticed instead of hanging on a dead TCP connection
 * (ssh_config(5) ServerAliveInterval/ServerAliveCountMax; ssh2's keepaliveInterval/CountMax).
 */
export const KEEPALIVE = { intervalMs: 15_000, countMax: 4 } as const;

/** One TCP connection attempt: "open", or why not (ECONNREFUSED, ETIMEDOUT, …). Bounded. */
export function probePort(host: string, port: number, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (why: string) => {
      s.destroy();
      resolve(why);
    };
    s.setTimeout(timeoutMs, () => done("ETIMEDOUT"));
    s.once("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    s.connect(port, host, () => done("open"));
  });
}

export async function connect(
  t: SshTarget,
  attempts = 30,
  keepalive: { intervalMs: number; countMax: number } = KEEPALIVE,
): Promise<NodeSSH> {
  const keys = targetHostKeys(t);
  const known = keys.map((k) => Buffer.from(k.split(" ")[1] ?? "", "base64"));
  if (known.length === 0 || known.some((k) => k.length === 0))
    throw new HostKeyMismatch(
      `${t.host}: no known host key to check it against; refusing to connect`,
    );
  const keyName = t.privateKeyPath ?? "the deployment's key";
  const privateKey = t.privateKey ?? readFileSync(t.privateKeyPath ?? "", "utf8");
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    const ssh = new NodeSSH();
    let mismatch = false;
    try {
      await ssh.connect({
        host: t.host,
        port: t.port,
        username: t.user,
        privateKey,
        readyTimeout: 10_000,
        keepaliveInterval: keepalive.intervalMs,
        keepaliveCountMax: keepalive.countMax,
        algorithms: { serverHostKey: hostKeyAlgorithms(keys) },
        hostVerifier: (key: Buffer) => {
          mismatch = !known.some((k) => key.equals(k));
          return !mismatch;
        },
      } as Parameters<NodeSSH["connect"]>[0]);
      // node-ssh stops listening for the client's errors once connected; ssh2 then emits a
      // keepalive timeout or a reset as an unhandled 'error', which throws instead of closing the
      // socket, and an exec on a dead link would wait for the kernel's TCP timeout (minutes). With a
      // listener, ssh2 closes the connection and every open exec ends (code null: re-attach).
      ssh.connection?.on("error", () => undefined);
      return ssh;
    } catch (e) {
      if (mismatch)
        throw new HostKeyMismatch(
          `${t.host}: the host key does not match any known one; refusing to connect`,
        );
      const text = String(e);
      if (/Cannot parse privateKey/i.test(text))
        throw new SshAuthError(
          `${keyName} is not a private key SSH can use (${text}): point target.sshPrivateKeyPath at an unencrypted OpenSSH or PEM key`,
        );
      if (/All configured authentication methods failed/i.test(text))
        throw new SshAuthError(
          `${t.user}@${t.host}:${t.port} refused the key ${keyName}: add its public key to ${t.user}'s ~/.ssh/authorized_keys on the node`,
        );
      if (/no matching host key format/i.test(text))
        throw new HostKeyMismatch(
          `${t.host}: the server offers none of the known host key types (${[...new Set(keys.map((k) => k.split(" ")[0]))].join(", ")}); refusing to connect`,
        );
      last = e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  throw new Error(
    `cannot reach ${t.user}@${t.host}:${t.port} over SSH after ${attempts} attempts (${String(last)}): check the address and port, that sshd runs, and the firewall or security group between here and the node`,
  );
}

export async function exec(
  ssh: NodeSSH,
  command: string,
  opts: { stdin?: string; onLine?: (line: string) => void } = {},
): Promise<ExecResult> {
  const r = await ssh.execCommand(command, {
    ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
    ...(opts.onLine
      ? {
          onStdout: (b: Buffer) => b.toString().split("\n").filter(Boolean).forEach(opts.onLine!),
          onStderr: (b: Buffer) => b.toString().split("\n").filter(Boolean).forEach(opts.onLine!),
        }
      : {}),
  });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}
