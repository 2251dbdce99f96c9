/**
 * What a person can change when the model does not fit, with the numbers for each.
 */
import { GPUS, supportsBf16 } from "../catalogs/gpus";
import { INSTANCE_TYPES } from "../catalogs/instances";
import { awqVariantOf, quantizedVariantsOf } from "../catalogs/models";
import { v1Unsupported, vllmFeatures } from "../catalogs/vllm";
import type { StackConfig } from "../config/schema";
import { PIXELS_PER_VISUAL_TOKEN, maxImageTokens, type Dtype } from "./memory";
import type { Setup } from "./types";
import { planMemory } from "./profile";
import {
  allowedTensorParallelSizes,
  quantizationProblem,
  resolveDtype,
  tensorParallelProblem,
} from "./parallel";
import type { Hardware } from "./hardware";

// ---- ways out ------------------------------------------------------------------------------

/**
 * One machine of another type, with the model or one of its quantized variants, that fits: the
 * three cheapest per hour, each with the KV cache it leaves. The same model is tried before its
 * variants; a variant must run on the type's GPU (`quantizationProblem`) and split over its GPUs.
 */
function instanceWaysOut(s: Setup, hw: Hardware): string[] {
  const options: { price: number; text: string }[] = [];
  const models = [s.model, ...quantizedVariantsOf(s.model.id)];
  for (const it of INSTANCE_TYPES.values()) {
    if (
      it.onDemandUsdPerHour >= hw.pricePerNode * hw.nodesPerReplica &&
      it.gpu === s.gpu.name &&
      it.gpuCount <= s.tp * s.pp
    )
      continue;
    const gpu = GPUS.get(it.gpu)!;
    const v1Settings = s.v1Settings ?? {};
    // A stack that asks for V1 cannot move where vLLM refuses it (VLLM_USE_V1=1).
    if (
      s.engineSet === "v1" &&
      v1Unsupported(s.features.version, gpu.computeCapability, v1Settings)
    )
      continue;
    const features = vllmFeatures(
      s.features.version,
      gpu.computeCapability,
      s.engineSet,
      v1Settings,
    );
    if (gpu.computeCapability < features.minComputeCapability) continue;
    for (const m of models) {
      if (m.quantization && quantizationProblem(m.quantization, gpu, it.gpuCount, []) !== undefined)
        continue;
      const tps = allowedTensorParallelSizes(m, it.gpuCount).filter((t) => t <= it.gpuCount);
      const tp = tps[tps.length - 1];
      if (!tp) continue;
      // The stack's dtype where this card has it; a variant's own (`--dtype auto`) otherwise.
      const dtype: Dtype =
        m === s.model && (s.dtype !== "bfloat16" || supportsBf16(gpu))
          ? s.dtype
          : resolveDtype("auto", m, gpu, []).dtype!;
      const p = planMemory({
        ...s,
        model: m,
        weightsScale: m === s.model ? s.weightsScale : 1,
        gpu,
        features,
        tp,
        pp: 1,
        dtype,
      });
      if (!p.fits) continue;
      options.push({
        price: it.onDemandUsdPerHour,
        text: `${m === s.model ? "" : `serve ${m.id} `}on ${it.name} (${it.gpuCount} × ${it.gpu}, TP ${tp}) at $${it.onDemandUsdPerHour.toFixed(2)}/h: ${p.kvCacheTokens} KV tokens`,
      });
      break;
    }
  }
  return options
    .sort((a, b) => a.price - b.price)
    .slice(0, 3)
    .map((o) => o.text);
}

/** The fewest GPUs of this card (TP within a node, PP across nodes) on which the setup fits. */
function smallestGrid(
  s: Setup,
  gpusPerNode: number,
): { tp: number; pp: number; tokens: number } | undefined {
  let best: { tp: number; pp: number; tokens: number } | undefined;
  for (const tp of allowedTensorParallelSizes(s.model, Math.max(8, gpusPerNode))) {
    for (let pp = 1; pp <= 16 && pp <= s.model.layers; pp++) {
      if (tp * pp <= s.tp * s.pp) continue;
      if (best && tp * pp >= best.tp * best.pp) break;
      const p = planMemory({ ...s, tp, pp });
      if (p.fits) {
        best = { tp, pp, tokens: p.kvCacheTokens };
        break;
      }
    }
  }
  return best;
}

export function waysOut(s: Setup, c: StackConfig, hw: Hardware): string[] {
  const out: string[] = [];
  const st = planMemory(s);
  const binding = st.stages.reduce((a, b) => (b.kvCacheTokens < a.kvCacheTokens ? b : a));
  out.push(
    `KV cache per GPU: ${binding.kvCacheGiB.toFixed(2)} GiB = ${binding.budgetGiB.toFixed(2)} GiB budget − ${binding.weightsGiB.toFixed(2)} GiB weights − ${binding.reservedGiB.toFixed(2)} GiB reserved → ${st.kvCacheTokens} tokens < maxModelLen ${s.maxModelLen}`,
  );

  // Largest max model length that fits (binary search: fewer tokens never need more memory).
  let lo = 0;
  let hi = s.maxModelLen - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (planMemory({ ...s, maxModelLen: mid }).fits) lo = mid;
    else hi = mid - 1;
  }
  if (lo >= 256) out.push(`set vllm.maxModelLen ≤ ${lo}`);

  for (let u = Math.round(s.util * 100) + 1; u <= 98; u++) {
    if (planMemory({ ...s, util: u / 100 }).fits) {
      out.push(`raise vllm.gpuMemoryUtilization to ${(u / 100).toFixed(2)}`);
      break;
    }
  }
  if (s.imageLimit > 0 && s.maxPixels > 1280 * PIXELS_PER_VISUAL_TOKEN) {
    const mp = 1280 * PIXELS_PER_VISUAL_TOKEN; // ≈ 1000 × 1000 px
    if (planMemory({ ...s, maxPixels: mp }).fits)
      out.push(
        `set vllm.maxPixels to ${mp} (${maxImageTokens(s.model.vision!, mp)} visual tokens per image at most) to shrink what the vision profile reserves`,
      );
  }
  if (
    !s.enforceEager &&
    planMemory(s).cudaGraphsInBudget &&
    planMemory({ ...s, enforceEager: true }).fits
  )
    out.push("set vllm.enforceEager: true (no CUDA graphs; slower decode)");

  const awq = awqVariantOf(s.model.id);
  const awqSetup = awq
    ? {
        ...s,
        model: awq,
        weightsScale: 1,
        dtype: s.dtype === "bfloat16" ? ("float16" as const) : s.dtype,
      }
    : undefined;
  if (awqSetup && !tensorParallelProblem(awqSetup.model, s.tp)) {
    const a = planMemory(awqSetup);
    if (a.fits) out.push(`serve ${awqSetup.model.id} (4-bit AWQ): ${a.kvCacheTokens} KV tokens`);
  }
  const grid = smallestGrid(s, hw.gpusPerNode);
  if (grid)
    out.push(
      `use more GPUs: ${grid.tp * grid.pp} × ${s.gpu.name} as TP ${grid.tp} × PP ${grid.pp} (${grid.pp} node(s) of ${grid.tp}): ${grid.tokens} KV tokens`,
    );
  else if (awqSetup) {
    const g = smallestGrid(awqSetup, hw.gpusPerNode);
    if (g)
      out.push(
        `serve ${awqSetup.model.id} on ${g.tp * g.pp} × ${s.gpu.name} (TP ${g.tp} × PP ${g.pp}): ${g.tokens} KV tokens`,
      );
  }
  if (c.target.kind === "aws") out.push(...instanceWaysOut(s, hw));
  return out;
}
