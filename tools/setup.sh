#!/usr/bin/env bash
# Idempotent set-up on Debian 12 (root, or a user with sudo): the Debian packages qmcu needs and
# the project venv (.venv) with the qmcu package and its test extra. Safe to run again: it only
# installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

# Cross toolchain (freestanding C++ + newlib for STD=1 corners; libstdc++ headers only, 17 MB),
# QEMU for the emulated Cortex-M boards, host g++ for the host board and host tests.
packages=(gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev qemu-system-arm g++ gcc)
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then packages+=(python3-venv); fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last successful install.
stamp=.venv/.qmcu-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing qmcu (editable) with its test extra into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[test]'
    echo "$want" > "$stamp"
fi
echo "setup: ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'), $(arm-none-eabi-gcc -dumpversion 2>/dev/null | sed 's/^/arm-none-eabi-gcc /'), $(qemu-system-arm --version | head -1 | cut -d' ' -f1-4))"
