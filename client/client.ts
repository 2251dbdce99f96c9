/**
 * A typed client for the OpenAI-compatible chat API vLLM serves: text and images (URLs, or local
 * files resized to the deployment's max pixels), the per-prompt image limit checked before sending,
 * sampling knobs, streaming, a timeout per request, retries with backoff on connection errors and
 * 5xx (never on 4xx), bounded concurrency for batches, an optional on-disk cache with a time-to-live,
 * and the API key when configured. Errors carry the status and the server's message.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { prepareImage, type ImageInput } from "./images";

export type Role = "system" | "user" | "assistant";
export type ContentPart =
  { type: "text"; text: string } | { type: "image_url"; image_url: { url: string } };
export interface Message {
  readonly role: Role;
  readonly content: string | readonly ContentPart[];
}

export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export interface ChatOptions {
  readonly temperature?: number;
  readonly topP?: number;
  readonly maxTokens?: number;
  readonly signal?: AbortSignal;
  /** Use (and fill) the on-disk cache for this request. Default: the client's setting. */
  readonly cache?: boolean;
}

export interface ChatResult {
  readonly text: string;
  readonly usage?: Usage;
  readonly finishReason?: string;
  readonly latencyMs: number;
  /** Time to the first token (streaming only). */
  readonly ttftMs?: number;
  readonly cached: boolean;
  readonly attempts: number;
}

export interface ClientOptions {
  /** Base URL of the deployment, e.g. http://localhost:8000 (no /v1). */
  readonly baseUrl: string;
  /** The served model name ("model" in requests). */
  readonly model: string;
  readonly apiKey?: string;
  /** Per request, in milliseconds. Default 120 000. */
  readonly timeoutMs?: number;
  /** Retries after the first attempt on connection errors and 5xx. Default 3. */
  readonly retries?: number;
  /** First backoff delay; doubles each retry, with jitter. Default 500 ms. */
  readonly backoffMs?: number;
  /** Images per prompt the deployment accepts (vllm.imageLimit). Default: unchecked. */
  readonly imageLimit?: number;
  /** Local images are resized to at most this many pixels (vllm.maxPixels). Default 12 845 056. */
  readonly maxPixels?: number;
  /** On-disk response cache directory. Default: none. */
  readonly cacheDir?: string;
  /** Cache time-to-live. Default one hour. */
  readonly cacheTtlMs?: number;
  /** fetch implementation (tests). Default: global fetch. */
  readonly fetch?: typeof fetch;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly serverMessage: string,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${serverMessage}`);
    this.name = "ApiError";
  }
  /** The endpoint refused or failed the request (not the user's input): exit 1. */
  get exitCode(): number {
    return 1;
  }
}

export class ImageLimitError extends Error {
  constructor(
    readonly images: number,
    readonly limit: number,
  ) {
    super(
      `${images} images in one prompt, but the deployment accepts at most ${limit} (vllm.imageLimit); nothing was sent`,
    );
    this.name = "ImageLimitError";
  }
  /** The user's input: exit 2. */
  get exitCode(): number {
    return 2;
  }
}

export class ConnectionError extends Error {
  constructor(
    message: string,
    readonly cause?: unknown,
  ) {
    super(message);
    this.name = "ConnectionError";
  }
  get exitCode(): number {
    return 1;
  }
}

const DEFAULT_MAX_PIXELS = 16384 * 28 * 28;

function countImages(messages: readonly Message[]): number {
  return messages.reduce(
    (n, m) =>
      n +
      (typeof m.content === "string" ? 0 : m.content.filter((p) => p.type === "image_url").length),
    0,
  );
}

function serverMessage(status: number, body: string): string {
  try {
    const j = JSON.parse(body) as {
      message?: string;
      error?: string | { message?: string };
      detail?: string;
    };
    const e = j.error;
    return j.message ?? (typeof e === "string" ? e : e?.message) ?? j.detail ?? body.slice(0, 300);
  } catch {
    return body.slice(0, 300) || `HTTP ${status}`;
  }
}

export class QwenVlClient {
  private readonly o: Required<Omit<ClientOptions, "apiKey" | "imageLimit" | "cacheDir">> &
    Pick<ClientOptions, "apiKey" | "imageLimit" | "cacheDir">;

  constructor(options: ClientOptions) {
    this.o = {
      timeoutMs: 120_000,
      retries: 3,
      backoffMs: 500,
      maxPixels: DEFAULT_MAX_PIXELS,
      cacheTtlMs: 3_600_000,
      fetch: globalThis.fetch,
      ...options,
      baseUrl: options.baseUrl.replace(/\/+$/, "").replace(/\/v1$/, ""),
    };
  }

  /** A user message with images (URLs, or local files resized to max pixels) and a question. */
  async userMessage(text: string, images: readonly ImageInput[] = []): Promise<Message> {
    if (this.o.imageLimit !== undefined && images.length > this.o.imageLimit)
      throw new ImageLimitError(images.length, this.o.imageLimit);
    const parts: ContentPart[] = [];
    for (const img of images)
      parts.push({
        type: "image_url",
        image_url: { url: (await prepareImage(img, this.o.maxPixels)).url },
      });
    parts.push({ type: "text", text });
    return { role: "user", content: parts };
  }

  /** One question, optionally about images. */
  async ask(
    question: string,
    images: readonly ImageInput[] = [],
    opts: ChatOptions & { system?: string } = {},
  ): Promise<ChatResult> {
    const messages: Message[] = [];
    if (opts.system) messages.push({ role: "system", content: opts.system });
    messages.push(await this.userMessage(question, images));
    return this.chat(messages, opts);
  }

  private body(
    messages: readonly Message[],
    opts: ChatOptions,
    stream: boolean,
  ): Record<string, unknown> {
    if (this.o.imageLimit !== undefined) {
      const n = countImages(messages);
      if (n > this.o.imageLimit) throw new ImageLimitError(n, this.o.imageLimit);
    }
    return {
      model: this.o.model,
      messages,
      ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
      ...(opts.topP !== undefined ? { top_p: opts.topP } : {}),
      ...(opts.maxTokens !== undefined ? { max_tokens: opts.maxTokens } : {}),
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    };
  }

  private headers(): Record<string, string> {
    return {
      "Content-Type": "application/json",
      ...(this.o.apiKey ? { Authorization: `Bearer ${this.o.apiKey}` } : {}),
    };
  }

  /** POST with timeout and retries (connection errors and 5xx only); returns the successful response. */
  private async post(
    path: string,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<{ res: Response; attempts: number }> {
    let attempt = 0;
    for (;;) {
      attempt++;
      const timeout = AbortSignal.timeout(this.o.timeoutMs);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      let res: Response | undefined;
      let failure: Error;
      try {
        res = await this.o.fetch(`${this.o.baseUrl}${path}`, {
          method: "POST",
          headers: this.headers(),
          body: JSON.stringify(body),
          signal: combined,
        });
        if (res.ok) return { res, attempts: attempt };
        const text = await res.text();
        const err = new ApiError(res.status, serverMessage(res.status, text), text);
        if (res.status < 500) throw err;
        failure = err;
      } catch (e) {
        if (e instanceof ApiError && e.status < 500) throw e;
        if (signal?.aborted) throw e;
        failure =
          e instanceof ApiError
            ? e
            : timeout.aborted
              ? new ConnectionError(
                  `no answer within ${this.o.timeoutMs} ms from ${this.o.baseUrl}`,
                  e,
                )
              : new ConnectionError(
                  `cannot reach ${this.o.baseUrl}: ${(e as Error).cause ? String((e as { cause?: unknown }).cause) : (e as Error).message}`,
                  e,
                );
      }
      if (attempt > this.o.retries) throw failure;
      const delay = this.o.backoffMs * 2 ** (attempt - 1) * (0.8 + Math.random() * 0.4);
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  private cacheKey(body: unknown): string {
    return createHash("sha256").update(this.o.baseUrl).update(JSON.stringify(body)).digest("hex");
  }

  private async cacheGet(key: string): Promise<ChatResult | undefined> {
    if (!this.o.cacheDir) return undefined;
    try {
      const entry = JSON.parse(await readFile(join(this.o.cacheDir, `${key}.json`), "utf8")) as {
        expiresAt: number;
        result: ChatResult;
      };
      return entry.expiresAt > Date.now()
        ? { ...entry.result, cached: true, latencyMs: 0, attempts: 0 }
        : undefined;
    } catch {
      return undefined;
    }
  }

  private async cachePut(key: string, result: ChatResult): Promise<void> {
    if (!this.o.cacheDir) return;
    await mkdir(this.o.cacheDir, { recursive: true });
    const path = join(this.o.cacheDir, `${key}.json`);
    await writeFile(
      `${path}.tmp`,
      JSON.stringify({ expiresAt: Date.now() + this.o.cacheTtlMs, result }),
    );
    await rename(`${path}.tmp`, path);
  }

  async chat(messages: readonly Message[], opts: ChatOptions = {}): Promise<ChatResult> {
    const body = this.body(messages, opts, false);
    const useCache = opts.cache ?? Boolean(this.o.cacheDir);
    const key = this.cacheKey(body);
    if (useCache) {
      const hit = await this.cacheGet(key);
      if (hit) return hit;
    }
    const t0 = performance.now();
    const { res, attempts } = await this.post("/v1/chat/completions", body, opts.signal);
    const j = (await res.json()) as {
      choices?: { message?: { content?: string }; finish_reason?: string }[];
      usage?: Usage;
    };
    const choice = j.choices?.[0];
    if (typeof choice?.message?.content !== "string")
      throw new ApiError(
        res.status,
        "the answer has no choices[0].message.content",
        JSON.stringify(j).slice(0, 500),
      );
    const result: ChatResult = {
      text: choice.message.content,
      ...(j.usage ? { usage: j.usage } : {}),
      ...(choice.finish_reason ? { finishReason: choice.finish_reason } : {}),
      latencyMs: performance.now() - t0,
      cached: false,
      attempts,
    };
    if (useCache) await this.cachePut(key, result);
    return result;
  }

  /** Streams the answer; `onDelta` gets each piece as it arrives. Returns the assembled result. */
  async stream(
    messages: readonly Message[],
    onDelta: (text: string) => void,
    opts: ChatOptions = {},
  ): Promise<ChatResult> {
    const body = this.body(messages, opts, true);
    const t0 = performance.now();
    const { res, attempts } = await this.post("/v1/chat/completions", body, opts.signal);
    if (!res.body) throw new ApiError(res.status, "streaming response without a body", "");
    const decoder = new TextDecoder();
    let buffer = "";
    let text = "";
    let ttftMs: number | undefined;
    let usage: Usage | undefined;
    let finishReason: string | undefined;
    const reader = res.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data) as {
          choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
          usage?: Usage;
        };
        const piece = chunk.choices?.[0]?.delta?.content;
        if (piece) {
          ttftMs ??= performance.now() - t0;
          text += piece;
          onDelta(piece);
        }
        if (chunk.choices?.[0]?.finish_reason) finishReason = chunk.choices[0].finish_reason;
        if (chunk.usage) usage = chunk.usage;
      }
    }
    return {
      text,
      ...(usage ? { usage } : {}),
      ...(finishReason ? { finishReason } : {}),
      latencyMs: performance.now() - t0,
      ...(ttftMs !== undefined ? { ttftMs } : {}),
      cached: false,
      attempts,
    };
  }

  /** Independent requests (one conversation each), at most `concurrency` in flight. */
  async batch<T>(
    items: readonly T[],
    concurrency: number,
    fn: (item: T, client: QwenVlClient) => Promise<ChatResult>,
  ): Promise<(ChatResult | Error)[]> {
    return mapLimit(items, concurrency, (item) => fn(item, this).catch((e: Error) => e));
  }
}

/** Runs `fn` over `items` with at most `limit` promises pending; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!(limit >= 1)) throw new Error(`concurrency must be ≥ 1 (got ${limit})`);
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
