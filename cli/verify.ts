/**
 * `npm run verify -- --stack <hosts stack> [--full] [--json]`: SSH into every node of a deployed
 * stack (host keys checked) and check everything without changing anything: units active, driver,
 * weights against their manifest, connectivity, the Ray cluster, Prometheus targets, and a real
 * image + question request. Exit 0: every check passed; 1: some failed (each named, with what to
 * do); 2: what is wrong on this machine (keys, known hosts) or in the arguments.
 */
import { DeploySetupError, verifyNodes, type NodeCheck } from "../provisioning/hosts";
import { runCommand } from "../config/errors";
import { flags, hostsStackPlan, STACK_FLAGS } from "./main";

const USAGE = "usage: npm run verify -- --stack <hosts stack> [--full] [--json] [--help]";

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

export async function verifyCommand(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Promise<number> {
  const { values } = flags(argv, { ...STACK_FLAGS, full: { type: "boolean", default: false } });
  if (values.help) {
    out(`${USAGE}\n`);
    return 0;
  }
  const plan = hostsStackPlan(values.stack, "verify reaches existing machines (target.kind hosts)");
  let checks: NodeCheck[];
  try {
    checks = await verifyNodes(plan, { full: values.full });
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
