/**
 * Remote provisioning steps as Pulumi resources: a dynamic provider over the project's own SSH layer
 * (provisioning/remote.ts, node-ssh, host keys always checked). Why not @pulumi/command's
 * remote.Command: its provider plugin (pulumi-resource-command) is a Go binary that no package
 * registry serves where only registries are reachable, so nothing could run it for real here; a
 * dynamic provider runs through pulumi-resource-pulumi-nodejs, which the @pulumi/pulumi npm package
 * ships, under every Pulumi engine (README: "Why a dynamic provider").
 *
 * - create: run the step; update (its triggers changed): run it again (the steps are idempotent);
 *   delete: run its undo command. A different machine (host or port) replaces the step, deleting
 *   on the old machine first.
 * - The provider's functions are serialized into the state with what they capture, so they capture
 *   nothing: each call loads provisioning/remote.ts from the project (found from the engine's
 *   working directory) through tsx. Secrets (a key, the secrets file's content) arrive only as
 *   inputs marked secret, and are not returned as outputs.
 */
import * as pulumi from "@pulumi/pulumi";
import type { Connection, StepArgs } from "../provisioning/remote";

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

/** The state a step keeps: what it ran and how it went, without the key or its standard input. */
interface StepState {
  readonly connection: Omit<Connection, "privateKey">;
  readonly node: string;
  readonly step: string;
  readonly create: string;
  readonly delete?: string;
  readonly triggers: string[];
  readonly rebootMarker?: string;
  readonly changed: boolean;
  readonly seconds: number;
  readonly tail: string;
}

type Inputs = StepArgs & { triggers: string[] };

/**
 * provisioning/remote.ts from the project, found from the engine's working directory (the project,
 * or a folder inside it), loaded through tsx. A plain function: serialized with the provider, it
 * captures nothing but `require` and `process`.
 */
function loadRemote(): typeof import("../provisioning/remote") {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const path = require("node:path") as typeof import("node:path");
  const fs = require("node:fs") as typeof import("node:fs");
  let dir = process.cwd();
  while (!fs.existsSync(path.join(dir, "provisioning", "remote.ts"))) {
    const up = path.dirname(dir);
    if (up === dir)
      throw new Error(
        `provisioning/remote.ts not found above ${process.cwd()}: run Pulumi from the qwen-vl-deploy checkout`,
      );
    dir = up;
  }
  const file = path.join(dir, "provisioning", "remote.ts");
  return require("tsx/cjs/api").require(file, file);
  /* eslint-enable @typescript-eslint/no-require-imports */
}

async function runAndRecord(inputs: Inputs): Promise<StepState> {
  const r = await loadRemote().runStep(inputs);
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

const provider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: StepState, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    if (
      olds.connection.host !== news.connection.host ||
      olds.connection.port !== news.connection.port
    )
      replaces.push("connection");
    const changes =
      replaces.length > 0 ||
      olds.create !== news.create ||
      (olds.delete ?? "") !== (news.delete ?? "") ||
      olds.connection.user !== news.connection.user ||
      olds.connection.hostKey !== news.connection.hostKey ||
      JSON.stringify(olds.triggers.filter((t) => !t.startsWith("rerun:"))) !==
        JSON.stringify(news.triggers.filter((t) => !t.startsWith("rerun:"))) ||
      // A re-run asked for (npm run pulumi -- up --rerun) runs the step again, once per token.
      news.triggers.some((t) => t.startsWith("rerun:") && !olds.triggers.includes(t));
    return { changes, replaces, deleteBeforeReplace: true };
  },

  async create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult> {
    return { id: `${inputs.node}/${inputs.step}`, outs: await runAndRecord(inputs) };
  },

  async update(_id: string, _olds: StepState, news: Inputs): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: await runAndRecord(news) };
  },

  async delete(_id: string, olds: StepState): Promise<void> {
    if (!olds.delete) return;
    await loadRemote().undoStep({ ...olds, connection: olds.connection as Connection });
  },
};

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
      { ...args, changed: undefined, seconds: undefined, tail: undefined },
      { ...opts, deleteBeforeReplace: true },
      "qwen-vl-deploy",
      "RemoteStep",
    );
  }
}

const deployKeyProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { comment: string }): Promise<pulumi.dynamic.CreateResult> {
    const key = loadRemote().generateDeployKey(inputs.comment);
    return { id: key.publicKey.split(" ")[1]!.slice(0, 16), outs: { ...inputs, ...key } };
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
      "qwen-vl-deploy",
      "DeployKey",
    );
  }
}

const consoleHostKeyProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: {
    region: string;
    instanceId: string;
  }): Promise<pulumi.dynamic.CreateResult> {
    const hostKey = await loadRemote().consoleHostKey(inputs.region, inputs.instanceId);
    return { id: `${inputs.instanceId}-hostkey`, outs: { ...inputs, hostKey } };
  },
  async diff(_id: string, olds: { instanceId: string }, news: { instanceId: string }) {
    const changed = olds.instanceId !== news.instanceId;
    return { changes: changed, replaces: changed ? ["instanceId"] : [] };
  },
};

/** An EC2 instance's SSH host key, read from its console (cloud-init prints it there). */
export class ConsoleHostKey extends pulumi.dynamic.Resource {
  declare readonly hostKey: pulumi.Output<string>;

  constructor(
    name: string,
    args: { region: pulumi.Input<string>; instanceId: pulumi.Input<string> },
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      consoleHostKeyProvider,
      name,
      { ...args, hostKey: undefined },
      opts,
      "qwen-vl-deploy",
      "ConsoleHostKey",
    );
  }
}
