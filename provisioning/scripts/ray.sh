#!/usr/bin/env bash
# Ray for multi-node: the head unit on the head, a worker unit elsewhere that joins the head (and keeps
# retrying until the head is up: Restart=always). Both carry the cluster environment (VLLM_HOST_IP,
# NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME), which the vLLM workers Ray starts inherit.
set -euo pipefail
QWEN_VL_STEP=ray
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
rendered=$QWEN_VL_HOME/rendered

[[ $MULTI_NODE == 1 ]] || {
  log "single node: no Ray cluster"
  finish
  exit 0
}
restart=0
write_cluster_env && restart=1
install_file "$rendered/qwen-vl-ray.service" /etc/systemd/system/qwen-vl-ray.service 0644 && restart=1
[[ $restart == 1 ]] && run systemctl daemon-reload
systemctl is-enabled --quiet qwen-vl-ray 2>/dev/null || {
  run systemctl enable qwen-vl-ray >/dev/null 2>&1
  ledger "enabled qwen-vl-ray"
  changed "enabled qwen-vl-ray"
}
# A new Ray in the venv restarts it too.
runs_with=(/etc/systemd/system/qwen-vl-ray.service "$QWEN_VL_ETC/cluster.env")
service_changed qwen-vl-ray "${runs_with[@]}" && restart=1
if [[ $restart == 1 ]] || ! systemctl is-active --quiet qwen-vl-ray; then
  run systemctl restart qwen-vl-ray
  ledger "started qwen-vl-ray"
  service_started qwen-vl-ray "${runs_with[@]}"
  changed "started Ray $ROLE ($NODE_IP)"
else
  log "Ray $ROLE active"
fi

# Ray is up on this node once its raylet listens (and, on the head, the GCS): wait, bounded, so that
# the connectivity gate that follows tests a running cluster. A worker started before its head keeps
# retrying (its unit restarts) and passes here once the head answers.
ports=("$RAY_NODE_MANAGER_PORT" "$RAY_OBJECT_MANAGER_PORT")
[[ $ROLE == head ]] && ports+=("$RAY_GCS_PORT")
deadline=$((SECONDS + RAY_WAIT_SECONDS))
for port in "${ports[@]}"; do
  until tcp_open "$NODE_IP" "$port" 2; do
    [[ $SECONDS -lt $deadline ]] || die "Ray did not open port $port on $NODE_IP within $RAY_WAIT_SECONDS s: see journalctl -u qwen-vl-ray (a worker needs its head at $RAY_ADDRESS)"
    sleep 1
  done
done
log "Ray $ROLE listening on $NODE_IP (ports ${ports[*]})"
finish
