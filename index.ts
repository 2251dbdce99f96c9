// The Pulumi entry point for the ordinary CLI (`pulumi up --stack <tier>`): the program is one
// function (program.ts), which `npm run pulumi` also runs as an Automation API inline program.
// Its outputs (ProgramOutputs) are this module's exports: the stack's outputs.
import { qwenVlProgram } from "./program";

export const {
  model,
  parallelism,
  kvCacheTokens,
  maxConcurrency,
  costPerHourUsd,
  vllmCommand,
  planSummary,
  endpoint,
  tunnelCommand,
  prometheusUrl,
  nodes,
  readiness,
} = qwenVlProgram();
