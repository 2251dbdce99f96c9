import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fitCommand } from "../cli/fit";
import { QWEN3_VL_VISION_CONFIG } from "./support/plans";
import { QWEN25_VL_3B_AWQ_CONFIG } from "./support/hf-configs";
import { planCommand } from "../cli/plan";
import { planReply } from "../cli/main";
import { planMemory, planStack, previewStack } from "../plan";
import { VL_CASES, VL_LIMITS } from "./support/vl-startup-logs";
import { ERROR_BANDS, accuracyClass } from "../plan/accuracy";
import { ConfigError } from "../config/errors";
import { VLLM_RELEASES, vllmAtLeast } from "../catalogs/vllm";
import { stackNames } from "../config/stack-file";
import { runStep, StepFailed } from "../provisioning/remote";

const ROOT = join(__dirname, "..");

/** Runs a command the way `npm run` does, as its own process: exit code, stdout, stderr. */
function run(script: string, args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const REQUIRED_JSON_KEYS = [
  "fits",
  "kvCacheTokens",
  "maxConcurrency",
  "tensorParallelSize",
  "pipelineParallelSize",
  "dtype",
  "perGpu",
  "vllmArgs",
  "costPerHourUsd",
];

describe("plan", () => {
  for (const stack of stackNames()) {
    it(`--stack ${stack} --json carries the documented fields`, () => {
      const { code, output } = planCommand(["--stack", stack, "--json"]);
      expect(code).toBe(0);
      const j = JSON.parse(output) as Record<string, unknown>;
      for (const k of REQUIRED_JSON_KEYS) expect(j).toHaveProperty(k);
      expect(Object.keys(j["perGpu"] as object).sort()).toEqual([
        "capacityGiB",
        "kvCacheGiB",
        "reservedGiB",
        "weightsGiB",
      ]);
      expect(Array.isArray(j["vllmArgs"])).toBe(true);
      expect((j["vllmArgs"] as string[])[0]).toBe("serve");
    });
  }

  it("prints a readable plan: nodes, a memory bar per GPU, the command line, ports, cost", () => {
    const { output } = planCommand(["--stack", "multi-gpu"]);
    expect(output).toMatch(/Nodes\n\s+head .*\n\s+worker1 /);
    expect(output).toMatch(/stage 0 \[█+▓+▒+░+\]/);
    expect(output).toMatch(/stage 1 \[/);
    expect(output).toMatch(/vllm serve .*--tensor-parallel-size 4/);
    expect(output).toMatch(/Ports +8000 vllm \(api\)/);
    expect(output).toMatch(/Cost +\$7\.824\/hour/);
    expect(output).toMatch(/Verdict +FITS/);
  });

  it("as a process: a bad stack name exits 2 with a clear message and no stack trace", () => {
    const r = run("cli/plan.ts", ["--stack", "nope"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /no stacks\/Pulumi\.nope\.yaml; shipped stacks: hosts, lab, lab-single, large, multi-gpu, single-gpu/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("a stack pinned to a release without a lock is planned, the missing lock listed, and cannot deploy", () => {
    const raw = {
      model: { id: "Qwen/Qwen2-VL-7B-Instruct", revision: "a".repeat(40) },
      target: { kind: "aws", region: "us-east-1", instanceType: "g6.xlarge" },
      vllm: { version: "0.9.2", maxModelLen: 8192, maxPixels: 1003520 },
    };
    const preview = previewStack(raw, { stack: "unlocked" });
    expect(preview.plan.fits).toBe(true);
    expect(preview.plan.kvCacheTokens).toBeGreaterThan(8192);
    expect(preview.plan.python).toBeUndefined();
    expect(preview.deployable).toBe(false);
    expect(preview.problems.map((i) => [i.value, i.message.slice(0, 56)])).toEqual([
      ["locks/vllm-0.9.2.txt", 'no lock file there: make it with "npm run lock -- 0.9.2"'],
    ]);
    const text = planReply(preview, false, "deployable");
    expect(text.code).toBe(1);
    expect(text.output).toMatch(/Verdict +FITS\n/);
    expect(text.output).toMatch(
      /Deploy +not yet: 1 problem\n +- provisioning\.pythonLock \(default: locks\/vllm-<vllm\.version>\.txt\): "locks\/vllm-0\.9\.2\.txt" — no lock file there/,
    );
    expect(text.output).not.toMatch(/\n {2}Python /);
    const json = JSON.parse(planReply(preview, true, "deployable").output);
    expect([json.fits, json.deployable, json.python, json.problems.length]).toEqual([
      true,
      false,
      null,
      1,
    ]);
    // pulumi up plans with planStack: the missing lock stops it before any resource exists.
    expect(() => planStack(raw)).toThrow(ConfigError);
    expect(() => planStack(raw)).toThrow(/locks\/vllm-0\.9\.2\.txt" — no lock file there/);
    // A locked release deploys: nothing listed.
    const locked = previewStack({ ...raw, vllm: { ...raw.vllm, version: "0.31.0" } });
    expect([locked.deployable, locked.problems.length]).toEqual([true, 0]);
  });

  it("as a process: a shipped stack exits 0 and prints JSON", () => {
    const r = run("cli/plan.ts", ["--stack", "single-gpu", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).fits).toBe(true);
  });
});

/** `fit` with a command line written as one string (its words have no spaces). */
const fit = (line: string) => fitCommand(line.split(" "));

describe("fit", () => {
  const dir = mkdtempSync(join(tmpdir(), "fit-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("answers for catalog models and GPUs", () => {
    const { code, output } = fit(
      "--model Qwen/Qwen2-VL-72B-Instruct-AWQ --gpu A100-80GB --gpus-per-node 4 --nodes 1 --max-model-len 16384 --max-pixels 1003520 --json",
    );
    const j = JSON.parse(output);
    expect(code).toBe(0);
    expect(j.fits).toBe(true);
    expect(j.tensorParallelSize).toBe(4);
    expect(j.dtype).toBe("float16");
  });

  it("takes a startup log's settings as flags and plans what the calibration case plans (C21, C22)", () => {
    // The 30B-A3B at TP 4 on RTX 3090s (vLLM 0.11.0, both limits at vLLM's 999) and Qwen2.5-VL-7B on
    // an RTX 4090 (0.27.1, one image, 999 videos): the numbers test/plan-calibration-vl scores.
    const byId = (id: string) => VL_CASES.find((c) => c.id === id)!;
    const moe = JSON.parse(
      fit(
        "--model Qwen/Qwen3-VL-30B-A3B-Instruct --gpu RTX-3090 --gpus-per-node 4 --nodes 1 --max-model-len 65536 --vllm-version 0.11.0 --image-limit 999 --video-limit 999 --json",
      ).output,
    );
    expect(moe.kvCacheTokens).toBe(planMemory(byId("C21").setup).kvCacheTokens);
    const dense = JSON.parse(
      fit(
        "--model Qwen/Qwen2.5-VL-7B-Instruct --gpu-memory-gib 23.99 --compute-capability 8.9 --max-model-len 8192 --vllm-version 0.27.1 --image-limit 1 --video-limit 999 --json",
      ).output,
    );
    expect(dense.kvCacheTokens).toBe(planMemory(byId("C22").setup).kvCacheTokens);
    // And so within the class's error band of what vLLM logged (100,752 and 62,736 tokens).
    for (const [id, j] of [
      ["C21", moe],
      ["C22", dense],
    ] as const) {
      const c = byId(id);
      const band = ERROR_BANDS[accuracyClass(c.setup.model)].error;
      expect(Math.abs(j.kvCacheTokens / c.reportedTokens! - 1), id).toBeLessThanOrEqual(band);
    }
    // A V0 run (VLLM_USE_V1=0 on 0.8.4, C09): --engine v0.
    const v0 = JSON.parse(
      fit(
        "--model Qwen/Qwen2.5-VL-7B-Instruct --gpu RTX-3090 --max-model-len 8192 --vllm-version 0.8.4 --image-limit 1 --video-limit 1 --engine v0 --json",
      ).output,
    );
    expect(v0.engine).toBe("v0");
    expect(v0.kvCacheTokens).toBe(
      planMemory(VL_LIMITS.find((c) => c.id === "C09")!.setup).kvCacheTokens,
    );
    // Ways out keep the engine asked for: no T4 (compute 7.5) for V1 at 0.9.2, which vLLM refuses.
    const waysOut = (engine: string) =>
      fit(
        `--model Qwen/Qwen2.5-VL-7B-Instruct --instance-type g5.xlarge --max-model-len 128000 --vllm-version 0.9.2 --max-pixels 1003520${engine}`,
      ).output;
    expect(waysOut("")).toMatch(/on g4dn\.12xlarge \(4 × T4/);
    expect(waysOut(" --engine v1")).not.toMatch(/g4dn/);
    // The batch sizes and the KV cache's dtype are the log's too.
    const given = JSON.parse(
      fit(
        "--model Qwen/Qwen2.5-VL-7B-Instruct --gpu L4 --max-model-len 8192 --max-num-seqs 8 --max-num-batched-tokens 4096 --kv-cache-dtype fp8 --json",
      ).output,
    );
    expect(given.profile).toMatchObject({ maxNumSeqs: 8, maxNumBatchedTokens: 4096 });
    expect(given.stages[0].kvBytesPerToken).toBe(28 * 4 * 128 * 2);
    expect(() => fit("--model Qwen/Qwen2.5-VL-7B-Instruct --gpu L4 --video-limit 1000")).toThrow(
      /--video-limit: 1000 — /,
    );
  });

  it("answers for a release without a lock file: a memory verdict, and the lock a deployment needs", () => {
    const line =
      "--model Qwen/Qwen2.5-VL-7B-Instruct --gpu L4 --max-model-len 8192 --max-pixels 1003520";
    const { code, output } = fit(`${line} --vllm-version 0.9.2 --json`);
    expect(code).toBe(0);
    const j = JSON.parse(output);
    expect([j.fits, j.deployable, j.vllmVersion, j.engine]).toEqual([true, false, "0.9.2", "v1"]);
    expect(j.kvCacheTokens).toBeGreaterThan(8192);
    expect(j.problems).toHaveLength(1);
    expect(j.problems[0].value).toBe("locks/vllm-0.9.2.txt");
    expect(j.problems[0].message).toMatch(
      /^no lock file there: make it with "npm run lock -- 0\.9\.2"/,
    );
    // The memory plan is the same whether or not the release is locked (0.9.1 has no lock either).
    const other = JSON.parse(fit(`${line} --vllm-version 0.9.1 --json`).output);
    expect(other.problems[0].value).toBe("locks/vllm-0.9.1.txt");
    const locked = JSON.parse(fit(`${line} --vllm-version 0.31.0 --json`).output);
    expect([locked.deployable, locked.problems]).toEqual([true, []]);
    expect(locked.python.lock).toBe("locks/vllm-0.31.0.txt");
    // An unlocked release that does not fit still says so, exit 1.
    const tight = fit(
      "--model Qwen/Qwen2-VL-72B-Instruct --gpu A10G --gpus-per-node 1 --vllm-version 0.9.2 --json",
    );
    expect(tight.code).toBe(1);
    expect(JSON.parse(tight.output).fits).toBe(false);
  });

  it("answers the memory question for every release in the catalog that serves the model", () => {
    const releases = VLLM_RELEASES.map(([v]) => v).filter((v) => vllmAtLeast(v, "0.7.2"));
    expect(releases.length).toBeGreaterThan(50);
    const unlocked = releases.filter((v) => {
      const j = JSON.parse(
        fit(
          `--model Qwen/Qwen2.5-VL-7B-Instruct --gpu L4 --max-model-len 8192 --max-pixels 1003520 --vllm-version ${v} --json`,
        ).output,
      );
      expect(j.kvCacheTokens, v).toBeGreaterThan(0);
      expect(j.deployable, v).toBe(j.problems.length === 0);
      return j.problems.length > 0;
    });
    expect(releases.filter((v) => !unlocked.includes(v))).toEqual([
      "0.11.0",
      "0.19.1",
      "0.31.0",
      "0.33.0",
    ]);
  });

  it("exits 1 with ways out when the model does not fit", () => {
    const { code, output } = fit(
      "--model Qwen/Qwen2-VL-72B-Instruct --gpu A10G --gpus-per-node 1 --json",
    );
    expect(code).toBe(1);
    const j = JSON.parse(output);
    expect(j.fits).toBe(false);
    expect(j.waysOut.length).toBeGreaterThan(1);
  });

  it("plans a Hugging Face config.json outside the catalog, the same as the catalog entry it copies", () => {
    const cfg = {
      architectures: ["Qwen2VLForConditionalGeneration"],
      hidden_size: 3584,
      intermediate_size: 18944,
      num_attention_heads: 28,
      num_hidden_layers: 28,
      num_key_value_heads: 4,
      vocab_size: 152064,
      max_position_embeddings: 32768,
      torch_dtype: "bfloat16",
      tie_word_embeddings: false,
      rope_scaling: { type: "mrope", mrope_section: [16, 24, 24] },
      vision_config: {
        depth: 32,
        embed_dim: 1280,
        mlp_ratio: 4,
        num_heads: 16,
        in_chans: 3,
        hidden_size: 3584,
        patch_size: 14,
        spatial_merge_size: 2,
        spatial_patch_size: 14,
        temporal_patch_size: 2,
      },
    };
    const path = join(dir, "config.json");
    writeFileSync(path, JSON.stringify(cfg));
    const common = ["--gpu", "L40S", "--max-pixels", "1003520", "--json"];
    const custom = JSON.parse(fitCommand(["--model-config", path, ...common]).output);
    const catalog = JSON.parse(
      fitCommand(["--model", "Qwen/Qwen2-VL-7B-Instruct", ...common]).output,
    );
    expect(custom.kvCacheTokens).toBe(catalog.kvCacheTokens);
    expect(custom.perGpu).toEqual(catalog.perGpu);
  });

  it("plans the official Qwen2.5-VL-3B-Instruct-AWQ config.json, saying which fields took transformers' defaults", () => {
    const named = join(dir, "Qwen2.5-VL-3B-Instruct-AWQ");
    mkdirSync(named, { recursive: true });
    const path = join(named, "config.json");
    writeFileSync(path, JSON.stringify(QWEN25_VL_3B_AWQ_CONFIG));
    const common = ["--gpu", "L4", "--max-model-len", "8192", "--max-pixels", "1003520"];
    const j = JSON.parse(fitCommand(["--model-config", path, ...common, "--json"]).output);
    const catalog = JSON.parse(
      fitCommand(["--model", "Qwen/Qwen2.5-VL-3B-Instruct-AWQ", ...common, "--json"]).output,
    );
    expect(j.kvCacheTokens).toBe(catalog.kvCacheTokens);
    expect(j.model.defaulted).toHaveLength(6);
    expect(j.model.defaulted[0]).toEqual({
      field: "vision_config.depth",
      value: 32,
      source: "Qwen2_5_VLVisionConfig",
    });
    expect(catalog.model.defaulted).toBeUndefined();
    const text = fitCommand(["--model-config", path, ...common]).output;
    expect(text).toMatch(
      /\n {2}Defaulted +config\.json omits 6 field\(s\), filled as transformers does: vision_config\.depth = 32 \(Qwen2_5_VLVisionConfig\), vision_config\.intermediate_size = 3420 /,
    );
  });

  it("takes a GPU outside the catalog by its memory, and a weight size that overrides the derived one", () => {
    const base = [
      "--model",
      "Qwen/Qwen2-VL-7B-Instruct",
      "--gpu-memory-gib",
      "32",
      "--max-pixels",
      "1003520",
      "--json",
    ];
    const a = JSON.parse(fitCommand(base).output);
    expect(a.perGpu.capacityGiB).toBe(32);
    expect(a.fits).toBe(true);
    const heavier = JSON.parse(fitCommand([...base, "--weights-gib", "20"]).output);
    expect(heavier.perGpu.weightsGiB).toBeCloseTo(20, 1);
    expect(heavier.kvCacheTokens).toBeLessThan(a.kvCacheTokens);
  });

  it("issue 11 item 8: vLLM's default context, the flags the user typed, a readable name, NaN named", () => {
    // No --max-model-len: vLLM's default, the model's max_position_embeddings (32768 for Qwen2-VL).
    const j = JSON.parse(fit("--model Qwen/Qwen2-VL-2B-Instruct --gpu L4 --json").output);
    expect(j.maxModelLen).toBe(32768);
    expect(() => fit("--model Qwen/Qwen2-VL-7B-Instruct --gpu A10G --tp 3")).toThrow(
      /--tp: 3 — does not divide the model's 28 attention heads/,
    );
    expect(() => fit("--model Qwen/Qwen2-VL-7B-Instruct --gpu A10G --max-model-len abc")).toThrow(
      /--max-model-len: "abc" is not a number \(NaN\)/,
    );
    expect(() => fit("--model Qwen/Qwen2-VL-7B-Instruct --gpu A10G --tp Infinity")).toThrow(
      /--tp: Infinity is infinite/,
    );
    const named = join(dir, "Qwen3-VL-8B-Instruct");
    mkdirSync(named, { recursive: true });
    writeFileSync(
      join(named, "config.json"),
      JSON.stringify({
        architectures: ["Qwen3VLForConditionalGeneration"],
        text_config: {
          num_hidden_layers: 36,
          hidden_size: 4096,
          intermediate_size: 12288,
          num_attention_heads: 32,
          num_key_value_heads: 8,
          head_dim: 128,
          vocab_size: 151936,
          max_position_embeddings: 262144,
          dtype: "bfloat16",
        },
        vision_config: QWEN3_VL_VISION_CONFIG,
      }),
    );
    const q3 = JSON.parse(
      fitCommand([
        "--model-config",
        join(named, "config.json"),
        "--gpu",
        "H100",
        "--max-model-len",
        "32768",
        "--json",
      ]).output,
    );
    expect(q3.model.id).toBe("Qwen3-VL-8B-Instruct");
  });

  it("as a process: bad input exits 2 with a clear message", () => {
    const r = run("cli/fit.ts", ["--model", "Qwen/Qwen2-VL-7B-Instruct", "--gpu", "GTX-1080"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--gpu: "GTX-1080" is not in the catalog/);
    const r2 = run("cli/fit.ts", [
      "--model",
      "Qwen/Qwen2-VL-7B-Instruct",
      "--gpu",
      "T4",
      "--gpus-per-node",
      "3",
    ]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(
      /--tp \(default: --gpus-per-node\): 3 — does not divide the model's 28 attention heads/,
    );
    expect(r2.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("pulumi up on hosts over SSH: what is wrong on this machine or with a node is named", () => {
  const home = mkdtempSync(join(tmpdir(), "qwen-vl-home-"));
  afterAll(() => rmSync(home, { recursive: true, force: true }));
  const deployAs = () =>
    spawnSync(
      process.execPath,
      ["--import", "tsx", "engine/pulumi.ts", "up", "--stack", "hosts", "--yes"],
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
        env: { ...process.env, HOME: home },
      },
    );

  it("as a process: a missing key and known_hosts exit 2, both named, before any connection", () => {
    const r = deployAs();
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      "Cannot connect to the nodes yet; nothing was changed on any of them:",
    );
    expect(r.stderr).toContain(
      `target.sshPrivateKeyPath: ~/.ssh/id_ed25519 → ${home}/.ssh/id_ed25519 does not exist`,
    );
    expect(r.stderr).toMatch(
      /target.knownHostsPath: .* does not exist: host keys are always checked/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // npm run verify checks the same before reaching any node.
    const verify = (stack: string) =>
      spawnSync(process.execPath, ["--import", "tsx", "cli/verify.ts", "--stack", stack], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
        env: { ...process.env, HOME: home },
      });
    const v = verify("hosts");
    expect(v.status).toBe(2);
    expect(v.stderr).toContain(
      "Cannot connect to the nodes yet; nothing was changed on any of them:",
    );
    // An AWS stack is reached from its state, encrypted with the passphrase: asked for first.
    const aws = spawnSync(
      process.execPath,
      ["--import", "tsx", "cli/verify.ts", "--stack", "single-gpu"],
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
        env: {
          ...Object.fromEntries(
            Object.entries(process.env).filter(([k]) => !k.startsWith("PULUMI_CONFIG_PASSPHRASE")),
          ),
          HOME: home,
        },
      },
    );
    expect(aws.status).toBe(2);
    expect(aws.stderr).toMatch(
      /^stack single-gpu: set PULUMI_CONFIG_PASSPHRASE \(or PULUMI_CONFIG_PASSPHRASE_FILE\) to encrypt its secrets in the state/,
    );
    expect(aws.stderr).not.toMatch(/\n\s+at /);
  });

  it("as a process: a host missing from known_hosts is named with the command that adds it", () => {
    mkdirSync(join(home, ".ssh"), { recursive: true });
    writeFileSync(join(home, ".ssh", "id_ed25519"), "not used: nothing connects\n");
    writeFileSync(
      join(home, ".ssh", "known_hosts"),
      "203.0.113.7 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA\n",
    );
    const r = deployAs();
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /known_hosts: it has no host key for rtx3090 \(192\.0\.2\.10\): add the host's own keys with ssh-keyscan -H -p 22 192\.0\.2\.10 >> \S+known_hosts after checking their fingerprints out of band/,
    );
  });

  it("a node that refuses connections fails in seconds, naming the address and what to check", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    writeFileSync(
      join(home, "kh"),
      "127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZha2Vob3N0a2V5Zm9ydGVzdHNvbmx5MDAwMDAwMA==\n",
    );
    const connection = {
      host: "127.0.0.1",
      port,
      user: "root",
      privateKeyPath: join(home, ".ssh", "id_ed25519"),
      hostKeys: [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZha2Vob3N0a2V5Zm9ydGVzdHNvbmx5MDAwMDAwMA==",
      ],
    };
    const step = { connection, node: "rtx3090", step: "preflight", create: "true" };
    // An unusable key fails at once, named; nothing is retried.
    const badKey = await runStep(step).catch((e: unknown) => e);
    expect(badKey).toBeInstanceOf(StepFailed);
    expect((badKey as Error).message).toMatch(
      /^rtx3090: step preflight: .*id_ed25519 is not a private key SSH can use .*: point target.sshPrivateKeyPath at an unencrypted OpenSSH or PEM key/,
    );
    rmSync(join(home, ".ssh", "id_ed25519"));
    const keygen = spawnSync("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-f",
      join(home, ".ssh", "id_ed25519"),
    ]);
    expect(keygen.status).toBe(0);
    const t0 = Date.now();
    const err = await runStep(step).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepFailed);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^rtx3090: step preflight: cannot reach root@127\\.0\\.0\\.1:${port} over SSH after 6 attempts .*ECONNREFUSED.*check the address and port, that sshd runs`,
      ),
    );
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 60_000);
});

describe("ask and bench: the user's mistakes are one clear line and exit 2", () => {
  it("as a process: a missing image, a file that is not an image, a folder", () => {
    const cases: [string[], RegExp][] = [
      [
        ["--image", "./missing.png"],
        /^image \.\/missing\.png: no such file \(give a local path or an http\(s\) URL\)\n$/,
      ],
      [
        ["--image", "./README.md"],
        /^image \.\/README\.md: not an image \(JPEG, PNG, WebP, GIF, TIFF or AVIF expected\)\n$/,
      ],
      [["--image", "./test"], /^image \.\/test: is a folder, not an image file\n$/],
    ];
    for (const [args, message] of cases) {
      // Port 9 (discard) on loopback: nothing is sent, the image is refused before any request.
      const r = run("cli/ask.ts", [
        "--url",
        "http://127.0.0.1:9",
        "--model",
        "m",
        ...args,
        "What is this?",
      ]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const b = run("cli/bench.ts", [
      "--url",
      "http://127.0.0.1:9",
      "--model",
      "m",
      "--image",
      "./missing.png",
      "--requests",
      "1",
    ]);
    expect(b.code, b.stderr).toBe(2);
    expect(b.stderr).toMatch(/image \.\/missing\.png: no such file/);
    expect(b.stderr).not.toMatch(/\n\s+at /);
  });
});
