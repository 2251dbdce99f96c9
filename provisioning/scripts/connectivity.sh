#!/usr/bin/env bash
# Connectivity gate, before vLLM starts: this node reaches every other member of its replica on every
# port the cluster needs (rendered CHECK_TARGETS "name:address:port ..."). Reports each failing pair
# and port. On GPU nodes, an NCCL all-reduce with a minimum bus bandwidth when nccl-tests is present.
set -euo pipefail
QWEN_VL_STEP=connectivity
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
[[ ${MULTI_NODE:-0} == 1 ]] || {
  log "single node: nothing to check"
  finish
  exit 0
}
failed=()
for target in ${CHECK_TARGETS}; do
  IFS=: read -r peer address port <<<"$target"
  ok=0
  for _ in 1 2 3; do
    if timeout 3 bash -c "exec 3<>/dev/tcp/$address/$port" 2>/dev/null; then
      ok=1
      break
    fi
    sleep 1
  done
  if [[ $ok == 1 ]]; then
    log "ok $NODE_NAME ($NODE_IP) -> $peer ($address):$port"
  else
    log "FAIL $NODE_NAME ($NODE_IP) -> $peer ($address):$port"
    failed+=("$NODE_NAME->$peer:$port")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  die "cannot reach ${failed[*]}: check the security group (members must reach each other on all ports), firewalls and the interface ($NETWORK_INTERFACE)"
fi
if [[ -e /dev/nvidiactl && -x ${NCCL_TESTS_BIN:-/opt/nccl-tests/build}/all_reduce_perf && $ROLE == head ]]; then
  bw=$("${NCCL_TESTS_BIN:-/opt/nccl-tests/build}/all_reduce_perf" -b 1G -e 1G -g "$GPU_COUNT" | awk '/Avg bus bandwidth/ {print $NF}')
  awk -v bw="$bw" -v min="$NCCL_MIN_BUSBW_GBPS" 'BEGIN { exit !(bw >= min) }' || die "NCCL all-reduce bus bandwidth $bw GB/s < $NCCL_MIN_BUSBW_GBPS GB/s expected for this tier"
  log "NCCL all-reduce bus bandwidth $bw GB/s ≥ $NCCL_MIN_BUSBW_GBPS GB/s"
else
  log "NCCL all-reduce skipped (no GPU device or no nccl-tests on this node)"
fi
finish
