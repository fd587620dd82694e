#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (slurmctld + slurmd + munged on localhost), for CI,
# for trying the Slurm deployment on a laptop or workstation, and for the `slurm` tests.
#
#   deployment/slurm/local-cluster.sh start    # install if missing, configure, start, wait for an idle node
#   deployment/slurm/local-cluster.sh status   # the daemons we started and `sinfo`
#   deployment/slurm/local-cluster.sh stop     # cancel its jobs, stop only the daemons this script started (pid files)
#
# Needs root (it installs Debian's slurm-wlm and munge with apt-get when they are missing, and
# Slurm's client commands read /etc/slurm/slurm.conf). It writes that file only if it is absent
# or was written by this script (a site's own slurm.conf is never touched), and keeps all its
# state (pid files, logs, spool) in $STARDIFFUSE_SLURM_DIR (default /var/lib/stardiffuse-slurm).
# `start` is idempotent: daemons already running from an earlier start are left as they are.
set -euo pipefail

STATE="${STARDIFFUSE_SLURM_DIR:-/var/lib/stardiffuse-slurm}"
CONF=/etc/slurm/slurm.conf
MARK="# written by stardiffuse deployment/slurm/local-cluster.sh"
MUNGE_SOCKET=/run/munge/munge.socket.2
WAIT_SECONDS="${STARDIFFUSE_SLURM_WAIT:-120}"

die() { echo "local-cluster: $*" >&2; exit 1; }

running() {  # running NAME: the daemon whose pid file we wrote is alive
  local pid
  pid=$(cat "$STATE/$1.pid" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return 0
  [[ $(id -u) -eq 0 ]] || die "slurm-wlm and munge are not installed and this is not root: run as root, or install them (apt-get install slurm-wlm munge)"
  echo "installing slurm-wlm and munge (apt-get)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
}

write_conf() {
  if [[ -f "$CONF" ]] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script: this machine has its own Slurm; use it, or move that file away"
  fi
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  # RealMemory a little under the machine's, so that slurmd's own check never drains the node
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  mkdir -p /etc/slurm "$STATE/spool" "$STATE/state"
  cat > "$CONF.tmp" <<EOF
$MARK
ClusterName=stardiffuse
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
# no cgroups in containers and CI machines
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
AccountingStorageType=accounting_storage/none
# every finished job's final state, for tests and users without accounting
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/jobcomp.log
# a cancelled job's processes get SIGKILL 5 s after SIGTERM
KillWait=5
MinJobAge=300
SlurmdTimeout=60
InactiveLimit=0
# a job that asks for no memory gets its CPUs' share, not the whole node
DefMemPerCPU=$((mem / cpus))
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
}

start_munge() {
  if running munged; then return 0; fi
  if [[ -S "$MUNGE_SOCKET" ]] && munge -n </dev/null >/dev/null 2>&1; then
    echo "munged: already running (not started by this script; left alone)"
    return 0
  fi
  [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  # root runs munged here (containers may have no 'munge' login); --force accepts root-owned dirs
  munged --force --pid-file="$STATE/munged.pid" --log-file="$STATE/munged.log"
}

start_slurm() {
  running slurmctld || slurmctld
  running slurmd || slurmd
}

node_state() { sinfo -h -o %T 2>/dev/null | head -n 1; }

wait_idle() {
  local waited=0 state=""
  while (( waited < WAIT_SECONDS )); do
    state=$(node_state || true)
    case "$state" in
      idle|mixed|allocated) return 0 ;;
      down*|drain*|fail*) scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
    waited=$((waited + 1))
  done
  die "the node did not become idle within ${WAIT_SECONDS} s (last state: ${state:-no answer}); see $STATE/slurmctld.log and $STATE/slurmd.log"
}

cmd_start() {
  install_packages
  mkdir -p "$STATE"
  write_conf
  start_munge
  start_slurm
  wait_idle
  echo "Slurm is up: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %T' | head -n 1)"
  echo "stop it with: $0 stop"
}

cancel_jobs() {
  # Jobs of this cluster die with it; cancel them first so that their slurmstepd processes
  # (children of our slurmd, which outlive it) end too, rather than linger as orphans.
  running slurmctld || return 0
  local ids
  ids=$(squeue -h -o %i 2>/dev/null || true)
  [[ -z "$ids" ]] && return 0
  echo "cancelling the jobs of this cluster: $(echo $ids)"
  # shellcheck disable=SC2086
  scancel $ids 2>/dev/null || true
  for _ in $(seq 1 60); do [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && return 0; sleep 0.5; done
  echo "local-cluster: jobs still ending after 30 s: $(squeue -h -o '%i %T' | tr '\n' ' ')" >&2
}

cmd_stop() {
  local name pid
  running slurmd && cancel_jobs
  for name in slurmd slurmctld munged; do
    if running "$name"; then
      pid=$(cat "$STATE/$name.pid")
      kill "$pid"
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      echo "stopped $name (pid $pid)"
    fi
    rm -f "$STATE/$name.pid"
  done
}

cmd_status() {
  local name any=0
  for name in munged slurmctld slurmd; do
    if running "$name"; then
      echo "$name: running (pid $(cat "$STATE/$name.pid"))"
      any=1
    else
      echo "$name: not running"
    fi
  done
  if (( any )); then sinfo || true; fi
  running slurmctld && running slurmd
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
