#!/usr/bin/env bash
# The one entry point for setting up and testing osimage.glance on a fresh Debian machine.
#
# Usage: tests/run.sh [COMMAND]
#   all          (default) setup, then the unit, ee, sanity, integration and molecule tests, then the
#                demo; ends with a "stages: N passed, N failed" line and fails if any stage failed
#   setup        system packages, the dev venv (.venv) and the local cloud (started)
#   unit         unit tests (ansible-test units)
#   ee           the AWX execution environment: ansible-builder renders its build context into
#                tests/output/ee/context (offline, no container engine) and tests/ee checks it
#   sanity       ansible-test sanity, no ignore file
#   integration  integration targets against the local cloud (ansible-test integration)
#   molecule [ROLE]  every role's documentation (ansible-doc -t role) and molecule scenario
#                (roles/ROLE/molecule/default) on localhost against the local cloud
#   demo         the main job: playbooks/image_to_volume.yml writes a sample qcow2 image from the local
#                cloud onto a loop device, twice (the second run must report changed=0), then
#                playbooks/demo_fetch.yml
#   bench        the benchmark (not a test); writes docs/benchmark.md
#   stop         stop the local cloud
#
# Environment: VENV (dev venv, default <repo>/.venv), LOCALCLOUD_* (see tests/localcloud/localcloud.sh),
# OSIMAGE_KEEP_CLOUD=1 keeps the local cloud running after "all".
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
export VENV=${VENV:-$repo/.venv}
export LOCALCLOUD_DIR=${LOCALCLOUD_DIR:-$repo/.localcloud}
export LOCALCLOUD_SCRIPT=$repo/tests/localcloud/localcloud.sh
output=$repo/tests/output
mkdir -p "$output"

say() { printf '\n=== %s\n' "$*"; }

system_packages() {
    local missing=()
    command -v qemu-img >/dev/null || missing+=(qemu-utils)
    command -v curl >/dev/null || missing+=(curl)
    command -v shellcheck >/dev/null || missing+=(shellcheck)
    command -v losetup >/dev/null || missing+=(mount)
    if [[ ${#missing[@]} -gt 0 ]]; then
        if [[ $(id -u) -ne 0 ]]; then
            echo "run.sh: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
            return 1
        fi
        say "apt-get install ${missing[*]}"
        apt-get update -qq >"$output/apt.log" 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$output/apt.log" 2>&1 ||
            { tail -n 30 "$output/apt.log" >&2; return 1; }
    fi
}

dev_venv() {
    local stamp=$VENV/.osimage-requirements
    if [[ -x $VENV/bin/python ]] && cmp -s "$repo/tests/requirements.txt" "$stamp"; then
        return 0
    fi
    say "dev venv $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r "$repo/tests/requirements.txt" >"$output/venv.log" 2>&1 ||
        { tail -n 30 "$output/venv.log" >&2; return 1; }
    cp "$repo/tests/requirements.txt" "$stamp"
}

cloud_up() {
    say "local cloud"
    local env_lines
    "$LOCALCLOUD_SCRIPT" start && env_lines=$("$LOCALCLOUD_SCRIPT" env) || return 1
    eval "$env_lines"
    export OS_CLIENT_CONFIG_FILE
}

# The collection as Ansible finds it: a collections path whose osimage/glance is this repo.
collections_path() {
    local root=${TMPDIR:-/tmp}/osimage-glance-collections
    mkdir -p "$root/ansible_collections/osimage"
    ln -sfn "$repo" "$root/ansible_collections/osimage/glance"
    export ANSIBLE_COLLECTIONS_PATH=$root
}

setup() { system_packages && dev_venv && cloud_up; }

unit() { "$repo/tests/ansible_test.sh" units; }

sanity() { "$repo/tests/ansible_test.sh" sanity; }

# The AWX execution environment's build context, rendered the way a user does before `podman build`
# (collection tarball, then ansible-builder create; no container engine, no network), then checked.
ee_context() {
    local build=$repo/build context=$output/ee/context
    if mkdir -p "$build" && rm -f "$build"/osimage-glance-*.tar.gz "$build/osimage-glance.tar.gz" &&
        "$VENV/bin/ansible-galaxy" collection build --output-path "$build" "$repo" >"$output/ee.log" 2>&1 &&
        mv "$build"/osimage-glance-*.tar.gz "$build/osimage-glance.tar.gz" &&
        rm -rf "$context" &&
        (cd "$repo" && "$VENV/bin/ansible-builder" create --file execution-environment.yml --context "$context" \
            --output-filename Containerfile >>"$output/ee.log" 2>&1); then
        echo "execution environment build context: $context (podman build -t osimage-glance-ee $context)"
    else
        tail -n 30 "$output/ee.log" >&2
        return 1
    fi
}

ee() { ee_context && EE_CONTEXT=$output/ee/context "$VENV/bin/pytest" -q -p no:cacheprovider "$repo/tests/ee"; }

# Stages run inside "if" in all(), where set -e is off: chain with && so a failed step fails the stage.
integration() {
    cloud_up &&
    # ansible-test strips the environment: hand on every LOCALCLOUD_* setting (ports, paths).
    ANSIBLE_TEST_PASSENV="$(compgen -v LOCALCLOUD_ | tr '\n' ' ')" "$repo/tests/ansible_test.sh" integration localcloud/
}

# The "changed" total of each check-mode step (molecule's `check`) in a molecule log, one per line.
molecule_check_changes() {
    awk '
        { gsub(/\033\[[0-9;]*m/, ""); sub(/^[ \t]*\342\224\202[ \t]*/, "") }
        /check(\]|:) Executing/ { in_check = 1; steps++; changed[steps] = 0; next }
        in_check && /^localhost +: / && match($0, /changed=[0-9]+/) { changed[steps] += substr($0, RSTART + 8, RLENGTH - 8) }
        in_check && /Executed: / { in_check = 0 }
        END { for (i = 1; i <= steps; i++) print changed[i] }
    ' "$1"
}

# The project's four steps, which molecule runs but does not judge in check mode: the check run on the
# clean state must predict a change, the check run after convergence must predict none.
molecule_check_mode_honest() {
    local changes
    mapfile -t changes < <(molecule_check_changes "$2")
    if [[ ${#changes[@]} -ne 2 ]]; then
        echo "molecule: $1: expected 2 check steps (before converge, after idempotence), found ${#changes[@]}" >&2
        return 1
    fi
    echo "molecule: $1: check mode predicted changed=${changes[0]} before converge, changed=${changes[1]} after"
    if [[ ${changes[0]} -eq 0 ]]; then
        echo "molecule: $1: check mode on the clean state predicted no change (the converge then changed things)" >&2
        return 1
    fi
    if [[ ${changes[1]} -ne 0 ]]; then
        echo "molecule: $1: check mode after convergence predicted changed=${changes[1]}; it must predict none" >&2
        return 1
    fi
}

# Role documentation first (cheap), then each role's scenario; a role without a scenario fails.
# molecule runs from the role's directory (at a collection root it would look for extensions/molecule).
molecule() {
    local only=${1:-} role roles=() broken=() dir plain=()
    # molecule colours its output even into a CI log (CI=true); keep logs plain text.
    [[ -t 1 ]] || plain=(NO_COLOR=1)
    for dir in "$repo"/roles/*/; do
        [[ -d $dir ]] || continue
        role=$(basename "$dir")
        if [[ -z $only || $role == "$only" ]]; then
            roles+=("$role")
        fi
    done
    if [[ -n $only && ${#roles[@]} -eq 0 ]]; then
        echo "run.sh: no role '$only' in $repo/roles" >&2
        return 2
    fi
    if [[ ${#roles[@]} -eq 0 ]]; then
        echo "molecule: no roles yet"
        return 0
    fi
    cloud_up && collections_path || return 1
    PATH=$VENV/bin:$PATH "$VENV/bin/python" "$repo/tests/roles/check_role_docs.py" "${roles[@]}" ||
        broken+=("documentation")
    for role in "${roles[@]}"; do
        say "molecule: $role"
        if [[ ! -f $repo/roles/$role/molecule/default/molecule.yml ]]; then
            echo "role $role has no molecule scenario (roles/$role/molecule/default/molecule.yml)" >&2
            broken+=("$role")
        elif ! (cd "$repo/roles/$role" &&
            env ${plain[@]+"${plain[@]}"} PATH="$VENV/bin:$PATH" "$VENV/bin/molecule" test 2>&1 |
                tee "$output/molecule-$role.log"; exit "${PIPESTATUS[0]}") ||
            ! molecule_check_mode_honest "$role" "$output/molecule-$role.log"; then
            broken+=("$role")
        fi
    done
    echo
    if [[ ${#broken[@]} -gt 0 ]]; then
        echo "molecule: failed: ${broken[*]}" >&2
        return 1
    fi
    echo "molecule: ${#roles[@]} role(s) passed"
}

# Only called from demo_volume's EXIT trap, which shellcheck 0.9 does not see.
# shellcheck disable=SC2317
demo_volume_cleanup() {
    local dev
    [[ -n $demo_workdir ]] || return 0
    for dev in $(losetup --noheadings --output NAME --associated "$demo_workdir/volume.img" 2>/dev/null); do
        losetup --detach "$dev" && echo "demo: detached $dev"
    done
    "$VENV/bin/python" "$repo/tests/integration/targets/setup_glance_fixture/files/glance_fixture.py" \
        delete --cloud demo --name "$demo_image" >/dev/null || echo "demo: could not delete image $demo_image" >&2
    rm -rf "$demo_workdir"
}

# Run playbooks/image_to_volume.yml once; fail unless its recap says changed=$1 (a number, or "any>0").
demo_volume_run() {
    local want=$1 log=$demo_workdir/run-$2.log changed
    say "ansible-playbook playbooks/image_to_volume.yml (run $2)"
    "$VENV/bin/ansible-playbook" "$repo/playbooks/image_to_volume.yml" -e image_to_volume_cloud=demo \
        -e "image_to_volume_image=$demo_image" -e "image_to_volume_volume=$demo_loop" | tee "$log"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || return 1
    changed=$(sed -n 's/^localhost *: .*changed=\([0-9]*\).*/\1/p' "$log")
    echo "demo: run $2 of playbooks/image_to_volume.yml: changed=$changed"
    if [[ -z $changed ]] || { [[ $want == "any>0" ]] && [[ $changed -eq 0 ]]; } ||
        { [[ $want != "any>0" ]] && [[ $changed -ne $want ]]; }; then
        echo "demo: run $2 should have reported changed=$want" >&2
        return 1
    fi
}

# The main job: a sample qcow2 image in Glance (playbooks/demo_sample_image.yml) written onto a loop
# device, the volume, by playbooks/image_to_volume.yml twice: the first run writes (changed), the second
# finds the volume holding the image (changed=0); then the volume must hold the image's disk
# (qemu-img compare). The loop device is detached and the image deleted whatever happens.
demo_volume() (
    demo_workdir='' demo_image=osimage-demo-volume-$$
    trap demo_volume_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    demo_workdir=$(mktemp -d /var/tmp/osimage-demo.XXXXXX) || exit 1
    "$VENV/bin/ansible-playbook" "$repo/playbooks/demo_sample_image.yml" \
        -e "demo_image=$demo_image" -e "demo_workdir=$demo_workdir" || exit 1
    truncate --size 64M "$demo_workdir/volume.img" &&
        demo_loop=$(losetup --find --show "$demo_workdir/volume.img") || exit 1
    echo "demo: volume $demo_loop (64 MiB loop device)"
    demo_volume_run "any>0" 1 && demo_volume_run 0 2 || exit 1
    qemu-img compare -f qcow2 -F raw "$demo_workdir/sample.qcow2" "$demo_loop" || exit 1
    echo "demo: $demo_loop holds the image's disk; the second run changed nothing"
)

demo() {
    cloud_up && collections_path && demo_volume &&
    say "ansible-playbook playbooks/demo_fetch.yml" &&
    "$VENV/bin/ansible-playbook" "$repo/playbooks/demo_fetch.yml"
}

bench() {
    cloud_up && collections_path &&
    { [[ -x $VENV/bin/openstack ]] || "$VENV/bin/pip" install -q python-openstackclient >"$output/osc.log" 2>&1; } &&
    PATH=$VENV/bin:$PATH "$VENV/bin/python" "$repo/tests/benchmark/bench.py" --write "$repo/docs/benchmark.md"
}

all() {
    local passed=0 failed=0 stage
    setup
    for stage in unit ee sanity integration molecule demo; do
        say "stage: $stage"
        if "$stage"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            echo "stage $stage FAILED" >&2
        fi
    done
    if [[ ${OSIMAGE_KEEP_CLOUD:-0} != 1 ]]; then
        "$LOCALCLOUD_SCRIPT" stop || true
    fi
    echo
    echo "stages: $passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}

command=${1:-all}
case "$command" in
    all) all ;;
    setup) setup ;;
    unit | sanity | ee) dev_venv && "$command" ;;
    integration | demo | bench) system_packages && dev_venv && "$command" ;;
    molecule) system_packages && dev_venv && molecule "${2:-}" ;;
    stop) "$LOCALCLOUD_SCRIPT" stop ;;
    -h | --help | help) sed -n '2,/^set -euo/{/^#/{s/^# \{0,1\}//;p;};}' "${BASH_SOURCE[0]}" ;;
    *) echo "run.sh: unknown command '$command' (see tests/run.sh help)" >&2; exit 2 ;;
esac
