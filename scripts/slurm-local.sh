#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for the scale-out tests and for trying `cliffscope slurm` by hand.
#
#   scripts/slurm-local.sh start DIR   start munged, slurmctld and slurmd with their state, spool and logs under DIR;
#                                      prints `export SLURM_CONF=DIR/slurm.conf` (every Slurm command needs it)
#   scripts/slurm-local.sh stop DIR    stop the daemons started for DIR (and munged, if this script started it)
#   scripts/slurm-local.sh status DIR  exit 0 when the cluster answers `sinfo`
#
# Needs root and Debian's `slurm-wlm` and `munge` packages (`apt-get install -y slurm-wlm munge`). Nothing under /etc
# is changed: the config lives in DIR and clients find it through SLURM_CONF. Exit codes: 0 ok, 2 usage, 3 cannot
# start here (not root, packages missing, daemons do not come up) with the reason on stderr.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
cannot() { echo "slurm-local: $*" >&2; exit 3; }
[ $# -eq 2 ] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
conf="$dir/slurm.conf"

start() {
  [ "$(id -u)" -eq 0 ] || cannot "must run as root (slurmd starts jobs as their users)"
  for bin in munged slurmctld slurmd sbatch sinfo; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || cannot "$bin not found: apt-get install -y slurm-wlm munge"
  done
  export PATH="$PATH:/usr/sbin"
  local host cpus mem ctl_port d_port
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  # Ports of our own, so a second cluster (or a system one) elsewhere on the machine does not collide.
  ctl_port=${SLURM_LOCAL_CTLD_PORT:-16817}
  d_port=${SLURM_LOCAL_SLURMD_PORT:-16818}
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"

  # munge: the key the package created (made here if the package did not), its socket dir owned by munge.
  if ! pgrep -x munged >/dev/null 2>&1; then
    if [ ! -s /etc/munge/munge.key ]; then
      dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
      chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    su -s /bin/sh munge -c '/usr/sbin/munged' || cannot "munged did not start"
    touch "$dir/started-munged"
  fi

  cat >"$conf" <<CONF
ClusterName=cliffscope
SlurmctldHost=$host
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$conf"
  /usr/sbin/slurmctld -f "$conf" || cannot "slurmctld did not start; see $dir/log/slurmctld.log"
  /usr/sbin/slurmd -f "$conf" || cannot "slurmd did not start; see $dir/log/slurmd.log"
  for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "export SLURM_CONF=$conf"
      return 0
    fi
    sleep 0.5
  done
  stop
  cannot "the node did not become idle within 30 s; see $dir/log"
}

kill_pidfile() {
  local f=$1
  [ -s "$f" ] || return 0
  local pid
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

stop() {
  # Cancel this cluster's jobs while it still answers, then stop the daemons.
  if [ -s "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    SLURM_CONF="$conf" scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
    sleep 1
  fi
  kill_pidfile "$dir/slurmd.pid"
  kill_pidfile "$dir/slurmctld.pid"
  # Job steps outlive slurmd under proctrack/linuxproc: end every batch script run from this cluster's spool, with
  # its slurmstepd parent and its process group.
  local pid parent
  for pid in $(pgrep -f "$dir/spool" 2>/dev/null || true); do
    parent=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ' || true)
    kill -9 -- "-$pid" "$pid" 2>/dev/null || true
    if [ -n "$parent" ] && [ "$(ps -o comm= -p "$parent" 2>/dev/null)" = slurmstepd ]; then kill -9 "$parent" 2>/dev/null || true; fi
  done
  if [ -e "$dir/started-munged" ]; then
    pkill -x munged 2>/dev/null || true
    rm -f "$dir/started-munged"
  fi
}

case "$action" in
  start) start ;;
  stop) stop ;;
  status) SLURM_CONF="$conf" sinfo -h >/dev/null 2>&1 ;;
  *) usage ;;
esac
