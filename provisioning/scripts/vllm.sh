#!/usr/bin/env bash
# vLLM under systemd on the node that serves (the head): the plan's arguments, secrets from the
# root-only environment file, weights checked before every start, restart on failure with backoff,
# a file-descriptor limit, started after the network (and, multi-node, the Ray cluster) is up.
set -euo pipefail
QWEN_VL_STEP=vllm
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
rendered=$QWEN_VL_HOME/rendered

head_only "vLLM runs on the head; this node serves through Ray"
restart=0
write_cluster_env && restart=1
install_file "$rendered/vllm.args" "$QWEN_VL_ETC/vllm.args" 0644 && restart=1
install_file "$rendered/qwen-vl-vllm.service" /etc/systemd/system/qwen-vl-vllm.service 0644 && {
  restart=1
  run systemctl daemon-reload
}
if [[ -f $QWEN_VL_ETC/secrets.env ]]; then
  perms=$(stat -c '%a %U' "$QWEN_VL_ETC/secrets.env")
  [[ $perms == "600 root" ]] || die "$QWEN_VL_ETC/secrets.env is $perms: it must be 600 root"
fi
systemctl is-enabled --quiet qwen-vl-vllm 2>/dev/null || {
  run systemctl enable qwen-vl-vllm >/dev/null 2>&1
  ledger "enabled qwen-vl-vllm"
  changed "enabled qwen-vl-vllm"
}
# What vLLM runs with: a change to any of these (a new vLLM in the venv, new secrets, new weights
# at another revision through vllm.args) restarts it, even when this script's own files did not change.
runs_with=("$QWEN_VL_ETC/vllm.args" /etc/systemd/system/qwen-vl-vllm.service "$QWEN_VL_ETC/cluster.env" "$QWEN_VL_ETC/secrets.env" "$QWEN_VL_HOME/bin/run-vllm.sh" "$QWEN_VL_HOME/bin/cluster-ready.sh")
service_changed qwen-vl-vllm "${runs_with[@]}" && restart=1
if [[ $restart == 1 ]] || ! systemctl is-active --quiet qwen-vl-vllm; then
  run systemctl reset-failed qwen-vl-vllm 2>/dev/null || true
  run systemctl restart qwen-vl-vllm
  ledger "started qwen-vl-vllm"
  service_started qwen-vl-vllm "${runs_with[@]}"
  changed "started vLLM ($SERVED_MODEL_NAME on port $API_PORT)"
else
  log "vLLM active, configuration unchanged"
fi
finish
