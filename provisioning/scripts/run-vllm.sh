#!/usr/bin/env bash
# ExecStart of qwen-vl-vllm.service: the plan's arguments, one per line in vllm.args (no shell
# quoting of JSON flags in the unit), exec'd so that systemd supervises vLLM itself.
set -euo pipefail
mapfile -t args <"${QWEN_VL_ETC:-/etc/qwen-vl}/vllm.args"
exec "${QWEN_VL_HOME:-/opt/qwen-vl}/venv/bin/vllm" "${args[@]}"
