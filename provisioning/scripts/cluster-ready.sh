#!/usr/bin/env bash
# Waits (bounded) until the Ray cluster shows every node and every GPU of the plan; vLLM starts on the
# head only then (its unit runs this before starting).
#   cluster-ready.sh [SECONDS]    the bound (default: the plan's RAY_WAIT_SECONDS; verify asks briefly)
set -euo pipefail
QWEN_VL_STEP=cluster-ready
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
[[ $MULTI_NODE == 1 ]] || exit 0
wait_s=${1:-$RAY_WAIT_SECONDS}
deadline=$((SECONDS + wait_s))
while :; do
  state=$("$QWEN_VL_HOME/venv/bin/python" "$(dirname "$0")/ray-cluster.py" "$RAY_ADDRESS" 2>/dev/null || true)
  read -r nodes gpus <<<"${state:-0 0}"
  if [[ ${nodes:-0} -ge $NODES_PER_REPLICA && ${gpus:-0} -ge $TOTAL_GPUS ]]; then
    log "Ray cluster ready: $nodes nodes, $gpus GPUs"
    exit 0
  fi
  [[ $SECONDS -lt $deadline ]] || die "Ray shows ${nodes:-0}/$NODES_PER_REPLICA nodes and ${gpus:-0}/$TOTAL_GPUS GPUs after $wait_s s: check 'systemctl status qwen-vl-ray' and the connectivity report on each worker"
  sleep 3
done
