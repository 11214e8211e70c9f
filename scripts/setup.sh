#!/usr/bin/env bash
# Set up everything edge-asd needs on a fresh Debian machine with Python >= 3.10:
# Debian packages (where missing), a virtual environment in .venv, and the Python packages.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--no-train]
set -euo pipefail
cd "$(dirname "$0")/.."

want_train=1
[ "${1:-}" = "--no-train" ] && want_train=0

debs=(mosquitto libportaudio2 libasound2-plugins libsndfile1)
# the page's browser test drives Debian's chromium through its chromedriver (no download)
[ "${EDGE_ASD_TEST_TOOLS:-0}" = 1 ] && debs+=(shellcheck chromium chromium-driver)
missing=()
for pkg in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($python_bin --version)"
    "$python_bin" -m venv .venv
fi
stamp=.venv/.edge-asd-setup
fingerprint=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-$want_train
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
    exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$want_train" = 1 ]; then
    # The CPU build first, pinned, so the `train` extra's range is already met and pip
    # downloads no CUDA libraries.
    .venv/bin/python -m pip install -q "torch==2.13.0"
    # The constraint keeps that torch: a dependency asking for another one fails here
    # instead of silently replacing it with a CUDA build.
    .venv/bin/python -m pip install -q -c <(echo "torch==2.13.0") -e ".[train,dev]"
else
    .venv/bin/python -m pip install -q -e ".[dev]"
fi
echo "$fingerprint" > "$stamp"
