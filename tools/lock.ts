/**
 * npm run lock -- <vllm version>         → locks/vllm-<version>.txt
 * npm run lock -- <vllm version> --lab   → locks/lab-fake-vllm-<version>.txt
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
 * The lab's lock is the FAKE vLLM (lab/fakes, no torch) with everything else held to the versions
 * of the default release's real lock (`--constraint`), for the lab nodes' Debian 12 (CPython 3.11,
 * x86_64): the lab installs what a real node installs, but for vLLM and its GPU stack.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT, defaultLockPath, lockRequirements } from "../catalogs/locks";
import { AMIS } from "../catalogs/amis";
import { readLockFile, writeLockIndex } from "../provisioning/python-lock";
import { ensureUv } from "./uv";
import { DEFAULT_VLLM_VERSION, VLLM_RELEASES, parseVersion, vllmFeatures } from "../catalogs/vllm";

export function labLockPath(vllmVersion: string): string {
  return `locks/lab-fake-vllm-${vllmVersion}.txt`;
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
  const lab = argv.includes("--lab");
  const version = argv.find((a) => !a.startsWith("--"));
  if (!version) fail("usage: npm run lock -- <vllm version> [--lab] | --index");
  const parsed = parseVersion(version);
  if (!parsed) fail(`"${version}" is not a vLLM version (e.g. ${DEFAULT_VLLM_VERSION})`);
  const features = vllmFeatures(parsed, 8.0);
  const uv = ensureUv(join(PROJECT_ROOT, "node_modules", ".cache"), "python3", run);
  const work = mkdtempSync(join(tmpdir(), "qwen-vl-lock-"));
  try {
    const requirements = join(work, "requirements.in");
    writeFileSync(
      requirements,
      lockRequirements(version, features.minTransformers, lab ? "+fake" : "").join("\n") + "\n",
    );
    const out = lab ? labLockPath(version) : defaultLockPath(version);
    const args = [
      "pip",
      "compile",
      "--quiet",
      "requirements.in",
      "--output-file",
      join(PROJECT_ROOT, out),
      "--custom-compile-command",
      `npm run lock -- ${version}${lab ? " --lab" : ""}`,
      "--annotation-style=line",
    ];
    if (lab) {
      const base = readLockFile(defaultLockPath(DEFAULT_VLLM_VERSION));
      if (!base)
        fail(`the lab's lock is held to ${defaultLockPath(DEFAULT_VLLM_VERSION)}: make it first`);
      const constraints = join(work, "constraints.txt");
      // The real lock's lines, markers and all (a universal lock may pin per Python), less vLLM.
      writeFileSync(
        constraints,
        base.text
          .split("\n")
          .filter((l) => !/^vllm==/.test(l))
          .join("\n"),
      );
      const wheels = join(work, "wheels");
      run("python3", [join(PROJECT_ROOT, "lab/fakes/build_fake_vllm_wheel.py"), version, wheels]);
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
    const lock = readLockFile(out)!;
    const show = ["vllm", "torch", "transformers", "huggingface-hub", "ray"]
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
