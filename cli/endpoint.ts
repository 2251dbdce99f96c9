/**
 * Where a deployment answers and what it accepts, from a stack (its plan: served model name, image
 * limit, max pixels; the head's address for hosts stacks, `pulumi stack output endpoint` for AWS) or
 * from a URL. The API key comes from QWEN_VL_API_KEY or a "file:" secret reference, never a flag.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { UsageError } from "../config/errors";
import { readStackPlan } from "./main";
import { secretSource } from "../config/schema";
import type { ClientOptions } from "../client/client";

export interface EndpointArgs {
  readonly stack?: string | undefined;
  readonly url?: string | undefined;
  readonly model?: string | undefined;
}

export async function resolveEndpoint(a: EndpointArgs): Promise<ClientOptions> {
  if (Boolean(a.stack) === Boolean(a.url))
    throw new UsageError("give exactly one of --stack <name> or --url <endpoint>");
  const envKey = process.env["QWEN_VL_API_KEY"];
  if (a.url) {
    const baseUrl = a.url.replace(/\/+$/, "").replace(/\/v1$/, "");
    let model = a.model;
    if (!model) {
      const res = await fetch(`${baseUrl}/v1/models`, {
        headers: envKey ? { Authorization: `Bearer ${envKey}` } : {},
        signal: AbortSignal.timeout(10_000),
      }).catch((e: Error) => {
        throw new UsageError(
          `cannot reach ${baseUrl}/v1/models (${String(e.cause ?? e.message)}); give --model or check the URL`,
        );
      });
      if (!res.ok)
        throw new UsageError(
          `${baseUrl}/v1/models answered HTTP ${res.status}; give --model (and QWEN_VL_API_KEY if the API is protected)`,
        );
      model = ((await res.json()) as { data: { id: string }[] }).data[0]?.id;
      if (!model) throw new UsageError(`${baseUrl} serves no model`);
    }
    return { baseUrl, model, ...(envKey ? { apiKey: envKey } : {}) };
  }
  const plan = readStackPlan(a.stack!);
  let baseUrl: string;
  if (plan.target === "hosts") {
    const head = plan.nodes.find((n) => n.role === "head")!;
    baseUrl = `http://${head.host!.address}:${plan.apiPort}`;
  } else {
    const r = spawnSync("pulumi", ["stack", "output", "endpoint", "--stack", a.stack!], {
      encoding: "utf8",
    });
    if (r.status !== 0 || !r.stdout.trim())
      throw new UsageError(
        `cannot read the endpoint of AWS stack ${a.stack} (pulumi stack output endpoint): ${(r.stderr || String(r.error ?? "")).trim().slice(0, 200)}; give --url instead`,
      );
    baseUrl = r.stdout.trim();
  }
  let apiKey = envKey;
  const ref = plan.secrets.apiKey;
  const source = secretSource(ref);
  if (!apiKey && source?.kind === "file") apiKey = readFileSync(source.name, "utf8").trim();
  if (!apiKey && ref)
    throw new UsageError(`stack ${a.stack} protects its API with ${ref}: set QWEN_VL_API_KEY`);
  return {
    baseUrl,
    model: a.model ?? plan.model.servedModelName,
    imageLimit: plan.imageLimit,
    maxPixels: plan.maxPixels,
    ...(apiKey ? { apiKey } : {}),
  };
}
