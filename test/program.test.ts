/**
 * The Pulumi entry point under Pulumi's official mocks: config in, plan and resources out, and a
 * plan that cannot work refused before any resource is registered.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { readStackFile } from "../config/stack-file";
import { planStack } from "../plan";
import { installMocks, settle, value, type Recorder } from "./support/pulumi-mocks";

function useStack(stack: string, sections: Record<string, unknown>): Recorder {
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(sections)) config[`qwen-vl-deploy:${k}`] = JSON.stringify(v);
  pulumi.runtime.setAllConfig(config, []);
  return installMocks(stack);
}

const resources = (rec: Recorder) =>
  rec.registrations.filter((r) => r.type !== "pulumi:pulumi:Stack");

describe("index.ts under pulumi.runtime.setMocks", () => {
  beforeEach(() => {
    vi.resetModules();
  });

  it("plans the stack from Pulumi config, creates its resources and exports the plan's numbers", async () => {
    const sections = readStackFile("multi-gpu").sections;
    const rec = useStack("multi-gpu", sections);
    const program = await import("../index");
    const expected = planStack(sections);
    expect(program.kvCacheTokens).toBe(expected.kvCacheTokens);
    expect(program.parallelism).toEqual({
      tensorParallelSize: 4,
      pipelineParallelSize: 2,
      dtype: "float16",
    });
    expect(program.vllmCommand.slice(0, 2)).toEqual(["vllm", "serve"]);
    expect(await value(program.endpoint)).toBe("http://localhost:8000");
    expect(program.nodes!.map((n) => n.name)).toEqual(["head", "worker1"]);
    await settle(rec);
    expect(resources(rec).filter((r) => r.type === "aws:ec2/instance:Instance")).toHaveLength(2);
  });

  it("refuses a model that does not fit before registering any resource", async () => {
    const rec = useStack("tiny", {
      model: {
        id: "Qwen/Qwen2-VL-72B-Instruct",
        revision: "f400120e59a6196b024298b7d09fb517f742db7d",
      },
      target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarge" },
    });
    await expect(import("../index")).rejects.toThrow(
      /does not fit; nothing was created[\s\S]*use more GPUs/,
    );
    await settle(rec);
    expect(resources(rec)).toEqual([]);
  });

  it("refuses an unsafe config (the API open to the world without an API key) with every problem listed, before any resource", async () => {
    const rec = useStack("bad", {
      model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "main" },
      target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarge" },
      network: { apiCidrs: ["0.0.0.0/0"] },
    });
    await expect(import("../index")).rejects.toThrow(
      /2 problems[\s\S]*model.revision[\s\S]*network.apiCidrs\[0\]: "0.0.0.0\/0" — opens the API to the whole internet/,
    );
    await settle(rec);
    expect(resources(rec)).toEqual([]);
  });
});
