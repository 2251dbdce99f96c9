/**
 * Reading a stack's state as `pulumi stack export` writes it (apitype.UntypedDeployment: `{ version,
 * deployment: { resources: [{ urn, type, inputs, outputs, … }] } }`), for what must reach an AWS
 * deployment's nodes after `pulumi up`: each node's address and login, the deployment's SSH key
 * (DeployKey's secret output) and the host keys read from the instance's console (ConsoleHostKey).
 *
 * A secret is `{ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
 * "plaintext": "<the value as JSON>" }` with --show-secrets, `"ciphertext"` instead without
 * (pulumi/pulumi sdk/go/common/apitype/core.go SecretV1; pkg/resource/stack/deployment.go
 * SerializePropertyValue, which JSON-encodes the value into `plaintext`).
 */
import { UserError } from "../config/errors";
import type { NodeAccess } from "../provisioning/hosts";

export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface ExportedResource {
  readonly urn: string;
  readonly type: string;
  readonly outputs?: Record<string, unknown>;
}

/** The state cannot give what was asked: one line, exit 2. */
export class StateError extends UserError {}

/** The resources of a `pulumi stack export`; anything else is refused, naming `source`. */
export function exportedResources(exported: unknown, source: string): ExportedResource[] {
  const resources = (exported as { deployment?: { resources?: unknown } } | null)?.deployment
    ?.resources;
  if (!Array.isArray(resources))
    throw new StateError(
      `${source} is not the output of pulumi stack export (no deployment.resources): export it with pulumi stack export --show-secrets --stack <stack>`,
    );
  return resources.filter(
    (r): r is ExportedResource =>
      typeof (r as ExportedResource)?.urn === "string" &&
      typeof (r as ExportedResource)?.type === "string",
  );
}

/** A resource's name: the URN's last part (urn:pulumi:<stack>::<project>::<type>::<name>). */
export function resourceName(urn: string): string {
  return urn.slice(urn.lastIndexOf("::") + 2);
}

/** A value as the program saw it: secrets unwrapped (their plaintext is the value as JSON). */
export function plainValue(value: unknown, what: string): unknown {
  if (Array.isArray(value)) return value.map((v) => plainValue(v, what));
  if (value === null || typeof value !== "object") return value;
  const o = value as Record<string, unknown>;
  if (o[SECRET_SIG_KEY] === SECRET_SIG) {
    if (typeof o["plaintext"] === "string") return plainValue(JSON.parse(o["plaintext"]), what);
    throw new StateError(
      `${what} is encrypted in this export: export the state with pulumi stack export --show-secrets`,
    );
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, plainValue(v, what)]));
}

/** How to reach one AWS node over SSH, as provisioning reached it. */
export interface AwsNodeAccess extends NodeAccess {
  readonly node: string;
}

/** ConsoleHostKey's outputs: `hostKeys` (every key) or, in older states, `hostKey` (one). */
export function hostKeysOf(outputs: Record<string, unknown>): string[] {
  const many = outputs["hostKeys"];
  if (Array.isArray(many)) return many.filter((k): k is string => typeof k === "string" && !!k);
  const one = outputs["hostKey"];
  return typeof one === "string" && one ? [one] : [];
}

/**
 * Every named node's address, login, the deployment's key and its host keys, from the export of an
 * AWS stack made by this program (names: `<stack>-deploy-key`, `<stack>-<node>-hostkey`, the
 * steps `<stack>-<node>-host`, …). What is missing is named with what to do.
 */
export function awsNodeAccess(
  exported: unknown,
  stack: string,
  nodes: readonly string[],
  source = `the state of stack ${stack}`,
): AwsNodeAccess[] {
  const resources = exportedResources(exported, source);
  const deploy = `deploy it first (npm run pulumi -- up --stack ${stack} --yes)`;
  const dynamic = (name: string) =>
    resources.find(
      (r) => r.type.startsWith("pulumi-nodejs:dynamic") && resourceName(r.urn) === name,
    );
  const outputsOf = (name: string, what: string): Record<string, unknown> => {
    const r = dynamic(name);
    if (!r?.outputs) throw new StateError(`${source} has no ${what} (resource ${name}): ${deploy}`);
    return plainValue(r.outputs, `${what} (${name})`) as Record<string, unknown>;
  };
  const privateKey = outputsOf(`${stack}-deploy-key`, "deployment SSH key")["privateKey"];
  if (typeof privateKey !== "string" || !privateKey.includes("PRIVATE KEY"))
    throw new StateError(`${source}: ${stack}-deploy-key holds no private key: ${deploy}`);
  return nodes.map((node) => {
    const hostKeys = hostKeysOf(outputsOf(`${stack}-${node}-hostkey`, `host key of ${node}`));
    if (!hostKeys.length)
      throw new StateError(
        `${source}: ${stack}-${node}-hostkey holds no host key (the console had none when it was read): run npm run pulumi -- up --stack ${stack} --yes again`,
      );
    // The address, port and login the steps used (the first step's connection; no key in it).
    const connection = outputsOf(`${stack}-${node}-host`, `provisioning of ${node}`)[
      "connection"
    ] as { host?: unknown; port?: unknown; user?: unknown } | undefined;
    const { host, port, user } = connection ?? {};
    if (typeof host !== "string" || typeof port !== "number" || typeof user !== "string")
      throw new StateError(
        `${source}: ${stack}-${node}-host has no connection (host, port, user): ${deploy}`,
      );
    return { node, host, port, user, privateKey, hostKeys };
  });
}
