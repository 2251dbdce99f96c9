#!/usr/bin/env bash
# Monitoring: node_exporter on every node, the DCGM exporter where a GPU device exists, Prometheus on
# the head scraping vLLM, every node exporter, DCGM and Ray (rendered prometheus.yml), Grafana with
# vLLM's dashboard when asked.
set -euo pipefail
QWEN_VL_STEP=monitoring
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
rendered=$QWEN_VL_HOME/rendered
export DEBIAN_FRONTEND=noninteractive

[[ $MONITORING == 1 ]] || {
  log "monitoring disabled by the stack"
  finish
  exit 0
}

ensure_package prometheus-node-exporter
ensure_running prometheus-node-exporter

if [[ $DCGM_EXPORTER == 1 ]]; then
  # NVIDIA's packages from its CUDA repository: the exporter (it embeds the DCGM host engine) and
  # DCGM for the CUDA major the driver supports (profiling metrics), the vendor unit with our drop-in.
  if gpu_device; then
    cuda=$(nvidia-smi 2>/dev/null | sed -E -n 's/.*CUDA Version: *([0-9]+)\..*/\1/p') || cuda=""
    cuda=${cuda%%$'\n'*}
    [[ -n $cuda ]] || die "nvidia-smi does not report a CUDA version: run the driver step first"
    ensure_cuda_repo
    ensure_package "datacenter-gpu-manager-4-cuda$cuda"
    ensure_package datacenter-gpu-manager-exporter
    restart=0
    install_file "$rendered/nvidia-dcgm-exporter.conf" /etc/systemd/system/nvidia-dcgm-exporter.service.d/qwen-vl.conf 0644 && run systemctl daemon-reload && restart=1
    ensure_running nvidia-dcgm-exporter "$restart"
  else
    log "no GPU device ($QWEN_VL_NVIDIA_DEVICE): DCGM exporter skipped"
  fi
fi

if [[ $ROLE == head ]]; then
  ensure_package prometheus
  restart=0
  install_file "$rendered/prometheus.yml" /etc/prometheus/prometheus.yml 0644 && restart=1
  install_file "$rendered/prometheus.default" /etc/default/prometheus 0644 && restart=1
  ensure_running prometheus "$restart"
  if [[ $GRAFANA == 1 ]]; then
    if ! dpkg-query -W grafana >/dev/null 2>&1; then
      run install -d -m 0755 /etc/apt/keyrings
      run curl -fsSL -o /etc/apt/keyrings/grafana.asc https://apt.grafana.com/gpg.key
      # No pipe into `run`: in a dry run it reads nothing, and the writer's SIGPIPE fails the step.
      run sh -c 'printf "%s\n" "deb [signed-by=/etc/apt/keyrings/grafana.asc] https://apt.grafana.com stable main" >/etc/apt/sources.list.d/grafana.list'
      apt_get update
      ledger "created /etc/apt/keyrings/grafana.asc"
      ledger "created /etc/apt/sources.list.d/grafana.list"
      ensure_package grafana
    fi
    # The admin password: generated here on first run (the kernel's CSPRNG), root-only, kept across
    # runs; systemd hands it to Grafana (grafana-server.conf) and grafana.ini reads it from there.
    pw=$QWEN_VL_ETC/grafana-admin-password
    applied=$QWEN_VL_STATE/grafana-admin-password.applied
    if [[ -s $pw ]]; then
      log "Grafana admin password kept ($pw)"
    else
      new_secret "$pw"
      ledger "created $pw"
      run rm -f "$applied"
      changed "Grafana admin password generated in $pw (root only)"
    fi
    g=0
    install_file "$rendered/grafana.ini" /etc/grafana/grafana.ini 0644 && g=1
    install_file "$rendered/grafana-server.conf" /etc/systemd/system/grafana-server.service.d/qwen-vl.conf 0644 && run systemctl daemon-reload && g=1
    install_file "$rendered/grafana-datasource.yaml" /etc/grafana/provisioning/datasources/qwen-vl.yaml 0644 && g=1
    install_file "$rendered/grafana-dashboards.yaml" /etc/grafana/provisioning/dashboards/qwen-vl.yaml 0644 && g=1
    if [[ ! -s /var/lib/grafana/dashboards/vllm.json ]]; then
      run install -d /var/lib/grafana/dashboards
      run curl -fsSL -o /var/lib/grafana/dashboards/vllm.json "$VLLM_DASHBOARD_URL" || die "cannot download vLLM's Grafana dashboard from $VLLM_DASHBOARD_URL"
      # The exported dashboard's datasource is the import-time input ${DS_PROMETHEUS}: bind it.
      run sed -i "s/\${DS_PROMETHEUS}/$GRAFANA_DATASOURCE_UID/g" /var/lib/grafana/dashboards/vllm.json
      ledger "created /var/lib/grafana/dashboards/vllm.json"
      g=1
      changed "vLLM Grafana dashboard"
    fi
    ensure_running grafana-server "$g"
    grafana_admin_password "$pw" "$applied"
    log "Grafana: http://127.0.0.1:$GRAFANA_PORT on the head (loopback only: tunnel to it), user admin, password: sudo cat $pw"
  fi
fi
finish
