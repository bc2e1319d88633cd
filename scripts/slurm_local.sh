#!/usr/bin/env bash
# A real one-node SLURM on this machine (Debian, root, no systemd), to test the HPC path for real.
#
#   bash scripts/slurm_local.sh install   # Debian's slurmctld, slurmd, slurm-client and munge
#   bash scripts/slurm_local.sh start     # munged, slurmctld and slurmd; returns when the node takes jobs
#   bash scripts/slurm_local.sh status    # daemons and sinfo; exit 1 unless all is up
#   bash scripts/slurm_local.sh stop      # cancel the jobs, stop the daemons, wait until they are gone
#
# Every subcommand is idempotent. One partition, `debug`, with one node `localhost` that declares
# CPUS cores (default 4, more than the machine has: several one-core worker jobs fit) and about 90%
# of the machine's memory. Logs: /var/log/slurm/.
set -euo pipefail

CPUS="${CPUS:-4}"
CONF=/etc/slurm/slurm.conf
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
PACKAGES=(slurmctld slurmd slurm-client munge)
WAIT_S=30

say() { echo "slurm_local: $*" >&2; }

# alive PIDFILE NAME: the pidfile's process exists, is not a zombie and is NAME
# (an exited daemon lingers as a zombie, so kill -0 is not enough).
alive() {
    local pid state
    pid=$(cat "$1" 2>/dev/null) || return 1
    state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $state && $state != Z && $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

# node_up: the node answers and takes jobs (idle, or running some: mix, alloc)
node_up() { [[ $(sinfo -h -N -o %t 2>/dev/null) =~ ^(idle|mix|alloc)$ ]]; }

install() {
    if command -v sbatch >/dev/null && [[ -x /usr/sbin/slurmctld && -x /usr/sbin/slurmd && -x /usr/sbin/munged ]]; then
        say "installed"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
    say "installed ${PACKAGES[*]}"
}

write_conf() {
    local mem_kb
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    cat > "$CONF" <<EOF
# Written by scripts/slurm_local.sh: a one-node test cluster.
ClusterName=localcluster
SlurmctldHost=localhost
AuthType=auth/munge
CredType=cred/munge
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$((mem_kb * 9 / 10 / 1024)) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    command -v sbatch >/dev/null || { say "not installed: run '$0 install' first"; exit 1; }
    if alive "$MUNGE_PID" munged && alive "$CTLD_PID" slurmctld && alive "$SLURMD_PID" slurmd && node_up; then
        say "running"
        return
    fi
    mkdir -p /run/munge /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    chown munge:munge /run/munge
    chown slurm:slurm /var/spool/slurmctld /var/log/slurm
    if ! alive "$MUNGE_PID" munged; then
        runuser -u munge -- /usr/sbin/munged --force
    fi
    munge -n | unmunge >/dev/null || { say "munge does not work"; exit 1; }
    if ! alive "$CTLD_PID" slurmctld || ! alive "$SLURMD_PID" slurmd; then
        stop_daemon "$SLURMD_PID" slurmd
        stop_daemon "$CTLD_PID" slurmctld
        write_conf
        /usr/sbin/slurmctld
        /usr/sbin/slurmd -N localhost
    fi
    local waited=0
    until node_up; do
        if ((waited >= WAIT_S * 10)); then
            say "the node is not up after ${WAIT_S} s:"
            sinfo -N -l >&2 || true
            tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
            exit 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    say "running: partition debug, node localhost with $CPUS CPUs"
}

# stop_daemon PIDFILE NAME: TERM, then wait until the process is gone or a zombie (KILL after WAIT_S).
stop_daemon() {
    alive "$1" "$2" || { rm -f "$1"; return 0; }
    local pid waited=0
    pid=$(cat "$1")
    kill "$pid"
    while alive "$1" "$2"; do
        if ((waited == WAIT_S * 10)); then
            say "$2 ($pid) ignored TERM for ${WAIT_S} s: KILL"
            kill -KILL "$pid"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$1"
}

stop() {
    if alive "$CTLD_PID" slurmctld; then
        squeue -h -o %i | xargs -r scancel || true
        local waited=0
        while [[ -n $(squeue -h -o %i 2>/dev/null) ]] && ((waited < WAIT_S * 10)); do
            sleep 0.1
            waited=$((waited + 1))
        done
    fi
    stop_daemon "$SLURMD_PID" slurmd
    stop_daemon "$CTLD_PID" slurmctld
    stop_daemon "$MUNGE_PID" munged
    say "stopped"
}

status() {
    local up=0 pidfile name
    for pidfile in "$MUNGE_PID:munged" "$CTLD_PID:slurmctld" "$SLURMD_PID:slurmd"; do
        name=${pidfile#*:}
        if alive "${pidfile%%:*}" "$name"; then
            echo "$name running (pid $(cat "${pidfile%%:*}"))"
        else
            echo "$name stopped"
            up=1
        fi
    done
    if ((up == 0)); then
        sinfo
        squeue
    fi
    return "$up"
}

case "${1:-}" in
    install | start | stop | status) "$1" ;;
    *)
        echo "usage: $0 install|start|stop|status" >&2
        exit 2
        ;;
esac
