#!/usr/bin/env bash
# Readiness gate on the serving node: /health, then a real image+text request (readiness.py).
set -euo pipefail
QWEN_VL_STEP=readiness
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
[[ $ROLE == head ]] || {
  log "worker: the readiness gate runs on the head"
  finish
  exit 0
}
if [[ -r $QWEN_VL_ETC/secrets.env ]]; then
  # shellcheck source=/dev/null
  set -a && source "$QWEN_VL_ETC/secrets.env" && set +a
fi
export API_PORT SERVED_MODEL_NAME READINESS_TIMEOUT
python3 "$(dirname "$0")/readiness.py" || die "vLLM is not ready (see above and journalctl -u qwen-vl-vllm)"
finish
