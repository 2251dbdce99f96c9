#!/usr/bin/env bash
# vLLM at the pinned version in its own virtual environment, made with uv and synced to the release's
# lock file: transformers, the hf CLI and Ray at the lock's versions, the same on every node.
# Packages come from PYTHON_INDEX_URL or, air-gapped, from a flat mirror (PYTHON_FIND_LINKS). Also the
# unprivileged account that runs them (lib.sh: ensure_service_account).
set -euo pipefail
QWEN_VL_STEP=python-env
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
venv=$QWEN_VL_HOME/venv
tools=$QWEN_VL_HOME/tools

ensure_service_account
# What a fresh cloud image lacks: venv for the tools' environment; Python's headers and a C
# compiler, which Triton and torch.compile need at vLLM's first start ("Python.h: No such file or
# directory", vllm issue 27890).
ensure_package python3-venv python3-dev gcc
# vLLM's CPU build links libnuma ("libnuma.so.1: cannot open shared object file", then its worker
# fails in init_cpu_memory_env), and torch.compile on CPU builds C++ kernels ("InvalidCxxCompiler:
# No working C++ compiler found in torch._inductor.config.cpp.cxx"): vLLM's CPU installation guide
# (docs.vllm.ai, 0.6.3 on) installs gcc, g++ and libnuma-dev, whose run-time half is libnuma1.
if [[ $VLLM_BUILD == cpu ]]; then
  ensure_package libnuma1 g++
fi

# The environment is built on the system's python3: refuse early when vLLM's wheels need a newer
# one (their Requires-Python, rendered from catalogs/vllm.ts) rather than fail in uv.
have_python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ -n ${VLLM_MIN_PYTHON:-} ]] && ! version_ge "$have_python.0" "$VLLM_MIN_PYTHON.0"; then
  die "vLLM $VLLM_VERSION needs Python ≥ $VLLM_MIN_PYTHON (its wheel's Requires-Python); this system's python3 is $have_python: use an image with a newer Python (Ubuntu 24.04, Debian 12) or pin a vllm.version whose Requires-Python it meets (catalogs/vllm.ts lists each release's)"
fi

index_args=()
pip_trust=()
if [[ -n ${PYTHON_FIND_LINKS:-} ]]; then
  index_args=(--no-index --find-links "$PYTHON_FIND_LINKS")
elif [[ -n ${PYTHON_INDEX_URL:-} ]]; then
  index_args=(--index-url "$PYTHON_INDEX_URL")
fi
# pip ignores a plain-http mirror unless told to trust its host (a site mirror on a private network).
mirror_url=${PYTHON_FIND_LINKS:-$PYTHON_INDEX_URL}
if [[ $mirror_url == http://* ]]; then
  host=${mirror_url#http://}
  pip_trust=(--trusted-host "${host%%[:/]*}")
fi

uv=$tools/bin/uv
if [[ -x $uv ]] && [[ "$("$uv" --version | awk '{print $2}')" == "$UV_VERSION" ]]; then
  log "uv $UV_VERSION present"
else
  command -v python3 >/dev/null || die "python3 is missing: install python3 and python3-venv"
  if [[ ! -x $tools/bin/pip ]]; then
    python3 -m venv "$tools" || die "python3 -m venv failed: install the python3-venv package"
  fi
  "$tools/bin/pip" install --quiet --disable-pip-version-check "${index_args[@]}" "${pip_trust[@]}" "uv==$UV_VERSION" || die "cannot install uv $UV_VERSION from the package index"
  changed "uv $UV_VERSION installed"
fi

if [[ $WEIGHTS_SOURCE == mirror && $MIRROR_URL == s3://* ]]; then
  have=$("$tools/bin/python" -c 'import botocore; print(botocore.__version__)' 2>/dev/null || true)
  if [[ $have == "$BOTOCORE_VERSION" ]]; then
    log "botocore $BOTOCORE_VERSION present (S3 weights mirror)"
  else
    "$tools/bin/pip" install --quiet --disable-pip-version-check "${index_args[@]}" "${pip_trust[@]}" "botocore==$BOTOCORE_VERSION" || die "cannot install botocore $BOTOCORE_VERSION (needed for the S3 weights mirror) from the package index"
    changed "botocore $BOTOCORE_VERSION for the S3 weights mirror"
  fi
fi

if [[ ! -x $venv/bin/python ]]; then
  "$uv" venv --quiet --python "$(command -v python3)" "$venv" || die "uv could not create $venv"
  changed "virtual environment $venv"
fi

# Every package at the version of the release's lock (rendered/python.lock, `uv pip compile`
# output checked in under locks/): nodes made on different days get the same torch, transformers,
# hf CLI and Ray. `uv pip sync` installs exactly the lock and removes what it does not list.
lock=$QWEN_VL_HOME/rendered/python.lock
[[ -s $lock ]] || die "no lock file at $lock: the bundle step writes it (run pulumi up again)"
want=$(sha256sum "$lock" | awk '{print $1}')
synced=$venv/.qwen-vl-lock.sha256
if [[ -r $synced && "$(cat "$synced")" == "$want" ]]; then
  log "environment matches the lock ($LOCK_PINS)"
else
  log "syncing $venv to the lock ($LOCK_PINS)"
  "$uv" pip sync --quiet --python "$venv/bin/python" "${index_args[@]}" "$lock" ||
    die "uv could not install the lock (index: ${mirror_url:-PyPI}): a mirror must serve every package the lock pins"
  echo "$want" >"$synced"
  changed "synced to the lock: $LOCK_PINS"
fi
# The release the plan is for, and the tools the other steps run.
have_vllm=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("vllm"))' 2>/dev/null || true)
[[ ${have_vllm%%+*} == "$VLLM_VERSION" ]] || die "the environment has vllm ${have_vllm:-none}, the plan is for $VLLM_VERSION: the lock and vllm.version disagree"
[[ -x $venv/bin/hf ]] || die "the lock installs no huggingface_hub ≥ 0.34 (its hf CLI): the weights step reads the hub's file list with it"
if [[ $MULTI_NODE == 1 ]]; then
  [[ -x $venv/bin/ray ]] || die "the lock installs no Ray: a multi-node replica needs it"
fi
"$venv/bin/vllm" --version >/dev/null 2>&1 || die "vllm does not run from $venv"
finish
