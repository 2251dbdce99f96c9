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

ensure_package() {
  local pkg=$1
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    log "package $pkg present"
  else
    run apt-get install -y --no-install-recommends "$pkg" || die "cannot install $pkg: check the node's package sources"
    changed "installed $pkg"
  fi
}
ensure_running() {
  local unit=$1 restart=${2:-0}
  if ! systemctl is-enabled --quiet "$unit" 2>/dev/null; then
    run systemctl enable "$unit" >/dev/null 2>&1
    changed "enabled $unit"
  fi
  if [[ $restart == 1 ]]; then
    run systemctl restart "$unit"
    changed "restarted $unit (configuration changed)"
  elif ! systemctl is-active --quiet "$unit"; then
    run systemctl start "$unit"
    changed "started $unit"
  else
    log "$unit active"
  fi
}

[[ ${MONITORING:-1} == 1 ]] || {
  log "monitoring disabled by the stack"
  finish
  exit 0
}

ensure_package prometheus-node-exporter
ensure_running prometheus-node-exporter

if [[ ${DCGM_EXPORTER:-1} == 1 ]]; then
  if [[ -e /dev/nvidiactl ]]; then
    if [[ -x /usr/local/bin/dcgm-exporter ]]; then
      log "dcgm-exporter present"
    else
      ensure_package datacenter-gpu-manager
      tmp=$(mktemp -d)
      run curl -fsSL -o "$tmp/dcgm-exporter.tar.gz" "$DCGM_EXPORTER_URL" || die "cannot download the DCGM exporter from $DCGM_EXPORTER_URL"
      run tar -xzf "$tmp/dcgm-exporter.tar.gz" -C "$tmp"
      run install -m 0755 "$(find "$tmp" -name dcgm-exporter -type f | head -n1)" /usr/local/bin/dcgm-exporter
      changed "installed dcgm-exporter"
    fi
    install_file "$rendered/qwen-vl-dcgm-exporter.service" /etc/systemd/system/qwen-vl-dcgm-exporter.service 0644 && run systemctl daemon-reload
    ensure_running qwen-vl-dcgm-exporter
  else
    log "no GPU device (/dev/nvidiactl): DCGM exporter skipped"
  fi
fi

if [[ $ROLE == head ]]; then
  ensure_package prometheus
  restart=0
  install_file "$rendered/prometheus.yml" /etc/prometheus/prometheus.yml 0644 && restart=1
  install_file "$rendered/prometheus.default" /etc/default/prometheus 0644 && restart=1
  ensure_running prometheus "$restart"
  if [[ ${GRAFANA:-0} == 1 ]]; then
    if ! dpkg-query -W grafana >/dev/null 2>&1; then
      run install -d -m 0755 /etc/apt/keyrings
      run curl -fsSL -o /etc/apt/keyrings/grafana.asc https://apt.grafana.com/gpg.key
      echo "deb [signed-by=/etc/apt/keyrings/grafana.asc] https://apt.grafana.com stable main" | run tee /etc/apt/sources.list.d/grafana.list >/dev/null
      run apt-get update
      ensure_package grafana
    fi
    g=0
    install_file "$rendered/grafana-datasource.yaml" /etc/grafana/provisioning/datasources/qwen-vl.yaml 0644 && g=1
    install_file "$rendered/grafana-dashboards.yaml" /etc/grafana/provisioning/dashboards/qwen-vl.yaml 0644 && g=1
    if [[ ! -s /var/lib/grafana/dashboards/vllm.json ]]; then
      run install -d /var/lib/grafana/dashboards
      run curl -fsSL -o /var/lib/grafana/dashboards/vllm.json "$VLLM_DASHBOARD_URL" || die "cannot download vLLM's Grafana dashboard from $VLLM_DASHBOARD_URL"
      g=1
      changed "vLLM Grafana dashboard"
    fi
    ensure_running grafana-server "$g"
  fi
fi
finish
