#!/usr/bin/env bash
# Undo one step (`undo.sh <step>`), run when the deployment is destroyed: the step's ledger read
# backwards (lib.sh: ledger) — units it started are stopped, units it enabled disabled, files it
# created removed, files it replaced restored, packages it installed purged, the account it made
# removed — then what the step keeps in its own folders. `undo.sh --bundle` last: the deployment's
# folders (/opt/qwen-vl, /etc/qwen-vl, /var/lib/qwen-vl; the weights stay when KEEP_WEIGHTS=1).
# What it leaves on purpose says so: an NVIDIA driver, NVIDIA's repository, a CUDA toolkit.
set -euo pipefail
step=${1:?usage: undo.sh <step> | --bundle}
QWEN_VL_STEP="undo $step"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
load_node_env
export DEBIAN_FRONTEND=noninteractive

undo_ledger() {
  local file=$QWEN_VL_STATE/ledger/$1 kind what purge=() reload=0
  [[ -f $file ]] || {
    log "nothing recorded for $1"
    return 0
  }
  while read -r kind what; do
    case "$kind" in
      started)
        systemctl stop "$what" 2>/dev/null || true
        log "stopped $what"
        ;;
      enabled)
        systemctl disable "$what" >/dev/null 2>&1 || true
        log "disabled $what"
        ;;
      created)
        rm -f "$what"
        [[ $what == /etc/systemd/system/* ]] && reload=1
        log "removed $what"
        ;;
      replaced)
        if [[ -f $QWEN_VL_STATE/backup$what ]]; then
          install -m "$(stat -c %a "$what" 2>/dev/null || echo 644)" "$QWEN_VL_STATE/backup$what" "$what"
          log "restored $what"
        fi
        ;;
      package) purge+=("$what") ;;
      user)
        if id -u "$what" >/dev/null 2>&1; then
          pkill -KILL -u "$what" 2>/dev/null || true
          userdel "$what" 2>/dev/null || true
          log "removed account $what"
        fi
        ;;
      *) log "unknown ledger line: $kind $what" ;;
    esac
  done < <(tac "$file")
  [[ $reload == 1 ]] && systemctl daemon-reload
  if [[ ${#purge[@]} -gt 0 ]]; then
    dpkg_recover
    apt-get purge -y -qq -o DPkg::Lock::Timeout=300 "${purge[@]}" >/dev/null ||
      die "cannot purge ${purge[*]}: remove them by hand (apt-get purge)"
    log "purged ${#purge[@]} package(s) installed for this deployment: ${purge[*]}"
  fi
  rm -f "$file"
}

case "$step" in
  --bundle)
    # Every step still recorded, last step first: when a node is replaced (a host moved, an
    # instance swapped) the engine undoes the bundle before the steps that depend on it only
    # through ordering (Pulumi's delete-before-replace follows property dependencies), and their
    # own undo then finds this script gone. Nothing is left behind either way.
    for s in $(tr ' ' '\n' <<<"$STEP_ORDER" | tac); do
      [[ -f $QWEN_VL_STATE/ledger/$s ]] && undo_ledger "$s"
    done
    if [[ $KEEP_WEIGHTS == 1 && -d $MODEL_PARENT ]]; then
      find "$QWEN_VL_STATE" -mindepth 1 -maxdepth 1 ! -path "$MODEL_PARENT" -exec rm -rf {} +
      log "weights kept in $MODEL_PARENT (provisioning.keepWeightsOnDestroy)"
    else
      rm -rf "$QWEN_VL_STATE"
    fi
    rm -rf "$QWEN_VL_ETC"
    # Last: this script lives there.
    rm -rf "$QWEN_VL_HOME"
    log "removed $QWEN_VL_HOME, $QWEN_VL_ETC and $QWEN_VL_STATE"
    ;;
  driver)
    rm -f "$QWEN_VL_STATE/reboot-required"
    log "an NVIDIA driver is left installed (other software may use it)"
    ;;
  cuda) log "a CUDA toolkit, if one was installed, is left installed" ;;
  weights)
    undo_ledger "$step"
    if [[ $KEEP_WEIGHTS == 1 ]]; then
      log "weights kept in $MODEL_DIR (provisioning.keepWeightsOnDestroy)"
    else
      rm -rf "$MODEL_DIR"
      log "removed the weights in $MODEL_DIR"
    fi
    ;;
  python-env)
    undo_ledger "$step"
    rm -rf "$QWEN_VL_HOME/venv" "$QWEN_VL_HOME/tools" "$SERVICE_HOME" "$RAY_TEMP_DIR"
    log "removed the virtual environments and the service account's folders"
    ;;
  ray)
    undo_ledger "$step"
    rm -f "$QWEN_VL_STATE/qwen-vl-ray.started"
    ;;
  vllm)
    undo_ledger "$step"
    rm -f "$QWEN_VL_STATE/qwen-vl-vllm.started"
    ;;
  *) undo_ledger "$step" ;;
esac
log "RESULT changed"
