import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RENDERED_FLAGS, VLLM_FLAG_TABLE } from "../plan/vllm-args";
import { planProblems, testLock } from "./support/plans";
import { ConfigError } from "../config/errors";
import { secretSource } from "../config/schema";
import { readStackFile, splitNamespace, stackNames } from "../config/stack-file";
import { planStack, type Plan } from "../plan";

const good = () => ({
  model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "a7a06a1cc11b4514ce9edcde0e3ca1d16e5ff2fc" },
  target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarge" },
  vllm: { maxModelLen: 8192, maxPixels: 1003520 },
});

function errorsOf(raw: Record<string, unknown>, secretKeys?: ReadonlySet<string>): ConfigError {
  try {
    planStack(raw, secretKeys ? { secretKeys } : {});
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("shipped stacks", () => {
  const expected: Record<string, Omit<Partial<Plan>, "gpu"> & { gpu: string }> = {
    "single-gpu": {
      tensorParallelSize: 1,
      pipelineParallelSize: 1,
      dtype: "bfloat16",
      instanceType: "g5.xlarge",
      gpu: "A10G",
    },
    "multi-gpu": {
      tensorParallelSize: 4,
      pipelineParallelSize: 2,
      dtype: "float16",
      instanceType: "g4dn.12xlarge",
      gpu: "T4",
    },
    large: {
      tensorParallelSize: 8,
      pipelineParallelSize: 1,
      dtype: "bfloat16",
      instanceType: "p5.48xlarge",
      gpu: "H100",
    },
    hosts: { tensorParallelSize: 1, pipelineParallelSize: 1, dtype: "bfloat16", gpu: "RTX-3090" },
    lab: { tensorParallelSize: 2, pipelineParallelSize: 3, dtype: "bfloat16", gpu: "A10G" },
    "lab-single": {
      tensorParallelSize: 1,
      pipelineParallelSize: 1,
      dtype: "bfloat16",
      gpu: "A10G",
    },
  };

  it("are the four tiers and the two lab stacks", () => {
    expect(stackNames()).toEqual(Object.keys(expected).sort());
  });

  for (const [name, want] of Object.entries(expected)) {
    it(`${name} plans and fits`, () => {
      const raw = readStackFile(name);
      const p = planStack(raw.sections, { stack: name, secretKeys: raw.secretKeys });
      expect(p.fits).toBe(true);
      expect(p.gpu.name).toBe(want.gpu);
      expect(p.tensorParallelSize).toBe(want.tensorParallelSize);
      expect(p.pipelineParallelSize).toBe(want.pipelineParallelSize);
      expect(p.dtype).toBe(want.dtype);
      if (want.instanceType) expect(p.instanceType).toBe(want.instanceType);
      // multi-gpu's half precision on T4s is said (test/input.test.ts); the others plan silently.
      expect(p.warnings.length).toBe(name === "multi-gpu" ? 1 : 0);
      expect(p.network.apiCidrs).toEqual([]);
    });
  }

  it("multi-gpu renders the seed's eight-card command in 0.11 syntax, with Ray across the two nodes", () => {
    const p = planStack(readStackFile("multi-gpu").sections);
    const a = p.vllmArgs.join(" ");
    expect(a).toContain("--dtype half");
    expect(a).toContain(
      "--tensor-parallel-size 4 --pipeline-parallel-size 2 --distributed-executor-backend ray",
    );
    expect(a).toContain(`--limit-mm-per-prompt {"image":4,"video":0}`);
    expect(a).toContain("--gpu-memory-utilization 0.7");
    expect(a).not.toContain("--worker-use-ray");
    expect(a).not.toContain("--swap-space");
    expect(p.nodes.map((n) => [n.name, n.role, n.stage])).toEqual([
      ["head", "head", 0],
      ["worker1", "worker", 1],
    ]);
    expect(p.costPerHourUsd).toBeCloseTo(2 * 3.912, 6);
  });
});

describe("broken configs", () => {
  it("list every problem at once, each with its path, the value and what is allowed", () => {
    const raw = {
      model: { id: "Qwen/Qwen2-VL-7B-Instrct", revision: "main" },
      target: { kind: "aws", region: "moon-1", instanceType: "g5.xlarge", nodez: 2 },
      vllm: { gpuMemoryUtilization: 1.5, blockSize: 12, maxModelLength: 4096 },
      network: { apiCidrs: ["0.0.0.0/0"] },
      secrets: { hfToken: "hf_abcdefghijklmnopqrstuvwxyz" },
      extra: true,
    };
    const e = errorsOf(raw);
    const paths = e.issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "extra",
        "model.id",
        "target.region",
        "target.nodez",
        "vllm.gpuMemoryUtilization",
        "vllm.blockSize",
        "vllm.maxModelLength",
        "secrets.hfToken",
      ]),
    );
    const byPath = Object.fromEntries(e.issues.map((i) => [i.path, i]));
    expect(byPath["target.nodez"]!.message).toMatch(/did you mean "nodes"/);
    expect(byPath["vllm.maxModelLength"]!.message).toMatch(/did you mean "maxModelLen"/);
    expect(byPath["vllm.gpuMemoryUtilization"]!.value).toBe(1.5);
    expect(byPath["vllm.gpuMemoryUtilization"]!.message).toMatch(/> 0 and ≤ 1/);
    expect(byPath["model.id"]!.message).toMatch(/Qwen\/Qwen2-VL-7B-Instruct/);
    expect(byPath["secrets.hfToken"]!.message).toMatch(/secret value itself/);
    expect(e.message).toMatch(/problems\):/);
    expect(e.message).not.toMatch(/at .*\.ts:\d+/); // no stack trace in the message
  });

  it("plan-level problems of a structurally valid config also come all at once", () => {
    const e = errorsOf({
      model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "main" },
      target: { kind: "aws", region: "us-east-1", instanceType: "g4dn.12xlarge" },
      vllm: {
        dtype: "bfloat16",
        tensorParallelSize: 3,
        version: "0.4.2",
        swapSpaceGiB: 4,
        extraArgs: ["--api-key=abc"],
      },
      network: { apiCidrs: ["0.0.0.0/0"], sshCidrs: ["0.0.0.0/0"] },
    });
    const msg = Object.fromEntries(e.issues.map((i) => [i.path, i.message]));
    expect(msg["model.revision"]).toMatch(/branch or tag name.*40-hex commit.*a7a06a1c/);
    expect(msg["vllm.dtype"]).toMatch(/T4 \(compute capability 7.5\) has no bf16/);
    expect(msg["vllm.tensorParallelSize"]).toMatch(/28 attention heads \(allowed: 1, 2, 4\)/);
    expect(msg["vllm.version"]).toMatch(/needs ≥ 0.6.1/);
    expect(msg["network.apiCidrs"]).toMatch(/allowPublicApi: true and secrets.apiKey/);
    expect(msg["network.sshCidrs"]).toMatch(/SSH open to the whole internet/);
    expect(msg["vllm.extraArgs[0]"]).toMatch(/secrets.apiKey/);
  });

  it("a public API is accepted only with allowPublicApi and an API key reference", () => {
    const raw = {
      ...good(),
      network: {
        apiCidrs: ["0.0.0.0/0"],
        allowPublicApi: true,
        certificateArn:
          "arn:aws:acm:us-east-1:123456789012:certificate/0b3f0a7e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
      },
      secrets: { apiKey: "config:apiKey" },
    };
    expect(planStack(raw, { secretKeys: new Set(["apiKey"]) }).fits).toBe(true);
    // The key must not cross the internet in clear text: HTTPS (a certificate) is required.
    const clear = errorsOf(
      { ...raw, network: { apiCidrs: ["0.0.0.0/0"], allowPublicApi: true } },
      new Set(["apiKey"]),
    );
    expect(clear.issues.map((i) => i.path)).toEqual(["network.certificateArn"]);
    expect(errorsOf({ ...raw, secrets: {} }).issues[0]!.path).toBe("network.apiCidrs");
    expect(() => planStack(raw, { secretKeys: new Set() })).toThrow(
      /pulumi config set --secret apiKey/,
    );
  });

  it("open to the world is the share of the internet the CIDRs cover together, not the string 0.0.0.0/0", () => {
    // Two /1s are the whole IPv4 internet (issue 11 item 6); a public /8 is too much; private is not.
    const e = errorsOf({
      ...good(),
      network: { apiCidrs: ["0.0.0.0/1", "128.0.0.0/1"], sshCidrs: ["3.0.0.0/8"] },
    });
    const msg = Object.fromEntries(e.issues.map((i) => [i.path, i.message]));
    expect(msg["network.apiCidrs"]).toMatch(
      /0.0.0.0\/1, 128.0.0.0\/1 together cover 100 % of the public IPv4 space/,
    );
    expect(msg["network.sshCidrs"]).toMatch(/3.0.0.0\/8 covers 0.45 % .*refused/);
    expect(
      planStack({
        ...good(),
        network: { apiCidrs: ["10.0.0.0/8"], sshCidrs: ["198.51.100.0/24"] },
        secrets: { apiKey: "config:apiKey" },
      }).fits,
    ).toBe(true);
  });

  it("refuses what old vLLM cannot start: too many full-size images for the context on 0.6.x", () => {
    const e = errorsOf({ ...good(), vllm: { version: "0.6.3", maxModelLen: 8192, imageLimit: 4 } });
    expect(e.issues[0]!.path).toBe("vllm.maxPixels");
    expect(e.issues[0]!.message).toMatch(
      /Qwen2-VL cannot process 4 images in a prompt.*maxPixels ≤ 1517824 \(1936 tokens per image, 256 left for text\)/,
    );
  });

  it("renders the old flag syntax for old versions", () => {
    const lock = testLock("0.6.3");
    const p = planStack(
      {
        ...good(),
        vllm: {
          version: "0.6.3",
          maxModelLen: 8192,
          imageLimit: 4,
          maxPixels: 1003520,
          swapSpaceGiB: 8,
        },
        provisioning: { pythonLock: lock.path },
      },
      { locks: lock.locks },
    );
    expect(p.vllmArgs.join(" ")).toContain("--limit-mm-per-prompt image=4,video=0");
    expect(p.vllmArgs.join(" ")).toContain("--swap-space 8");
    expect(p.engine).toBe("v0");
  });

  it("unset, the engine is the one vLLM falls back to: V0 where V1 does not support the settings (0.8–0.10)", () => {
    const engineOf = (
      version: string,
      instanceType: string,
      vllm: Record<string, unknown> = {},
    ) => {
      const lock = testLock(version);
      return planStack(
        {
          ...good(),
          target: { kind: "aws", region: "us-east-1", instanceType },
          vllm: { version, maxModelLen: 16640, ...vllm },
          provisioning: { pythonLock: lock.path },
        },
        { locks: lock.locks },
      ).engine;
    };
    expect(engineOf("0.10.1", "g4dn.xlarge")).toBe("v0"); // "Compute Capability < 8.0" (T4)
    expect(engineOf("0.10.2", "g4dn.xlarge")).toBe("v1");
    expect(engineOf("0.9.2", "g5.xlarge", { kvCacheDtype: "fp8" })).toBe("v0"); // A10G, no FA3
    expect(engineOf("0.9.2", "p5.48xlarge", { kvCacheDtype: "fp8", tensorParallelSize: 4 })).toBe(
      "v1",
    ); // H100
    expect(engineOf("0.9.2", "g5.xlarge")).toBe("v1");
  });

  it("vllm.engine: what VLLM_USE_V1 cannot choose is refused with the release and the way out", () => {
    const engineIssue = (version: string, engine: string, instanceType = "g5.xlarge") =>
      errorsOf({
        ...good(),
        target: { kind: "aws", region: "us-east-1", instanceType },
        vllm: { version, maxModelLen: 8192, engine },
      }).issues.find((i) => i.path === "vllm.engine");
    // vLLM 0.11.0 removed V0 (release notes).
    expect(engineIssue("0.11.0", "v0")!.message).toMatch(/no V0 engine.*pin vLLM ≤ 0.10.2/);
    // Up to 0.10.1 V1 needs compute capability 8.0 (a T4, g4dn, is 7.5): forced, vLLM refuses.
    for (const version of ["0.9.2", "0.10.1"])
      expect(engineIssue(version, "v1", "g4dn.xlarge")!.message).toMatch(
        /VLLM_USE_V1=1 is not supported with Compute Capability < 8.0.*pin vLLM ≥ 0.10.2/,
      );
    expect(engineIssue("0.10.2", "v1", "g4dn.xlarge")).toBeUndefined();
    // An fp8 KV cache before Hopper, and float32 up to 0.9.1.
    expect(
      errorsOf({
        ...good(),
        vllm: { version: "0.9.2", maxModelLen: 8192, engine: "v1", kvCacheDtype: "fp8" },
      }).issues.find((i) => i.path === "vllm.engine")!.message,
    ).toMatch(/not supported with --kv-cache-dtype/);
    expect(engineIssue("0.7.3", "v1")!.message).toMatch(/V1 engine from vLLM 0.8.0/);
    expect(
      errorsOf({ ...good(), vllm: { engine: "v2" } }).issues.find((i) => i.path === "vllm.engine")!
        .message,
    ).toMatch(/"v0", "v1"/);
  });

  it("a weights mirror is an http(s) URL or an S3 prefix, and is required by weightsSource: mirror", () => {
    expect(
      planStack({
        ...good(),
        provisioning: { weightsSource: "mirror", mirrorUrl: "s3://acme-models/qwen" },
      }).fits,
    ).toBe(true);
    const bad = errorsOf({
      ...good(),
      provisioning: { weightsSource: "mirror", mirrorUrl: "ftp://x/y" },
    });
    expect(bad.issues.map((i) => [i.path, i.message])).toEqual([
      ["provisioning.mirrorUrl", "must be an http(s):// URL or s3://bucket/prefix"],
    ]);
    expect(errorsOf({ ...good(), provisioning: { weightsSource: "mirror" } }).issues[0]!.path).toBe(
      "provisioning.mirrorUrl",
    );
  });

  it("hosts of one cluster must have the same GPUs", () => {
    const e = errorsOf({
      ...good(),
      target: {
        kind: "hosts",
        hosts: [
          { name: "a", address: "192.0.2.1", gpu: "RTX-2080-Ti", gpuCount: 4 },
          { name: "b", address: "192.0.2.2", gpu: "RTX-3090", gpuCount: 2 },
        ],
      },
    });
    expect(e.issues.map((i) => i.path)).toEqual([
      "target.hosts[1].gpu",
      "target.hosts[1].gpuCount",
    ]);
  });

  it("a model that does not fit is a plan with the numbers and the ways out, not a crash", () => {
    const p = planStack({
      ...good(),
      target: { kind: "aws", region: "us-east-1", instanceType: "g4dn.xlarge" },
      vllm: { maxPixels: 1003520 },
    });
    expect(p.fits).toBe(false);
    expect(p.waysOut[0]).toMatch(/budget − .* weights − .* reserved/);
    expect(p.waysOut.join("\n")).toMatch(/Qwen2-VL-7B-Instruct-AWQ/);
    expect(p.waysOut.join("\n")).toMatch(/2 node\(s\) of 1/);
    expect(p.waysOut.join("\n")).toMatch(
      /on g6.xlarge \(1 × L4, TP 1\) at \$0.80\/h: \d+ KV tokens/,
    );
  });

  it("the largest max model length offered as a way out does fit", () => {
    const raw = {
      ...good(),
      vllm: { maxModelLen: 32768, gpuMemoryUtilization: 0.8, maxPixels: 1003520 },
    };
    const p = planStack(raw);
    expect(p.fits).toBe(false);
    const way = p.waysOut.find((w) => w.startsWith("set vllm.maxModelLen ≤"))!;
    const len = Number(way.replace(/\D+/g, ""));
    const at = planStack({ ...raw, vllm: { ...raw.vllm, maxModelLen: len } });
    expect(at.fits).toBe(true);
    expect(planStack({ ...raw, vllm: { ...raw.vllm, maxModelLen: len + 16 } }).fits).toBe(false);
  });
});

describe("stack files", () => {
  it("keep Pulumi-encrypted values out of the sections and only note their keys", () => {
    const s = splitNamespace(
      {
        "qwen-vl-deploy:model": { id: "x" },
        "qwen-vl-deploy:apiKey": { secure: "v1:abc" },
        "aws:region": "us-east-1",
      },
      "qwen-vl-deploy",
    );
    expect(s.sections).toEqual({ model: { id: "x" } });
    expect([...s.secretKeys]).toEqual(["apiKey"]);
  });
});

describe("the refusals a user needs, all at once (issue 11 item 5)", () => {
  it("utilization vLLM's startup check fails, batched tokens below sequences, a port the plan uses", () => {
    const e = errorsOf({
      ...good(),
      vllm: {
        maxModelLen: 8192,
        maxPixels: 1003520,
        gpuMemoryUtilization: 1.0,
        maxNumBatchedTokens: 128,
        port: 9090,
      },
    });
    const msg = Object.fromEntries(e.issues.map((i) => [i.path, i.message]));
    // 22.19 GiB A10G − 0.45 GiB CUDA context: at most 0.97 of the card can be free at vLLM's check.
    expect(msg["vllm.gpuMemoryUtilization"]).toMatch(
      /1 × 22.19 GiB = 22.19 GiB.*Free memory on device.*allowed: ≤ 0.97 on A10G/,
    );
    expect(msg["vllm.maxNumBatchedTokens"]).toMatch(
      /max_num_batched_tokens \(128\) must be ≥ max_num_seqs \(256, vLLM's default here\)/,
    );
    expect(msg["vllm.port"]).toMatch(/is used by prometheus/);
    expect(
      errorsOf({ ...good(), vllm: { ...good().vllm, port: 12000 } }).issues[0]!.message,
    ).toMatch(/Ray's worker port range 10002–19999/);
    expect(errorsOf({ ...good(), vllm: { ...good().vllm, port: 80 } }).issues[0]).toMatchObject({
      path: "vllm.port",
      message: expect.stringMatching(/between 1024 and 65535/),
    });
    // 0.97 is the highest that starts on an A10G; an H100 allows 0.99.
    expect(
      planStack({ ...good(), vllm: { ...good().vllm, gpuMemoryUtilization: 0.97 } }).fits,
    ).toBe(true);
  });

  it("an unknown region, a zone of another region, a cut SSH key", () => {
    const e = errorsOf({
      ...good(),
      target: {
        kind: "aws",
        region: "us-east-7",
        instanceType: "g5.xlarge",
        sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEQtgmczwpmYmk0iuPudO5kd9aJ3 me@laptop",
      },
    });
    const msg = Object.fromEntries(e.issues.map((i) => [i.path, i.message]));
    expect(msg["target.region"]).toMatch(/is not an AWS region \(did you mean "us-east-1"\?\)/);
    expect(msg["target.sshPublicKey"]).toMatch(/cut or altered|wrong length/);
    const zone = errorsOf({
      ...good(),
      target: {
        kind: "aws",
        region: "us-east-1",
        instanceType: "g5.xlarge",
        availabilityZone: "us-west-2a",
      },
    });
    expect(zone.issues).toEqual([
      expect.objectContaining({
        path: "target.availabilityZone",
        message: expect.stringMatching(/not a zone of target.region us-east-1/),
      }),
    ]);
    expect(
      errorsOf({ ...good(), target: { ...good().target, sshPublicKey: "AAAAC3Nza... me@laptop" } })
        .issues[0]!.message,
    ).toMatch(/must be an OpenSSH public key line/);
  });

  it("the model revision error is listed with the errors of other sections", () => {
    const e = errorsOf({
      model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "main" },
      target: { kind: "aws", region: "us-east-1", instanceType: "g5.xlarg" },
    });
    expect(e.issues.map((i) => i.path).sort()).toEqual(["model.revision", "target.instanceType"]);
  });

  it("a misspelt namespace or a key outside config: is an error, not a silently dropped section", () => {
    expect(() =>
      splitNamespace(
        { "qwen-vl-deplyo:vllm": { maxModelLen: 1 }, "aws:region": "us-east-1" },
        "qwen-vl-deploy",
      ),
    ).toThrow(
      /config.qwen-vl-deplyo:vllm.*unknown namespace "qwen-vl-deplyo" \(did you mean "qwen-vl-deploy:vllm"\?\)/,
    );
    expect(() => splitNamespace({ vllm: {} }, "qwen-vl-deploy")).toThrow(
      /has no namespace; write "qwen-vl-deploy:vllm"/,
    );
    const root = mkdtempSync(join(tmpdir(), "stack-"));
    mkdirSync(join(root, "stacks"));
    writeFileSync(join(root, "Pulumi.yaml"), "name: qwen-vl-deploy\n");
    writeFileSync(
      join(root, "stacks", "Pulumi.x.yaml"),
      "config:\n  qwen-vl-deploy:model: {}\nconfg:\n  qwen-vl-deploy:vllm: {}\n",
    );
    expect(() => readStackFile("x", root)).toThrow(
      /confg.*not a stack file key.*did you mean "config"/,
    );
    rmSync(root, { recursive: true });
  });
});

describe("the vLLM flag table", () => {
  it("every flag the renderer writes is a row of the table extraArgs is checked against, and each renders from its setting", () => {
    const p = planStack({
      ...good(),
      target: { kind: "aws", region: "us-east-1", instanceType: "g5.12xlarge", nodes: 2 },
      vllm: {
        ...good().vllm,
        tensorParallelSize: 4,
        pipelineParallelSize: 2,
        enforceEager: true,
        maxNumBatchedTokens: 8192,
        maxNumSeqs: 64,
        blockSize: 32,
        kvCacheDtype: "fp8",
        minPixels: 3136,
        disableCustomAllReduce: true,
      },
    });
    const flags = p.vllmArgs.filter((x) => x.startsWith("--"));
    expect(flags.length).toBeGreaterThan(15);
    for (const f of flags) expect(Object.keys(RENDERED_FLAGS), f).toContain(f);
    // The table's order is the command line's.
    const order = VLLM_FLAG_TABLE.map((r) => r.flag);
    expect([...flags].sort((a, b) => order.indexOf(a) - order.indexOf(b))).toEqual(flags);
    expect(p.vllmArgs.join(" ")).toContain("--block-size 32 --kv-cache-dtype fp8");
  });
});

describe("extra vLLM flags (issue 11 item 5): the pinned release's own flags, no alias around the guard", () => {
  const withArgs = (extraArgs: string[], version = "0.31.0") => ({
    ...good(),
    vllm: { ...good().vllm, version, extraArgs },
  });
  const messages = planProblems;

  it("short aliases are resolved before the duplicate-flag guard", () => {
    expect(messages(withArgs(["-tp", "2", "-q", "awq"]))).toEqual([
      "vllm.extraArgs[0]: -tp (--tensor-parallel-size) is rendered from vllm.tensorParallelSize; set that instead",
      "vllm.extraArgs[2]: -q (--quantization) is rendered from vllm.quantization; set that instead",
    ]);
    expect(messages(withArgs(["-x"]))[0]).toMatch(/-x is not one of vLLM's short aliases/);
  });

  it("a flag the pinned release lacks, or no release has, is refused; its own flags pass", () => {
    // --disable-log-requests left with 0.17.0 (vLLM's sdists, catalogs/vllm-flags.ts).
    expect(messages(withArgs(["--disable-log-requests"]))).toEqual([
      "vllm.extraArgs[0]: --disable-log-requests is not a flag of vLLM 0.31.0; it exists in 0.6.0–0.16.0",
    ]);
    expect(messages(withArgs(["--enable-prefix-cachng"]))[0]).toMatch(
      /is not a flag of any vLLM release \(did you mean --enable-prefix-caching\?\)/,
    );
    expect(messages(withArgs(["--enable-prefix-caching", "--max-logprobs=5"]))).toEqual([]);
    expect(messages(withArgs(["--kv-cache-memory-bytes", "1G"], "0.10.1"))[0]).toMatch(
      /--kv-cache-memory-bytes is not a flag of vLLM 0.10.1; it exists in 0.10.2 on/,
    );
  });
});

describe("cost label (issue 11 item 8)", () => {
  it("spot disabled with a max price is on-demand, at the on-demand price", () => {
    const off = planStack({
      ...good(),
      target: { ...good().target, spot: { enabled: false, maxPriceUsdPerHour: 0.5 } },
    });
    expect(off.costNote).toMatch(/on-demand/);
    expect(off.costPerHourUsd).toBeGreaterThan(0.5);
    const on = planStack({
      ...good(),
      target: { ...good().target, spot: { enabled: true, maxPriceUsdPerHour: 0.5 } },
    });
    expect(on.costPerHourUsd).toBe(0.5);
    expect(on.costNote).toMatch(/spot, at most the configured max price/);
  });
});

describe("secret references: one reading for every consumer (program, role, checks, endpoint, lab)", () => {
  it("reads config:, ssm: and file: references into their source, and nothing else", () => {
    expect(secretSource("config:hfToken")).toEqual({ kind: "config", name: "hfToken" });
    expect(secretSource("ssm:/qwen/hf-token")).toEqual({ kind: "ssm", name: "/qwen/hf-token" });
    expect(secretSource("file:/run/keys/api")).toEqual({ kind: "file", name: "/run/keys/api" });
    for (const other of ["hf_abcdefghijkl", "env:X", "", undefined, 42])
      expect(secretSource(other), String(other)).toBeUndefined();
  });
});
