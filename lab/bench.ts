/**
 * npm run bench:lab — provisioning times on fresh lab nodes, printed side by side:
 * cold provisioning of 1 node and of 3 nodes (nodes are provisioned in parallel, so 3 should cost
 * little more than 1), and re-applying to the 3 nodes (which should change nothing). The node image,
 * the wheel mirror and the stand-in weights are built before timing starts (they are cached).
 */
import { runCommand } from "../cli/main";
import { readStackFile } from "../config/stack-file";
import { planStack } from "../plan";
import { deployLab } from "./cli";
import { checkHost, down, ensureBaseImage, up } from "./lab";
import { ensureModel, ensureWheels } from "./mirror";

async function main(): Promise<number> {
  checkHost();
  const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
  const quiet = () => {};
  ensureBaseImage(log);
  const plan = planStack(readStackFile("lab").sections, { stack: "lab" });
  ensureWheels(plan, log);
  ensureModel(plan, log);
  await down();
  try {
    const t0 = Date.now();
    await up({ nodes: 4, log: quiet });
    const boot = (Date.now() - t0) / 1000;
    const one = (await deployLab("lab-single", quiet)).report;
    const three = (await deployLab("lab", quiet)).report;
    const again = (await deployLab("lab", quiet)).report;
    const rows: [string, string][] = [
      ["boot 4 nodes (sshd answering)", `${boot.toFixed(1)} s`],
      ["cold provisioning, 1 node", `${one.totalSeconds.toFixed(1)} s`],
      [
        "cold provisioning, 3 nodes (parallel)",
        `${three.totalSeconds.toFixed(1)} s (per node: ${Object.entries(three.secondsPerNode)
          .map(([n, s]) => `${n} ${s.toFixed(1)} s`)
          .join(", ")})`,
      ],
      ["3 nodes / 1 node", `${(three.totalSeconds / one.totalSeconds).toFixed(2)}×`],
      [
        "re-apply, 3 nodes",
        `${again.totalSeconds.toFixed(1)} s, ${again.changedSteps} step(s) changed`,
      ],
    ];
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(40)} ${v}\n`);
    // Where the time goes: each step's slowest node. The 3-node stack also installs and starts Ray.
    process.stdout.write(
      `\n${"step (slowest node)".padEnd(22)}${"1 node".padStart(10)}${"3 nodes".padStart(10)}\n`,
    );
    const slowest = (r: typeof one, step: string) =>
      Math.max(...r.steps.filter((x) => x.step === step).map((x) => x.seconds));
    for (const step of [...new Set(three.steps.map((x) => x.step))]) {
      process.stdout.write(
        `${step.padEnd(22)}${`${slowest(one, step).toFixed(1)} s`.padStart(10)}${`${slowest(three, step).toFixed(1)} s`.padStart(10)}\n`,
      );
    }
    return 0;
  } finally {
    await down();
  }
}

if (require.main === module) void runCommand("usage: npm run bench:lab", main);
