#!/usr/bin/env bash
# The PJRT plugin from C and under real JAX: a C client (crates/hlo-pjrt/tests/c) drives the
# C API table; python/tests calls it through ctypes, then runs jitted functions on the "vulkan"
# platform and compares them with JAX's CPU backend; the Vulkan validation layer is on.
# JAX comes from scripts/setup-jax.sh (pinned); the plugin package is installed into a
# directory of its own, never into that venv (where it would become the default backend of
# every script that makes reference outputs).
#   scripts/test-pjrt.sh [--release]     (default: the debug library `cargo test` builds)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=debug
cargo_flags=()
if [ "${1:-}" = "--release" ]; then profile=release; cargo_flags=(--release); fi
bash scripts/setup-jax.sh >/dev/null
JAX_VENV="${JAX_VENV:-/opt/jaxvenv}"
py="$JAX_VENV/bin/python"
"$py" -c "import pytest" 2>/dev/null || "$py" -m pip install -q --disable-pip-version-check "pytest==8.3.5"
cargo build --locked -p hlo-pjrt "${cargo_flags[@]}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
lib="$target/$profile/libhlo_pjrt.so"
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
HLO_VK_PJRT_LIBRARY="$lib" "$py" -m pip install -q --disable-pip-version-check --no-deps --target "$site" ./python
# A C client built with the system cc drives the C API alone, as a framework would.
cc -std=c11 -Wall -Wextra -Werror -o "$site/pjrt_smoke" crates/hlo-pjrt/tests/c/pjrt_smoke.c -ldl
HLO_VULKAN_VALIDATION=1 "$site/pjrt_smoke" "$lib"
HLO_VULKAN_VALIDATION=1 HLO_VK_PJRT_LIBRARY="$lib" PYTHONPATH="$site" "$py" -m pytest -q python/tests
