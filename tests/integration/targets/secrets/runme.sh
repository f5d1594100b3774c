#!/usr/bin/env bash
# No secret reaches any log, output or file.
#
# Every module runs at -vvv against the local cloud with secrets that are a
# unique marker: the passwords of two real Keystone users (the owner in demo
# and a member in alt, given as cloud dicts and as members[].cloud), a wrong
# password of the real user demo, a signing key's passphrase and a LUKS
# passphrase; once succeeding and once failing argument validation (secrets.yml),
# then ad hoc with auth and cloud given as key=value and JSON strings.
# Syslog is captured on a private /dev/log (a mount namespace with an overlay
# on /dev, so nothing outside sees it). Then the marker must be nowhere:
# stdout, stderr, the captured syslog, ansible's log, HOME (~/.ansible) and
# TMPDIR of the runs, the junit callback's report; and the captured syslog must hold the modules'
# "Invoked with" lines, with auth_url and user names readable.
set -euo pipefail

if [[ ${OSIMAGE_SECRETS_NS:-} != 1 ]]; then
    OSIMAGE_SECRETS_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi

here=$(pwd)
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}
fixture=("$python" "$here/files/secrets_fixture.py")
work=$(mktemp -d "${TMPDIR:-/tmp}/osimage-secrets.XXXXXX")
# The marker lives only in secret/ (the playbook's vars file); search/ is
# everything the runs may write to, and is searched.
secret_dir=$work/secret
search=$work/search
mkdir -p "$search/home" "$search/tmp" "$search/data" "$work/ns"
listener=

say() { printf 'secrets: %s\n' "$*" >&2; }

cleanup() {
    local rc=$?
    if [[ -n $listener ]]; then
        kill "$listener" 2>/dev/null || true
        wait "$listener" 2>/dev/null || true
    fi
    if [[ -f $secret_dir/state.json ]]; then
        "${fixture[@]}" teardown "$secret_dir" >&2 || rc=1
    fi
    # The mounts end with this namespace. $work/ns holds a bind of the real
    # /dev: never remove anything below it while it is mounted.
    umount -R /dev 2>/dev/null || true
    umount -R "$work/ns" 2>/dev/null || true
    if mountpoint -q "$work/ns"; then
        rm -rf --one-file-system "$secret_dir" "$search"
    else
        rm -rf --one-file-system "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT

# -- a private /dev/log ---------------------------------------------------------
mount -t tmpfs -o mode=0700 osimage-secrets "$work/ns"
mkdir "$work/ns/upper" "$work/ns/work" "$work/ns/dev"
mount --rbind /dev "$work/ns/dev"
mount -t overlay overlay -o "lowerdir=/dev,upperdir=$work/ns/upper,workdir=$work/ns/work" /dev
for sub in pts shm mqueue hugepages; do
    if mountpoint -q "$work/ns/dev/$sub"; then
        mount --bind "$work/ns/dev/$sub" "/dev/$sub"
    fi
done
rm -f /dev/log
"${fixture[@]}" listen /dev/log "$search/syslog.log" &
listener=$!
for _ in $(seq 100); do
    [[ -S /dev/log ]] && break
    sleep 0.1
done
[[ -S /dev/log ]] || { say "the syslog listener did not start"; exit 1; }

# -- users and files ------------------------------------------------------------
"${fixture[@]}" setup "$secret_dir" "$search/data" >"$search/public.json"
marker=$(cat "$secret_dir/marker")
# The search below finds the marker where it is.
grep -qF -- "$marker" "$secret_dir/vars.json"

# Runs with a private HOME (so ~/.ansible), TMPDIR and ansible log, all searched.
run() {
    env HOME="$search/home" TMPDIR="$search/tmp" ANSIBLE_LOG_PATH="$search/ansible.log" JUNIT_OUTPUT_DIR="$search/junit" \
        ANSIBLE_LOCAL_TEMP="$search/home/.ansible/tmp" ANSIBLE_REMOTE_TMP="$search/home/.ansible/tmp" \
        ANSIBLE_NOCOLOR=1 "$@"
}

shown() { sed "s/$marker/<MARKER>/g" "$@"; }

rc=0
run ansible-playbook -vvv -i "$INVENTORY_PATH" "$here/secrets.yml" -e "@$search/public.json" \
    -e "secret_dir=$secret_dir" >"$search/playbook.out" 2>"$search/playbook.err" || rc=$?
if [[ $rc -ne 0 ]]; then
    shown "$search/playbook.out" | tail -n 80
    shown "$search/playbook.err" | tail -n 20 >&2
    say "the playbook failed (rc $rc)"
    exit 1
fi

# Ad hoc, as a user would type it: auth as key=value, cloud as JSON (a wrong
# password for the real user demo: each run fails at Keystone).
public() { "$python" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" <"$search/public.json"; }
auth_url=$(public auth_url)
names="username=demo project_name=demo user_domain_name=Default project_domain_name=Default"
run ansible -vvv -i "$INVENTORY_PATH" localhost -m osimage.glance.image_verify \
    -a "path=$search/data/disk.raw image=none auth='auth_url=$auth_url $names password=$marker-kv'" \
    >"$search/adhoc-kv.out" 2>"$search/adhoc-kv.err" || true
grep -qF "Keystone at $auth_url rejected the credentials of user demo" "$search/adhoc-kv.out" ||
    { shown "$search/adhoc-kv.out" | tail -n 40; say "ad hoc auth=key=value: no readable Keystone refusal"; exit 1; }
cloud_json="{\"auth\":{\"auth_url\":\"$auth_url\",\"username\":\"demo\",\"password\":\"$marker-json\",\
\"project_name\":\"demo\",\"user_domain_name\":\"Default\",\"project_domain_name\":\"Default\"}}"
run ansible -vvv -i "$INVENTORY_PATH" localhost -m osimage.glance.image_verify \
    -a "path=$search/data/disk.raw image=none cloud='$cloud_json'" \
    >"$search/adhoc-json.out" 2>"$search/adhoc-json.err" || true
grep -qF "Keystone at $auth_url rejected the credentials of user demo" "$search/adhoc-json.out" ||
    { shown "$search/adhoc-json.out" | tail -n 40; say "ad hoc cloud=JSON: no readable Keystone refusal"; exit 1; }

# -- the verdict ------------------------------------------------------------------
kill "$listener"
wait "$listener" 2>/dev/null || true
listener=

for module in image_upload image_verify image_share image_fetch image_convert; do
    grep -qE "ansible-[^ :]*$module: Invoked with" "$search/syslog.log" ||
        { say "no 'Invoked with' line of $module in the captured syslog"; exit 1; }
done
# Names, URLs and paths stay readable in the log and in the arguments -vvv shows.
for name in "$auth_url" "$(public owner_name)" "$(public member_name)"; do
    grep -qF "'$name'" "$search/syslog.log" || { say "$name is not readable in the captured syslog"; exit 1; }
    grep -qF "\"$name\"" "$search/playbook.out" || { say "$name is not readable in the playbook's output"; exit 1; }
done
grep -qF "\"private_key\": \"$(public signing_key)\"" "$search/playbook.out" ||
    { say "the signing key's path is not readable in the playbook's output"; exit 1; }

if found=$(grep -rlF -- "$marker" "$search"); then
    say "the marker (a secret) was found in:"
    while IFS= read -r path; do
        printf '  %s\n' "${path#"$search"/}" >&2
    done <<<"$found"
    exit 1
fi
say "no secret in stdout, stderr, syslog ($(wc -l <"$search/syslog.log") lines), ansible.log, HOME or TMPDIR"
