/**
 * What the commands share: reading a stack's plan. (Running a command, its errors and exit codes:
 * config/errors.ts.)
 */
import { UsageError } from "../config/errors";
import { readStackFile } from "../config/stack-file";
import { planStack, type Plan } from "../plan";

/** The plan of the hosts stack named by --stack (deploy, verify); an AWS stack is refused with `awsHint`. */
export function hostsStackPlan(stack: string | undefined, awsHint: string): Plan {
  if (!stack) throw new UsageError("--stack is required");
  const raw = readStackFile(stack);
  const plan = planStack(raw.sections, { stack, secretKeys: raw.secretKeys });
  if (plan.target !== "hosts") throw new UsageError(`stack ${stack} targets AWS: ${awsHint}`);
  return plan;
}
