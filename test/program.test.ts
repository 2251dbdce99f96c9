/**
 * The Pulumi entry point under Pulumi's official mocks: config in, plan out, and a plan that does
 * not fit refused before any resource is registered.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { readStackFile } from "../config/stack-file";
import { planStack } from "../plan";

const registered: string[] = [];

function useStack(stack: string, sections: Record<string, unknown>) {
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(sections)) config[`qwen-vl-deploy:${k}`] = JSON.stringify(v);
  pulumi.runtime.setAllConfig(config, []);
  pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push(`${args.type}::${args.name}`);
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => {
        throw new Error(`unexpected invoke ${args.token}`);
      },
    },
    "qwen-vl-deploy",
    stack,
    false,
  );
}

describe("index.ts under pulumi.runtime.setMocks", () => {
  beforeEach(() => {
    registered.length = 0;
    vi.resetModules();
  });

  it("plans the stack from Pulumi config and exports the plan's numbers", async () => {
    const sections = readStackFile("multi-gpu").sections;
    useStack("multi-gpu", sections);
    const program = await import("../index");
    const expected = planStack(sections);
    expect(program.kvCacheTokens).toBe(expected.kvCacheTokens);
    expect(program.parallelism).toEqual({
      tensorParallelSize: 4,
      pipelineParallelSize: 2,
      dtype: "float16",
    });
    expect(program.vllmCommand.slice(0, 2)).toEqual(["vllm", "serve"]);
  });

  it("refuses a model that does not fit before registering any resource", async () => {
    useStack("tiny", {
      model: {
        id: "Qwen/Qwen2-VL-72B-Instruct",
        revision: "f400120e59a6196b024298b7d09fb517f742db7d",
      },
      target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarge" },
    });
    await expect(import("../index")).rejects.toThrow(
      /does not fit; nothing was created[\s\S]*use more GPUs/,
    );
    expect(registered.filter((r) => !r.startsWith("pulumi:pulumi:Stack"))).toEqual([]);
  });

  it("refuses an invalid config with every problem listed", async () => {
    useStack("bad", {
      model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "main" },
      target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarge" },
      network: { apiCidrs: ["0.0.0.0/0"] },
    });
    await expect(import("../index")).rejects.toThrow(
      /2 problems[\s\S]*model.revision[\s\S]*network.apiCidrs\[0\]/,
    );
  });
});
