/**
 * What every command does around its work: user errors print as clear messages with exit code 2
 * (no stack trace), anything else is a bug and keeps its trace.
 */
import { ConfigError } from "../config/errors";
import { readStackFile } from "../config/stack-file";
import { planStack, type Plan } from "../plan";

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export async function runCommand(usage: string, fn: () => Promise<number> | number): Promise<void> {
  try {
    process.exitCode = await fn();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = 2;
    } else if (
      e instanceof UsageError ||
      (e instanceof TypeError && (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS"))
    ) {
      process.stderr.write(`${e.message}\n\n${usage}\n`);
      process.exitCode = 2;
    } else if (e instanceof Error && typeof (e as { exitCode?: unknown }).exitCode === "number") {
      // Errors that say what the user can do about them carry their exit code: one line, no trace.
      process.stderr.write(`${e.message}\n`);
      process.exitCode = (e as unknown as { exitCode: number }).exitCode;
    } else {
      throw e;
    }
  }
}

/** The plan of the hosts stack named by --stack (deploy, verify); an AWS stack is refused with `awsHint`. */
export function hostsStackPlan(stack: string | undefined, awsHint: string): Plan {
  if (!stack) throw new UsageError("--stack is required");
  const raw = readStackFile(stack);
  const plan = planStack(raw.sections, { stack, secretKeys: raw.secretKeys });
  if (plan.target !== "hosts") throw new UsageError(`stack ${stack} targets AWS: ${awsHint}`);
  return plan;
}
