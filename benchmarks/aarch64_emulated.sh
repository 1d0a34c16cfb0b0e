#!/usr/bin/env bash
# Install and calibrate explorer on an emulated aarch64 Linux (Debian 12 arm64 under qemu-user),
# as a user would on a Raspberry Pi or a Jetson's CPU, then check that the x86 machine reading
# the board's files predicts what the board predicts. A functional check, not a timing one: the
# emulator runs the calibration's reference network about 225x slower than the 2-core VM the
# README's numbers come from.
#
#     sudo env PYTHON=.venv/bin/python bash benchmarks/aarch64_emulated.sh [ROOTFS]
#
# PYTHON: the x86 environment explorer is installed in (default python3). ~30 minutes on a
# Debian x86_64 host (12 for pip under emulation, 13 for the calibration).
# Needs: root (debootstrap, chroot, binfmt_misc), the Debian and PyPI registries, ~8 GB of disk
# (PyPI's aarch64 torch is a CUDA build: its NVIDIA libraries make the environment 5.7 GB).
set -euo pipefail
ROOT=${1:-/var/tmp/explorer-arm64}
REPO=$(cd "$(dirname "$0")/.." && pwd)

apt-get install -y -qq qemu-user-static debootstrap binfmt-support
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
if [ ! -x "$ROOT/usr/bin/python3" ]; then
    debootstrap --arch=arm64 --variant=minbase --foreign \
        --include=python3,python3-venv,python3-pip,libgomp1 bookworm "$ROOT" http://deb.debian.org/debian
    # the binfmt entry names its interpreter by path: it must exist inside the chroot too
    mkdir -p "$ROOT/usr/libexec/qemu-binfmt"
    cp /usr/bin/qemu-aarch64-static "$ROOT/usr/bin/"
    ln -sf ../../bin/qemu-aarch64-static "$ROOT/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    chroot "$ROOT" /debootstrap/debootstrap --second-stage
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"  # a proxy's CA
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
# not /sys: oneDNN's aarch64 code then reads MIDR_EL1 there, finds the host's x86 sysfs, crashes
rm -rf "$ROOT/root/explorer"
git clone -q "$REPO" "$ROOT/root/explorer"
mkdir -p "$ROOT/root/scripts"
cat > "$ROOT/root/scripts/calibrate.py" <<'EOF'
"""explorer calibrate with the time kept for the fits sized for a machine that reads the
reference network in argv[1] ms (the emulator's), so that argv[2] samples a few networks."""
import sys

import explorer.latency._host_learned as host_learned

host_learned._FIT_AT_MS = float(sys.argv[1])
from explorer.cli import main  # noqa: E402

sys.exit(main(["calibrate", "--time", sys.argv[2], "--out", "/root/board.toml"]))
EOF
run() { chroot "$ROOT" /bin/bash -c "cd /root/explorer && $1"; }
run "python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e '.[dev]'"
run ".venv/bin/python -c 'import platform, torch, onnxruntime; print(platform.machine(), torch.__version__, onnxruntime.__version__)'"
# a plain calibration: on the emulator it samples nothing and says how long to give it
run ".venv/bin/explorer calibrate --time 5m --out /root/plain.toml" || true
run ".venv/bin/python /root/scripts/calibrate.py 88 12m"
run ".venv/bin/explorer profile ding2025 --device /root/board.toml --format json" > /tmp/board-on-board.json
cp "$ROOT/root/board.toml" "$ROOT/root/board.kernels.json" /tmp/
(cd "$REPO" && "${PYTHON:-python3}" -m explorer.cli profile ding2025 --device /tmp/board.toml \
    --format json) > /tmp/board-on-x86.json
python3 - <<'EOF'
import json

board = json.load(open("/tmp/board-on-board.json"))["devices"]["host"]
here = json.load(open("/tmp/board-on-x86.json"))["devices"]["host"]
print(f"ding2025 on the board's file: {board['predicted_ms']:.3f} ms on the board, "
      f"{here['predicted_ms']:.3f} ms here")
assert abs(board["predicted_ms"] / here["predicted_ms"] - 1) < 1e-9
EOF
