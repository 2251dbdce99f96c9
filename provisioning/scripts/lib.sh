#!/usr/bin/env bash
# Shared helpers for the node scripts: one clear line per decision, a clear failure naming what to do,
# a dry-run mode (QWEN_VL_DRY_RUN=1) that prints the commands that would change the machine, and a
# RESULT line the orchestrator reads to know whether anything changed.
set -euo pipefail

# Where node.env is: the one path a script knows before reading it. Every other path (QWEN_VL_HOME,
# QWEN_VL_STATE, MODEL_DIR, …) and every setting comes from node.env (plan/layout.ts, rendered).
QWEN_VL_ETC=${QWEN_VL_ETC:-/etc/qwen-vl}
QWEN_VL_CHANGED=0

log() { printf '[qwen-vl %s] %s\n' "${QWEN_VL_STEP:-step}" "$*"; }
die() {
  printf '[qwen-vl %s] FAILED: %s\n' "${QWEN_VL_STEP:-step}" "$*" >&2
  exit 1
}
changed() {
  QWEN_VL_CHANGED=1
  log "changed: $*"
}
# Runs a command that changes the machine (or prints it under QWEN_VL_DRY_RUN=1).
run() {
  if [[ ${QWEN_VL_DRY_RUN:-0} == 1 ]]; then
    printf '[qwen-vl %s] would run: %s\n' "${QWEN_VL_STEP:-step}" "$*"
  else
    "$@"
  fi
}
# Prints the final line the orchestrator parses.
finish() {
  if [[ $QWEN_VL_CHANGED == 1 ]]; then
    log "RESULT changed"
  else
    log "RESULT unchanged"
  fi
}
# The root-only secrets file (VLLM_API_KEY, HF_TOKEN), exported, when the deployment wrote one.
load_secrets() {
  if [[ -r $QWEN_VL_ETC/secrets.env ]]; then
    set -a
    # shellcheck source=/dev/null
    source "$QWEN_VL_ETC/secrets.env"
    set +a
  fi
}
# new_secret FILE: a new root-only file holding a random password: 48 bytes of the kernel's CSPRNG
# in base64 (64 characters), less "/", "+" and the newline, cut to 40 letters and digits (238 bits),
# written whole or not at all; printed nowhere. One shell for the whole pipeline: nothing is piped
# into `run`, and cut reads to the end (no writer is cut off: no SIGPIPE under pipefail).
new_secret() {
  run sh -c 'umask 077 && head -c 48 /dev/urandom | base64 | tr -d "/+\n" | cut -c1-40 | tr -d "\n" >"$1.tmp" && mv "$1.tmp" "$1"' sh "$1" ||
    die "cannot write $1"
}
# grafana_login PASSWORD: the HTTP status Grafana answers GET /api/user as admin with PASSWORD.
grafana_login() {
  printf 'user = "admin:%s"\n' "$1" | curl -s -o /dev/null -w '%{http_code}' -K - "http://127.0.0.1:$GRAFANA_PORT/api/user" || true
}
# grafana_admin_password FILE MARKER: Grafana's admin account takes the password in FILE.
# admin_password is read only when Grafana creates its database ("Set once on first-run", Configure
# Grafana), so a database made before (a Grafana started earlier) still takes admin/admin: Grafana's
# own CLI sets it then (the package's grafana-cli wrapper, as root as Grafana's docs run it, the
# password on standard input: --password-from-stdin, reset_password_command.go). A site's own
# password (neither) is left as it is, and said so. Grafana's API tells which (GET /api/user, basic
# auth; the password in curl's config on standard input, never in a command line). The CLI loads
# grafana.ini too, whose $__file{} names the unit's credential, hidden from other processes when the
# unit has its own mount namespace (systemd CREDENTIALS.md): GF_SECURITY_ADMIN_PASSWORD points it
# at FILE instead (GF_ overrides apply before $__file{} is expanded, pkg/setting/setting.go). Asked
# once: MARKER keeps the answer.
grafana_admin_password() {
  local pw=$1 marker=$2 waited=0 ours admin
  [[ -e $marker ]] && return 0
  local cli=(env "GF_SECURITY_ADMIN_PASSWORD=\$__file{$pw}" grafana-cli admin reset-admin-password --password-from-stdin)
  if [[ ${QWEN_VL_DRY_RUN:-0} == 1 ]]; then
    run "${cli[@]}"
    return 0
  fi
  until tcp_open 127.0.0.1 "$GRAFANA_PORT" 1; do
    ((waited++ < 60)) || die "Grafana does not answer on 127.0.0.1:$GRAFANA_PORT after 60 s: check 'journalctl -u grafana-server', then run the step again"
    sleep 1
  done
  ours=$(grafana_login "$(cat "$pw")")
  if [[ $ours == 200 ]]; then
    log "Grafana's admin account takes the generated password"
  else
    admin=$(grafana_login admin)
    case "$admin" in
      200)
        "${cli[@]}" <"$pw" >/dev/null 2>&1 ||
          die "grafana-cli admin reset-admin-password failed: check 'journalctl -u grafana-server', then run the step again"
        [[ "$(grafana_login "$(cat "$pw")")" == 200 ]] ||
          die "Grafana still refuses the generated password after grafana-cli set it: check 'journalctl -u grafana-server'"
        changed "Grafana's admin account took admin/admin (its database predates the password): set to the generated one"
        ;;
      401)
        log "Grafana's admin account takes neither the generated password nor admin/admin (a site's own?): left as it is; to use $pw instead: env GF_SECURITY_ADMIN_PASSWORD='\$__file{$pw}' grafana-cli admin reset-admin-password --password-from-stdin <$pw"
        ;;
      *) die "Grafana answered HTTP ${admin:-nothing} to GET /api/user on 127.0.0.1:$GRAFANA_PORT: check 'journalctl -u grafana-server', then run the step again" ;;
    esac
  fi
  touch "$marker"
  ledger "created $marker"
}
# The node has an NVIDIA device (QWEN_VL_NVIDIA_DEVICE stands in for it in tests and the lab).
QWEN_VL_NVIDIA_DEVICE=${QWEN_VL_NVIDIA_DEVICE:-/dev/nvidiactl}
gpu_device() { [[ -e $QWEN_VL_NVIDIA_DEVICE ]]; }
# The loaded driver's version ("" without one). The whole output first: `| head` would SIGPIPE
# nvidia-smi on multi-GPU boards and fail the pipeline.
driver_version() {
  local v
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  v=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null) || v=""
  v=${v%%$'\n'*}
  printf '%s' "${v// /}"
}
# tcp_open HOST PORT [SECONDS]: something accepts a TCP connection there within SECONDS (default 3).
tcp_open() { timeout "${3:-3}" bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
# head_only WHY: a step that runs on the head; on a worker it says WHY and ends, unchanged.
head_only() {
  [[ $ROLE == head ]] && return 0
  log "worker: $1"
  finish
  exit 0
}
# version_ge A B: A >= B in dotted-version order.
version_ge() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}
# Sets OS_ID and OS_VERSION from os-release (QWEN_VL_OS_RELEASE overrides the file, for tests).
detect_os() {
  local file=${QWEN_VL_OS_RELEASE:-/etc/os-release}
  [[ -r $file ]] || die "cannot read $file: unsupported system (Ubuntu 22.04, Ubuntu 24.04, Debian 12)"
  export OS_ID OS_VERSION
  # shellcheck source=/dev/null
  OS_ID=$(. "$file" && echo "${ID:-}")
  # shellcheck source=/dev/null
  OS_VERSION=$(. "$file" && echo "${VERSION_ID:-}")
}
load_node_env() {
  local env_file=${QWEN_VL_ETC}/node.env
  [[ -r $env_file ]] || die "$env_file is missing: upload the rendered provisioning bundle first"
  # Exported: the tools the scripts run read some of it themselves (HF_ENDPOINT: hf, HfApi).
  set -a
  # shellcheck source=/dev/null
  source "$env_file"
  # Local overrides an operator keeps on the node (e.g. another mirror for one run); not rendered.
  if [[ -r ${QWEN_VL_ETC}/node.env.local ]]; then
    # shellcheck source=/dev/null
    source "${QWEN_VL_ETC}/node.env.local"
  fi
  set +a
  # The weights' verification files, one place for every script (vLLM's start check included):
  # the manifest and the stamp beside the weights, the last report in the state folder.
  WEIGHTS_META=$MODEL_DIR/.qwen-vl
  WEIGHTS_MANIFEST=$WEIGHTS_META/manifest.json
  WEIGHTS_STAMP=$WEIGHTS_META/verified.json
  WEIGHTS_REPORT=$QWEN_VL_STATE/weights-report.json
}
# verify_weights [--quick|--list-bad|--fetched LIST]: verify-weights.py on this node's weights.
verify_weights() {
  python3 "${BASH_SOURCE[0]%/*}/verify-weights.py" --manifest "$WEIGHTS_MANIFEST" --dir "$MODEL_DIR" \
    --report "$WEIGHTS_REPORT" --stamp "$WEIGHTS_STAMP" "$@"
}
# NVIDIA's CUDA repository directory for this system (after detect_os), or a clear failure.
cuda_repo_name() {
  case "$OS_ID-$OS_VERSION" in
    ubuntu-22.04) echo ubuntu2204 ;;
    ubuntu-24.04) echo ubuntu2404 ;;
    debian-12) echo debian12 ;;
    *) die "no NVIDIA CUDA repository for $OS_ID $OS_VERSION (supported: Ubuntu 22.04, Ubuntu 24.04, Debian 12)" ;;
  esac
}
# NVIDIA's CUDA apt repository (driver, Fabric Manager, DCGM and its exporter) through its
# cuda-keyring package; says so and does nothing when it is already configured.
ensure_cuda_repo() {
  if dpkg-query -W -f='${Status}' cuda-keyring 2>/dev/null | grep -q "install ok installed"; then
    log "NVIDIA CUDA repository configured (cuda-keyring)"
    return 0
  fi
  [[ -n ${OS_ID:-} ]] || detect_os
  local repo
  repo=$(cuda_repo_name)
  local base=${NVIDIA_REPO_URL:-https://developer.download.nvidia.com/compute/cuda/repos}/$repo/x86_64
  run curl -fsSL -o /tmp/cuda-keyring.deb "$base/cuda-keyring_1.1-1_all.deb" || die "cannot download cuda-keyring from $base: check the node's route to NVIDIA's repository (or NVIDIA_REPO_URL for a mirror)"
  run dpkg -i /tmp/cuda-keyring.deb || die "cannot install cuda-keyring"
  apt_get update || die "apt-get update failed after adding NVIDIA's repository"
  changed "NVIDIA CUDA repository $repo added"
}
# The unprivileged account vLLM and Ray run as (SERVICE_USER): a system user without a login shell,
# its home for their caches, Ray's temp dir. Root keeps the weights, the secrets file (systemd reads
# it before dropping privileges) and the weights check (the unit's start-pre runs as root).
ensure_service_account() {
  if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    log "service account $SERVICE_USER present"
  else
    run useradd --system --user-group --home-dir "$SERVICE_HOME" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER" ||
      die "cannot create the service account $SERVICE_USER"
    ledger "user $SERVICE_USER"
    changed "service account $SERVICE_USER (vLLM and Ray run as it, not as root)"
  fi
  local dir
  for dir in "$SERVICE_HOME" "$RAY_TEMP_DIR"; do
    if [[ -d $dir && "$(stat -c %U "$dir")" == "$SERVICE_USER" ]]; then
      continue
    fi
    run install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$dir"
    changed "$dir owned by $SERVICE_USER"
  done
}
# The ledger: what this step changed on the machine that was not ours before (a package it
# installed, a unit it enabled or started, a file it created or replaced, an account it made), one
# line each in $QWEN_VL_STATE/ledger/<step>. undo.sh reads it backwards when the deployment is
# destroyed, so the machine is left as it was found.
ledger() {
  [[ ${QWEN_VL_DRY_RUN:-0} == 1 ]] && return 0
  local file=$QWEN_VL_STATE/ledger/${QWEN_VL_STEP:-step}
  mkdir -p "$QWEN_VL_STATE/ledger"
  grep -qxF -- "$*" "$file" 2>/dev/null || printf '%s\n' "$*" >>"$file"
}
# A fresh cloud image runs unattended-upgrades on first boot, holding the dpkg lock for minutes:
# apt waits for it (bounded) instead of failing.
APT_LOCK_TIMEOUT=${APT_LOCK_TIMEOUT:-600}
QWEN_VL_APT_UPDATED=0
# Steps of one node run side by side (weights, monitoring): one apt at a time among them, held
# until the step ends (apt-get update's list lock does not wait as the dpkg lock does).
apt_serialized() {
  [[ ${QWEN_VL_APT_LOCKED:-0} == 1 || ${QWEN_VL_DRY_RUN:-0} == 1 ]] && return 0
  mkdir -p "$QWEN_VL_STATE"
  exec 8>"$QWEN_VL_STATE/apt.lock"
  flock -w "$APT_LOCK_TIMEOUT" 8 || die "another step held apt for over $APT_LOCK_TIMEOUT s"
  QWEN_VL_APT_LOCKED=1
}
# A step cut mid-install (a dropped SSH link kills dpkg) leaves dpkg interrupted, and every apt-get
# after it refuses: "E: dpkg was interrupted, you must manually run 'dpkg --configure -a'". apt's
# own test (apt-pkg/deb/debsystem.cc, CheckUpdates) is a journal file with an all-digit name in
# dpkg's updates/ folder; `dpkg --audit` names packages left unpacked or half-configured. Either
# one: dpkg finishes its work first, once per step run, keeping configuration files as they are
# (--force-confold: no question without a terminal). dpkg does not wait for its lock as apt does,
# so dpkg-locked.py waits for it as long (APT_LOCK_TIMEOUT). DPKG_ADMINDIR (dpkg(1)) is dpkg's own
# override of /var/lib/dpkg, for tests.
QWEN_VL_DPKG_CHECKED=0
dpkg_recover() {
  [[ $QWEN_VL_DPKG_CHECKED == 1 ]] && return 0
  QWEN_VL_DPKG_CHECKED=1
  local admindir=${DPKG_ADMINDIR:-/var/lib/dpkg} reason="" f audit
  for f in "$admindir"/updates/*; do
    if [[ ${f##*/} =~ ^[0-9]+$ ]]; then
      reason="its journal $f is left"
      break
    fi
  done
  audit=$(dpkg --audit 2>/dev/null) || audit=""
  if [[ -n $audit ]]; then
    reason="${reason:+$reason; }dpkg --audit names packages left half-installed"
  fi
  [[ -n $reason ]] || return 0
  log "dpkg was interrupted ($reason): running dpkg --configure -a first"
  DEBIAN_FRONTEND=noninteractive run python3 "${BASH_SOURCE[0]%/*}/dpkg-locked.py" "$admindir/lock-frontend" "$APT_LOCK_TIMEOUT" \
    dpkg --force-confdef --force-confold --configure -a ||
    die "dpkg --configure -a failed: run it on the node as root, fix what it names, then run the step again"
  changed "dpkg's interrupted work completed (dpkg --configure -a)"
}
# apt-get, one at a time on the node, waiting (bounded) for a dpkg lock held by first-boot
# unattended-upgrades, after an interrupted dpkg is recovered.
apt_get() {
  apt_serialized
  dpkg_recover
  DEBIAN_FRONTEND=noninteractive run apt-get -o "DPkg::Lock::Timeout=$APT_LOCK_TIMEOUT" "$@"
}
# apt-get update once per step run, before the first install (a fresh image's lists are stale or empty).
apt_update_once() {
  [[ $QWEN_VL_APT_UPDATED == 1 ]] && return 0
  apt_get update -qq ||
    die "apt-get update failed: check the node's package sources (a proxy or mirror in /etc/apt for an air-gapped site)"
  QWEN_VL_APT_UPDATED=1
}
# ensure_package NAME…: installs what is missing from the node's package sources; the packages that
# were not on the machine before (the dependencies too) go in the ledger.
ensure_package() {
  local pkg missing=()
  for pkg in "$@"; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      log "package $pkg present"
    else
      missing+=("$pkg")
    fi
  done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  apt_update_once
  local before after
  before=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 == "ii" {print $2}' | sort)
  apt_get install -y -qq --no-install-recommends "${missing[@]}" ||
    die "cannot install ${missing[*]}: check the node's package sources (apt-get update, the proxy or mirror in /etc/apt)"
  after=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 == "ii" {print $2}' | sort)
  while read -r pkg; do
    [[ -n $pkg ]] && ledger "package $pkg"
  done < <(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after"))
  changed "installed ${missing[*]}"
}
# ensure_running UNIT [RESTART]: enabled and active (restarted when RESTART is 1).
ensure_running() {
  local unit=$1 restart=${2:-0}
  if ! systemctl is-enabled --quiet "$unit" 2>/dev/null; then
    run systemctl enable "$unit" >/dev/null 2>&1
    ledger "enabled $unit"
    changed "enabled $unit"
  fi
  if [[ $restart == 1 ]]; then
    run systemctl restart "$unit"
    ledger "started $unit"
    changed "restarted $unit (configuration changed)"
  elif ! systemctl is-active --quiet "$unit"; then
    run systemctl start "$unit"
    ledger "started $unit"
    changed "started $unit"
  else
    log "$unit active"
  fi
}
# install_file SRC DST MODE: copies only when the content differs; says which. A file that was
# there before and not ours is kept in $QWEN_VL_STATE/backup for undo.sh.
install_file() {
  local src=$1 dst=$2 mode=$3
  if [[ -f $dst ]] && cmp -s "$src" "$dst"; then
    log "unchanged: $dst"
    return 1
  fi
  if [[ ${QWEN_VL_DRY_RUN:-0} != 1 ]]; then
    if [[ -e $dst ]]; then
      if ! grep -qxF -- "created $dst" "$QWEN_VL_STATE/ledger/${QWEN_VL_STEP:-step}" 2>/dev/null &&
        [[ ! -e $QWEN_VL_STATE/backup$dst ]]; then
        install -D -m 0600 "$dst" "$QWEN_VL_STATE/backup$dst"
        ledger "replaced $dst"
      fi
    else
      ledger "created $dst"
    fi
  fi
  run install -D -m "$mode" "$src" "$dst"
  changed "$dst"
  return 0
}
# service_changed UNIT FILE…: whether what UNIT runs with (the files, the virtual environment's
# packages) differs from when it was last (re)started by a step; remember the new state with
# service_started UNIT afterwards. A new vLLM or Ray version, new secrets or new arguments restart it.
service_fingerprint() {
  local unit=$1
  shift
  {
    local f
    for f in "$@"; do
      printf '%s\n' "$f"
      cat "$f" 2>/dev/null || true
    done
    local d
    for d in "$QWEN_VL_HOME"/venv/lib/python3*/site-packages/*.dist-info; do
      if [[ -e $d ]]; then printf '%s\n' "${d##*/}"; fi
    done
  } | sha256sum | cut -d' ' -f1
}
service_changed() {
  local unit=$1
  shift
  [[ "$(service_fingerprint "$unit" "$@")" != "$(cat "$QWEN_VL_STATE/$unit.started" 2>/dev/null)" ]]
}
service_started() {
  local unit=$1
  shift
  [[ ${QWEN_VL_DRY_RUN:-0} == 1 ]] && return 0
  mkdir -p "$QWEN_VL_STATE"
  service_fingerprint "$unit" "$@" >"$QWEN_VL_STATE/$unit.started"
}
# Writes /etc/qwen-vl/cluster.env: the address and interface this node uses for cluster traffic
# (vLLM/Ray/NCCL/Gloo pick the wrong one on multi-homed hosts otherwise, vllm #6803, #7815).
write_cluster_env() {
  local iface=${NETWORK_INTERFACE:-}
  if [[ -z $iface ]]; then
    iface=$(ip -o -4 addr show | awk -v ip="$NODE_IP" '{ split($4, a, "/"); if (a[1] == ip) print $2 }' | head -n1)
  fi
  [[ -n $iface ]] || die "no interface holds this node's cluster address $NODE_IP: set target.hosts[].networkInterface or fix the address"
  local tmp
  tmp=$(mktemp)
  {
    echo "VLLM_HOST_IP=$NODE_IP"
    echo "NCCL_SOCKET_IFNAME=$iface"
    echo "GLOO_SOCKET_IFNAME=$iface"
    echo "RAY_ADDRESS=${RAY_ADDRESS:-}"
    echo "QWEN_VL_NODE=$NODE_NAME"
    if [[ $EFA == 1 ]]; then
      # NCCL loads the OFI plugin (libnccl-net.so) from the library path: the EFA installer's and
      # the Deep Learning AMI's folders (Ubuntu puts it under lib/x86_64-linux-gnu; AWS
      # efa-start-nccl.html). FI_EFA_USE_DEVICE_RDMA is not set: aws-ofi-nccl ≥ 1.7 with
      # libfabric ≥ 1.18 decide it themselves, and g5/g6 have no RDMA (aws-ofi-nccl efa-env-var.md).
      echo "LD_LIBRARY_PATH=/opt/amazon/ofi-nccl/lib/x86_64-linux-gnu:/opt/amazon/ofi-nccl/lib:/opt/amazon/efa/lib"
      echo "FI_PROVIDER=efa"
      echo "FI_EFA_FORK_SAFE=1"
    fi
  } >"$tmp"
  local status=1
  install_file "$tmp" "$QWEN_VL_ETC/cluster.env" 0644 && status=0
  rm -f "$tmp"
  return $status
}
