/**
 * What the commands share: their flags, reading a stack's plan. (Running a command, its errors and exit codes:
 * config/errors.ts.)
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { readStackFile } from "../config/stack-file";
import { planStack, previewStack, type Plan, type PlanPreview } from "../plan";
import { planToJson, planToText } from "../plan/report";

/**
 * The plan of a shipped stack: its file read (stacks/Pulumi.<stack>.yaml) and planned, the keys it
 * holds as Pulumi secrets known to the plan's checks. Every command that starts from --stack.
 */
export function readStackPlan(stack: string): Plan {
  const raw = readStackFile(stack);
  return planStack(raw.sections, { stack, secretKeys: raw.secretKeys });
}

/** A shipped stack's plan, and what keeps it from deploying (`plan --stack`). */
export function readStackPreview(stack: string): PlanPreview {
  const raw = readStackFile(stack);
  return previewStack(raw.sections, { stack, secretKeys: raw.secretKeys });
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

/**
 * What `plan` and `fit` print (the text, or --json), and their exit code: 0 when the answer is yes,
 * 1 when it is no. `fit` asks whether the model fits (a missing lock file is listed, not a no);
 * `plan` asks whether the stack can deploy (it fits and nothing is missing).
 */
export function planReply(
  preview: PlanPreview,
  json: boolean,
  question: "fits" | "deployable",
): { code: number; output: string } {
  const yes = question === "fits" ? preview.plan.fits : preview.deployable;
  return {
    code: yes ? 0 : 1,
    output: json
      ? JSON.stringify(planToJson(preview), null, 2)
      : planToText(preview.plan, preview.problems),
  };
}

/** Prints a command's output and gives its exit code (for `runCommand`). */
export function printed({ code, output }: { code: number; output: string }): number {
  process.stdout.write(`${output}\n`);
  return code;
}
