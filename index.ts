// The Pulumi program: read config → plan → resources → outputs. Only wiring lives here.
import * as pulumi from "@pulumi/pulumi";
import { readPulumiConfig } from "./config/pulumi";
import { planStack } from "./plan";
import { planToText } from "./cli/render";

const raw = readPulumiConfig();
const plan = planStack(raw.sections, { stack: pulumi.getStack(), secretKeys: raw.secretKeys });
if (!plan.fits) {
  // Refuse before any resource exists: the numbers and the ways out are in the message.
  throw new Error(`The model does not fit; nothing was created.\n${planToText(plan)}`);
}
for (const warning of plan.warnings) pulumi.log.warn(warning);

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
