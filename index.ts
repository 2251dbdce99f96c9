// The Pulumi program: read config → plan → resources → outputs. Only wiring lives here.
import * as pulumi from "@pulumi/pulumi";
import { planToText } from "./cli/render";
import { AwsDeployment } from "./components/aws-deployment";
import { readPulumiConfig } from "./config/pulumi";
import { planStack } from "./plan";

const raw = readPulumiConfig();
const plan = planStack(raw.sections, { stack: pulumi.getStack(), secretKeys: raw.secretKeys });
if (!plan.fits) {
  // Refuse before any resource exists: the numbers and the ways out are in the message.
  throw new Error(`The model does not fit; nothing was created.\n${planToText(plan)}`);
}
for (const warning of plan.warnings) pulumi.log.warn(warning);

const aws = plan.target === "aws" ? new AwsDeployment(pulumi.getStack(), { plan }) : undefined;

export const model = `${plan.model.id}@${plan.model.revision}`;
export const parallelism = {
  tensorParallelSize: plan.tensorParallelSize,
  pipelineParallelSize: plan.pipelineParallelSize,
  dtype: plan.dtype,
};
export const kvCacheTokens = plan.kvCacheTokens;
export const maxConcurrency = plan.maxConcurrency;
export const costPerHourUsd = plan.costPerHourUsd;
export const vllmCommand = ["vllm", ...plan.vllmArgs];
export const endpoint = aws?.endpoint;
export const tunnelCommand = aws?.tunnelCommand;
export const prometheusUrl = aws?.prometheusUrl;
export const nodes = aws?.nodes.map((n) => ({
  name: n.name,
  role: n.role,
  replica: n.replica,
  instanceId: n.instanceId,
  publicIp: n.publicIp,
  privateIp: n.privateIp,
  connect: n.connect,
}));
export const planSummary = `${plan.model.id}: TP ${plan.tensorParallelSize} × PP ${plan.pipelineParallelSize} × ${plan.replicas} replica(s) on ${plan.gpusPerNode} × ${plan.gpu.name} per node, ${plan.kvCacheTokens} KV tokens (${plan.maxConcurrency}× ${plan.maxModelLen}), $${plan.costPerHourUsd}/h`;
