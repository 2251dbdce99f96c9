#!/usr/bin/env python3
"""Measure, on a real GPU, the one profile-run term the planner takes from a log instead of a
measurement (issue 20): the peak of vLLM V1's dummy sampler run with PyTorch's top-k/top-p.

vLLM's `_dummy_sampler_run` samples max_num_seqs rows of vocab logits with temperature 0.5,
top-k vocab - 1 and top-p 0.9 (gpu_model_runner.py); without FlashInfer, the V1 sampler
(v1/sample/sampler.py, v1/sample/ops/topk_topp_sampler.py `apply_top_k_top_p`) turns the bf16
logits to fp32, divides by the temperature, sorts them, masks the top-k, softmaxes the sorted
logits, masks the top-p by their cumulative sum, scatters them back, then samples from their
softmax. The planner counts 28 bytes a logit for what that code keeps alive and 39 with the
sort's own buffers (plan/memory.ts `samplerBytesPerElement`, fitted on one log). This script runs
the same sequence of torch operations (written from that description, not vLLM's code, which is
not installable on the device machine) and reports the peak bytes per logit.

Run on a GPU machine: python3 test/gpu/sampler_memory.py > result.json (about a minute).
`--small` runs small shapes on CPU, to check the script itself. Prints one JSON document.
"""
import argparse
import json
import time

import torch


def sample_like_vllm(logits_bf16, k, p):
    """The dummy sampler's path: fp32 logits, temperature, top-k and top-p by sorting, sample."""
    logits = logits_bf16.to(torch.float32)
    logits.div_(0.5)
    logits_sort, logits_idx = logits.sort(dim=-1, descending=False)
    # top-k: the k-th largest as a threshold
    kth = logits_sort.size(1) - k.to(torch.long)
    top_k_mask = logits_sort < logits_sort.gather(1, kth.unsqueeze(1))
    logits_sort.masked_fill_(top_k_mask, -float("inf"))
    # top-p: drop what lies below 1 - p of the cumulative probability
    probs_sort = logits_sort.softmax(dim=-1)
    probs_sum = torch.cumsum(probs_sort, dim=-1, out=probs_sort)
    top_p_mask = probs_sum <= 1 - p.unsqueeze(1)
    top_p_mask[:, -1] = False
    logits_sort.masked_fill_(top_p_mask, -float("inf"))
    logits = logits_sort.scatter(dim=-1, index=logits_idx, src=logits_sort)
    probs = logits.softmax(dim=-1, dtype=torch.float32)
    q = torch.empty_like(probs).exponential_()
    return probs.div_(q).argmax(dim=-1)


def measure(rows, vocab, device):
    logits = torch.randn(rows, vocab, device=device, dtype=torch.bfloat16)
    k = torch.full((rows,), vocab - 1, device=device, dtype=torch.int32)
    p = torch.full((rows,), 0.9, device=device, dtype=torch.float32)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    started = time.time()
    out = sample_like_vllm(logits, k, p)
    result = {"rows": rows, "vocab": vocab, "seconds": round(time.time() - started, 3)}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
        result.update(
            peak_bytes=peak,
            # The bf16 logits exist before the run (the model's output); vLLM's peak counts them too.
            bytes_per_logit_with_logits=(peak + rows * vocab * 2) / (rows * vocab),
            bytes_per_logit=peak / (rows * vocab),
        )
    del out, logits
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    a = ap.parse_args()
    device = torch.device("cpu" if a.small else "cuda")
    shapes = [(4, 1000), (8, 4096)] if a.small else [
        (256, 152064),  # Qwen2/2.5-VL on a < 70 GiB card (vLLM's 256 sequences)
        (256, 151936),  # Qwen3-VL
        (1024, 151936),  # Qwen3-VL on an H100/H200 (1,024 sequences)
        (1024, 152064),
        (128, 152064),
    ]
    doc = {"torch": torch.__version__, "device": str(device), "runs": []}
    if device.type == "cuda":
        doc["device_name"] = torch.cuda.get_device_name(device)
    for rows, vocab in shapes:
        try:
            doc["runs"].append(measure(rows, vocab, device))
        except Exception as e:  # noqa: BLE001
            doc["runs"].append({"rows": rows, "vocab": vocab, "error": repr(e)[:500]})
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
