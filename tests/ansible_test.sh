#!/usr/bin/env bash
# Run ansible-test (sanity, units or integration) against this collection.
#
# Usage: tests/ansible_test.sh SUBCOMMAND [ARGS...]
#   SUBCOMMAND  sanity | units | integration
#   ARGS        passed on to `ansible-test SUBCOMMAND` (targets, --test NAME, -v, ...)
#
# Environment:
#   VENV                 dev virtualenv holding ansible-core (default: <repo>/.venv)
#   ANSIBLE_TEST_PYTHON  python version ansible-test tests with (default: 3.11)
#   ANSIBLE_TEST_LOG     log for pip/apt output (default: <repo>/tests/output/ansible_test_SUBCOMMAND.log)
#   ANSIBLE_TEST_KEEP_STAGE=1  keep the staging directory (printed) for debugging
#   OS_*                 (integration) every OS_* variable, e.g. OS_CLIENT_CONFIG_FILE and
#                        OS_CLOUD, is handed to the playbooks and modules of every target
#   ANSIBLE_TEST_PASSENV (integration) space-separated names of further variables to hand on
#
# ansible-test needs the collection at .../ansible_collections/NAMESPACE/NAME, so the
# repository's tracked and untracked-but-not-ignored files are copied to a staging
# directory under ${TMPDIR:-/tmp}, which is removed on exit. Results (junit, logs, ...)
# are copied back to <repo>/tests/output/. ansible-test's own virtualenvs and caches
# stay in ~/.ansible/test, so later runs are fast.
#
# All subcommands run with --local --python $ANSIBLE_TEST_PYTHON, i.e. the controller
# and the modules under test run in $VENV's python (which has openstacksdk & co.);
# sanity tests still get their own pinned virtualenvs in ~/.ansible/test/venv.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/{/^#/{s/^# \{0,1\}//;p;};}' "${BASH_SOURCE[0]}" >&2
}

if [[ $# -lt 1 ]]; then
    usage
    exit 2
fi
subcommand=$1
shift
case "${subcommand}" in
    sanity | units | integration) ;;
    -h | --help | help)
        usage
        exit 0
        ;;
    *)
        echo "ansible_test.sh: unknown subcommand '${subcommand}' (expected sanity, units or integration)" >&2
        usage
        exit 2
        ;;
esac

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
venv=${VENV:-${repo_root}/.venv}
python_version=${ANSIBLE_TEST_PYTHON:-3.11}
log_file=${ANSIBLE_TEST_LOG:-${repo_root}/tests/output/ansible_test_${subcommand}.log}
venv_python=${venv}/bin/python
ansible_test=${venv}/bin/ansible-test

if [[ ! -x ${venv_python} || ! -x ${ansible_test} ]]; then
    echo "ansible_test.sh: ${venv} has no python/ansible-test; create it from tests/requirements.txt first (or set VENV)" >&2
    exit 2
fi

mkdir -p "$(dirname "${log_file}")"
: >"${log_file}"

log() {
    printf 'ansible_test.sh: %s\n' "$*" >&2
}

# Run a noisy command with its output in the log; show the log's tail if it fails.
quietly() {
    printf '\n$ %s\n' "$*" >>"${log_file}"
    if ! "$@" >>"${log_file}" 2>&1; then
        log "command failed: $* (last lines of ${log_file}):"
        tail -n 30 "${log_file}" >&2
        return 1
    fi
}

# Put our venv first on PATH: ansible-test runs ansible-playbook/pytest from there.
export PATH="${venv}/bin:${PATH}"

# --- collection name from galaxy.yml ------------------------------------------------
read -r coll_namespace coll_name < <(
    "${venv_python}" - "${repo_root}/galaxy.yml" <<'EOF'
import sys
import yaml
with open(sys.argv[1], encoding='utf-8') as f:
    meta = yaml.safe_load(f)
print(meta['namespace'], meta['name'])
EOF
)

# --- staging ------------------------------------------------------------------------
stage_root=$(mktemp -d "${TMPDIR:-/tmp}/ansible-test-${coll_namespace}-${coll_name}.XXXXXX")
coll_dir=${stage_root}/ansible_collections/${coll_namespace}/${coll_name}

# Only ever invoked by the EXIT trap, which shellcheck 0.9 does not see.
# shellcheck disable=SC2317
cleanup() {
    local rc=$?
    if [[ -d ${coll_dir}/tests/output ]]; then
        # Keep results for inspection (replacing older ones); ansible-test's scratch
        # space (.tmp) is not needed.
        mkdir -p "${repo_root}/tests/output"
        (cd "${repo_root}/tests/output" && rm -rf bot coverage data junit logs reports)
        tar -C "${coll_dir}/tests/output" --exclude=./.tmp -cf - . |
            tar -C "${repo_root}/tests/output" -xf - || true
    fi
    if [[ ${ANSIBLE_TEST_KEEP_STAGE:-} == 1 ]]; then
        log "staging directory kept: ${coll_dir}"
    else
        rm -rf "${stage_root}"
    fi
    exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "${coll_dir}"
if git -C "${repo_root}" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked plus untracked-but-not-ignored files (so .venv, .localcloud, tests/output
    # and caches stay out); skip tracked files deleted from the work tree.
    git -C "${repo_root}" ls-files -z --cached --others --exclude-standard |
        (
            cd "${repo_root}"
            while IFS= read -r -d '' f; do
                if [[ -e ${f} || -L ${f} ]]; then
                    printf '%s\0' "${f}"
                fi
            done
        ) |
        tar -C "${repo_root}" --null --no-recursion -T - -cf - |
        tar -C "${coll_dir}" -xf -
else
    tar -C "${repo_root}" --exclude=./.git --exclude=./.venv --exclude=./.localcloud \
        --exclude=./tests/output --exclude='__pycache__' --exclude='*.pyc' \
        --exclude=./.pytest_cache -cf - . |
        tar -C "${coll_dir}" -xf -
fi

# --- offline pip bootstrap ----------------------------------------------------------
# ansible-test creates its virtualenvs with `python -m venv --without-pip` and then runs
# a "get-pip" script, downloaded from a host outside PyPI unless it is already cached at
# ~/.ansible/test/cache/get_pip_<version>.py. It runs that script (through its quiet_pip.py
# wrapper, as __main__) with argv like: --disable-pip-version-check pip==24.2 --no-setuptools
# --no-wheel. Our own replacement installs those packages from the package index with the
# pip wheel bundled with the interpreter (ensurepip), so only PyPI is needed.
pip_version=$(
    "${venv_python}" - "${python_version}" <<'EOF'
import re
import sys
import types
try:
    from ansible_test._internal.python_requirements import get_venv_packages
    print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))['pip'])
except Exception:  # other ansible-test versions: read the default from the source
    import ansible_test._internal.python_requirements as pr
    with open(pr.__file__, encoding='utf-8') as f:
        print(re.search(r"pip='([^']+)'", f.read()).group(1))
EOF
)
bootstrap_cache=${HOME}/.ansible/test/cache
bootstrap_file=${bootstrap_cache}/get_pip_${pip_version//./_}.py
mkdir -p "${bootstrap_cache}"
bootstrap_tmp=$(mktemp "${bootstrap_cache}/.get_pip.XXXXXX")
cat >"${bootstrap_tmp}" <<'EOF'
"""Offline stand-in for the get-pip script ansible-test downloads (written by tests/ansible_test.sh).

Runs inside a virtualenv that has no pip: installs the requested packages (argv, e.g.
``pip==24.2``) from the package index using the pip wheel bundled with the interpreter.
"""
import glob
import os
import sys

IGNORED_OPTIONS = ('--no-setuptools', '--no-wheel')


def wheel_version(path):
    """Version of a pip wheel as a tuple of ints, for sorting."""
    version = os.path.basename(path).split('-')[1]
    return tuple(int(part) if part.isdigit() else 0 for part in version.split('.'))


def find_pip_wheel():
    """Return the newest pip wheel shipped with this interpreter (ensurepip) or the OS."""
    directories = []
    try:
        import ensurepip
    except ImportError:
        pass
    else:
        directories.append(os.path.join(os.path.dirname(ensurepip.__file__), '_bundled'))
    directories.append('/usr/share/python-wheels')  # Debian/Ubuntu python3-pip-whl
    for directory in directories:
        wheels = sorted(glob.glob(os.path.join(directory, 'pip-*.whl')), key=wheel_version)
        if wheels:
            return wheels[-1]
    return None


def main():
    wheel = find_pip_wheel()
    if wheel is None:
        try:
            import pip  # noqa: F401  # a pip already present can do the job too
        except ImportError:
            sys.exit('no pip wheel found for %s (ensurepip or python3-pip-whl is needed)' % sys.executable)
    else:
        sys.path.insert(0, wheel)
    from pip._internal.cli.main import main as pip_main
    args = [arg for arg in sys.argv[1:] if arg not in IGNORED_OPTIONS]
    sys.exit(pip_main(['install'] + args))


if __name__ == '__main__':
    main()
EOF
if cmp -s "${bootstrap_tmp}" "${bootstrap_file}"; then
    rm -f "${bootstrap_tmp}"
else
    mv -f "${bootstrap_tmp}" "${bootstrap_file}"
fi

# --- per-subcommand preparation -----------------------------------------------------
env_args=(--local --python "${python_version}")
extra_args=()

# pip-install requirement files into the dev venv (ansible-test's --requirements would
# do the same, but with its output mixed into the test output).
pip_install_into_venv() {
    local args=()
    local req
    for req in "$@"; do
        if [[ -f ${req} ]]; then
            args+=(-r "${req}")
        fi
    done
    if [[ ${#args[@]} -gt 0 ]]; then
        log "installing test requirements into ${venv} (output: ${log_file})"
        quietly "${venv_python}" -m pip install --disable-pip-version-check \
            -c "${ansible_test_data}/requirements/constraints.txt" "${args[@]}"
    fi
}

ansible_test_data=$("${venv_python}" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_data"))')

case "${subcommand}" in
    sanity)
        if ! command -v shellcheck >/dev/null 2>&1; then
            if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
                log "installing shellcheck with apt-get (output: ${log_file})"
                quietly apt-get -o "DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT:-600}" update
                quietly env DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT:-600}" install -y --no-install-recommends shellcheck
            else
                # Without the binary ansible-test would only warn and skip it; say so loudly.
                log "WARNING: shellcheck is not installed and cannot be installed here; skipping the shellcheck sanity test"
                extra_args+=(--skip-test shellcheck)
            fi
        fi
        # Create/refresh the per-test pinned virtualenvs up front so pip's output goes to
        # the log; this is a no-op when they exist already in ~/.ansible/test/venv.
        log "preparing sanity virtualenvs in ~/.ansible/test/venv (output: ${log_file})"
        (cd "${coll_dir}" && quietly "${ansible_test}" sanity --prime-venvs "${env_args[@]}")
        ;;
    units)
        pip_install_into_venv "${ansible_test_data}/requirements/units.txt" "${coll_dir}/tests/unit/requirements.txt"
        ;;
    integration)
        pip_install_into_venv "${coll_dir}/tests/integration/requirements.txt"
        # ansible-test runs playbooks with a scrubbed environment (PATH, HOME, LC_ALL, ...).
        # Its supported per-target way to set variables is an "env/set/NAME/VALUE" alias, so
        # the staged copy of every target gets one for each variable to pass on.
        passthrough=()
        while IFS= read -r name; do
            if [[ -z ${name} || ! -v ${name} ]]; then
                continue
            fi
            value=${!name}
            if [[ ${value} == *$'\n'* || ${value} == *'#'* ]]; then
                log "WARNING: not passing ${name} to the targets: its value has a newline or '#'"
                continue
            fi
            passthrough+=("env/set/${name}/${value}")
        done < <(
            compgen -e | grep -E '^OS_' || true
            # shellcheck disable=SC2086  # word splitting wanted
            printf '%s\n' ${ANSIBLE_TEST_PASSENV:-}
        )
        if [[ ${#passthrough[@]} -gt 0 ]]; then
            shopt -s nullglob
            for target in "${coll_dir}"/tests/integration/targets/*/; do
                aliases=${target}aliases
                if [[ -s ${aliases} && -n $(tail -c 1 "${aliases}") ]]; then
                    echo >>"${aliases}"
                fi
                printf '%s\n' "${passthrough[@]}" >>"${aliases}"
            done
            shopt -u nullglob
        fi
        ;;
esac

# --- run ----------------------------------------------------------------------------
cd "${coll_dir}"
rc=0
"${ansible_test}" "${subcommand}" "${env_args[@]}" ${extra_args[@]+"${extra_args[@]}"} "$@" || rc=$?
exit "${rc}"
