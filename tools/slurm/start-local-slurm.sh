#!/usr/bin/env bash
# Starts a real one-node Slurm cluster on this machine for dptrain's tests:
# munged, slurmctld and slurmd as daemons, state under $LOCAL_SLURM_DIR, the
# config at /etc/slurm/slurm.conf. Installs Slurm and munge from Debian if
# they are missing. Run as root; stop with stop-local-slurm.sh.
#
#   LOCAL_SLURM_DIR=/tmp/local-slurm   state, spool, logs (wiped on start)
#   LOCAL_SLURM_CPUS=<cores>           CPUs the node declares (more than real => oversubscribed)
#   LOCAL_SLURM_TIMEOUT=60             seconds to wait for the node to be idle
#   LOCAL_SLURM_CGROUP=0               1: track and confine each job's processes in cgroups
#                                      (proctrack/cgroup, task/cgroup + task/affinity), as most
#                                      production clusters do; 0: /proc tracking, no binding
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${LOCAL_SLURM_DIR:-/tmp/local-slurm}
timeout=${LOCAL_SLURM_TIMEOUT:-60}
[[ "$dir" == /tmp/?* ]] || { echo "start-local-slurm: LOCAL_SLURM_DIR must be a folder under /tmp" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "start-local-slurm: run as root" >&2; exit 2; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  echo "start-local-slurm: installing slurm-wlm and munge"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    slurm-wlm munge >/dev/null
fi

bash "$here/stop-local-slurm.sh" >/dev/null 2>&1 || true
rm -rf "$dir"
mkdir -p "$dir"/{state,spool,log,run}

host=$(hostname -s)
getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
cores=$(nproc)
cpus=${LOCAL_SLURM_CPUS:-$cores}
memory=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10 ))
overrides=""
[[ "$cpus" -gt "$cores" ]] && overrides="SlurmdParameters=config_overrides"
proctrack=proctrack/linuxproc
task=task/none
rm -f /etc/slurm/cgroup.conf
if [[ "${LOCAL_SLURM_CGROUP:-0}" == 1 ]]; then
  proctrack=proctrack/cgroup
  task=task/cgroup,task/affinity
fi

mkdir -p /etc/slurm
cat > /etc/slurm/slurm.conf <<CONF
# Written by dptrain's tools/slurm/start-local-slurm.sh: a one-node test cluster run as root.
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job may start again this many seconds after the requeue (Slurm's default is 120).
AuthInfo=cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=$proctrack
TaskPlugin=$task
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Debian's Open MPI has PMIx but not PMI-2.
MpiDefault=pmix
ReturnToService=2
MailProg=/bin/true
# Refuse at submission what can never run here, instead of leaving it pending.
EnforcePartLimits=ALL
MinJobAge=300
# Slurm's default: the scancel test gives the ranks a grace (STOP_GRACE_SECONDS) under it.
KillWait=30
InactiveLimit=0
$overrides
NodeName=$host CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

if [[ "$proctrack" == proctrack/cgroup ]]; then
  # Each job step in its own cgroup, confined to the cores it was given.
  cat > /etc/slurm/cgroup.conf <<CONF
# Written by dptrain's tools/slurm/start-local-slurm.sh.
CgroupPlugin=autodetect
ConstrainCores=yes
ConstrainRAMSpace=no
CONF
fi

# munged runs as user munge; /run is fresh on every boot.
install -d -o munge -g munge -m 0755 /run/munge
[[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge
chmod 0400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- /usr/sbin/munged
  echo started > "$dir/run/munged.ours"
fi
slurmctld -c -f /etc/slurm/slurm.conf
slurmd -f /etc/slurm/slurm.conf

deadline=$((SECONDS + timeout))
until [[ "$(sinfo -h -n "$host" -o %T 2>/dev/null)" == idle ]]; do
  if ((SECONDS > deadline)); then
    echo "start-local-slurm: node $host not idle after ${timeout}s; see $dir/log" >&2
    exit 1
  fi
  sleep 0.2
done
echo "start-local-slurm: node $host idle with $cpus CPUs, $proctrack (state in $dir)"
