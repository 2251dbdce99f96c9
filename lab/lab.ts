/**
 * The lab: real Debian nodes on this machine — systemd as PID 1, sshd, each in its own network
 * namespace on a private bridge — booted with systemd-nspawn from a cached debootstrap image
 * (../shared/reference/lab-on-this-machine.md). Nodes have no route out; the host serves them a
 * package and weights mirror on the bridge. Everything the lab starts is recorded in .lab/state.json
 * and removed by `down`, by PID and by name, even after a failed run.
 */
import { UserError } from "../config/errors";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { PROJECT_ROOT } from "../config/stack-file";

export const LAB_DIR = process.env["QWEN_VL_LAB_DIR"] ?? join(PROJECT_ROOT, ".lab");
export const BRIDGE = "qvlbr0";
export const SUBNET_PREFIX = "10.77.0";
export const HOST_ADDRESS = `${SUBNET_PREFIX}.1`;
export const MIRROR_PORT = 8080;
export const NODE_ADDRESS = (i: number) => `${SUBNET_PREFIX}.${10 + i}`;
export const NODE_NAME = (i: number) => `lab-n${i}`;

/** Debian packages of the host that the lab needs: installed by lab:up when missing. */
export const HOST_PACKAGES: Readonly<Record<string, string>> = {
  debootstrap: "debootstrap",
  "systemd-nspawn": "systemd-container",
  ip: "iproute2",
  "ssh-keygen": "openssh-client",
  "ssh-keyscan": "openssh-client",
  python3: "python3",
  mount: "mount",
  aria2c: "aria2",
  flock: "util-linux",
  // The nodes' Debian packages come through it (an air-gapped site's package proxy).
  "apt-cacher-ng": "apt-cacher-ng",
};
/** The venv module for the lab's S3 emulator (python3 -m venv). */
const HOST_EXTRA_PACKAGES = ["python3-venv", "python3-pip"];

/**
 * What every node image carries: what a fresh cloud image or a stock Debian host has (systemd,
 * sshd, Python, curl), nothing the provisioning steps install themselves (python3-venv,
 * python3-dev, gcc, aria2, Prometheus, exporters): a step that passes only because the image had a
 * package would hide a failure users hit. The steps install those from the host's package proxy.
 */
const BASE_PACKAGES = [
  "systemd",
  "systemd-sysv",
  "dbus",
  "openssh-server",
  "iproute2",
  "python3",
  "curl",
  "ca-certificates",
  "procps",
];
/** The host's apt proxy on the bridge (apt-cacher-ng): how the nodes reach Debian's packages. */
export const APT_PROXY_PORT = 3142;
const DEBIAN_MIRROR = process.env["QWEN_VL_DEBIAN_MIRROR"] ?? "http://deb.debian.org/debian";

export interface LabNode {
  readonly name: string;
  readonly address: string;
  readonly netns: string;
  readonly hostVeth: string;
  readonly dir: string;
  /** PID of the supervisor that runs (and, on a reboot, re-runs) systemd-nspawn. */
  pid: number;
  /** Its host keys, "type base64": ed25519, ecdsa, rsa. */
  readonly hostKeys: string[];
}

export interface LabState {
  readonly nodes: LabNode[];
  readonly bridge: string;
  mirrorPid?: number;
  aptProxyPid?: number;
  readonly keyPath: string;
  readonly knownHostsPath: string;
  /** The stacks lab:up --stack / lab:prepare made the lab ready for (absent: a lab from before). */
  prepared?: string[];
}

/** The lab cannot do what was asked: "[lab] …", exit 2. */
export class LabError extends UserError {
  constructor(message: string) {
    super(message, 2, "[lab] ");
  }
}

const statePath = () => join(LAB_DIR, "state.json");

export function readState(): LabState | undefined {
  return existsSync(statePath())
    ? (JSON.parse(readFileSync(statePath(), "utf8")) as LabState)
    : undefined;
}

export function writeState(s: LabState): void {
  mkdirSync(LAB_DIR, { recursive: true });
  writeFileSync(statePath() + ".tmp", JSON.stringify(s, null, 2));
  renameSync(statePath() + ".tmp", statePath());
}

function sh(
  cmd: string,
  args: string[],
  opts: { input?: string; allowFail?: boolean; cwd?: string } = {},
): string {
  const r = spawnSync(cmd, args, {
    encoding: "utf8",
    input: opts.input,
    cwd: opts.cwd,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0 && !opts.allowFail) {
    throw new LabError(
      `${cmd} ${args.join(" ")} failed (${r.status}): ${(r.stderr || r.stdout || String(r.error ?? "")).trim().slice(-2000)}`,
    );
  }
  return r.stdout;
}

export function checkHost(log: (s: string) => void = () => {}): void {
  if (process.getuid?.() !== 0)
    throw new LabError(
      "the lab needs root (network namespaces, overlay mounts, systemd-nspawn): run it as root, e.g. sudo npm run lab:up",
    );
  const missing = Object.entries(HOST_PACKAGES).filter(
    ([bin]) => spawnSync("sh", ["-c", `command -v ${bin}`]).status !== 0,
  );
  const venv = spawnSync("python3", ["-c", "import ensurepip, venv"]).status === 0;
  if (!missing.length && venv) return;
  // A fresh machine: the lab installs what it needs from Debian's registry (as root, like the lab).
  const pkgs = [...new Set([...missing.map(([, p]) => p), ...(venv ? [] : HOST_EXTRA_PACKAGES)])];
  log(`installing the lab's Debian packages on this machine: ${pkgs.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = spawnSync("apt-get", ["update", "-qq"], { encoding: "utf8", env });
  const install = spawnSync(
    "apt-get",
    ["install", "-y", "-qq", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", ...pkgs],
    { encoding: "utf8", env },
  );
  if (update.status !== 0 || install.status !== 0)
    throw new LabError(
      `missing on this machine: ${pkgs.join(", ")}, and apt-get could not install them (${(install.stderr || update.stderr || "").trim().slice(-500)}): install them with apt-get install -y ${pkgs.join(" ")}`,
    );
}

/**
 * One lab per machine: its bridge, subnet and namespace names are fixed. The lab that is up records
 * its checkout in OWNER_FILE; another checkout's lab:up or lab:down is refused, naming it, instead
 * of tearing the other one down.
 */
export const OWNER_FILE = "/run/qwen-vl-lab/owner";

export function labOwner(): string | undefined {
  if (!existsSync(OWNER_FILE)) return undefined;
  const owner = readFileSync(OWNER_FILE, "utf8").trim();
  // A lab whose state is gone (its checkout removed, or down ran) owns nothing any more.
  return owner && existsSync(join(owner, "state.json")) ? owner : undefined;
}

function claimLab(): void {
  const owner = labOwner();
  if (owner && owner !== LAB_DIR)
    throw new LabError(
      `another checkout's lab is up on this machine (${owner}); it uses the same bridge ${BRIDGE} and subnet ${SUBNET_PREFIX}.0/24: run npm run lab:down in that checkout first`,
    );
  mkdirSync(join(OWNER_FILE, ".."), { recursive: true });
  writeFileSync(OWNER_FILE, `${LAB_DIR}\n`);
}

/** Builds (once) and caches the Debian 12 base image the nodes boot from. */
export function ensureBaseImage(log: (s: string) => void = () => {}): string {
  const fakeSmi = readFileSync(join(PROJECT_ROOT, "lab/fakes/nvidia-smi"));
  const key = createHash("sha256")
    .update(JSON.stringify(BASE_PACKAGES))
    .update(fakeSmi)
    .digest("hex")
    .slice(0, 12);
  const base = join(LAB_DIR, `base-${key}`);
  if (existsSync(join(base, ".qwen-vl-base-complete"))) return base;
  const tmp = `${base}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  log(`building the Debian 12 node image (debootstrap, once): ${base}`);
  sh("debootstrap", [
    "--variant=minbase",
    "--include=systemd,systemd-sysv,dbus,openssh-server,iproute2,python3",
    "bookworm",
    tmp,
    DEBIAN_MIRROR,
  ]);
  copyFileSync("/etc/resolv.conf", join(tmp, "etc/resolv.conf"));
  const chroot = (cmd: string) => sh("chroot", [tmp, "/bin/sh", "-c", cmd]);
  chroot(
    `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${BASE_PACKAGES.join(" ")} && apt-get clean`,
  );
  // No timers that would run apt in the background, no host keys shared between nodes.
  chroot(
    "systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true; rm -f /etc/ssh/ssh_host_*",
  );
  // The site's package proxy, as an air-gapped site configures apt: the nodes have no route out.
  writeFileSync(
    join(tmp, "etc/apt/apt.conf.d/01qwen-vl-lab-proxy"),
    `Acquire::http::Proxy "http://${HOST_ADDRESS}:${APT_PROXY_PORT}";\n`,
  );
  writeFileSync(
    join(tmp, "etc/resolv.conf"),
    "# lab nodes have no DNS: everything they need is on the bridge\n",
  );
  // The GPU double (lab/fakes): nodes have no GPU.
  writeFileSync(join(tmp, "usr/local/bin/nvidia-smi"), fakeSmi);
  chmodSync(join(tmp, "usr/local/bin/nvidia-smi"), 0o755);
  writeFileSync(join(tmp, ".qwen-vl-base-complete"), new Date().toISOString());
  renameSync(tmp, base);
  return base;
}

function ensureKey(): { keyPath: string; publicKey: string } {
  const keyPath = join(LAB_DIR, "id_ed25519");
  if (!existsSync(keyPath)) {
    mkdirSync(LAB_DIR, { recursive: true });
    sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "qwen-vl-lab", "-f", keyPath]);
  }
  return { keyPath, publicKey: readFileSync(`${keyPath}.pub`, "utf8").trim() };
}

/**
 * known_hosts for the nodes from the real `ssh-keyscan -H` (every key type each node has, hashed
 * names), retried briefly while an sshd that just started listening is not yet answering.
 */
function keyscan(addresses: string[]): string {
  const want = addresses.length * 3;
  let last = "";
  for (let i = 0; i < 10; i++) {
    const r = spawnSync(
      "ssh-keyscan",
      ["-H", "-T", "10", "-t", "rsa,ecdsa,ed25519", ...addresses],
      {
        encoding: "utf8",
      },
    );
    const lines = r.stdout.split("\n").filter((l) => l && !l.startsWith("#"));
    if (lines.length === want) return lines.join("\n") + "\n";
    last = `${lines.length} of ${want} keys; ${r.stderr.trim().slice(-300)}`;
    spawnSync("sleep", ["1"]);
  }
  throw new LabError(`ssh-keyscan of the lab nodes did not return every host key: ${last}`);
}

function waitPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const sock = createConnection({ host, port });
      sock.setTimeout(1000);
      sock.once("connect", () => {
        sock.destroy();
        resolve();
      });
      const retry = () => {
        sock.destroy();
        if (Date.now() > deadline)
          reject(new LabError(`${host}:${port} did not answer within ${timeoutMs / 1000} s`));
        else setTimeout(attempt, 300);
      };
      sock.once("error", retry);
      sock.once("timeout", retry);
    };
    attempt();
  });
}

export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as a user we may not signal (the lab's root processes, seen by a non-root caller).
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Why the engine cannot deploy lab stack `stack` (whose nodes are at `addresses`) on the lab as it
 * is, in one line with the command that makes it ready; undefined when it can. Without this, a lab
 * booted for another stack fails minutes later deep inside apt ("Unable to connect to
 * 10.77.0.1:3142"). `owner`: the checkout whose lab is up on this machine (OWNER_FILE).
 */
export function labNotReadyFor(
  stack: string,
  addresses: readonly string[],
  state: LabState | undefined,
  opts: { owner?: string | undefined; isAlive?: (pid: number | undefined) => boolean } = {},
): string | undefined {
  const isAlive = opts.isAlive ?? alive;
  const boot = `npm run lab:up -- --stack ${stack}`;
  if (opts.owner && opts.owner !== LAB_DIR)
    return `the lab on this machine is another checkout's (${opts.owner}), not this one's (${LAB_DIR}): deploy stack ${stack} from that checkout, or run npm run lab:down there and ${boot} here`;
  if (!state) return `the lab is not up: run ${boot}`;
  const stopped = state.nodes.filter((n) => !isAlive(n.pid)).map((n) => n.name);
  if (stopped.length)
    return `the lab in ${LAB_DIR} is not running (${stopped.join(", ")} stopped; the machine rebooted, or something killed them): run npm run lab:down, then ${boot}`;
  const missing = addresses.filter((a) => !state.nodes.some((n) => n.address === a));
  if (missing.length)
    return `the lab has no node at ${missing.join(", ")}, which stack ${stack} needs (it has ${state.nodes.length}): run npm run lab:down, then ${boot}`;
  const prepare = `npm run lab:prepare -- --stack ${stack}`;
  if (!state.prepared?.includes(stack))
    return `the lab is not prepared for stack ${stack} (prepared for: ${state.prepared?.length ? state.prepared.join(", ") : "none"}): run ${prepare}`;
  const down = [
    ...(isAlive(state.aptProxyPid) ? [] : [`the apt proxy (${HOST_ADDRESS}:${APT_PROXY_PORT})`]),
    ...(isAlive(state.mirrorPid) ? [] : [`the mirror (${HOST_ADDRESS}:${MIRROR_PORT})`]),
  ];
  if (down.length)
    return `the lab is not prepared for stack ${stack}: ${down.join(" and ")} ${down.length > 1 ? "are" : "is"} not running: run ${prepare}`;
  return undefined;
}

/** Supervisor: runs systemd-nspawn and starts it again when the container reboots (exit 133). */
const SUPERVISOR = `
set -u
child=0
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM INT
while :; do
  systemd-nspawn -q -D "$1" --boot --register=no --keep-unit --link-journal=no --resolv-conf=off --timezone=off --network-namespace-path="/run/netns/$2" &
  child=$!
  wait "$child"
  rc=$?
  [ "$rc" -eq 133 ] || exit "$rc"
done
`;

function bootNode(node: Pick<LabNode, "dir" | "netns">): number {
  const log = openSync(join(node.dir, "console.log"), "a");
  const p = spawn("bash", ["-c", SUPERVISOR, "lab-node", join(node.dir, "root"), node.netns], {
    detached: true,
    stdio: ["ignore", log, log],
  });
  p.unref();
  return p.pid!;
}

export interface UpOptions {
  readonly nodes: number;
  readonly log?: (s: string) => void;
}

export async function up(opts: UpOptions): Promise<LabState> {
  const log = opts.log ?? (() => {});
  checkHost(log);
  if (readState())
    throw new LabError("a lab is already up (.lab/state.json): run npm run lab:down first");
  claimLab();
  const base = ensureBaseImage(log);
  const { keyPath, publicKey } = ensureKey();
  const knownHostsPath = join(LAB_DIR, "known_hosts");
  const state: LabState = { nodes: [], bridge: BRIDGE, keyPath, knownHostsPath };
  writeState(state);
  try {
    sh("ip", ["link", "add", BRIDGE, "type", "bridge"]);
    sh("ip", ["addr", "add", `${HOST_ADDRESS}/24`, "dev", BRIDGE]);
    sh("ip", ["link", "set", BRIDGE, "up"]);
    for (let i = 1; i <= opts.nodes; i++) {
      const name = NODE_NAME(i);
      const dir = join(LAB_DIR, "nodes", name);
      rmSync(dir, { recursive: true, force: true });
      for (const d of ["upper", "work", "root"]) mkdirSync(join(dir, d), { recursive: true });
      sh("mount", [
        "-t",
        "overlay",
        "overlay",
        "-o",
        `lowerdir=${base},upperdir=${join(dir, "upper")},workdir=${join(dir, "work")}`,
        join(dir, "root"),
      ]);
      const root = join(dir, "root");
      writeFileSync(join(root, "etc/hostname"), `${name}\n`);
      const hosts = Array.from(
        { length: opts.nodes },
        (_, k) => `${NODE_ADDRESS(k + 1)} ${NODE_NAME(k + 1)}`,
      ).join("\n");
      writeFileSync(
        join(root, "etc/hosts"),
        `127.0.0.1 localhost\n${hosts}\n${HOST_ADDRESS} lab-host\n`,
      );
      // Every host key type a fresh Debian or Ubuntu image has (its openssh-server postinst runs
      // ssh-keygen -A: rsa, ecdsa and ed25519), so the lab meets what real hosts present.
      sh("ssh-keygen", ["-A", "-f", root]);
      mkdirSync(join(root, "root/.ssh"), { recursive: true, mode: 0o700 });
      writeFileSync(join(root, "root/.ssh/authorized_keys"), `${publicKey}\n`, { mode: 0o600 });
      const hostKeys = ["ed25519", "ecdsa", "rsa"].map((t) =>
        readFileSync(join(root, `etc/ssh/ssh_host_${t}_key.pub`), "utf8")
          .trim()
          .split(" ")
          .slice(0, 2)
          .join(" "),
      );
      const netns = `qvl-n${i}`;
      const hostVeth = `qvl-n${i}`;
      const node: LabNode = {
        name,
        address: NODE_ADDRESS(i),
        netns,
        hostVeth,
        dir,
        pid: 0,
        hostKeys,
      };
      state.nodes.push(node);
      writeState(state);
      sh("ip", ["netns", "add", netns]);
      // A veth of ours can outlive its namespace for a moment (the kernel frees namespaces
      // asynchronously): remove it rather than fail on "File exists".
      if (labLinks().includes(hostVeth)) sh("ip", ["link", "del", hostVeth], { allowFail: true });
      sh("ip", ["link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
      sh("ip", ["link", "set", hostVeth, "master", BRIDGE, "up"]);
      sh("ip", ["-n", netns, "addr", "add", `${node.address}/24`, "dev", "eth0"]);
      sh("ip", ["-n", netns, "link", "set", "eth0", "up"]);
      sh("ip", ["-n", netns, "link", "set", "lo", "up"]);
      node.pid = bootNode(node);
      writeState(state);
      log(`booting ${name} (${node.address})`);
    }
    await Promise.all(state.nodes.map((n) => waitPort(n.address, 22, 60_000)));
    // known_hosts as the README tells users to make it: the real ssh-keyscan, every key type,
    // hashed names (Debian's and Ubuntu's HashKnownHosts default).
    writeFileSync(knownHostsPath, keyscan(state.nodes.map((n) => n.address)));
    log(`${state.nodes.length} node(s) up`);
    return state;
  } catch (e) {
    await down({ log });
    throw e;
  }
}

export async function rebootSupervised(node: LabNode): Promise<void> {
  await waitPort(node.address, 22, 90_000);
}

export interface DownOptions {
  readonly log?: (s: string) => void;
}

async function waitExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  return !alive(pid);
}

/** Removes everything the lab made: containers (by recorded PID), mounts, namespaces, the bridge, the mirror. */
export async function down(opts: DownOptions = {}): Promise<void> {
  const log = opts.log ?? (() => {});
  const owner = labOwner();
  if (owner && owner !== LAB_DIR) {
    log(`the lab on this machine belongs to ${owner}: not touched (run npm run lab:down there)`);
    return;
  }
  const state = readState();
  for (const pid of [state?.mirrorPid, state?.aptProxyPid]) {
    if (pid && alive(pid)) {
      process.kill(pid, "SIGTERM");
      if (!(await waitExit(pid, 5000))) process.kill(pid, "SIGKILL");
    }
  }
  for (const n of state?.nodes ?? []) {
    if (alive(n.pid)) {
      process.kill(n.pid, "SIGTERM");
      if (!(await waitExit(n.pid, 20_000))) process.kill(n.pid, "SIGKILL");
      await waitExit(n.pid, 5000);
    }
  }
  // Also what a crashed run may have left without a state file: our names, our mounts only.
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(join(LAB_DIR, "nodes") + "/"))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    if (spawnSync("umount", [m]).status !== 0) spawnSync("umount", ["-l", m]);
  }
  const namespaces = sh("ip", ["netns", "list"], { allowFail: true })
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => /^qvl-n\d+$/.test(n));
  for (const ns of namespaces) spawnSync("ip", ["netns", "del", ns]);
  if (spawnSync("ip", ["link", "show", BRIDGE]).status === 0)
    spawnSync("ip", ["link", "del", BRIDGE]);
  // Host ends of our veths go with their namespaces, asynchronously; wait for that (bounded), then
  // remove any that remain.
  const deadline = Date.now() + 10_000;
  while (labLinks().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  for (const l of labLinks()) spawnSync("ip", ["link", "del", l]);
  rmSync(join(LAB_DIR, "nodes"), { recursive: true, force: true });
  rmSync(statePath(), { force: true });
  rmSync(OWNER_FILE, { force: true });
  log("lab down: no container, mount, namespace, bridge or mirror left");
}

/** The host ends of the lab's veths (named qvl-n<N>) present on this machine. */
function labLinks(): string[] {
  return sh("ip", ["-o", "link", "show"], { allowFail: true })
    .split("\n")
    .map((l) => /^\d+:\s+(qvl-n\d+)[@:]/.exec(l)?.[1])
    .filter((n): n is string => Boolean(n));
}

/** What of the lab exists on this machine right now (for the "nothing remains" check). */
export function leftovers(): string[] {
  const out: string[] = [];
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .filter((l) => l.includes(join(LAB_DIR, "nodes")));
  if (mounts.length) out.push(`${mounts.length} overlay mount(s)`);
  const ns = sh("ip", ["netns", "list"], { allowFail: true })
    .split("\n")
    .filter((l) => /^qvl-n\d+/.test(l));
  if (ns.length) out.push(`namespaces: ${ns.join(", ")}`);
  if (spawnSync("ip", ["link", "show", BRIDGE]).status === 0) out.push(`bridge ${BRIDGE}`);
  const links = labLinks();
  if (links.length) out.push(`links: ${links.join(", ")}`);
  if (existsSync(statePath())) out.push(".lab/state.json");
  return out;
}

export { execFileSync, waitPort };
