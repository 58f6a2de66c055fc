#!/usr/bin/env bash
# The main job on a fresh machine: installs what Vulkan needs, builds hlo-run,
# and runs the seed's real XLA dump (the "draw_points" sprite scatter) on the
# default Vulkan device (lavapipe when there is no GPU), then checks the
# image against the output JAX/XLA computed for the same input; then records the
# seed's particle simulation headless, and shows it in a window when there is a display.
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

# The seed's whole simulation, headless: each frame is one call of the frame program JAX
# dumped (n-body step + gaussian sprite scatter + 4x MSAA); positions and velocities stay on
# the device, and only the image comes back, as PNG frames and an animated GIF.
frame=hlo-samples/seed_frame
./target/release/hlo-run "$frame/module.hlo" "$frame"/in_{0,1,2,3}.npy \
    --frames 60 --feed 1=0 --feed 2=1 --record "$out/frames" --gif "$out/seed.gif" -o "$out/seed_state"
echo "the seed simulation, animated: $out/seed.gif (frames: $out/frames/frame_*.png)"

# With a display, the same simulation live in a window: the image is converted to the window's pixels on the
# device and presented through a Vulkan swapchain. It closes after DEMO_PRESENT_FRAMES frames (a few seconds
# on lavapipe), or earlier with Esc or the window's close button.
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    echo "opening a window (Esc closes it)"
    ./target/release/hlo-run "$frame/module.hlo" "$frame"/in_{0,1,2,3}.npy \
        --present --frames "${DEMO_PRESENT_FRAMES:-300}" --feed 1=0 --feed 2=1 -o "$out/present_state"
else
    echo "no display (DISPLAY or WAYLAND_DISPLAY): skipping the live window (hlo-run ... --present)"
fi
