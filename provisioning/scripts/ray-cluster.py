#!/usr/bin/env python3
"""The Ray cluster as a driver sees it (vLLM is one): "<alive nodes> <GPUs>" on one line.

  ray-cluster.py ADDRESS       (run with the environment's Python: it imports ray)"""
import sys

import ray


def main():
    ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
    nodes = [n for n in ray.nodes() if n["Alive"]]
    print(len(nodes), int(sum(n["Resources"].get("GPU", 0) for n in nodes)))


if __name__ == "__main__":
    main()
