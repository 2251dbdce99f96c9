/**
 * The Pulumi program (program.ts through index.ts) under Pulumi's official mocks: config in, plan,
 * machines and every node's provisioning steps out; a plan that cannot work refused before any
 * resource is registered; no secret in any command's text.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { readStackFile } from "../config/stack-file";
import { planStack } from "../plan";
import { STEPS } from "../provisioning/render";
import { installMocks, settle, value, type Recorder } from "./support/pulumi-mocks";

const API_KEY = "sk-qwenvltest0123456789abcdef";
const HF_TOKEN = "hf_qwenvltestTOKEN0123456789";

function useStack(
  stack: string,
  sections: Record<string, unknown>,
  secrets: Record<string, string> = {},
): Recorder {
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(sections)) config[`qwen-vl-deploy:${k}`] = JSON.stringify(v);
  for (const [k, v] of Object.entries(secrets)) config[`qwen-vl-deploy:${k}`] = v;
  pulumi.runtime.setAllConfig(
    config,
    Object.keys(secrets).map((k) => `qwen-vl-deploy:${k}`),
  );
  return installMocks(stack);
}

const resources = (rec: Recorder) =>
  rec.registrations.filter((r) => r.type !== "pulumi:pulumi:Stack");
const STEP_TYPE = "pulumi-nodejs:dynamic/qwen-vl-deploy:RemoteStep";
const SSH_FROM = { sshCidrs: ["198.51.100.7/32"] };

/** A hosts stack's SSH key and known_hosts, made up for the test (nothing connects under mocks). */
function hostsFiles(hosts: { address: string }[]): { key: string; knownHosts: string } {
  const dir = mkdtempSync(join(tmpdir(), "qvl-program-"));
  const key = join(dir, "id_ed25519");
  writeFileSync(key, "not used under mocks\n");
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(
    knownHosts,
    hosts.map((h) => `${h.address} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIhostkey`).join("\n") + "\n",
  );
  return { key, knownHosts };
}

describe("program.ts under pulumi.runtime.setMocks", () => {
  beforeEach(() => {
    vi.resetModules();
  });

  for (const stack of ["single-gpu", "multi-gpu", "large", "hosts"]) {
    it(`${stack}: every node gets the wait-for-host step, its bundle, the secrets file and every provisioning step; no secret in any command`, async () => {
      const sections = structuredClone(readStackFile(stack).sections) as Record<
        string,
        Record<string, unknown>
      >;
      const tokenFile = join(mkdtempSync(join(tmpdir(), "qvl-token-")), "hf");
      writeFileSync(tokenFile, `${HF_TOKEN}\n`);
      sections["secrets"] = { apiKey: "config:apiKey", hfToken: `file:${tokenFile}` };
      if (sections["target"]!["kind"] === "aws")
        sections["network"] = { ...(sections["network"] ?? {}), ...SSH_FROM };
      else {
        const { key, knownHosts } = hostsFiles(
          sections["target"]!["hosts"] as { address: string }[],
        );
        sections["target"] = {
          ...sections["target"],
          sshPrivateKeyPath: key,
          knownHostsPath: knownHosts,
        };
      }
      const rec = useStack(stack, sections, { apiKey: API_KEY });
      const program = await import("../index");
      expect(await value(program.readiness)).toBeDefined();
      await settle(rec);
      const plan = planStack(sections, { stack, secretKeys: new Set(["apiKey"]) });
      const steps = rec.registrations.filter((r) => r.type === STEP_TYPE);
      for (const n of plan.nodes) {
        const mine = steps.filter((s) => s.inputs["node"] === n.name).map((s) => s.inputs["step"]);
        expect([...mine].sort(), n.name).toEqual(
          ["host", "bundle", "secrets", ...STEPS.map((s) => s.id)].sort(),
        );
        expect(mine.length).toBeGreaterThanOrEqual(8);
      }
      // Secrets travel only as standard input of the secrets step, never in a command's text.
      for (const s of steps) {
        const text = JSON.stringify({ c: s.inputs["create"], d: s.inputs["delete"] ?? "" });
        expect(text).not.toContain(API_KEY);
        expect(text).not.toContain(HF_TOKEN);
        if (s.inputs["step"] !== "secrets")
          expect(JSON.stringify(s.inputs["stdin"] ?? "")).not.toContain(API_KEY);
      }
      const secretsStep = steps.find((s) => s.inputs["step"] === "secrets")!;
      const stdin = secretsStep.inputs["stdin"] as { value?: string } | string;
      expect(typeof stdin === "string" ? stdin : stdin.value).toBe(
        `VLLM_API_KEY='${API_KEY}'\nHF_TOKEN='${HF_TOKEN}'\n`,
      );
      // Machines that stay get every step undone on destroy; AWS nodes are terminated instead.
      const undo = steps.filter((s) => s.inputs["delete"]);
      expect(undo.length).toBe(plan.target === "hosts" ? steps.length - 1 : 0);
    });
  }

  it("multi-gpu: the cross-node order (Ray head before the worker, vLLM after every member's gate)", async () => {
    const sections = structuredClone(readStackFile("multi-gpu").sections) as Record<
      string,
      Record<string, unknown>
    >;
    sections["network"] = { ...(sections["network"] ?? {}), ...SSH_FROM };
    const rec = useStack("multi-gpu", sections);
    const program = await import("../index");
    expect(program.parallelism).toEqual({
      tensorParallelSize: 4,
      pipelineParallelSize: 2,
      dtype: "float16",
    });
    expect(program.vllmCommand.slice(0, 2)).toEqual(["vllm", "serve"]);
    expect(program.kvCacheTokens).toBe(planStack(sections).kvCacheTokens);
    expect(await value(program.endpoint)).toBe("http://localhost:8000");
    expect(((await value(program.nodes)) as { name: string }[]).map((n) => n.name)).toEqual([
      "head",
      "worker1",
    ]);
    await settle(rec);
    expect(resources(rec).filter((r) => r.type === "aws:ec2/instance:Instance")).toHaveLength(2);
    const steps = rec.registrations.filter((r) => r.type === STEP_TYPE);
    // The AWS connection: the instance's public address, the AMI's user, every console host key.
    const conn = steps.find((s) => s.name === "multi-gpu-worker1-ray")!.inputs["connection"];
    expect(conn).toMatchObject({
      host: "203.0.113.12",
      port: 22,
      user: "ubuntu",
      hostKeys: [
        "ssh-ed25519 AAAAhostkeyofmulti-gpu-worker1-hostkey",
        "ssh-rsa AAAArsahostkeyofmulti-gpu-worker1-hostkey",
      ],
    });
  });

  it("QWEN_VL_RERUN=<token> in pulumi up's environment (the ordinary CLI's too) re-runs every provisioning step once: their triggers carry the token", async () => {
    // The language host starts the program with the CLI's environment (pulumi-language-nodejs
    // execNodejs: env := os.Environ()), so the variable reaches program.ts under `pulumi up` as
    // it does under npm run pulumi -- up --rerun, which sets it in its own process.
    const sections = structuredClone(readStackFile("single-gpu").sections) as Record<
      string,
      Record<string, unknown>
    >;
    sections["network"] = { ...(sections["network"] ?? {}), ...SSH_FROM };
    const triggersWith = async (token: string | undefined) => {
      vi.resetModules();
      if (token === undefined) vi.stubEnv("QWEN_VL_RERUN", undefined);
      else vi.stubEnv("QWEN_VL_RERUN", token);
      const rec = useStack("single-gpu", sections);
      const program = await import("../index");
      await value(program.readiness);
      await settle(rec);
      vi.unstubAllEnvs();
      const steps = rec.registrations.filter((r) => r.type === STEP_TYPE);
      expect(steps.length).toBeGreaterThanOrEqual(8);
      return Object.fromEntries(
        steps.map((s) => [
          s.inputs["step"] as string,
          (s.inputs["triggers"] as string[]).filter((t) => t.startsWith("rerun:")),
        ]),
      );
    };
    // The connection, the bundle (content-addressed) and the secrets file are not steps to repeat.
    const once = Object.fromEntries(STEPS.map((st) => [st.id, ["rerun:1764676800"]]));
    expect(await triggersWith("1764676800")).toEqual({ host: [], bundle: [], ...once });
    const none = Object.fromEntries(STEPS.map((st) => [st.id, []]));
    expect(await triggersWith(undefined)).toEqual({ host: [], bundle: [], ...none });
  });

  it("refuses an AWS stack without SSH CIDRs before any resource, saying how to allow this machine", async () => {
    const rec = useStack("single-gpu", readStackFile("single-gpu").sections);
    await expect(import("../index")).rejects.toThrow(
      /network.sshCidrs is empty: pulumi up provisions the nodes over SSH[\s\S]*nothing was created[\s\S]*pulumi config set --path 'network.sshCidrs\[0\]'/,
    );
    await settle(rec);
    expect(resources(rec)).toEqual([]);
  });

  it("refuses a file: secret whose file is not there, in one line, before any resource (issue 21 item 13)", async () => {
    const sections = structuredClone(readStackFile("single-gpu").sections) as Record<
      string,
      Record<string, unknown>
    >;
    const missing = join(mkdtempSync(join(tmpdir(), "qvl-missing-")), "hf-token");
    sections["secrets"] = { hfToken: `file:${missing}` };
    sections["network"] = { ...(sections["network"] ?? {}), ...SSH_FROM };
    const rec = useStack("missing", sections);
    await expect(import("../index")).rejects.toThrow(
      new RegExp(
        `1 problem\\):\\n  - secrets.hfToken: "file:${missing.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}" — names .*which is not a readable file on this machine`,
      ),
    );
    await settle(rec);
    expect(resources(rec)).toEqual([]);
  });

  it("refuses a model that does not fit before registering any resource", async () => {
    const rec = useStack("tiny", {
      model: {
        id: "Qwen/Qwen2-VL-72B-Instruct",
        revision: "f400120e59a6196b024298b7d09fb517f742db7d",
      },
      target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarge" },
      vllm: { maxPixels: 1003520 },
      network: SSH_FROM,
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
      vllm: { maxPixels: 1003520 },
      network: { apiCidrs: ["0.0.0.0/0"] },
    });
    await expect(import("../index")).rejects.toThrow(
      /2 problems[\s\S]*model.revision[\s\S]*network.apiCidrs: \["0.0.0.0\/0"\] — 0.0.0.0\/0 covers 100 % of the public IPv4 space: that opens the API to the whole internet/,
    );
    await settle(rec);
    expect(resources(rec)).toEqual([]);
  });
});
