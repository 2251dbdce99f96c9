#!/usr/bin/env bash
# Preflight: is this the machine the plan was made for? System, GPUs (model, count, memory) and free
# disk for what the steps write. Refuses with the difference and what to do; changes nothing.
set -euo pipefail
QWEN_VL_STEP=preflight
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env

detect_os
case "$OS_ID-$OS_VERSION" in
  ubuntu-22.04 | ubuntu-24.04 | debian-12) log "system: $OS_ID $OS_VERSION (supported)" ;;
  *) die "system $OS_ID $OS_VERSION is not supported: use Ubuntu 22.04, Ubuntu 24.04 or Debian 12" ;;
esac

if ! command -v nvidia-smi >/dev/null 2>&1; then
  if [[ $INSTALL_DRIVER == 1 ]]; then
    log "GPUs: nvidia-smi not found; the driver step will install the driver, GPUs are checked after it"
  else
    die "nvidia-smi not found and the driver install is disabled: install an NVIDIA driver ≥ $MIN_DRIVER"
  fi
else
  mapfile -t gpus < <(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits)
  count=${#gpus[@]}
  [[ $count -ge $GPU_COUNT ]] || die "found $count GPU(s), the plan needs $GPU_COUNT × $GPU_MODEL on this node: pick a machine with $GPU_COUNT GPUs or change the plan (target.hosts[].gpuCount)"
  for line in "${gpus[@]}"; do
    name=${line%%,*}
    mem=${line##*, }
    name=${name%% }
    [[ $name == "$GPU_SMI_NAME" ]] || die "GPU \"$name\" differs from the plan's \"$GPU_SMI_NAME\" ($GPU_MODEL): the memory plan would be wrong; fix target.hosts[].gpu or the machine"
    [[ $mem -ge $GPU_MEMORY_MIB_MIN ]] || die "GPU \"$name\" has $mem MiB, the plan assumes ≥ $GPU_MEMORY_MIB_MIN MiB"
  done
  log "GPUs: $count × $GPU_SMI_NAME, memory as planned"
fi

# Space for everything the steps write, per filesystem (the three folders often share the root
# volume): the weights under the model folder, vLLM's environment under QWEN_VL_HOME, the service
# account's caches (hf, Triton, torch.compile kernels) in its home. What is already there counts as
# written; a folder not made yet is measured on the filesystem it will be made on.
mkdir -p "$MODEL_PARENT"
declare -A need_kib=() free_kib=() what=()
plan_space() { # folder, KiB it will hold, what for
  local dir=$1 want=$2 label=$3 have=0 fs at=$1
  while [[ ! -d $at ]]; do at=$(dirname "$at"); done
  fs=$(df -P "$at" | awk 'NR==2 {print $6}')
  # A file vanishing under du (a cache while vLLM runs) makes it exit 1: its total still counts.
  [[ -d $dir ]] && have=$(du -skx "$dir" 2>/dev/null | awk '{print $1}' || true)
  have=${have:-0}
  want=$((want - have))
  [[ $want -lt 0 ]] && want=0
  need_kib[$fs]=$((${need_kib[$fs]:-0} + want))
  free_kib[$fs]=$(df -Pk "$at" | awk 'NR==2 {print $4}')
  what[$fs]="${what[$fs]:+${what[$fs]} + }$label $((want / 1048576)) GiB"
}
plan_space "$MODEL_DIR" "$WEIGHTS_KIB" "weights"
plan_space "$QWEN_VL_HOME/venv" "$VENV_KIB" "Python environment"
plan_space "$SERVICE_HOME" "$CACHES_KIB" "caches"
short=()
for fs in "${!need_kib[@]}"; do
  if [[ ${free_kib[$fs]} -ge ${need_kib[$fs]} ]]; then
    log "disk: $((free_kib[$fs] / 1048576)) GiB free on $fs, the steps write ${what[$fs]}"
  else
    short+=("$fs has $((free_kib[$fs] / 1048576)) GiB free, the steps write ${what[$fs]} = $((need_kib[$fs] / 1048576)) GiB")
  fi
done
[[ ${#short[@]} -eq 0 ]] || die "not enough disk: ${short[*]}: grow the volume (target.rootVolumeGiB) or free space"
finish
