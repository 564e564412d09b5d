#!/usr/bin/env bash
# Create (idempotently) the Python 3.12 virtual environment that runs the comparison peers:
# bmoscon `order-book` (1.0.x line, needs Python >= 3.12), `sortedcontainers` and `numpy`.
#
#   bash bench/peers/setup_peer_env.sh
#
# Environment overrides:
#   PEER_PYTHON  interpreter to build the venv from (must be Python >= 3.12); default: newest pyenv 3.12.x,
#                then python3.12 on PATH
#   PEER_VENV    venv location (default: <repo>/bench/.venv-peers, ignored by git via `.venv*/`)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${here}/../.." && pwd)"
venv="${PEER_VENV:-${repo}/bench/.venv-peers}"

is_py312plus() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
    if [[ -n "${PEER_PYTHON:-}" ]]; then
        if is_py312plus "${PEER_PYTHON}"; then
            echo "${PEER_PYTHON}"
            return 0
        fi
        echo "ERROR: PEER_PYTHON=${PEER_PYTHON} is not a Python >= 3.12 interpreter." >&2
        return 1
    fi
    local candidates=() v root
    if command -v pyenv >/dev/null 2>&1; then
        root="$(pyenv root)"
        for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$' | sort -t. -k3,3nr); do
            candidates+=("${root}/versions/${v}/bin/python")
        done
    fi
    if command -v python3.12 >/dev/null 2>&1; then
        candidates+=("$(command -v python3.12)")
    fi
    for v in "${candidates[@]}"; do
        if is_py312plus "$v"; then
            echo "$v"
            return 0
        fi
    done
    echo "ERROR: Python 3.12 not found (order-book 1.0.x needs Python >= 3.12)." >&2
    echo "       Looked in: pyenv versions 3.12.x, python3.12 on PATH." >&2
    echo "       Install one (e.g. 'pyenv install 3.12') or set PEER_PYTHON=/path/to/python3.12." >&2
    return 1
}

if [[ -x "${venv}/bin/python" ]] && is_py312plus "${venv}/bin/python"; then
    echo "Reusing venv ${venv} ($("${venv}/bin/python" -V 2>&1))"
else
    py="$(find_python)" || exit 2
    echo "Creating venv ${venv} from ${py} ($("${py}" -V 2>&1))"
    rm -rf "${venv}"
    "${py}" -m venv "${venv}"
fi

vpy="${venv}/bin/python"
# Newest available releases; no pin tighter than order-book>=1.0 (the fast line).
"${vpy}" -m pip install --quiet --upgrade 'order-book>=1.0' sortedcontainers numpy

"${vpy}" - <<'PY'
import sys
from importlib.metadata import version

print(f"python           {sys.version.split()[0]} ({sys.executable})")
for dist in ("order-book", "sortedcontainers", "numpy"):
    print(f"{dist:<16} {version(dist)}")
ob = version("order-book")
if int(ob.split(".")[0]) < 1:
    sys.exit(f"ERROR: order-book {ob} installed; the 1.0.x line (Python >= 3.12) is required")
PY
