/**
 * Properties of the memory plan over the whole catalog (fast-check): what must hold whatever the
 * model, card, parallelism and knobs.
 */
import fc from "fast-check";
import { setAt } from "./support/plans";
import { describe, expect, it } from "vitest";
import { GPUS } from "../catalogs/gpus";
import { MODELS } from "../catalogs/models";
import { compareVersions, parseVersion, vllmFeatures } from "../catalogs/vllm";
import { allowedTensorParallelSizes, planMemory, planStack, type Setup } from "../plan";
import { DTYPE_BYTES, GiB, visionBytes } from "../plan/memory";
import { RENDERED_FLAGS } from "../plan/vllm-args";
import { VLLM_FLAG_SPANS, VLLM_SHORT_FLAGS } from "../catalogs/vllm-flags";
import { ConfigError, type Issue } from "../config/errors";
import { readStackFile, stackNames } from "../config/stack-file";

// One seed: the same cases on every run and machine (a failure names its counterexample).
fc.configureGlobal({ seed: 20261126 });

const models = [...MODELS.values()];
const gpus = [...GPUS.values()];
const versions = ["0.6.3", "0.7.3", "0.8.5", "0.9.2", "0.10.2", "0.11.0", "0.21.0"];

const setupArb: fc.Arbitrary<Setup> = fc
  .record({
    model: fc.constantFrom(...models),
    gpu: fc.constantFrom(...gpus),
    version: fc.constantFrom(...versions),
    tpIndex: fc.nat(),
    pp: fc.integer({ min: 1, max: 4 }),
    util: fc.integer({ min: 50, max: 98 }).map((u) => u / 100),
    maxModelLen: fc.integer({ min: 256, max: 32768 }),
    imageLimit: fc.integer({ min: 0, max: 8 }),
    videoLimit: fc.integer({ min: 0, max: 2 }),
    maxPixels: fc.integer({ min: 4, max: 16384 }).map((t) => t * 784),
    enforceEager: fc.boolean(),
    blockSize: fc.constantFrom(8, 16, 32),
    fp8: fc.boolean(),
  })
  .map((r) => {
    const tps = allowedTensorParallelSizes(r.model, 8);
    const tp = tps[r.tpIndex % tps.length]!;
    const dtype =
      r.gpu.computeCapability >= 8 && !r.model.quantization
        ? ("bfloat16" as const)
        : ("float16" as const);
    return {
      model: r.model,
      weightsScale: 1,
      gpu: r.gpu,
      tp,
      pp: r.pp,
      dtype,
      kvBytes: r.fp8 ? 1 : 2,
      features: vllmFeatures(parseVersion(r.version)!, r.gpu.computeCapability),
      maxModelLen: r.maxModelLen,
      util: r.util,
      imageLimit: r.imageLimit,
      videoLimit: r.videoLimit,
      maxPixels: r.maxPixels,
      enforceEager: r.enforceEager,
      blockSize: r.blockSize,
    };
  });

describe("plan properties", () => {
  it("fits exactly when one max-length sequence fits in the KV cache", () => {
    fc.assert(
      fc.property(setupArb, (s) => {
        const p = planMemory(s);
        expect(p.fits).toBe(p.kvCacheTokens >= s.maxModelLen && p.kvCacheTokens > 0);
        expect(p.maxConcurrency >= 1).toBe(p.fits);
      }),
      { numRuns: 400 },
    );
  });

  it("KV capacity is whole blocks and never negative", () => {
    fc.assert(
      fc.property(setupArb, (s) => {
        const p = planMemory(s);
        expect(p.kvCacheTokens).toBeGreaterThanOrEqual(0);
        expect(p.kvCacheTokens % s.blockSize).toBe(0);
        for (const st of p.stages) expect(st.kvCacheGiB).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 300 },
    );
  });

  it("more GPUs never means less KV cache: doubling TP (where allowed) or adding a pipeline stage", () => {
    fc.assert(
      fc.property(setupArb, (s) => {
        const p = planMemory(s);
        const moreStages = planMemory({ ...s, pp: s.pp + 1 });
        expect(moreStages.kvCacheTokens).toBeGreaterThanOrEqual(p.kvCacheTokens);
        if (allowedTensorParallelSizes(s.model, 64).includes(s.tp * 2)) {
          expect(planMemory({ ...s, tp: s.tp * 2 }).kvCacheTokens).toBeGreaterThanOrEqual(
            p.kvCacheTokens,
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  it("a larger memory budget never means less KV cache; the vision profile stays within its budget", () => {
    fc.assert(
      fc.property(setupArb, fc.integer({ min: 1, max: 20 }), (s, d) => {
        const p = planMemory(s);
        if (s.util + d / 100 <= 1)
          expect(planMemory({ ...s, util: s.util + d / 100 }).kvCacheTokens).toBeGreaterThanOrEqual(
            p.kvCacheTokens,
          );
        // Both engines fill a budget with whole dummy items (V0: whole sequences of every allowed
        // item, V1: whole items of one modality), so a bigger image can mean fewer of them (vLLM's
        // own floor): what holds is the budget bound, whenever more than one item is profiled.
        const bigger = planMemory({ ...s, maxPixels: s.maxPixels + d * 784 * 64 });
        const pr = bigger.profile;
        if (s.features.engine === "v1" && pr.itemsProfiled > 1)
          expect(pr.itemsProfiled * pr.tokensPerItem).toBeLessThanOrEqual(
            Math.max(pr.maxNumBatchedTokens, pr.tokensPerItem),
          );
      }),
      { numRuns: 300 },
    );
  });

  it("weights per GPU add up to the checkpoint across the TP × PP grid (nothing lost, nothing double-counted beyond replicas)", () => {
    fc.assert(
      fc.property(setupArb, (s) => {
        const one = planMemory({ ...s, tp: 1, pp: 1 }).stages[0]!.weightsGiB;
        const grid = planMemory({ ...s, pp: s.pp });
        // vLLM builds the vision tower on every pipeline stage: count it once.
        const towers =
          s.model.vision && (s.imageLimit > 0 || s.videoLimit > 0)
            ? ((grid.stages.length - 1) *
                visionBytes(s.model.vision, s.model.hiddenSize, DTYPE_BYTES[s.dtype])) /
              GiB
            : 0;
        // A tied model's LM head is a second copy of the embeddings when it sits on another stage.
        const lmCopy =
          s.model.tiedEmbeddings && grid.stages.length > 1
            ? (s.model.vocabSize * s.model.hiddenSize * DTYPE_BYTES[s.dtype]) / GiB
            : 0;
        const sum = grid.stages.reduce((a, st) => a + st.weightsGiB, 0) * s.tp - towers - lmCopy;
        // Replicated norms and KV heads can only add.
        expect(sum).toBeGreaterThanOrEqual(one * 0.999);
        expect(sum).toBeLessThan(one * 1.35);
      }),
      { numRuns: 300 },
    );
  });
});

// ---- the stack's input (issue 21): generators for free text and extraArgs spellings ----------

type RawStack = Record<string, Record<string, unknown>>;
const STACKS = stackNames();
const rawOf = (name: string) => structuredClone(readStackFile(name).sections) as RawStack;

function issuesOf(raw: RawStack): Issue[] {
  try {
    planStack(raw);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return [...e.issues];
    throw e;
  }
}

const issuePath = (p: string) => p.replace(/\.(\d+)(?=\.|$)/g, "[$1]");

/** Free-text fields that reach a node, a path or a command line, with a valid value each. */
const TEXT_FIELDS: readonly (readonly [string, string, (s: string) => boolean])[] = [
  ["model.servedModelName", "qwen", () => true],
  ["vllm.extraArgs.0", "--seed", () => true],
  ["provisioning.hfEndpoint", "https://hub.example.com", () => true],
  ["provisioning.mirrorUrl", "https://mirror.example.com/{repo}", () => true],
  ["secrets.hfToken", "file:/run/hf-token", () => true],
  ["model.custom.name", "lab/x", (s) => rawOf(s)["model"]!["custom"] !== undefined],
  ["target.hosts.0.address", "192.0.2.50", (s) => rawOf(s)["target"]!["kind"] === "hosts"],
  ["target.sshPrivateKeyPath", "~/.ssh/id", (s) => rawOf(s)["target"]!["kind"] === "hosts"],
  ["target.knownHostsPath", "~/.ssh/kh", (s) => rawOf(s)["target"]!["kind"] === "hosts"],
];
const CONTROL_CHARS = [
  ..."\n\r\t\u0000\u0001\u001b\u007f\u0085\u2028\u2029",
  ...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)),
];

describe("input properties (issue 21)", () => {
  const fieldCase = fc
    .record({
      stack: fc.constantFrom(...STACKS),
      field: fc.constantFrom(...TEXT_FIELDS),
      control: fc.constantFrom(...CONTROL_CHARS),
      tail: fc.string({ maxLength: 12 }),
      at: fc.nat(),
    })
    .filter((r) => r.field[2](r.stack));

  it("a control character anywhere in a free-text field is one error at that field, naming it", () => {
    fc.assert(
      fc.property(fieldCase, ({ stack, field: [path, ok], control, tail, at }) => {
        const text = `${ok}${tail}`;
        const i = at % (text.length + 1);
        const bad = `${text.slice(0, i)}${control}${text.slice(i)}`;
        const mine = issuesOf(setAt(rawOf(stack), path, bad)).filter(
          (x) => x.path === issuePath(path),
        );
        expect(mine).toHaveLength(1);
        expect(mine[0]!.value).toBe(bad);
        expect(mine[0]!.message).toMatch(/control character|whitespace/);
      }),
      { numRuns: 300 },
    );
  });

  /** Repository ids by the hub's rule: segments of [\w.-], starting and ending with [\w], no -- or .. */
  const segment = fc
    .stringMatching(/^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,20}[A-Za-z0-9_])?$/)
    .filter((s) => !s.includes("--") && !s.includes(".."));
  const repoId = fc
    .tuple(fc.option(segment, { nil: undefined }), segment)
    .map(([ns, name]) => (ns ? `${ns}/${name}` : name))
    .filter((id) => !id.endsWith(".git"));

  it("every repository id the hub admits is admitted as model.custom.name (no valid variation refused)", () => {
    fc.assert(
      fc.property(fc.constantFrom("lab", "lab-single"), repoId, (stack, id) => {
        expect(issuesOf(setAt(rawOf(stack), "model.custom.name", id))).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it("a repository id with a character, a slash or a sequence the hub refuses is refused", () => {
    const broken = fc
      .tuple(
        repoId,
        fc.constantFrom(" ", "/", "--", "..", "$", ";", "'", "`", "\\", "@", ":"),
        fc.nat(),
      )
      .map(([id, bad, at]) => {
        const i = at % (id.length + 1);
        return `${id.slice(0, i)}${bad}${id.slice(i)}`;
      })
      // A "/" may land where it makes another valid "ns/name".
      .filter((id) => /[^\w./-]|--|\.\.|\/.*\/|^[-./]|[-./]$|\/[-.]|[-.]\//.test(id));
    fc.assert(
      fc.property(broken, (id) => {
        const mine = issuesOf(setAt(rawOf("lab"), "model.custom.name", id)).filter(
          (x) => x.path === "model.custom.name",
        );
        expect(mine).toHaveLength(1);
      }),
      { numRuns: 200 },
    );
  });

  /** Spellings of a flag vLLM reads as the same: "_" for "-", "=value", the short alias. */
  const aliasesOf = (flag: string) =>
    Object.entries(VLLM_SHORT_FLAGS)
      .filter(([, long]) => long === flag)
      .map(([short]) => short);
  const renderedSpelling = fc
    .record({
      flag: fc.constantFrom(...Object.keys(RENDERED_FLAGS)),
      underscores: fc.boolean(),
      negate: fc.boolean(),
      inline: fc.boolean(),
      short: fc.boolean(),
    })
    .map(({ flag, underscores, negate, inline, short }) => {
      const aliases = aliasesOf(flag);
      let name =
        negate && VLLM_FLAG_SPANS[`--no-${flag.slice(2)}`] ? `--no-${flag.slice(2)}` : flag;
      if (short && aliases.length && !name.startsWith("--no-")) name = aliases[0]!;
      else if (underscores) name = `--${name.slice(2).replace(/-/g, "_")}`;
      return { name, args: inline ? [`${name}=2`] : [name, "2"] };
    });
  const VALID_EXTRA: readonly string[][] = [
    ["--seed", "7"],
    ["--seed=7"],
    ["--enable-prefix-caching"],
    ["--no-enable-prefix-caching"],
    ["--max-logprobs", "5"],
    ["--disable-log-stats"],
  ];
  const validArgs = fc
    .array(fc.constantFrom(...VALID_EXTRA), { maxLength: 3 })
    .map((xs) => xs.flat());

  it("a rendered flag in any spelling, anywhere among valid extra flags, is refused at its index", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...STACKS),
        validArgs,
        renderedSpelling,
        validArgs,
        (stack, before, { args }, after) => {
          const all = [...before, ...args, ...after];
          const raw = rawOf(stack);
          raw["vllm"] = { ...raw["vllm"], extraArgs: all };
          const mine = issuesOf(raw).filter((x) => x.path === `vllm.extraArgs[${before.length}]`);
          expect(mine).toHaveLength(1);
          expect(mine[0]!.message).toMatch(/rendered from|target\.replicas/);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a switch given a value, inline or after it, is refused; the valid extra flags plan", () => {
    // Switches of every release the shipped stacks pin (0.11.0 and 0.31.0): a pair, open-ended, from ≤ 0.11.0.
    const since = (f: string) => /^([\d.]+)-$/.exec(VLLM_FLAG_SPANS[f] ?? "")?.[1];
    const early = (f: string) =>
      since(f) !== undefined &&
      compareVersions(parseVersion(since(f)!)!, parseVersion("0.11.0")!) <= 0;
    const switches = Object.keys(VLLM_FLAG_SPANS).filter(
      (f) =>
        f.startsWith("--no-") &&
        early(f) &&
        early(`--${f.slice(5)}`) &&
        !RENDERED_FLAGS[`--${f.slice(5)}`],
    );
    expect(switches.length).toBeGreaterThan(20);
    fc.assert(
      fc.property(
        fc.constantFrom(...STACKS),
        validArgs,
        fc.constantFrom(...switches),
        fc.boolean(),
        fc.constantFrom("true", "false", "1", "0", "True"),
        fc.boolean(),
        (stack, before, no, negate, word, inline) => {
          const raw = rawOf(stack);
          raw["vllm"] = { ...raw["vllm"], extraArgs: before };
          expect(issuesOf(raw)).toEqual([]);
          const flag = negate ? no : `--${no.slice(5)}`;
          const args = inline ? [`${flag}=${word}`] : [flag, word];
          raw["vllm"] = { ...raw["vllm"], extraArgs: [...before, ...args] };
          const at = before.length + (inline ? 0 : 1);
          const mine = issuesOf(raw).filter((x) => x.path === `vllm.extraArgs[${at}]`);
          expect(mine).toHaveLength(1);
          expect(mine[0]!.message).toMatch(/takes no value/);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a host's address is a bare IP or DNS name: any is admitted; with a port, user, scheme or space it is refused", () => {
    const ipv4 = fc
      .tuple(
        fc.integer({ min: 1, max: 223 }),
        fc.nat(255),
        fc.nat(255),
        fc.integer({ min: 1, max: 254 }),
      )
      .map((o) => o.join("."))
      .filter((a) => !a.startsWith("127."));
    const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/);
    const dns = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join("."));
    const host = fc
      .oneof(ipv4, dns)
      .filter((h) => !/^[\d.]+$/.test(h) || /^(\d+\.){3}\d+$/.test(h));
    const wrap = fc.constantFrom(
      (h: string) => `${h}:22`,
      (h: string) => `root@${h}`,
      (h: string) => `ssh://${h}`,
      (h: string) => ` ${h}`,
      (h: string) => `${h} `,
    );
    fc.assert(
      fc.property(fc.constantFrom("hosts", "lab-single"), host, wrap, (stack, h, w) => {
        const path = "target.hosts[0].address";
        const ok = issuesOf(setAt(rawOf(stack), "target.hosts.0.address", h));
        expect(ok.filter((x) => x.path === path)).toEqual([]);
        const bad = issuesOf(setAt(rawOf(stack), "target.hosts.0.address", w(h)));
        expect(bad.filter((x) => x.path === path)).toHaveLength(1);
      }),
      { numRuns: 200 },
    );
  });

  it("a CIDR with host bits is refused with its network; the network itself is not", () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)),
        fc.integer({ min: 16, max: 31 }),
        (octets, prefix) => {
          const addr = octets.reduce((a, o) => a * 256 + o, 0);
          const size = 2 ** (32 - prefix);
          const net = Math.floor(addr / size) * size;
          const dotted = (n: number) =>
            [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
          const given = `${octets.join(".")}/${prefix}`;
          const raw = setAt(rawOf("single-gpu"), "network.sshCidrs", [given]);
          const mine = issuesOf(raw).filter((x) => x.path === "network.sshCidrs[0]");
          if (net === addr) expect(mine).toEqual([]);
          else {
            expect(mine).toHaveLength(1);
            expect(mine[0]!.message).toContain(`write ${dotted(net)}/${prefix}`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
