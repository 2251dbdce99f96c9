/**
 * Reads a stack's settings without the Pulumi engine: `stacks/Pulumi.<stack>.yaml`, the same file
 * `pulumi up --stack <stack>` reads (Pulumi.yaml sets `stackConfigDir: stacks`). Keys live under the
 * project's namespace ("qwen-vl-deploy:model"); values Pulumi encrypted (`secure:`) are only noted
 * as present, never decrypted.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { PROJECT_ROOT } from "../catalogs/locks";
import { ConfigError, closest, type Issue } from "./errors";

export { PROJECT_ROOT };

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

/**
 * Namespaces a stack's config may use besides the project's own: the AWS provider's settings
 * (`aws:region`, `aws:profile`, …) and Pulumi's (`pulumi:tags`). Anything else is a misspelt
 * namespace whose section would be silently dropped.
 */
export const FOREIGN_NAMESPACES = ["aws", "pulumi"] as const;
/** Top-level keys of a Pulumi stack file (Pulumi docs, "Pulumi.<stack>.yaml"). */
export const STACK_FILE_KEYS = [
  "config",
  "encryptionsalt",
  "encryptedkey",
  "secretsprovider",
  "environment",
] as const;

export function splitNamespace(config: Record<string, unknown>, project: string): RawStack {
  const sections: Record<string, unknown> = {};
  const secretKeys = new Set<string>();
  const issues: Issue[] = [];
  for (const [key, value] of Object.entries(config)) {
    const ns = key.includes(":") ? key.slice(0, key.indexOf(":")) : undefined;
    if (ns !== project && !(FOREIGN_NAMESPACES as readonly string[]).includes(ns ?? "")) {
      const hint = ns ? closest(ns, [project]) : undefined;
      issues.push({
        path: `config.${key}`,
        value: typeof value === "object" ? "{…}" : value,
        message: ns
          ? `unknown namespace "${ns}"${hint ? ` (did you mean "${project}:${key.slice(ns.length + 1)}"?)` : ""}; this project reads "${project}:<section>" and the providers' ${FOREIGN_NAMESPACES.map((n) => `"${n}:…"`).join(", ")}`
          : `has no namespace; write "${project}:${key}"`,
      });
      continue;
    }
    if (ns !== project) continue;
    const name = key.slice(project.length + 1);
    if (value && typeof value === "object" && "secure" in value) secretKeys.add(name);
    // An own property whatever the name: "qwen-vl-deploy:__proto__" assigned with [] would set the
    // sections' prototype, and the offline plan would read settings `pulumi up` never sees; as an
    // own key it is an unknown section like any other.
    else
      Object.defineProperty(sections, name, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  if (issues.length) throw new ConfigError(issues);
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
  let doc: Record<string, unknown> | null;
  try {
    doc = parseYaml(readFileSync(file, "utf8")) as typeof doc;
  } catch (e) {
    throw new ConfigError([
      { path: file, value: undefined, message: `not valid YAML: ${(e as Error).message}` },
    ]);
  }
  const extra = Object.keys(doc ?? {}).filter(
    (k) => !(STACK_FILE_KEYS as readonly string[]).includes(k),
  );
  if (extra.length)
    throw new ConfigError(
      extra.map((k) => ({
        path: k,
        value: "{…}",
        message: `is not a stack file key (allowed: ${STACK_FILE_KEYS.join(", ")})${closest(k, STACK_FILE_KEYS) ? `; did you mean "${closest(k, STACK_FILE_KEYS)}"?` : ""}: its settings would be ignored`,
      })),
    );
  return splitNamespace((doc?.["config"] ?? {}) as Record<string, unknown>, projectName(root));
}
