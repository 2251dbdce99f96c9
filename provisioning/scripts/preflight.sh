#!/usr/bin/env bash
# Preflight: is this the machine the plan was made for? System, GPUs (model, count, memory) and free
# disk for the weights. Refuses with the difference and what to do; changes nothing.
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
  if [[ ${INSTALL_DRIVER:-1} == 1 ]]; then
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

mkdir -p "$MODEL_PARENT"
free_kib=$(df -Pk "$MODEL_PARENT" | awk 'NR==2 {print $4}')
have_kib=0
[[ -d $MODEL_DIR ]] && have_kib=$(du -sk "$MODEL_DIR" | awk '{print $1}')
need_kib=$((WEIGHTS_KIB - have_kib))
[[ $need_kib -lt 0 ]] && need_kib=0
[[ $free_kib -ge $need_kib ]] || die "free disk under $MODEL_PARENT is $((free_kib / 1024)) MiB, the weights need $((need_kib / 1024)) MiB more: grow the volume (target.rootVolumeGiB)"
log "disk: $((free_kib / 1024)) MiB free under $MODEL_PARENT, weights need $((need_kib / 1024)) MiB more"
finish
