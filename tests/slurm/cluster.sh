#!/usr/bin/env bash
# A real single-node SLURM on this machine (loopback only), for tests/test_slurm.py and CI.
#
#   tests/slurm/cluster.sh install   apt-get slurmctld slurmd slurm-client munge (skipped when present; needs root)
#   tests/slurm/cluster.sh start     write the config, start munged + slurmctld + slurmd, wait until the node is idle
#   tests/slurm/cluster.sh stop      stop exactly the daemons `start` started (pids recorded in $LOWRANK_SLURM_DIR)
#   tests/slurm/cluster.sh status    "running" (exit 0) or "stopped" (exit 3), and sinfo when running
#   tests/slurm/cluster.sh stop-slurmctld    a scheduler outage: only slurmctld stops; slurmd and running jobs go on
#   tests/slurm/cluster.sh start-slurmctld   the outage ends: slurmctld starts again from its saved state (its jobs)
#   tests/slurm/cluster.sh env       the line to eval so that sinfo/sbatch/snakemake (and jobs) find this cluster
#
# Everything lives in one private directory (default /tmp/lowrank-slurm): slurm.conf, gres.conf, the munge key and
# socket, state, spool, daemon logs and pids. Nothing is written under /etc, so the machine's own Slurm or munge
# (if any) is untouched. Clients find the cluster through SLURM_CONF=$LOWRANK_SLURM_DIR/slurm.conf, and jobs through
# the `srun` shim in $LOWRANK_SLURM_DIR/bin (see write_shims):
#   eval "$(tests/slurm/cluster.sh env)"; sinfo
#
# Settings (environment):
#   LOWRANK_SLURM_DIR    private directory (default /tmp/lowrank-slurm)
#   LOWRANK_SLURM_GPUS   fake GPUs on the node (default 0: a GPU request is rejected at submission); N > 0 adds
#                        Gres=gpu:N backed by /dev/null, enough for scheduling tests (no real device)
#   LOWRANK_SLURM_PORT   slurmctld port (default 6817; slurmd uses PORT+1)
#
# `start` is idempotent: when the recorded daemons are alive and the config is unchanged it only waits for idle;
# when the config changed (e.g. another LOWRANK_SLURM_GPUS) it restarts the daemons. Start to idle takes ~1-2 s.
# Pitfall: once slurm-client is installed, every `snakemake` run imports the SLURM executor plugin, which asks
# Slurm for its configuration (`scontrol show config`). While SLURM_CONF names this cluster and it is stopped, that
# costs ~10 s per invocation; without SLURM_CONF (and no /etc/slurm/slurm.conf) it fails at once (~0.5 s). So keep
# the cluster running while SLURM_CONF is set, and after `stop` unset SLURM_CONF (or open a new shell).
set -euo pipefail

DIR=${LOWRANK_SLURM_DIR:-/tmp/lowrank-slurm}
GPUS=${LOWRANK_SLURM_GPUS:-0}
PORT=${LOWRANK_SLURM_PORT:-6817}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF
DAEMONS=(munged slurmctld slurmd)   # start order; stopped in reverse

log() { echo "cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }

installed() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sinfo >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null
}

# (no `sinfo --version`: any Slurm client whose SLURM_CONF names a missing file retries for 60 s)
version() { dpkg-query -W -f='slurm ${Version}' slurm-client 2>/dev/null || echo "slurm (version unknown)"; }

cmd_install() {
    if installed; then
        log "slurm and munge already installed ($(version))"
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "install needs root (apt-get); install slurmctld slurmd slurm-client munge yourself"
    command -v apt-get >/dev/null || die "install needs apt-get (Debian/Ubuntu); install Slurm yourself"
    # Keep apt from starting the daemons with the distribution's settings (hosts with an init system).
    local policy=/usr/sbin/policy-rc.d added=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; added=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local rc=0
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
        >/dev/null; } || rc=$?
    if [ "$added" = 1 ]; then rm -f "$policy"; fi
    [ "$rc" = 0 ] || die "apt-get install failed (rc=$rc)"
    installed || die "installed, but the Slurm/munge binaries are not on PATH"
    log "installed $(version)"
}

# --- pids ------------------------------------------------------------------------------------------------------
# A recorded pid counts only while /proc/PID/comm still names the daemon (pids are reused; zombies were seen).
alive() {  # alive NAME -> prints the pid and succeeds when the recorded daemon runs
    local name=$1 pid comm state
    [ -f "$DIR/pids/$name" ] || return 1
    pid=$(cat "$DIR/pids/$name")
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = "$name" ] || return 1
    state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
    [ "$state" != Z ] || return 1
    echo "$pid"
}

all_alive() { local d; for d in "${DAEMONS[@]}"; do alive "$d" >/dev/null || return 1; done; }

wait_pidfile() {  # wait_pidfile NAME FILE: a daemon forks into the background and writes its pid file
    local name=$1 file=$2 i pid
    for i in $(seq 1 100); do
        if [ -s "$file" ]; then
            pid=$(tr -dc '0-9' < "$file")
            if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
                echo "$pid" > "$DIR/pids/$name"
                return 0
            fi
        fi
        sleep 0.1
    done
    die "$name did not start; see $DIR/log/$name.log"
}

# --- config ----------------------------------------------------------------------------------------------------
write_config() {  # into $DIR/new/, so start can tell whether it changed
    local host cpus mem gres="" i
    host=$(hostname -s)
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)   # nproc obeys OMP_NUM_THREADS: the cores, not that
    mem=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p "$DIR/new"
    [ "$GPUS" -gt 0 ] && gres=" Gres=gpu:$GPUS"
    cat > "$DIR/new/slurm.conf" <<EOF
# Written by tests/slurm/cluster.sh: one node on loopback, no accounting, no cgroups.
ClusterName=lowrank
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
# cred_expire: a requeued (preempted) job may start again after 5 s instead of 120 s
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=5
CredType=cred/munge
SlurmUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# finished jobs stay visible to squeue for 5 min (the executor's squeue status polling needs >= 120 s)
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# schedule every 2 s (default 60 s), so a requeued job starts again as soon as it may
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=5
# a job over its time limit gets SIGTERM, then SIGKILL 5 s later (default 30 s)
KillWait=5
InactiveLimit=0
SlurmdTimeout=300
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem$gres State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    : > "$DIR/new/gres.conf"
    for i in $(seq 1 "$GPUS"); do echo "NodeName=$host Name=gpu File=/dev/null" >> "$DIR/new/gres.conf"; done
}

# snakemake-executor-plugin-slurm-jobstep (0.6.1) removes every SLURM_* variable but the job's identity, SLURM_CONF
# included, before its `srun` inside the allocation; that srun would then look for /etc/slurm/slurm.conf. A shim
# `srun` first on PATH puts SLURM_CONF back, so nothing is written under /etc (see `env`).
write_shims() {
    local real
    real=$(PATH=$(echo "$PATH" | tr ':' '\n' | grep -vx "$DIR/bin" | paste -sd:) command -v srun)
    mkdir -p "$DIR/bin"
    printf '#!/bin/sh\n# written by tests/slurm/cluster.sh: the jobstep plugin drops SLURM_CONF; put it back\n%s\n%s\n' \
        "export SLURM_CONF=$CONF" "exec $real \"\$@\"" > "$DIR/bin/srun"
    chmod +x "$DIR/bin/srun"
}

config_changed() { ! cmp -s "$DIR/new/slurm.conf" "$CONF" || ! cmp -s "$DIR/new/gres.conf" "$DIR/gres.conf"; }

node_state() { sinfo -h -o %t 2>/dev/null | head -1; }

wait_idle() {
    local i state=""
    for i in $(seq 1 150); do
        state=$(node_state)
        case "$state" in
            idle|mix|alloc) return 0 ;;
            drain*|drng|down*) scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.2
    done
    die "the node did not become idle (state '${state:-none}'); see $DIR/log/"
}

cmd_start() {
    installed || die "slurm is not installed: run '$0 install' first"
    mkdir -p "$DIR"/{pids,log,run,state,spool,munge}
    chmod 700 "$DIR/munge"
    write_config
    write_shims
    if all_alive && ! config_changed; then
        wait_idle
        log "already running (SLURM_CONF=$CONF)"
        return 0
    fi
    cmd_stop >/dev/null 2>&1 || true
    mv "$DIR/new/slurm.conf" "$CONF"
    mv "$DIR/new/gres.conf" "$DIR/gres.conf"

    # munge: a private key and socket (AuthInfo above points Slurm at it)
    if [ ! -s "$DIR/munge/munge.key" ]; then
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 400 "$DIR/munge/munge.key"
    rm -f "$DIR/run/munged.pid" "$DIR/run/slurmctld.pid" "$DIR/run/slurmd.pid"
    munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munge.seed" \
        </dev/null >>"$DIR/log/munged.log" 2>&1
    wait_pidfile munged "$DIR/run/munged.pid"

    # slurmctld: -c starts from a clean state (no jobs left over from a previous session)
    slurmctld -c -f "$CONF" </dev/null >>"$DIR/log/slurmctld.log" 2>&1
    wait_pidfile slurmctld "$DIR/run/slurmctld.pid"
    slurmd -f "$CONF" </dev/null >>"$DIR/log/slurmd.log" 2>&1
    wait_pidfile slurmd "$DIR/run/slurmd.pid"
    wait_idle
    log "started: $(sinfo -h -o '%P %D %t %c cpus %m MB %G' | head -1) (SLURM_CONF=$CONF)"
}

cmd_stop() {
    local d pid i stopped=0
    # cancel this cluster's jobs first, so no job step (slurmstepd and its training) outlives the daemons
    if alive slurmctld >/dev/null && [ -f "$CONF" ]; then
        local ids
        ids=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
        if [ -n "$ids" ]; then
            # shellcheck disable=SC2086
            timeout 10 scancel $ids 2>/dev/null || true
            for i in $(seq 1 50); do
                [ -z "$(timeout 10 squeue -h -t running,completing -o %i 2>/dev/null)" ] && break
                sleep 0.2
            done
        fi
    fi
    for d in slurmd slurmctld munged; do
        pid=$(alive "$d") || { rm -f "$DIR/pids/$d"; continue; }
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do alive "$d" >/dev/null || break; sleep 0.1; done
        if alive "$d" >/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
        rm -f "$DIR/pids/$d"
        stopped=$((stopped + 1))
    done
    # the job steps slurmd started (slurmstepd) end with it; none may keep a job's python alive
    log "stopped $stopped daemon(s)"
}

cmd_stop_slurmctld() {
    local pid i
    pid=$(alive slurmctld) || die "slurmctld is not running"
    kill -TERM "$pid"   # it saves its state (jobs and their states) as it stops
    for i in $(seq 1 100); do alive slurmctld >/dev/null || break; sleep 0.1; done
    alive slurmctld >/dev/null && die "slurmctld (pid $pid) did not stop"
    rm -f "$DIR/pids/slurmctld"
    log "slurmctld stopped; slurmd and the running jobs go on"
}

cmd_start_slurmctld() {
    alive slurmctld >/dev/null && die "slurmctld is already running"
    rm -f "$DIR/run/slurmctld.pid"
    slurmctld -f "$CONF" </dev/null >>"$DIR/log/slurmctld.log" 2>&1   # no -c: it recovers its saved state
    wait_pidfile slurmctld "$DIR/run/slurmctld.pid"
    wait_idle
    log "slurmctld started again from its saved state"
}

cmd_status() {
    if all_alive; then
        echo "running (SLURM_CONF=$CONF)"
        sinfo 2>/dev/null || true
        return 0
    fi
    local d
    for d in "${DAEMONS[@]}"; do alive "$d" >/dev/null && echo "partly running: $d"; done
    echo "stopped"
    return 3
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    stop-slurmctld) cmd_stop_slurmctld ;;
    start-slurmctld) cmd_start_slurmctld ;;
    env) echo "export SLURM_CONF=$CONF PATH=$DIR/bin:\$PATH" ;;
    *) echo "usage: $0 {install|start|stop|restart|status|stop-slurmctld|start-slurmctld|env}" >&2; exit 2 ;;
esac
