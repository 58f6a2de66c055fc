"""The seed simulation frame after frame through `jax.jit` on the plugin, its state staying on the device.

A small version of hlo-samples/generate.py's `seed_frame`: the seed's n-body step (`sim_update_force`,
`compute_forces`) and sprite renderer (`scaled_render`, `draw_all_sprites`: a BCOO scatter of gaussian
sprites at 4x resolution, clipped, averaged 4x4), kept close to the seed's source.
"""

from common import CPU, VULKAN  # first: sets JAX_PLATFORMS before JAX starts

import warnings  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import sparse  # noqa: E402

N = 200
VID_DIM = 64
SPRITE_DIM = 9
FRAMES = 20
SIM = dict(t_delta=0.05, scale=25, center_mag=0.5, repel_mag=0.05, damp=0.997, steps=4)


def compute_forces(pos, scale, eps=0.1):
    a, b = jnp.expand_dims(pos, 1), jnp.expand_dims(pos, 0)
    diff = a - b
    dist = (diff * diff).sum(axis=-1) ** 0.5
    dist = jnp.expand_dims(dist, 2)
    force = diff / ((dist * scale) ** 3 + eps)
    return force.sum(0)


def sim_update_force(parts_pos, parts_vel, t_delta=0.05, scale=5, repel_mag=0.1, center_mag=2.5, steps=10, damp=0.99):
    p_p = jnp.array(parts_pos)
    p_v = jnp.array(parts_vel)
    for _ in range(steps):
        p_p = p_p + t_delta * p_v
        force = compute_forces(p_p, scale)
        center_diff = p_p
        centering_force = center_diff / ((center_diff**2).sum() ** 0.5)
        p_v = damp * p_v - t_delta * (force * repel_mag + centering_force * center_mag)
    return p_p, p_v


def draw_single_sprite(pos, sprite, sp_width, sp_height, out_dims):
    channels = out_dims[2]
    numel = sp_width * sp_height * channels
    data = sprite.reshape(numel)
    raw_indices = jnp.indices((channels, sp_height, sp_width), dtype=jnp.int16)
    indices = jnp.flip(raw_indices.T.reshape(-1, channels), 1)
    indices = indices.at[:, 0].set(indices[:, 0] + pos[0])
    indices = indices.at[:, 1].set(indices[:, 1] + pos[1])
    return sparse.BCOO((data, indices), shape=out_dims)


def draw_all_sprites(all_pos, all_indices, sprite_sheet, canv_dims):
    def draw_bound(p, sprite):
        return draw_single_sprite(p, sprite, sprite_sheet.shape[1], sprite_sheet.shape[2], canv_dims)

    render = jax.vmap(draw_bound, in_axes=(0))(all_pos.astype(jnp.int16), sprite_sheet[all_indices]).sum(0)
    return jnp.clip(sparse.todense(render), 0, 255)


def scaled_render(pos, indices, sprites, dim):
    r_scale = 4
    render_res = dim * r_scale
    img = draw_all_sprites(pos * r_scale - 0.5 * sprites.shape[0], indices, sprites, (render_res, render_res, 3))
    h, w, c = img.shape
    return img.reshape(h // r_scale, r_scale, w // r_scale, r_scale, c).mean(axis=(1, 3))


def seed_frame(pos, vel, sprite_indices, sprites):
    """Renders the current positions, then steps the state: (image, pos', vel')."""
    image = scaled_render((pos * 0.9 + 0.5) * VID_DIM, sprite_indices, sprites, VID_DIM)
    new_pos, new_vel = sim_update_force(pos, vel, **SIM)
    return image, new_pos, new_vel


def initial_state():
    pos = np.asarray(jax.random.uniform(jax.random.PRNGKey(144), (N, 2), minval=-0.5, maxval=0.5), np.float32)
    vel = np.zeros((N, 2), np.float32)
    indices = np.zeros((N,), np.int32)
    ax = np.arange(SPRITE_DIM, dtype=np.float64) - (SPRITE_DIM - 1) / 2
    kern = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 3.0**2))
    sprites = (np.tile((kern / kern.max()).reshape(1, SPRITE_DIM, SPRITE_DIM, 1), 3) * 80).astype(np.float32)
    return pos, vel, indices, sprites


snapshot = jax.jit(jnp.copy)


def run_frames(device, frame):
    pos, vel, indices, sprites = (jax.device_put(a, device) for a in initial_state())
    positions = []
    with jax.transfer_guard("disallow"):  # any implicit copy between host and device is an error
        for _ in range(FRAMES):
            image, pos, vel = frame(pos, vel, indices, sprites)
            assert isinstance(pos, jax.Array) and pos.devices() == {device} and vel.devices() == {device}
            positions.append(snapshot(pos))  # a copy on the device: `pos` is donated to the next frame
    return [np.asarray(p) for p in positions], np.asarray(image)


def rel_l2(got, want):
    return float(np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want.astype(np.float64)))


def test_seed_frames_on_the_device():
    frame = jax.jit(seed_frame, donate_argnums=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # donation must be usable: pos and vel alias pos' and vel'
        got_pos, got_image = run_frames(VULKAN, frame)
    want_pos, want_image = run_frames(CPU, frame)
    for k, (g, w) in enumerate(zip(got_pos, want_pos)):
        assert rel_l2(g, w) < 1e-4, f"frame {k}: positions differ by {rel_l2(g, w):.2e} (relative L2)"
    assert got_image.shape == (VID_DIM, VID_DIM, 3) and got_image.max() > 1.0
    assert rel_l2(got_image, want_image) < 1e-3, f"the last image differs by {rel_l2(got_image, want_image):.2e}"
