#!/usr/bin/env bash
# Checks a provisioned node without changing it (npm run verify): one line per check,
#   CHECK <name> ok <detail>   or   CHECK <name> FAIL <detail and what to do>
# then exit 0 when every check passed. Weights are checked against the stamp of the last full
# verification (size and mtime; VERIFY_FULL=1 re-hashes every file). The gates reuse the
# provisioning steps' own scripts, which only read: connectivity, cluster-ready, readiness.
set -uo pipefail
QWEN_VL_STEP=verify
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
set +e # a failed check is reported, and the others still run
bin=$(dirname "$0")
failures=0
say() { printf 'CHECK %s %s %s\n' "$1" "$2" "$3"; }
check() { # check NAME DETAIL-OK DETAIL-FAIL COMMAND... (DETAIL-OK "-": the command's last line)
  local name=$1 ok=$2 fail=$3 out
  shift 3
  if out=$("$@" 2>&1); then
    [[ $ok == - ]] && ok=$(grep -v '^[[:space:]]*$' <<<"$out" | tail -n1 | sed 's/^\[qwen-vl [a-z]*\] //')
    say "$name" ok "$ok"
  else
    failures=$((failures + 1))
    # The lines that name what is wrong (BAD <file>: …, FAILED: …), else the last line.
    local named
    named=$(grep -oE '(BAD [^ ]+: [a-z0-9 ]*[a-z0-9]|FAILED: .*)' <<<"$out" | head -n3 | paste -sd ';' - | sed 's/;/; /g')
    out=${named:-$(grep -v '^[[:space:]]*$' <<<"$out" | grep -v 'RESULT' | tail -n1)}
    say "$name" FAIL "$fail${out:+ ($out)}"
  fi
}

units=()
[[ $MONITORING == 1 ]] && units+=(prometheus-node-exporter)
[[ $MONITORING == 1 && $ROLE == head ]] && units+=(prometheus)
[[ $MONITORING == 1 && $DCGM_EXPORTER == 1 ]] && gpu_device && units+=(nvidia-dcgm-exporter)
[[ $MULTI_NODE == 1 ]] && units+=(qwen-vl-ray)
[[ $ROLE == head ]] && units+=(qwen-vl-vllm)
for unit in "${units[@]}"; do
  state=$(systemctl is-active "$unit" 2>/dev/null)
  if [[ $state == active ]]; then
    say "unit:$unit" ok active
  else
    failures=$((failures + 1))
    say "unit:$unit" FAIL "${state:-unknown}: see journalctl -u $unit, then repair with pulumi up --rerun (npm run pulumi -- up --stack <stack> --yes --rerun)"
  fi
done

driver=$(driver_version)
if [[ -n $driver ]] && version_ge "$driver" "$MIN_DRIVER"; then
  say driver ok "$driver ≥ $MIN_DRIVER"
else
  failures=$((failures + 1))
  say driver FAIL "${driver:-no answer from nvidia-smi} (needs ≥ $MIN_DRIVER): run the driver step (pulumi up --rerun)"
fi

quick=(--quick)
[[ ${VERIFY_FULL:-0} == 1 ]] && quick=()
check weights "$MODEL_ID@$REVISION matches its manifest${quick[*]:+ (stamp)}" \
  "see $WEIGHTS_REPORT; repair with $bin/weights.sh --refetch-bad" \
  verify_weights "${quick[@]}"

if [[ $MULTI_NODE == 1 ]]; then
  # Ports only: the GPUs are vLLM's while it serves (its Ray workers hold every GPU Ray has).
  check connectivity "every cluster port of every other member answers" "" bash "$bin/connectivity.sh" --ports-only
  if [[ $ROLE == head ]]; then
    check ray "$NODES_PER_REPLICA nodes, $TOTAL_GPUS GPUs in the Ray cluster" "" \
      runuser -u "$SERVICE_USER" -- bash "$bin/cluster-ready.sh" "${VERIFY_RAY_SECONDS:-20}"
  fi
fi

if [[ $ROLE == head && $MONITORING == 1 ]]; then
  # Judged on scrapes made after this check began (a target's state from before a repair, or a
  # Prometheus that has not scraped yet, says nothing), waiting at most VERIFY_PROMETHEUS_SECONDS.
  check prometheus "every scrape target up" "see http://127.0.0.1:$PROMETHEUS_PORT/targets on the head (through a tunnel)" \
    python3 "$bin/prometheus-targets.py" "${VERIFY_PROMETHEUS_SECONDS:-40}" "$PROMETHEUS_PORT"
fi

# readiness.py itself (readiness.sh would re-read the deployment's longer timeout from node.env).
readiness() {
  (
    load_secrets
    python3 "$bin/readiness.py" --timeout "${VERIFY_READINESS_SECONDS:-30}" "$@"
  )
}
if [[ $ROLE == head ]]; then
  # The KV cache vLLM allocated against the plan's (its own line: planned, allocated, the gap).
  check kv-cache - "see journalctl -u qwen-vl-vllm" readiness --kv-only
  check readiness "an image+text request answers" "see journalctl -u qwen-vl-vllm" readiness
fi

if [[ $failures -gt 0 ]]; then
  log "$failures check(s) failed"
  exit 1
fi
log "every check passed"
