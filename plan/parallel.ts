/**
 * What splits how: tensor-parallel sizes, quantization floors, dtype.
 */
import { supportsBf16, type Gpu } from "../catalogs/gpus";
import type { ModelSpec, Quantization } from "../catalogs/models";
import type { VllmConfig } from "../config/schema";
import type { Dtype } from "./memory";

// ---- parallelism ---------------------------------------------------------------------------

/** Why `tp` cannot shard `model`, or undefined when it can (vLLM's checks at model load). */
export function tensorParallelProblem(model: ModelSpec, tp: number): string | undefined {
  if (model.attentionHeads % tp !== 0)
    return `does not divide the model's ${model.attentionHeads} attention heads`;
  if (model.kvHeads % tp !== 0 && tp % model.kvHeads !== 0)
    return `neither divides nor is a multiple of the model's ${model.kvHeads} KV heads`;
  if (model.vision && model.vision.numHeads % tp !== 0)
    return `does not divide the vision tower's ${model.vision.numHeads} attention heads`;
  const q = model.quantization;
  if (q && q.groupSize > 0) {
    // Group scales (AWQ/GPTQ/W4A16) must not straddle ranks; FP8 128×128 blocks likewise
    // ("… is not divisible by weight quantization block_n = 128", vLLM fp8.py).
    const unit = q.groupSize >= 128 * 128 ? Math.sqrt(q.groupSize) : q.groupSize;
    const width = model.moe ? model.moe.expertIntermediateSize : model.intermediateSize;
    const shard = width / tp;
    if (!Number.isInteger(shard) || shard % unit !== 0)
      return `splits ${model.moe ? "the experts' intermediate size" : "intermediate_size"} ${width} into ${shard} per GPU, not a multiple of the quantization ${unit === q.groupSize ? "group" : "block"} size ${unit} ("input size is not aligned", QwenLM/Qwen3-VL #231)`;
  }
  return undefined;
}

export function allowedTensorParallelSizes(model: ModelSpec, max = 64): number[] {
  const out: number[] = [];
  for (let tp = 1; tp <= max; tp++) if (!tensorParallelProblem(model, tp)) out.push(tp);
  return out;
}

// ---- quantization ----------------------------------------------------------------------------

/**
 * Why vLLM cannot run this checkpoint's quantization on `gpu` at `tp`, or undefined (with a warning
 * where it runs a slower fallback). Floors are each method's `get_min_capability` in vLLM 0.11.0:
 * awq 7.5 (awq_marlin 8.0), gptq 6.0 (gptq_marlin 8.0), fp8 8.0 with W8A8 from 8.9 and weight-only
 * Marlin below ("use_marlin = not has_device_capability(89)"), compressed-tensors FP8 W8A8 8.9
 * (Marlin W8A16 from 8.0), W4A16/W8A16 8.0, bitsandbytes 7.0; pre-quantized bitsandbytes refuses
 * TP > 1 ("Prequant BitsAndBytes models with tensor parallelism is not supported").
 */
export function quantizationProblem(
  q: Quantization,
  gpu: Gpu,
  tp: number,
  warnings: string[],
): string | undefined {
  const cc = gpu.computeCapability;
  const on = `${gpu.name} (compute capability ${cc})`;
  switch (q.method) {
    case "awq":
      if (cc < 7.5) return `AWQ needs compute capability ≥ 7.5; ${on} has none of its kernels`;
      if (cc < 8.0)
        warnings.push(`AWQ on ${on} runs the plain AWQ kernel (Marlin needs ≥ 8.0): slower`);
      return undefined;
    case "gptq":
      if (cc < 6.0) return `GPTQ needs compute capability ≥ 6.0 (${on})`;
      return undefined;
    case "fp8":
    case "compressed-tensors":
      if (q.method === "compressed-tensors" && !q.float) {
        if (cc < 8.0 && q.bits === 4)
          return `compressed-tensors W4A16 runs on Marlin kernels, compute capability ≥ 8.0; ${on} has none`;
        return undefined;
      }
      if (cc < 8.0)
        return `FP8 weights need compute capability ≥ 8.0 (8.9 for FP8 compute); ${on} cannot load them. Serve the bf16/fp16 model or an AWQ/GPTQ one`;
      if (cc < 8.9)
        warnings.push(
          `${on} has no FP8 compute (needs ≥ 8.9): vLLM runs the FP8 weights weight-only through Marlin, dequantizing to 16 bits`,
        );
      return undefined;
    case "bitsandbytes":
      if (cc < 7.0) return `bitsandbytes needs compute capability ≥ 7.0 (${on})`;
      if (tp > 1)
        return `a pre-quantized bitsandbytes checkpoint cannot be split by tensor parallelism (vLLM: "Prequant BitsAndBytes models with tensor parallelism is not supported. Please try with pipeline parallelism."); set vllm.tensorParallelSize: 1 and use pipeline stages`;
      return undefined;
  }
}

/** "awq-int4", "fp8", "bitsandbytes-nf4", "compressed-tensors-fp8": what the checkpoint holds. */
export function quantizationLabel(q: Quantization): string {
  if (q.method === "fp8") return "fp8";
  if (q.method === "bitsandbytes") return q.bits === 4 ? "bitsandbytes-nf4" : "bitsandbytes-int8";
  if (q.method === "compressed-tensors" && q.float) return "compressed-tensors-fp8";
  return `${q.method}-int${q.bits}`;
}

// ---- dtype ---------------------------------------------------------------------------------

export function resolveDtype(
  requested: VllmConfig["dtype"],
  model: ModelSpec,
  gpu: Gpu,
  notes: string[],
): { dtype?: Dtype; problem?: string } {
  if (requested === "bfloat16" && !supportsBf16(gpu)) {
    return {
      problem: `${gpu.name} (compute capability ${gpu.computeCapability}) has no bf16 (needs ≥ 8.0); use "half" or "auto"`,
    };
  }
  if (requested === "half" || requested === "float16") return { dtype: "float16" };
  if (requested === "bfloat16" || requested === "float32") return { dtype: requested };
  if (model.torchDtype === "bfloat16" && !supportsBf16(gpu)) {
    notes.push(
      `dtype auto → half: ${gpu.name} (compute capability ${gpu.computeCapability}) has no bf16`,
    );
    return { dtype: "float16" };
  }
  return { dtype: model.torchDtype };
}
