/**
 * Runs the rendered node scripts on this machine, in a throw-away directory standing in for the
 * node's /opt/qwen-vl, /etc/qwen-vl and /var/lib/qwen-vl, with the fake nvidia-smi on PATH (or not:
 * "no driver"). For the steps that need no systemd and no network beyond loopback; the others run on
 * the lab's real nodes.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Plan } from "../../plan";
import { envFile, renderProvisioning } from "../../provisioning/render";
import { NODE_ETC, NODE_HOME, NODE_STATE } from "../../plan/layout";

export const FAKES = join(__dirname, "..", "..", "lab", "fakes");

export interface RunResult {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
  readonly all: string;
}

export class Sandbox {
  readonly root = mkdtempSync(join(tmpdir(), "qwen-vl-node-"));
  readonly home = join(this.root, "opt");
  readonly etc = join(this.root, "etc");
  readonly state = join(this.root, "state");
  readonly modelParent = join(this.root, "models");
  readonly smiConf = join(this.root, "fake-nvidia-smi.conf");
  readonly env: Record<string, string>;
  modelDir: string;
  /** Put the fake nvidia-smi on PATH (false: a machine without a driver). */
  gpuDriver = true;

  constructor(
    plan: Plan,
    nodeName: string,
    addresses: Record<string, string>,
    overrides: Record<string, string> = {},
  ) {
    const bundle = renderProvisioning(plan, { addresses }).find((b) => b.node.name === nodeName)!;
    this.modelDir = join(this.modelParent, "model");
    for (const f of bundle.files) {
      const path = f.path.startsWith(NODE_HOME)
        ? join(this.home, f.path.slice(NODE_HOME.length))
        : join(this.etc, f.path.slice(NODE_ETC.length));
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, f.content);
      chmodSync(path, f.mode);
    }
    mkdirSync(this.state, { recursive: true });
    this.env = {
      ...bundle.env,
      // The layout under this sandbox (node.env states it; the scripts have no defaults).
      QWEN_VL_HOME: this.home,
      QWEN_VL_STATE: this.state,
      MODEL_DIR: this.modelDir,
      MODEL_PARENT: this.modelParent,
      SERVICE_HOME: join(this.root, "service"),
      // The machine running the tests need not have the plan's disk (preflight's tests set these).
      WEIGHTS_KIB: "1024",
      VENV_KIB: "1024",
      CACHES_KIB: "1024",
      ...overrides,
    };
    this.writeEnv();
    this.fakeSmi({});
  }

  writeEnv(overrides: Record<string, string> = {}): void {
    Object.assign(this.env, overrides);
    if (overrides["MODEL_DIR"]) this.modelDir = overrides["MODEL_DIR"];
    writeFileSync(join(this.etc, "node.env"), envFile(this.env));
  }

  /** Configure the fake nvidia-smi (DRIVER, CUDA, GPU_NAME, GPU_MIB, GPU_COUNT, BROKEN). */
  fakeSmi(values: Record<string, string | number>): void {
    writeFileSync(
      this.smiConf,
      Object.entries(values)
        .map(([k, v]) => `${k}=${JSON.stringify(String(v))}`)
        .join("\n") + "\n",
    );
  }

  osRelease(id: string, version: string): void {
    writeFileSync(join(this.root, "os-release"), `ID=${id}\nVERSION_ID="${version}"\n`);
  }

  run(
    script: string,
    args: string[] = [],
    extra: Record<string, string> = {},
    timeoutMs = 60_000,
  ): RunResult {
    const r = spawnSync("bash", [join(this.home, "bin", script), ...args], {
      encoding: "utf8",
      timeout: timeoutMs,
      env: this.processEnv(extra),
    });
    return { code: r.status, out: r.stdout, err: r.stderr, all: r.stdout + r.stderr };
  }

  /**
   * Runs a script and interrupts it once `when` resolves (SIGTERM to its whole process group, as
   * Ctrl-C or a lost session would): an event the test waits for, never a delay.
   */
  interrupt(
    script: string,
    when: () => Promise<void>,
    extra: Record<string, string> = {},
  ): Promise<RunResult> {
    return new Promise((resolve) => {
      const child = spawn("bash", [join(this.home, "bin", script)], {
        env: this.processEnv(extra),
        detached: true,
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      let done = false;
      void when().then(
        () => !done && process.kill(-child.pid!, "SIGTERM"),
        () => !done && process.kill(-child.pid!, "SIGKILL"),
      );
      child.on("close", (code) => {
        done = true;
        resolve({ code, out, err, all: out + err });
      });
    });
  }

  private processEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    const path = [
      ...(this.gpuDriver ? [FAKES] : []),
      "/usr/local/bin",
      "/usr/bin",
      "/bin",
      "/usr/sbin",
      "/sbin",
    ].join(":");
    return {
      PATH: path,
      HOME: this.root,
      LANG: "C.UTF-8",
      QWEN_VL_HOME: this.home,
      QWEN_VL_ETC: this.etc,
      QWEN_VL_STATE: this.state,
      QWEN_VL_OS_RELEASE: join(this.root, "os-release"),
      FAKE_NVIDIA_SMI_CONF: this.smiConf,
      // Never change this machine: package installs and unit changes are printed, not run.
      QWEN_VL_DRY_RUN: "1",
      ...extra,
    };
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

export { NODE_STATE };
