#!/usr/bin/env bash
# The one entry point for setting up and testing osimage.glance on a fresh Debian machine.
#
# Usage: tests/run.sh [COMMAND]
#   all          (default) setup, then the unit, ee, sanity, integration, molecule and gates stages, then
#                the demo; ends with a table of the stages (result and time) and a "stages: N passed,
#                N failed" line, and fails if any stage failed
#   setup        system packages, the dev venv (.venv) and the local cloud (started)
#   unit         unit tests (ansible-test units)
#   ee           the AWX execution environment: ansible-builder renders its build context into
#                tests/output/ee/context (offline, no container engine) and tests/ee checks it
#   sanity [VERSION]  ansible-test sanity, no ignore file, on every ansible-core of SANITY_CORES (each
#                minor release meta/runtime.yml admits, 2.16 to 2.21), or on VERSION only
#   gates        what Galaxy and Automation Hub apply to an upload: ansible-lint (production profile),
#                antsibull-docs lint-collection-docs --plugin-docs, antsibull-changelog lint, the
#                pre-commit hooks (.pre-commit-config.yaml: ruff, layout rules), and galaxy-importer on
#                the built tarball; any error or warning fails the stage
#   integration  integration targets against the local cloud (ansible-test integration)
#   molecule [ROLE]  every role's documentation (ansible-doc -t role) and molecule scenario
#                (roles/ROLE/molecule/default) on localhost against the local cloud
#   demo         the main job: playbooks/image_to_volume.yml writes a sample qcow2 image from the local
#                cloud onto a loop device, twice (the second run must report changed=0), then
#                playbooks/demo_fetch.yml, then playbooks/share_and_fetch.yml (check mode on a clean
#                cloud, real, again, check mode again)
#   bench        the benchmark (not a test); writes docs/benchmark.md
#   stop         stop the local cloud
#
# Environment: VENV (dev venv, default <repo>/.venv), LOCALCLOUD_* (see tests/localcloud/localcloud.sh),
# OSIMAGE_KEEP_CLOUD=1 keeps the local cloud running after "all", APT_LOCK_TIMEOUT (seconds to wait
# for another apt or dpkg, default 600), SANITY_CORES (ansible-core:python pairs for sanity).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
export VENV=${VENV:-$repo/.venv}
export LOCALCLOUD_DIR=${LOCALCLOUD_DIR:-$repo/.localcloud}
export LOCALCLOUD_SCRIPT=$repo/tests/localcloud/localcloud.sh
output=$repo/tests/output
mkdir -p "$output"

say() { printf '\n=== %s\n' "$*"; }

# ansible-core versions (and the Python each runs on) that sanity covers: every minor release
# meta/runtime.yml's requires_ansible admits, the dev venv's (tests/requirements.txt) among them,
# each at its newest patch release (2.20+ needs Python 3.12+).
SANITY_CORES=${SANITY_CORES:-"2.16.19:3.11 2.17.14:3.11 2.18.19:3.11 2.19.14:3.11 2.20.10:3.13 2.21.5:3.13"}

# The locks apt and dpkg hold while they run (unattended-upgrades on a fresh VM, for one).
APT_LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock)

# Prints which process holds an apt or dpkg lock and succeeds; fails when all are free. Asks with
# F_GETLK, which only looks: taking the lock to test it could make a starting apt fail.
apt_lock_holder() {
    python3 - "${APT_LOCKS[@]}" <<'EOF'
import fcntl
import os
import struct
import sys

for path in sys.argv[1:]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        continue
    try:
        query = struct.pack('hhqqi4x', fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        kind, _, _, _, pid = struct.unpack('hhqqi4x', fcntl.fcntl(fd, fcntl.F_GETLK, query))
    finally:
        os.close(fd)
    if kind != fcntl.F_UNLCK:
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                command = f.read().replace(b'\0', b' ').decode(errors='replace').strip()
        except OSError:
            command = '?'
        print('%s is held by process %d (%s)' % (path, pid, command))
        sys.exit(0)
sys.exit(1)
EOF
}

# Waits (at most APT_LOCK_TIMEOUT seconds) until no other apt or dpkg runs; fails with what to do.
wait_for_apt() {
    local timeout=${APT_LOCK_TIMEOUT:-600} waited=0 holder
    while holder=$(apt_lock_holder); do
        if [[ $waited -ge $timeout ]]; then
            echo "run.sh: apt is still busy after ${timeout}s: $holder. Let it finish (or stop it) and run" \
                "tests/run.sh again; APT_LOCK_TIMEOUT=SECONDS waits longer." >&2
            return 1
        fi
        if [[ $((waited % 30)) -eq 0 ]]; then
            echo "run.sh: waiting for apt: $holder (${waited}s of at most ${timeout}s)"
        fi
        sleep 5
        waited=$((waited + 5))
    done
}

# apt-get, after waiting for another apt; its own lock timeout covers the moment between the two.
apt_get() {
    wait_for_apt && apt-get -o "DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT:-600}" "$@"
}

system_packages() {
    local missing=()
    command -v qemu-img >/dev/null || missing+=(qemu-utils)
    command -v curl >/dev/null || missing+=(curl)
    command -v shellcheck >/dev/null || missing+=(shellcheck)
    command -v losetup >/dev/null || missing+=(mount)
    { command -v setpriv && command -v prlimit; } >/dev/null || missing+=(util-linux)
    if [[ ${#missing[@]} -gt 0 ]]; then
        if [[ $(id -u) -ne 0 ]]; then
            echo "run.sh: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
            return 1
        fi
        say "apt-get install ${missing[*]} (log: $output/apt.log)"
        { apt_get update -qq >"$output/apt.log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt_get install -y -qq "${missing[@]}" >>"$output/apt.log" 2>&1; } ||
            { tail -n 30 "$output/apt.log" >&2; return 1; }
    fi
}

# A venv at $1 made by $2 (a python) with the packages of $3 (a requirements file) or of the words
# after it; left alone when it already holds them. Shows each package as pip takes it; the full
# output goes to $output/venv-<name>.log.
make_venv() {
    local venv=$1 python=$2 want log what
    shift 2
    if [[ -f $1 ]]; then
        want=$(cat "$1") what=${1#"$repo"/}
    else
        want=$(printf '%s\n' "$@") what="$*"
    fi
    if [[ -x $venv/bin/python ]] && [[ $want == "$(cat "$venv/.osimage-requirements" 2>/dev/null)" ]]; then
        return 0
    fi
    log=$output/venv-$(basename "$venv" | sed 's/^\.//').log
    say "venv $venv: installing $what (log: $log)"
    rm -rf "$venv"
    "$python" -m venv "$venv" >"$log" 2>&1 &&
        "$venv/bin/pip" install --disable-pip-version-check --progress-bar off -r /dev/stdin <<<"$want" 2>&1 |
        tee -a "$log" | grep --line-buffered -E '^(Collecting|Successfully installed)' |
            sed -u -e 's/ (from .*//' -e 's/^Collecting /  collecting /' -e 's/^Successfully installed /  installed: /'
    if [[ ${PIPESTATUS[0]} -ne 0 ]]; then
        tail -n 30 "$log" >&2
        echo "run.sh: could not make the venv $venv; see $log" >&2
        return 1
    fi
    printf '%s' "$want" >"$venv/.osimage-requirements"
}

dev_venv() { make_venv "$VENV" python3 "$repo/tests/requirements.txt"; }

gates_venv() { make_venv "$repo/.venv-gates" python3 "$repo/tests/requirements-gates.txt"; }

# The python3.X for sanity on a newer ansible-core: on PATH, or pyenv's.
find_python() {
    local found='' candidate
    # pyenv's shim for a version that is installed but not selected fails when run, so each
    # candidate must answer.
    for candidate in "$(command -v "python$1" 2>/dev/null)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/"python$1"; do
        if [[ -z $found && -x $candidate ]] && "$candidate" -c '' 2>/dev/null; then
            found=$candidate
        fi
    done
    if [[ -z $found ]]; then
        echo "run.sh: python$1 is needed for sanity on ansible-core $2; install it (pyenv install $1) or set SANITY_CORES" >&2
        return 1
    fi
    echo "$found"
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

# ansible-test sanity on each ansible-core of SANITY_CORES (or only the one given), each in a venv of
# its own (.venv-core-VERSION) except the dev venv's version.
sanity() {
    local only=${1:-} pair core python venv passed=() failed=() ran=0
    for pair in $SANITY_CORES; do
        core=${pair%%:*} python=${pair#*:}
        if [[ -n $only && $core != "$only" && $core != "$only".* ]]; then
            continue
        fi
        ran=$((ran + 1))
        if grep -qx "ansible-core==$core" "$repo/tests/requirements.txt"; then
            venv=$VENV
        else
            venv=$repo/.venv-core-$core
            if ! python=$(find_python "$python" "$core") || ! make_venv "$venv" "$python" "ansible-core==$core"; then
                failed+=("$core")
                continue
            fi
        fi
        say "ansible-test sanity on ansible-core $core (python ${pair#*:})"
        if VENV=$venv ANSIBLE_TEST_PYTHON=${pair#*:} "$repo/tests/ansible_test.sh" sanity; then
            passed+=("$core")
        else
            failed+=("$core")
        fi
    done
    if [[ $ran -eq 0 ]]; then
        echo "run.sh: no ansible-core '$only' in SANITY_CORES ($SANITY_CORES)" >&2
        return 2
    fi
    if [[ ${#failed[@]} -gt 0 ]]; then
        echo "sanity: failed on ansible-core ${failed[*]}" >&2
        return 1
    fi
    echo "sanity: passed on ansible-core ${passed[*]}"
}

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

# Run a demo playbook once (ansible-playbook PLAYBOOK ARGS...), its output also in LOG; fail unless
# its recap says changed=WANT (a number, or "any>0").
demo_playbook() {
    local want=$1 log=$2 playbook=$3 changed
    shift 3
    say "ansible-playbook $playbook $*"
    "$VENV/bin/ansible-playbook" "$repo/$playbook" "$@" | tee "$log"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || return 1
    changed=$(sed -n 's/^localhost *: .*changed=\([0-9]*\).*/\1/p' "$log")
    echo "demo: $playbook: changed=$changed"
    if [[ -z $changed ]] || { [[ $want == "any>0" ]] && [[ $changed -eq 0 ]]; } ||
        { [[ $want != "any>0" ]] && [[ $changed -ne $want ]]; }; then
        echo "demo: this run of $playbook should have reported changed=$want" >&2
        return 1
    fi
}

# Run playbooks/image_to_volume.yml once (run number $2); it must report changed=$1.
demo_volume_run() {
    demo_playbook "$1" "$demo_workdir/run-$2.log" playbooks/image_to_volume.yml -e image_to_volume_cloud=demo \
        -e "image_to_volume_image=$demo_image" -e "image_to_volume_volume=$demo_loop"
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

# playbooks/share_and_fetch.yml on a clean cloud: check mode first (must predict a change and create
# no image), then for real (changed), again (changed=0) and in check mode again (changed=0). The image
# and the work directory are removed whatever happens.
demo_share_cleanup() {
    "$VENV/bin/python" "$repo/tests/integration/targets/setup_glance_fixture/files/glance_fixture.py" \
        delete --cloud demo --name "$share_image" >/dev/null || echo "demo: could not delete image $share_image" >&2
    rm -rf "$share_workdir"
}

demo_share_count() {
    "$VENV/bin/python" -c 'import sys, openstack
print(len(list(openstack.connect(cloud="demo").image.images(name=sys.argv[1]))))' "$share_image"
}

# Run playbooks/share_and_fetch.yml once ($2 names the run; further arguments: --check); it must
# report changed=$1.
demo_share_run() {
    local want=$1 label=$2
    shift 2
    demo_playbook "$want" "$share_log-$label.log" playbooks/share_and_fetch.yml -e "share_image=$share_image" \
        -e "share_workdir=$share_workdir" "$@"
}

demo_share() (
    share_image=osimage-demo-share-$$ share_workdir=/var/tmp/osimage-demo-share-$$ share_log=$output/demo-share
    trap demo_share_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    demo_share_cleanup
    demo_share_run "any>0" check-clean --check || exit 1
    [[ $(demo_share_count) == 0 ]] || { echo "demo: check mode created an image" >&2; exit 1; }
    demo_share_run "any>0" first && demo_share_run 0 second && demo_share_run 0 check-converged --check || exit 1
    echo "demo: the chain upload -> share -> accept -> fetch -> verify ran across two projects without admin"
)

demo() {
    cloud_up && collections_path && demo_volume &&
    say "ansible-playbook playbooks/demo_fetch.yml" &&
    "$VENV/bin/ansible-playbook" "$repo/playbooks/demo_fetch.yml" &&
    demo_share &&
    echo "demo: proven: a qcow2 image in Glance was written onto a loop device and holds the image's disk" \
        "(qemu-img compare), a second run changed nothing; image_fetch downloaded a verified image twice," \
        "the second time changing nothing; and an image was uploaded, shared, accepted, fetched and verified" \
        "by two non-admin projects, with honest check mode before and after and no change on the re-run"
}

# One gate: runs the command with its output in $output/gates/NAME.log and fails when it fails; with
# --no-warnings also when its output has an "ERROR:" or "WARNING:" line (galaxy-importer reports
# both and still exits 0).
gate() {
    local strict=0 name log
    if [[ $1 == --no-warnings ]]; then
        strict=1
        shift
    fi
    name=$1 log=$output/gates/$1.log
    shift
    echo "gate: $name"
    if ! "$@" >"$log" 2>&1 || { [[ $strict -eq 1 ]] && grep -qE '^(ERROR|WARNING):' "$log"; }; then
        tail -n 60 "$log" >&2
        echo "gate $name FAILED (log: $log)" >&2
        return 1
    fi
}

# The collection as Galaxy sees it: the tarball ansible-galaxy builds from this repository.
built_tarball() {
    rm -rf "$output/gates/build" && mkdir -p "$output/gates/build" &&
        "$VENV/bin/ansible-galaxy" collection build --output-path "$output/gates/build" "$repo" >/dev/null &&
        ls "$output/gates/build"/*.tar.gz
}

gates() {
    local failed=() tarball bin=$repo/.venv-gates/bin
    mkdir -p "$output/gates"
    gates_venv && collections_path || return 1
    (cd "$repo" && gate ansible-lint env PATH="$bin:$PATH" "$bin/ansible-lint" --profile production --offline --nocolor) ||
        failed+=(ansible-lint)
    (cd "$ANSIBLE_COLLECTIONS_PATH/ansible_collections/osimage/glance" &&
        gate antsibull-docs env PATH="$bin:$PATH" "$bin/antsibull-docs" lint-collection-docs --plugin-docs .) ||
        failed+=(antsibull-docs)
    (cd "$repo" && gate antsibull-changelog "$bin/antsibull-changelog" lint) || failed+=(antsibull-changelog)
    # The pre-commit hooks a contributor runs (ruff with .ruff.toml, the layout rules); its ansible-lint
    # hook is the gate above with the same version and profile, so it is not run twice.
    (cd "$repo" && gate pre-commit env PATH="$bin:$PATH" SKIP=ansible-lint "$bin/pre-commit" run --all-files --color never) ||
        failed+=(pre-commit)
    if tarball=$(built_tarball); then
        (cd "$output/gates" && gate --no-warnings galaxy-importer env PATH="$bin:$PATH" \
            GALAXY_IMPORTER_CONFIG="$repo/tests/galaxy-importer.cfg" "$bin/python" -m galaxy_importer.main "$tarball") ||
            failed+=(galaxy-importer)
    else
        echo "gates: ansible-galaxy collection build failed" >&2
        failed+=(build)
    fi
    if [[ ${#failed[@]} -gt 0 ]]; then
        echo "gates: failed: ${failed[*]}" >&2
        return 1
    fi
    echo "gates: ansible-lint (production), antsibull-docs, antsibull-changelog, pre-commit and galaxy-importer passed on $(basename "$tarball")"
}

bench() {
    cloud_up && collections_path &&
    { [[ -x $VENV/bin/openstack ]] || "$VENV/bin/pip" install -q python-openstackclient >"$output/osc.log" 2>&1; } &&
    # openstack.cloud (image_info's peer) comes with the PyPI ansible package, in a venv of its own.
    make_venv "$repo/.venv-peers" python3 ansible==12.3.0 openstacksdk==4.22.0 &&
    PATH=$VENV/bin:$PATH "$VENV/bin/python" "$repo/tests/benchmark/bench.py" --peer-ansible "$repo/.venv-peers/bin/ansible" \
        --write "$repo/docs/benchmark.md"
}

all() {
    local npassed=0 nfailed=0 stage start seconds result rows=() failed_stages=()
    mkdir -p "$output"
    for stage in setup unit ee sanity integration molecule gates demo; do
        say "stage: $stage"
        start=$SECONDS
        if [[ $stage != setup && ${rows[0]} == *FAILED* ]]; then
            result="skipped (setup failed)"
            nfailed=$((nfailed + 1))
        elif "$stage" > >(tee "$output/stage-$stage.log") 2>&1; then
            result=passed
            npassed=$((npassed + 1))
        else
            result=FAILED
            nfailed=$((nfailed + 1))
            echo "stage $stage FAILED" >&2
            failed_stages+=("$stage")
        fi
        seconds=$((SECONDS - start))
        rows+=("$(printf '%-12s %-24s %3dm%02ds' "$stage" "$result" $((seconds / 60)) $((seconds % 60)))")
    done
    if [[ ${OSIMAGE_KEEP_CLOUD:-0} != 1 ]]; then
        "$LOCALCLOUD_SCRIPT" stop || true
    fi
    echo
    printf '%-12s %-24s %s\n' stage result time
    printf '%s\n' "${rows[@]}"
    # The tail CI shows is this summary: name what failed, not just which stage.
    for stage in "${failed_stages[@]}"; do
        echo
        echo "why $stage failed (failure lines of $output/stage-$stage.log):"
        grep -E 'fatal: \[|FAILED!|^FAILED|^ERROR|Error:|AssertionError|^E  |Traceback' "$output/stage-$stage.log" | tail -n 40 || true
    done
    echo "stages: $npassed passed, $nfailed failed (${SECONDS}s in all)"
    [[ $nfailed -eq 0 ]]
}

command=${1:-all}
case "$command" in
    all) all ;;
    setup) setup ;;
    unit | ee) dev_venv && "$command" ;;
    sanity) dev_venv && sanity "${2:-}" ;;
    gates) dev_venv && gates ;;
    integration | demo | bench) system_packages && dev_venv && "$command" ;;
    molecule) system_packages && dev_venv && molecule "${2:-}" ;;
    stop) "$LOCALCLOUD_SCRIPT" stop ;;
    -h | --help | help) sed -n '2,/^set -euo/{/^#/{s/^# \{0,1\}//;p;};}' "${BASH_SOURCE[0]}" ;;
    *) echo "run.sh: unknown command '$command' (see tests/run.sh help)" >&2; exit 2 ;;
esac
