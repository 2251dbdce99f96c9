/**
 * npm run bench:lab — the real Pulumi engine on fresh lab nodes, figures printed side by side from
 * one run: `pulumi up` for 1 node and for 3 nodes (nodes provision in parallel; only Ray's join and
 * the cluster gate wait on another node), a no-op up, a one-setting update and destroy; for the
 * 3-node up, how long each node waited on another and where the time went per step. The node
 * image, the engine, the wheel mirror and the stand-in weights are made before timing starts.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCommand } from "../config/errors";
import { STEPS } from "../provisioning/render";
import { ensureCli } from "../engine/pulumi";
import { NODE_STEPS } from "../components/node-provisioning";
import { prepareLab } from "./cli";
import { engineRunner, ranSteps, type EngineRun } from "./engine-run";
import { checkHost, down, ensureBaseImage, LAB_DIR, up } from "./lab";

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Wall time of a run from the engine's events (first resource start to last resource end). */
function wall(run: EngineRun): number {
  const t = Object.values(run.times);
  return Math.max(...t.map((x) => x[1])) - Math.min(...t.map((x) => x[0]));
}

/**
 * Per node: how long its steps waited on another node — for each step, the time between the end of
 * the last step of its own node that it needs (STEPS `after`) and its start.
 */
function waits(run: EngineRun, stack: string, nodes: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of nodes) {
    let waited = 0;
    for (const spec of STEPS) {
      const t = run.times[`${stack}-${n}-${spec.id}`];
      const own = (spec.after.length ? spec.after : ["secrets", "bundle"])
        .map((id) => run.times[`${stack}-${n}-${id}`]?.[1])
        .filter((x): x is number => x !== undefined);
      if (t && own.length) waited += Math.max(0, t[0] - Math.max(...own));
    }
    out[n] = waited;
  }
  return out;
}

function stepTime(run: EngineRun, stack: string, nodes: string[], id: string): number {
  return Math.max(
    0,
    ...nodes.map((n) => {
      const t = run.times[`${stack}-${n}-${id}`];
      return t ? t[1] - t[0] : 0;
    }),
  );
}

async function main(): Promise<number> {
  const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
  checkHost(log);
  ensureBaseImage(log);
  ensureCli();
  const backend = join(LAB_DIR, "pulumi-bench");
  const engine = engineRunner(backend);
  await down();
  rmSync(backend, { recursive: true, force: true });
  const must = (what: string, run: EngineRun) => {
    if (run.code !== 0)
      throw new Error(`${what} failed:\n${run.stderr}\n${run.stdout.slice(-3000)}`);
    return run;
  };
  try {
    const t0 = Date.now();
    await up({ nodes: 4, log: () => {} });
    const boot = Date.now() - t0;
    await prepareLab("lab-single", log);
    await prepareLab("lab", log);
    /** One engine command, its words in one string, timed. */
    const timed = async (what: string, command: string) => {
      const start = Date.now();
      const run = must(what, await engine(command.split(" ")));
      return { run, ms: Date.now() - start };
    };
    const one = await timed("up lab-single", "up --stack lab-single --yes");
    const three = await timed("up lab", "up --stack lab --yes");
    const noop = await timed("no-op up lab", "up --stack lab --yes --expect-no-changes");
    const file = join(__dirname, "../stacks/Pulumi.lab-single.yaml");
    const original = readFileSync(file, "utf8");
    let update;
    try {
      const changed = original.replace("maxModelLen: 4096", "maxModelLen: 2048");
      // A replace that matched nothing would time an up that changes nothing.
      if (changed === original)
        throw new Error("stacks/Pulumi.lab-single.yaml no longer sets maxModelLen: 4096");
      writeFileSync(file, changed);
      update = await timed("one-setting update", "up --stack lab-single --yes");
    } finally {
      writeFileSync(file, original);
    }
    const destroy3 = await timed("destroy lab", "destroy --stack lab --yes");
    const destroy1 = await timed("destroy lab-single", "destroy --stack lab-single --yes");

    const labNodes = ["lab-n1", "lab-n2", "lab-n3"];
    const rows: [string, string][] = [
      ["boot 4 nodes (sshd answering)", seconds(boot)],
      ["pulumi up, 1 node (cold)", `${seconds(one.ms)} (engine: ${seconds(wall(one.run))})`],
      [
        "pulumi up, 3 nodes (cold, parallel)",
        `${seconds(three.ms)} (engine: ${seconds(wall(three.run))})`,
      ],
      ["3 nodes / 1 node", `${(three.ms / one.ms).toFixed(2)}×`],
      ["no-op up, 3 nodes", `${seconds(noop.ms)}, ${ranSteps(noop.run).length} step(s) ran`],
      [
        "one setting changed (maxModelLen), 1 node",
        `${seconds(update.ms)}, ran: ${ranSteps(update.run)
          .map((s) => s.replace("lab-single-lab-n4-", ""))
          .join(", ")}`,
      ],
      ["destroy, 3 nodes", seconds(destroy3.ms)],
      ["destroy, 1 node", seconds(destroy1.ms)],
    ];
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(44)} ${v}\n`);
    const w = waits(three.run, "lab", labNodes);
    process.stdout.write(
      `\nwaiting on another node during the 3-node up: ${labNodes.map((n) => `${n} ${seconds(w[n]!)}`).join(", ")}\n`,
    );
    process.stdout.write(
      `\n${"step (slowest node)".padEnd(22)}${"1 node".padStart(10)}${"3 nodes".padStart(10)}\n`,
    );
    for (const id of NODE_STEPS) {
      const a = stepTime(one.run, "lab-single", ["lab-n4"], id);
      const b = stepTime(three.run, "lab", labNodes, id);
      process.stdout.write(
        `${id.padEnd(22)}${seconds(a).padStart(10)}${seconds(b).padStart(10)}\n`,
      );
    }
    return 0;
  } finally {
    await down();
  }
}

if (require.main === module) void runCommand("usage: npm run bench:lab", main);
