#!/usr/bin/env bash
# Weights at the pinned revision, verified before vLLM may use them.
#   weights.sh                 fetch what is missing (resuming interrupted downloads), verify all
#   weights.sh --refetch-bad   delete and fetch again only the files that fail verification
# Sources: a mirror (HTTP/S3 URL serving the files and manifest.json) or Hugging Face (the manifest
# from the hub's API at the pinned revision, the token from the root-only secrets file); either way
# the files come with aria2c, parallel and resumable, checking each file's sha256 as it lands.
set -euo pipefail
QWEN_VL_STEP=weights
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
bin=$(dirname "$0")
meta=$WEIGHTS_META
manifest=$WEIGHTS_MANIFEST
report=$WEIGHTS_REPORT
refetch_bad=0
[[ ${1:-} == --refetch-bad ]] && refetch_bad=1

load_secrets
mkdir -p "$meta" "$QWEN_VL_STATE"
# Every source is fetched with aria2c, which no cloud image ships.
ensure_package aria2

# The S3 mirror through botocore in the tools environment (python-env installs it at its pin).
s3_mirror() { "$QWEN_VL_HOME/tools/bin/python" "$bin/s3-mirror.py" "$@"; }

if [[ ! -s $manifest ]]; then
  if [[ $WEIGHTS_SOURCE == mirror && $MIRROR_URL == s3://* ]]; then
    why=$(s3_mirror get "$MIRROR_URL" manifest.json "$manifest.tmp" 2>&1) ||
      die "cannot read the manifest from the S3 mirror (${why##*$'\n'}): check provisioning.mirrorUrl, the node's instance role and that the bucket is in the stack's region (${AWS_DEFAULT_REGION:-unset})"
  elif [[ $WEIGHTS_SOURCE == mirror ]]; then
    curl -fsS --retry 3 -o "$manifest.tmp" "$MIRROR_URL/manifest.json" || die "cannot fetch $MIRROR_URL/manifest.json: check provisioning.mirrorUrl and that the mirror is reachable from this node"
  else
    why=$("$QWEN_VL_HOME/venv/bin/python" "$bin/hf-manifest.py" "$MODEL_ID" "$REVISION" 2>&1 >"$manifest.tmp") ||
      die "cannot read the file list of $MODEL_ID@$REVISION from $HF_ENDPOINT (${why##*$'\n'}): check model.revision, provisioning.hfEndpoint and the token (secrets.hfToken)"
  fi
  count=$(python3 "$bin/manifest.py" check "$manifest.tmp" "$REVISION") || die "the manifest is not for revision $REVISION"
  mv "$manifest.tmp" "$manifest"
  changed "manifest of $MODEL_ID@$REVISION ($count files)"
fi

verify() { verify_weights "$@"; }

fix_config() {
  [[ $ROPE_FIX == 1 ]] || return 0
  local out
  out=$(python3 "$bin/fix-config.py" "$MODEL_DIR" "$manifest") || die "cannot apply the rope_scaling fix to config.json"
  log "${out#\[qwen-vl config\] }"
  if [[ $out == *changed:* ]]; then
    verify >/dev/null || die "config.json does not verify after the rope_scaling fix"
    changed "config.json rope_scaling fixed for vLLM $VLLM_VERSION"
  fi
}

# The weekly full check (every file hashed; the result in Prometheus), a systemd timer.
ensure_weights_check() {
  local reload=0 unit
  # sd_booted(): without systemd as init (a build container) there is no timer to install.
  if [[ ! -d /run/systemd/system ]]; then
    log "systemd is not running here: the weekly full check is not installed"
    return 0
  fi
  for unit in qwen-vl-weights-check.service qwen-vl-weights-check.timer; do
    install_file "$QWEN_VL_HOME/rendered/$unit" "/etc/systemd/system/$unit" 0644 && reload=1
  done
  if [[ $reload == 1 ]]; then run systemctl daemon-reload; fi
  ensure_running qwen-vl-weights-check.timer "$reload"
}

if verify --quick >/dev/null 2>&1; then
  log "weights of $MODEL_ID@$REVISION present and verified: nothing to fetch"
  fix_config
  ensure_weights_check
  finish
  exit 0
fi

mapfile -t bad < <(verify --list-bad 2>/dev/null || true)
log "${#bad[@]} file(s) missing or not matching the manifest"
for path in "${bad[@]}"; do
  file=$MODEL_DIR/$path
  # A complete file with the wrong content is fetched again; a partial one (with aria2's control
  # file) is resumed.
  if [[ -f $file && ! -f $file.aria2 ]] && python3 "$bin/manifest.py" complete "$manifest" "$path" "$file"; then
    if [[ $refetch_bad == 1 ]]; then
      log "removing bad file $path to fetch it again"
      rm -f "$file"
    else
      verify_weights >/dev/null 2>&1 || true # the report names it (nothing is stamped with a bad file)
      die "$path is complete but does not match the manifest (disk or transfer corruption; report: $report): fetch it again with: $0 --refetch-bad"
    fi
  fi
done

# resolve FILE...: one URL per file into $urls, in order ("<url>[\t<auth>]").
urls=$meta/urls
resolve() {
  local why
  if [[ $WEIGHTS_SOURCE == mirror && $MIRROR_URL == s3://* ]]; then
    # A presigned HTTPS URL per object (signed with the instance role's credentials).
    why=$(s3_mirror presign --expires 21600 "$MIRROR_URL" "$@" 2>&1 >"$urls") ||
      die "cannot presign the S3 mirror's files (${why##*$'\n'}): check the node's instance role"
  elif [[ $WEIGHTS_SOURCE == mirror ]]; then
    for path in "$@"; do echo "${MIRROR_URL%/}/$path"; done >"$urls"
  else
    # The hub's own URL per file at the pinned revision, or the signed CDN URL it redirects to (the
    # token is sent to the hub only). hf download would do: from huggingface_hub 1.31 (which vLLM
    # 0.31 needs) it writes each file to a temporary name and deletes it on failure, so an
    # interrupted download starts over (its file_download.py, PR #4228).
    why=$(python3 "$bin/hf-urls.py" "$MODEL_ID" "$REVISION" "$@" 2>&1 >"$urls") ||
      die "cannot resolve the files of $MODEL_ID@$REVISION on $HF_ENDPOINT (${why##*$'\n'}): check model.revision, provisioning.hfEndpoint and the token (secrets.hfToken)"
  fi
}
# aria2c's input: URL, file, the manifest's sha256 (checked as each file completes) and, for the
# hub's own URLs, the token. Root-only and removed after the run: it may hold the token.
list=$(mktemp "$QWEN_VL_STATE/aria2-input.XXXXXX")
trap 'rm -f "$list"' EXIT
from="the mirror"
# The hub's CDN signs its URLs for about an hour: its files are resolved a batch at a time, just
# before aria2c fetches them (a batch is as many files as aria2c fetches at once).
batch=${#bad[@]}
[[ $WEIGHTS_SOURCE == hf ]] && from="the hub" && batch=${ARIA2_JOBS:-4}
log "fetching ${#bad[@]} file(s) from $from with aria2c (resuming partial files)"
for ((i = 0; i < ${#bad[@]}; i += batch)); do
  part=("${bad[@]:i:batch}")
  resolve "${part[@]}"
  python3 "$bin/manifest.py" aria2-input "$manifest" "$urls" "${part[@]}" >"$list"
  aria2c --continue=true --check-integrity=true --auto-file-renaming=false --allow-overwrite=true \
    --max-concurrent-downloads="${ARIA2_JOBS:-4}" --split="${ARIA2_SPLIT:-8}" --max-connection-per-server="${ARIA2_SPLIT:-8}" \
    --min-split-size=16M --file-allocation=none --console-log-level=warn --summary-interval=0 \
    --max-tries=5 --retry-wait=3 --dir="$MODEL_DIR" --input-file="$list" ||
    die "aria2c could not fetch every file (partial files are kept and resume on the next run)"
done
rm -f "$list"
# aria2c hashed each file against the manifest's sha256 as it completed it (exit 32 otherwise):
# the verification below stamps those without reading them again, and hashes the small ones.
printf '%s\n' "${bad[@]}" >"$meta/fetched"
verify --fetched "$meta/fetched" || die "the fetched weights do not match the manifest (see $report)"
rm -f "$meta/fetched"

changed "weights of $MODEL_ID@$REVISION fetched and verified"
fix_config
ensure_weights_check
finish
