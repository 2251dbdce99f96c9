/**
 * Remote provisioning steps as Pulumi resources: a dynamic provider over the project's own SSH layer
 * (provisioning/remote.ts, node-ssh, host keys always checked). Why not @pulumi/command's
 * remote.Command: its provider plugin (pulumi-resource-command) is a Go binary that no package
 * registry serves where only registries are reachable, so nothing could run it for real here; a
 * dynamic provider runs through pulumi-resource-pulumi-nodejs, which the @pulumi/pulumi npm package
 * ships, under every Pulumi engine (README: "Why a dynamic provider").
 *
 * - create: run the step; update (its triggers changed): run it again (the steps are idempotent);
 *   only how the node is reached changed: record it, run nothing; delete: run its undo command. A
 *   different machine (host or port) replaces the step, deleting on the old machine first.
 * - Every diff takes any input as possibly unknown (a preview of a replaced node) and any state as
 *   possibly written by an earlier release (provisioning/resource-diffs.ts).
 * - The provider's functions are serialized into the state with what they capture, so they capture
 *   nothing but small loaders: each call loads provisioning/remote.ts and resource-diffs.ts from
 *   the project (found from the engine's working directory) through tsx. The serialized text still
 *   differs between tsx and ts-node and across upgrades, so no resource may depend on it: the
 *   deploy key in particular keeps its key through any change of it. Secrets (a key, the secrets
 *   file's content) arrive only as inputs marked secret, and are not returned as outputs.
 */
import * as pulumi from "@pulumi/pulumi";
import type { Connection, StepArgs } from "../provisioning/remote";
import type { StepState } from "../provisioning/resource-diffs";

export interface RemoteStepArgs {
  /** How to reach the node over SSH (address, user, key: a secret Output). Required. */
  readonly connection: pulumi.Input<Connection>;
  /** The plan's node name, for messages and the step's state. Required. */
  readonly node: string;
  /** The step's id ("python-env"), for messages. Required. */
  readonly step: string;
  /** The command that does the step (idempotent: a second run changes nothing). Required. */
  readonly create: pulumi.Input<string>;
  /** Undo command on delete. Default: none (nothing is undone; AWS nodes are terminated instead). */
  readonly delete?: pulumi.Input<string>;
  /** Standard input of `create`; pass a secret Output for secrets. Default: none. */
  readonly stdin?: pulumi.Input<string>;
  /** Any change re-runs the step (hashes of its script, its inputs, its upstream steps). Required. */
  readonly triggers: pulumi.Input<pulumi.Input<string>[]>;
  /** File the step leaves to ask for a reboot. Default: none. */
  readonly rebootMarker?: string;
  /** SSH connection attempts before giving up. Default: 6. */
  readonly dialAttempts?: number;
}

type Inputs = StepArgs & { triggers: string[]; stepUrn?: string };

/**
 * A file of the project, found from the engine's working directory (the project, or a folder inside
 * it), loaded through tsx. A plain function: serialized with the provider, it captures nothing but
 * `require` and `process`, so the provider's text (kept in the state) stays the same while the
 * logic it loads (provisioning/remote.ts, provisioning/resource-diffs.ts) evolves.
 */
function load(rel: string): unknown {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const path = require("node:path") as typeof import("node:path");
  const fs = require("node:fs") as typeof import("node:fs");
  let dir = process.cwd();
  while (!fs.existsSync(path.join(dir, rel))) {
    const up = path.dirname(dir);
    if (up === dir)
      throw new Error(
        `${rel} not found above ${process.cwd()}: run Pulumi from the qwen-vl-deploy checkout`,
      );
    dir = up;
  }
  const file = path.join(dir, rel);
  return require("tsx/cjs/api").require(file, file);
  /* eslint-enable @typescript-eslint/no-require-imports */
}
const loadRemote = () => load("provisioning/remote.ts") as typeof import("../provisioning/remote");
const loadDiffs = () =>
  load("provisioning/resource-diffs.ts") as typeof import("../provisioning/resource-diffs");
const loadEngineLog = () => load("components/engine-log.ts") as typeof import("./engine-log");

/** The state a step keeps: what it ran and how it went, without the key or its standard input. */
function record(inputs: Inputs, r: { changed: boolean; seconds: number; tail: string }): StepState {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { privateKey, ...connection } = inputs.connection;
  return {
    connection,
    node: inputs.node,
    step: inputs.step,
    create: inputs.create,
    ...(inputs.delete ? { delete: inputs.delete } : {}),
    triggers: inputs.triggers,
    ...(inputs.rebootMarker ? { rebootMarker: inputs.rebootMarker } : {}),
    changed: r.changed,
    seconds: r.seconds,
    tail: r.tail,
  };
}

async function runAndRecord(inputs: Inputs): Promise<StepState> {
  const progress = loadEngineLog().progressLogger(inputs.stepUrn, `${inputs.node}/${inputs.step}`);
  try {
    const r = await loadRemote().runStep({ ...inputs, onProgress: progress.line });
    return record(inputs, r);
  } finally {
    await progress.close();
  }
}

const provider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: StepState, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
    return loadDiffs().stepDiff(olds, news);
  },

  async create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult> {
    return { id: `${inputs.node}/${inputs.step}`, outs: await runAndRecord(inputs) };
  },

  async update(_id: string, olds: StepState, news: Inputs): Promise<pulumi.dynamic.UpdateResult> {
    // Only how the node is reached (or the undo) changed: recorded, the step is not run again.
    if (!loadDiffs().stepNeedsRun(olds, news)) return { outs: record(news, olds) };
    return { outs: await runAndRecord(news) };
  },

  async delete(_id: string, olds: StepState): Promise<void> {
    if (!olds.delete) return;
    const connection = {
      ...olds.connection,
      hostKeys: [...loadRemote().targetHostKeys(olds.connection)],
    } as Connection;
    await loadRemote().undoStep({
      ...olds,
      delete: loadDiffs().storedUndoCommand(olds.delete),
      connection,
    });
  },
};

/** The module of this file's resource types. */
const MODULE = "qwen-vl-deploy";
/** The step's resource type as the engine knows it (pulumi.dynamic.Resource's naming). */
const REMOTE_STEP_TYPE = `pulumi-nodejs:dynamic/${MODULE}:RemoteStep`;

/**
 * A step's URN, as a plain promise: an Output of the parent's URN would make the step depend on its
 * parent component, which the engine expands to every child of it, the step itself included (a
 * wait that never ends). URNs are known in a preview too.
 */
function ownUrn(name: string, parent: pulumi.Resource | undefined): Promise<string> {
  const root = `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::`;
  if (!parent) return Promise.resolve(`${root}${REMOTE_STEP_TYPE}::${name}`);
  return new Promise((resolve) =>
    parent.urn.apply((u) => {
      const prefix = u.substring(0, u.lastIndexOf("::")) + "$";
      resolve(
        `${prefix.endsWith("::pulumi:pulumi:Stack$") ? root : prefix}${REMOTE_STEP_TYPE}::${name}`,
      );
      return u;
    }),
  );
}

/** One provisioning step on one node. */
export class RemoteStep extends pulumi.dynamic.Resource {
  /** Whether the step's last run changed something on the node (its RESULT line). */
  declare readonly changed: pulumi.Output<boolean>;
  declare readonly seconds: pulumi.Output<number>;
  /** The last lines of its output. */
  declare readonly tail: pulumi.Output<string>;

  constructor(name: string, args: RemoteStepArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        ...args,
        // Its own URN, so that its progress lines reach the engine's display beside it.
        stepUrn: ownUrn(name, opts?.parent),
        changed: undefined,
        seconds: undefined,
        tail: undefined,
      },
      { ...opts, deleteBeforeReplace: true },
      MODULE,
      "RemoteStep",
    );
  }
}

const deployKeyProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { comment: string }): Promise<pulumi.dynamic.CreateResult> {
    const remote = loadRemote();
    const key = remote.generateDeployKey(inputs.comment);
    // The key's own fingerprint: unique per key (the base64's first characters are the type's).
    return { id: remote.keyFingerprint(key.publicKey), outs: { ...inputs, ...key } };
  },
  async diff(_id: string, olds: { publicKey?: string; privateKey?: string }) {
    return loadDiffs().deployKeyDiff(olds);
  },
  async update(_id: string, olds: Record<string, unknown>, news: { comment: string }) {
    // Reached only for a state that lost its key (deployKeyDiff): make a new one.
    if (loadDiffs().deployKeyDiff(olds).changes)
      return { outs: { ...news, ...loadRemote().generateDeployKey(news.comment) } };
    return { outs: olds };
  },
};

/**
 * An SSH key pair made for the deployment (ed25519), so that `pulumi up` can reach AWS nodes without
 * asking for the user's own key: the public half goes to the nodes' cloud-init, the private half
 * stays in the state, encrypted (a secret output), as pulumi-tls's PrivateKey keeps it.
 */
export class DeployKey extends pulumi.dynamic.Resource {
  declare readonly publicKey: pulumi.Output<string>;
  declare readonly privateKey: pulumi.Output<string>;

  constructor(name: string, opts?: pulumi.CustomResourceOptions) {
    super(
      deployKeyProvider,
      name,
      { comment: `qwen-vl-deploy ${name}`, publicKey: undefined, privateKey: undefined },
      { ...opts, additionalSecretOutputs: ["privateKey"] },
      MODULE,
      "DeployKey",
    );
  }
}

const consoleHostKeyProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: {
    region: string;
    instanceId: string;
  }): Promise<pulumi.dynamic.CreateResult> {
    const hostKeys = await loadRemote().consoleHostKeys(inputs.region, inputs.instanceId);
    return { id: `${inputs.instanceId}-hostkey`, outs: { ...inputs, hostKeys } };
  },
  async diff(_id: string, olds: { instanceId?: string; hostKeys?: string[] }, news: object) {
    return loadDiffs().consoleHostKeyDiff(olds, news);
  },
  async update(
    _id: string,
    olds: { hostKeys?: string[]; hostKey?: string },
    news: { region: string; instanceId: string },
  ) {
    // The same instance, stored by the release that kept one key: the list, without a new read.
    return { outs: { ...news, hostKeys: olds.hostKeys ?? (olds.hostKey ? [olds.hostKey] : []) } };
  },
};

/** An EC2 instance's SSH host keys (every type), read from its console (cloud-init prints them). */
export class ConsoleHostKey extends pulumi.dynamic.Resource {
  declare readonly hostKeys: pulumi.Output<string[]>;

  constructor(
    name: string,
    args: { region: pulumi.Input<string>; instanceId: pulumi.Input<string> },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      consoleHostKeyProvider,
      name,
      { ...args, hostKeys: undefined },
      opts,
      MODULE,
      "ConsoleHostKey",
    );
  }
}
