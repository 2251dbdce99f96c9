/**
 * npm run pulumi -- up|preview|destroy|refresh|export|cancel --stack <name> [--yes] [--expect-no-changes] [--rerun] [--events FILE]
 *   --rerun: every step runs again once (the scripts are idempotent: they repair drift that
 *   `npm run verify` found, a unit someone stopped), on every target; the ordinary CLI's
 *   equivalent is QWEN_VL_RERUN=$(date +%s) pulumi up. --events: the engine's events as JSON lines.
 *
 * The real Pulumi engine, where Pulumi's installer cannot reach: the CLI built from the Go module
 * proxy (engine/build-cli.sh, cached per machine), running the program (program.ts) as an
 * Automation API inline program, so no language host binary is needed, and the remote steps as a
 * dynamic provider (pulumi-resource-pulumi-nodejs ships with @pulumi/pulumi). The stack's settings
 * come from stacks/Pulumi.<stack>.yaml as with the ordinary CLI. State: PULUMI_BACKEND_URL, or a
 * local file backend in .pulumi-state/. Secrets: the passphrase provider (PULUMI_CONFIG_PASSPHRASE;
 * lab stacks have a fixed lab passphrase). Update checks are off, and plugin downloads for lab stacks.
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import {
  LocalWorkspace,
  PulumiCommand,
  type EngineEvent,
  type Stack,
} from "@pulumi/pulumi/automation";
import { runCommand, UsageError, UserError } from "../config/errors";
import { PROJECT_ROOT, readStackFile } from "../config/stack-file";
import { readStackPlan } from "../cli/main";
import type { Plan } from "../plan";
import { sshTargets } from "../provisioning/hosts";
import { indexedLockText } from "../provisioning/python-lock";
import { labNotReadyFor, labOwner, readState } from "../lab/lab";

const USAGE =
  "usage: npm run pulumi -- up|preview|destroy|refresh|export|cancel --stack <name> [--yes] [--expect-no-changes] [--rerun] [--events FILE]";

export const PROJECT_NAME = "qwen-vl-deploy";
/** Lab stacks only: their state holds no real secret, so a fixed passphrase is enough. */
export const LAB_PASSPHRASE = "qwen-vl-lab-state-holds-no-real-secret";
export const STATE_DIR = join(PROJECT_ROOT, ".pulumi-state");

/** The engine cannot run what was asked (no CLI, a stack it cannot select): exit 2. */
export class EngineError extends UserError {}

/**
 * The Pulumi CLI, built once per machine (cold: minutes; cached: instant). The build's progress (a
 * line per phase, a heartbeat every 30 s with the time and the caches' sizes) and, when it fails,
 * Go's last lines reach stderr while it runs: a first `npm run pulumi` is never silent for minutes.
 */
export function ensureCli(): string {
  const script = join(__dirname, "build-cli.sh");
  const r = spawnSync("bash", [script], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (r.error)
    throw new EngineError(`cannot run ${script}: ${r.error.message} (it needs bash on PATH)`);
  if (r.status !== 0)
    throw new EngineError(
      `building the Pulumi CLI failed (engine/build-cli.sh, exit ${r.status ?? r.signal}; what failed is printed above): fix that, then run npm run engine`,
    );
  return r.stdout.trim().split("\n").pop()!;
}

export interface EngineOptions {
  readonly stack: string;
  /** Engine progress lines (the same text `pulumi up` prints). */
  readonly onOutput?: (text: string) => void;
  readonly onEvent?: (event: EngineEvent) => void;
}

/**
 * How the engine encrypts the stack's secrets: PULUMI_CONFIG_PASSPHRASE(_FILE), or the lab's fixed
 * passphrase for lab stacks. Checked before the CLI is built or run.
 */
function secretsEnv(stack: string): Record<string, string> {
  const passphrase = process.env["PULUMI_CONFIG_PASSPHRASE"];
  const file = process.env["PULUMI_CONFIG_PASSPHRASE_FILE"];
  if (passphrase !== undefined) return { PULUMI_CONFIG_PASSPHRASE: passphrase };
  if (file) return { PULUMI_CONFIG_PASSPHRASE_FILE: file };
  if (isLabStack(stack)) return { PULUMI_CONFIG_PASSPHRASE: LAB_PASSPHRASE };
  throw new UsageError(
    `stack ${stack}: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to encrypt its secrets in the state, or PULUMI_BACKEND_URL for a backend of your own`,
  );
}

/** The environment every engine call runs with. */
function engineEnv(stack: string, cli: string): Record<string, string> {
  const pluginDir = dirname(require.resolve("@pulumi/pulumi/package.json"));
  return {
    PULUMI_HOME: process.env["PULUMI_HOME"] ?? join(dirname(dirname(cli)), "home"),
    PULUMI_BACKEND_URL: process.env["PULUMI_BACKEND_URL"] ?? `file://${STATE_DIR}`,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    // A lab stack needs no plugin but the dynamic provider's launcher (on PATH): never download.
    ...(isLabStack(stack) ? { PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true" } : {}),
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
    // The dynamic provider's launcher, shipped in @pulumi/pulumi, found on PATH by the engine.
    PATH: `${dirname(cli)}:${pluginDir}:${process.env["PATH"] ?? ""}`,
    ...secretsEnv(stack),
  };
}

export function isLabStack(stack: string): boolean {
  return /^lab(-|$)/.test(stack);
}

export async function selectStack(opts: EngineOptions): Promise<Stack> {
  readStackFile(opts.stack); // a missing or unreadable stack file is named before the engine starts
  const cli = ensureCli();
  const envVars = engineEnv(opts.stack, cli);
  if (envVars["PULUMI_BACKEND_URL"]!.startsWith("file://"))
    mkdirSync(envVars["PULUMI_BACKEND_URL"]!.slice("file://".length), { recursive: true });
  mkdirSync(envVars["PULUMI_HOME"]!, { recursive: true });
  const pulumiCommand = await PulumiCommand.get({
    root: dirname(dirname(cli)),
    skipVersionCheck: true,
  });
  return LocalWorkspace.createOrSelectStack(
    {
      stackName: opts.stack,
      projectName: PROJECT_NAME,
      // Loaded here, not at the top: the program reads the stack's config when it runs.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      program: async () => (require("../program") as typeof import("../program")).qwenVlProgram(),
    },
    { workDir: PROJECT_ROOT, pulumiCommand, envVars },
  );
}

export type EngineCommand = "up" | "preview" | "destroy" | "refresh" | "export" | "cancel";

export interface RunOptions extends EngineOptions {
  readonly command: EngineCommand;
  readonly expectNoChanges?: boolean;
}

/** Runs one engine command; resolves with the engine's summary (resource changes by kind). */
export async function runEngine(opts: RunOptions): Promise<Record<string, number>> {
  const stack = await selectStack(opts);
  const common = {
    ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    color: "never" as const,
  };
  switch (opts.command) {
    case "up": {
      const r = await stack.up({
        ...common,
        ...(opts.expectNoChanges ? { expectNoChanges: true } : {}),
      });
      return (r.summary.resourceChanges ?? {}) as Record<string, number>;
    }
    case "preview": {
      const r = await stack.preview({
        ...common,
        ...(opts.expectNoChanges ? { expectNoChanges: true } : {}),
      });
      return r.changeSummary as Record<string, number>;
    }
    case "refresh": {
      const r = await stack.refresh(common);
      return (r.summary.resourceChanges ?? {}) as Record<string, number>;
    }
    case "destroy": {
      const r = await stack.destroy(common);
      return (r.summary.resourceChanges ?? {}) as Record<string, number>;
    }
    case "export":
      // The state as the backend keeps it, secrets encrypted.
      opts.onOutput?.(exportStack(opts.stack));
      return {};
    case "cancel":
      // What a killed or twice-interrupted `up` leaves: the stack's lock (a file backend's lock
      // files, which `pulumi cancel` deletes; Pulumi Cloud cancels the update it holds).
      await stack.cancel();
      opts.onOutput?.(`stack ${opts.stack}: lock removed; the next up starts afresh\n`);
      return {};
  }
}

/**
 * The stack's state as `pulumi stack export` writes it; with `showSecrets`, secrets in plain text
 * (as the Automation API's exportStack gives them), for what must reach the nodes after `up`.
 */
export function exportStack(stack: string, opts: { showSecrets?: boolean } = {}): string {
  secretsEnv(stack); // a missing passphrase is named before the CLI is built
  const cli = ensureCli();
  const env = engineEnv(stack, cli);
  const r = spawnSync(
    cli,
    ["stack", "export", ...(opts.showSecrets ? ["--show-secrets"] : []), "--stack", stack],
    { cwd: PROJECT_ROOT, env: { ...process.env, ...env }, encoding: "utf8", maxBuffer: 256 << 20 },
  );
  if (r.status !== 0) {
    const why = r.stderr.trim().split("\n").pop() ?? "";
    throw new EngineError(
      /no stack named|not found/i.test(why)
        ? `stack ${stack} has no state in ${env["PULUMI_BACKEND_URL"]}: deploy it first (npm run pulumi -- up --stack ${stack} --yes), or set PULUMI_BACKEND_URL to the backend it was deployed with`
        : `pulumi stack export --stack ${stack} failed: ${why}`,
    );
  }
  return r.stdout;
}

/**
 * What can be known wrong before the engine starts, said in one clear message: the stack's
 * settings (every problem, ConfigError), a model that does not fit, and for hosts stacks the key and
 * known host keys on this machine. `pulumi up` with the ordinary CLI stops on the same checks, in
 * the program, before any resource.
 */
export function preflight(stack: string): Plan {
  const plan = readStackPlan(stack);
  indexedLockText(plan.python.lock);
  if (plan.target === "hosts") sshTargets(plan);
  return plan;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      yes: { type: "boolean", short: "y", default: false },
      "expect-no-changes": { type: "boolean", default: false },
      events: { type: "string" },
      rerun: { type: "boolean", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const command = positionals[0] as EngineCommand | undefined;
  if (!command || !["up", "preview", "destroy", "refresh", "export", "cancel"].includes(command))
    throw new UsageError(`unknown or missing command "${positionals[0] ?? ""}"`);
  if (positionals.length > 1) throw new UsageError(`unexpected "${positionals[1]}"`);
  if (!values.stack) throw new UsageError("--stack is required");
  if ((command === "up" || command === "destroy") && !values.yes)
    throw new UsageError(
      `${command} changes machines: pass --yes (run preview first to see what it will do)`,
    );
  if (command === "cancel" && !values.yes)
    throw new UsageError(
      "cancel removes the stack's lock: only when no other pulumi command runs on this stack (one killed or interrupted twice left it); pass --yes",
    );
  if (values["expect-no-changes"] && (command === "destroy" || command === "refresh"))
    throw new UsageError("--expect-no-changes goes with up or preview");
  if (isLabStack(values.stack) && command !== "export" && command !== "cancel") {
    // A lab stack deploys onto the lab's nodes through its mirrors: up, prepared for this stack.
    const addresses = readStackPlan(values.stack).nodes.map((n) => n.host?.address ?? "");
    const why = labNotReadyFor(values.stack, addresses, readState(), { owner: labOwner() });
    if (why) throw new EngineError(`${command} --stack ${values.stack}: ${why}`);
  }
  if (command === "up" || command === "preview") {
    const plan = preflight(values.stack);
    if (!plan.fits) {
      process.stderr.write(
        `The model does not fit; nothing was changed. Run npm run plan -- --stack ${values.stack} for the numbers and the ways out.\n`,
      );
      return 1;
    }
  }
  if (values.rerun) {
    if (command !== "up") throw new UsageError("--rerun goes with up");
    process.env["QWEN_VL_RERUN"] = new Date().toISOString();
  }
  const events = values.events;
  if (events) {
    mkdirSync(dirname(events), { recursive: true });
    writeFileSync(events, "");
  }
  try {
    await runEngine({
      command,
      stack: values.stack,
      expectNoChanges: values["expect-no-changes"],
      onOutput: (s) => process.stdout.write(s),
      ...(events
        ? {
            onEvent: (e: EngineEvent) =>
              appendFileSync(events, `${JSON.stringify({ ...e, receivedAt: Date.now() })}\n`),
          }
        : {}),
    });
    return 0;
  } catch (e) {
    if (e instanceof UserError) throw e; // runCommand prints it and exits with its code
    const name = (e as Error).constructor?.name ?? "";
    if (
      /CommandError|ConcurrentUpdateError|StackNotFoundError|StackAlreadyExistsError/.test(name)
    ) {
      // The engine has printed what failed (node, step, last lines) above; its own summary follows.
      const text = String((e as Error).message);
      const lines = text
        .split("\n")
        .filter((l) => /error|failed|FAILED/i.test(l))
        .slice(-12);
      process.stderr.write(
        `pulumi ${command} --stack ${values.stack} failed:\n${lines.join("\n") || text.slice(-2000)}\n`,
      );
      // The engine names its own CLI's command; through this wrapper it is ours.
      if (/currently locked/.test(text))
        process.stderr.write(
          `If no other pulumi command runs on this stack (one was killed, or interrupted twice), remove its lock: npm run pulumi -- cancel --stack ${values.stack} --yes\n`,
        );
      return 1;
    }
    throw e;
  }
}

if (require.main === module) void runCommand(USAGE, () => main(process.argv.slice(2)));
