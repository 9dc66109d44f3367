# shellcheck shell=bash
# Helpers shared by check-host, irq-affinity and rps-xps: CPU lists in the
# kernel's format ("0-3,8"), hex CPU masks in the kernel's format
# ("ff,00000001": 32-bit groups, most significant first), and the NIC's queue
# interrupts. Sourced, never run. Reads only procfs and sysfs.

SYS=${PERCORE_SYSFS:-/sys}
PROC=${PERCORE_PROCFS:-/proc}

# "0-3,8" -> "0 1 2 3 8" (one line). Prints nothing for an empty list;
# returns 1 on a malformed list.
cpus_expand() {
  local list=$1 part lo hi out=()
  [ -z "$list" ] && return 0
  local IFS=,
  for part in $list; do
    if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
      lo=${BASH_REMATCH[1]}
      hi=${BASH_REMATCH[2]}
      [ "$lo" -le "$hi" ] || return 1
      while [ "$lo" -le "$hi" ]; do out+=("$lo"); lo=$((lo + 1)); done
    elif [[ $part =~ ^[0-9]+$ ]]; then
      out+=("$part")
    else
      return 1
    fi
  done
  IFS=' '
  echo "${out[*]}"
}

# "0 1 2 3 8" (sorted or not, duplicates allowed) -> "0-3,8".
cpus_compress() {
  local sorted cpu start="" prev="" text=""
  sorted=$(printf '%s\n' "$@" | sort -n -u)
  for cpu in $sorted; do
    if [ -z "$start" ]; then
      start=$cpu
    elif [ "$cpu" -ne $((prev + 1)) ]; then
      text+="${text:+,}$(range_text "$start" "$prev")"
      start=$cpu
    fi
    prev=$cpu
  done
  [ -n "$start" ] && text+="${text:+,}$(range_text "$start" "$prev")"
  echo "$text"
}

range_text() {
  if [ "$1" = "$2" ]; then echo "$1"; else echo "$1-$2"; fi
}

# "0 1 8" -> "00000103" (any number of CPUs; 32-bit groups joined by commas).
cpus_to_mask() {
  local cpu max=0 groups=() g text=""
  for cpu in "$@"; do [ "$cpu" -gt "$max" ] && max=$cpu; done
  for ((g = 0; g <= max / 32; g++)); do groups[g]=0; done
  for cpu in "$@"; do
    g=$((cpu / 32))
    groups[g]=$((groups[g] | (1 << (cpu % 32))))
  done
  for ((g = max / 32; g >= 0; g--)); do
    text+="${text:+,}$(printf '%08x' "${groups[g]}")"
  done
  echo "$text"
}

# "00000103" or "ff,00000001" -> "0 1 8".
mask_to_cpus() {
  local mask=${1//,/} out=() i digit bit n
  n=${#mask}
  for ((i = 0; i < n; i++)); do
    digit=$((16#${mask:n-1-i:1}))
    for bit in 0 1 2 3; do
      if (((digit >> bit) & 1)); then out+=($((i * 4 + bit))); fi
    done
  done
  echo "${out[*]}"
}

# The CPUs online now ("0 1 2 3").
online_cpus() {
  if [ -r "$SYS/devices/system/cpu/online" ]; then
    cpus_expand "$(cat "$SYS/devices/system/cpu/online")"
  else
    seq 0 $(($(nproc) - 1)) | tr '\n' ' ' | sed 's/ $//'
  fi
}

# Is $1 among the words $2...?
in_list() {
  local want=$1 item
  shift
  for item in "$@"; do [ "$item" = "$want" ] && return 0; done
  return 1
}

# The physical NICs (those with a device link), one per line.
physical_nics() {
  local dev
  for dev in "$SYS"/class/net/*; do
    [ -e "$dev/device" ] || continue
    basename "$dev"
  done
}

# The queue interrupts of NIC $1, one "IRQ NAME" per line: the MSI/MSI-X
# vectors of its PCI function (for virtio, of the virtio device's parent),
# minus the control ones (names with config/async/ctrl, or the bare interface
# name), falling back to the
# /proc/interrupts lines that name the interface.
nic_queue_irqs() {
  local nic=$1 devdir irq name found=0
  devdir=$(readlink -f "$SYS/class/net/$nic/device" 2>/dev/null || true)
  local dirs=()
  [ -n "$devdir" ] && dirs=("$devdir/msi_irqs" "$devdir/../msi_irqs")
  for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    for irq in $(find "$d" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n); do
      name=$(irq_name "$irq")
      case "$name" in *config* | *async* | *ctrl*) continue ;; esac
      # A vector named just like the interface is its link/misc interrupt.
      [ "$name" = "$nic" ] && continue
      # For virtio, keep only this device's vectors.
      if [ "$d" = "$devdir/../msi_irqs" ] && [[ $name != "$(basename "$devdir")"-* ]]; then
        continue
      fi
      echo "$irq $name"
      found=1
    done
    [ "$found" = 1 ] && return 0
  done
  [ -r "$PROC/interrupts" ] || return 0
  awk -v nic="$nic" '$NF ~ nic { sub(":", "", $1); print $1, $NF }' "$PROC/interrupts"
}

# The action name of IRQ $1 in /proc/interrupts (last field), or "?".
irq_name() {
  local name
  name=$(awk -v irq="$1:" '$1 == irq { print $NF; exit }' "$PROC/interrupts" 2>/dev/null || true)
  echo "${name:-?}"
}

# The CPUs this shell (and what it starts) may run on: Cpus_allowed_list of
# /proc/self/status (taskset, CPUAffinity=, cpusets), else the online CPUs.
allowed_cpus() {
  local list
  list=$(awk '$1 == "Cpus_allowed_list:" { print $2 }' "$PROC/self/status" 2>/dev/null || true)
  if [ -n "$list" ]; then cpus_expand "$list"; else online_cpus; fi
}

# The shard CPUs from --shards N (the first N allowed CPUs: percore --pin puts
# shard i on the i-th CPU of its affinity mask) or
# --cpus LIST, checked against the online CPUs; prints the list or an error.
resolve_shard_cpus() {
  local shards=$1 cpus=$2 online cpu out=()
  online=$(online_cpus)
  if [ -n "$cpus" ]; then
    local expanded
    if ! expanded=$(cpus_expand "$cpus") || [ -z "$expanded" ]; then
      echo "bad CPU list: $cpus" >&2
      return 1
    fi
    read -ra out <<<"$expanded"
  elif [ -n "$shards" ]; then
    if ! [[ $shards =~ ^[1-9][0-9]*$ ]]; then
      echo "bad shard count: $shards" >&2
      return 1
    fi
    read -ra out <<<"$(allowed_cpus)"
    if [ "$shards" -gt ${#out[@]} ]; then
      echo "$shards shards but only ${#out[@]} CPUs allowed ($(cpus_compress "${out[@]}"))" >&2
      return 1
    fi
    out=("${out[@]:0:shards}")
  else
    # shellcheck disable=SC2206
    out=($online)
  fi
  for cpu in "${out[@]}"; do
    # shellcheck disable=SC2086
    if ! in_list "$cpu" $online; then
      echo "CPU $cpu is not online (online: $(cpus_compress $online))" >&2
      return 1
    fi
  done
  echo "${out[*]}"
}
