/**
 * What the commands share: their flags, reading a stack's plan. (Running a command, its errors and exit codes:
 * config/errors.ts.)
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { readStackFile } from "../config/stack-file";
import { planStack, type Plan } from "../plan";
import { planToJson, planToText } from "../plan/report";

/**
 * The plan of a shipped stack: its file read (stacks/Pulumi.<stack>.yaml) and planned, the keys it
 * holds as Pulumi secrets known to the plan's checks. Every command that starts from --stack.
 */
export function readStackPlan(stack: string): Plan {
  const raw = readStackFile(stack);
  return planStack(raw.sections, { stack, secretKeys: raw.secretKeys });
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Every command's flags: strict (an unknown flag is a usage error), positionals only when asked. */
export function flags<O extends Options, P extends boolean = false>(
  argv: string[],
  options: O,
  allowPositionals?: P,
) {
  return parseArgs({
    args: argv,
    options,
    strict: true,
    allowPositionals: (allowPositionals ?? false) as P,
  });
}

/** The flags of every command that starts from a stack's plan. */
export const STACK_FLAGS = {
  stack: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", default: false },
} as const;

/** The flags of the commands that talk to a deployment's endpoint (ask, bench). */
export const ENDPOINT_FLAGS = {
  stack: { type: "string" },
  url: { type: "string" },
  model: { type: "string" },
} as const;

/** String-valued flags from their names. */
export function stringFlags<N extends string>(...names: N[]): { [K in N]: { type: "string" } } {
  return Object.fromEntries(names.map((n) => [n, { type: "string" }])) as {
    [K in N]: { type: "string" };
  };
}

/** What `plan` and `fit` print (the text, or --json), and their exit code: 0 fits, 1 does not. */
export function planReply(plan: Plan, json: boolean): { code: number; output: string } {
  return {
    code: plan.fits ? 0 : 1,
    output: json ? JSON.stringify(planToJson(plan), null, 2) : planToText(plan),
  };
}

/** Prints a command's output and gives its exit code (for `runCommand`). */
export function printed({ code, output }: { code: number; output: string }): number {
  process.stdout.write(`${output}\n`);
  return code;
}
