#!/usr/bin/env bash
# ExecStart of qwen-vl-vllm.service: `run-vllm.sh <vllm.args>`, the plan's arguments one per line
# (no shell quoting of JSON flags in the unit), exec'd from the venv beside this script's folder so
# that systemd supervises vLLM itself.
set -euo pipefail
args_file=${1:?usage: run-vllm.sh <vllm.args>}
mapfile -t args <"$args_file"
exec "$(dirname "$0")/../venv/bin/vllm" "${args[@]}"
