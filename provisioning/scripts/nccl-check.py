#!/usr/bin/env python3
"""NCCL all-reduce with the node's own vLLM environment: its torch and its NCCL, the library vLLM's
tensor- and pipeline-parallel groups run on (the check of vLLM's troubleshooting guide, "Incorrect
hardware/driver": a torch.distributed NCCL all_reduce across the GPUs it will use). Checks every
value, then times the reduction as NVIDIA's nccl-tests reports it (CUDA events; bus bandwidth =
size / time × 2(n−1)/n, nccl-tests doc/PERFORMANCE.md).

  nccl-check.py --gpus N [--ray ADDRESS] [--mib 1024] [--iters 20] [--timeout 300]

Local (one node): N processes, one per GPU, meeting on 127.0.0.1. --ray (a multi-node replica): one
Ray actor per GPU across the cluster, placed as vLLM places its workers (num_gpus=1), meeting at rank
0's node: the inter-node path pipeline parallelism uses.
Prints one JSON line {"ranks", "nodes", "wrong", "algbw_gbps", "busbw_gbps"}. Exit 1 on an NCCL
error or a timeout (the message on stderr), 2 on usage.
"""
import argparse
import json
import socket
import sys


def free_port():
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def node_ip():
    import ray

    return ray.util.get_node_ip_address()


def run_rank(rank, world, device, master, port, nbytes, iters, timeout_s):
    """One rank: every element must come back as the sum of the ranks' fills, then the timed loop."""
    import datetime

    import torch
    import torch.distributed as dist

    torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl",
        init_method=f"tcp://{master}:{port}",
        rank=rank,
        world_size=world,
        timeout=datetime.timedelta(seconds=timeout_s),
    )
    try:
        x = torch.full((nbytes // 4,), float(rank + 1), dtype=torch.float32, device="cuda")
        dist.all_reduce(x)
        torch.cuda.synchronize()
        wrong = int(x.ne(world * (world + 1) / 2).sum().item())
        for _ in range(2):
            dist.all_reduce(x)
        dist.barrier()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            dist.all_reduce(x)
        end.record()
        torch.cuda.synchronize()
        seconds = start.elapsed_time(end) / 1000 / iters
    finally:
        dist.destroy_process_group()
    return {"rank": rank, "wrong": wrong, "seconds": seconds, "host": socket.gethostname()}


def _local_rank(args):
    return run_rank(*args)


def local(gpus, nbytes, iters, timeout_s):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked children
    port = free_port()
    jobs = [(r, gpus, r, "127.0.0.1", port, nbytes, iters, timeout_s) for r in range(gpus)]
    with ctx.Pool(gpus) as pool:
        return pool.map_async(_local_rank, jobs).get(timeout_s)


def across_ray(address, gpus, nbytes, iters, timeout_s):
    import ray

    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    Rank = ray.remote(num_gpus=1, num_cpus=0)(_RayRank)
    actors = [Rank.remote() for _ in range(gpus)]
    ips = ray.get([a.ip.remote() for a in actors], timeout=timeout_s)
    # Ranks by node, as vLLM orders its workers: the first node's GPUs first.
    order = sorted(range(gpus), key=lambda i: (ips[i], i))
    master = ips[order[0]]
    port = ray.get(actors[order[0]].port.remote(), timeout=timeout_s)
    refs = [
        actors[i].run.remote(rank, gpus, 0, master, port, nbytes, iters, timeout_s)
        for rank, i in enumerate(order)
    ]
    return ray.get(refs, timeout=timeout_s)


class _RayRank:
    def ip(self):
        return node_ip()

    def port(self):
        return free_port()

    def run(self, *args):
        return run_rank(*args)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, required=True, help="ranks: every GPU of the replica")
    ap.add_argument("--ray", help="a Ray cluster's address: one actor per GPU across its nodes")
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--timeout", type=int, default=300)
    a = ap.parse_args()
    if a.gpus < 2 or a.mib < 1 or a.iters < 1:
        ap.error("needs --gpus ≥ 2, --mib ≥ 1, --iters ≥ 1")
    nbytes = a.mib * 2**20
    try:
        if a.ray:
            results = across_ray(a.ray, a.gpus, nbytes, a.iters, a.timeout)
        else:
            results = local(a.gpus, nbytes, a.iters, a.timeout)
    except Exception as e:  # NCCL, Ray and timeouts alike: one line for the gate
        text = str(e).strip().splitlines()
        print(f"{type(e).__name__}: {text[-1] if text else ''}", file=sys.stderr)
        return 1
    n = len(results)
    seconds = max(r["seconds"] for r in results)
    algbw = nbytes / seconds / 1e9
    print(
        json.dumps(
            {
                "ranks": n,
                "nodes": len({r["host"] for r in results}),
                "wrong": sum(r["wrong"] for r in results),
                "algbw_gbps": round(algbw, 2),
                "busbw_gbps": round(algbw * 2 * (n - 1) / n, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
