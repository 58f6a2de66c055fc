#!/usr/bin/env bash
# Installs the system packages this project needs on a fresh Debian machine:
# the Vulkan loader, Mesa's lavapipe (a CPU Vulkan driver, so no GPU is needed),
# the Khronos validation layer (tests fail on any validation message) and
# spirv-tools (tests run spirv-val over every generated kernel).
# For `hlo-run --present` and its test: the X11 libraries winit loads at run time, an X server
# without a screen (Xvfb), xwd for screenshots and xdotool to press Esc in the window.
# python3 with venv and pip: scripts/setup-jax.sh makes the pinned JAX that the PJRT plugin's
# tests run (scripts/test-pjrt.sh).
# Idempotent: does nothing when everything is already there.
set -euo pipefail

packages=(libvulkan1 mesa-vulkan-drivers vulkan-validationlayers spirv-tools vulkan-tools
          python3 python3-venv python3-pip
          libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0 xvfb x11-apps xdotool)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "setup-system: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
