/**
 * What the commands share: reading a stack's plan. (Running a command, its errors and exit codes:
 * config/errors.ts.)
 */
import { UsageError } from "../config/errors";
import { readStackFile } from "../config/stack-file";
import { planStack, type Plan } from "../plan";

/**
 * The plan of a shipped stack: its file read (stacks/Pulumi.<stack>.yaml) and planned, the keys it
 * holds as Pulumi secrets known to the plan's checks. Every command that starts from --stack.
 */
export function readStackPlan(stack: string): Plan {
  const raw = readStackFile(stack);
  return planStack(raw.sections, { stack, secretKeys: raw.secretKeys });
}

/** The plan of the hosts stack named by --stack (deploy, verify); an AWS stack is refused with `awsHint`. */
export function hostsStackPlan(stack: string | undefined, awsHint: string): Plan {
  if (!stack) throw new UsageError("--stack is required");
  const plan = readStackPlan(stack);
  if (plan.target !== "hosts") throw new UsageError(`stack ${stack} targets AWS: ${awsHint}`);
  return plan;
}
