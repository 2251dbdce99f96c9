#!/usr/bin/env python3
"""Measure, on a real GPU, what the planner estimates without one (issue 11):

1. The CUDA context and driver state that sit outside PyTorch's allocator (the part of the card
   vLLM's gpu_memory_utilization budget can never get, so 1.0 always fails).
2. The vision towers' peak activation per patch (Qwen2-VL, Qwen2.5-VL, Qwen3-VL) for the image
   and video sizes vLLM's profile run uses, with transformers' implementation and random bf16
   weights (no download: the towers are built from their config.json dimensions).

Run on a GPU machine: python3 test/gpu/encoder_memory.py [--small] > result.json
`--small` runs a tiny tower on CPU, to check the script itself. Prints one JSON document.
"""
import argparse
import json
import subprocess
import sys
import time

import torch

GiB = 1024**3


def smi():
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,memory.used,driver_version",
             "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip()
    except Exception as e:  # noqa: BLE001
        return f"nvidia-smi failed: {e}"


def context(dev):
    """Memory the process holds that PyTorch's allocator does not: mem_get_info vs reserved."""
    free0, total = torch.cuda.mem_get_info(dev)
    x = torch.ones(1, device=dev)
    free1, _ = torch.cuda.mem_get_info(dev)
    a = torch.randn(4096, 4096, device=dev, dtype=torch.bfloat16)
    (a @ a).sum().item()  # cuBLAS handle and workspace
    torch.cuda.synchronize(dev)
    free2, _ = torch.cuda.mem_get_info(dev)
    reserved = torch.cuda.memory_reserved(dev)
    del x, a
    return {
        "total_bytes": total,
        "total_gib": total / GiB,
        "used_before_first_tensor_gib": (total - free0) / GiB,
        "used_after_first_tensor_gib": (total - free1) / GiB,
        "used_after_matmul_gib": (total - free2) / GiB,
        "torch_reserved_after_matmul_gib": reserved / GiB,
        "outside_torch_after_matmul_gib": (total - free2 - reserved) / GiB,
    }


def towers(small):
    from transformers.models.qwen2_vl.configuration_qwen2_vl import Qwen2VLVisionConfig
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VisionTransformerPretrainedModel
    from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLVisionConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
        Qwen2_5_VisionTransformerPretrainedModel)
    from transformers.models.qwen3_vl.configuration_qwen3_vl import Qwen3VLVisionConfig
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel

    s = small
    return [
        # Qwen/Qwen2-VL-7B-Instruct config.json vision_config
        ("qwen2-vl", Qwen2VLVisionConfig, Qwen2VisionTransformerPretrainedModel, dict(
            depth=2 if s else 32, embed_dim=64 if s else 1280, hidden_size=64 if s else 3584,
            mlp_ratio=4, num_heads=4 if s else 16, in_channels=3, patch_size=14,
            spatial_merge_size=2, temporal_patch_size=2), 14),
        # Qwen/Qwen2.5-VL-7B-Instruct config.json vision_config
        ("qwen2.5-vl", Qwen2_5_VLVisionConfig, Qwen2_5_VisionTransformerPretrainedModel, dict(
            depth=2 if s else 32, hidden_size=64 if s else 1280, intermediate_size=128 if s else 3420,
            num_heads=4 if s else 16, out_hidden_size=64 if s else 3584, patch_size=14,
            spatial_merge_size=2, temporal_patch_size=2, window_size=112,
            fullatt_block_indexes=[1] if s else [7, 15, 23, 31], hidden_act="silu"), 14),
        # Qwen/Qwen3-VL-8B-Instruct config.json vision_config
        ("qwen3-vl", Qwen3VLVisionConfig, Qwen3VLVisionModel, dict(
            depth=2 if s else 27, hidden_size=64 if s else 1152, intermediate_size=128 if s else 4304,
            num_heads=4 if s else 16, out_hidden_size=64 if s else 4096, patch_size=16,
            spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
            deepstack_visual_indexes=[1] if s else [8, 16, 24], hidden_act="gelu_pytorch_tanh"), 16),
    ]


def grids(small):
    """(label, t, h, w) in patches: images at 1280 and 16384 merged tokens, and a 12-frame video."""
    if small:
        return [("image-64tok", 1, 16, 16), ("video-2x", 2, 16, 16)]
    return [
        ("image-1280tok", 1, 64, 80),       # 1280 merged tokens = 5120 patches
        ("image-4096tok", 1, 128, 128),     # 4096 merged tokens = 16384 patches
        ("image-16384tok", 1, 256, 256),    # vLLM's default max_pixels: 16384 tokens = 65536 patches
        ("video-12f-7350tok", 6, 70, 140),  # 12 frames (6 temporal patches) ≈ 7350 merged tokens
    ]


def measure(dev, small):
    results = []
    for name, cfg_cls, model_cls, kw, patch in towers(small):
        try:
            results.append(measure_tower(dev, small, name, cfg_cls, model_cls, kw, patch))
        except Exception as e:  # noqa: BLE001
            results.append({"tower": name, "error": f"{type(e).__name__}: {str(e)[:500]}"})
        if dev != "cpu":
            torch.cuda.empty_cache()
    return results


def measure_tower(dev, small, name, cfg_cls, model_cls, kw, patch):
    if True:
        cfg = cfg_cls(**kw)
        cfg._attn_implementation = "sdpa"
        torch.manual_seed(0)
        with torch.device(dev):
            model = model_cls._from_config(cfg, dtype=torch.bfloat16).eval()
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        in_dim = 3 * 2 * patch * patch
        rows = []
        for label, t, h, w in grids(small):
            n = t * h * w
            grid = torch.tensor([[t, h, w]], device=dev)
            x = torch.randn(n, in_dim, device=dev, dtype=torch.bfloat16)
            if dev != "cpu":
                torch.cuda.synchronize(dev)
                torch.cuda.reset_peak_memory_stats(dev)
                base = torch.cuda.memory_allocated(dev)
            t0 = time.time()
            try:
                with torch.inference_mode():
                    out = model(x, grid_thw=grid)
                ok = True
                err = None
            except Exception as e:  # noqa: BLE001
                ok, err, out = False, f"{type(e).__name__}: {str(e)[:300]}", None
            peak = None
            if dev != "cpu":
                torch.cuda.synchronize(dev)
                peak = torch.cuda.max_memory_allocated(dev) - base
            rows.append({
                "input": label, "grid_thw": [t, h, w], "patches": n, "merged_tokens": n // 4,
                "ok": ok, "error": err, "seconds": round(time.time() - t0, 3),
                "peak_activation_bytes": peak,
                "peak_activation_gib": None if peak is None else peak / GiB,
                "bytes_per_patch": None if peak is None else peak / n,
            })
            del x, out
            if dev != "cpu":
                torch.cuda.empty_cache()
        del model
        return {"tower": name, "config": kw, "weight_bytes": weights,
                "weight_gib": weights / GiB, "runs": rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    a = ap.parse_args()
    import transformers
    doc = {"torch": torch.__version__, "transformers": transformers.__version__,
           "cuda": torch.version.cuda, "python": sys.version.split()[0]}
    dev = "cpu" if a.small or not torch.cuda.is_available() else "cuda:0"
    if dev != "cpu":
        doc["nvidia_smi"] = smi()
        doc["device_name"] = torch.cuda.get_device_name(0)
        doc["capability"] = list(torch.cuda.get_device_capability(0))
        doc["context"] = context(dev)
    doc["towers"] = measure(dev, a.small)
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
