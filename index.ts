// The Pulumi entry point for the ordinary CLI (`pulumi up --stack <tier>`): the program is one
// function (program.ts), which `npm run pulumi` also runs as an Automation API inline program.
import { qwenVlProgram } from "./program";

const out = qwenVlProgram();
export const model = out.model;
export const parallelism = out.parallelism;
export const kvCacheTokens = out.kvCacheTokens;
export const maxConcurrency = out.maxConcurrency;
export const costPerHourUsd = out.costPerHourUsd;
export const vllmCommand = out.vllmCommand;
export const planSummary = out.planSummary;
export const endpoint = out.endpoint;
export const tunnelCommand = out.tunnelCommand;
export const prometheusUrl = out.prometheusUrl;
export const nodes = out.nodes;
export const readiness = out.readiness;
