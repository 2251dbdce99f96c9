#!/usr/bin/env bash
# NVIDIA driver: nothing to do when nvidia-smi reports a driver ≥ MIN_DRIVER (the project's floor
# 515.65.01 and what the pinned vLLM's CUDA build needs). Otherwise install from NVIDIA's CUDA
# repository for this distribution: open kernel modules for Turing and newer, proprietary for older,
# Fabric Manager of the same version on NVSwitch boards, nvidia-persistenced. A fresh install needs a
# reboot: the step leaves $QWEN_VL_STATE/reboot-required and the orchestrator reboots and runs it again.
set -euo pipefail
QWEN_VL_STEP=driver
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env

marker=$QWEN_VL_STATE/reboot-required
current=""
if command -v nvidia-smi >/dev/null 2>&1; then
  # Whole output first: `| head` would SIGPIPE nvidia-smi on multi-GPU boards and fail the pipeline.
  current=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null) || current=""
  current=${current%%$'\n'*}
  current=${current// /}
fi

if [[ -n $current ]] && version_ge "$current" "$MIN_DRIVER"; then
  log "driver $current ≥ required $MIN_DRIVER: nothing to install"
  if [[ -f $marker ]]; then
    rm -f "$marker"
    changed "driver is loaded after the reboot"
  fi
  if [[ ${NVSWITCH:-0} == 1 ]]; then
    fm=$(dpkg-query -W -f='${Version}' 'nvidia-fabricmanager*' 2>/dev/null | head -n1 || true)
    if [[ -z $fm ]]; then
      die "this board has NVSwitch but Fabric Manager is not installed: apt-get install cuda-drivers-fabricmanager (its version must equal the driver's, $current)"
    fi
    case "$fm" in
      "$current"*) log "Fabric Manager $fm matches the driver" ;;
      *) die "Fabric Manager $fm does not match driver $current: install the Fabric Manager package of version $current" ;;
    esac
  fi
  finish
  exit 0
fi

if [[ -f $marker ]]; then
  die "the driver was installed but is still not loaded after a reboot${current:+ (nvidia-smi reports $current)}: check 'dmesg | grep -i nvidia' and Secure Boot (unsigned DKMS modules)"
fi
if [[ -n $current ]]; then
  log "driver $current < required $MIN_DRIVER: upgrading"
else
  log "no working NVIDIA driver (nvidia-smi missing or failing): installing"
fi
[[ ${INSTALL_DRIVER:-1} == 1 ]] || die "driver ${current:-absent} < required $MIN_DRIVER and provisioning.installDriver is false: install a driver ≥ $MIN_DRIVER yourself"

detect_os
cuda_repo_name >/dev/null
export DEBIAN_FRONTEND=noninteractive
run apt-get update
run apt-get install -y --no-install-recommends ca-certificates curl "linux-headers-$(uname -r)"
if [[ $OS_ID == debian ]]; then
  # The driver's DKMS packages depend on contrib.
  run sed -i -E 's/^(Components: .*main)$/\1 contrib/' /etc/apt/sources.list.d/debian.sources
fi
ensure_cuda_repo
if [[ $DRIVER_FLAVOR == open ]]; then
  log "kernel modules: open (${GPU_ARCHITECTURE} is Turing or newer)"
  run apt-get install -y nvidia-open
else
  log "kernel modules: proprietary (${GPU_ARCHITECTURE} predates Turing)"
  run apt-get install -y cuda-drivers
fi
if [[ ${NVSWITCH:-0} == 1 ]]; then
  log "NVSwitch board: installing Fabric Manager at the driver's version"
  run apt-get install -y cuda-drivers-fabricmanager
  run systemctl enable nvidia-fabricmanager
fi
run systemctl enable nvidia-persistenced
run mkdir -p "$QWEN_VL_STATE"
run touch "$marker"
changed "driver installed; reboot required, then run this step again"
finish
