#!/usr/bin/env bash
# CUDA: the version the driver supports (nvidia-smi's "CUDA Version") must be ≥ 11.7 and of the
# major version the pinned vLLM wheels are built for (minor-version compatibility covers the rest).
# The toolkit (nvcc) is installed only when provisioning.installCudaToolkit asks for it.
set -euo pipefail
QWEN_VL_STEP=cuda
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env

banner=$(nvidia-smi 2>/dev/null) || die "nvidia-smi fails: the driver is not working (run the driver step)"
supported=$(sed -n 's/.*CUDA Version: *\([0-9][0-9.]*\).*/\1/p' <<<"$banner" | sed -n 1p)
[[ -n $supported ]] || die "nvidia-smi does not report a CUDA version: the driver is not working"
version_ge "$supported" "$MIN_CUDA" || die "the driver supports CUDA $supported < $MIN_CUDA: upgrade the driver (≥ $MIN_DRIVER)"
vllm_major=${VLLM_CUDA%%.*}
version_ge "$supported" "$vllm_major.0" || die "the driver supports CUDA $supported, but vLLM $VLLM_VERSION wheels are built for CUDA $VLLM_CUDA: upgrade the driver to ≥ $MIN_DRIVER"
log "driver supports CUDA $supported: ≥ $MIN_CUDA and runs vLLM's CUDA $VLLM_CUDA wheels"

if [[ $INSTALL_CUDA_TOOLKIT == 1 ]]; then
  if command -v nvcc >/dev/null 2>&1 || [[ -x /usr/local/cuda/bin/nvcc ]]; then
    log "CUDA toolkit already installed: $( (command -v nvcc || echo /usr/local/cuda/bin/nvcc) | xargs -I{} {} --version | tail -n1)"
  else
    apt_get install -y "cuda-toolkit-${VLLM_CUDA/./-}"
    changed "CUDA toolkit $VLLM_CUDA installed"
  fi
else
  log "CUDA toolkit not requested (vLLM's wheels bring their own CUDA runtime)"
fi
finish
