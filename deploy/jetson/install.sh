#!/usr/bin/env bash
# Install edge-asd as a systemd service on an NVIDIA Jetson (JetPack 6: Ubuntu 22.04,
# Python 3.10, TensorRT 10.3, CUDA 12.6). Run from a checkout of the source:
#
#     sudo deploy/jetson/install.sh [--enable]
#
# What it does (each step only when needed, so a second run changes nothing):
#   - a system user `edge-asd` in the groups audio, video and render (sound card, GPU);
#   - /opt/edge-asd/venv: a virtual environment that also sees JetPack's system packages
#     (TensorRT's Python bindings come from apt, not pip), with edge-asd and its runtime
#     dependencies (no torch) and `onnx` for the graph check of `edge-asd build-engine`;
#   - /etc/edge-asd/ with config.yaml (an example to edit; never overwritten) and
#     mqtt-password (empty, root-only; the unit hands it over with LoadCredential=);
#   - /var/lib/edge-asd/ (models, calibrations, engines, outbox), owned by edge-asd;
#   - /etc/systemd/system/edge-asd.service, then `systemctl daemon-reload`.
#
# Options:
#   --dry-run     print what would be done, change nothing
#   --root DIR    install under DIR instead of / (an image, or a test); user, ownership and
#                 systemctl steps are skipped there: they act on the running system
#   --source DIR  the edge-asd source tree (default: the checkout holding this script)
#   --python BIN  the interpreter for the venv (default: python3)
#   --no-venv     skip the virtual environment and pip (Python managed by other means)
#   --enable      also `systemctl enable --now edge-asd`
set -euo pipefail

SERVICE=edge-asd
SERVICE_USER=edge-asd
SERVICE_GROUPS=(audio video render)
PREFIX=/opt/edge-asd
CONF_DIR=/etc/edge-asd
STATE_DIR=/var/lib/edge-asd
UNIT_DIR=/etc/systemd/system

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
root=""
dry_run=0
want_venv=1
enable=0
python_bin=python3
changed=0

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --root) root=${2:?--root needs a directory}; shift ;;
        --source) source_dir=${2:?--source needs a directory}; shift ;;
        --python) python_bin=${2:?--python needs an interpreter}; shift ;;
        --no-venv) want_venv=0 ;;
        --enable) enable=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ -n "$root" ]; then
    if [ ! -d "$root" ]; then
        echo "install.sh: --root $root is not a directory" >&2
        exit 2
    fi
    root=$(cd "$root" && pwd)
fi
if [ ! -f "$source_dir/pyproject.toml" ] || [ ! -d "$source_dir/edge_asd" ]; then
    echo "install.sh: $source_dir is not an edge-asd source tree (use --source)" >&2
    exit 2
fi
if [ -z "$root" ] && [ "$dry_run" = 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo), or try --dry-run" >&2
    exit 1
fi

say() { echo "install: $*"; }

# Run a command that changes the system, or only print it with --dry-run.
act() {
    changed=1
    if [ "$dry_run" = 1 ]; then
        printf "would run:"; printf " %q" "$@"; echo
    else
        printf "+"; printf " %q" "$@"; echo
        "$@"
    fi
}

# The same, for a step that needs the running system (skipped under --root).
act_system() {
    if [ -n "$root" ]; then
        say "skipped under --root (needs the running system): $*"
    else
        act "$@"
    fi
}

ensure_user() {
    if [ -n "$root" ]; then
        say "skipped under --root: service user $SERVICE_USER and its groups"
        return
    fi
    if ! getent passwd "$SERVICE_USER" >/dev/null; then
        act useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "edge-asd service" "$SERVICE_USER"
    fi
    local group
    for group in "${SERVICE_GROUPS[@]}"; do
        if ! getent group "$group" >/dev/null; then
            say "group $group does not exist here; not adding $SERVICE_USER to it"
        elif ! id -nG "$SERVICE_USER" 2>/dev/null | tr ' ' '\n' | grep -qx "$group"; then
            act usermod --append --groups "$group" "$SERVICE_USER"
        fi
    done
}

# ensure_dir PATH MODE [OWNER GROUP]: create with mode (and owner, on the running system).
ensure_dir() {
    local path=$root$1 mode=$2 owner=${3:-root} group=${4:-root}
    if [ ! -d "$path" ]; then
        if [ -n "$root" ]; then
            act install -d -m "$mode" "$path"
        else
            act install -d -m "$mode" -o "$owner" -g "$group" "$path"
        fi
    fi
}

# ensure_file SOURCE DEST MODE [replace|keep] [OWNER GROUP]: install when missing, or
# when different and "replace"; a file the admin owns ("keep") is never overwritten.
ensure_file() {
    local source=$1 dest=$root$2 mode=$3 policy=${4:-replace} owner=${5:-root} group=${6:-root}
    if [ -e "$dest" ]; then
        if [ "$policy" = keep ] || cmp -s "$source" "$dest"; then
            return
        fi
    fi
    if [ -n "$root" ]; then
        act install -m "$mode" "$source" "$dest"
    else
        act install -m "$mode" -o "$owner" -g "$group" "$source" "$dest"
    fi
    [ "$2" = "$UNIT_DIR/$SERVICE.service" ] && unit_changed=1
    return 0
}

# A fingerprint of what pip would install, so an unchanged source is not reinstalled.
source_fingerprint() {
    (cd "$source_dir" && find pyproject.toml edge_asd -type f -name '*.py' -o -name '*.toml' \
        -o -name 'py.typed' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
}

ensure_venv() {
    local venv=$PREFIX/venv
    if [ "$want_venv" = 0 ]; then
        say "skipped (--no-venv): virtual environment and pip"
        return
    fi
    if [ ! -x "$root$venv/bin/python" ]; then
        # --system-site-packages: JetPack installs TensorRT's bindings for the system Python
        act "$python_bin" -m venv --system-site-packages "$root$venv"
    elif ! grep -q '^include-system-site-packages = true' "$root$venv/pyvenv.cfg"; then
        act sed -i 's/^include-system-site-packages = .*/include-system-site-packages = true/' \
            "$root$venv/pyvenv.cfg"
    fi
    local stamp=$root$venv/.edge-asd-source fingerprint
    fingerprint=$(source_fingerprint)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
        return
    fi
    # numpy < 2: JetPack 6's TensorRT bindings were built against the system's numpy 1.x.
    act "$root$venv/bin/python" -m pip install --quiet --upgrade pip
    act "$root$venv/bin/python" -m pip install --quiet "$source_dir" onnx "numpy>=1.24,<2"
    if [ "$dry_run" = 0 ]; then
        echo "$fingerprint" > "$stamp"
    fi
}

check_tensorrt() {
    local probe="import tensorrt; print(tensorrt.__version__)"
    local version
    if version=$("$python_bin" -c "$probe" 2>/dev/null); then
        say "TensorRT $version found for $python_bin"
    else
        say "WARNING: $python_bin cannot import tensorrt; install JetPack's python3-libnvinfer" \
            "(apt) or edge-asd will run with onnxruntime on the CPU"
    fi
}

say "source $source_dir -> ${root:-/}$([ "$dry_run" = 1 ] && echo ' (dry run)')"
check_tensorrt
unit_changed=0
ensure_user
ensure_dir "$PREFIX" 0755
ensure_dir "$CONF_DIR" 0750 root "$SERVICE_USER"
ensure_dir "$STATE_DIR" 0750 "$SERVICE_USER" "$SERVICE_USER"
for sub in models calibrations engines; do
    ensure_dir "$STATE_DIR/$sub" 0750 "$SERVICE_USER" "$SERVICE_USER"
done
ensure_venv
ensure_file "$here/README.md" "$PREFIX/README.md" 0644
ensure_file "$here/config.example.yaml" "$CONF_DIR/config.yaml" 0640 keep root "$SERVICE_USER"
ensure_file /dev/null "$CONF_DIR/mqtt-password" 0600 keep
ensure_dir "$UNIT_DIR" 0755
ensure_file "$here/$SERVICE.service" "$UNIT_DIR/$SERVICE.service" 0644
if [ "$unit_changed" = 1 ]; then
    act_system systemctl daemon-reload
fi
if [ "$enable" = 1 ]; then
    if [ -n "$root" ] || ! systemctl is-enabled --quiet "$SERVICE" 2>/dev/null; then
        act_system systemctl enable --now "$SERVICE"
    fi
fi

if [ "$changed" = 0 ]; then
    say "nothing to do: everything is in place"
fi
cat <<EOF
install: next steps (deploy/jetson/README.md has the details):
  1. copy a model to $STATE_DIR/models/NAME and link it: ln -sfn NAME $STATE_DIR/models/current
  2. sudo -u $SERVICE_USER $PREFIX/venv/bin/edge-asd build-engine --model $STATE_DIR/models/current --cache-dir $STATE_DIR/engines
  3. calibrate each machine, then edit $CONF_DIR/config.yaml
  4. sudo systemctl enable --now $SERVICE; journalctl -u $SERVICE -f
EOF
