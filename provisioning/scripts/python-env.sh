#!/usr/bin/env bash
# vLLM at the pinned version in its own virtual environment, made and filled with uv, with
# transformers new enough for Qwen2-VL, the hf CLI and (multi-node) Ray at the cluster's version.
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
mirror_url=${PYTHON_FIND_LINKS:-${PYTHON_INDEX_URL:-}}
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

if [[ ${WEIGHTS_SOURCE:-hf} == mirror && ${MIRROR_URL:-} == s3://* ]]; then
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

wanted=("vllm==$VLLM_VERSION" "transformers>=$TRANSFORMERS_MIN" "huggingface_hub[cli]==$HF_HUB_VERSION")
[[ ${MULTI_NODE:-0} == 1 ]] && wanted+=("ray[default]==$RAY_VERSION")

# Nothing to do when every requirement is already met (checked by the environment's own Python).
if "$venv/bin/python" - "${wanted[@]}" <<'PY'; then
import sys
from importlib.metadata import version, PackageNotFoundError
def parse(v): return tuple(int(x) if x.isdigit() else 0 for x in v.split(".")[:3])
for req in sys.argv[1:]:
    name = req.split("[")[0].split("=")[0].split(">")[0]
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if "==" in req and have != req.split("==")[1]:
        sys.exit(1)
    if ">=" in req and parse(have) < parse(req.split(">=")[1]):
        sys.exit(1)
PY
  log "already installed: ${wanted[*]}"
else
  log "installing: ${wanted[*]}"
  "$uv" pip install --quiet --python "$venv/bin/python" "${index_args[@]}" "${wanted[@]}" || die "uv could not install ${wanted[*]} (index: ${PYTHON_FIND_LINKS:-${PYTHON_INDEX_URL:-PyPI}})"
  changed "installed ${wanted[*]}"
fi
"$venv/bin/vllm" --version >/dev/null 2>&1 || die "vllm does not run from $venv"
finish
