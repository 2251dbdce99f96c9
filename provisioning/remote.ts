/**
 * What a provisioning step resource does on its node, over SSH (node-ssh, host keys always checked):
 * run the step's command as root (through `sudo -n` for another user) DETACHED on the node, under
 * systemd-run (a transient unit, outside the SSH session), follow its output, and re-attach after a
 * dropped link (a laptop that slept, a VPN that reconnected): the step goes on on the node and is
 * never cut half-way through dpkg or a 137 GiB download. Reboot and run it again when the step asks,
 * waiting for the new boot. Read its RESULT line, and on failure name the node, the step and the last
 * lines of its output. The Pulumi dynamic provider (components/remote-step.ts) calls these; nothing
 * here knows about Pulumi, so the lab and the tests run exactly this code.
 */
import { createHash, randomBytes } from "node:crypto";
import type { NodeSSH } from "node-ssh";
import { StringDecoder } from "node:string_decoder";
import { connect, exec, probePort, type SshTarget } from "./ssh";

export { targetHostKeys } from "./ssh";

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
  /**
   * Progress as it happens: every line the step prints, and a heartbeat ("still running …") at least
   * every 30 s while it prints nothing, so a long step never sits silent. Default: none.
   */
  readonly onProgress?: (line: string) => void;
}

export interface StepResult {
  /** The step's own verdict (its "RESULT changed" line); true when it says nothing. */
  readonly changed: boolean;
  readonly rebooted: boolean;
  readonly seconds: number;
  /** The last lines of its output (never secrets: the scripts do not print them). */
  readonly tail: string;
  /** How often the SSH link dropped while the step ran on the node (and was re-attached). */
  readonly reattached: number;
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
/** Where a detached run keeps its command, input, output, pid and exit status (tmpfs, root only). */
export const RUN_DIR = "/run/qwen-vl-steps";
/** The longest a poll waits on the node for new output before it answers anyway (a heartbeat). */
const POLL_WAIT_SECONDS = 25;
/** Re-attachments after dropped links before a step gives up (each re-dial is bounded too). */
const MAX_REATTACH = 20;

/** The command as root: unchanged for root, through non-interactive sudo for another user. */
export function asRoot(user: string, command: string): string {
  const quoted = `'${command.replace(/'/g, `'\\''`)}'`;
  return user === "root" ? `bash -c ${quoted}` : `sudo -n bash -c ${quoted}`;
}

function tailOf(text: string): string {
  return text.trim().split("\n").slice(-TAIL_LINES).join("\n");
}

/** A timed-out dial means nothing answered at all: say what usually causes it. */
function unreachableHint(message: string): string {
  return /Timed out while waiting for handshake|ETIMEDOUT|EHOSTUNREACH/.test(message)
    ? "; nothing answered at all, so a firewall or security group drops the packets: for an AWS stack, network.sshCidrs must hold this machine's current public address (curl -s https://checkip.amazonaws.com)"
    : "";
}

async function dial(args: StepArgs, attempts: number): Promise<NodeSSH> {
  const { host, port } = args.connection;
  if (attempts > 6 && args.onProgress) {
    // One probe before a long wait: a dead silence now is worth saying at once, not in 20 minutes.
    const probe = await probePort(host, port);
    if (probe === "ETIMEDOUT")
      args.onProgress(
        `${host}:${port} does not answer yet (a booting machine, or a firewall that drops this machine's packets: check that network.sshCidrs still holds this machine's public address); trying for up to ${Math.round((attempts * 11) / 60)} min`,
      );
  }
  try {
    return await connect(args.connection, attempts);
  } catch (e) {
    const m = (e as Error).message;
    throw new StepFailed(`${args.node}: step ${args.step}: ${m}${unreachableHint(m)}`, "");
  }
}

/**
 * The node's current boot, which changes with every boot: the kernel's boot_id (proc(5)), and the
 * start time of PID 1 (proc(5) /proc/pid/stat field 22), which also changes when a container
 * (LXC, systemd-nspawn), sharing its host's kernel and boot_id, restarts. Tells the new system from
 * the old one still shutting down.
 */
async function bootId(ssh: NodeSSH): Promise<string> {
  const r = await exec(
    ssh,
    "echo \"$(cat /proc/sys/kernel/random/boot_id) $(sed 's/.*) //' /proc/1/stat | cut -d' ' -f20)\"",
  );
  return r.stdout.trim();
}

/** A run id: unique per run, safe in a unit name and a path. */
function runId(step: string): string {
  const safe = step.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 40);
  return `${safe}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}

/**
 * Launches `command` detached on the node: as a transient systemd unit (systemd-run: outside the SSH
 * session's cgroup, so neither a closed session nor logind's KillUserProcesses ends it), or with
 * setsid + nohup where systemd does not run. Idempotent per run id: launching again after a dropped
 * link never starts it twice. Pure (the shell text).
 */
export function launchScript(id: string, step = "step"): string {
  const d = `${RUN_DIR}/${id}`;
  const lock = `/run/lock/qwen-vl-step-${step.replace(/[^A-Za-z0-9_-]/g, "_")}.lock`;
  // The wrapper is a file, not a command line: systemd-run's command line is expanded by systemd
  // ("$$" becomes "$", $NAME and %-specifiers are substituted: systemd.service(5) Command lines).
  // The exit status is written after the output is complete.
  const wrapper = [
    'd="$(dirname "$0")"',
    'echo $$ > "$d/pid"',
    // One run of a step at a time on a node: a run left going by an aborted `pulumi up` is waited
    // for by the next one's (the steps are idempotent: it then changes nothing), never run beside.
    `if command -v flock >/dev/null 2>&1; then mkdir -p /run/lock; exec 9>${lock}; flock 9; fi`,
    'in=/dev/null; [ -f "$d/in" ] && in="$d/in"',
    'bash "$d/cmd" < "$in" > "$d/log" 2>&1',
    'echo $? > "$d/rc.tmp"; mv "$d/rc.tmp" "$d/rc"; rm -f "$d/in"',
  ].join("\n");
  return [
    `d=${d}`,
    `if [ ! -e "$d/launched" ]; then`,
    `  cat > "$d/run" <<'QWEN_VL_RUN'`,
    wrapper,
    `QWEN_VL_RUN`,
    `  touch "$d/launched"`,
    `  if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then`,
    `    systemd-run --quiet --collect --unit=qwen-vl-step-${id} --setenv=HOME=/root --property=StandardInput=null /bin/bash "$d/run"`,
    `  else`,
    `    setsid nohup /bin/bash "$d/run" </dev/null >/dev/null 2>&1 &`,
    `  fi`,
    `fi`,
    // The wrapper's pid, so a poll can tell a run that died without an exit status (bounded wait).
    `for _ in $(seq 1 100); do [ -s "$d/pid" ] && break; sleep 0.1; done`,
    `[ -s "$d/pid" ] && echo launched`,
  ].join("\n");
}

/**
 * One poll of a detached run: waits on the node (at most POLL_WAIT_SECONDS) for new output or the
 * end, then prints "<rc or -> <log size> <alive 1|0>" and the output past `offset`, in base64.
 * Pure.
 */
export function pollScript(id: string, offset: number): string {
  const d = `${RUN_DIR}/${id}`;
  return [
    `d=${d}; off=${offset}`,
    `size() { stat -c %s "$d/log" 2>/dev/null || echo 0; }`,
    `for _ in $(seq 1 ${POLL_WAIT_SECONDS * 5}); do [ -f "$d/rc" ] && break; [ "$(size)" -gt "$off" ] && break; sleep 0.2; done`,
    `rc=$(cat "$d/rc" 2>/dev/null || echo -); s=$(size)`,
    `alive=0; p=$(cat "$d/pid" 2>/dev/null); [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=1`,
    `echo "$rc $s $alive"`,
    // base64: the SSH library trims what a command prints, and a chunk may end in a line break.
    `[ "$s" -gt "$off" ] && tail -c +$((off + 1)) "$d/log" | head -c $((s - off)) | base64 -w0`,
    `true`,
  ].join("\n");
}

interface Attached {
  ssh: NodeSSH;
  reattached: number;
}

/**
 * Runs `command` (with `stdin`) detached on the node and follows it to its end, re-dialling and
 * re-attaching (same run id, output resumed at the same byte) whenever the link drops.
 */
async function runDetached(
  args: StepArgs,
  at: Attached,
  command: string,
  stdin: string | undefined,
): Promise<{ code: number; output: string }> {
  const user = args.connection.user;
  const id = runId(args.step);
  const d = `${RUN_DIR}/${id}`;
  const redialAttempts = Math.max(30, args.dialAttempts ?? 6);
  // Each exec is retried on a fresh connection when the link is gone; the scripts are idempotent.
  const onNode = async (script: string, input?: string) => {
    for (;;) {
      try {
        const r = await exec(
          at.ssh,
          asRoot(user, script),
          input !== undefined ? { stdin: input } : {},
        );
        if (r.code !== null) return r;
      } catch {
        // the link is gone: dial again below
      }
      if (++at.reattached > MAX_REATTACH)
        throw new StepFailed(
          `${args.node}: step ${args.step}: the SSH link to ${args.connection.host} dropped ${MAX_REATTACH} times; the step may still be running on the node (${d}): run pulumi up again to re-run it once the link is steady`,
          "",
        );
      args.onProgress?.(
        `SSH link to ${args.connection.host} lost; the step goes on on the node: re-attaching`,
      );
      at.ssh.dispose();
      at.ssh = await dial(args, redialAttempts);
    }
  };
  const staged = await onNode(
    `umask 077 && install -d -m 0700 ${RUN_DIR} ${d} && cat > ${d}/cmd.tmp && mv ${d}/cmd.tmp ${d}/cmd`,
    command,
  );
  const stageFailed = (what: string, r: { stdout: string; stderr: string }) =>
    new StepFailed(
      `${args.node}: step ${args.step}: cannot ${what} on ${args.connection.host}: ${`${r.stdout}\n${r.stderr}`.trim()}`,
      tailOf(`${r.stdout}\n${r.stderr}`),
    );
  if (staged.code !== 0) throw stageFailed("stage the step", staged);
  if (stdin !== undefined) {
    const r = await onNode(`umask 077 && cat > ${d}/in.tmp && mv ${d}/in.tmp ${d}/in`, stdin);
    if (r.code !== 0) throw stageFailed("stage the step's input", r);
  }
  const launched = await onNode(launchScript(id, args.step));
  if (!launched.stdout.includes("launched")) throw stageFailed("start the step", launched);
  let offset = 0;
  let output = "";
  const utf8 = new StringDecoder("utf8");
  let pending = "";
  let quietSince = Date.now();
  const t0 = Date.now();
  for (;;) {
    const r = await onNode(pollScript(id, offset));
    const nl = r.stdout.indexOf("\n");
    const head = (nl < 0 ? r.stdout : r.stdout.slice(0, nl)).trim().split(" ");
    const [rc, sizeText, alive] = head;
    const size = Number(sizeText);
    if (!Number.isFinite(size))
      throw new Error(`unreadable poll answer: ${r.stdout.slice(0, 200)}`);
    // A UTF-8 character may straddle two chunks: decoded as a stream.
    const chunk = nl < 0 ? "" : utf8.write(Buffer.from(r.stdout.slice(nl + 1).trim(), "base64"));
    if (size > offset) {
      offset = size;
      output += chunk;
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const l of lines) if (l.trim()) args.onProgress?.(l);
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= 20_000) {
      args.onProgress?.(`still running (${Math.round((Date.now() - t0) / 1000)} s)`);
      quietSince = Date.now();
    }
    if (rc !== "-" && size <= offset) {
      if (pending.trim()) args.onProgress?.(pending);
      await onNode(`rm -rf ${d}; rmdir ${RUN_DIR} 2>/dev/null || true`);
      return { code: Number(rc), output };
    }
    if (rc === "-" && alive === "0") {
      // Give the wrapper's last write a moment to land, then decide.
      const last = await onNode(`cat ${d}/rc 2>/dev/null || echo -`);
      if (last.stdout.trim() === "-") {
        await onNode(`rm -rf ${d}; rmdir ${RUN_DIR} 2>/dev/null || true`);
        throw new StepFailed(
          `${args.node}: step ${args.step}: its process on ${args.connection.host} ended without an exit status (killed, or the node rebooted); its last lines:\n${indent(tailOf(output))}`,
          tailOf(output),
        );
      }
    }
  }
}

const indent = (s: string) =>
  s
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");

/** Runs the step's `create` command (rebooting once when it asks), or throws StepFailed. */
export async function runStep(args: StepArgs): Promise<StepResult> {
  const t0 = Date.now();
  const user = args.connection.user;
  const at: Attached = { ssh: await dial(args, args.dialAttempts ?? 6), reattached: 0 };
  try {
    const once = () => runDetached(args, at, args.create, args.stdin);
    let r = await once();
    let rebooted = false;
    if (
      r.code === 0 &&
      args.rebootMarker &&
      (await exec(at.ssh, asRoot(user, `test -f ${args.rebootMarker}`))).code === 0
    ) {
      const before = await bootId(at.ssh);
      args.onProgress?.(`rebooting ${args.connection.host} as the step asked`);
      const asked = await exec(at.ssh, asRoot(user, "systemctl reboot")).catch(() => undefined);
      // A refusal (an inhibitor, polkit) answers with a status; a link closed by the reboot does not.
      if (asked && asked.code !== null && asked.code !== 0)
        throw new StepFailed(
          `${args.node}: step ${args.step}: ${args.connection.host} refused to reboot (systemctl reboot: exit ${asked.code}): ${asked.stderr.trim()}; reboot it by hand, then run pulumi up again`,
          asked.stderr.trim(),
        );
      at.ssh.dispose();
      // The old system may still answer for a moment while it shuts down: wait for the new boot.
      const since = Date.now();
      for (;;) {
        await new Promise((res) => setTimeout(res, 3000));
        at.ssh = await dial(args, 90);
        if ((await bootId(at.ssh).catch(() => before)) !== before) break;
        at.ssh.dispose();
        if (Date.now() - since > 10 * 60_000)
          throw new StepFailed(
            `${args.node}: step ${args.step}: ${args.connection.host} is still on the same boot ${Math.round((Date.now() - since) / 60_000)} min after it was asked to reboot`,
            "",
          );
      }
      r = await once();
      rebooted = true;
    }
    const tail = tailOf(r.output);
    if (r.code !== 0) {
      throw new StepFailed(
        `${args.node}: step ${args.step} failed (exit ${r.code}) on ${args.connection.host}; its last lines:\n${indent(tail)}`,
        tail,
      );
    }
    const verdict = /RESULT (changed|unchanged)/.exec(r.output)?.[1];
    return {
      changed: rebooted || verdict !== "unchanged",
      rebooted,
      seconds: (Date.now() - t0) / 1000,
      tail,
      reattached: at.reattached,
    };
  } finally {
    at.ssh.dispose();
  }
}

/** Runs the step's `delete` command, if any (undoing what `create` did), detached like `create`. */
export async function undoStep(args: StepArgs): Promise<void> {
  if (!args.delete) return;
  const at: Attached = { ssh: await dial(args, args.dialAttempts ?? 6), reattached: 0 };
  try {
    const r = await runDetached(args, at, args.delete, undefined);
    if (r.code !== 0)
      throw new StepFailed(
        `${args.node}: undoing step ${args.step} failed (exit ${r.code}) on ${args.connection.host}:\n${tailOf(r.output)}`,
        tailOf(r.output),
      );
  } finally {
    at.ssh.dispose();
  }
}

/**
 * Whether `key` ("type base64") is a whole SSH public key of its declared type: the blob's own type
 * string matches and its fields (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4) end exactly where the
 * blob does, so a console line cut by an interleaved message is never taken for a key. Pure.
 */
export function isWholeSshKey(key: string): boolean {
  const [type, b64] = key.split(" ");
  if (!type || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return false;
  const blob = Buffer.from(b64, "base64");
  if (blob.toString("base64").replace(/=+$/, "") !== b64.replace(/=+$/, "")) return false;
  const fields: Buffer[] = [];
  let at = 0;
  while (at < blob.length) {
    if (at + 4 > blob.length) return false;
    const n = blob.readUInt32BE(at);
    if (at + 4 + n > blob.length) return false;
    fields.push(blob.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  if (fields[0]?.toString() !== type) return false;
  if (type === "ssh-ed25519") return fields.length === 2 && fields[1]!.length === 32;
  if (type === "ssh-rsa") return fields.length === 3 && fields[2]!.length >= 128;
  const curve = /^ecdsa-sha2-(nistp256|nistp384|nistp521)$/.exec(type)?.[1];
  if (curve) {
    const point = { nistp256: 65, nistp384: 97, nistp521: 133 }[curve as "nistp256"];
    return fields.length === 3 && fields[1]!.toString() === curve && fields[2]!.length === point;
  }
  return false;
}

const KEY_TYPES = "ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)";

/**
 * Every host key in cloud-init's console block ("-----BEGIN SSH HOST KEY KEYS-----", one
 * `<type> <base64> <comment>` line per key from /etc/ssh/ssh_host_*_key.pub: cloud-init's
 * write-ssh-key-fingerprints), as "type base64", ed25519 first. The serial console ends lines in
 * CR LF (aws/aws-cli#2062), may prefix them ("ec2: ", a timestamp) and may interleave kernel or
 * systemd lines with the block or cut a key line in two: only whole keys are taken. Of several
 * blocks (a reboot prints another) the last whole one counts. Pure.
 */
export function parseConsoleHostKeys(console: string): string[] {
  const text = console.replace(/\r/g, "");
  const blocks = [
    ...text.matchAll(/-----BEGIN SSH HOST KEY KEYS-----([\s\S]*?)-----END SSH HOST KEY KEYS-----/g),
  ];
  for (const block of blocks.reverse()) {
    const keys: string[] = [];
    for (const line of block[1]!.split("\n")) {
      const m = new RegExp(`(?:^|\\s)(${KEY_TYPES}) ([A-Za-z0-9+/]+={0,2})(?:\\s|$)`).exec(line);
      const key = m ? `${m[1]} ${m[2]}` : undefined;
      if (key && isWholeSshKey(key) && !keys.includes(key)) keys.push(key);
    }
    if (keys.length > 0) {
      const rank = (k: string) => (k.startsWith("ssh-ed25519") ? 0 : k.startsWith("ecdsa") ? 1 : 2);
      return keys.sort((a, b) => rank(a) - rank(b));
    }
  }
  return [];
}

/**
 * The host keys cloud-init prints to the instance's console, read through the EC2 API with the
 * deployer's own credentials: a channel an attacker on the network path cannot forge. Waits (bounded)
 * until the console shows them. `Latest` asks for the most recent 64 KB (Nitro instances only); when
 * the block has scrolled out of that window (or the type does not support it) the output buffered
 * since boot is read instead (EC2 GetConsoleOutput).
 */
export async function consoleHostKeys(
  region: string,
  instanceId: string,
  timeoutMs = 15 * 60_000,
): Promise<string[]> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ec2 = require("@aws-sdk/client-ec2") as typeof import("@aws-sdk/client-ec2");
  const client = new ec2.EC2Client({ region });
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    for (const latest of [true, false]) {
      try {
        const out = await client.send(
          new ec2.GetConsoleOutputCommand({ InstanceId: instanceId, Latest: latest }),
        );
        const text = out.Output ? Buffer.from(out.Output, "base64").toString("utf8") : "";
        const keys = parseConsoleHostKeys(text);
        if (keys.length > 0) return keys;
        last = "the console does not show the host keys yet";
      } catch (e) {
        last = (e as Error).message;
      }
    }
    await new Promise((r) => setTimeout(r, 10_000));
  }
  throw new Error(
    `${instanceId}: no SSH host key on its console within ${timeoutMs / 60_000} min (${last}); the AMI must run cloud-init's keys-to-console module (Ubuntu, Debian and the Deep Learning AMIs do), and the operator needs ec2:GetConsoleOutput`,
  );
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

/** An SSH key's fingerprint as OpenSSH prints it ("SHA256:<unpadded base64>", ssh-keygen -l). Pure. */
export function keyFingerprint(key: string): string {
  const blob = Buffer.from(key.split(" ")[1] ?? "", "base64");
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}
