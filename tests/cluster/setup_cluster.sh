#!/usr/bin/env bash
# A real single-node cluster on this machine, on loopback only (127.0.0.1), for the tests in tests/cluster/.
#   munged; Slurm (slurmctld + slurmd, proctrack/linuxproc, task/none, a `cpu` partition of this machine's cores,
#   completed jobs logged by jobcomp/filetxt); sshd on 127.0.0.1:$SSH_PORT with a key made here; PostgreSQL and
#   RabbitMQ on 127.0.0.1, each with a role and a password made here.
# Needs root (CI runs as root) and Debian's packages, which it installs when missing. Safe to run again: what runs
# already is kept. Everything made for the test (key, passwords, configuration) lives in $STATE_DIR, mode 700,
# outside the repository, and is never printed.
# Usage: bash tests/cluster/setup_cluster.sh            (prints the env file to source: $STATE_DIR/cluster.env)
#        bash tests/cluster/setup_cluster.sh --stop     (stops what it started)
set -euo pipefail

STATE_DIR=${SIANODE_CLUSTER_DIR:-/var/lib/sianode-cluster}
SSH_PORT=${SIANODE_SSH_PORT:-2222}
PACKAGES=(slurm-wlm munge openssh-server postgresql rabbitmq-server iproute2)
HOST=$(hostname -s)

log() { printf '[setup_cluster %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[setup_cluster] error: %s\n' "$*" >&2; exit 1; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
    die "$what did not come up within ${seconds} s"
}

[[ $(id -u) == 0 ]] || die 'run as root (it installs packages and starts system services)'

if [[ ${1:-} == --stop ]]; then
    for pidfile in /run/slurmctld.pid /run/slurmd.pid "$STATE_DIR/sshd.pid" /run/munge/munged.pid; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    [[ -x /usr/sbin/rabbitmqctl ]] && rabbitmqctl -q stop >/dev/null 2>&1 || true
    for cluster in /etc/postgresql/*/main; do
        [[ -d $cluster ]] && pg_ctlcluster "$(basename "$(dirname "$cluster")")" main stop 2>/dev/null || true
    done
    log 'stopped'
    exit 0
fi

# --- packages -------------------------------------------------------------------------------------------------
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

install -d -m 700 "$STATE_DIR"
secret() { # a password made once for this machine, kept in $STATE_DIR
    local file="$STATE_DIR/$1"
    [[ -s $file ]] || (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$file")
    cat "$file"
}

# --- munge ------------------------------------------------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    (umask 077 && dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none)
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log 'starting munged'
    runuser -u munge -- /usr/sbin/munged
    wait_for 20 munged bash -c 'munge -n | unmunge'
fi

# --- Slurm ------------------------------------------------------------------------------------------------------
CPUS=$(getconf _NPROCESSORS_ONLN)  # not nproc: it follows OMP_NUM_THREADS, which make exports
MEMORY_MB=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))
# the daemons bind what ${HOST} resolves to: it must be a loopback address, or the cluster would listen outside
HOST_ADDRESS=$(getent ahostsv4 "$HOST" | awk 'NR == 1 {print $1}')
if [[ $HOST_ADDRESS != 127.* ]]; then
    # first line, so that it wins over the address a container runtime wrote; in place, as /etc/hosts may be mounted
    log "host name $HOST resolves to ${HOST_ADDRESS:-nothing}: adding \`127.0.1.1 $HOST\` to the top of /etc/hosts"
    hosts=$(cat /etc/hosts)
    printf '127.0.1.1 %s\n%s\n' "$HOST" "$hosts" >/etc/hosts
    HOST_ADDRESS=$(getent ahostsv4 "$HOST" | awk 'NR == 1 {print $1}')
    [[ $HOST_ADDRESS == 127.* ]] || die "host name $HOST still resolves to $HOST_ADDRESS, not a loopback address"
fi
install -d -m 755 /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >"$STATE_DIR/slurm.conf.new" <<EOF
# Written by aiida-sianode tests/cluster/setup_cluster.sh: one node, this machine, on loopback.
ClusterName=sianode
SlurmctldHost=${HOST}(127.0.0.1)
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
# slurmd (NoInAddrAny) and slurmctld (NoCtldInAddrAny) bind the address their host name resolves to, not 0.0.0.0;
# the host name must then resolve to a loopback address (checked below)
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=60
MinJobAge=300
KillWait=5
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEMORY_MB} State=UNKNOWN
PartitionName=cpu Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
EOF
if ! cmp -s "$STATE_DIR/slurm.conf.new" /etc/slurm/slurm.conf; then
    mv "$STATE_DIR/slurm.conf.new" /etc/slurm/slurm.conf
    for pidfile in /run/slurmctld.pid /run/slurmd.pid; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 1
fi
rm -f "$STATE_DIR/slurm.conf.new"
if ! scontrol ping 2>/dev/null | grep -q 'is UP'; then
    log "starting slurmctld (partition cpu: ${CPUS} cores)"
    /usr/sbin/slurmctld
    wait_for 30 slurmctld bash -c "scontrol ping | grep -q 'is UP'"
fi
if ! sinfo -h -N -o '%T' 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'; then
    pgrep -F /run/slurmd.pid >/dev/null 2>&1 || { log 'starting slurmd'; /usr/sbin/slurmd; }
    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    wait_for 60 'slurmd (node idle)' bash -c "sinfo -h -N -o '%T' | grep -q -E '^(idle|mixed|allocated)'"
fi

# --- sshd on 127.0.0.1 with a key made for the test -------------------------------------------------------------
[[ -s $STATE_DIR/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C sianode-cluster-test -f "$STATE_DIR/id_ed25519"
cp "$STATE_DIR/id_ed25519.pub" "$STATE_DIR/authorized_keys" && chmod 600 "$STATE_DIR/authorized_keys"
[[ -s $STATE_DIR/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -f "$STATE_DIR/ssh_host_ed25519_key"
cat >"$STATE_DIR/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port ${SSH_PORT}
HostKey ${STATE_DIR}/ssh_host_ed25519_key
PidFile ${STATE_DIR}/sshd.pid
AuthorizedKeysFile ${STATE_DIR}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
MaxStartups 50:30:100
MaxSessions 50
EOF
install -d -m 755 /run/sshd
if ! pgrep -F "$STATE_DIR/sshd.pid" >/dev/null 2>&1; then
    log "starting sshd on 127.0.0.1:${SSH_PORT}"
    /usr/sbin/sshd -f "$STATE_DIR/sshd_config"
fi
wait_for 20 sshd ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -i "$STATE_DIR/id_ed25519" -p "$SSH_PORT" root@127.0.0.1 true

# --- PostgreSQL on 127.0.0.1 ------------------------------------------------------------------------------------
PG_VERSION=$(ls /etc/postgresql | sort -n | tail -1)
[[ -n $PG_VERSION ]] || die 'no PostgreSQL cluster under /etc/postgresql'
PG_CONF=/etc/postgresql/$PG_VERSION/main/postgresql.conf
grep -q "^listen_addresses = '127.0.0.1'" "$PG_CONF" || echo "listen_addresses = '127.0.0.1'" >>"$PG_CONF"
if ! pg_ctlcluster "$PG_VERSION" main status >/dev/null 2>&1; then
    log "starting PostgreSQL $PG_VERSION"
    pg_ctlcluster "$PG_VERSION" main start
fi
wait_for 30 PostgreSQL runuser -u postgres -- psql -qAtc 'SELECT 1'
DB_PASSWORD=$(secret db_password)
runuser -u postgres -- psql -qAt -v ON_ERROR_STOP=1 -v pw="$DB_PASSWORD" >/dev/null <<'EOF'
SELECT format('CREATE ROLE sianode LOGIN CREATEDB PASSWORD %L', :'pw') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sianode') \gexec
SELECT format('ALTER ROLE sianode CREATEDB PASSWORD %L', :'pw') \gexec
SELECT 'CREATE DATABASE sianode OWNER sianode' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sianode') \gexec
EOF

# --- RabbitMQ on 127.0.0.1 --------------------------------------------------------------------------------------
cat >/etc/rabbitmq/rabbitmq-env.conf <<'EOF'
# Written by aiida-sianode tests/cluster/setup_cluster.sh: loopback only.
NODENAME=rabbit@localhost
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=5672
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
# AiiDA's long-running work chains keep a message unacknowledged for hours: lift RabbitMQ's 30-minute limit.
printf '%s\n' '[{rabbit, [{consumer_timeout, undefined}]}].' >/etc/rabbitmq/advanced.config
export ERL_EPMD_ADDRESS=127.0.0.1
if ! rabbitmqctl -q status >/dev/null 2>&1; then
    log 'starting RabbitMQ'
    rabbitmq-server -detached
    wait_for 90 RabbitMQ rabbitmqctl -q await_startup
fi
BROKER_PASSWORD=$(secret broker_password)
rabbitmqctl -q list_users 2>/dev/null | grep -q '^sianode\b' || rabbitmqctl -q add_user sianode "$BROKER_PASSWORD" >/dev/null
rabbitmqctl -q change_password sianode "$BROKER_PASSWORD" >/dev/null
rabbitmqctl -q set_permissions -p / sianode '.*' '.*' '.*' >/dev/null

# --- what the tests read --------------------------------------------------------------------------------------
(umask 077 && cat >"$STATE_DIR/cluster.env" <<EOF
export SIANODE_CLUSTER_DIR=${STATE_DIR}
export SIANODE_CLUSTER_HOST=127.0.0.1
export SIANODE_CLUSTER_NODE=${HOST}
export SIANODE_SSH_PORT=${SSH_PORT}
export SIANODE_SSH_KEY=${STATE_DIR}/id_ed25519
export SIANODE_SLURM_JOBCOMP=/var/log/slurm/jobcomp.log
export SIANODE_DB_USER=sianode
export SIANODE_DB_NAME=sianode
export SIANODE_DB_PASSWORD_FILE=${STATE_DIR}/db_password
export SIANODE_BROKER_USER=sianode
export SIANODE_BROKER_PASSWORD_FILE=${STATE_DIR}/broker_password
EOF
)
# nothing of the cluster may listen outside loopback
outside=$(ss -Hltn | awk '{print $4}' | grep -E ':(6817|6818|'"${SSH_PORT}"'|5432|5672|25672|4369)$' | grep -v -E '^(127\.[0-9.]+|\[::1\]):' || true)
[[ -z $outside ]] || die "services listening outside loopback: ${outside//$'\n'/ }"
log "ready: slurm partition cpu (${CPUS} cores), sshd 127.0.0.1:${SSH_PORT}, PostgreSQL $PG_VERSION and RabbitMQ on 127.0.0.1"
log "settings for the tests: $STATE_DIR/cluster.env"
