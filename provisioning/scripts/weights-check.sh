#!/usr/bin/env bash
# The weekly full check (qwen-vl-weights-check.timer): every weight file hashed against its manifest,
# not only the ones whose stamp changed, with the result for Prometheus through node_exporter's
# textfile collector (qwen_vl_weights_ok, qwen_vl_weights_bad_files,
# qwen_vl_weights_last_check_timestamp_seconds). Exits non-zero when a file is bad, so the unit
# shows failed too. Bit rot that leaves size, times and inode alone is found here.
#
# weights-check.sh --quick: what vLLM's unit runs (as root) before every start: only the
# files whose size, times or inode changed since the verified stamp are hashed again; no metrics.
set -euo pipefail
QWEN_VL_STEP=weights-check
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
if [[ ${1:-} == --quick ]]; then
  verify_weights --quick
  exit
fi
report=$WEIGHTS_REPORT
# The folder the node exporter's textfile collector reads (node.env, from plan/layout.ts).
textfile=$NODE_EXPORTER_TEXTFILE_DIR
ok=1
# shellcheck disable=SC2119 # every file hashed: no --quick
verify_weights || ok=0
bad=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1])).get("bad", [])))' "$report" 2>/dev/null || echo 0)
mkdir -p "$textfile"
labels="model=\"$MODEL_ID\",revision=\"$REVISION\""
{
  echo "# HELP qwen_vl_weights_ok 1 when every weight file matched its manifest at the last full check."
  echo "# TYPE qwen_vl_weights_ok gauge"
  echo "qwen_vl_weights_ok{$labels} $ok"
  echo "# HELP qwen_vl_weights_bad_files Weight files missing or not matching the manifest at the last full check."
  echo "# TYPE qwen_vl_weights_bad_files gauge"
  echo "qwen_vl_weights_bad_files{$labels} $bad"
  echo "# HELP qwen_vl_weights_last_check_timestamp_seconds When the last full check ended."
  echo "# TYPE qwen_vl_weights_last_check_timestamp_seconds gauge"
  echo "qwen_vl_weights_last_check_timestamp_seconds{$labels} $(date +%s)"
} >"$textfile/qwen_vl_weights.prom.tmp"
mv "$textfile/qwen_vl_weights.prom.tmp" "$textfile/qwen_vl_weights.prom"
if [[ $ok == 1 ]]; then
  log "every weight file of $MODEL_ID@$REVISION matches its manifest"
else
  die "$bad weight file(s) do not match the manifest (see $report): fetch them again with weights.sh --refetch-bad"
fi
