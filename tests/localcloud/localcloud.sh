#!/usr/bin/env bash
# Local test cloud for the osimage.glance collection.
#
# Installs Keystone, Glance and Barbican from PyPI into a venv, configures
# them with sqlite, runs each one under uwsgi on 127.0.0.1 and writes a
# clouds.yaml with the clouds "admin", "demo" and "alt".
#
# Usage: localcloud.sh start|stop|purge|status|env
#        localcloud.sh stop-service|start-service keystone|glance|barbican
#
# Environment:
#   LOCALCLOUD_DIR            state directory (default: <repo>/.localcloud);
#                             everything the cloud writes lives under it
#   LOCALCLOUD_VENV           venv of the services (default: $LOCALCLOUD_DIR/venv)
#   LOCALCLOUD_KEYSTONE_PORT  default 5000
#   LOCALCLOUD_GLANCE_PORT    default 9292
#   LOCALCLOUD_BARBICAN_PORT  default 9311
#   LOCALCLOUD_START_TIMEOUT  seconds to wait for one service to become
#                             healthy (default 180)
#   LOCALCLOUD_STOP_TIMEOUT   seconds between TERM and KILL (default 20)
#   LOCALCLOUD_PIP_TIMEOUT    seconds allowed for the pip install (default 1800)
#   LOCALCLOUD_PYTHON         interpreter for the venv (default: python3)

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

LC_DIR=$(realpath -m "${LOCALCLOUD_DIR:-$REPO_ROOT/.localcloud}")
LC_VENV=$(realpath -m "${LOCALCLOUD_VENV:-$LC_DIR/venv}")
KEYSTONE_PORT=${LOCALCLOUD_KEYSTONE_PORT:-5000}
GLANCE_PORT=${LOCALCLOUD_GLANCE_PORT:-9292}
BARBICAN_PORT=${LOCALCLOUD_BARBICAN_PORT:-9311}
START_TIMEOUT=${LOCALCLOUD_START_TIMEOUT:-180}
STOP_TIMEOUT=${LOCALCLOUD_STOP_TIMEOUT:-20}
PIP_TIMEOUT=${LOCALCLOUD_PIP_TIMEOUT:-1800}
BASE_PYTHON=${LOCALCLOUD_PYTHON:-python3}

HOST=127.0.0.1
REGION=RegionOne
SERVICES=(keystone glance barbican)
MARKER=.localcloud-state
REQUIREMENTS=$SCRIPT_DIR/requirements.txt

ETC=$LC_DIR/etc
LOGS=$LC_DIR/log
RUN=$LC_DIR/run
DATA=$LC_DIR/data
STORES=$LC_DIR/images
BARBICAN_HOME=$LC_DIR/barbican-home
SECRETS_FILE=$LC_DIR/secrets.env
CLOUDS_YAML=$LC_DIR/clouds.yaml

KEYSTONE_URL=http://$HOST:$KEYSTONE_PORT
GLANCE_URL=http://$HOST:$GLANCE_PORT
BARBICAN_URL=http://$HOST:$BARBICAN_PORT

# Filled in by load_secrets.
ADMIN_PASSWORD=
DEMO_PASSWORD=
ALT_PASSWORD=
GLANCE_SERVICE_PASSWORD=
BARBICAN_SERVICE_PASSWORD=
BARBICAN_KEK=

log() { printf 'localcloud: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

validate_settings() {
    local name value
    for name in KEYSTONE_PORT GLANCE_PORT BARBICAN_PORT START_TIMEOUT \
        STOP_TIMEOUT PIP_TIMEOUT; do
        value=${!name}
        [[ $value =~ ^[0-9]+$ ]] || die "$name must be a number (got '$value')"
    done
    case $LC_DIR in
        / | /root | /home | /tmp | /usr | /etc | /var | /work | "$HOME")
            die "refusing to use $LC_DIR as LOCALCLOUD_DIR" ;;
    esac
}

valid_service() {
    local svc
    for svc in "${SERVICES[@]}"; do
        [[ $1 == "$svc" ]] && return 0
    done
    return 1
}

service_port() {
    case $1 in
        keystone) echo "$KEYSTONE_PORT" ;;
        glance) echo "$GLANCE_PORT" ;;
        barbican) echo "$BARBICAN_PORT" ;;
    esac
}

health_url() {
    case $1 in
        keystone) echo "$KEYSTONE_URL/v3" ;;
        glance) echo "$GLANCE_URL/healthcheck" ;;
        barbican) echo "$BARBICAN_URL/healthcheck" ;;
    esac
}

service_ini() { echo "$ETC/uwsgi/$1.ini"; }
pid_file() { echo "$RUN/$1.pid"; }
uwsgi_log() { echo "$LOGS/$1-uwsgi.log"; }
service_log() {
    case $1 in
        keystone) echo "$LOGS/keystone.log" ;;
        glance) echo "$LOGS/glance-api.log" ;;
        barbican) echo "$LOGS/barbican-api.log" ;;
    esac
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# True if GET $1 answers with a 2xx status within a few seconds.
http_ok() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --connect-timeout 2 --max-time 5 "$1" \
            2>/dev/null
    else
        timeout 10 "$BASE_PYTHON" -c '
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as resp:
    sys.exit(0 if 200 <= resp.status < 300 else 1)
' "$1" >/dev/null 2>&1
    fi
}

# Prints the pid from the pid file of service $1 if that pid is still the
# uwsgi master this script started for it; prints nothing otherwise.
service_pid() {
    local pidf pid cmdline
    pidf=$(pid_file "$1")
    [[ -f $pidf ]] || return 0
    pid=$(head -n1 "$pidf" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    [[ -r /proc/$pid/cmdline ]] || return 0
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    if [[ $cmdline == *uwsgi* && $cmdline == *"$(service_ini "$1")"* ]]; then
        echo "$pid"
    fi
}

service_healthy() {
    [[ -n $(service_pid "$1") ]] && http_ok "$(health_url "$1")"
}

show_logs() {
    local svc=$1 file
    for file in "$(uwsgi_log "$svc")" "$(service_log "$svc")"; do
        if [[ -s $file ]]; then
            log "----- last lines of $file -----"
            tail -n 60 "$file" >&2 || true
        fi
    done
}

# ---------------------------------------------------------------- venv ----

requirements_stamp() {
    {
        sha256sum "$REQUIREMENTS" | cut -d' ' -f1
        "$BASE_PYTHON" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

ensure_venv() {
    local stamp_file=$LC_VENV/.localcloud-requirements stamp pip_log
    stamp=$(requirements_stamp)
    if [[ -x $LC_VENV/bin/uwsgi && -f $stamp_file &&
        $(cat "$stamp_file") == "$stamp" ]]; then
        return 0
    fi
    pip_log=$LOGS/pip.log
    if [[ ! -x $LC_VENV/bin/python ]]; then
        log "creating venv $LC_VENV"
        timeout 300 "$BASE_PYTHON" -m venv "$LC_VENV" >>"$pip_log" 2>&1 ||
            { tail -n 40 "$pip_log" >&2; die "venv creation failed"; }
    fi
    log "installing Keystone, Glance, Barbican and uwsgi (log: $pip_log)"
    if ! timeout "$PIP_TIMEOUT" env PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_NO_INPUT=1 "$LC_VENV/bin/python" -m pip install \
        -r "$REQUIREMENTS" >>"$pip_log" 2>&1; then
        grep -v 'is ignored: it is neither a file nor a directory' \
            "$pip_log" | tail -n 40 >&2 || true
        die "pip install failed (see $pip_log)"
    fi
    echo "$stamp" >"$stamp_file"
}

# ------------------------------------------------------------- secrets ----

random_token() {
    "$BASE_PYTHON" -c 'import secrets; print(secrets.token_hex(16))'
}

load_secrets() {
    if [[ ! -s $SECRETS_FILE ]]; then
        log "generating passwords and keys in $SECRETS_FILE"
        (
            umask 077
            {
                echo "ADMIN_PASSWORD=$(random_token)"
                echo "DEMO_PASSWORD=$(random_token)"
                echo "ALT_PASSWORD=$(random_token)"
                echo "GLANCE_SERVICE_PASSWORD=$(random_token)"
                echo "BARBICAN_SERVICE_PASSWORD=$(random_token)"
                echo "BARBICAN_KEK=$("$BASE_PYTHON" -c \
                    'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
            } >"$SECRETS_FILE.tmp"
            mv "$SECRETS_FILE.tmp" "$SECRETS_FILE"
        )
    fi
    local line key value
    while IFS= read -r line; do
        key=${line%%=*}
        value=${line#*=}
        case $key in
            ADMIN_PASSWORD | DEMO_PASSWORD | ALT_PASSWORD | \
                GLANCE_SERVICE_PASSWORD | BARBICAN_SERVICE_PASSWORD | \
                BARBICAN_KEK)
                printf -v "$key" '%s' "$value" ;;
        esac
    done <"$SECRETS_FILE"
    [[ -n $ADMIN_PASSWORD && -n $BARBICAN_KEK ]] ||
        die "$SECRETS_FILE is incomplete; run purge and start again"
}

# -------------------------------------------------------------- config ----

make_dirs() {
    mkdir -p "$LC_DIR"
    touch "$LC_DIR/$MARKER"
    mkdir -p "$ETC/keystone" "$ETC/glance" "$ETC/uwsgi" "$LOGS" "$RUN" \
        "$DATA" "$STORES/fast" "$STORES/slow" "$STORES/staging" \
        "$STORES/tasks" "$BARBICAN_HOME/.barbican" "$LC_DIR/keystone-keys"
}

authtoken_section() {
    # $1 service user name, $2 its password
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL/v3
auth_url = $KEYSTONE_URL/v3
auth_type = password
username = $1
password = $2
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = $REGION
interface = public
http_connect_timeout = 10
http_request_max_retries = 3
EOF
}

write_keystone_config() {
    cat >"$ETC/keystone/keystone.conf" <<EOF
# Generated by localcloud.sh; rewritten at every start.
[DEFAULT]
log_file = $LOGS/keystone.log
use_stderr = false

[database]
connection = sqlite:///$DATA/keystone.sqlite?timeout=30

[token]
provider = fernet
expiration = 14400

[fernet_tokens]
key_repository = $LC_DIR/keystone-keys/fernet
max_active_keys = 3

[fernet_receipts]
key_repository = $LC_DIR/keystone-keys/fernet
max_active_keys = 3

[credential]
key_repository = $LC_DIR/keystone-keys/credential

[identity]
# bcrypt's cheapest cost: a test cloud needs fast logins, not strong hashes
password_hash_rounds = 4
max_password_length = 72

[cache]
# In-process cache: keystone runs as one uwsgi process (several threads), so
# the cache is coherent. Without it a token validation takes ~0.6 s.
enabled = true
backend = dogpile.cache.memory
EOF
}

write_glance_config() {
    local paste_src=$LC_VENV/etc/glance/glance-api-paste.ini
    [[ -f $paste_src ]] || die "$paste_src not found in the venv"
    cp "$paste_src" "$ETC/glance/glance-api-paste.ini"
    cat >"$ETC/glance/glance-api.conf" <<EOF
# Generated by localcloud.sh; rewritten at every start.
[DEFAULT]
log_file = $LOGS/glance-api.log
use_stderr = false
enabled_backends = fast:file, slow:file
enabled_import_methods = [glance-direct,web-download,copy-image]
worker_self_reference_url = $GLANCE_URL
hashing_algorithm = sha512
public_endpoint = $GLANCE_URL

[database]
connection = sqlite:///$DATA/glance.sqlite?timeout=30

[glance_store]
default_backend = fast

[fast]
store_description = Fast file store (default)
filesystem_store_datadir = $STORES/fast
filesystem_store_chunk_size = 1048576

[slow]
store_description = Slow file store
filesystem_store_datadir = $STORES/slow
filesystem_store_chunk_size = 1048576

[os_glance_staging_store]
filesystem_store_datadir = $STORES/staging
filesystem_store_chunk_size = 1048576

[os_glance_tasks_store]
filesystem_store_datadir = $STORES/tasks
filesystem_store_chunk_size = 1048576

[paste_deploy]
flavor = keystone
config_file = $ETC/glance/glance-api-paste.ini

$(authtoken_section glance "$GLANCE_SERVICE_PASSWORD")

[key_manager]
backend = barbican

[barbican]
auth_endpoint = $KEYSTONE_URL/v3
barbican_endpoint = $BARBICAN_URL
barbican_endpoint_type = public

[import_filtering_opts]
# web-download from a test HTTP server on the loopback interface, any port.
# Glance refuses loopback addresses unless they are listed in allowed_hosts.
# These options are lists in brackets.
allowed_schemes = [http,https]
disallowed_schemes = []
allowed_hosts = [127.0.0.1,::1]
disallowed_hosts = []
allowed_ports = []
disallowed_ports = []

[wsgi]
python_interpreter = $LC_VENV/bin/python
EOF
}

write_barbican_config() {
    local paste_src=$LC_VENV/etc/barbican/barbican-api-paste.ini
    [[ -f $paste_src ]] || die "$paste_src not found in the venv"
    sed -e "s#/etc/barbican/healthcheck_disable#$BARBICAN_HOME/.barbican/healthcheck_disable#" \
        -e "s#/etc/barbican/api_audit_map.conf#$BARBICAN_HOME/.barbican/api_audit_map.conf#" \
        "$paste_src" >"$BARBICAN_HOME/.barbican/barbican-api-paste.ini"
    cat >"$BARBICAN_HOME/.barbican/barbican.conf" <<EOF
# Generated by localcloud.sh; rewritten at every start.
# Barbican reads its configuration only from default places: it is started
# with HOME=$BARBICAN_HOME so that it finds this file.
[DEFAULT]
host_href = $BARBICAN_URL
log_file = $LOGS/barbican-api.log
use_stderr = false
db_auto_create = true

[database]
connection = sqlite:///$DATA/barbican.sqlite?timeout=30

[secretstore]
namespace = barbican.secretstore.plugin
enabled_secretstore_plugins = store_crypto

[crypto]
namespace = barbican.crypto.plugin
enabled_crypto_plugins = simple_crypto

[simple_crypto_plugin]
kek = $BARBICAN_KEK

$(authtoken_section barbican "$BARBICAN_SERVICE_PASSWORD")
EOF
}

# uwsgi settings shared by all services. Connection: close avoids the
# "connection reset by peer" that keep-alive clients get from --http-socket.
write_uwsgi_ini() {
    local svc=$1 port processes threads
    port=$(service_port "$svc")
    case $svc in
        keystone) processes=1 threads=6 ;;
        glance) processes=3 threads=2 ;;
        barbican) processes=1 threads=4 ;;
    esac
    {
        cat <<EOF
; Generated by localcloud.sh; rewritten at every start.
[uwsgi]
master = true
http-socket = $HOST:$port
virtualenv = $LC_VENV
chdir = $LC_DIR
processes = $processes
threads = $threads
enable-threads = true
lazy-apps = true
need-app = true
die-on-term = true
no-orphans = true
thunder-lock = true
worker-reload-mercy = 10
reload-mercy = 10
add-header = Connection: close
buffer-size = 65535
socket-timeout = 300
log-date = true
EOF
        case $svc in
            keystone)
                echo "module = keystone.wsgi.api:application"
                ;;
            glance)
                echo "module = glance.wsgi.api:application"
                # Glance reads chunked uploads with uwsgi.chunked_read(),
                # which refuses chunks larger than this limit (default 1 MB;
                # python-glanceclient sends 1 MiB chunks plus framing).
                # (The http-chunked-input/http-raw-body/http-auto-chunked
                # options only act in uwsgi's http router, not with
                # http-socket.)
                echo "chunked-input-limit = 67108864"
                echo "chunked-input-timeout = 300"
                ;;
            barbican)
                echo "paste = config:$BARBICAN_HOME/.barbican/barbican-api-paste.ini"
                echo "paste-logger = false"
                ;;
        esac
    } >"$(service_ini "$svc")"
}

write_configs() {
    write_keystone_config
    write_glance_config
    write_barbican_config
    local svc
    for svc in "${SERVICES[@]}"; do
        write_uwsgi_ini "$svc"
    done
}

write_clouds_yaml() {
    local tmp=$CLOUDS_YAML.tmp
    (
        umask 077
        {
            echo "# Generated by localcloud.sh; rewritten at every start."
            echo "clouds:"
            cloud_entry admin admin "$ADMIN_PASSWORD"
            cloud_entry demo demo "$DEMO_PASSWORD"
            cloud_entry alt alt "$ALT_PASSWORD"
        } >"$tmp"
    )
    mv "$tmp" "$CLOUDS_YAML"
}

cloud_entry() {
    # $1 cloud and project name, $2 user, $3 password
    cat <<EOF
  $1:
    auth:
      auth_url: "$KEYSTONE_URL/v3"
      username: "$2"
      password: "$3"
      project_name: "$1"
      user_domain_name: Default
      project_domain_name: Default
    identity_api_version: 3
    region_name: $REGION
    interface: public
EOF
}

# ---------------------------------------------------------- processes ----

# Runs a command of the venv with a clean environment, output to $LOGS/$1.
venv_run() {
    local logname=$1 limit=$2
    shift 2
    local cmdline="$*"
    echo "=== $(date -Is) ${cmdline//"$ADMIN_PASSWORD"/<password>}" \
        >>"$LOGS/$logname"
    if ! timeout "$limit" env -i PATH="$LC_VENV/bin:/usr/bin:/bin" \
        HOME="$BARBICAN_HOME" LANG=C.UTF-8 "$@" >>"$LOGS/$logname" 2>&1; then
        log "----- last lines of $LOGS/$logname -----"
        tail -n 40 "$LOGS/$logname" >&2 || true
        die "command failed: $*"
    fi
}

# Closes every file descriptor above 2 of the current (sub)shell.
close_inherited_fds() {
    local fd path
    for path in /proc/"$BASHPID"/fd/*; do
        fd=${path##*/}
        if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then
            eval "exec $fd>&-" 2>/dev/null || true
        fi
    done
}

launch_service() {
    local svc=$1 port pid env_var
    port=$(service_port "$svc")
    if port_open "$port"; then
        die "port $HOST:$port is already in use by a process this script" \
            "did not start; cannot start $svc"
    fi
    case $svc in
        keystone) env_var=OS_KEYSTONE_CONFIG_FILES=$ETC/keystone/keystone.conf ;;
        glance) env_var=OS_GLANCE_CONFIG_DIR=$ETC/glance ;;
        barbican) env_var=LOCALCLOUD_SERVICE=barbican ;;
    esac
    echo "=== $(date -Is) starting $svc" >>"$(uwsgi_log "$svc")"
    # The service must not keep open any descriptor of ours (the lock, or a
    # pipe of whoever runs this script, who would then wait for it forever).
    # setsid: own session and process group, so that stop can kill the
    # master and its workers together, and so that the services outlive
    # the shell that started them. The subshell execs setsid, which execs
    # env, which execs uwsgi: $! is the uwsgi master's pid.
    (
        close_inherited_fds
        exec setsid env -i PATH="$LC_VENV/bin:/usr/bin:/bin" \
            HOME="$BARBICAN_HOME" LANG=C.UTF-8 "$env_var" \
            "$LC_VENV/bin/uwsgi" --ini "$(service_ini "$svc")" \
            </dev/null >>"$(uwsgi_log "$svc")" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$(pid_file "$svc")"
}

# True if process $1 exists and is not a zombie.
pid_alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)
    [[ -n $state && $state != Z ]]
}

wait_healthy() {
    local svc=$1 pid=$2 url deadline
    url=$(health_url "$svc")
    deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! pid_alive "$pid"; then
            show_logs "$svc"
            die "$svc exited during startup"
        fi
        if [[ -n $(service_pid "$svc") ]] && http_ok "$url"; then
            return 0
        fi
        sleep 0.5
    done
    show_logs "$svc"
    stop_service "$svc" || true
    die "$svc did not become healthy within ${START_TIMEOUT}s ($url)"
}

start_service() {
    local svc=$1
    if service_healthy "$svc"; then
        log "$svc already running (pid $(service_pid "$svc"))"
        return 0
    fi
    stop_service "$svc"
    log "starting $svc on $HOST:$(service_port "$svc")"
    launch_service "$svc"
    wait_healthy "$svc" "$(head -n1 "$(pid_file "$svc")")"
    log "$svc is healthy (pid $(service_pid "$svc"))"
}

# Stops the given services together: TERM to each uwsgi master, then, after
# LOCALCLOUD_STOP_TIMEOUT, KILL to whatever is left of its process group.
stop_services() {
    local svc pid deadline alive i
    local -a svcs=() pids=()
    for svc in "$@"; do
        pid=$(service_pid "$svc")
        if [[ -z $pid ]]; then
            rm -f "$(pid_file "$svc")"
            continue
        fi
        log "stopping $svc (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        svcs+=("$svc")
        pids+=("$pid")
    done
    ((${#pids[@]} > 0)) || return 0
    deadline=$((SECONDS + STOP_TIMEOUT))
    while ((SECONDS < deadline)); do
        alive=0
        for pid in "${pids[@]}"; do
            if pid_alive "$pid"; then
                alive=1
            fi
        done
        ((alive == 1)) || break
        sleep 0.2
    done
    for i in "${!pids[@]}"; do
        pid=${pids[i]}
        if pid_alive "$pid"; then
            log "${svcs[i]} did not stop within ${STOP_TIMEOUT}s, killing it"
        fi
        # The master leads its own process group (setsid): this kills the
        # master and any worker it left behind, and nothing else.
        if [[ $(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') == "$pid" ]] ||
            ! pid_alive "$pid"; then
            kill -KILL -- "-$pid" 2>/dev/null || true
        else
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    deadline=$((SECONDS + 10))
    for svc in "${svcs[@]}"; do
        while ((SECONDS < deadline)) && port_open "$(service_port "$svc")"; do
            sleep 0.2
        done
        rm -f "$(pid_file "$svc")"
    done
}

stop_service() {
    stop_services "$1"
}

# ----------------------------------------------------------- bootstrap ----

prepare_keystone() {
    local conf=$ETC/keystone/keystone.conf user group
    user=$(id -un)
    group=$(id -gn)
    venv_run keystone-manage.log 300 keystone-manage --config-file "$conf" \
        db_sync
    if [[ -z $(ls -A "$LC_DIR/keystone-keys/fernet" 2>/dev/null) ]]; then
        venv_run keystone-manage.log 120 keystone-manage --config-file \
            "$conf" fernet_setup --keystone-user "$user" \
            --keystone-group "$group"
    fi
    if [[ -z $(ls -A "$LC_DIR/keystone-keys/credential" 2>/dev/null) ]]; then
        venv_run keystone-manage.log 120 keystone-manage --config-file \
            "$conf" credential_setup --keystone-user "$user" \
            --keystone-group "$group"
    fi
    venv_run keystone-manage.log 300 keystone-manage --config-file "$conf" \
        bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
        --bootstrap-username admin --bootstrap-project-name admin \
        --bootstrap-role-name admin --bootstrap-service-name keystone \
        --bootstrap-region-id "$REGION" \
        --bootstrap-admin-url "$KEYSTONE_URL/v3" \
        --bootstrap-public-url "$KEYSTONE_URL/v3" \
        --bootstrap-internal-url "$KEYSTONE_URL/v3"
}

setup_identity() {
    log "creating projects, users, roles and the service catalog"
    echo "=== $(date -Is) keystone_setup.py" >>"$LOGS/keystone-setup.log"
    if ! timeout 300 env -i PATH="$LC_VENV/bin:/usr/bin:/bin" LANG=C.UTF-8 \
        LC_AUTH_URL="$KEYSTONE_URL/v3" LC_REGION="$REGION" \
        LC_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
        LC_DEMO_PASSWORD="$DEMO_PASSWORD" LC_ALT_PASSWORD="$ALT_PASSWORD" \
        LC_GLANCE_PASSWORD="$GLANCE_SERVICE_PASSWORD" \
        LC_BARBICAN_PASSWORD="$BARBICAN_SERVICE_PASSWORD" \
        LC_GLANCE_URL="$GLANCE_URL" LC_BARBICAN_URL="$BARBICAN_URL" \
        "$LC_VENV/bin/python" "$SCRIPT_DIR/keystone_setup.py" \
        >>"$LOGS/keystone-setup.log" 2>&1; then
        tail -n 40 "$LOGS/keystone-setup.log" >&2 || true
        show_logs keystone
        die "identity setup failed"
    fi
}

prepare_glance() {
    venv_run glance-manage.log 300 glance-manage --config-file \
        "$ETC/glance/glance-api.conf" db_sync
}

prepare_barbican() {
    venv_run barbican-manage.log 300 barbican-manage db upgrade
}

# WAL journaling lets readers go on while one writer writes, so the services'
# parallel workers (and parallel test runs) don't get "database is locked"
# 500s from SQLite. The mode is stored in the database file itself.
sqlite_wal() {
    "$LC_VENV/bin/python" -c 'import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=30)
mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
conn.close()
sys.exit(0 if mode == "wal" else "cannot switch %s to WAL: %s" % (sys.argv[1], mode))' "$DATA/$1.sqlite"
}

# ------------------------------------------------------------ commands ----

with_lock() {
    mkdir -p "$LC_DIR"
    exec 9>"$LC_DIR/.lock"
    flock -w 600 9 || die "another localcloud.sh holds $LC_DIR/.lock"
}

all_healthy() {
    local svc
    for svc in "${SERVICES[@]}"; do
        service_healthy "$svc" || return 1
    done
}

cmd_start() {
    with_lock
    make_dirs
    load_secrets
    if all_healthy && [[ -f $LC_DIR/identity.done ]]; then
        write_clouds_yaml
        log "already running and healthy; reusing it"
        log "clouds.yaml: $CLOUDS_YAML"
        return 0
    fi
    ensure_venv
    write_configs
    if ! service_healthy keystone; then
        prepare_keystone
        sqlite_wal keystone
        start_service keystone
    fi
    setup_identity
    touch "$LC_DIR/identity.done"
    if ! service_healthy glance; then
        prepare_glance
        sqlite_wal glance
        start_service glance
    fi
    if ! service_healthy barbican; then
        prepare_barbican
        sqlite_wal barbican
        start_service barbican
    fi
    write_clouds_yaml
    log "local cloud is up; clouds.yaml: $CLOUDS_YAML"
}

cmd_stop() {
    [[ -d $LC_DIR ]] || return 0
    with_lock
    stop_services "${SERVICES[@]}"
}

cmd_purge() {
    if [[ -d $LC_DIR ]]; then
        [[ -f $LC_DIR/$MARKER ]] || [[ -z $(ls -A "$LC_DIR") ]] ||
            die "$LC_DIR has no $MARKER file; not removing it"
        cmd_stop
        exec 9>&-
        rm -rf -- "$LC_DIR"
    fi
    if [[ $LC_VENV != "$LC_DIR"/* && -n ${LOCALCLOUD_VENV:-} ]]; then
        log "note: LOCALCLOUD_VENV=$LC_VENV is outside $LC_DIR; left in place"
    fi
    log "purged $LC_DIR"
}

cmd_status() {
    local svc pid rc=0 port
    for svc in "${SERVICES[@]}"; do
        pid=$(service_pid "$svc")
        port=$(service_port "$svc")
        if [[ -z $pid ]]; then
            echo "$svc: stopped ($HOST:$port)"
            rc=1
        elif http_ok "$(health_url "$svc")"; then
            echo "$svc: healthy (pid $pid, http://$HOST:$port)"
        else
            echo "$svc: unhealthy (pid $pid, http://$HOST:$port)"
            rc=1
        fi
    done
    if [[ -f $CLOUDS_YAML ]]; then
        echo "clouds.yaml: $CLOUDS_YAML"
    fi
    return "$rc"
}

cmd_env() {
    printf 'export OS_CLIENT_CONFIG_FILE=%q\n' "$CLOUDS_YAML"
    printf 'export LOCALCLOUD_DIR=%q\n' "$LC_DIR"
    printf 'export LOCALCLOUD_VENV=%q\n' "$LC_VENV"
    printf 'export LOCALCLOUD_KEYSTONE_URL=%q\n' "$KEYSTONE_URL/v3"
    printf 'export LOCALCLOUD_GLANCE_URL=%q\n' "$GLANCE_URL"
    printf 'export LOCALCLOUD_BARBICAN_URL=%q\n' "$BARBICAN_URL"
}

cmd_stop_service() {
    [[ -d $LC_DIR ]] || return 0
    with_lock
    stop_service "$1"
}

cmd_start_service() {
    [[ -f $LC_DIR/identity.done && -f $(service_ini "$1") ]] ||
        die "the cloud was never started in $LC_DIR; run '$0 start' first"
    with_lock
    load_secrets
    start_service "$1"
}

usage() {
    cat >&2 <<EOF
usage: $0 start|stop|purge|status|env
       $0 stop-service|start-service keystone|glance|barbican
EOF
    exit 2
}

main() {
    [[ $# -ge 1 ]] || usage
    validate_settings
    case $1 in
        start) cmd_start ;;
        stop) cmd_stop ;;
        purge) cmd_purge ;;
        status) cmd_status ;;
        env) cmd_env ;;
        stop-service | start-service)
            if [[ $# -ne 2 ]] || ! valid_service "$2"; then
                usage
            fi
            if [[ $1 == stop-service ]]; then
                cmd_stop_service "$2"
            else
                cmd_start_service "$2"
            fi
            ;;
        *) usage ;;
    esac
}

main "$@"
