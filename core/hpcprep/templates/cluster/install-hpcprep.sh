#!/bin/bash
# Installs hpcprep and its plugins on an AWS ParallelCluster node. ParallelCluster runs it
# as root from CustomActions/OnNodeConfigured, after the shared storage is mounted, with
# the arguments written by `hpcprep cluster-template pcluster`:
#
#   install-hpcprep.sh VENV MODE [--find-links WHERE] REQUIREMENT...
#
# MODE install  creates VENV if it is missing and pip-installs the requirements into it.
# MODE wait     VENV lies on the shared file system and the head node installs it; wait
#               (up to 30 minutes) until it holds exactly these requirements.
# Either way the requirements must include hpcprep: the script checks that it imports.
# WHERE         a directory or URL for pip's --find-links; an s3:// prefix is copied to
#               a local directory first (with the node's IAM role), for wheels that are
#               not on the package index.
# Every node also gets /etc/profile.d/hpcprep.sh, which puts VENV/bin on the PATH.
# (HPCPREP_PROFILE and HPCPREP_WAIT_SECONDS change that file and the wait, for tests.)
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 VENV install|wait [--find-links WHERE] REQUIREMENT..." >&2
    exit 2
fi
venv=$1
mode=$2
shift 2
find_links=()
if [ "$1" = "--find-links" ]; then
    where=$2
    shift 2
    if [[ $where == s3://* ]]; then
        local_dir=$(mktemp -d)
        aws s3 cp --recursive --only-show-errors "$where" "$local_dir"
        where=$local_dir
    fi
    find_links=(--find-links "$where")
fi
stamp="$venv/.hpcprep-requirements"
wanted=$(printf '%s\n' "$@")

cat > "${HPCPREP_PROFILE:-/etc/profile.d/hpcprep.sh}" <<EOF
export PATH="$venv/bin:\$PATH"
export RAY_idle_worker_killing_time_threshold_ms=60000
EOF

if [ "$mode" = wait ]; then
    deadline=$((SECONDS + ${HPCPREP_WAIT_SECONDS:-1800}))
    while :; do
        if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && "$venv/bin/python" -c "import hpcprep" 2> /dev/null; then
            exit 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "install-hpcprep: $venv does not hold the requested packages after ${HPCPREP_WAIT_SECONDS:-1800} s" >&2
            exit 1
        fi
        sleep 10
    done
fi
if [ "$mode" != install ]; then
    echo "install-hpcprep: MODE must be install or wait, not '$mode'" >&2
    exit 2
fi

find_python() {
    local p
    for p in python3.13 python3.12 python3.11 python3; do
        if command -v "$p" > /dev/null \
            && "$p" -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2> /dev/null; then
            command -v "$p"
            return 0
        fi
    done
    return 1
}

if ! py=$(find_python); then
    if command -v dnf > /dev/null; then
        dnf install -y -q python3.12 python3.12-pip || dnf install -y -q python3.11 python3.11-pip
    elif command -v apt-get > /dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    fi
    py=$(find_python) || { echo "install-hpcprep: no Python >= 3.11 with venv on this node" >&2; exit 1; }
fi

mkdir -p "$(dirname "$venv")"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "${find_links[@]}" "$@"
"$venv/bin/python" -c "import hpcprep"
chmod -R a+rX "$venv"
printf '%s\n' "$@" > "$stamp.tmp"
mv "$stamp.tmp" "$stamp"
