/**
 * `npm run plan -- --stack <name> [--json]`: the offline plan of a stack, from its YAML file; no
 * cloud account, no Pulumi engine. Exit 0 when it fits, 1 when it does not, 2 on a config error.
 */
import { stackNames } from "../config/stack-file";
import { flags, planReply, printed, readStackPlan, STACK_FLAGS } from "./main";
import { runCommand, UsageError } from "../config/errors";

const USAGE = `usage: npm run plan -- --stack <name> [--json]
  stacks: ${stackNames().join(", ")}`;

export function planCommand(argv: string[]): { code: number; output: string } {
  const { values } = flags(argv, STACK_FLAGS);
  if (values.help) return { code: 0, output: USAGE };
  if (!values.stack) throw new UsageError("--stack is required");
  return planReply(readStackPlan(values.stack), values.json);
}

if (require.main === module)
  void runCommand(USAGE, () => printed(planCommand(process.argv.slice(2))));
