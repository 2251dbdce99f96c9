/**
 * A small Pulumi program of the test's own, run on the real engine (the CLI built from the Go module
 * proxy) as an Automation API inline program with a file backend of its own: for what only the
 * engine shows (a preview with unknown inputs, a provider whose serialized text changed).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { ensureCli } from "../../engine/pulumi";
import { PROJECT_ROOT } from "../../config/stack-file";

/**
 * `dir` must lie inside the checkout (the dynamic provider finds provisioning/ from its working
 * directory): the program's project file, its stack settings and its state are kept there, never
 * in the checkout's own Pulumi.yaml or stacks/.
 */
export async function inlineStack(
  dir: string,
  stackName: string,
  program: () => Promise<Record<string, unknown> | void>,
): Promise<Stack> {
  if (!dir.startsWith(PROJECT_ROOT + "/")) throw new Error(`${dir} is not inside ${PROJECT_ROOT}`);
  const cli = ensureCli();
  const backendDir = join(dir, "state");
  mkdirSync(backendDir, { recursive: true });
  const pluginDir = dirname(require.resolve("@pulumi/pulumi/package.json"));
  const pulumiCommand = await PulumiCommand.get({
    root: dirname(dirname(cli)),
    skipVersionCheck: true,
  });
  return LocalWorkspace.createOrSelectStack(
    { stackName, projectName: "qwen-vl-deploy-test", program },
    {
      workDir: dir,
      pulumiCommand,
      envVars: {
        PULUMI_HOME: join(dirname(dirname(cli)), "home"),
        PULUMI_BACKEND_URL: `file://${backendDir}`,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
        PULUMI_CONFIG_PASSPHRASE: "test-state-holds-no-real-secret",
        PATH: `${dirname(cli)}:${pluginDir}:${process.env["PATH"] ?? ""}`,
      },
      projectSettings: { name: "qwen-vl-deploy-test", runtime: "nodejs" },
    },
  );
}

/**
 * Changes the serialized provider text of every resource of `type` in the stack's state, as an
 * upgrade of @pulumi/pulumi, TypeScript or tsx (or `pulumi up` under ts-node instead of tsx) does.
 */
export async function changeSerializedProvider(
  stack: Stack,
  type: string,
  dir: string,
): Promise<number> {
  const state = await stack.exportStack();
  let changed = 0;
  for (const r of (state.deployment as { resources?: Record<string, unknown>[] }).resources ?? []) {
    if (r["type"] !== type) continue;
    for (const field of ["inputs", "outputs"]) {
      const props = r[field] as Record<string, unknown> | undefined;
      if (props && typeof props["__provider"] === "string") {
        props["__provider"] = `${props["__provider"]}\n// serialized by another release\n`;
        changed++;
      }
    }
  }
  const file = join(dir, `state-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(state));
  await stack.importStack(JSON.parse(readFileSync(file, "utf8")));
  return changed;
}
