/**
 * `npm run ask -- [--stack <name> | --url <endpoint>] [--image <path-or-url>]... "<question>"`
 * Prints the answer as it streams, then the latency (time to first token and total) on stderr.
 */
import { ApiError, ConnectionError, ImageLimitError, QwenVlClient } from "../client/client";
import { resolveEndpoint } from "./endpoint";
import { ENDPOINT_FLAGS, flags } from "./main";
import { runCommand, UsageError } from "../config/errors";

const USAGE = `usage: npm run ask -- [--stack <name> | --url <endpoint>] [--image <path-or-url>]... [--system <text>]
                    [--temperature T] [--top-p P] [--max-tokens N] [--no-stream] [--model NAME] "<question>"`;

export async function askCommand(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  const { values: o, positionals } = flags(
    argv,
    {
      ...ENDPOINT_FLAGS,
      image: { type: "string", multiple: true },
      system: { type: "string" },
      temperature: { type: "string" },
      "top-p": { type: "string" },
      "max-tokens": { type: "string" },
      "no-stream": { type: "boolean", default: false },
    },
    true,
  );
  const question = positionals.join(" ").trim();
  if (!question) throw new UsageError("the question is missing");
  const num = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new UsageError(`${flag}: "${v}" is not a number`);
    return n;
  };
  const client = new QwenVlClient(await resolveEndpoint(o));
  const opts = {
    ...(num("--temperature", o.temperature) !== undefined
      ? { temperature: num("--temperature", o.temperature)! }
      : {}),
    ...(num("--top-p", o["top-p"]) !== undefined ? { topP: num("--top-p", o["top-p"])! } : {}),
    ...(num("--max-tokens", o["max-tokens"]) !== undefined
      ? { maxTokens: num("--max-tokens", o["max-tokens"])! }
      : {}),
  };
  try {
    const messages = [
      ...(o.system ? [{ role: "system" as const, content: o.system }] : []),
      await client.userMessage(question, o.image ?? []),
    ];
    const r = o["no-stream"]
      ? await client.chat(messages, opts)
      : await client.stream(messages, out, opts);
    if (o["no-stream"]) out(r.text);
    out("\n");
    err(
      `latency: ${r.ttftMs !== undefined ? `first token ${r.ttftMs.toFixed(0)} ms, ` : ""}total ${r.latencyMs.toFixed(0)} ms${r.usage ? `, ${r.usage.prompt_tokens} prompt + ${r.usage.completion_tokens} completion tokens` : ""}\n`,
    );
    return 0;
  } catch (e) {
    if (e instanceof ApiError || e instanceof ImageLimitError || e instanceof ConnectionError) {
      err(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

if (require.main === module) {
  void runCommand(USAGE, () =>
    askCommand(
      process.argv.slice(2),
      (s) => process.stdout.write(s),
      (s) => process.stderr.write(s),
    ),
  );
}
