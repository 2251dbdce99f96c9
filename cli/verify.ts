/**
 * `npm run verify -- --stack <stack> [--full] [--json] [--state FILE|-]`: SSH into every node of a
 * deployed stack (host keys checked) and check everything without changing anything: units active,
 * driver, weights against their manifest, connectivity, the Ray cluster, Prometheus targets, and a
 * real image + question request. Hosts stacks are reached as `pulumi up` reaches them
 * (target.hosts, target.sshPrivateKeyPath, target.knownHostsPath); AWS stacks as provisioning
 * reached them, from the stack's state: each node's public address, the deployment's key (the
 * DeployKey's secret output) and the host keys read from its console (ConsoleHostKey). The state
 * comes from the engine (`pulumi stack export --show-secrets`, as npm run pulumi keeps it), or with
 * --state from a file or stdin that the ordinary CLI wrote:
 *   pulumi stack export --show-secrets --stack multi-gpu | npm run verify -- --stack multi-gpu --state -
 * Exit 0: every check passed; 1: some failed (each named, with what to do); 2: what is wrong on
 * this machine (keys, known hosts, the state) or in the arguments.
 */
import { readFileSync } from "node:fs";
import { DeploySetupError, accessTarget, verifyNodes, type NodeCheck } from "../provisioning/hosts";
import { runCommand, UsageError, UserError } from "../config/errors";
import { exportStack } from "../engine/pulumi";
import { awsNodeAccess, StateError } from "../engine/state";
import type { Plan, PlanNode } from "../plan";
import type { SshTarget } from "../provisioning/ssh";
import { flags, readStackPlan, STACK_FLAGS } from "./main";

const USAGE =
  "usage: npm run verify -- --stack <stack> [--full] [--json] [--state <pulumi stack export --show-secrets output, or - for stdin>] [--help]";

export function checksToText(checks: readonly NodeCheck[]): string {
  const width = Math.max(...checks.map((c) => c.check.length), 5);
  const lines = checks.map(
    (c) =>
      `${c.node.padEnd(10)} ${c.role.padEnd(7)} ${(c.ok ? "ok" : "FAIL").padEnd(5)} ${c.check.padEnd(width)}  ${c.detail}`,
  );
  const failed = checks.filter((c) => !c.ok).length;
  lines.push(
    failed
      ? `FAILED: ${failed} of ${checks.length} checks`
      : `verified: all ${checks.length} checks passed`,
  );
  return lines.join("\n");
}

/** An AWS stack's nodes as provisioning reached them, from its exported state. */
function awsTargets(stack: string, plan: Plan, stateFile?: string): (node: PlanNode) => SshTarget {
  let text: string;
  const source = stateFile === "-" ? "stdin" : (stateFile ?? `the state of stack ${stack}`);
  if (stateFile === undefined) text = exportStack(stack, { showSecrets: true });
  else {
    try {
      text = readFileSync(stateFile === "-" ? 0 : stateFile, "utf8");
    } catch (e) {
      throw new UserError(`--state ${stateFile}: ${(e as Error).message}`);
    }
  }
  let exported: unknown;
  try {
    exported = JSON.parse(text);
  } catch {
    throw new StateError(
      `${source} is not JSON: give --state the output of pulumi stack export --show-secrets --stack ${stack}`,
    );
  }
  const access = awsNodeAccess(
    exported,
    stack,
    plan.nodes.map((n) => n.name),
    source,
  );
  return (n) => accessTarget(access.find((a) => a.node === n.name)!);
}

export async function verifyCommand(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Promise<number> {
  const { values } = flags(argv, {
    ...STACK_FLAGS,
    full: { type: "boolean", default: false },
    state: { type: "string" },
  });
  if (values.help) {
    out(`${USAGE}\n`);
    return 0;
  }
  if (!values.stack) throw new UsageError("--stack is required");
  const plan = readStackPlan(values.stack);
  if (values.state !== undefined && plan.target !== "aws")
    throw new UsageError(
      `--state goes with AWS stacks: stack ${values.stack} reaches its hosts with target.sshPrivateKeyPath and target.knownHostsPath`,
    );
  let checks: NodeCheck[];
  try {
    checks = await verifyNodes(plan, {
      full: values.full,
      ...(plan.target === "aws" ? { target: awsTargets(values.stack, plan, values.state) } : {}),
    });
  } catch (e) {
    if (e instanceof DeploySetupError) {
      err(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const ok = checks.length > 0 && checks.every((c) => c.ok);
  out(
    values.json
      ? `${JSON.stringify({ stack: values.stack, ok, checks }, null, 2)}\n`
      : `${checksToText(checks)}\n`,
  );
  return ok ? 0 : 1;
}

if (require.main === module) {
  void runCommand(USAGE, () => verifyCommand(process.argv.slice(2)));
}
