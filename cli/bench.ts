/**
 * `npm run bench -- [--stack <name> | --url <endpoint>] --requests N --concurrency C [--image <path>]
 *                   [--max-tokens M] [--json]`
 * Sends N streamed requests, at most C at a time, with a progress display; then latency p50/p95/p99,
 * time to first token, output tokens per second and errors by kind, beside the server's own view
 * (its /metrics read before and after).
 */
import {
  ApiError,
  ConnectionError,
  mapLimit,
  QwenVlClient,
  type ChatResult,
  type Message,
} from "../client/client";
import { resolveEndpoint } from "./endpoint";
import { ENDPOINT_FLAGS, flags } from "./main";
import { runCommand, UsageError } from "../config/errors";

const USAGE = `usage: npm run bench -- [--stack <name> | --url <endpoint>] --requests N --concurrency C
                      [--image <path-or-url>] [--max-tokens M] [--question TEXT] [--json]`;

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Sums of each metric over its label sets, from Prometheus text exposition. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+([^\s]+)/.exec(line);
    if (!m) continue;
    if (m[2]?.includes('le="')) continue; // histogram buckets: _sum and _count carry what we need
    const v = Number(m[3]);
    if (Number.isFinite(v)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + v);
  }
  return out;
}

/** The counters and histogram sums bench reads from vLLM's /metrics (before and after the run). */
export const SERVER_METRICS = {
  requests: "vllm:request_success_total",
  promptTokens: "vllm:prompt_tokens_total",
  generationTokens: "vllm:generation_tokens_total",
  ttftSum: "vllm:time_to_first_token_seconds_sum",
  ttftCount: "vllm:time_to_first_token_seconds_count",
  e2eSum: "vllm:e2e_request_latency_seconds_sum",
  e2eCount: "vllm:e2e_request_latency_seconds_count",
} as const;

async function scrape(baseUrl: string): Promise<Map<string, number> | undefined> {
  try {
    const r = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
    return r.ok ? parseMetrics(await r.text()) : undefined;
  } catch {
    return undefined;
  }
}

export interface BenchResult {
  readonly requests: number;
  readonly concurrency: number;
  readonly ok: number;
  readonly errors: Record<string, number>;
  readonly wallSeconds: number;
  readonly latencyMs: { p50: number; p95: number; p99: number; mean: number };
  readonly ttftMs: { p50: number; p95: number; p99: number };
  readonly outputTokens: number;
  readonly outputTokensPerSecond: number;
  readonly requestsPerSecond: number;
  readonly server?: {
    requests: number;
    promptTokens: number;
    generationTokens: number;
    meanTtftMs: number;
    meanE2eMs: number;
  };
}

export type Progress = (done: number, total: number, failed: number, seconds: number) => void;

/** A progress bar redrawn in place on a terminal; a line every 10 % elsewhere (logs, CI). */
export function progressDisplay(write: (s: string) => void, tty: boolean): Progress {
  return (done, total, failed, seconds) => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    const text = `[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${total}  errors ${failed}  ${seconds.toFixed(1)} s`;
    if (tty) write(`\r${text}${done === total ? "\n" : ""}`);
    else if (done === total || done % Math.max(1, Math.floor(total / 10)) === 0) write(`${text}\n`);
  };
}

export async function benchCommand(
  argv: string[],
  out: (s: string) => void,
  progress: Progress,
): Promise<number> {
  const { values: o } = flags(argv, {
    ...ENDPOINT_FLAGS,
    requests: { type: "string", default: "20" },
    concurrency: { type: "string", default: "4" },
    image: { type: "string" },
    "max-tokens": { type: "string", default: "64" },
    question: { type: "string", default: "Describe this image in one sentence." },
    json: { type: "boolean", default: false },
  });
  const n = Number(o.requests);
  const c = Number(o.concurrency);
  const maxTokens = Number(o["max-tokens"]);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--requests: "${o.requests}" must be a whole number ≥ 1`);
  if (!Number.isInteger(c) || c < 1)
    throw new UsageError(`--concurrency: "${o.concurrency}" must be a whole number ≥ 1`);
  if (!Number.isInteger(maxTokens) || maxTokens < 1)
    throw new UsageError(`--max-tokens: "${o["max-tokens"]}" must be a whole number ≥ 1`);
  const endpoint = await resolveEndpoint(o);
  const client = new QwenVlClient({ ...endpoint, retries: 0 });
  const message: Message = await client.userMessage(o.question!, o.image ? [o.image] : []);

  const before = await scrape(endpoint.baseUrl);
  let done = 0;
  let failed = 0;
  const t0 = performance.now();
  const show = () => progress(done, n, failed, (performance.now() - t0) / 1000);
  const results = await mapLimit(
    Array.from({ length: n }, (_, i) => i),
    c,
    async () => {
      let r: ChatResult | Error;
      try {
        r = await client.stream([message], () => {}, { maxTokens, temperature: 0 });
      } catch (e) {
        r = e as Error;
        failed++;
      }
      done++;
      show();
      return r;
    },
  );
  const wall = (performance.now() - t0) / 1000;
  const after = await scrape(endpoint.baseUrl);

  const okResults = results.filter((r): r is ChatResult => !(r instanceof Error));
  const errors: Record<string, number> = {};
  for (const r of results) {
    if (!(r instanceof Error)) continue;
    const kind =
      r instanceof ApiError
        ? `HTTP ${r.status}`
        : r instanceof ConnectionError
          ? "connection"
          : r.name;
    errors[kind] = (errors[kind] ?? 0) + 1;
  }
  const lat = okResults.map((r) => r.latencyMs).sort((a, b) => a - b);
  const ttft = okResults.map((r) => r.ttftMs ?? r.latencyMs).sort((a, b) => a - b);
  const outputTokens = okResults.reduce((s, r) => s + (r.usage?.completion_tokens ?? 0), 0);
  const delta = (k: string) => (after?.get(k) ?? 0) - (before?.get(k) ?? 0);
  const serverRequests = delta(SERVER_METRICS.requests);
  const result: BenchResult = {
    requests: n,
    concurrency: c,
    ok: okResults.length,
    errors,
    wallSeconds: wall,
    latencyMs: {
      p50: percentile(lat, 50),
      p95: percentile(lat, 95),
      p99: percentile(lat, 99),
      mean: lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length),
    },
    ttftMs: { p50: percentile(ttft, 50), p95: percentile(ttft, 95), p99: percentile(ttft, 99) },
    outputTokens,
    outputTokensPerSecond: outputTokens / wall,
    requestsPerSecond: okResults.length / wall,
    ...(before && after
      ? {
          server: {
            requests: serverRequests,
            promptTokens: delta(SERVER_METRICS.promptTokens),
            generationTokens: delta(SERVER_METRICS.generationTokens),
            meanTtftMs:
              (delta(SERVER_METRICS.ttftSum) / Math.max(1, delta(SERVER_METRICS.ttftCount))) * 1000,
            meanE2eMs:
              (delta(SERVER_METRICS.e2eSum) / Math.max(1, delta(SERVER_METRICS.e2eCount))) * 1000,
          },
        }
      : {}),
  };
  if (o.json) {
    out(JSON.stringify(result, null, 2) + "\n");
  } else {
    const f = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "-");
    const rows: [string, string, string][] = [
      ["", "client", "server (/metrics)"],
      [
        "requests ok",
        `${result.ok}/${n}`,
        result.server ? String(result.server.requests) : "(no /metrics)",
      ],
      [
        "latency p50 / p95 / p99 ms",
        `${f(result.latencyMs.p50)} / ${f(result.latencyMs.p95)} / ${f(result.latencyMs.p99)}`,
        result.server ? `mean ${f(result.server.meanE2eMs)}` : "",
      ],
      [
        "time to first token p50 / p95 ms",
        `${f(result.ttftMs.p50)} / ${f(result.ttftMs.p95)}`,
        result.server ? `mean ${f(result.server.meanTtftMs)}` : "",
      ],
      [
        "output tokens",
        String(outputTokens),
        result.server ? String(result.server.generationTokens) : "",
      ],
      [
        "output tokens / s",
        result.outputTokensPerSecond.toFixed(1),
        result.server ? (result.server.generationTokens / wall).toFixed(1) : "",
      ],
      ["requests / s", result.requestsPerSecond.toFixed(2), ""],
      [
        "errors",
        Object.entries(errors)
          .map(([k, v]) => `${k}: ${v}`)
          .join(", ") || "none",
        "",
      ],
    ];
    for (const [a, b, s] of rows) out(`${a.padEnd(34)}${b.padEnd(22)}${s}\n`);
  }
  return okResults.length === n ? 0 : 1;
}

if (require.main === module) {
  void runCommand(USAGE, () =>
    benchCommand(
      process.argv.slice(2),
      (s) => process.stdout.write(s),
      progressDisplay((s) => process.stderr.write(s), Boolean(process.stderr.isTTY)),
    ),
  );
}
