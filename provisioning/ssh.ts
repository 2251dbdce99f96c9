/**
 * SSH to a node with node-ssh: key authentication, the host key checked against the one the
 * deployment knows (never disabled), bounded connection attempts.
 */
import { UserError } from "../config/errors";
import { readFileSync } from "node:fs";
import { NodeSSH } from "node-ssh";

export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Path of the private key on this machine; or `privateKey`, the key itself (a Pulumi secret). */
  readonly privateKeyPath?: string;
  readonly privateKey?: string;
  /** The node's host public key, "ssh-ed25519 AAAA…" (from known_hosts). */
  readonly hostKey: string;
}

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export class HostKeyMismatch extends Error {}
/** The key or the login is wrong: trying again cannot help. */
export class SshAuthError extends UserError {}

export async function connect(t: SshTarget, attempts = 30): Promise<NodeSSH> {
  const expected = Buffer.from(t.hostKey.split(" ")[1] ?? "", "base64");
  if (expected.length === 0)
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
        hostVerifier: (key: Buffer) => {
          mismatch = !key.equals(expected);
          return !mismatch;
        },
      } as Parameters<NodeSSH["connect"]>[0]);
      return ssh;
    } catch (e) {
      if (mismatch)
        throw new HostKeyMismatch(
          `${t.host}: the host key does not match the known one; refusing to connect`,
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
