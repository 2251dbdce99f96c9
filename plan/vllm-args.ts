/**
 * The `vllm serve` command line in the pinned version's syntax. Secrets never appear here: the API
 * key reaches vLLM as VLLM_API_KEY from a root-only environment file.
 */
import type { VllmFeatures } from "../catalogs/vllm";
import type { VllmConfig } from "../config/schema";
import type { Dtype } from "./memory";

export interface ArgsInput {
  readonly modelDir: string;
  readonly servedModelName: string;
  readonly vllm: VllmConfig;
  readonly features: VllmFeatures;
  readonly dtype: Dtype;
  readonly tp: number;
  readonly pp: number;
  readonly multiNode: boolean;
  readonly hasVision: boolean;
}

const DTYPE_FLAG: Readonly<Record<Dtype, string>> = {
  bfloat16: "bfloat16",
  float16: "half",
  float32: "float32",
};

interface FlagRow {
  readonly flag: string;
  /** Where its value comes from (said when `extraArgs` repeats the flag). */
  readonly from: string;
  /** Its value(s) on the command line: undefined leaves the flag out, [] renders it bare. */
  readonly render?: (a: ArgsInput) => string[] | undefined;
}

const value = (x: string | number): string[] => [String(x)];

/**
 * Every flag this project owns, in the order it renders them: the one table the renderer walks and
 * `extraArgs` is checked against, so the two cannot drift. Rows without `render` are never rendered
 * and still refused in `extraArgs` (said why).
 */
export const VLLM_FLAG_TABLE: readonly FlagRow[] = [
  {
    flag: "--served-model-name",
    from: "model.servedModelName",
    render: (a) => value(a.servedModelName),
  },
  { flag: "--host", from: "(fixed: 0.0.0.0)", render: () => value("0.0.0.0") },
  { flag: "--port", from: "vllm.port", render: (a) => value(a.vllm.port) },
  { flag: "--dtype", from: "vllm.dtype", render: (a) => value(DTYPE_FLAG[a.dtype]) },
  { flag: "--max-model-len", from: "vllm.maxModelLen", render: (a) => value(a.vllm.maxModelLen) },
  {
    flag: "--gpu-memory-utilization",
    from: "vllm.gpuMemoryUtilization",
    render: (a) => value(a.vllm.gpuMemoryUtilization),
  },
  {
    flag: "--limit-mm-per-prompt",
    from: "vllm.imageLimit / vllm.videoLimit",
    render: (a) =>
      !a.hasVision
        ? undefined
        : a.features.limitMmSyntax === "json"
          ? value(JSON.stringify({ image: a.vllm.imageLimit, video: a.vllm.videoLimit }))
          : value(`image=${a.vllm.imageLimit},video=${a.vllm.videoLimit}`),
  },
  {
    flag: "--tensor-parallel-size",
    from: "vllm.tensorParallelSize",
    render: (a) => (a.tp > 1 ? value(a.tp) : undefined),
  },
  {
    flag: "--pipeline-parallel-size",
    from: "vllm.pipelineParallelSize",
    render: (a) => (a.pp > 1 ? value(a.pp) : undefined),
  },
  {
    flag: "--distributed-executor-backend",
    from: "(rendered from the node count)",
    render: (a) => (a.multiNode ? value("ray") : undefined),
  },
  {
    flag: "--worker-use-ray",
    from: "(deprecated: rendered as --distributed-executor-backend ray)",
  },
  {
    flag: "--enforce-eager",
    from: "vllm.enforceEager",
    render: (a) => (a.vllm.enforceEager ? [] : undefined),
  },
  {
    flag: "--max-num-batched-tokens",
    from: "vllm.maxNumBatchedTokens",
    render: (a) =>
      a.vllm.maxNumBatchedTokens !== undefined ? value(a.vllm.maxNumBatchedTokens) : undefined,
  },
  {
    flag: "--max-num-seqs",
    from: "vllm.maxNumSeqs",
    render: (a) => (a.vllm.maxNumSeqs !== undefined ? value(a.vllm.maxNumSeqs) : undefined),
  },
  {
    flag: "--block-size",
    from: "vllm.blockSize",
    render: (a) => (a.vllm.blockSize !== 16 ? value(a.vllm.blockSize) : undefined),
  },
  {
    flag: "--quantization",
    from: "vllm.quantization",
    render: (a) => (a.vllm.quantization ? value(a.vllm.quantization) : undefined),
  },
  {
    flag: "--kv-cache-dtype",
    from: "vllm.kvCacheDtype",
    render: (a) => (a.vllm.kvCacheDtype !== "auto" ? value(a.vllm.kvCacheDtype) : undefined),
  },
  {
    flag: "--mm-processor-kwargs",
    from: "vllm.minPixels / vllm.maxPixels",
    render: (a) => {
      const v = a.vllm;
      if (!a.hasVision || !a.features.mmProcessorKwargs) return undefined;
      if (v.minPixels === undefined && v.maxPixels === undefined) return undefined;
      const kw: Record<string, number> = {};
      if (v.minPixels !== undefined) kw["min_pixels"] = v.minPixels;
      if (v.maxPixels !== undefined) kw["max_pixels"] = v.maxPixels;
      return value(JSON.stringify(kw));
    },
  },
  {
    flag: "--swap-space",
    from: "vllm.swapSpaceGiB",
    render: (a) =>
      a.vllm.swapSpaceGiB !== undefined && a.features.swapSpace
        ? value(a.vllm.swapSpaceGiB)
        : undefined,
  },
  {
    flag: "--disable-custom-all-reduce",
    from: "vllm.disableCustomAllReduce",
    render: (a) => (a.vllm.disableCustomAllReduce ? [] : undefined),
  },
  { flag: "--api-key", from: "secrets.apiKey (a flag would show the key in process lists)" },
  {
    flag: "--data-parallel-size",
    from: "target.replicas (data parallelism multiplies the GPUs a group needs: world size = TP × PP × DP, which the plan sizes as TP × PP)",
  },
  {
    flag: "--data-parallel-size-local",
    from: "target.replicas (data parallelism is planned as replicas, one vLLM group each)",
  },
  { flag: "--model", from: "model.id" },
  { flag: "--revision", from: "model.revision" },
];

/** Flags this project renders from typed settings, and where from; `extraArgs` may not repeat them. */
export const RENDERED_FLAGS: Readonly<Record<string, string>> = Object.fromEntries(
  VLLM_FLAG_TABLE.map((r) => [r.flag, r.from]),
);

/** One flag of `extraArgs`, its long spelling (aliases resolved, "_" as "-") and its position. */
export interface ExtraFlag {
  /** The long flag, "--no-…" kept: "--enforce-eager", "--no-enable-chunked-prefill". */
  readonly flag: string;
  /** As written, up to any "=". */
  readonly name: string;
  /** The part after "=", when the flag was written "--flag=value". */
  readonly inline?: string;
  readonly index: number;
  readonly text: string;
}

/** The flags of `extraArgs` (values skipped; a short alias without a long form kept as written). */
export function extraFlags(
  args: readonly string[],
  shortFlags: Readonly<Record<string, string>> = {},
): ExtraFlag[] {
  const out: ExtraFlag[] = [];
  args.forEach((text, index) => {
    if (!text.startsWith("-") || /^-\d/.test(text)) return;
    const eq = text.indexOf("=");
    const name = eq >= 0 ? text.slice(0, eq) : text;
    let flag = name.replace(/_/g, "-");
    if (!flag.startsWith("--")) flag = shortFlags[/^-O\d/.test(flag) ? "-O" : flag] ?? flag;
    out.push({ flag, name, ...(eq >= 0 ? { inline: text.slice(eq + 1) } : {}), index, text });
  });
  return out;
}

export function renderVllmArgs(a: ArgsInput): string[] {
  const args = ["serve", a.modelDir];
  for (const row of VLLM_FLAG_TABLE) {
    const values = row.render?.(a);
    if (values) args.push(row.flag, ...values);
  }
  args.push(...a.vllm.extraArgs);
  return args;
}

/** A POSIX-shell rendering of an argv, for people to read and paste. */
export function shellJoin(argv: readonly string[]): string {
  return argv
    .map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(" ");
}
