#!/usr/bin/env bash
# The main job on a fresh machine: installs what Vulkan needs, builds hlo-run,
# and runs the seed's real XLA dump (the "draw_points" sprite scatter) on the
# default Vulkan device (lavapipe when there is no GPU), then checks the
# image against the output JAX/XLA computed for the same input.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
cargo build --release --locked -p hlo-run
sample=hlo-samples/seed_draw_points
out=${OUT_DIR:-target/demo}
./target/release/hlo-run devices
./target/release/hlo-run "$sample/module.opt.hlo" "$sample/in_0.npy" -o "$out" --print --stats
python3 - "$out/out_0.npy" "$sample/out_0.npy" <<'PY'
import sys, struct
def load(path):
    data = open(path, "rb").read()
    hlen = struct.unpack("<H", data[8:10])[0]
    return data[10 + hlen:]
ours, jax = load(sys.argv[1]), load(sys.argv[2])
print("matches JAX's output exactly" if ours == jax else "DIFFERS from JAX's output")
sys.exit(0 if ours == jax else 1)
PY
