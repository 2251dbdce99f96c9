/**
 * The Pulumi program, as one function: read config → plan → machines (AWS) or the configured hosts →
 * every node provisioned to serving → outputs. `index.ts` runs it for the ordinary Pulumi CLI;
 * `npm run pulumi` (engine/pulumi.ts) runs the same function as an Automation API inline program.
 * Only wiring lives here.
 */
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AwsDeployment } from "./components/aws-deployment";
import { readPulumiConfig } from "./config/pulumi";
import { secretSource } from "./config/schema";
import { planToText, verdictText } from "./plan/report";
import { NodeProvisioning, type ProvisionedNode } from "./components/node-provisioning";
import { PORTS } from "./catalogs/ports";
import { indexedLockText } from "./provisioning/python-lock";
import { planStack, type Plan } from "./plan";
import { sshTargets } from "./provisioning/hosts";

/** The environment variable each `secrets.*` reference fills in the nodes' secrets file. */
export const SECRET_ENV = { apiKey: "VLLM_API_KEY", hfToken: "HF_TOKEN" } as const;

export interface ProgramOutputs {
  readonly model: string;
  readonly parallelism: { tensorParallelSize: number; pipelineParallelSize: number; dtype: string };
  readonly kvCacheTokens: number;
  readonly maxConcurrency: number;
  readonly costPerHourUsd: number;
  readonly vllmCommand: string[];
  readonly planSummary: string;
  readonly endpoint: pulumi.Output<string>;
  readonly tunnelCommand: pulumi.Output<string>;
  readonly prometheusUrl: pulumi.Output<string>;
  readonly nodes: pulumi.Output<unknown[]>;
  /** The readiness gate's answer on each replica's head: proof that the endpoint serves. */
  readonly readiness: pulumi.Output<string[]>;
}

/** secrets.* references → secret Outputs, resolved where they live (never plain in the state). */
function resolveSecrets(
  plan: Plan,
  ssm: (name: string) => pulumi.Output<string>,
): Record<string, pulumi.Output<string>> {
  const cfg = new pulumi.Config();
  const out: Record<string, pulumi.Output<string>> = {};
  for (const [key, env] of Object.entries(SECRET_ENV)) {
    const ref = plan.secrets[key as keyof typeof SECRET_ENV];
    if (!ref) continue;
    const source = secretSource(ref)!;
    if (source.kind === "config") out[env] = cfg.requireSecret(source.name);
    else if (source.kind === "file")
      out[env] = pulumi.secret(readFileSync(source.name, "utf8").trim());
    else out[env] = pulumi.secret(ssm(source.name));
  }
  return out;
}

/**
 * A `file:` secret's file, readable here (where `pulumi up` runs): checked by the plan, before any
 * resource, instead of a raw ENOENT from resolveSecrets after resources are registered.
 */
function readableFile(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function qwenVlProgram(): ProgramOutputs {
  const stack = pulumi.getStack();
  const raw = readPulumiConfig();
  const plan = planStack(raw.sections, {
    stack,
    secretKeys: raw.secretKeys,
    fileExists: readableFile,
  });
  if (!plan.fits) {
    // Refuse before any resource exists: the numbers and the ways out are in the message.
    throw new Error(`The model does not fit; nothing was created.\n${planToText(plan)}`);
  }
  for (const warning of plan.warnings) pulumi.log.warn(warning);
  if (plan.errorBand.withinBand) pulumi.log.warn(verdictText(plan));
  // The lock the nodes will sync to, held to the index the plan read: refused before any machine.
  indexedLockText(plan.python.lock);
  const port = plan.apiPort;

  let provisioned: ProvisionedNode[];
  let endpoint: pulumi.Output<string>;
  let tunnelCommand: pulumi.Output<string>;
  let prometheusUrl: pulumi.Output<string>;
  let nodes: pulumi.Output<unknown[]>;
  let secrets: Record<string, pulumi.Output<string>>;
  if (plan.target === "aws") {
    if (plan.network.sshCidrs.length === 0)
      throw new Error(
        `network.sshCidrs is empty: pulumi up provisions the nodes over SSH from this machine, and the nodes accept SSH only from network.sshCidrs; nothing was created. Allow this machine's public address, e.g.\n  pulumi config set --path 'network.sshCidrs[0]' "$(curl -s https://checkip.amazonaws.com)/32" --stack ${stack}`,
      );
    const deployment = new AwsDeployment(stack, { plan });
    provisioned = deployment.provisioned;
    endpoint = deployment.endpoint;
    tunnelCommand = deployment.tunnelCommand;
    prometheusUrl = deployment.prometheusUrl;
    nodes = pulumi.output(
      deployment.nodes.map((n) => ({
        name: n.name,
        role: n.role,
        replica: n.replica,
        instanceId: n.instanceId,
        publicIp: n.publicIp,
        privateIp: n.privateIp,
        connect: n.connect,
      })),
    );
    secrets = resolveSecrets(
      plan,
      (name) =>
        aws.ssm.getParameterOutput(
          { name, withDecryption: true },
          { provider: deployment.provider },
        ).value,
    );
  } else {
    // Host keys from target.knownHostsPath, the key from target.sshPrivateKeyPath: every problem on
    // this machine is listed before anything is touched.
    const sshTarget = sshTargets(plan);
    provisioned = plan.nodes.map((n) => {
      const t = sshTarget(n.host!);
      return {
        name: n.name,
        clusterAddress: n.host!.privateAddress ?? n.host!.address,
        connection: {
          host: t.host,
          port: t.port,
          user: t.user,
          privateKeyPath: t.privateKeyPath!,
          hostKeys: t.hostKeys,
        },
      };
    });
    const head = plan.nodes.find((n) => n.role === "head")!.host!;
    endpoint = pulumi.output(`http://${head.address}:${port}`);
    tunnelCommand = pulumi.output(
      `ssh -N -L ${PORTS.prometheus}:127.0.0.1:${PORTS.prometheus} -p ${head.port} ${head.user}@${head.address}`,
    );
    prometheusUrl = pulumi.output(
      `http://localhost:${PORTS.prometheus} (Prometheus listens on the head's loopback: open tunnelCommand first)`,
    );
    nodes = pulumi.output(
      plan.nodes.map((n) => ({
        name: n.name,
        role: n.role,
        replica: n.replica,
        address: n.host!.address,
        connect: `ssh -p ${n.host!.port} ${n.host!.user}@${n.host!.address}`,
      })),
    );
    secrets = resolveSecrets(plan, () => {
      throw new Error("ssm: secrets need an AWS target (the plan refuses them for hosts)");
    });
  }

  const provisioning = new NodeProvisioning(stack, {
    plan,
    nodes: provisioned,
    secrets,
    // AWS nodes are terminated on destroy; machines that stay get every step undone.
    undoOnDestroy: plan.target === "hosts",
    hostDialAttempts: plan.target === "aws" ? 120 : 30,
    // QWEN_VL_RERUN=<token>: run every step again once, to repair drift. npm run pulumi -- up --rerun
    // sets it; with the ordinary CLI, QWEN_VL_RERUN=$(date +%s) pulumi up (the language host passes
    // the CLI's environment to the program). A new token re-runs; the same or none changes nothing.
    ...(process.env["QWEN_VL_RERUN"] ? { rerun: process.env["QWEN_VL_RERUN"] } : {}),
  });

  return {
    model: `${plan.model.id}@${plan.model.revision}`,
    parallelism: {
      tensorParallelSize: plan.tensorParallelSize,
      pipelineParallelSize: plan.pipelineParallelSize,
      dtype: plan.dtype,
    },
    kvCacheTokens: plan.kvCacheTokens,
    maxConcurrency: plan.maxConcurrency,
    costPerHourUsd: plan.costPerHourUsd,
    vllmCommand: ["vllm", ...plan.vllmArgs],
    planSummary: `${plan.model.id}: TP ${plan.tensorParallelSize} × PP ${plan.pipelineParallelSize} × ${plan.replicas} replica(s) on ${plan.gpusPerNode} × ${plan.gpu.name} per node, ${plan.kvCacheTokens} KV tokens (${plan.maxConcurrency}× ${plan.maxModelLen}), $${plan.costPerHourUsd}/h`,
    endpoint,
    tunnelCommand,
    prometheusUrl,
    nodes,
    readiness: provisioning.readiness,
  };
}
