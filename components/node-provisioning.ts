/**
 * Every planned node provisioned to serving, as Pulumi resources: per node a wait-for-host step, the
 * rendered bundle (scripts, node.env, units, configuration) written in one round trip, the secrets
 * file (root-only, written from standard input), then one RemoteStep per provisioning step, each
 * after the steps of its node it needs (provisioning/render.ts STEPS). Nodes run in parallel; only
 * Ray's join (a worker after its head's Ray) and the cluster gate (vLLM on the head after every
 * member's connectivity) wait on another node. A step runs again only when what it reads changes (its digest) or a step it builds
 * on ran again; `pulumi destroy` runs each step's undo, last step first, on machines that stay.
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import type { Plan } from "../plan";
import type { Connection } from "../provisioning/remote";
import {
  BUNDLE_WRITER,
  bundlePayload,
  renderProvisioning,
  STEPS,
  type NodeBundle,
  type StepId,
} from "../provisioning/render";
import { NODE_ETC, NODE_HOME, NODE_STATE } from "../plan/layout";
import { stepUndoCommand } from "../provisioning/resource-diffs";
import { RemoteStep } from "./remote-step";

export interface ProvisionedNode {
  /** The plan's node name (head, worker1, or the host's name). */
  readonly name: string;
  /** How to reach it over SSH; the host key is checked, always. */
  readonly connection: pulumi.Input<Connection>;
  /** The address the other members use (Ray, NCCL, the connectivity gate). */
  readonly clusterAddress: pulumi.Input<string>;
}

export interface NodeProvisioningArgs {
  /** The plan (it fits: the caller refuses one that does not). Required. */
  readonly plan: Plan;
  /** Every planned node, in the plan's order. Required. */
  readonly nodes: readonly ProvisionedNode[];
  /** Environment for the nodes' root-only secrets file (VLLM_API_KEY, HF_TOKEN), as secret Outputs. Default: none. */
  readonly secrets?: Readonly<Record<string, pulumi.Input<string>>>;
  /** Undo every step on destroy: true for machines that stay (hosts); AWS nodes are terminated instead. Default: true. */
  readonly undoOnDestroy?: boolean;
  /**
   * A token that makes every step run again once (its idempotent scripts repair drift, e.g. a unit
   * someone stopped); kept in the state until another token is given. Default: none.
   */
  readonly rerun?: string;
  /** SSH attempts of the wait-for-host step (10 s each, 1 s apart). Default: 30. */
  readonly hostDialAttempts?: number;
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/**
 * Every step resource of a node, in order: the three that prepare it (wait for the host, write the
 * bundle, write the secrets file when there are secrets), then the provisioning steps. Resource
 * names are `${component}-${node}-${step}`.
 */
export const NODE_STEPS: readonly string[] = [
  "host",
  "bundle",
  "secrets",
  ...STEPS.map((s) => s.id),
];

/**
 * The triggers of every step of every node: its own digest plus the fingerprints of the steps it
 * builds on (same node: `uses`; every member of its replica: `usesMembers`). A step's fingerprint is
 * the hash of its triggers, so a change flows to what depends on it, and only there. Pure.
 */
export function stepTriggers(
  plan: Plan,
  bundles: readonly NodeBundle[],
): Record<string, Record<StepId, string[]>> {
  const fingerprint: Record<string, Partial<Record<StepId, string>>> = {};
  const out: Record<string, Record<StepId, string[]>> = {};
  for (const b of bundles) {
    fingerprint[b.node.name] = {};
    out[b.node.name] = {} as Record<StepId, string[]>;
  }
  for (const spec of STEPS) {
    // Within one step id, members' fingerprints of earlier ids are all known (STEPS is ordered).
    for (const b of bundles) {
      const members = plan.nodes.filter((n) => n.replica === b.node.replica).map((n) => n.name);
      const step = b.steps.find((s) => s.id === spec.id)!;
      const triggers = [
        step.digest,
        ...spec.uses.map((u) => `${u}:${fingerprint[b.node.name]![u]}`),
        ...spec.usesMembers.flatMap((u) => members.map((m) => `${m}/${u}:${fingerprint[m]![u]}`)),
      ];
      out[b.node.name]![spec.id] = triggers;
    }
    for (const b of bundles)
      fingerprint[b.node.name]![spec.id] = sha256(out[b.node.name]![spec.id].join("\n"));
  }
  return out;
}

export class NodeProvisioning extends pulumi.ComponentResource {
  /** Every step resource, by node and step. */
  readonly steps: Readonly<Record<string, Readonly<Record<StepId, RemoteStep>>>>;
  /** The readiness gate's last lines on each replica's head ("ready: image+text answered …"). */
  readonly readiness: pulumi.Output<string[]>;

  constructor(name: string, args: NodeProvisioningArgs, opts?: pulumi.ComponentResourceOptions) {
    super("qwen-vl-deploy:provisioning:NodeProvisioning", name, {}, opts);
    const { plan } = args;
    const undo = args.undoOnDestroy ?? true;
    const parent = { parent: this };
    const byName = new Map(args.nodes.map((n) => [n.name, n]));
    for (const n of plan.nodes)
      if (!byName.has(n.name))
        throw new pulumi.ResourceError(`no connection given for planned node ${n.name}`, this);

    const addresses = pulumi
      .all(plan.nodes.map((n) => pulumi.output(byName.get(n.name)!.clusterAddress)))
      .apply((list) => Object.fromEntries(plan.nodes.map((n, i) => [n.name, list[i]!])));
    const bundles = addresses.apply((a) => renderProvisioning(plan, { addresses: a }));
    const triggers = bundles.apply((b) => stepTriggers(plan, b));

    const secretEntries = Object.entries(args.secrets ?? {});
    const secretsBody = secretEntries.length
      ? pulumi.secret(
          pulumi
            .all(secretEntries.map(([k, v]) => pulumi.output(v).apply((x) => [k, x] as const)))
            .apply(
              (kv) =>
                kv.map(([k, v]) => `${k}='${String(v).replace(/'/g, `'\\''`)}'`).join("\n") + "\n",
            ),
        )
      : undefined;
    const secretsDigest = secretsBody
      ? pulumi.secret(secretsBody.apply((b) => `secrets:${sha256(b)}`))
      : undefined;

    const steps: Record<string, Record<StepId, RemoteStep>> = {};
    const ready: Record<string, pulumi.Resource> = {};
    plan.nodes.forEach((n, i) => {
      const node = byName.get(n.name)!;
      const common = { connection: node.connection, node: n.name };
      const host = new RemoteStep(
        `${name}-${n.name}-host`,
        {
          ...common,
          step: "host",
          // On cloud images, cloud-init holds apt and writes the SSH keys first: wait for it.
          create:
            "if command -v cloud-init >/dev/null 2>&1; then cloud-init status --wait >/dev/null 2>&1 || true; fi; echo '[qwen-vl host] reachable, as root'",
          triggers: [],
          dialAttempts: args.hostDialAttempts ?? 30,
        },
        parent,
      );
      const bundle = new RemoteStep(
        `${name}-${n.name}-bundle`,
        {
          ...common,
          step: "bundle",
          create: BUNDLE_WRITER,
          stdin: bundles.apply((b) => bundlePayload(b[i]!.files)),
          triggers: bundles.apply((b) => [sha256(bundlePayload(b[i]!.files))]),
          ...(undo ? { delete: `bash ${NODE_HOME}/bin/undo.sh --bundle` } : {}),
        },
        { parent: this, dependsOn: [host] },
      );
      let last: pulumi.Resource = bundle;
      if (secretsBody) {
        last = new RemoteStep(
          `${name}-${n.name}-secrets`,
          {
            ...common,
            step: "secrets",
            create: `umask 077 && install -d -m 0755 ${NODE_ETC} && cat > ${NODE_ETC}/secrets.env.tmp && chmod 0600 ${NODE_ETC}/secrets.env.tmp && mv ${NODE_ETC}/secrets.env.tmp ${NODE_ETC}/secrets.env && echo '[qwen-vl secrets] ${NODE_ETC}/secrets.env written (0600 root)'`,
            stdin: secretsBody,
            triggers: [secretsDigest!],
            ...(undo ? { delete: `rm -f ${NODE_ETC}/secrets.env` } : {}),
          },
          { parent: this, dependsOn: [bundle], additionalSecretOutputs: ["triggers"] },
        );
      }
      steps[n.name] = {} as Record<StepId, RemoteStep>;
      ready[n.name] = last;
    });

    // Step by step across nodes, so that a step can wait on an earlier step of another node.
    for (const spec of STEPS) {
      for (const n of plan.nodes) {
        const members = plan.nodes.filter((m) => m.replica === n.replica);
        const head = members.find((m) => m.role === "head")!;
        const node = byName.get(n.name)!;
        // After the bundle (and secrets) when the step needs no other step of its node.
        const dependsOn: pulumi.Resource[] = spec.after.length
          ? spec.after.map((id) => steps[n.name]![id])
          : [ready[n.name]!];
        if (n.role !== "head")
          for (const id of spec.afterHead) dependsOn.push(steps[head.name]![id]);
        if (n.role === "head")
          for (const id of spec.headAfterMembers)
            for (const m of members) if (m.name !== n.name) dependsOn.push(steps[m.name]![id]);
        for (const id of spec.usesMembers)
          for (const m of members) if (m.name !== n.name) dependsOn.push(steps[m.name]![id]);
        const step = new RemoteStep(
          `${name}-${n.name}-${spec.id}`,
          {
            connection: node.connection,
            node: n.name,
            step: spec.id,
            create: `bash ${NODE_HOME}/bin/${spec.id}.sh`,
            ...(undo ? { delete: stepUndoCommand(`${NODE_HOME}/bin/undo.sh`, spec.id) } : {}),
            triggers: pulumi
              .all([triggers, spec.usesSecrets && secretsDigest ? secretsDigest : ""])
              .apply(([t, s]) => [
                ...t[n.name]![spec.id],
                ...(s ? [s] : []),
                ...(args.rerun ? [`rerun:${args.rerun}`] : []),
              ]),
            ...(spec.mayRequestReboot ? { rebootMarker: `${NODE_STATE}/reboot-required` } : {}),
          },
          {
            parent: this,
            dependsOn: [...new Set(dependsOn)],
            // The secrets' digest is a trigger: kept encrypted in the state.
            ...(spec.usesSecrets && secretsDigest ? { additionalSecretOutputs: ["triggers"] } : {}),
          },
        );
        steps[n.name]![spec.id] = step;
      }
    }
    this.steps = steps;
    this.readiness = pulumi.all(
      plan.nodes.filter((n) => n.role === "head").map((n) => steps[n.name]!.readiness.tail),
    );
    this.registerOutputs({ readiness: this.readiness });
  }
}
