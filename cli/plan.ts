/**
 * `npm run plan -- --stack <name> [--json]`: the offline plan of a stack, from its YAML file; no
 * cloud account, no Pulumi engine. Exit 0 when it fits, 1 when it does not, 2 on a config error.
 */
import { parseArgs } from "node:util";
import { stackNames } from "../config/stack-file";
import { readStackPlan } from "./main";
import { runCommand, UsageError } from "../config/errors";
import { planToJson, planToText } from "../plan/report";

const USAGE = `usage: npm run plan -- --stack <name> [--json]
  stacks: ${stackNames().join(", ")}`;

export function planCommand(argv: string[]): { code: number; output: string } {
  const { values } = parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) return { code: 0, output: USAGE };
  if (!values.stack) throw new UsageError("--stack is required");
  const plan = readStackPlan(values.stack);
  const output = values.json ? JSON.stringify(planToJson(plan), null, 2) : planToText(plan);
  return { code: plan.fits ? 0 : 1, output };
}

if (require.main === module) {
  void runCommand(USAGE, () => {
    const { code, output } = planCommand(process.argv.slice(2));
    process.stdout.write(`${output}\n`);
    return code;
  });
}
