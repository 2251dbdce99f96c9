/**
 * Public vLLM startup logs of Qwen vision-language models, as the planner's setups (issue 11 item 4,
 * issue 20): each case quotes its source, the settings the log shows (defaults it did not print are
 * vLLM's for that version, noted) and the number vLLM logged. test/plan-calibration-vl.test.ts
 * scores the planner on them; a script can import them too (this file has no test of its own).
 *
 * What the KV number is: V1 "GPU KV cache size: N tokens"; V0 "# GPU blocks" × 16, or "the rest of
 * the memory reserved for KV Cache is X GiB" over the model's KV bytes per token.
 */
import { GPUS, customGpu, type Gpu } from "../../catalogs/gpus";
import { MODELS } from "../../catalogs/models";
import { parseVersion, vllmFeatures } from "../../catalogs/vllm";
import type { Setup } from "../../plan";
import { kvBytesPerToken } from "../../plan/memory";
import { setupFor } from "./plans";

const GiB = 1024 ** 3;
const model = (id: string) => MODELS.get(id)!;
const named = (gpu: Gpu, name: string): Gpu => ({ ...gpu, name });

export interface VlCase {
  readonly id: string;
  readonly source: string;
  readonly setup: Setup;
  /** KV tokens vLLM reported; undefined for a startup that failed. */
  readonly reportedTokens?: number;
  /** The startup failed for want of KV cache ("No available memory for the cache blocks", or max seq len > KV tokens). */
  readonly failed?: boolean;
}

// vLLM's own defaults where a log does not show a setting: both limits 999 (V1 from 0.8.4), the
// preprocessor's max_pixels (16384 tokens per image).
const setup = (
  id: string,
  gpu: Gpu,
  version: string,
  s: Partial<Setup> & Pick<Setup, "maxModelLen" | "util">,
): Setup =>
  setupFor(id, gpu, version, {
    imageLimit: 999,
    videoLimit: 999,
    maxPixels: 16384 * 784,
    ...s,
  });

const v1Default = 999; // limit_mm_per_prompt when unset, V1 from 0.8.4 (V0: 1)

export const VL_CASES: readonly VlCase[] = [
  {
    id: "C01",
    // "Model loading took 15.6271 GiB", "Encoder cache will be initialized with a budget of 16384
    // tokens, and profiled with 1 image items", "Available KV cache memory: 1.81 GiB",
    // "GPU KV cache size: 33,824 tokens". Non-default args: max_model_len 2048.
    source: "tsailiming/openshift-ai-bootstrap README (Qwen2.5-VL-7B, L4, vLLM 0.9.0.1 V1)",
    setup: setup("Qwen/Qwen2.5-VL-7B-Instruct", GPUS.get("L4")!, "0.9.0.1", {
      maxModelLen: 2048,
      util: 0.9,
      imageLimit: v1Default,
      videoLimit: v1Default,
    }),
    reportedTokens: 33824,
  },
  {
    id: "C02",
    // Same deployment with tensor_parallel_size 2, max_model_len 8192: "Available KV cache
    // memory: 10.04 GiB", "GPU KV cache size: 375,968 tokens".
    source:
      "tsailiming/openshift-ai-bootstrap README (Qwen2.5-VL-7B, 2 × L4 TP 2, vLLM 0.9.0.1 V1)",
    setup: setup("Qwen/Qwen2.5-VL-7B-Instruct", GPUS.get("L4")!, "0.9.0.1", {
      maxModelLen: 8192,
      util: 0.9,
      tp: 2,
    }),
    reportedTokens: 375968,
  },
  {
    id: "C03",
    // vllm/vllm-openai:v0.23.0, util 0.22, max_model_len from the model (128000): "profiled with 1
    // video items" at a budget of 114688 tokens, "Estimated CUDA graph memory: 0.53 GiB",
    // "Available KV cache memory: -14.28 GiB", "No available memory for the cache blocks".
    source:
      "public notes with a vllm-openai v0.23.0 log (Qwen2.5-VL-7B, A100-SXM4-80GB, util 0.22)",
    setup: setup(
      "Qwen/Qwen2.5-VL-7B-Instruct",
      named(GPUS.get("A100-80GB")!, "NVIDIA A100-SXM4-80GB"),
      "0.23.0",
      { maxModelLen: 128000, util: 0.22 },
    ),
    failed: true,
  },

  {
    id: "C20",
    // vllm #15783 (0.7.3, V0): "total_gpu_memory (79.32GiB) x gpu_memory_utilization (0.80)",
    // "model weights take 15.53GiB; non_torch_memory takes 0.09GiB; PyTorch activation peak memory
    // takes 1.72GiB; the rest of the memory reserved for KV Cache is 46.11GiB", "# cuda blocks:
    // 53965"; max_model_len 10240 (its concurrency line), eager. Limits 1 image and 1 video (V0's
    // default): a 32,768-token dummy prompt, longer than the 10,240 tokens of its one sequence, so
    // 0.7.3 profiles it as text (multimodal/profiling.py) and 1.72 GiB is a text profile's peak.
    source: "vllm-project/vllm#15783 (Qwen2-VL-7B, 80 GB, vLLM 0.7.3 V0)",
    setup: setup("Qwen/Qwen2-VL-7B-Instruct", customGpu(79.32, 8.0), "0.7.3", {
      maxModelLen: 10240,
      util: 0.8,
      enforceEager: true,
      imageLimit: 1,
      videoLimit: 1,
    }),
    reportedTokens: 53965 * 16,
  },
  {
    id: "C05",
    // vLLM 0.13.0, a Qwen3-VL MoE fine-tune (Qwen3VLMoeForConditionalGeneration, "Model loading took
    // 58.2299 GiB": the 30B-A3B's 57.87 GiB) on an H100 NVL (94 GB: 93.1 GiB to CUDA ⚠), default util
    // 0.9, max_model_len 8192: "profiled with 1 image items" at a budget of 16384 tokens,
    // "Available KV cache memory: 19.40 GiB", "GPU KV cache size: 211,936 tokens".
    source: "public vLLM 0.13.0 log (Qwen3-VL-30B-A3B fine-tune, H100 NVL, V1)",
    setup: setup("Qwen/Qwen3-VL-30B-A3B-Instruct", customGpu(93.1, 9.0), "0.13.0", {
      maxModelLen: 8192,
      util: 0.9,
      maxPixels: 16384 * 1024, // Qwen3-VL's processor: longest_edge 16777216 px, 32-px units
    }),
    reportedTokens: 211936,
  },
  {
    id: "C06",
    // Qwen3-VL-2B-Instruct on an RTX 5070 Ti 16 GB (15.47 GiB to CUDA ⚠), LLM(max_model_len=2048,
    // gpu_memory_utilization=0.9, max_num_seqs=1, enforce_eager=True); vLLM version not shown
    // (≥ 0.11.0 for Qwen3-VL): "Model loading took 4.24 GiB", "Available KV cache memory: 8.13 GiB",
    // "GPU KV cache size: 76,144 tokens". Its release is not printed; its numbers rule out
    // 0.11.x and 0.12.x, whose dummy video output padded to 151,250 tokens (the encoder budget,
    // then the video's budget tokens; × 4 with the deepstack features) takes 2.3 GiB alone, more
    // than the 1.55 GiB its log leaves beside the weights. Planned at 0.13.0; every later release
    // (0.15.0, 0.19.1, 0.27.0, 0.31.0) plans the same KV cache here.
    source: "public README with a Qwen3-VL-2B log (RTX 5070 Ti 16 GB, V1)",
    setup: setup("Qwen/Qwen3-VL-2B-Instruct", customGpu(15.47, 12.0), "0.13.0", {
      maxModelLen: 2048,
      util: 0.9,
      maxNumSeqs: 1,
      enforceEager: true,
      maxPixels: 16384 * 1024,
    }),
    reportedTokens: 76144,
  },
  {
    id: "C21",
    // vLLM 0.11.0 V1, Qwen3-VL-30B-A3B-Instruct bf16 at TP 4 on four RTX 3090s (E=128,N=192,
    // device_name=NVIDIA_GeForce_RTX_3090 in its MoE config line; memory not logged: the catalog's
    // 23.58 GiB), `--tensor-parallel-size 4 --gpu-memory-utilization 0.90 --max-model-len 65536`,
    // limits and max_pixels unset: "Chunked prefill is enabled with max_num_batched_tokens=2048",
    // "Model loading took 14.7708 GiB", "Encoder cache will be initialized with a budget of 153600
    // tokens, and profiled with 1 video items", "FlashInfer is not available. Falling back to the
    // PyTorch-native implementation of top-p & top-k sampling", "Available KV cache memory: 2.31
    // GiB", "GPU KV cache size: 100,752 tokens".
    source:
      "sipeed/sipeed_wiki docs/hardware/en/kvm/NanoKVM_Pro/cua.md (Qwen3-VL-30B-A3B, 4 × RTX 3090 TP 4, vLLM 0.11.0 V1)",
    setup: setup("Qwen/Qwen3-VL-30B-A3B-Instruct", GPUS.get("RTX-3090")!, "0.11.0", {
      maxModelLen: 65536,
      util: 0.9,
      tp: 4,
      maxPixels: 16384 * 1024,
      maxPixelsSet: false,
    }),
    reportedTokens: 100752,
  },
  {
    id: "C22",
    // vLLM 0.27.1 (uv pip install vllm; torch 2.13.0+cu130), Qwen2.5-VL-7B-Instruct on an RTX 4090
    // under WSL2 ("Free memory on device (22.45/23.99 GiB) on startup" on the same machine),
    // `--max-model-len 8192 --gpu-memory-utilization 0.90 --limit-mm-per-prompt '{"image":1}'`
    // (video left at its default): "Model loading took 15.67 GiB", "GPU KV cache size: 62,736 tokens".
    source:
      "enginrect/llmso labs/optimization-in-practice-and-emerging-directions.md (Qwen2.5-VL-7B, RTX 4090 24 GB, vLLM 0.27.1 V1)",
    setup: setup(
      "Qwen/Qwen2.5-VL-7B-Instruct",
      named(customGpu(23.99, 8.9), "RTX-4090"),
      "0.27.1",
      {
        maxModelLen: 8192,
        util: 0.9,
        imageLimit: 1,
        maxPixels: 16384 * 784,
        maxPixelsSet: false,
      },
    ),
    reportedTokens: 62736,
  },
  {
    id: "C23",
    // vLLM 0.11.0 V1 under Ray Data on L4s (accelerator_type "L4"), Qwen2.5-VL-3B-Instruct bf16,
    // engine_kwargs max_model_len 8192, max_num_batched_tokens 2048 (utilization, limits and
    // max_pixels not set: vLLM's 0.9, 999 and the processor's; Ray Data passes engine_kwargs through): "Model loading took 7.1550 GiB", "Encoder
    // cache will be initialized with a budget of 16384 tokens, and profiled with 1 image items",
    // "FlashInfer is not available. Falling back to the PyTorch-native implementation",
    // "Available KV cache memory: 9.26 GiB", "GPU KV cache size: 269,568 tokens".
    source:
      "ray-project/ray doc/source/data/examples/llm-batch-inference-vision/content/README.md (Qwen2.5-VL-3B, L4, vLLM 0.11.0 V1)",
    setup: setup("Qwen/Qwen2.5-VL-3B-Instruct", GPUS.get("L4")!, "0.11.0", {
      maxModelLen: 8192,
      util: 0.9,
      maxNumBatchedTokens: 2048,
      maxPixels: 16384 * 784,
      maxPixelsSet: false,
    }),
    reportedTokens: 269568,
  },
  {
    id: "C24",
    // vllm #18124: `vllm serve Qwen/Qwen2.5-VL-3B-Instruct --gpu-memory-utilization 0.3` on an A100
    // 80 GB ("0.3是24G"), everything else default (max_model_len 128000 from its config): "No
    // available memory for the cache blocks". The release is not printed; its pip list (May 2025,
    // compressed-tensors 0.9.2) is vLLM 0.8.5's ⚠.
    source: "vllm-project/vllm#18124 (Qwen2.5-VL-3B, A100 80 GB, util 0.3, vLLM ≈0.8.5 V1)",
    setup: setup("Qwen/Qwen2.5-VL-3B-Instruct", GPUS.get("A100-80GB")!, "0.8.5", {
      maxModelLen: 128000,
      util: 0.3,
      maxPixels: 16384 * 784,
      maxPixelsSet: false,
    }),
    failed: true,
  },
];

/**
 * Logs that do not pin down the settings well enough to score the planner: printed, not asserted.
 *  - C07: 72B at TP 4 on 40 GB cards, V0 0.8.3: its 16,384-token image outgrows the 5,120 batched
 *    tokens, so 0.8.3 runs the whole prompt through the decoder; the plan reserves 1.71 GiB where
 *    vLLM took 2.51 (and 34.19 GiB of weights where it took 34.43), so it plans 11,280 tokens where
 *    vLLM had 524. At TP > 1 the tower all-gathers its qkv (qwen2_5_vl.py `split_qkv`, V0 and V1)
 *    and keeps more replicated than the per-patch figure's TP split assumes, but by the code's own
 *    tensors that is ~20 kB a patch, not enough; the rest is not explained.
 *  - C09: GPUStack's utilization is not logged (0.9 assumed). 0.8.4 profiles the whole 32,768-token
 *    dummy prompt (an image and a 1-frame video at 16,384 tokens each, one tower call each) and
 *    holds their float32 pixel values through the decoder's run: the planner says 13,616 tokens
 *    where vLLM found 2,400, 0.62 GiB apart. vLLM's "model weights" run 0.16–0.23 GiB above the
 *    checkpoint on this family's logs (C01, C22, C23), which the plan does not model.
 */
export const VL_LIMITS: readonly VlCase[] = [
  {
    id: "C07",
    // vllm #16570, hanggun's comment of 2025-04-14 (vLLM 0.8.3, V0): `VLLM_USE_V1=0 vllm serve
    // Qwen2.5-VL-72B-Instruct --dtype bfloat16 --tensor-parallel-size 4 --gpu-memory-utilization 0.95
    // --max-num-seqs 2 --max-model-len 4096 --limit-mm-per-prompt image=1,video=0` on four
    // A100-PCIE-40GB: "total_gpu_memory (39.38GiB) x gpu_memory_utilization (0.95) = 37.41GiB",
    // "model weights take 34.43GiB; non_torch_memory takes 0.43GiB; PyTorch activation peak memory
    // takes 2.51GiB; the rest of the memory reserved for KV Cache is 0.04GiB" (the driver rank;
    // 0.09 and 0.13 on others), "still got OOM". max_pixels unset. (The description is a V1
    // run; this is the thread's V0 one.)
    source: "vllm-project/vllm#16570 (Qwen2.5-VL-72B, 4 × A100-PCIE-40GB TP 4, vLLM 0.8.3 V0)",
    setup: setup("Qwen/Qwen2.5-VL-72B-Instruct", customGpu(39.38, 8.0), "0.8.3", {
      features: vllmFeatures(parseVersion("0.8.3")!, 8.0, "v0"),
      maxModelLen: 4096,
      util: 0.95,
      tp: 4,
      maxNumSeqs: 2,
      imageLimit: 1,
      videoLimit: 0,
      maxPixelsSet: false,
    }),
    reportedTokens: Math.floor(
      (0.04 * GiB) / kvBytesPerToken(model("Qwen/Qwen2.5-VL-72B-Instruct"), 80, 4, 2),
    ),
    failed: true,
  },
  {
    id: "C09",
    // gpustack #1800 (vLLM 0.8.4, V0 on GPUStack): "The model's max seq len (8192) is larger than the
    // maximum number of tokens that can be stored in KV cache (2400)". util not logged: 0.9.
    source: "gpustack/gpustack#1800 (Qwen2.5-VL-7B, RTX 3090, vLLM 0.8.4 V0)",
    setup: setup("Qwen/Qwen2.5-VL-7B-Instruct", GPUS.get("RTX-3090")!, "0.8.4", {
      features: vllmFeatures(parseVersion("0.8.4")!, 8.6, "v0"),
      maxModelLen: 8192,
      util: 0.9,
      imageLimit: 1,
      videoLimit: 1,
    }),
    reportedTokens: 2400,
    failed: true,
  },
  {
    id: "C25",
    // vLLM 0.13.0 V1, a merged LoRA fine-tune of Qwen2-VL-7B-Instruct on an RTX 3090, `--max-model-len
    // 4096 --limit-mm-per-prompt '{"image":1}' --gpu-memory-utilization 0.9`: "Model loading took
    // 15.5320 GiB", "Available KV cache memory: 4.28 GiB", "GPU KV cache size: 80,144 tokens" (and
    // 13.35 GiB for its GPTQ build: the same 1.40 GiB reserved). 1.40 GiB is less than a 16,384-token
    // image's tower peak alone; the fine-tune's own preprocessor_config (its max_pixels) is not in
    // the notes, so the profiled image is not known.
    source:
      "public project notes, GPTQ INT4 experiments (Qwen2-VL-7B fine-tune, RTX 3090, vLLM 0.13.0 V1)",
    setup: setup("Qwen/Qwen2-VL-7B-Instruct", GPUS.get("RTX-3090")!, "0.13.0", {
      maxModelLen: 4096,
      util: 0.9,
      imageLimit: 1,
      maxPixels: 16384 * 784,
      maxPixelsSet: false,
    }),
    reportedTokens: 80144,
  },
];
