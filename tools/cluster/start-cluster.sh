#!/usr/bin/env bash
# Starts an emulated cluster of K nodes on this one machine, for dptrain's
# multi-node tests: K network namespaces joined by veth pairs to a bridge,
# each node with its own host name (UTS namespace), address and CPUs, one
# slurmd per node, slurmctld on the bridge's address, one shared munged.
# Traffic stays on the bridge and namespaces made here. Run as root; stop
# with stop-cluster.sh (which removes everything, also after a failure).
#
#   CLUSTER_NODES=3                  number of nodes: dpnode1..dpnodeK
#   CLUSTER_NODE_CPUS="0 1 0"        each node's CPUs (taskset lists, e.g. "0-1 1 0");
#                                    default: one CPU each, round robin
#   CLUSTER_SLURM=1                  0: only the network (mpirun with node-exec.sh)
#   CLUSTER_DIR=/tmp/dptrain-cluster state, spool, logs, slurm.conf (wiped on start)
#
# Afterwards: SLURM_CONF=$CLUSTER_DIR/etc/slurm.conf for sinfo/sbatch/scontrol,
# and $CLUSTER_DIR/hostfile for mpirun with --mca plm_rsh_agent node-exec.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"
[[ $(id -u) -eq 0 ]] || { echo "start-cluster: run as root" >&2; exit 2; }
[[ "$CLUSTER_DIR" == /tmp/?* ]] || { echo "start-cluster: CLUSTER_DIR must be a folder under /tmp" >&2; exit 2; }
with_slurm=${CLUSTER_SLURM:-1}
timeout=${CLUSTER_TIMEOUT:-60}

bash "$here/stop-cluster.sh" >/dev/null 2>&1 || true
trap 'echo "start-cluster: failed; cleaning up" >&2; bash "$here/stop-cluster.sh" >/dev/null 2>&1' ERR
mkdir -p "$CLUSTER_DIR"/{etc,state,spool,log,run,nodes}

cores=$(nproc)
read -r -a node_cpus <<< "${CLUSTER_NODE_CPUS:-}"
ip link add "$CLUSTER_BRIDGE" type bridge
ip addr add "$CLUSTER_BRIDGE_ADDR/24" dev "$CLUSTER_BRIDGE"
# Loopback's MTU, not Ethernet's: TCP between the namespaces then costs what
# TCP over loopback does (1500 made a 1 MB allreduce 3x slower here).
mtu=65000
ip link set "$CLUSTER_BRIDGE" mtu $mtu up
hosts_block="# dptrain-cluster begin"$'\n'
node_lines=""
for ((i = 1; i <= CLUSTER_NODES; i++)); do
  name=$(cluster_node_name "$i")
  ns=$(cluster_netns "$name")
  addr=$(cluster_node_addr "$i")
  veth=$(cluster_host_veth "$i")
  cpus=${node_cpus[i - 1]:-$(((i - 1) % cores))}
  count=$(taskset -c "$cpus" nproc)
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" mtu $mtu master "$CLUSTER_BRIDGE" up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 mtu $mtu up
  ip -n "$ns" link set lo up
  echo "$cpus" > "$CLUSTER_DIR/nodes/$name.cpus"
  echo "$name slots=1" >> "$CLUSTER_DIR/hostfile"
  hosts_block+="$addr $name"$'\n'
  node_lines+="NodeName=$name NodeAddr=$addr CPUs=$count Sockets=1 CoresPerSocket=$count ThreadsPerCore=1 RealMemory=2048 State=UNKNOWN"$'\n'
done
hosts_block+="# dptrain-cluster end"
printf '%s\n' "$hosts_block" >> /etc/hosts

if [[ "$with_slurm" != 1 ]]; then
  echo "start-cluster: $CLUSTER_NODES nodes on $CLUSTER_BRIDGE ($CLUSTER_SUBNET), no Slurm"
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  echo "start-cluster: installing slurm-wlm and munge"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    slurm-wlm munge >/dev/null
fi

controller=$(hostname -s)
conf="$CLUSTER_DIR/etc/slurm.conf"
cat > "$conf" <<CONF
# Written by dptrain's tools/cluster/start-cluster.sh: $CLUSTER_NODES emulated nodes, run as root.
ClusterName=dptrainemu
# slurmctld must run on a host of this name; it listens on the bridge.
SlurmctldHost=$controller($CLUSTER_BRIDGE_ADDR)
SlurmctldPort=$CLUSTER_SLURMCTLD_PORT
SlurmdPort=$CLUSTER_SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10
StateSaveLocation=$CLUSTER_DIR/state
# One file system for every node: %n keeps each slurmd's files apart.
SlurmdSpoolDir=$CLUSTER_DIR/spool/%n
SlurmctldPidFile=$CLUSTER_DIR/run/slurmctld.pid
SlurmdPidFile=$CLUSTER_DIR/run/slurmd-%n.pid
SlurmctldLogFile=$CLUSTER_DIR/log/slurmctld.log
SlurmdLogFile=$CLUSTER_DIR/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$CLUSTER_DIR/log/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
# A node cut off is declared DOWN after this many seconds (default 300): longer
# than the tests' watchdog takes to end a job and requeue it without the node.
SlurmdTimeout=60
ReturnToService=2
MailProg=/bin/true
EnforcePartLimits=ALL
MinJobAge=300
KillWait=5
InactiveLimit=0
# Nodes declare their own CPUs (fewer than the machine has).
SlurmdParameters=config_overrides
${node_lines}PartitionName=emu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

install -d -o munge -g munge -m 0755 /run/munge
[[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge
chmod 0400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- /usr/sbin/munged
  echo started > "$CLUSTER_DIR/run/munged.ours"
fi
slurmctld -c -f "$conf"
for ((i = 1; i <= CLUSTER_NODES; i++)); do
  name=$(cluster_node_name "$i")
  # Only the network namespace (ip netns exec would remount /sys and hide the
  # cgroup file system from slurmd), a UTS namespace for the host name, and
  # the node's CPUs: everything slurmd starts inherits them.
  nsenter --net="/run/netns/$(cluster_netns "$name")" unshare --uts \
    taskset -c "$(cat "$CLUSTER_DIR/nodes/$name.cpus")" \
    sh -c "hostname $name && exec slurmd -f $conf -N $name"
done

export SLURM_CONF=$conf
deadline=$((SECONDS + timeout))
until [[ "$(sinfo -h -o '%T %D' 2>/dev/null)" == "idle $CLUSTER_NODES" ]]; do
  if ((SECONDS > deadline)); then
    echo "start-cluster: nodes not idle after ${timeout}s: $(sinfo -h -N -o '%N %T' 2>&1 | tr '\n' ' '); see $CLUSTER_DIR/log" >&2
    exit 1
  fi
  sleep 0.2
done
echo "start-cluster: $CLUSTER_NODES nodes idle on $CLUSTER_BRIDGE ($CLUSTER_SUBNET); SLURM_CONF=$conf"
