/**
 * What a provisioning step resource does on its node, over SSH (node-ssh, host keys always checked):
 * run the step's command (as root: through `sudo -n` for another user), reboot and run it again when
 * the step asks for it, read its RESULT line, and on failure name the node, the step and the last
 * lines of its output. The Pulumi dynamic provider (components/remote-step.ts) calls these; nothing
 * here knows about Pulumi, so the lab and the tests run exactly this code.
 */
import type { NodeSSH } from "node-ssh";
import { connect, exec, type SshTarget } from "./ssh";

/** How to reach a node: provisioning/ssh.ts's target (the key a path here, or the key itself as a Pulumi secret). */
export type Connection = SshTarget;

export interface StepArgs {
  readonly connection: Connection;
  /** Plan node name and step id, for messages. */
  readonly node: string;
  readonly step: string;
  /** Shell command run as root on the node. */
  readonly create: string;
  /** Shell command run as root on the node when the resource is deleted (undo); none: nothing. */
  readonly delete?: string;
  /** Standard input of `create` (file payloads, secrets: never in the command's text). */
  readonly stdin?: string;
  /** A reboot may be asked for by leaving this file; then reboot and run `create` again. */
  readonly rebootMarker?: string;
  /** SSH connection attempts (1 s apart, 10 s each) before giving up. */
  readonly dialAttempts?: number;
}

export interface StepResult {
  /** The step's own verdict (its "RESULT changed" line); true when it says nothing. */
  readonly changed: boolean;
  readonly rebooted: boolean;
  readonly seconds: number;
  /** The last lines of its output (never secrets: the scripts do not print them). */
  readonly tail: string;
}

export class StepFailed extends Error {
  constructor(
    message: string,
    readonly tail: string,
  ) {
    super(message);
    this.name = "StepFailed";
  }
}

const TAIL_LINES = 15;

/** The command as root: unchanged for root, through non-interactive sudo for another user. */
export function asRoot(user: string, command: string): string {
  const quoted = `'${command.replace(/'/g, `'\\''`)}'`;
  return user === "root" ? `bash -c ${quoted}` : `sudo -n bash -c ${quoted}`;
}

function tailOf(stdout: string, stderr: string): string {
  return `${stdout}\n${stderr}`.trim().split("\n").slice(-TAIL_LINES).join("\n");
}

async function dial(args: StepArgs, attempts: number): Promise<NodeSSH> {
  try {
    return await connect(args.connection, attempts);
  } catch (e) {
    throw new StepFailed(`${args.node}: step ${args.step}: ${(e as Error).message}`, "");
  }
}

/** Runs the step's `create` command (rebooting once when it asks), or throws StepFailed. */
export async function runStep(args: StepArgs): Promise<StepResult> {
  const t0 = Date.now();
  const user = args.connection.user;
  let ssh = await dial(args, args.dialAttempts ?? 6);
  try {
    const once = () =>
      exec(ssh, asRoot(user, args.create), args.stdin !== undefined ? { stdin: args.stdin } : {});
    let r = await once();
    let rebooted = false;
    if (
      r.code === 0 &&
      args.rebootMarker &&
      (await exec(ssh, asRoot(user, `test -f ${args.rebootMarker}`))).code === 0
    ) {
      await exec(ssh, asRoot(user, "systemctl reboot")).catch(() => undefined);
      ssh.dispose();
      await new Promise((res) => setTimeout(res, 3000));
      ssh = await dial(args, 90);
      r = await once();
      rebooted = true;
    }
    const tail = tailOf(r.stdout, r.stderr);
    if (r.code !== 0) {
      throw new StepFailed(
        `${args.node}: step ${args.step} failed (exit ${r.code ?? "signal"}) on ${args.connection.host}; its last lines:\n${tail
          .split("\n")
          .map((l) => `    ${l}`)
          .join("\n")}`,
        tail,
      );
    }
    const verdict = /RESULT (changed|unchanged)/.exec(r.stdout)?.[1];
    return {
      changed: rebooted || verdict !== "unchanged",
      rebooted,
      seconds: (Date.now() - t0) / 1000,
      tail,
    };
  } finally {
    ssh.dispose();
  }
}

/** Runs the step's `delete` command, if any (undoing what `create` did). */
export async function undoStep(args: StepArgs): Promise<void> {
  if (!args.delete) return;
  const ssh = await dial(args, args.dialAttempts ?? 6);
  try {
    const r = await exec(ssh, asRoot(args.connection.user, args.delete));
    if (r.code !== 0)
      throw new StepFailed(
        `${args.node}: undoing step ${args.step} failed (exit ${r.code ?? "signal"}) on ${args.connection.host}:\n${tailOf(r.stdout, r.stderr)}`,
        tailOf(r.stdout, r.stderr),
      );
  } finally {
    ssh.dispose();
  }
}

/**
 * The host keys cloud-init prints to the instance's console ("-----BEGIN SSH HOST KEY KEYS-----"),
 * read through the EC2 API with the deployer's own credentials: a channel an attacker on the network
 * path cannot forge. Waits (bounded) until the console shows them.
 */
export async function consoleHostKey(
  region: string,
  instanceId: string,
  timeoutMs = 15 * 60_000,
): Promise<string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ec2 = require("@aws-sdk/client-ec2") as typeof import("@aws-sdk/client-ec2");
  const client = new ec2.EC2Client({ region });
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const out = await client.send(
        new ec2.GetConsoleOutputCommand({ InstanceId: instanceId, Latest: true }),
      );
      const text = out.Output ? Buffer.from(out.Output, "base64").toString("utf8") : "";
      const key = parseConsoleHostKeys(text);
      if (key) return key;
      last = "the console does not show the host keys yet";
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 10_000));
  }
  throw new Error(
    `${instanceId}: no SSH host key on its console within ${timeoutMs / 60_000} min (${last}); the AMI must run cloud-init's keys-to-console module (Ubuntu, Debian and the Deep Learning AMIs do)`,
  );
}

/** The ed25519 host key (or the first key) of cloud-init's console block, "type base64". */
export function parseConsoleHostKeys(console: string): string | undefined {
  const block = /-----BEGIN SSH HOST KEY KEYS-----([\s\S]*?)-----END SSH HOST KEY KEYS-----/.exec(
    console,
  )?.[1];
  if (!block) return undefined;
  const keys = block
    .split("\n")
    .map((l) => l.replace(/^.*?((?:ssh|ecdsa)-\S+ [A-Za-z0-9+/=]+).*$/, "$1").trim())
    .filter((l) => /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-\S+) [A-Za-z0-9+/=]+$/.test(l));
  return keys.find((k) => k.startsWith("ssh-ed25519")) ?? keys[0];
}

/** A new ed25519 key pair in OpenSSH format, for the deployment to reach its AWS nodes. */
export function generateDeployKey(comment: string): { publicKey: string; privateKey: string } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ssh2 = require("ssh2") as {
    utils: {
      generateKeyPairSync(
        type: "ed25519",
        opts: { comment: string },
      ): {
        public: string;
        private: string;
      };
    };
  };
  const k = ssh2.utils.generateKeyPairSync("ed25519", { comment });
  return { publicKey: k.public.trim(), privateKey: k.private };
}
