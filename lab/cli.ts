/**
 * npm run lab:up -- --nodes N [--stack S]… [--json]  boot N nodes (cached Debian image), print them;
 *                                                   with --stack, make the lab ready for that stack
 * npm run lab:prepare -- --stack S                  make a running lab ready for stack S
 * npm run lab:down                                  remove every container, mount, namespace, bridge and process of the lab
 *
 * Deploying onto the lab is the product's own command: npm run pulumi -- up --stack lab --yes.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { flags, readStackPlan } from "../cli/main";
import { secretSource } from "../config/schema";
import type { Plan } from "../plan";
import { runCommand, UsageError } from "../config/errors";
import { down, LabError, readState, up, writeState, type LabState } from "./lab";
import { ensureAptProxy, ensureMirrorServer, ensureModel, ensureWheels } from "./mirror";
import { connect, exec } from "../provisioning/ssh";

const USAGE = `usage: npm run lab:up -- --nodes N [--stack <lab stack>]... [--json]
       npm run lab:prepare -- --stack <lab stack>
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

/**
 * Makes the lab ready for a lab stack's `pulumi up`: the stack's nodes are up, the mirror serves
 * wheels, the stand-in weights and the stand-in hub, and each node's GPU double reports what the
 * plan expects (lab/fakes/nvidia-smi). What `pulumi up` then runs is the product, unchanged.
 */
export async function prepareLab(stack: string, log: (s: string) => void = say): Promise<Plan> {
  const state = readState();
  if (!state) throw new LabError("no lab is up: run npm run lab:up -- --nodes N first");
  const plan = readStackPlan(stack);
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
  await ensureAptProxy(state, writeState);
  // Secrets the stack reads from files on this machine: a random value, made once per boot.
  for (const ref of Object.values(plan.secrets)) {
    const source = secretSource(ref);
    if (source?.kind !== "file") continue;
    const path = source.name;
    if (existsSync(path)) continue;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, `hf_lab${randomBytes(16).toString("hex")}\n`, { mode: 0o600 });
  }
  // The lab's GPU double: what nvidia-smi reports on each node of the stack, with the driver the
  // stack's vLLM release needs (its wheels' CUDA).
  const conf = `DRIVER=${plan.driver.min}\nCUDA=${plan.driver.cuda}\nGPU_NAME="${plan.gpu.smiName}"\nGPU_MIB=${Math.round(plan.gpu.memoryGiB * 1024)}\nGPU_COUNT=${plan.gpusPerNode}\n`;
  await Promise.all(
    plan.nodes.map(async (n) => {
      const lab = state.nodes.find((l) => l.address === n.host!.address)!;
      const ssh = await connect(
        {
          host: lab.address,
          port: 22,
          user: "root",
          privateKeyPath: state.keyPath,
          hostKeys: lab.hostKeys,
        },
        30,
      );
      try {
        const r = await exec(ssh, "cat > /etc/fake-nvidia-smi.conf", { stdin: conf });
        if (r.code !== 0)
          throw new LabError(`cannot configure the fake nvidia-smi on ${n.name}: ${r.stderr}`);
      } finally {
        ssh.dispose();
      }
    }),
  );
  // What the engine checks before it deploys a lab stack (labNotReadyFor).
  state.prepared = [...new Set([...(state.prepared ?? []), stack])];
  writeState(state);
  log(`lab ready for stack ${stack}: ${plan.nodes.map((n) => n.host!.address).join(", ")}`);
  return plan;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values } = flags(rest, {
    nodes: { type: "string" },
    stack: { type: "string", multiple: true },
    json: { type: "boolean", default: false },
  });
  const stacks = values.stack ?? [];
  switch (command) {
    case "up": {
      // Enough nodes for every stack named (lab-n<i> is at 10.77.0.1<i>), or --nodes.
      const needed = Math.max(
        0,
        ...stacks.flatMap((s) =>
          readStackPlan(s).nodes.map(
            (n) => Number(/\.(\d+)$/.exec(n.host?.address ?? "")?.[1] ?? 0) - 10,
          ),
        ),
      );
      const n = Number(values.nodes ?? String(Math.max(needed, 1)));
      if (!Number.isInteger(n) || n < 1 || n > 16)
        throw new UsageError(`--nodes: "${values.nodes}" must be a whole number from 1 to 16`);
      const state = await up({ nodes: n, log: say });
      for (const s of stacks) await prepareLab(s);
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
    case "prepare":
      if (!stacks.length) throw new UsageError("--stack is required (lab or lab-single)");
      for (const s of stacks) await prepareLab(s);
      return 0;
    case "down":
      await down({ log: say });
      return 0;
    default:
      throw new UsageError(`unknown lab command "${command ?? ""}"`);
  }
}

if (require.main === module) {
  void runCommand(USAGE, () => main(process.argv.slice(2)));
}
