/**
 * The client, ask and bench: against a local HTTP server this test starts (to script failures and
 * count requests) and against the fake vLLM engine (real HTTP, streaming, image handling, metrics).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchCommand, parseMetrics, percentile, progressDisplay } from "../cli/bench";
import { askCommand } from "../cli/ask";
import { ApiError, ImageLimitError, mapLimit, QwenVlClient } from "../client/client";
import { Conversation } from "../client/conversation";
import { fitWithin, prepareImage } from "../client/images";
import { FAKES } from "./support/sandbox";
import { startListening, type Started } from "./support/processes";

const tmp = mkdtempSync(join(tmpdir(), "qwen-vl-client-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Scripted {
  server: Server;
  url: string;
  requests: { body: Record<string, unknown>; auth?: string }[];
  inFlight: number;
  maxInFlight: number;
  respond: (
    req: IncomingMessage,
    res: ServerResponse,
    n: number,
    body: Record<string, unknown>,
  ) => void | Promise<void>;
}

async function scripted(respond: Scripted["respond"]): Promise<Scripted> {
  const s: Scripted = {
    server: undefined as never,
    url: "",
    requests: [],
    inFlight: 0,
    maxInFlight: 0,
    respond,
  };
  s.server = createServer(async (req, res) => {
    let raw = "";
    for await (const c of req) raw += c;
    const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    s.requests.push({
      body,
      ...(req.headers.authorization ? { auth: req.headers.authorization } : {}),
    });
    s.inFlight++;
    s.maxInFlight = Math.max(s.maxInFlight, s.inFlight);
    try {
      await s.respond(req, res, s.requests.length, body);
    } finally {
      s.inFlight--;
    }
  });
  await new Promise<void>((r) => s.server.listen(0, "127.0.0.1", () => r()));
  s.url = `http://127.0.0.1:${(s.server.address() as { port: number }).port}`;
  return s;
}
const completion = (text: string) =>
  JSON.stringify({
    choices: [{ message: { role: "assistant", content: text }, finish_reason: "stop" }],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
  });
const close = (s: Scripted) => new Promise<void>((r) => s.server.close(() => r()));

describe("retries, errors, timeouts", () => {
  it("retries on 503 with backoff and succeeds; never retries a 400, whose message it carries", async () => {
    const s = await scripted((_q, res, n, body) => {
      if ((body["messages"] as { content: string }[])[0]!.content === "bad") {
        res.writeHead(400, { "Content-Type": "application/json" }).end(
          JSON.stringify({
            object: "error",
            message: "At most 4 image(s) may be provided in one prompt.",
            code: 400,
          }),
        );
      } else if (n <= 2) res.writeHead(503).end("overloaded");
      else res.writeHead(200, { "Content-Type": "application/json" }).end(completion("fine"));
    });
    try {
      const c = new QwenVlClient({ baseUrl: s.url, model: "m", retries: 3, backoffMs: 10 });
      const r = await c.chat([{ role: "user", content: "hello" }]);
      expect(r.text).toBe("fine");
      expect(r.attempts).toBe(3);
      expect(s.requests).toHaveLength(3);
      const before = s.requests.length;
      const err = await c.chat([{ role: "user", content: "bad" }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(400);
      expect((err as ApiError).serverMessage).toBe(
        "At most 4 image(s) may be provided in one prompt.",
      );
      expect(s.requests.length - before).toBe(1);
    } finally {
      await close(s);
    }
  });

  it("gives up after the retries with the last 5xx, and times out a request that never answers", async () => {
    const s = await scripted(async (_q, res, _n, body) => {
      if ((body["messages"] as { content: string }[])[0]!.content === "slow")
        await new Promise((r) => setTimeout(r, 2000));
      res.writeHead(502).end("bad gateway");
    });
    try {
      const c = new QwenVlClient({
        baseUrl: s.url,
        model: "m",
        retries: 2,
        backoffMs: 5,
        timeoutMs: 300,
      });
      const err = (await c
        .chat([{ role: "user", content: "x" }])
        .catch((e: unknown) => e)) as ApiError;
      expect(err.status).toBe(502);
      expect(s.requests).toHaveLength(3);
      const t0 = Date.now();
      const slow = (await new QwenVlClient({
        baseUrl: s.url,
        model: "m",
        retries: 0,
        timeoutMs: 300,
      })
        .chat([{ role: "user", content: "slow" }])
        .catch((e: unknown) => e)) as Error;
      expect(slow.message).toMatch(/no answer within 300 ms/);
      expect(Date.now() - t0).toBeLessThan(1500);
    } finally {
      await close(s);
    }
  });

  it("retries connection errors, then names the endpoint it could not reach", async () => {
    const c = new QwenVlClient({
      baseUrl: "http://127.0.0.1:9",
      model: "m",
      retries: 1,
      backoffMs: 5,
    });
    await expect(c.chat([{ role: "user", content: "x" }])).rejects.toThrow(
      /cannot reach http:\/\/127.0.0.1:9/,
    );
  });

  it("sends the API key when configured", async () => {
    const s = await scripted(
      (_q, res) =>
        void res.writeHead(200, { "Content-Type": "application/json" }).end(completion("ok")),
    );
    try {
      await new QwenVlClient({ baseUrl: s.url, model: "m", apiKey: "k-123" }).chat([
        { role: "user", content: "x" },
      ]);
      expect(s.requests[0]!.auth).toBe("Bearer k-123");
    } finally {
      await close(s);
    }
  });
});

describe("image limit, cache, concurrency", () => {
  it("refuses more images than the deployment's limit before sending anything", async () => {
    const s = await scripted((_q, res) => void res.writeHead(200).end(completion("x")));
    try {
      const c = new QwenVlClient({ baseUrl: s.url, model: "m", imageLimit: 2 });
      const urls = ["http://127.0.0.1/a.png", "http://127.0.0.1/b.png", "http://127.0.0.1/c.png"];
      await expect(c.ask("what?", urls)).rejects.toBeInstanceOf(ImageLimitError);
      const two = await c.userMessage("q", urls.slice(0, 2));
      await expect(c.chat([two, two])).rejects.toThrow(
        /4 images in one prompt, but the deployment accepts at most 2/,
      );
      expect(s.requests).toHaveLength(0);
    } finally {
      await close(s);
    }
  });

  it("the cache answers a repeated request without sending it, until its time-to-live passes", async () => {
    const s = await scripted(
      (_q, res, n) =>
        void res
          .writeHead(200, { "Content-Type": "application/json" })
          .end(completion(`answer ${n}`)),
    );
    try {
      const c = new QwenVlClient({
        baseUrl: s.url,
        model: "m",
        cacheDir: join(tmp, "cache"),
        cacheTtlMs: 300,
      });
      const q = [{ role: "user" as const, content: "invoice total?" }];
      const first = await c.chat(q);
      const second = await c.chat(q);
      expect(second.text).toBe(first.text);
      expect(second.cached).toBe(true);
      expect(s.requests).toHaveLength(1);
      expect((await c.chat([{ role: "user", content: "another" }])).cached).toBe(false);
      await new Promise((r) => setTimeout(r, 350));
      expect((await c.chat(q)).text).toBe("answer 3");
    } finally {
      await close(s);
    }
  });

  it("a batch never has more requests in flight than the bound, and keeps the order of its inputs", async () => {
    const s = await scripted(async (_q, res, _n, body) => {
      await new Promise((r) => setTimeout(r, 30));
      res
        .writeHead(200, { "Content-Type": "application/json" })
        .end(completion((body["messages"] as { content: string }[])[0]!.content));
    });
    try {
      const c = new QwenVlClient({ baseUrl: s.url, model: "m" });
      const out = await c.batch(
        Array.from({ length: 20 }, (_, i) => `q${i}`),
        3,
        (q, cl) => cl.chat([{ role: "user", content: q }]),
      );
      expect(out.map((r) => (r instanceof Error ? r.message : r.text))).toEqual(
        Array.from({ length: 20 }, (_, i) => `q${i}`),
      );
      expect(s.maxInFlight).toBe(3);
      await expect(mapLimit([1], 0, async (x) => x)).rejects.toThrow(/concurrency must be ≥ 1/);
    } finally {
      await close(s);
    }
  });
});

describe("images", () => {
  it("resizes a local image to the max pixels, keeping its aspect ratio", async () => {
    const path = join(tmp, "wide.png");
    await sharp({
      create: { width: 4000, height: 1000, channels: 3, background: { r: 200, g: 20, b: 20 } },
    })
      .png()
      .toFile(path);
    const max = 1003520;
    const p = await prepareImage(path, max);
    expect(p.resized).toBe(true);
    const m = await sharp(Buffer.from(p.url.split(",")[1]!, "base64")).metadata();
    expect(m.width! * m.height!).toBeLessThanOrEqual(max);
    expect(m.width! * m.height!).toBeGreaterThan(max * 0.99);
    expect(Math.abs(m.width! / m.height! - 4)).toBeLessThan(0.01);
    expect(p.url).toMatch(/^data:image\/jpeg;base64,/);
    const small = await prepareImage(join(tmp, "wide.png"), 10 ** 8);
    expect(small.resized).toBe(false);
    for (const [w, h, px] of [
      [4000, 1000, max],
      [17, 13, 100],
      [1, 5000, 300],
    ] as const) {
      const f = fitWithin(w, h, px);
      expect(f.width * f.height).toBeLessThanOrEqual(px);
    }
  });
  it("keeps transparency as PNG and passes URLs through untouched", async () => {
    const path = join(tmp, "alpha.png");
    await sharp({
      create: {
        width: 3000,
        height: 3000,
        channels: 4,
        background: { r: 0, g: 0, b: 255, alpha: 0.5 },
      },
    })
      .png()
      .toFile(path);
    expect((await prepareImage(path, 1003520)).url).toMatch(/^data:image\/png;base64,/);
    expect((await prepareImage("https://example.invalid/x.jpg", 1)).url).toBe(
      "https://example.invalid/x.jpg",
    );
  });
});

describe("against the fake vLLM engine", () => {
  let engine: Started;
  let base: string;
  const model = "qwen2-vl-lab";
  beforeAll(async () => {
    const dir = join(tmp, "model");
    spawnSync("mkdir", ["-p", dir]);
    writeFileSync(join(dir, "config.json"), "{}");
    engine = await startListening(
      "python3",
      [
        "-m",
        "fake_vllm",
        "serve",
        dir,
        "--served-model-name",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--limit-mm-per-prompt",
        '{"image":2}',
        "--mm-processor-kwargs",
        '{"max_pixels":1003520}',
      ],
      {
        ...process.env,
        PYTHONPATH: FAKES,
        FAKE_VLLM_STARTUP_SECONDS: "0",
        VLLM_API_KEY: "lab-key",
      },
    );
    base = `http://127.0.0.1:${engine.port}`;
  });
  afterAll(() => engine.stop());

  it("streaming assembles the same text as a plain request, and sees the image", async () => {
    const c = new QwenVlClient({
      baseUrl: base,
      model,
      apiKey: "lab-key",
      imageLimit: 2,
      maxPixels: 1003520,
    });
    // Within the max pixels and small: sent as the PNG it is (a resized photo would go as JPEG).
    const path = join(tmp, "red.png");
    await sharp({
      create: { width: 1200, height: 800, channels: 3, background: { r: 220, g: 30, b: 30 } },
    })
      .png()
      .toFile(path);
    const msg = await c.userMessage("What colour is it?", [path]);
    const plain = await c.chat([msg], { temperature: 0, maxTokens: 20 });
    const pieces: string[] = [];
    const streamed = await c.stream([msg], (d) => pieces.push(d), {
      temperature: 0,
      maxTokens: 20,
    });
    expect(streamed.text).toBe(plain.text);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(plain.text);
    expect(plain.text).toMatch(/^red /);
    expect(streamed.ttftMs).toBeLessThanOrEqual(streamed.latencyMs);
    expect(streamed.usage?.completion_tokens).toBe(plain.usage?.completion_tokens);
  });

  it("without the API key: a 401 with the server's message, not retried", async () => {
    const err = (await new QwenVlClient({ baseUrl: base, model })
      .chat([{ role: "user", content: "x" }])
      .catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(401);
    expect(err.serverMessage).toBe("Unauthorized");
  });

  it("the server enforces its image limit too (a client that did not know it)", async () => {
    const c = new QwenVlClient({ baseUrl: base, model, apiKey: "lab-key" });
    const img = (await prepareImage(join(tmp, "red.png"), 100_000)).url;
    const err = (await c.ask("?", [img, img, img]).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(400);
    expect(err.serverMessage).toMatch(/At most 2 image\(s\)/);
  });

  it("a conversation keeps its history within the token budget, system prompt first", async () => {
    const c = new QwenVlClient({ baseUrl: base, model, apiKey: "lab-key" });
    const conv = new Conversation(c, {
      system: "You are Qwen, created by Alibaba Cloud.",
      budgetTokens: 60,
    });
    for (let i = 0; i < 6; i++)
      await conv.say(
        `question number ${i} with some words to make it longer than a few tokens`,
        [],
        { maxTokens: 8 },
      );
    expect(conv.history[0]).toEqual({
      role: "system",
      content: "You are Qwen, created by Alibaba Cloud.",
    });
    expect(conv.tokens()).toBeLessThanOrEqual(60 + 40);
    expect(conv.history.length).toBeLessThan(13);
    const summarised = new Conversation(c, {
      system: "sys",
      budgetTokens: 60,
      summarise: async (d) => `${d.length} earlier messages`,
    });
    for (let i = 0; i < 5; i++)
      await summarised.say(`question ${i} with quite a few words in it to fill the budget`, [], {
        maxTokens: 8,
      });
    expect(summarised.history[1]!.content).toMatch(
      /^Summary of the earlier conversation: \d+ earlier messages/,
    );
  });

  it("ask prints the streamed answer and the latency", async () => {
    process.env["QWEN_VL_API_KEY"] = "lab-key";
    try {
      let out = "";
      let err = "";
      const code = await askCommand(
        ["--url", base, "--image", join(tmp, "red.png"), "What colour?"],
        (s) => (out += s),
        (s) => (err += s),
      );
      expect(code).toBe(0);
      expect(out).toMatch(/^red \(fake answer to: What colour\?\)\n$/);
      expect(err).toMatch(
        /latency: first token \d+ ms, total \d+ ms, \d+ prompt \+ \d+ completion tokens/,
      );
    } finally {
      delete process.env["QWEN_VL_API_KEY"];
    }
  });

  it("bench: client-side percentiles beside the server's own counts from /metrics", async () => {
    process.env["QWEN_VL_API_KEY"] = "lab-key";
    try {
      let out = "";
      const progress: string[] = [];
      const code = await benchCommand(
        [
          "--url",
          base,
          "--requests",
          "12",
          "--concurrency",
          "3",
          "--image",
          join(tmp, "red.png"),
          "--json",
        ],
        (s) => (out += s),
        progressDisplay((s) => progress.push(s), false),
      );
      expect(code).toBe(0);
      const r = JSON.parse(out);
      expect(r.ok).toBe(12);
      expect(r.errors).toEqual({});
      expect(r.server.requests).toBe(12);
      expect(r.server.generationTokens).toBe(r.outputTokens);
      expect(r.latencyMs.p50).toBeLessThanOrEqual(r.latencyMs.p95);
      expect(r.latencyMs.p95).toBeLessThanOrEqual(r.latencyMs.p99);
      expect(r.ttftMs.p50).toBeLessThanOrEqual(r.latencyMs.p50);
      expect(progress.at(-1)).toMatch(/12\/12 {2}errors 0/);
    } finally {
      delete process.env["QWEN_VL_API_KEY"];
    }
  });
});

describe("bench arithmetic", () => {
  it("nearest-rank percentiles and Prometheus text parsing", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([
      percentile(xs, 50),
      percentile(xs, 95),
      percentile(xs, 99),
      percentile([7], 99),
    ]).toEqual([50, 95, 99, 7]);
    const m = parseMetrics(
      '# TYPE a counter\nvllm:request_success_total{finished_reason="stop",model_name="m"} 3\nvllm:request_success_total{finished_reason="length",model_name="m"} 2\nh_bucket{le="1"} 9\nh_sum{m="x"} 1.5\n',
    );
    expect(m.get("vllm:request_success_total")).toBe(5);
    expect(m.get("h_sum")).toBe(1.5);
    expect(m.has("h_bucket")).toBe(false);
  });
});
