/**
 * Reads a stack's settings without the Pulumi engine: `stacks/Pulumi.<stack>.yaml`, the same file
 * `pulumi up --stack <stack>` reads (Pulumi.yaml sets `stackConfigDir: stacks`). Keys live under the
 * project's namespace ("qwen-vl-deploy:model"); values Pulumi encrypted (`secure:`) are only noted
 * as present, never decrypted.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "./errors";

export const PROJECT_ROOT = join(__dirname, "..");

export function projectName(root = PROJECT_ROOT): string {
  const doc = parseYaml(readFileSync(join(root, "Pulumi.yaml"), "utf8")) as { name?: string };
  if (!doc?.name) throw new Error("Pulumi.yaml has no name");
  return doc.name;
}

export function stackNames(root = PROJECT_ROOT): string[] {
  return readdirSync(join(root, "stacks"))
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((n): n is string => Boolean(n))
    .sort();
}

export interface RawStack {
  /** Our namespace's keys, namespace stripped, secrets excluded. */
  readonly sections: Record<string, unknown>;
  /** Keys of our namespace holding Pulumi-encrypted values. */
  readonly secretKeys: ReadonlySet<string>;
}

export function splitNamespace(config: Record<string, unknown>, project: string): RawStack {
  const sections: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  for (const [key, value] of Object.entries(config)) {
    if (!key.startsWith(`${project}:`)) continue;
    const name = key.slice(project.length + 1);
    if (value && typeof value === "object" && "secure" in value) secretKeys.add(name);
    else sections[name] = value;
  }
  return { sections, secretKeys };
}

export function readStackFile(stack: string, root = PROJECT_ROOT): RawStack {
  const file = join(root, "stacks", `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) {
    throw new ConfigError(
      [
        {
          path: "--stack",
          value: stack,
          message: `no stacks/Pulumi.${stack}.yaml; shipped stacks: ${stackNames(root).join(", ")}`,
        },
      ],
      "Unknown stack",
    );
  }
  let doc: { config?: Record<string, unknown> } | null;
  try {
    doc = parseYaml(readFileSync(file, "utf8")) as typeof doc;
  } catch (e) {
    throw new ConfigError([
      { path: file, value: undefined, message: `not valid YAML: ${(e as Error).message}` },
    ]);
  }
  return splitNamespace(doc?.config ?? {}, projectName(root));
}
