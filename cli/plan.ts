/**
 * `npm run plan -- --stack <name> [--json]`: the offline plan of a stack, from its YAML file; no
 * cloud account, no Pulumi engine. A stack that cannot deploy yet (a release without a lock file) is
 * still planned, its problems listed. Exit 0 when it fits and can deploy, 1 when it does not fit or
 * cannot deploy yet, 2 on a config error.
 */
import { stackNames } from "../config/stack-file";
import { flags, planReply, printed, readStackPreview, STACK_FLAGS } from "./main";
import { runCommand, UsageError } from "../config/errors";

const USAGE = `usage: npm run plan -- --stack <name> [--json]
  stacks: ${stackNames().join(", ")}`;

export function planCommand(argv: string[]): { code: number; output: string } {
  const { values } = flags(argv, STACK_FLAGS);
  if (values.help) return { code: 0, output: USAGE };
  if (!values.stack) throw new UsageError("--stack is required");
  return planReply(readStackPreview(values.stack), values.json, "deployable");
}

if (require.main === module)
  void runCommand(USAGE, () => printed(planCommand(process.argv.slice(2))));
