#!/usr/bin/env bash
# A throwaway one-node Slurm cluster and PostgreSQL server on this machine, for the tests that
# send grids and studies through a real scheduler (tests/test_slurm.py, `pytest -m slurm`).
#
#   bash scripts/slurm_cluster.sh start    # install what is missing, start everything (idempotent)
#   bash scripts/slurm_cluster.sh status   # what runs, and the URL of the test database
#   bash scripts/slurm_cluster.sh stop     # stop the daemons and the database (state kept)
#   bash scripts/slurm_cluster.sh clean    # stop, then delete the state folder
#
# Needs root (the Slurm daemons run as root, as on a real head node) on Debian/Ubuntu: it
# installs slurm-wlm (slurmctld, slurmd, the client commands), munge and postgresql with apt
# when they are missing. Everything it writes lives in the state folder, .cluster/ in the
# clone (MERBENCH_CLUSTER_DIR overrides): slurm.conf, the daemons' logs and spool, the
# database, and `env`, which the tests read (source it to use the cluster by hand):
#
#   export MERBENCH_TEST_SLURM=1
#   export MERBENCH_TEST_POSTGRES_URL=postgresql://merbench@127.0.0.1:55432/merbench
#   export SLURM_CONF=<state folder>/slurm/slurm.conf   # where sbatch, squeue, scancel find the cluster
#
# The cluster: one node named after `hostname -s` with the CPUs and memory `slurmd -C` finds,
# one partition `debug`, jobs scheduled per CPU (select/cons_tres, CR_CPU). No cgroups
# (proctrack/linuxproc, task/none), so it runs in a container. No accounting database
# (accounting_storage/none): that needs slurmdbd and a MySQL server. `sacct` therefore fails
# here, as on many small clusters; submitit reads job states with `sacct`, and merbench's
# Slurm runner reads them with `squeue` instead when sacct says accounting is disabled, so a
# job that ends without a result (scancel, a node failure) is seen to end instead of being
# waited for forever, and submitit's "Bypassing sacct error" warning is not printed at every poll.
#
# PostgreSQL: a cluster of its own (initdb in the state folder, user `merbench`, trust
# authentication on 127.0.0.1 only, port MERBENCH_PG_PORT, default 55432) with one database
# `merbench`: what `merbench tune --storage postgresql://...` uses when Slurm jobs on several
# nodes share one study. SQLite (study.db in the tune folder) stays the default on one machine.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${MERBENCH_CLUSTER_DIR:-$PWD/.cluster}
PG_PORT=${MERBENCH_PG_PORT:-55432}
PARTITION=debug
NODE=$(hostname -s)
CONF=$STATE/slurm/slurm.conf
export SLURM_CONF=$CONF

say() { echo "slurm_cluster: $*"; }
die() { echo "slurm_cluster: error: $*" >&2; exit 1; }

pg_bin() {
  local found
  found=$(command -v pg_ctl 2>/dev/null || true)
  if [ -z "$found" ]; then
    found=$(ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -1 || true)
  fi
  [ -n "$found" ] && dirname "$(readlink -f "$found")"
}

install_missing() {
  local packages=()
  command -v slurmctld >/dev/null 2>&1 || packages+=(slurm-wlm)
  command -v munged >/dev/null 2>&1 || packages+=(munge)
  [ -n "$(pg_bin)" ] || packages+=(postgresql)
  if [ ${#packages[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "missing ${packages[*]} and no apt-get to install them"
    say "installing ${packages[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  fi
}

# as_user USER CMD...: run CMD as USER (PostgreSQL refuses to run as root).
as_user() {
  local user=$1; shift
  if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

pg_user() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

write_conf() {
  mkdir -p "$STATE/slurm/ctld" "$STATE/slurm/d" "$STATE/slurm/log"
  # The node's real sockets, cores, threads and memory, as slurmd itself reports them.
  local hardware
  hardware=$(slurmd -C | head -1 | sed -e "s/^NodeName=[^ ]*//" -e "s/UpTime=.*//")
  cat > "$CONF.tmp" <<EOF
# Written by scripts/slurm_cluster.sh: a one-node test cluster.
ClusterName=merbench
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it starts again (Slurm default 120).
AuthInfo=cred_expire=10
StateSaveLocation=$STATE/slurm/ctld
SlurmdSpoolDir=$STATE/slurm/d
SlurmctldPidFile=$STATE/slurm/slurmctld.pid
SlurmdPidFile=$STATE/slurm/slurmd.pid
SlurmctldLogFile=$STATE/slurm/log/slurmctld.log
SlurmdLogFile=$STATE/slurm/log/slurmd.log
# No cgroups: processes tracked by their parent ids, no CPU binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# No accounting database (see the script's header): sacct is disabled, squeue answers.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# Look at pending jobs every 2 s (default 60 s): a requeued job starts again soon after its wait.
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# Ended jobs stay in squeue's list this long, with their end state (Slurm's default).
MinJobAge=300
# Seconds between SIGTERM and SIGKILL on scancel / requeue (default 30; slurmd waits 5 s at least;
# submitit's jobs ignore SIGTERM, so a running job trains on until the SIGKILL).
KillWait=5
NodeName=$NODE $hardware State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  if cmp -s "$CONF.tmp" "$CONF"; then rm "$CONF.tmp"; return 1; fi
  mv "$CONF.tmp" "$CONF"
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  if pgrep -x munged >/dev/null 2>&1; then return; fi
  [ -f /etc/munge/munge.key ] || { /usr/sbin/mungekey --create >/dev/null 2>&1 || /usr/sbin/create-munge-key -f; }
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged
}

start_slurm() {
  local changed=0
  write_conf && changed=1
  if running "$STATE/slurm/slurmctld.pid" && running "$STATE/slurm/slurmd.pid"; then
    # already up: a changed slurm.conf (this script edited) is read again
    [ $changed = 0 ] || scontrol reconfigure
  else
    running "$STATE/slurm/slurmctld.pid" || slurmctld
    running "$STATE/slurm/slurmd.pid" || slurmd
  fi
  local i state
  for i in $(seq 1 60); do
    state=$(sinfo -h -p "$PARTITION" -o %T 2>/dev/null || true)
    case "$state" in
      idle*|mixed*|alloc*) return ;;
      down*|drain*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
  done
  die "the node did not come up (sinfo: ${state:-no answer}); see $STATE/slurm/log/"
}

start_postgres() {
  local bin user data=$STATE/postgres
  bin=$(pg_bin)
  user=$(pg_user)
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    chown "$user" "$data"
    chmod 0700 "$data"
    as_user "$user" "$bin/initdb" -D "$data" -U merbench -A trust -E UTF8 >/dev/null
  fi
  chown "$user" "$data"
  if ! as_user "$user" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_user "$user" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data" start >/dev/null
  fi
  if ! psql -h 127.0.0.1 -p "$PG_PORT" -U merbench -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='merbench'" \
      | grep -q 1; then
    psql -h 127.0.0.1 -p "$PG_PORT" -U merbench -d postgres -qc "CREATE DATABASE merbench" >/dev/null
  fi
}

url() { echo "postgresql://merbench@127.0.0.1:$PG_PORT/merbench"; }

write_env() {
  cat > "$STATE/env.tmp" <<EOF
export MERBENCH_TEST_SLURM=1
export MERBENCH_TEST_POSTGRES_URL=$(url)
export SLURM_CONF=$CONF
EOF
  mv "$STATE/env.tmp" "$STATE/env"
}

stop_all() {
  local bin user
  rm -f "$STATE/env"
  if [ -f "$CONF" ]; then
    for daemon in slurmd slurmctld; do
      if running "$STATE/slurm/$daemon.pid"; then
        kill "$(cat "$STATE/slurm/$daemon.pid")"
      fi
    done
  fi
  bin=$(pg_bin || true)
  user=$(pg_user)
  if [ -n "$bin" ] && [ -f "$STATE/postgres/PG_VERSION" ]; then
    as_user "$user" "$bin/pg_ctl" -D "$STATE/postgres" -m fast stop >/dev/null 2>&1 || true
  fi
  # munged is the machine's (other Slurm clients may use it): left running.
}

status() {
  local ok=0
  if [ -f "$CONF" ] && running "$STATE/slurm/slurmctld.pid" && running "$STATE/slurm/slurmd.pid"; then
    say "slurm: $(sinfo -h -o '%P %D node(s) %T %c CPUs %m MB' 2>/dev/null || echo 'no answer')"
  else
    say "slurm: not running"; ok=1
  fi
  local bin
  bin=$(pg_bin || true)
  if [ -n "$bin" ] && [ -f "$STATE/postgres/PG_VERSION" ] \
      && as_user "$(pg_user)" "$bin/pg_ctl" -D "$STATE/postgres" status >/dev/null 2>&1; then
    say "postgres: $(url)"
  else
    say "postgres: not running"; ok=1
  fi
  return $ok
}

case "${1:-}" in
  start)
    [ "$(id -u)" = 0 ] || die "start needs root (apt-get and the Slurm daemons)"
    started=$(date +%s)
    install_missing
    mkdir -p "$STATE"
    start_munge
    start_slurm
    start_postgres
    write_env
    say "up in $(( $(date +%s) - started )) s: partition $PARTITION on node $NODE; postgres $(url)"
    say "environment for the tests: $STATE/env"
    ;;
  stop) stop_all; say "stopped" ;;
  clean) stop_all; rm -rf "$STATE"; say "removed $STATE" ;;
  status) status ;;
  *) echo "usage: bash scripts/slurm_cluster.sh start|stop|status|clean" >&2; exit 2 ;;
esac
