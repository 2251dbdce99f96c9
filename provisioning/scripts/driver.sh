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
current=$(driver_version)

if [[ -n $current ]] && version_ge "$current" "$MIN_DRIVER"; then
  log "driver $current ≥ required $MIN_DRIVER: nothing to install"
  if [[ -f $marker ]]; then
    rm -f "$marker"
    changed "driver is loaded after the reboot"
  fi
  if [[ $NVSWITCH == 1 ]]; then
    # What matters, not a package name: the daemon runs, and its version equals the driver's
    # (NVIDIA: "the version of fabricmanager must match the NVIDIA driver installed").
    command -v nv-fabricmanager >/dev/null 2>&1 ||
      die "this board has NVSwitch but Fabric Manager is not installed: install NVIDIA's nvidia-fabricmanager package of version $current"
    fm=$(nv-fabricmanager --version 2>/dev/null | sed -n -E 's/.*version is *: *([0-9.]+).*/\1/p' | head -n1)
    [[ $fm == "$current" ]] ||
      die "Fabric Manager ${fm:-of unknown version} does not match driver $current: install nvidia-fabricmanager $current"
    systemctl is-active --quiet nvidia-fabricmanager ||
      die "Fabric Manager $fm is installed but nvidia-fabricmanager is not running (systemctl status nvidia-fabricmanager): without it NVSwitch GPUs cannot talk"
    log "Fabric Manager $fm runs and matches the driver"
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
[[ $INSTALL_DRIVER == 1 ]] || die "driver ${current:-absent} < required $MIN_DRIVER and provisioning.installDriver is false: install a driver ≥ $MIN_DRIVER yourself"

detect_os
cuda_repo_name >/dev/null
export DEBIAN_FRONTEND=noninteractive
apt_get update
apt_get install -y --no-install-recommends ca-certificates curl "linux-headers-$(uname -r)"
if [[ $OS_ID == debian ]]; then
  # The driver's DKMS packages depend on contrib.
  run sed -i -E 's/^(Components: .*main)$/\1 contrib/' /etc/apt/sources.list.d/debian.sources
fi
ensure_cuda_repo
if [[ -n ${DRIVER_BRANCH:-} ]]; then
  # Hold NVIDIA's driver packages to the branch (an apt pin, 1001: also above newer versions).
  pin=/etc/apt/preferences.d/qwen-vl-nvidia-driver
  if [[ ! -f $pin ]]; then
    # No pipe into `run`: in a dry run it reads nothing, and the writer's SIGPIPE fails the step.
    run sh -c 'umask 022 && printf "Package: *nvidia* *cuda-drivers* libnvidia* libcuda* libxnvctrl*\nPin: version %s.*\nPin-Priority: 1001\n" "$1" >"$2"' pin "$DRIVER_BRANCH" "$pin"
    ledger "created $pin"
    apt_get update
  fi
  log "driver branch pinned to R$DRIVER_BRANCH (the last branch for ${GPU_ARCHITECTURE})"
fi
if [[ $DRIVER_FLAVOR == open ]]; then
  log "kernel modules: open (${GPU_ARCHITECTURE} is Turing or newer)"
  apt_get install -y nvidia-open
else
  log "kernel modules: proprietary (${GPU_ARCHITECTURE} predates Turing)"
  apt_get install -y cuda-drivers
fi
if [[ $NVSWITCH == 1 ]]; then
  log "NVSwitch board: installing Fabric Manager at the driver's version"
  apt_get install -y cuda-drivers-fabricmanager
  run systemctl enable nvidia-fabricmanager
fi
run systemctl enable nvidia-persistenced
run mkdir -p "$QWEN_VL_STATE"
run touch "$marker"
changed "driver installed; reboot required, then run this step again"
finish
