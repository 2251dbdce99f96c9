/**
 * The readiness gate's readers (provisioning/scripts/readiness.py, stdlib Python on the node), on
 * what the real vLLM wrote: its /metrics CacheConfig gauge and its journal when a start failed, as
 * captured from vLLM 0.31.0's CPU build on a lab node (test/fixtures/vllm/). The gate itself runs
 * against the real engine in test/lab.e2e.test.ts and test/vllm-real.test.ts.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { planStack } from "../plan";
import { readStackFile } from "../config/stack-file";

const SCRIPTS = join(__dirname, "../provisioning/scripts");
const FIXTURES = join(__dirname, "fixtures/vllm");
const fixture = (name: string) => readFileSync(join(FIXTURES, name), "utf8");

/** Calls readiness.<fn>(*args) in Python; its JSON result. */
function call(fn: string, ...args: unknown[]): unknown {
  const r = spawnSync(
    "python3",
    [
      "-c",
      "import json, sys; sys.path.insert(0, sys.argv[1]); import readiness as g; print(json.dumps(getattr(g, sys.argv[2])(*json.loads(sys.stdin.read()))))",
      SCRIPTS,
      fn,
    ],
    { input: JSON.stringify(args), encoding: "utf8" },
  );
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe("readiness.py: the KV cache vLLM allocated, against the plan", () => {
  const metrics = fixture("cache-config-info-0.31.0-cpu.prom");

  it("reads vllm:cache_config_info's kv_cache_size_tokens (0.31.0), else num_gpu_blocks × block_size", () => {
    expect(call("allocated_kv_tokens", metrics)).toBe(2_097_152);
    // Releases whose CacheConfig has no kv_cache_size_tokens: blocks × block size (16,384 × 128).
    const older = metrics.replace(/kv_cache_size_tokens="\d+",/, "");
    expect(older).not.toContain("kv_cache_size_tokens");
    expect(call("allocated_kv_tokens", older)).toBe(16_384 * 128);
    // Before the KV cache exists the blocks are "None": nothing allocated to compare.
    expect(
      call("allocated_kv_tokens", older.replace(/num_gpu_blocks="\d+"/, 'num_gpu_blocks="None"')),
    ).toBeNull();
    expect(call("allocated_kv_tokens", "vllm:num_requests_running 0\n")).toBeNull();
  });

  it("the lab stack's plan is the figure the real engine exported (VLLM_CPU_KVCACHE_SPACE=1)", () => {
    const plan = planStack(readStackFile("lab-single").sections, { stack: "lab-single" });
    expect(plan.kvCachePlanned).toMatchObject({ device: "cpu", tokens: 2_097_152 });
    expect(metrics).toContain(`kv_cache_memory_bytes="${1 << 30}"`);
  });

  it("reports both numbers; refuses a cache that cannot hold one max_model_len request, with both", () => {
    expect(call("judge_kv", 2_097_152, 2_097_152, 4096, "cpu")).toEqual([
      ["KV cache: planned 2,097,152 tokens, vLLM allocated 2,097,152 (+0.0 %, cpu)"],
      null,
    ]);
    expect(call("judge_kv", 45_000, 50_000, 8192, "gpu")).toEqual([
      ["KV cache: planned 50,000 tokens, vLLM allocated 45,000 (-10.0 %, gpu)"],
      null,
    ]);
    const [lines, failure] = call("judge_kv", 3_000, 40_000, 8192, "gpu") as [string[], string];
    expect(lines).toEqual(["KV cache: planned 40,000 tokens, vLLM allocated 3,000 (-92.5 %, gpu)"]);
    expect(failure).toMatch(
      /^vLLM's KV cache holds 3,000 tokens, less than one request of max_model_len 8,192 \(the plan: 40,000\): lower vllm\.maxModelLen/,
    );
    expect(call("judge_kv", null, 40_000, 8192, "gpu")).toEqual([
      ["KV cache: this engine exports no vllm:cache_config_info on /metrics; not compared"],
      null,
    ]);
  });
});

describe("readiness.py: a vLLM that exits at startup is named by its root cause, not waited out", () => {
  it("a missing system library (libnuma): the worker's first exception and vLLM's own note", () => {
    expect(call("error_cause", fixture("journal-0.31.0-cpu-no-libnuma.txt"))).toBe(
      "AttributeError: '_OpNamespace' '_C' object has no attribute 'init_cpu_memory_env' (after: Failed to import from vllm._C: ImportError('libnuma.so.1: cannot open shared object file: No such file or directory'))",
    );
  });

  it("no C++ compiler for torch.compile: the worker's error, not the wrappers that re-raise it", () => {
    expect(call("error_cause", fixture("journal-0.31.0-cpu-no-gxx.txt"))).toBe(
      "torch._inductor.exc.InductorError: InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx: (None, 'g++')",
    );
  });

  it("only the last failed start counts: an earlier start's error is not this one's", () => {
    const both =
      fixture("journal-0.31.0-cpu-no-libnuma.txt") + fixture("journal-0.31.0-cpu-no-gxx.txt");
    expect(call("error_cause", both)).toMatch(/^torch\._inductor\.exc\.InductorError/);
    expect(call("error_cause", "Started qwen-vl-vllm.service\nINFO all good\n")).toBeNull();
  });
});
