/**
 * `npm run deploy -- --stack <hosts stack> [--json]`: provision existing machines over SSH (target.kind
 * hosts) with the rendered steps, in order, host keys checked against target.knownHostsPath. Secrets
 * named in the stack as "file:<path>" are read here and written to the nodes' root-only secrets file.
 * AWS stacks deploy with `pulumi up`.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { deploy, DeployError, DeploySetupError } from "../provisioning/deploy-ssh";
import { hostsStackPlan, runCommand, UsageError } from "./main";

const USAGE = "usage: npm run deploy -- --stack <hosts stack> [--json]";

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { stack: { type: "string" }, json: { type: "boolean", default: false } },
    strict: true,
  });
  const plan = hostsStackPlan(values.stack, `deploy it with pulumi up --stack ${values.stack}`);
  if (!plan.fits) {
    process.stderr.write(
      `The model does not fit; nothing was changed. Run npm run plan -- --stack ${values.stack} for the numbers and the ways out.\n`,
    );
    return 1;
  }
  const secrets: Record<string, string> = {};
  const names = { apiKey: "VLLM_API_KEY", hfToken: "HF_TOKEN" } as const;
  for (const [key, env] of Object.entries(names)) {
    const ref = plan.config.secrets[key as keyof typeof names];
    if (!ref) continue;
    if (!ref.startsWith("file:"))
      throw new UsageError(
        `secrets.${key}: "${ref}" cannot be read outside Pulumi; for hosts deployed with npm run deploy use "file:<path on this machine>"`,
      );
    secrets[env] = readFileSync(ref.slice(5), "utf8").trim();
  }
  try {
    const report = await deploy(plan, { log: (s) => process.stderr.write(`${s}\n`), secrets });
    process.stdout.write(
      values.json
        ? `${JSON.stringify(report, null, 2)}\n`
        : `deployed ${report.stack} in ${report.totalSeconds.toFixed(1)} s (${report.changedSteps} step(s) changed something)\n`,
    );
    return 0;
  } catch (e) {
    if (e instanceof DeploySetupError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    if (e instanceof DeployError) {
      process.stderr.write(`${e.message}\n`);
      if (values.json) process.stdout.write(`${JSON.stringify(e.report, null, 2)}\n`);
      return 1;
    }
    throw e;
  }
}

if (require.main === module) void runCommand(USAGE, () => main(process.argv.slice(2)));
