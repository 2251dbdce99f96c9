"""FAKE `vllm` command line (no GPU here): `vllm --version` and `vllm serve <model> [flags]`.

Accepts exactly the flags qwen-vl-deploy renders, in the syntax of the version it pretends to be,
and rejects anything else the way vLLM's argparse does (exit 2). Refuses to start without the
weights directory, and on a multi-node plan until the real Ray cluster shows every GPU.
"""
import argparse
import json
import os
import sys
import time

from . import __version__


def _version_tuple(v):
    return tuple(int(x) for x in v.split(".")[:3])


def _limit_mm(value):
    if value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"invalid JSON for --limit-mm-per-prompt: {e}")
        return {str(k): int(v) for k, v in parsed.items()}
    if _version_tuple(__version__) >= (0, 10, 0):
        # vllm #21615: the key=value form is rejected from 0.10.0.
        raise argparse.ArgumentTypeError(f"Value {value} cannot be converted to <function loads>: use JSON, e.g. '{{\"image\": 4}}'")
    out = {}
    for part in value.split(","):
        k, _, v = part.partition("=")
        out[k.strip()] = int(v)
    return out


def parser():
    p = argparse.ArgumentParser(prog="vllm", description="FAKE vLLM for qwen-vl-deploy tests")
    p.add_argument("--version", action="store_true")
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve")
    s.add_argument("model")
    s.add_argument("--served-model-name", nargs="+")
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--dtype", choices=["auto", "half", "float16", "bfloat16", "float", "float32"], default="auto")
    s.add_argument("--max-model-len", type=int)
    s.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    s.add_argument("--limit-mm-per-prompt", type=_limit_mm)
    s.add_argument("--tensor-parallel-size", type=int, default=1)
    s.add_argument("--pipeline-parallel-size", type=int, default=1)
    s.add_argument("--distributed-executor-backend", choices=["mp", "ray", "uni", "external_launcher"])
    s.add_argument("--enforce-eager", action="store_true")
    s.add_argument("--max-num-batched-tokens", type=int)
    s.add_argument("--max-num-seqs", type=int)
    s.add_argument("--block-size", type=int, choices=[8, 16, 32, 64, 128])
    s.add_argument("--quantization", choices=["awq", "awq_marlin", "gptq", "gptq_marlin", "fp8"])
    s.add_argument("--kv-cache-dtype", choices=["auto", "fp8", "fp8_e4m3", "fp8_e5m2"])
    s.add_argument("--mm-processor-kwargs", type=json.loads)
    s.add_argument("--disable-custom-all-reduce", action="store_true")
    if _version_tuple(__version__) < (0, 8, 0):
        s.add_argument("--swap-space", type=float)
    return p


def wait_for_ray(gpus_needed, timeout):
    """The real engine places TP × PP workers on Ray GPUs; the fake checks the real cluster has them."""
    import ray  # installed in the node's environment for multi-node plans

    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        try:
            if not ray.is_initialized():
                ray.init(address=os.environ.get("RAY_ADDRESS") or "auto", logging_level="ERROR", log_to_driver=False)
            seen = int(sum(n["Resources"].get("GPU", 0) for n in ray.nodes() if n["Alive"]))
            if seen >= gpus_needed:
                return seen
        except Exception as e:  # the cluster is not up yet
            print(f"FAKE vllm: waiting for Ray ({e})", file=sys.stderr)
        time.sleep(2)
    raise SystemExit(f"FAKE vllm: Ray shows {seen} GPUs, the plan needs {gpus_needed} (TP × PP); refusing to start")


def main(argv=None):
    args = parser().parse_args(argv)
    if args.version:
        print(__version__)
        return 0
    if args.command != "serve":
        parser().print_help()
        return 2
    config = os.path.join(args.model, "config.json")
    if not os.path.isfile(config):
        print(f"FAKE vllm: {args.model} is not a model directory (no config.json): refusing to start", file=sys.stderr)
        return 1
    world = args.tensor_parallel_size * args.pipeline_parallel_size
    if args.distributed_executor_backend == "ray":
        gpus = wait_for_ray(world, float(os.environ.get("FAKE_VLLM_RAY_TIMEOUT", "120")))
        print(f"FAKE vllm: Ray cluster shows {gpus} GPUs for TP {args.tensor_parallel_size} × PP {args.pipeline_parallel_size}", flush=True)
    time.sleep(float(os.environ.get("FAKE_VLLM_STARTUP_SECONDS", "1")))
    from .server import serve

    serve(args, __version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
