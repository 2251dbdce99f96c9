#!/usr/bin/env bash
# Preflight: is this the machine the plan was made for? System, GPUs (model, count, memory) and free
# disk for what the steps write. Refuses with the difference and what to do. The one change it
# makes: a root partition and filesystem grown to a disk that was made larger (grow_root).
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

# A larger root volume (target.rootVolumeGiB raised on a running AWS node: EC2 modifies the EBS
# volume in place) grows the disk, not the partition on it nor the filesystem: cloud-init's growpart
# and resize_rootfs run at boot. Grown here, before the disk is measured, when at least 1 GiB of
# the disk is not in a partition (EBS grows by whole GiB; GPT's own sectors and alignment are far
# less). growpart (cloud-guest-utils) decides whether that space lies after the root partition:
# its --dry-run only reports, "CHANGE: …" or "NOCHANGE: …" (the exit status of NOCHANGE differs
# between releases, the word does not). Then resize2fs (ext3/ext4, online) or xfs_growfs (mounted
# XFS, by mount point). Nothing to do, and said so: root not on a partition of a block device here
# (a container: the lab's nodes; a bind mount), on LVM, or a filesystem neither tool grows. A run cut
# between the partition and the filesystem leaves a marker: the next run grows the filesystem.
# Sources: findmnt(8), lsblk(8) (util-linux; -r: raw, unsafe characters \x-escaped; -b: bytes),
# growpart(1) (cloud-utils), resize2fs(8), xfs_growfs(8). Not undone: a filesystem is not shrunk.
grow_root() {
  local src fstype fsroot name type pk part disk_bytes parts_bytes free_kib out pending=$QWEN_VL_STATE/root-grow-pending
  # AWS nodes only: the stack's figure (node.env), so that a larger one runs this step again. An
  # existing host's disk is its owner's: space left after its root partition stays as it is.
  if [[ -z ${ROOT_VOLUME_GIB:-} ]]; then
    log "root volume: an existing machine's partitions are left as they are"
    return 0
  fi
  log "root volume: $ROOT_VOLUME_GIB GiB planned (target.rootVolumeGiB or the plan's own)"
  if ! read -r src fstype fsroot < <(findmnt -rn -v -o SOURCE,FSTYPE,FSROOT / 2>/dev/null); then
    log "root volume: findmnt cannot read / (no util-linux?): not grown"
    return 0
  fi
  if [[ $fsroot != / ]]; then
    log "root volume: / is $fsroot of $src (a bind mount: a container?): nothing to grow here"
    return 0
  fi
  if [[ $src != /dev/* ]]; then
    log "root volume: / is $src ($fstype), not a block device (a container?): nothing to grow here"
    return 0
  fi
  if ! read -r name type pk < <(lsblk -dnr -o NAME,TYPE,PKNAME "$src" 2>/dev/null); then
    log "root volume: $src is not a block device here (a container?): nothing to grow"
    return 0
  fi
  case "$type" in
    part) ;;
    lvm)
      log "root volume: $src is an LVM volume: not grown here (grow it with pvresize and lvextend --resizefs)"
      return 0
      ;;
    *)
      log "root volume: $src is a $type device, not a partition: nothing to grow"
      return 0
      ;;
  esac
  case "$fstype" in
    ext3 | ext4 | xfs) ;;
    *)
      log "root volume: $fstype on $src: growing it is not done here (only ext3, ext4 and XFS, which grow mounted)"
      return 0
      ;;
  esac
  # The partition's number: its name less the disk's (nvme0n1p1 → 1, xvda1 → 1).
  part=${name#"$pk"}
  part=${part#p}
  if [[ -z $pk || ! $part =~ ^[0-9]+$ ]]; then
    log "root volume: cannot tell $src's disk and partition number ($name on ${pk:-?}): not grown"
    return 0
  fi
  if [[ ! -e $pending ]]; then
    # awk's numbers are doubles: %.0f prints bytes whole (exact below 2^53, 8 PiB).
    disk_bytes=$(lsblk -bnr -o TYPE,SIZE "/dev/$pk" | awk '$1 == "disk" && !d {d = $2} END {printf "%.0f", d}')
    parts_bytes=$(lsblk -bnr -o TYPE,SIZE "/dev/$pk" | awk '$1 == "part" {n += $2} END {printf "%.0f", n}')
    if [[ ! $disk_bytes =~ ^[1-9][0-9]*$ || ! $parts_bytes =~ ^[0-9]+$ ]]; then
      log "root volume: lsblk gives no size for /dev/$pk: not grown"
      return 0
    fi
    free_kib=$(((disk_bytes - parts_bytes) / 1024))
    if [[ $free_kib -lt 1048576 ]]; then
      log "root volume: $src fills /dev/$pk ($((disk_bytes / 1073741824)) GiB): nothing to grow"
      return 0
    fi
    command -v growpart >/dev/null 2>&1 || ensure_package cloud-guest-utils
    out=$(growpart --dry-run "/dev/$pk" "$part" 2>/dev/null) || true
    case "$out" in
      NOCHANGE:*)
        log "root volume: /dev/$pk has $((free_kib / 1048576)) GiB outside its partitions, not after $src (growpart: ${out#NOCHANGE: }): nothing to grow"
        return 0
        ;;
      CHANGE:*) ;;
      *)
        if [[ ${QWEN_VL_DRY_RUN:-0} != 1 ]]; then
          die "growpart --dry-run /dev/$pk $part answered \"${out:-nothing}\": grow partition $part of /dev/$pk by hand (growpart), then run the step again"
        fi
        ;;
    esac
    run touch "$pending"
    if [[ ${QWEN_VL_DRY_RUN:-0} == 1 ]]; then
      run growpart "/dev/$pk" "$part"
    else
      out=$(growpart "/dev/$pk" "$part" 2>&1) || [[ $out == NOCHANGE:* ]] ||
        die "growpart /dev/$pk $part failed: $out: grow the partition by hand, then run the step again"
    fi
    changed "root partition $src grown to the end of /dev/$pk (+$((free_kib / 1048576)) GiB)"
  else
    log "root volume: the partition was grown by an earlier run; its filesystem next"
  fi
  local grow=(resize2fs "$src")
  [[ $fstype == xfs ]] && grow=(xfs_growfs -d /)
  if [[ ${QWEN_VL_DRY_RUN:-0} == 1 ]]; then
    run "${grow[@]}"
  else
    out=$("${grow[@]}" 2>&1) ||
      die "${grow[*]} failed (${out##*$'\n'}): grow the filesystem by hand (${grow[*]}), then run the step again"
  fi
  run rm -f "$pending"
  changed "root filesystem ($fstype) on $src grown to its partition: $(df -Ph / | awk 'NR==2 {print $2}') now"
}
grow_root

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
