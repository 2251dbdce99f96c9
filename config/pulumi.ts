/**
 * Reads the stack's settings from Pulumi config (at `pulumi preview/up`), in the same raw shape
 * the offline `plan` reads from the stack file, so both go through the one parser and planner.
 */
import * as pulumi from "@pulumi/pulumi";
import { SECTIONS, secretSource } from "./schema";

export interface PulumiRawConfig {
  readonly sections: Record<string, unknown>;
  /** Keys named by `secrets.*: "config:<key>"` that the stack holds as secrets. */
  readonly secretKeys: ReadonlySet<string>;
}

export function readPulumiConfig(cfg: pulumi.Config = new pulumi.Config()): PulumiRawConfig {
  const sections: Record<string, unknown> = {};
  for (const name of Object.keys(SECTIONS)) {
    const value = cfg.getObject<unknown>(name);
    if (value !== undefined) sections[name] = value;
  }
  const secretKeys = new Set<string>();
  const secrets = sections["secrets"];
  if (secrets && typeof secrets === "object") {
    for (const ref of Object.values(secrets as Record<string, unknown>)) {
      const source = secretSource(ref);
      if (source?.kind === "config" && cfg.getSecret(source.name) !== undefined)
        secretKeys.add(source.name);
    }
  }
  return { sections, secretKeys };
}
