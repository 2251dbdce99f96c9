#!/usr/bin/env bash
# Readiness gate on the serving node: /health, then a real image+text request (readiness.py).
set -euo pipefail
QWEN_VL_STEP=readiness
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
head_only "the readiness gate runs on the head"
load_secrets
export API_PORT SERVED_MODEL_NAME READINESS_TIMEOUT
# The unit whose restarts the gate watches: a vLLM that exits at startup is named, not waited out.
export VLLM_UNIT=qwen-vl-vllm
gauges=()
# Planned and allocated KV cache tokens for Prometheus (node exporter's textfile collector).
[[ $MONITORING == 1 ]] && gauges=(--kv-gauges "$NODE_EXPORTER_TEXTFILE_DIR")
python3 "$(dirname "$0")/readiness.py" "${gauges[@]}" || die "vLLM is not ready (see above and journalctl -u qwen-vl-vllm)"
finish
