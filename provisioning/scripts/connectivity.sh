#!/usr/bin/env bash
# Connectivity gate, before vLLM starts: this node reaches every other member of its replica on every
# port the cluster needs (rendered CHECK_TARGETS "name:address:port ..."). Reports each failing pair
# and port. On nodes with several GPUs, an NCCL all-reduce with a minimum bus bandwidth when
# nccl-tests is present (single-node stacks too: an 8-GPU board is where TP traffic runs).
set -euo pipefail
QWEN_VL_STEP=connectivity
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
failed=()
if [[ ${MULTI_NODE:-0} == 1 ]]; then
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
else
  log "single node: no other member to reach"
fi

# NCCL all-reduce across this node's GPUs (what tensor parallelism rides on), with nccl-tests when
# the node has it (NCCL_TESTS_BIN: its build directory): bus bandwidth at 1 GiB against the tier's
# floor. A board whose GPUs cannot talk (NVSwitch without Fabric Manager, P2P broken by the IOMMU or
# ACS) fails here, before vLLM hangs in its first all-reduce.
nccl=${NCCL_TESTS_BIN:-/opt/nccl-tests/build}/all_reduce_perf
if [[ ! -e ${QWEN_VL_NVIDIA_DEVICE:-/dev/nvidiactl} ]]; then
  log "NCCL all-reduce skipped: no GPU device"
elif [[ ${GPU_COUNT:-1} -lt 2 ]]; then
  log "NCCL all-reduce skipped: one GPU on this node"
elif [[ ! -x $nccl ]]; then
  log "NCCL all-reduce skipped: no nccl-tests at $nccl (build NVIDIA's nccl-tests there, or set NCCL_TESTS_BIN in node.env.local)"
else
  out=$("$nccl" -b 1G -e 1G -f 2 -g "$GPU_COUNT" 2>&1) || die "NCCL all-reduce across $GPU_COUNT GPUs failed: ${out##*$'\n'}"
  oob=$(awk -F: '/Out of bounds values/ { gsub(/[^0-9]/, "", $2); print $2 }' <<<"$out")
  [[ ${oob:-0} == 0 ]] || die "NCCL all-reduce across $GPU_COUNT GPUs returned $oob wrong values: a GPU or link corrupts data (nvidia-smi -q -d ECC, dmesg for Xid)"
  bw=$(awk '/Avg bus bandwidth/ {print $NF}' <<<"$out")
  [[ $bw =~ ^[0-9]+([.][0-9]+)?$ ]] || die "NCCL all-reduce printed no bus bandwidth: ${out##*$'\n'}"
  awk -v bw="$bw" -v min="$NCCL_MIN_BUSBW_GBPS" 'BEGIN { exit !(bw >= min) }' ||
    die "NCCL all-reduce bus bandwidth $bw GB/s across $GPU_COUNT GPUs < $NCCL_MIN_BUSBW_GBPS GB/s expected for this interconnect: check nvidia-smi topo -m, Fabric Manager and NCCL_P2P_DISABLE"
  log "NCCL all-reduce bus bandwidth $bw GB/s across $GPU_COUNT GPUs ≥ $NCCL_MIN_BUSBW_GBPS GB/s"
fi
finish
