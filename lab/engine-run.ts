/**
 * Runs the real Pulumi engine as a user does (npm run pulumi: engine/pulumi.ts in its own process),
 * bounded in time, with its own file backend, and reads what the engine said: its text output and
 * its events (which resources it created, updated, left alone or deleted, and when).
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { NODE_STEPS } from "../components/node-provisioning";
import { PROJECT_ROOT } from "../config/stack-file";

export interface EngineRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** resource name → the engine's operation on it (create, update, same, delete, …). */
  readonly ops: Record<string, string>;
  /** resource name → [start, end] in ms (from the engine's events). */
  readonly times: Record<string, [number, number]>;
}

export function engineRunner(backendDir: string) {
  return async function engine(
    args: string[],
    timeoutMs = 600_000,
    env: Record<string, string> = {},
  ): Promise<EngineRun> {
    const events = join(backendDir, `events-${Date.now()}.jsonl`);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(PROJECT_ROOT, "engine/pulumi.ts"), ...args, "--events", events],
      {
        cwd: PROJECT_ROOT,
        env: { ...process.env, PULUMI_BACKEND_URL: `file://${backendDir}`, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
    const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
    clearTimeout(timer);
    const ops: Record<string, string> = {};
    const times: Record<string, [number, number]> = {};
    if (existsSync(events)) {
      for (const line of readFileSync(events, "utf8").split("\n").filter(Boolean)) {
        const e = JSON.parse(line) as {
          receivedAt: number;
          resourcePreEvent?: { metadata: { urn: string; op: string } };
          resOutputsEvent?: { metadata: { urn: string; op: string } };
        };
        const pre = e.resourcePreEvent?.metadata;
        const done = e.resOutputsEvent?.metadata;
        if (pre) {
          const name = pre.urn.split("::").pop()!;
          ops[name] = pre.op;
          times[name] = [e.receivedAt, e.receivedAt];
        }
        if (done) {
          const name = done.urn.split("::").pop()!;
          if (times[name]) times[name]![1] = e.receivedAt;
        }
      }
      rmSync(events, { force: true });
    }
    return { code, stdout, stderr, ops, times };
  };
}

/** The step resources the engine ran (created, updated, replaced or deleted), sorted. */
export function ranSteps(run: EngineRun): string[] {
  return Object.entries(run.ops)
    .filter(([name, op]) => op !== "same" && !name.startsWith("qwen-vl-deploy-") && op !== "read")
    .map(([name]) => name)
    .filter((n) => NODE_STEPS.some((step) => n.endsWith(`-${step}`)))
    .sort();
}
