/**
 * The engine's own pieces that run without the engine: the CLI build's progress (engine/build-cli.sh
 * against a `go` double that takes seconds, not minutes), and the check that a lab stack's lab is
 * up and prepared (on lab state files as lab:up writes them).
 */
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { PROJECT_ROOT } from "../config/stack-file";
import { readStackPlan } from "../cli/main";
import { EngineError, ensureCli } from "../engine/pulumi";
import { LAB_DIR, labNotReadyFor, type LabState } from "../lab/lab";

/**
 * A `go` that answers what build-cli.sh asks: go env, go get (prints "go: downloading" lines and
 * fills the module cache), go list -deps, and go build -v (one package a line, then a binary
 * that answers `version`; FAKE_GO_FAIL=1: a compile error). Each module and package takes
 * FAKE_GO_STEP_S, so heartbeats of 1 s fall inside both phases.
 */
const FAKE_GO = `#!/usr/bin/env bash
set -euo pipefail
echo "$*" >>"$FAKE_GO_DIR/calls"
case "$1" in
  env)
    case "$2" in
      GOVERSION) echo go1.26.8 ;;
      GOMODCACHE) echo "$FAKE_GO_DIR/mod" ;;
      GOCACHE) echo "$FAKE_GO_DIR/build" ;;
    esac ;;
  get)
    mkdir -p "$FAKE_GO_DIR/mod"
    for m in a b c; do
      echo "go: downloading example.com/$m v1.0.0" >&2
      head -c 1500000 /dev/zero >"$FAKE_GO_DIR/mod/$m"
      sleep "$FAKE_GO_STEP_S"
    done ;;
  list) printf 'fmt\\nexample.com/a\\nexample.com/b\\nexample.com/c\\ngithub.com/pulumi/pulumi/pkg/v3/cmd/pulumi\\n' ;;
  build)
    out=""; prev=""
    for a in "$@"; do [[ "$prev" == -o ]] && out="$a"; prev="$a"; done
    mkdir -p "$FAKE_GO_DIR/build"
    for p in fmt example.com/a example.com/b; do
      echo "$p" >&2
      head -c 1100000 /dev/zero >"$FAKE_GO_DIR/build/$(echo "$p" | tr / _)"
      sleep "$FAKE_GO_STEP_S"
    done
    if [[ "\${FAKE_GO_FAIL:-}" == 1 ]]; then
      echo "# example.com/c" >&2
      echo "c.go:3:1: syntax error: non-declaration statement outside function body" >&2
      exit 1
    fi
    printf '#!/bin/sh\\necho v3.274.1\\n' >"$out"; chmod +x "$out" ;;
  *) echo "fake go: unexpected $*" >&2; exit 3 ;;
esac
`;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Each stderr line with the second it arrived, from the start. */
  readonly lines: { at: number; text: string }[];
}

function buildCli(dir: string, env: Record<string, string> = {}): Promise<Run> {
  const t0 = Date.now();
  const child = spawn("bash", [join(PROJECT_ROOT, "engine/build-cli.sh")], {
    env: {
      ...process.env,
      PATH: `${join(dir, "bin")}:${process.env["PATH"]}`,
      QVL_ENGINE_CACHE: join(dir, "cache"),
      QVL_ENGINE_HEARTBEAT_S: "1",
      FAKE_GO_DIR: dir,
      FAKE_GO_STEP_S: "1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let partial = "";
  const lines: { at: number; text: string }[] = [];
  child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
  child.stderr.on("data", (b: Buffer) => {
    stderr += b.toString();
    const parts = (partial + b.toString()).split("\n");
    partial = parts.pop()!;
    for (const text of parts) lines.push({ at: (Date.now() - t0) / 1000, text });
  });
  return new Promise((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr, lines })),
  );
}

/** A folder with the double as bin/go (put first on PATH), its module and build caches, its log. */
function fakeGoDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "qvl-fake-go-"));
  mkdirSync(join(dir, "bin"));
  writeFileSync(join(dir, "bin", "go"), FAKE_GO);
  chmodSync(join(dir, "bin", "go"), 0o755);
  return dir;
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("npm run engine: a cold build says what it is doing while it runs", () => {
  it("a line per phase, a heartbeat with elapsed time, counts and cache sizes, then the binary; cached: silent", async () => {
    const dir = fakeGoDir();
    dirs.push(dir);
    const r = await buildCli(dir);
    expect(r.code, r.stderr).toBe(0);
    const bin = join(dir, "cache", "pulumi-v3.274.1", "bin", "pulumi");
    expect(r.stdout.trim()).toBe(bin);
    const texts = r.lines.map((l) => l.text);
    expect(texts.filter((t) => !t.startsWith("engine: "))).toEqual([]);
    for (const phase of [
      /^engine: building the Pulumi CLI v3\.274\.1 with go1\.26\.8 into .*Go's output: .*build-v3\.274\.1\.log\)$/,
      /^engine: \[\d+ s\] downloading the CLI's modules from the Go module proxy$/,
      /^engine: \[\d+ s\] listing the packages to compile$/,
      /^engine: \[\d+ s\] compiling the CLI \(5 packages; /,
      /^engine: built v3\.274\.1 in \d+ s \(3 packages compiled; module cache \d+ MiB, build cache \d+ MiB\)$/,
    ])
      expect(
        texts.some((t) => phase.test(t)),
        `${phase}\n${r.stderr}`,
      ).toBe(true);
    const beats = r.lines.filter((l) => /^engine: \[\d+ s\] .*; module cache/.test(l.text));
    expect(
      beats.some((b) =>
        /^engine: \[\d+ s\] downloading: [0-3] modules; module cache \d+ MiB, build cache 0 MiB$/.test(
          b.text,
        ),
      ),
      r.stderr,
    ).toBe(true);
    expect(
      beats.some((b) =>
        /^engine: \[\d+ s\] compiling: [0-3]\/5 packages; module cache [1-9]\d* MiB, build cache \d+ MiB$/.test(
          b.text,
        ),
      ),
      r.stderr,
    ).toBe(true);
    // Heard from while it runs, not at the end: no silence longer than two heartbeats.
    const gaps = r.lines.slice(1).map((l, i) => l.at - r.lines[i]!.at);
    expect(Math.max(...gaps), r.stderr).toBeLessThan(2.5);
    // Go's -v package lines went to the log, not to the terminal.
    const log = readFileSync(join(dir, "cache", "build-v3.274.1.log"), "utf8");
    expect(log).toContain("go: downloading example.com/a v1.0.0");
    expect(log).toContain("example.com/b\n");
    expect(readFileSync(join(dir, "calls"), "utf8")).toMatch(
      /^build -v -trimpath -ldflags -s -w -X github\.com\/pulumi\/pulumi\/sdk\/v3\/go\/common\/version\.Version=v3\.274\.1 -o .*\/bin\/pulumi github\.com\/pulumi\/pulumi\/pkg\/v3\/cmd\/pulumi$/m,
    );

    const cached = await buildCli(dir);
    expect(cached).toMatchObject({ code: 0, stdout: `${bin}\n`, stderr: "" });
  }, 30_000);

  it("a failed compile names the step, the time and Go's last lines, and where the whole log is", async () => {
    const dir = fakeGoDir();
    dirs.push(dir);
    const r = await buildCli(dir, { FAKE_GO_FAIL: "1", FAKE_GO_STEP_S: "0.1" });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /engine: go build failed after \d+ s; the last lines of Go's output \(all of it: .*build-v3\.274\.1\.log\):\n(.*\n)* {2}c\.go:3:1: syntax error: non-declaration statement outside function body\n$/,
    );
  }, 30_000);

  it("refuses a heartbeat that is not a whole number of seconds", async () => {
    const dir = fakeGoDir();
    dirs.push(dir);
    const r = await buildCli(dir, { QVL_ENGINE_HEARTBEAT_S: "0.5" });
    expect(r).toMatchObject({
      code: 2,
      stdout: "",
      stderr: "engine: QVL_ENGINE_HEARTBEAT_S=0.5 must be a whole number of seconds ≥ 1\n",
    });
  });
});

describe("ensureCli (the first npm run pulumi builds the CLI)", () => {
  afterEach(() => vi.unstubAllEnvs());
  const fake = (env: Record<string, string>) => {
    const dir = fakeGoDir();
    dirs.push(dir);
    vi.stubEnv("PATH", `${join(dir, "bin")}:${process.env["PATH"]}`);
    vi.stubEnv("QVL_ENGINE_CACHE", join(dir, "cache"));
    vi.stubEnv("FAKE_GO_DIR", dir);
    vi.stubEnv("FAKE_GO_STEP_S", "0");
    for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
    return dir;
  };

  it("returns the built binary's path (the progress went to stderr, not into the path)", () => {
    const dir = fake({});
    expect(ensureCli()).toBe(join(dir, "cache", "pulumi-v3.274.1", "bin", "pulumi"));
  });

  it("a failed build is one line saying where the reason is and what to run next", () => {
    fake({ FAKE_GO_FAIL: "1" });
    let error: unknown;
    try {
      ensureCli();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EngineError);
    expect((error as Error).message).toBe(
      "building the Pulumi CLI failed (engine/build-cli.sh, exit 1; what failed is printed above): fix that, then run npm run engine",
    );
  });
});

describe("npm run pulumi on a lab stack: the lab must be up and prepared for it (lab state fixtures)", () => {
  const fixture = (name: string) =>
    JSON.parse(
      readFileSync(join(__dirname, "fixtures/lab-state", `${name}.json`), "utf8"),
    ) as LabState;
  const addresses = (stack: string) => readStackPlan(stack).nodes.map((n) => n.host!.address);
  /** Every process the fixture records runs, but those named. */
  const runningBut =
    (...stopped: number[]) =>
    (pid: number | undefined) =>
      pid !== undefined && !stopped.includes(pid);

  it("the stacks' nodes are the fixtures' addresses (lab-single on lab-n4, lab on lab-n1..3)", () => {
    expect(addresses("lab-single")).toEqual(["10.77.0.14"]);
    expect(addresses("lab")).toEqual(["10.77.0.11", "10.77.0.12", "10.77.0.13"]);
  });

  it("a lab prepared for the stack, everything running: no objection", () => {
    const state = fixture("prepared-lab-single");
    expect(
      labNotReadyFor("lab-single", addresses("lab-single"), state, { isAlive: runningBut() }),
    ).toBeUndefined();
  });

  it("no lab: boot it for the stack", () => {
    expect(labNotReadyFor("lab-single", addresses("lab-single"), undefined)).toBe(
      "the lab is not up: run npm run lab:up -- --stack lab-single",
    );
  });

  it("a lab booted for another stack: prepare it for this one", () => {
    expect(
      labNotReadyFor("lab", addresses("lab"), fixture("prepared-lab-single"), {
        isAlive: runningBut(),
      }),
    ).toBe(
      "the lab is not prepared for stack lab (prepared for: lab-single): run npm run lab:prepare -- --stack lab",
    );
    expect(
      labNotReadyFor("lab", addresses("lab"), fixture("booted-3-nodes-unprepared"), {
        isAlive: runningBut(),
      }),
    ).toBe(
      "the lab is not prepared for stack lab (prepared for: none): run npm run lab:prepare -- --stack lab",
    );
  });

  it("the apt proxy or the mirror stopped (the 'Unable to connect to 10.77.0.1:3142' case): prepare again", () => {
    const state = fixture("prepared-lab-single");
    expect(
      labNotReadyFor("lab-single", addresses("lab-single"), state, {
        isAlive: runningBut(state.aptProxyPid!),
      }),
    ).toBe(
      "the lab is not prepared for stack lab-single: the apt proxy (10.77.0.1:3142) is not running: run npm run lab:prepare -- --stack lab-single",
    );
    expect(
      labNotReadyFor("lab-single", addresses("lab-single"), state, {
        isAlive: runningBut(state.aptProxyPid!, state.mirrorPid!),
      }),
    ).toMatch(
      /the apt proxy \(10\.77\.0\.1:3142\) and the mirror \(10\.77\.0\.1:8080\) are not running/,
    );
  });

  it("too few nodes for the stack: boot a lab with enough", () => {
    expect(
      labNotReadyFor("lab-single", addresses("lab-single"), fixture("booted-3-nodes-unprepared"), {
        isAlive: runningBut(),
      }),
    ).toBe(
      "the lab has no node at 10.77.0.14, which stack lab-single needs (it has 3): run npm run lab:down, then npm run lab:up -- --stack lab-single",
    );
  });

  it("a recorded lab whose nodes stopped (a reboot): boot it again", () => {
    const state = fixture("prepared-lab-single");
    expect(
      labNotReadyFor("lab-single", addresses("lab-single"), state, {
        isAlive: runningBut(state.nodes[0]!.pid, state.nodes[3]!.pid),
      }),
    ).toBe(
      `the lab in ${LAB_DIR} is not running (lab-n1, lab-n4 stopped; the machine rebooted, or something killed them): run npm run lab:down, then npm run lab:up -- --stack lab-single`,
    );
  });

  it("another checkout's lab: named, with both ways out", () => {
    expect(labNotReadyFor("lab", addresses("lab"), undefined, { owner: "/work/other/.lab" })).toBe(
      `the lab on this machine is another checkout's (/work/other/.lab), not this one's (${LAB_DIR}): deploy stack lab from that checkout, or run npm run lab:down there and npm run lab:up -- --stack lab here`,
    );
  });

  it("npm run pulumi -- up refuses before anything runs: one line, exit 2, no engine build", () => {
    const empty = mkdtempSync(join(tmpdir(), "qvl-no-lab-"));
    dirs.push(empty);
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        join(PROJECT_ROOT, "engine/pulumi.ts"),
        "up",
        "--stack",
        "lab-single",
        "--yes",
      ],
      {
        cwd: PROJECT_ROOT,
        encoding: "utf8",
        // No Go on PATH: reaching the build would fail differently.
        env: { ...process.env, QWEN_VL_LAB_DIR: empty, PATH: dirname(process.execPath) },
      },
    );
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /^up --stack lab-single: the lab (is not up: run npm run lab:up -- --stack lab-single|on this machine is another checkout's \(.*\), not this one's \(.*qvl-no-lab-.*\): .*)\n$/,
    );
  }, 30_000);
});

describe("npm run pulumi -- cancel: the lock a killed up leaves", () => {
  const wrapper = (args: string[], env: NodeJS.ProcessEnv) =>
    spawnSync(
      process.execPath,
      ["--import", "tsx", join(PROJECT_ROOT, "engine/pulumi.ts"), ...args],
      {
        cwd: PROJECT_ROOT,
        encoding: "utf8",
        env: { ...process.env, ...env },
        timeout: 300_000,
      },
    );

  it("without --yes it is refused (it must not run beside a live up)", () => {
    const r = wrapper(["cancel", "--stack", "lab-single"], {});
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /cancel removes the stack's lock: only when no other pulumi command runs on this stack/,
    );
  }, 60_000);

  it("with --yes the real engine removes the stack's lock files from a file backend", () => {
    ensureCli(); // built once per machine (CI builds it first)
    const backend = mkdtempSync(join(tmpdir(), "qvl-backend-"));
    dirs.push(backend);
    const env = { PULUMI_BACKEND_URL: `file://${backend}` };
    // The stack in the backend (a cancel with nothing to remove creates it), then what a killed
    // `pulumi up` leaves there: a lock file in the stack's lock folder.
    const first = wrapper(["cancel", "--stack", "lab-single", "--yes"], env);
    expect(first.status, first.stderr).toBe(0);
    const locks = join(backend, ".pulumi", "locks", "organization", "qwen-vl-deploy", "lab-single");
    expect(
      existsSync(join(backend, ".pulumi", "stacks", "qwen-vl-deploy", "lab-single.json")),
    ).toBe(true);
    mkdirSync(locks, { recursive: true });
    const lock = join(locks, "0b8e9d5e-6f1c-4a52-9a55-0d0c3c1f2a11.json");
    writeFileSync(
      lock,
      JSON.stringify({
        pid: 999999,
        username: "root",
        hostname: "gone",
        timestamp: new Date().toISOString(),
      }),
    );
    const r = wrapper(["cancel", "--stack", "lab-single", "--yes"], env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("stack lab-single: lock removed");
    expect(existsSync(lock)).toBe(false);
  }, 300_000);
});
