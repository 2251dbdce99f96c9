/**
 * What an air-gapped site keeps on its own network, made here for the lab: a flat directory of
 * Python wheels (uv, the hf CLI, transformers, Ray, vLLM's CPU build with its torch — or the FAKE
 * vLLM built as a vllm wheel), and the weights mirror (the tiny real Qwen2-VL, or the generated
 * stand-in, with its manifest), served on the bridge.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { readLockFile } from "../provisioning/python-lock";
import { TOOL_VERSIONS } from "../catalogs/tools";
import { labVllmBuild } from "../catalogs/locks";
import { cacheRoot, ensureVllmCpu } from "../tools/vllm-cpu-env";
import { PROJECT_ROOT } from "../config/stack-file";
import { expandMirrorUrl, type Plan } from "../plan";
import {
  alive,
  APT_PROXY_PORT,
  HOST_ADDRESS,
  LAB_DIR,
  LabError,
  MIRROR_PORT,
  waitPort,
  type LabState,
} from "./lab";

export const MIRROR_DIR = join(LAB_DIR, "mirror");

/**
 * What the mirror serves: every package of the plan's lock at the lock's version (the lab's own
 * vllm wheel is built here: lab/build_vllm_wheel.py), and the tools the nodes install outside it with their dependencies (uv; botocore
 * for the S3 mirror path), as an air-gapped site mirrors its lock.
 */
export function wheelRequirements(plan: Plan): { locked: string[]; tools: string[] } {
  const lock = readLockFile(plan.python.lock);
  if (!lock) throw new LabError(`the plan's lock ${plan.python.lock} is missing`);
  return {
    locked: Object.entries(lock.pins)
      .filter(([name]) => name !== "vllm")
      .map(([name, version]) => `${name}==${version}`),
    tools: [`uv==${TOOL_VERSIONS.uv}`, `botocore==${TOOL_VERSIONS.botocore}`],
  };
}

/** moto, the S3 emulator the lab's S3 mirror runs on (lab/s3_server.py), from PyPI. */
export const MOTO_VERSION = "5.2.5";

/**
 * A virtual environment on this machine with moto's server, made once: the S3 a test points a
 * node's S3 mirror path at (botocore presigned URLs, aria2c), on the bridge only.
 */
export function ensureS3Venv(log: (s: string) => void = () => {}): string {
  const venv = join(LAB_DIR, "s3-venv");
  const python = join(venv, "bin", "python");
  const stamp = join(venv, `.moto-${MOTO_VERSION}`);
  if (existsSync(stamp)) return python;
  log(`installing moto ${MOTO_VERSION} (the lab's S3) into ${venv}`);
  const step = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    if (r.status !== 0)
      throw new LabError(`${cmd} ${args.join(" ")} failed: ${(r.stderr || r.stdout).slice(-2000)}`);
  };
  step("python3", ["-m", "venv", venv]);
  step(join(venv, "bin", "pip"), [
    "install",
    "--quiet",
    "--disable-pip-version-check",
    `moto[server]==${MOTO_VERSION}`,
  ]);
  writeFileSync(stamp, `${MOTO_VERSION}\n`);
  return python;
}

/**
 * The wheels, downloaded once per machine (as the Debian packages are cached by the host's proxy):
 * vLLM's CPU build and its torch are gigabytes, fetched again by no later lab or checkout. The
 * mirror serves this folder.
 */
export function wheelCache(): string {
  return join(cacheRoot(), "lab-wheels");
}

/** Wheels for the nodes' Python (Debian 12: CPython 3.11), downloaded once per set of requirements. */
export function ensureWheels(plan: Plan, log: (s: string) => void = () => {}): string {
  const dir = wheelCache();
  mkdirSync(dir, { recursive: true });
  const { locked, tools } = wheelRequirements(plan);
  const all = [...locked, "--", ...tools];
  const stamp = join(
    dir,
    `.requirements-${createHash("sha256").update(all.join("\n")).digest("hex").slice(0, 12)}`,
  );
  if (!existsSync(stamp)) {
    log(`downloading wheels for the mirror: ${locked.length} locked packages, ${tools.join(" ")}`);
    // The nodes run Debian 12's CPython 3.11 on this machine's architecture. The lock lists every
    // package (nothing to resolve); the tools come with their dependencies.
    for (const [reqs, deps] of [
      [locked, false],
      [tools, true],
    ] as const) {
      const r = spawnSync(
        "nice",
        [
          "-n",
          "19",
          "python3",
          "-m",
          "pip",
          "download",
          "--quiet",
          "--disable-pip-version-check",
          "--only-binary=:all:",
          "--python-version",
          "3.11",
          ...(deps ? [] : ["--no-deps"]),
          "--dest",
          dir,
          ...reqs,
        ],
        { encoding: "utf8" },
      );
      if (r.status !== 0)
        throw new LabError(`pip download for the lab mirror failed: ${r.stderr.slice(-2000)}`);
    }
    writeFileSync(stamp, all.join("\n") + "\n");
  }
  // The lock's vllm is the lab's own wheel: the CPU build's name (+cpu) or the FAKE (+fake).
  const vllm = readLockFile(plan.python.lock)!.pins["vllm"] ?? "";
  const kind = labVllmBuild(vllm);
  if (!kind)
    throw new LabError(
      `the lab's lock ${plan.python.lock} pins vllm ${vllm || "nothing"}: a lab lock pins vllm==<version>+cpu or +fake (npm run lock -- <version> --lab cpu|fake)`,
    );
  const built = spawnSync(
    "python3",
    [join(PROJECT_ROOT, "lab/build_vllm_wheel.py"), plan.vllmVersion, kind, dir],
    { encoding: "utf8" },
  );
  if (built.status !== 0)
    throw new LabError(`building the lab's vllm wheel (${kind}) failed: ${built.stderr}`);
  // The mirror's wheels/: the machine's wheels, hard-linked (copied across file systems); the
  // mirror serves nothing outside its own folder.
  const served = join(MIRROR_DIR, "wheels");
  mkdirSync(served, { recursive: true });
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".whl"))) {
    const target = join(served, name);
    const source = join(dir, name);
    if (
      existsSync(target) &&
      statSync(target).size === statSync(source).size &&
      name.indexOf("+") < 0
    )
      continue;
    rmSync(target, { force: true });
    try {
      linkSync(source, target);
    } catch {
      copyFileSync(source, target);
    }
  }
  return dir;
}

/**
 * The lab's real checkpoint: a tiny Qwen2-VL that vLLM's CPU build serves (tools/make-tiny-qwen2vl.py,
 * made with that build's own transformers and torch), at two revisions: one trained to answer the
 * readiness gate's question, and one trained to answer a run of "!", what a Qwen2 model overflowing
 * in float16 answers, which the gate must refuse.
 */
export const TINY_MODEL = "lab/Qwen2-VL-tiny";
export const TINY_REVISIONS = {
  gate: "7170000000000000000000000000000000000001",
  bang: "7170000000000000000000000000000000000021",
} as const;
const TINY_ANSWERS: Readonly<Record<keyof typeof TINY_REVISIONS, string[]>> = {
  gate: ["--answer-gate"],
  bang: ["--answer", "!!!!!!!!"],
};

/**
 * Where the tiny checkpoint of one kind is kept, made once per machine (the cache): the lab's mirror
 * and test/vllm-real.test.ts share it. The untrained one is plain `tiny-qwen2-vl`.
 */
export function tinyCheckpointDir(kind: keyof typeof TINY_REVISIONS | "random"): string {
  return join(cacheRoot(), kind === "random" ? "tiny-qwen2-vl" : `tiny-qwen2-vl-${kind}`);
}

/** The tiny checkpoint of one kind, made once per machine in the cache; its folder. */
export function ensureTinyCheckpoint(
  kind: keyof typeof TINY_REVISIONS | "random",
  vllmVersion: string,
  log: (s: string) => void = () => {},
): string {
  const python = ensureVllmCpu(vllmVersion, log);
  const dir = tinyCheckpointDir(kind);
  const r = spawnSync(
    "nice",
    [
      "-n",
      "19",
      python,
      join(PROJECT_ROOT, "tools", "make-tiny-qwen2vl.py"),
      "--out",
      dir,
      ...(kind === "random" ? [] : TINY_ANSWERS[kind]),
    ],
    { encoding: "utf8", timeout: 900_000 },
  );
  if (r.status !== 0)
    throw new LabError(
      `tools/make-tiny-qwen2vl.py (${kind}) failed: ${(r.stderr || "").slice(-2000)}`,
    );
  return dir;
}

/** Where the mirror keeps a model, as a stack's provisioning.mirrorUrl names it ({repo}, {revision}). */
export const MODEL_MIRROR_LAYOUT = "models/{repo}/{revision}";

export function modelMirrorPath(plan: Plan): string {
  return expandMirrorUrl(MODEL_MIRROR_LAYOUT, plan.model.id, plan.model.revision);
}

/**
 * The stack's model in the mirror with its manifest: the tiny Qwen2-VL (both revisions, so that a
 * stack can move between them), or the stand-in of generated bytes for the fake engine.
 */
export function ensureModel(plan: Plan, log: (s: string) => void = () => {}): string {
  const make = (out: string, args: string[]) => {
    const r = spawnSync(
      "python3",
      [join(PROJECT_ROOT, "lab/make_model.py"), "--out", out, "--repo", plan.model.id, ...args],
      { encoding: "utf8" },
    );
    if (r.status !== 0)
      throw new LabError(`putting the lab's model in the mirror failed: ${r.stderr}`);
    log(r.stdout.trim());
  };
  const at = (revision: string) =>
    join(MIRROR_DIR, expandMirrorUrl(MODEL_MIRROR_LAYOUT, plan.model.id, revision));
  if (plan.model.id === TINY_MODEL) {
    const revisions = Object.values(TINY_REVISIONS) as string[];
    if (!revisions.includes(plan.model.revision))
      throw new LabError(
        `the lab serves ${TINY_MODEL} at ${revisions.join(" and ")}, not ${plan.model.revision}`,
      );
    for (const [kind, revision] of Object.entries(TINY_REVISIONS))
      make(at(revision), [
        "--revision",
        revision,
        "--from",
        ensureTinyCheckpoint(kind as keyof typeof TINY_REVISIONS, plan.vllmVersion, log),
      ]);
    return at(plan.model.revision);
  }
  const shardMiB = Math.max(1, Math.round((plan.model.checkpointGiB * 1024) / 4));
  make(at(plan.model.revision), [
    "--revision",
    plan.model.revision,
    "--shards",
    "4",
    "--shard-mib",
    String(shardMiB),
  ]);
  return at(plan.model.revision);
}

/** Serves the mirror on the bridge (not on any other address), recorded in the lab state. */
export async function ensureMirrorServer(
  state: LabState,
  writeState: (s: LabState) => void,
): Promise<void> {
  if (alive(state.mirrorPid)) return;
  const logFd = openSync(join(LAB_DIR, "mirror.log"), "a");
  const p = spawn(
    "python3",
    [
      join(PROJECT_ROOT, "lab/mirror_server.py"),
      "--root",
      MIRROR_DIR,
      "--host",
      HOST_ADDRESS,
      "--port",
      String(MIRROR_PORT),
      "--log",
      join(LAB_DIR, "mirror-requests.log"),
    ],
    { detached: true, stdio: ["ignore", logFd, logFd] },
  );
  p.unref();
  state.mirrorPid = p.pid!;
  writeState(state);
  await waitPort(HOST_ADDRESS, MIRROR_PORT, 10_000);
}

/**
 * The nodes' Debian package source: apt-cacher-ng on the bridge address, caching what it fetches
 * from Debian's registry under .lab/apt-cache (kept between labs), as an air-gapped site's package
 * proxy does. The node image points apt at it; the steps then run their real apt-get.
 */
export async function ensureAptProxy(
  state: LabState,
  writeState: (s: LabState) => void,
): Promise<void> {
  if (alive(state.aptProxyPid)) return;
  const cache = join(LAB_DIR, "apt-cache");
  const logs = join(LAB_DIR, "apt-log");
  const conf = join(LAB_DIR, "apt-proxy-conf");
  for (const d of [cache, logs, conf]) mkdirSync(d, { recursive: true });
  // Our own configuration, not the package's: its Debian remap sends every request to the mirrors
  // listed in backends_debian (ftp.debian.org), which a site reaching only deb.debian.org cannot
  // use. Without remaps it proxies and caches the URLs the nodes ask for.
  writeFileSync(
    join(conf, "acng.conf"),
    [
      `CacheDir: ${cache}`,
      `LogDir: ${logs}`,
      "SupportDir: /usr/lib/apt-cacher-ng",
      `BindAddress: ${HOST_ADDRESS}`,
      `Port: ${APT_PROXY_PORT}`,
      "ExThreshold: 4",
      "",
    ].join("\n"),
  );
  const logFd = openSync(join(LAB_DIR, "apt-proxy.log"), "a");
  const p = spawn(
    "apt-cacher-ng",
    [
      "-c",
      conf,
      "ForeGround=1",
      `PidFile=${join(LAB_DIR, "apt-proxy.pid")}`,
      `SocketPath=${join(LAB_DIR, "apt-proxy.sock")}`,
    ],
    { detached: true, stdio: ["ignore", logFd, logFd] },
  );
  p.unref();
  state.aptProxyPid = p.pid!;
  writeState(state);
  await waitPort(HOST_ADDRESS, APT_PROXY_PORT, 10_000);
}
