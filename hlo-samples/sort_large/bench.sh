#!/usr/bin/env bash
# Side-by-side sort timings (hlo-run on the default Vulkan device vs JAX/XLA on CPU), as recorded
# in docs/performance.md: makes the benchmark samples (8 MB each, not committed), runs
# `cargo xtask bench` on them, removes them.
#   hlo-samples/sort_large/bench.sh [extra cargo xtask bench options, e.g. --runs 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${JAX_VENV:-/opt/jaxvenv}/bin/python"
names=$("$PY" hlo-samples/sort_large/generate.py --bench | tr '\n' ' ')
trap 'for n in $names; do rm -rf "hlo-samples/$n"; done' EXIT
cargo xtask bench --samples "$(echo $names | tr ' ' ',')" --markdown "$@"
