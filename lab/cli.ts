/**
 * npm run lab:up -- --nodes N [--json]     boot N nodes (cached Debian image), print them
 * npm run lab:deploy -- --stack lab [--json] provision a lab stack onto the nodes over SSH, write a report
 * npm run lab:down                          remove every container, mount, namespace, bridge and process of the lab
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readStackFile } from "../config/stack-file";
import { planStack, type Plan } from "../plan";
import { runCommand, UsageError } from "../cli/main";
import { deploy, DeployError, type DeployReport } from "../provisioning/deploy-ssh";
import { down, LAB_DIR, LabError, readState, up, writeState, type LabState } from "./lab";
import { ensureMirrorServer, ensureModel, ensureWheels } from "./mirror";
import { exec } from "../provisioning/ssh";

const USAGE = `usage: npm run lab:up -- --nodes N [--json]
       npm run lab:deploy -- --stack <lab stack> [--json]
       npm run lab:down`;

const say = (s: string) => process.stderr.write(`[lab] ${s}\n`);

function describe(
  state: LabState,
): { name: string; address: string; user: string; keyPath: string; knownHosts: string }[] {
  return state.nodes.map((n) => ({
    name: n.name,
    address: n.address,
    user: "root",
    keyPath: state.keyPath,
    knownHosts: state.knownHostsPath,
  }));
}

/** Provisions a lab stack: mirror ready, the GPU double configured per the plan, then the real steps. */
export async function deployLab(
  stack: string,
  log: (s: string) => void = say,
): Promise<{ plan: Plan; report: DeployReport; reportPath: string }> {
  const state = readState();
  if (!state) throw new LabError("no lab is up: run npm run lab:up -- --nodes N first");
  const raw = readStackFile(stack);
  const plan = planStack(raw.sections, { stack, secretKeys: raw.secretKeys });
  if (plan.target !== "hosts") throw new LabError(`stack ${stack} is not a hosts stack`);
  for (const n of plan.nodes) {
    if (!state.nodes.some((l) => l.address === n.host!.address))
      throw new LabError(
        `stack ${stack} needs ${n.name} at ${n.host!.address}, which this lab does not have: run npm run lab:down, then lab:up with more nodes`,
      );
  }
  ensureWheels(plan, log);
  ensureModel(plan, log);
  await ensureMirrorServer(state, writeState);
  let report: DeployReport;
  try {
    report = await deploy(plan, {
      log,
      beforeSteps: async (ssh) => {
        // The lab's GPU double: what nvidia-smi reports on this node (test/fakes/nvidia-smi).
        const conf = `DRIVER=550.54.15\nCUDA=12.4\nGPU_NAME="${plan.gpu.smiName}"\nGPU_MIB=${Math.round(plan.gpu.memoryGiB * 1024)}\nGPU_COUNT=${plan.gpusPerNode}\n`;
        const r = await exec(ssh, "cat > /etc/fake-nvidia-smi.conf", { stdin: conf });
        if (r.code !== 0) throw new LabError(`cannot configure the fake nvidia-smi: ${r.stderr}`);
      },
    });
  } catch (e) {
    if (e instanceof DeployError) writeReport(stack, e.report);
    throw e;
  }
  return { plan, report, reportPath: writeReport(stack, report) };
}

function writeReport(stack: string, report: DeployReport): string {
  const dir = join(LAB_DIR, "reports");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${stack}-${report.startedAt.replace(/[:.]/g, "-")}.json`);
  writeFileSync(path, JSON.stringify(report, null, 2));
  return path;
}

export function summary(report: DeployReport): string {
  const lines = [
    `${report.ok ? "deployed" : "FAILED"}: ${report.stack} in ${report.totalSeconds.toFixed(1)} s (${report.changedSteps} step(s) changed something)`,
  ];
  for (const n of report.nodes)
    lines.push(
      `  ${n.name.padEnd(8)} ${n.address.padEnd(12)} ${n.role.padEnd(7)} ${report.secondsPerNode[n.name]!.toFixed(1)} s`,
    );
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      nodes: { type: "string" },
      stack: { type: "string" },
      json: { type: "boolean", default: false },
    },
    strict: true,
  });
  switch (command) {
    case "up": {
      const n = Number(values.nodes ?? "1");
      if (!Number.isInteger(n) || n < 1 || n > 16)
        throw new UsageError(`--nodes: "${values.nodes}" must be a whole number from 1 to 16`);
      const state = await up({ nodes: n, log: say });
      const nodes = describe(state);
      process.stdout.write(
        values.json
          ? `${JSON.stringify({ nodes }, null, 2)}\n`
          : nodes
              .map(
                (x) =>
                  `${x.name}  ${x.address}  ssh -i ${x.keyPath} -o UserKnownHostsFile=${x.knownHosts} ${x.user}@${x.address}`,
              )
              .join("\n") + "\n",
      );
      return 0;
    }
    case "down":
      await down({ log: say });
      return 0;
    case "deploy": {
      if (!values.stack) throw new UsageError("--stack is required (lab or lab-single)");
      try {
        const { report, reportPath } = await deployLab(values.stack);
        process.stdout.write(
          values.json
            ? `${JSON.stringify(report, null, 2)}\n`
            : `${summary(report)}\nreport: ${reportPath}\n`,
        );
        return 0;
      } catch (e) {
        if (e instanceof DeployError) {
          process.stderr.write(`${summary(e.report)}\n${e.message}\n`);
          return 1;
        }
        throw e;
      }
    }
    default:
      throw new UsageError(`unknown lab command "${command ?? ""}"`);
  }
}

if (require.main === module) {
  void runCommand(USAGE, async () => {
    try {
      return await main(process.argv.slice(2));
    } catch (e) {
      if (e instanceof LabError) {
        process.stderr.write(`[lab] ${e.message}\n`);
        return 2;
      }
      throw e;
    }
  });
}
