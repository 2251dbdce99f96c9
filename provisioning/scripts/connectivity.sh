#!/usr/bin/env bash
# Connectivity gate, before vLLM starts: this node reaches every other member of its replica on every
# port the cluster needs (rendered CHECK_TARGETS "name:address:port ..."). Reports each failing pair
# and port. Then an NCCL all-reduce with a minimum bus bandwidth across the GPUs vLLM will use
# (single-node stacks too: an 8-GPU board is where TP traffic runs).
#   connectivity.sh [--ports-only]   (verify: the GPUs are vLLM's while it serves)
set -euo pipefail
QWEN_VL_STEP=connectivity
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
failed=()
if [[ $MULTI_NODE == 1 ]]; then
  for target in ${CHECK_TARGETS}; do
    IFS=: read -r peer address port <<<"$target"
    ok=0
    for _ in 1 2 3; do
      if tcp_open "$address" "$port"; then
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

# NCCL all-reduce with vLLM's own environment (its torch and NCCL), what tensor parallelism rides
# on: every value checked, bus bandwidth at 1 GiB against the floor for the links it crosses. One
# node: across its GPUs. Multi-node: the head runs it across every GPU of the replica through Ray
# (the workers' Ray has joined: this step runs after every member's), as vLLM places its workers,
# which also tests the inter-node path pipeline parallelism uses. A board whose GPUs cannot talk
# (NVSwitch without Fabric Manager, P2P broken by the IOMMU or ACS) or nodes whose NCCL cannot reach
# each other fail here, before vLLM hangs in its first all-reduce.
nccl_args=()
if [[ ${1:-} == --ports-only ]]; then
  :
elif ! gpu_device; then
  log "NCCL all-reduce skipped: no GPU device"
elif [[ $MULTI_NODE == 1 && $ROLE != head ]]; then
  log "NCCL all-reduce: the head runs it across the replica's $TOTAL_GPUS GPUs"
elif [[ $MULTI_NODE == 1 ]]; then
  nccl_args=(--gpus "$TOTAL_GPUS" --ray "$RAY_ADDRESS")
elif [[ $GPU_COUNT -lt 2 ]]; then
  log "NCCL all-reduce skipped: one GPU on this node"
else
  nccl_args=(--gpus "$GPU_COUNT")
fi
# A re-run while vLLM serves (another step's change re-runs this one): its GPUs are vLLM's (its Ray
# workers hold every GPU Ray has; its memory budget most of each card), and the gate passed before
# it started.
if [[ ${#nccl_args[@]} -gt 0 ]] && systemctl is-active --quiet qwen-vl-vllm 2>/dev/null; then
  log "NCCL all-reduce skipped: vLLM is serving on these GPUs (the gate ran before it started)"
  nccl_args=()
fi
if [[ ${#nccl_args[@]} -gt 0 ]]; then
  gpus=${nccl_args[1]}
  # Bounded as a whole (the Ray path waits on three calls, each within NCCL_TIMEOUT).
  errors=$(mktemp)
  out=$(timeout -k 30 $((NCCL_TIMEOUT * 3 + 60)) "$QWEN_VL_HOME/venv/bin/python" "$QWEN_VL_HOME/bin/nccl-check.py" "${nccl_args[@]}" --timeout "$NCCL_TIMEOUT" 2>"$errors") || {
    why=$(grep -v '^[[:space:]]*$' "$errors" | tail -n1)
    rm -f "$errors"
    die "NCCL all-reduce across $gpus GPUs failed (${why:-no message}): run it again with NCCL_DEBUG=INFO: $QWEN_VL_HOME/venv/bin/python $QWEN_VL_HOME/bin/nccl-check.py ${nccl_args[*]}"
  }
  rm -f "$errors"
  read -r wrong busbw nodes < <(python3 -c 'import json, sys; r = json.loads(sys.argv[1].splitlines()[-1]); print(r["wrong"], r["busbw_gbps"], r["nodes"])' "$out") ||
    die "NCCL all-reduce printed no result: ${out##*$'\n'}"
  [[ $wrong == 0 ]] || die "NCCL all-reduce across $gpus GPUs returned $wrong wrong values: a GPU or link corrupts data (nvidia-smi -q -d ECC, dmesg for Xid)"
  awk -v bw="$busbw" -v min="$NCCL_MIN_BUSBW_GBPS" 'BEGIN { exit !(bw >= min) }' ||
    die "NCCL all-reduce bus bandwidth $busbw GB/s across $gpus GPUs on $nodes node(s) < $NCCL_MIN_BUSBW_GBPS GB/s expected for these links: check nvidia-smi topo -m, Fabric Manager, NCCL_P2P_DISABLE and (across nodes) NCCL_SOCKET_IFNAME / EFA"
  log "NCCL all-reduce bus bandwidth $busbw GB/s across $gpus GPUs on $nodes node(s) ≥ $NCCL_MIN_BUSBW_GBPS GB/s, every value right"
fi
finish
