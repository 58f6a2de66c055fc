#!/usr/bin/env bash
# The project's test command: sets up a fresh machine and runs every test.
# Vulkan tests run on lavapipe with the Khronos validation layer enabled;
# any validation message fails the test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
export HLO_VULKAN_VALIDATION=1
export INSTA_UPDATE=no
cargo test --workspace --locked "$@"
# The PJRT plugin under the pinned JAX (python/tests).
bash scripts/test-pjrt.sh
