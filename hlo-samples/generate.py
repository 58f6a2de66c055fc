#!/usr/bin/env python3
"""Generate the HLO sample corpus (pre/post-optimisation HLO text + real JAX I/O).

Usage (from anywhere):
    /opt/jaxvenv/bin/python hlo-samples/generate.py            # all samples
    /opt/jaxvenv/bin/python hlo-samples/generate.py mandelbrot # only these
    /opt/jaxvenv/bin/python hlo-samples/generate.py --list
    /opt/jaxvenv/bin/python hlo-samples/generate.py --verify [names]  # re-run module.hlo
        text through XLA:CPU on the committed inputs and compare with out_K.npy

The virtual environment is created by scripts/setup-jax.sh (jax[cpu]==0.8.3).
Everything runs on the JAX CPU backend with 64-bit mode disabled (JAX default).

Per sample directory <name>/:
    module.hlo      jax.jit(f, keep_unused=True).lower(*args).as_text(dialect="hlo")
    module.opt.hlo  ....lower(*args).compile().as_text()   (XLA:CPU optimised)
    in_K.npy        one per ENTRY parameter, same order, dtype and shape
    out_K.npy       every leaf of JAX's result, flattened in order
    meta.json       description, versions, tolerances, I/O table, opcodes, ...
bf16 arrays cannot be represented in .npy, so they are stored as their raw
uint16 bit patterns (meta.json marks them with "storage": "bf16-bits-as-u16").
"""

import json
import os
import re
import sys
import zlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_ENABLE_X64", "0")

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jaxlib  # noqa: E402
from jax import lax  # noqa: E402
from jax.experimental import sparse  # noqa: E402

# Keep source locations in the optimised HLO metadata machine-independent
# (file names only, no absolute paths).
jax.config.update("jax_hlo_source_file_canonicalization_regex", r".*/")
jax.config.update("jax_platforms", "cpu")

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_TEXT_SOURCE = "/work/shared/seeds/003_21e9786ca529cc5e.txt"

F32 = np.float32
BF16 = jnp.bfloat16

SAMPLES = {}


class Sample:
    def __init__(self, name, fn, make_inputs, description, tol, f64_check=True, notes=None,
                 extra_meta=None):
        self.name = name
        self.fn = fn
        self.make_inputs = make_inputs
        self.description = description
        self.tol = tol
        self.f64_check = f64_check
        self.notes = notes
        self.extra_meta = extra_meta or {}


def register(name, description, tol, make_inputs, f64_check=True, notes=None, extra_meta=None):
    def deco(fn):
        assert name not in SAMPLES, name
        SAMPLES[name] = Sample(name, fn, make_inputs, description, tol, f64_check, notes,
                               extra_meta)
        return fn
    return deco


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def unif(rng, lo, hi, shape, dtype=F32):
    return rng.uniform(lo, hi, shape).astype(dtype)


# ---------------------------------------------------------------------------
# Seed programs (nbody + sprite renderer), kept close to the original source.
# ---------------------------------------------------------------------------

def compute_forces(pos, scale, eps=0.1):
    a, b = jnp.expand_dims(pos, 1), jnp.expand_dims(pos, 0)
    diff = a - b
    dist = (diff * diff).sum(axis=-1) ** 0.5
    dist = jnp.expand_dims(dist, 2)
    force = diff / ((dist * scale) ** 3 + eps)
    return force.sum(0)


fast_compute_forces = jax.jit(compute_forces, static_argnames=("eps"))


def sim_update_force(parts_pos, parts_vel, t_delta=0.05, scale=5, repel_mag=0.1,
                     center_mag=2.5, steps=10, damp=0.99):
    p_p = jnp.array(parts_pos)
    p_v = jnp.array(parts_vel)
    for _ in range(steps):
        p_p = p_p + t_delta * p_v
        force = fast_compute_forces(p_p, scale)
        center_diff = p_p
        centering_force = center_diff / ((center_diff ** 2).sum() ** 0.5)
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
    draw_bound = lambda p, sprite: draw_single_sprite(  # noqa: E731
        p, sprite, sprite_sheet.shape[1], sprite_sheet.shape[2], canv_dims)
    draw_all = jax.vmap(draw_bound, in_axes=(0))
    render = draw_all(all_pos.astype(jnp.int16), sprite_sheet[all_indices]).sum(0)
    return jnp.clip(sparse.todense(render), 0, 255)


fast_draw_sprites = jax.jit(draw_all_sprites, static_argnums=(3,))


def scaled_render(pos, indices, sprites, dim):
    r_scale = 4
    render_res = dim * r_scale
    img = fast_draw_sprites(
        pos * r_scale - 0.5 * sprites.shape[0],
        indices,
        sprites,
        (render_res, render_res, 3),
    )
    # einops.reduce(img, "(h sh) (w sw) c -> h w c", "mean", sh=r_scale, sw=r_scale)
    h, w, c = img.shape
    return img.reshape(h // r_scale, r_scale, w // r_scale, r_scale, c).mean(axis=(1, 3))


def gaussian_kern(kernlen, nsig):
    """Returns a 2D Gaussian kernel."""
    x = jnp.linspace(-nsig, nsig, kernlen + 1)
    kern1d = jnp.diff(jax.scipy.stats.norm.cdf(x))
    kern2d = jnp.outer(kern1d, kern1d)
    return kern2d / kern2d.sum()


def _nbody_inputs(n):
    def mk(rng):
        return [unif(rng, -0.5, 0.5, (n, 2))]
    return mk


register("nbody_forces",
         "Seed compute_forces(pos, scale=5, eps=0.1): all-pairs inverse-cube forces, N=256.",
         1e-4, _nbody_inputs(256))(lambda pos: compute_forces(pos, 5, 0.1))

register("nbody_forces_2048",
         "Seed compute_forces(pos, scale=5, eps=0.1) at benchmark size N=2048.",
         1e-4, _nbody_inputs(2048))(lambda pos: compute_forces(pos, 5, 0.1))


def _sim_inputs(rng):
    return [unif(rng, -0.5, 0.5, (256, 2)), unif(rng, -0.05, 0.05, (256, 2))]


register("nbody_sim_update",
         "Seed sim_update_force(p, v, t_delta=0.05, scale=25, repel_mag=0.05, center_mag=0.5, "
         "steps=4, damp=0.997): 4 unrolled Euler steps (nested jit of compute_forces), N=256. "
         "Returns (positions, velocities).",
         1e-4, _sim_inputs)(
    lambda p, v: sim_update_force(p, v, t_delta=0.05, scale=25, repel_mag=0.05,
                                  center_mag=0.5, steps=4, damp=0.997))


SPRITE_COUNT, SPRITE_DIM, RENDER_DIM, BRIGHTNESS = 64, 9, 32, 80


def _sprite_inputs(rng):
    p_state = unif(rng, -0.5, 0.5, (SPRITE_COUNT, 2))
    pos = ((p_state * F32(0.9) + F32(0.5)) * F32(RENDER_DIM)).astype(F32)
    idx = np.zeros((SPRITE_COUNT,), np.int32)
    kern = np.asarray(gaussian_kern(SPRITE_DIM, 3.0))
    sprites = (np.tile(kern.reshape(1, SPRITE_DIM, SPRITE_DIM, 1), 3) * BRIGHTNESS).astype(F32)
    return [pos, idx, sprites]


register("sprite_render",
         "Seed scaled_render: BCOO sprite scatter (vmap of draw_single_sprite, int16 indices, "
         "sparse.todense, clip 0..255) at 4x resolution then 4x4 mean reduce (MSAA). "
         "64 gaussian sprites 9x9x3 (brightness 80), output 32x32x3.",
         1e-4, _sprite_inputs)(
    lambda pos, idx, sprites: scaled_render(pos, idx, sprites, RENDER_DIM))

register("gaussian_kernel",
         "Seed gaussian_kern(kernlen=27, nsig) with nsig a traced f32 scalar (3.0): linspace, "
         "norm.cdf (erf), diff, outer, normalise.",
         1e-4, lambda rng: [np.array(3.0, F32)])(lambda nsig: gaussian_kern(27, nsig))


# ---------------------------------------------------------------------------
# Mandelbrot (WgPy seed), greyscale
# ---------------------------------------------------------------------------

def mandelbrot(real, imag, n_iters=100):
    shape = (real.size, imag.size)
    re_ = real[:, None]
    im_ = imag[None, :]

    def body(_, carry):
        xs, ys, count = carry
        xs, ys = xs * xs - ys * ys + re_, xs * ys * 2.0 + im_
        count = count + ((xs * xs + ys * ys) < 4.0).astype(jnp.int32)
        return xs, ys, count

    init = (jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32),
            jnp.zeros(shape, jnp.int32))
    return lax.fori_loop(0, n_iters, body, init)[2]


def _mandel_inputs(n):
    def mk(rng):
        return [np.linspace(-2.0, 0.6, n, dtype=F32), np.linspace(-1.3, 1.3, n, dtype=F32)]
    return mk


_MANDEL_NOTE = ("Escape counts are chaotic near the set boundary: a backend that contracts "
                "x*x-y*y+c into FMAs may legitimately differ on a few boundary pixels.")
register("mandelbrot",
         "WgPy seed mandelbrot as lax.fori_loop, 100 iterations, 128x128 grid "
         "(row i <- real[i], column j <- imag[j]); int32 escape counts.",
         0, _mandel_inputs(128), f64_check=False, notes=_MANDEL_NOTE)(mandelbrot)
register("mandelbrot_512",
         "WgPy seed mandelbrot as lax.fori_loop, 100 iterations, 512x512 grid (benchmark size).",
         0, _mandel_inputs(512), f64_check=False, notes=_MANDEL_NOTE)(mandelbrot)


@register("greyscale",
          "RGBA u8[64,64,4] -> greyscale u8[64,64] via 0.299/0.587/0.114 in f32, astype uint8 "
          "(truncation).", 0,
          lambda rng: [rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)],
          notes="Exact u8 reference; an FMA-contracted weighted sum may differ by 1 where the f32 "
                "value is within an ulp of an integer.")
def greyscale(img):
    f = img.astype(jnp.float32)
    g = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    return g.astype(jnp.uint8)


# ---------------------------------------------------------------------------
# Common programs
# ---------------------------------------------------------------------------

register("matmul", "f32[64,32] @ f32[32,48].", 1e-5,
         lambda rng: [unif(rng, -1, 1, (64, 32)), unif(rng, -1, 1, (32, 48))])(
    lambda a, b: a @ b)

register("einsum", "Batched einsum 'bij,bjk->bik' f32[4,16,8] x f32[4,8,12].", 1e-5,
         lambda rng: [unif(rng, -1, 1, (4, 16, 8)), unif(rng, -1, 1, (4, 8, 12))])(
    lambda a, b: jnp.einsum("bij,bjk->bik", a, b))


@register("dot_general_variants",
          "dot_general with transposed contracting dims, matvec, vector dot, and batch dims "
          "in non-leading position.", 1e-5,
          lambda rng: [unif(rng, -1, 1, (24, 16)), unif(rng, -1, 1, (24, 10)),
                       unif(rng, -1, 1, (16,)), unif(rng, -1, 1, (5, 6, 3)),
                       unif(rng, -1, 1, (6, 3, 7))])
def dot_general_variants(a, b, v, x, y):
    at_b = lax.dot_general(a, b, (((0,), (0,)), ((), ())))          # [16,10]
    matvec = a @ v                                                    # [24]
    vdot = jnp.dot(v, v)                                              # []
    # batch dim 1 of x with batch dim 0 of y, contract x2 with y1
    bat = lax.dot_general(x, y, (((2,), (1,)), ((1,), (0,))))         # [6,5,7]
    return at_b, matvec, vdot, bat


def _mlp_inputs(rng):
    return [unif(rng, -0.5, 0.5, (8, 16)), unif(rng, -0.1, 0.1, (16,)),
            unif(rng, -0.5, 0.5, (16, 1)), unif(rng, -0.1, 0.1, (1,)),
            unif(rng, -1, 1, (32, 8)), unif(rng, -1, 1, (32, 1))]


@register("mlp_value_and_grad",
          "2-layer MLP (tanh) MSE loss; jax.value_and_grad w.r.t. (W1, b1, W2, b2). "
          "Outputs: loss, dW1, db1, dW2, db2.", 1e-4, _mlp_inputs)
def mlp_value_and_grad(w1, b1, w2, b2, x, y):
    def loss(params):
        w1, b1, w2, b2 = params
        h = jnp.tanh(x @ w1 + b1)
        pred = h @ w2 + b2
        return jnp.mean((pred - y) ** 2)
    val, grads = jax.value_and_grad(loss)((w1, b1, w2, b2))
    return val, grads


_CONV_DN = ("NHWC", "HWIO", "NHWC")

register("conv2d_stride2_same",
         "lax.conv_general_dilated NHWC/HWIO x f32[2,16,16,3] w f32[3,3,3,8], stride 2, SAME.",
         1e-4,
         lambda rng: [unif(rng, -1, 1, (2, 16, 16, 3)), unif(rng, -1, 1, (3, 3, 3, 8))])(
    lambda x, w: lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=_CONV_DN))

register("conv2d_rhs_dilated",
         "lax.conv_general_dilated NHWC/HWIO x f32[2,16,16,3] w f32[3,3,3,8], stride 1, "
         "rhs_dilation 2, padding ((1,2),(2,1)).", 1e-4,
         lambda rng: [unif(rng, -1, 1, (2, 16, 16, 3)), unif(rng, -1, 1, (3, 3, 3, 8))])(
    lambda x, w: lax.conv_general_dilated(x, w, (1, 1), ((1, 2), (2, 1)), rhs_dilation=(2, 2),
                                          dimension_numbers=_CONV_DN))


@register("conv2d_grad",
          "Gradients of sum(conv(x,w,stride 2,SAME)*g) w.r.t. x and w (transposed / "
          "lhs-dilated convolutions), plus a depthwise conv (feature_group_count=3).", 1e-4,
          lambda rng: [unif(rng, -1, 1, (2, 12, 12, 3)), unif(rng, -1, 1, (3, 3, 3, 4)),
                       unif(rng, -1, 1, (2, 6, 6, 4)), unif(rng, -1, 1, (3, 3, 1, 3))])
def conv2d_grad(x, w, g, wd):
    def f(x, w):
        y = lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=_CONV_DN)
        return jnp.sum(y * g)
    dx, dw = jax.grad(f, argnums=(0, 1))(x, w)
    dep = lax.conv_general_dilated(x, wd, (1, 1), "SAME", dimension_numbers=_CONV_DN,
                                   feature_group_count=3)
    return dx, dw, dep


register("softmax", "jax.nn.softmax over the last axis of f32[16,32] (values in [-8,8]).", 1e-4,
         lambda rng: [unif(rng, -8, 8, (16, 32))])(lambda x: jax.nn.softmax(x, axis=-1))

register("logsumexp",
         "jax.nn.logsumexp over the last axis and over everything, f32[16,32] with large "
         "magnitudes (|x| <= 200) to exercise the max-shift.", 1e-5,
         lambda rng: [unif(rng, -200, 200, (16, 32))])(
    lambda x: (jax.nn.logsumexp(x, axis=-1), jax.nn.logsumexp(x)))


def _argmax_inputs(rng):
    x = np.round(unif(rng, -2, 2, (16, 32)), 1).astype(F32)  # many ties
    xi = rng.integers(-5, 5, (16, 32), dtype=np.int32)
    return [x, xi]


register("argmax",
         "jnp.argmax axis 1 and jnp.argmin axis 0 on f32[16,32] with ties (first index wins), "
         "plus argmax on s32 (variadic reduce).", 0, _argmax_inputs)(
    lambda x, xi: (jnp.argmax(x, axis=1), jnp.argmin(x, axis=0), jnp.argmax(xi, axis=0)))

register("cumsum",
         "jnp.cumsum on f32[64], jnp.cumsum on s32[8,16] axis 0, jnp.cumprod f32[16], "
         "lax.cummax f32[8,16] axis 1.", 1e-5,
         lambda rng: [unif(rng, -1, 1, (64,)), rng.integers(-100, 100, (8, 16), dtype=np.int32),
                      unif(rng, 0.8, 1.25, (16,)), unif(rng, -1, 1, (8, 16))])(
    lambda x, xi, p, m: (jnp.cumsum(x), jnp.cumsum(xi, axis=0), jnp.cumprod(p),
                         lax.cummax(m, axis=1)))


def _sort_inputs(rng):
    keys = np.round(unif(rng, -1, 1, (8, 16)), 1).astype(F32)  # ties -> stability matters
    vals = rng.integers(0, 1000, (8, 16), dtype=np.int32)
    ints = rng.integers(-50, 50, (32,), dtype=np.int32)
    return [keys, vals, ints]


register("sort",
         "Multi-operand sorts: jnp.argsort (stable, keys+iota), lax.sort((keys, values), "
         "num_keys=1), jnp.sort of s32 and descending f32 sort.", 0, _sort_inputs)(
    lambda k, v, i: (jnp.argsort(k, axis=-1), *lax.sort((k, v), dimension=1, num_keys=1),
                     jnp.sort(i), jnp.sort(k, axis=0, descending=True)))


def _totalorder_inputs(rng):
    x = unif(rng, -3, 3, (32,))
    x[[1, 5, 9, 13, 17, 21, 25, 29]] = [np.nan, -0.0, 0.0, np.inf, -np.inf, np.nan, -0.0, 1e-40]
    x[30] = -np.nan
    return [x]


register("compare_totalorder",
         "jnp.sort / jnp.argsort of f32 containing NaN, -NaN, +-0, +-inf, denormal: the "
         "comparator uses compare type=TOTALORDER (NaNs sort last, -0 == +0 stable).", 0,
         _totalorder_inputs)(lambda x: (jnp.sort(x), jnp.argsort(x)))

register("top_k", "lax.top_k(x, 5) on f32[8,32] (values and s32 indices).", 0,
         lambda rng: [unif(rng, -10, 10, (8, 32))])(lambda x: lax.top_k(x, 5))


def _fancy_inputs(rng):
    x = unif(rng, -1, 1, (10, 4))
    # 4 duplicated, -1/-10 wrap to 9/0, 12 out of bounds, -13 -> -3 still out of bounds
    idx = np.array([1, 4, -1, -10, 12, -13, 4, 7], np.int32)
    upd = unif(rng, -1, 1, (8, 4))
    return [x, idx, upd]


register("fancy_indexing",
         "Gather x[idx] (negative indices wrap, out-of-bounds clamped), jnp.take mode='fill' "
         "(NaN fill), scatter x.at[idx].add(v) with a duplicate index (accumulates) and OOB "
         "indices (dropped), x.at[idx[:6]].set(v[:6]) (unique indices, OOB dropped).", 1e-6,
         _fancy_inputs)(
    lambda x, idx, v: (x[idx], jnp.take(x, idx, axis=0, mode="fill", fill_value=np.nan),
                       x.at[idx].add(v), x.at[idx[:6]].set(v[:6])))


def _dus_inputs(rng):
    return [unif(rng, -1, 1, (16, 16)), unif(rng, 2, 3, (4, 4)),
            np.array(14, np.int32), np.array(-3, np.int32),
            np.array(3, np.int32), np.array(20, np.int32)]


register("dynamic_update_slice",
         "lax.dynamic_update_slice(x, upd, (i, j)) and lax.dynamic_slice(x, (k, l), (5, 5)) "
         "with traced s32 starts, including out-of-range starts (i=14, j=-3, l=20) that are "
         "clamped (negative ones first wrap as in JAX).", 0, _dus_inputs)(
    lambda x, u, i, j, k, l: (lax.dynamic_update_slice(x, u, (i, j)),
                              lax.dynamic_slice(x, (k, l), (5, 5))))


def _random_inputs(rng):
    return [rng.integers(0, 2 ** 32, (2,), dtype=np.uint32)]


@register("jax_random",
          "jax.random with a traced threefry2x32 key (raw uint32[2] key data, "
          "wrap_key_data): split, normal f32[64], uniform f32[8,8], bits u32[16].", 1e-5,
          _random_inputs, f64_check=False)
def jax_random(key_data):
    key = jax.random.wrap_key_data(key_data)
    k1, k2, k3 = jax.random.split(key, 3)
    return (jax.random.normal(k1, (64,)), jax.random.uniform(k2, (8, 8)),
            jax.random.bits(k3, (16,)))


def _cond_inputs(rng):
    x = unif(rng, 0, 1, (16,))
    return [x, unif(rng, -1, 1, (16,)), np.array(False), np.array(2, np.int32)]


@register("lax_cond",
          "lax.cond on traced predicates (x.sum() > 0 -> true branch, pred input False -> "
          "false branch) and lax.switch with a traced s32 index (2 -> third branch).", 1e-5,
          _cond_inputs)
def lax_cond(x, y, flag, idx):
    a = lax.cond(x.sum() > 0, lambda x, y: jnp.sin(x) * y, lambda x, y: jnp.cos(x) - y, x, y)
    b = lax.cond(flag, lambda x, y: x + y, lambda x, y: x * y, x, y)
    c = lax.switch(idx, [lambda x: x * 2.0, lambda x: x - 1.0, lambda x: jnp.exp(x)], y)
    return a, b, c


register("fori_loop",
         "lax.fori_loop(0, 10, c <- 0.9*c + 0.1*sin(c + i)) on f32[32] (static trip count).",
         1e-5, lambda rng: [unif(rng, -2, 2, (32,))])(
    lambda x: lax.fori_loop(0, 10, lambda i, c: 0.9 * c + 0.1 * jnp.sin(c + i.astype(F32)), x))

register("fori_loop_10k",
         "lax.fori_loop(0, 10000, c <- 0.999*c + 0.001*sin(c)) on f32[16]: many tiny iterations "
         "(benchmark for loop overhead; design.md's 10,000-iteration loop).",
         1e-4, lambda rng: [unif(rng, -2, 2, (16,))])(
    lambda x: lax.fori_loop(0, 10000, lambda i, c: 0.999 * c + 0.001 * jnp.sin(c), x))


@register("while_loop",
          "lax.while_loop with data-dependent trip counts: Collatz step counts for s32[32] "
          "(loop until all reach 1) and doubling a f32 scalar until it exceeds a limit.", 0,
          lambda rng: [rng.integers(1, 300, (32,), dtype=np.int32),
                       np.array(0.37, F32), np.array(1000.0, F32)])
def while_loop(n, x0, limit):
    def cond(c):
        n, steps, it = c
        return jnp.any(n != 1)

    def body(c):
        n, steps, it = c
        steps = steps + (n != 1).astype(jnp.int32)
        n = jnp.where(n == 1, 1, jnp.where(n % 2 == 0, n // 2, 3 * n + 1))
        return n, steps, it + 1

    _, steps, iters = lax.while_loop(cond, body, (n, jnp.zeros_like(n), jnp.int32(0)))
    x, k = lax.while_loop(lambda c: c[0] <= limit, lambda c: (c[0] * 2.0, c[1] + 1),
                          (x0, jnp.int32(0)))
    return steps, iters, x, k


def _scan_body(c, x):
    c = c * 0.9 + x
    return c, (c, c.sum())


register("scan",
         "lax.scan cumulative: carry f32[4], xs f32[32,4]; c <- 0.9*c + x; emits (c, sum(c)).",
         1e-5, lambda rng: [unif(rng, -1, 1, (4,)), unif(rng, -1, 1, (32, 4))])(
    lambda c0, xs: lax.scan(_scan_body, c0, xs))


def _lowp_inputs(dtype):
    def mk(rng):
        return [unif(rng, -2, 2, (64,)).astype(dtype), unif(rng, -2, 2, (64,)).astype(dtype)]
    return mk


_LOWP_NOTE = ("XLA:CPU may evaluate the elementwise chain in f32 and round once; an "
              "implementation rounding after every op differs by a few ulps.")
register("bf16_arith", "bf16[64] inputs: exp(a*b*0.5) + a*b - b, tanh; bf16 outputs.", 2e-2,
         _lowp_inputs(BF16), f64_check=False, notes=_LOWP_NOTE)(
    lambda a, b: (jnp.exp(a * b * 0.5) + a * b - b, jnp.tanh(a) * b))
register("f16_arith", "f16[64] inputs: exp(a*b*0.5) + a*b - b, tanh; f16 outputs.", 5e-3,
         _lowp_inputs(np.float16), f64_check=False, notes=_LOWP_NOTE)(
    lambda a, b: (jnp.exp(a * b * 0.5) + a * b - b, jnp.tanh(a) * b))

I32_MIN, I32_MAX = np.iinfo(np.int32).min, np.iinfo(np.int32).max


def _int_arith_inputs(rng):
    a = np.concatenate([[7, -7, 7, -7, I32_MIN, I32_MIN, 5, 0, I32_MAX, -1, 100, -100],
                        rng.integers(-1000, 1000, 20)]).astype(np.int32)
    b = np.concatenate([[2, 2, -2, -2, -1, 0, 0, 0, 1, 3, -7, 7],
                        rng.integers(-20, 20, 20)]).astype(np.int32)
    ua = np.concatenate([[7, 0, 2 ** 32 - 1, 5], rng.integers(0, 2 ** 32, 12)]).astype(np.uint32)
    ub = np.concatenate([[0, 0, 3, 2 ** 32 - 1], rng.integers(0, 100, 12)]).astype(np.uint32)
    return [a, b, ua, ub]


register("int_arith",
         "s32/u32 arithmetic: lax.div/lax.rem (truncating; by zero; INT_MIN/-1), jnp "
         "floor_divide/remainder (python semantics), wrapping add/mul/neg/abs, min/max, sign; "
         "u32 div/rem incl. by zero.", 0, _int_arith_inputs)(
    lambda a, b, ua, ub: (lax.div(a, b), lax.rem(a, b), jnp.floor_divide(a, b),
                          jnp.remainder(a, b), a + b, a * b, -a, jnp.abs(a),
                          jnp.minimum(a, b), jnp.maximum(a, b), jnp.sign(a),
                          lax.div(ua, ub), lax.rem(ua, ub), ua * ub, ua - ub))


def _int_bit_inputs(rng):
    a = np.concatenate([[0, 1, -1, I32_MIN, I32_MAX, 0x0F0F0F0F, -256, 12345],
                        rng.integers(I32_MIN, I32_MAX, 8, endpoint=True)]).astype(np.int32)
    s = np.array([0, 1, 31, 32, 33, -1, 4, 16, 7, 3, 0, 100, 2, 30, 5, 8], np.int32)
    b = rng.integers(I32_MIN, I32_MAX, 16, endpoint=True).astype(np.int32)
    u = np.concatenate([[0, 1, 2 ** 32 - 1, 2 ** 31], rng.integers(0, 2 ** 32, 12)]).astype(
        np.uint32)
    return [a, s, b, u]


register("int_bitwise",
         "Shifts (left / arithmetic right / logical right, with amounts 0,31,32,33,-1,100), "
         "and/or/xor/not, population_count and clz on s32 and u32.", 0, _int_bit_inputs)(
    lambda a, s, b, u: (lax.shift_left(a, s), lax.shift_right_arithmetic(a, s),
                        lax.shift_right_logical(a, s), a & b, a | b, a ^ b, ~a,
                        lax.population_count(a), lax.clz(a),
                        lax.shift_right_logical(u, s.astype(np.uint32)),
                        lax.population_count(u), lax.clz(u), ~u))


def _convert_inputs(rng):
    f = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 2.7, -2.7, 1e10, 255.5, 256.0, -1.0, 0.5,
                  -0.5, 127.9, -128.9, 65536.0, 2147483520.0, -2147483648.0, -0.0, 4294967040.0,
                  1e-30, 300.0, -129.0, 1.5],
                 dtype=F32)
    i = np.array([0, 1, -1, 127, 128, 255, 256, -129, I32_MIN, I32_MAX, 16777217, 65535],
                 dtype=np.int32)
    return [f, i]


register("convert",
         "Float->int converts (NaN, +-inf, out-of-range: saturating in XLA) to s32, u32, s8, "
         "u8; int narrowing (wrap) s32->s8/u8/s16; s32->f32 rounding; f32->f16/bf16 and back; "
         "pred conversions.", 0, _convert_inputs, f64_check=False)(
    lambda f, i: (f.astype(jnp.int32), f.astype(jnp.uint32), f.astype(jnp.int8),
                  f.astype(jnp.uint8), i.astype(jnp.int8), i.astype(jnp.uint8),
                  i.astype(jnp.int16), i.astype(jnp.float32), f.astype(jnp.float16),
                  f.astype(jnp.bfloat16).astype(jnp.float32), f.astype(jnp.bool_),
                  (i > 0).astype(jnp.float32)))


@register("reductions",
          "reduce: sum axis 0, max axis 1, min over all, prod axis 1, mean, any/all on pred, "
          "s32 sum (wrapping), u8 max.", 1e-5,
          lambda rng: [unif(rng, -1, 1, (16, 32)), unif(rng, 0.9, 1.1, (16, 32)),
                       rng.integers(-2 ** 28, 2 ** 28, (16, 32), dtype=np.int32),
                       rng.integers(0, 256, (16, 32), dtype=np.uint8)])
def reductions(x, p, xi, xu):
    return (x.sum(0), x.max(1), x.min(), p.prod(1), x.mean(), (x > 0.9).any(1),
            (x > -0.99).all(0), xi.sum(), xu.max(0))


@register("reduce_window",
          "lax.reduce_window: 2x2/2 max pooling (VALID) and 3x3/2 average pooling via sum "
          "(SAME padding, divided by 9) on NHWC f32[2,16,16,3]; s32 max window with padding.",
          1e-5, lambda rng: [unif(rng, -1, 1, (2, 16, 16, 3)),
                             rng.integers(-100, 100, (10, 10), dtype=np.int32)])
def reduce_window(x, xi):
    mx = lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    avg = lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 2, 2, 1), "SAME") / 9.0
    imx = lax.reduce_window(xi, np.int32(I32_MIN), lax.max, (3, 2), (2, 3), ((1, 1), (0, 2)))
    return mx, avg, imx


register("pad",
         "lax.pad with negative low edge, interior padding and a traced padding value: "
         "config [(1,2,0), (-1,1,2)] on f32[4,5]; also [(-1,-1,1),(2,0,0)] on s32.", 0,
         lambda rng: [unif(rng, -1, 1, (4, 5)), np.array(-7.5, F32),
                      rng.integers(-9, 9, (5, 3), dtype=np.int32)])(
    lambda x, pv, xi: (lax.pad(x, pv, [(1, 2, 0), (-1, 1, 2)]),
                       lax.pad(xi, np.int32(42), [(-1, -1, 1), (2, 0, 0)])))


@register("shape_ops",
          "transpose, reshape, concatenate, reverse, iota, broadcast_in_dim, strided slice.", 1e-6,
          lambda rng: [unif(rng, -1, 1, (4, 6, 8)), unif(rng, -1, 1, (6,))])
def shape_ops(x, v):
    t = jnp.transpose(x, (2, 0, 1))                 # [8,4,6]
    r = t.reshape(8, 24)
    c = jnp.concatenate([r, lax.rev(r, (0, 1)), r[:3]], axis=0)   # [19,24]
    io = lax.broadcasted_iota(jnp.float32, (8, 24), 1) + r
    b = jnp.broadcast_to(v[None, :, None], (3, 6, 5))
    s = x[:, 1:6:2, ::3]
    return t, c, io, b, s, lax.iota(jnp.int32, 7)


@register("select_and_scatter",
          "Gradient of sum(maxpool(x)*w) w.r.t. x (3x3 windows, stride 2, VALID; overlapping "
          "windows): select-and-scatter.", 1e-5,
          lambda rng: [unif(rng, -1, 1, (2, 11, 11, 3)), unif(rng, -1, 1, (2, 5, 5, 3))])
def select_and_scatter(x, w):
    def f(x):
        y = lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "VALID")
        return jnp.sum(y * w)
    return jax.grad(f)(x)


def _unary_inputs(rng):
    return [unif(rng, -3, 3, (64,)), unif(rng, 0.05, 10, (64,)), unif(rng, -1.2, 1.2, (64,)),
            unif(rng, -3, 3, (64,))]


@register("float_unary",
          "Elementwise f32 math: exp, expm1, log, log1p, logistic, sin, cos, tan, tanh, atan2, "
          "erf, erf_inv, sqrt, rsqrt, cbrt, pow, integer_pow, exp2, log2, round (half-even and "
          "away-from-zero), floor, ceil, sign, abs, isfinite, sinh/cosh/asinh/atan.", 1e-4,
          _unary_inputs)
def float_unary(x, p, t, y):
    return (jnp.exp(x), jnp.expm1(x), jnp.log(p), jnp.log1p(t * 0.8), jax.nn.sigmoid(x),
            jnp.sin(x * 3.0), jnp.cos(x * 3.0), jnp.tan(t), jnp.tanh(x), jnp.arctan2(x, y),
            lax.erf(x), lax.erf_inv(t * 0.8), jnp.sqrt(p), lax.rsqrt(p), jnp.cbrt(x),
            jnp.power(p, y), x ** 3, jnp.exp2(x), jnp.log2(p), jnp.round(x * 2.0),
            lax.round(x * 2.0, lax.RoundingMethod.AWAY_FROM_ZERO), jnp.floor(x), jnp.ceil(x),
            jnp.sign(x), jnp.abs(x), jnp.isfinite(jnp.log(t)), jnp.sinh(x), jnp.cosh(x),
            jnp.arcsinh(x), jnp.arctan(x))


def _special_inputs(rng):
    s = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, -0.0, 0.0, np.nan, np.inf,
                  -np.inf, 1e30, -1e-30, 3.7, -3.7, 8388609.0, -8388607.5, 1e-45, 2.4999998],
                 dtype=F32)
    return [s]


register("float_special",
         "Rounding/classification on special values (halves, +-0, NaN, +-inf, huge, denormal): "
         "jnp.round (half-even), lax.round AWAY_FROM_ZERO, floor, ceil, trunc, sign, abs, neg, "
         "isfinite, isnan, max/min with NaN. Exact; NaN positions must match.", 0,
         _special_inputs, f64_check=False)(
    lambda s: (jnp.round(s), lax.round(s, lax.RoundingMethod.AWAY_FROM_ZERO), jnp.floor(s),
               jnp.ceil(s), jnp.trunc(s), jnp.sign(s), jnp.abs(s), -s, jnp.isfinite(s),
               jnp.isnan(s), jnp.maximum(s, 0.0), jnp.minimum(s, 1.0)))


def _clamp_inputs(rng):
    x = unif(rng, -3, 3, (32,))
    return [x, np.array(-1.0, F32), np.array(1.5, F32), unif(rng, -2, 0, (32,)),
            unif(rng, 0, 2, (32,)), rng.integers(-100, 100, (32,), dtype=np.int32)]


register("clamp",
         "lax.clamp with scalar and array bounds, jnp.clip (max/min), s32 clamp.", 0,
         _clamp_inputs)(
    lambda x, lo, hi, alo, ahi, xi: (lax.clamp(lo, x, hi), lax.clamp(alo, x, ahi),
                                     jnp.clip(x, alo, ahi), lax.clamp(np.int32(-10), xi,
                                                                      np.int32(20))))


# ---------------------------------------------------------------------------
# HLO text helpers
# ---------------------------------------------------------------------------

_INSTR_RE = re.compile(r"^\s*(?:ROOT\s+)?%?[^\s=(){}]+\s*=\s*(.*)$")
_OPCODE_RE = re.compile(r"\s*([a-z][a-z0-9\-_]*)\(")


def _split_shape(rest):
    """Return text after the result shape of an instruction (handles tuple shapes)."""
    if rest.startswith("("):
        depth = 0
        for i, ch in enumerate(rest):
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    return rest[i + 1:]
        return ""
    m = re.match(r"\S+", rest)
    return rest[m.end():] if m else ""


def hlo_instructions(text):
    """Yield (computation_is_entry, opcode, line) for every instruction line."""
    in_entry = False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("ENTRY "):
            in_entry = True
            continue
        if s == "}":
            in_entry = False
            continue
        m = _INSTR_RE.match(line)
        if not m:
            continue
        after = _split_shape(m.group(1))
        om = _OPCODE_RE.match(after)
        if not om:
            continue
        yield in_entry, om.group(1), line


def hlo_summary(text):
    counts = {}
    entry_params = {}
    custom_targets = set()
    compare_types = set()
    for in_entry, op, line in hlo_instructions(text):
        counts[op] = counts.get(op, 0) + 1
        if op == "custom-call":
            m = re.search(r'custom_call_target="([^"]*)"', line)
            if m:
                custom_targets.add(m.group(1))
        if op == "compare":
            m = re.search(r"\btype=(\w+)", line)
            if m:
                compare_types.add(m.group(1))
        if in_entry and op == "parameter":
            idx = int(re.search(r"parameter\((\d+)\)", line).group(1))
            rest = _INSTR_RE.match(line).group(1)
            shape = rest[: len(rest) - len(_split_shape(rest))].strip()
            entry_params[idx] = re.sub(r"\{[^}]*\}", "", shape)
    params = [entry_params[i] for i in sorted(entry_params)]
    return {"opcode_counts": dict(sorted(counts.items())), "entry_params": params,
            "custom_call_targets": sorted(custom_targets), "compare_types": sorted(compare_types)}


_NP_TO_HLO = {
    np.dtype(np.float32): "f32", np.dtype(np.float16): "f16", np.dtype(np.float64): "f64",
    np.dtype(np.int8): "s8", np.dtype(np.int16): "s16", np.dtype(np.int32): "s32",
    np.dtype(np.int64): "s64", np.dtype(np.uint8): "u8", np.dtype(np.uint16): "u16",
    np.dtype(np.uint32): "u32", np.dtype(np.uint64): "u64", np.dtype(np.bool_): "pred",
    np.dtype(jnp.bfloat16): "bf16",
}


def hlo_type(arr):
    return _NP_TO_HLO[np.asarray(arr).dtype]


def hlo_shape_str(arr):
    arr = np.asarray(arr)
    return "%s[%s]" % (hlo_type(arr), ",".join(str(d) for d in arr.shape))


def save_array(path, arr):
    arr = np.asarray(arr)
    storage = None
    if arr.dtype == np.dtype(jnp.bfloat16):
        arr = arr.view(np.uint16)
        storage = "bf16-bits-as-u16"
    np.save(path, np.array(arr, order="C", copy=True), allow_pickle=False)
    return storage


def is_float(arr):
    return hlo_type(arr) in ("f16", "bf16", "f32", "f64")


def rel_l2(got, ref):
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    mask = np.isfinite(ref) & np.isfinite(got)
    d = np.linalg.norm(got[mask] - ref[mask])
    n = np.linalg.norm(ref[mask])
    return float(d / n) if n > 0 else float(d)


def io_entry(fname, arr, storage, tol=None):
    arr = np.asarray(arr)
    e = {"file": fname, "dtype": hlo_type(arr), "shape": list(arr.shape)}
    if storage:
        e["storage"] = storage
    if tol is not None:
        e["tolerance"] = tol
        if is_float(arr):
            a = arr.astype(np.float32)
            e["has_nan"] = bool(np.isnan(a).any())
            e["has_inf"] = bool(np.isinf(a).any())
    return e


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def clean_dir(d):
    os.makedirs(d, exist_ok=True)
    for fn in os.listdir(d):
        if re.match(r"^(in|out)_\d+\.npy$", fn) or fn in ("module.hlo", "module.opt.hlo",
                                                         "meta.json"):
            if fn == "module.opt.hlo" and os.path.basename(d) == "seed_draw_points":
                continue
            os.remove(os.path.join(d, fn))


def base_meta(name, description, tol):
    return {
        "name": name,
        "description": description,
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "numpy_version": np.__version__,
        "backend": "cpu",
        "x64": False,
        "tolerance": tol,
        "tolerance_metric": "relative L2 over float outputs: ||got-ref||_2 / ||ref||_2 "
                            "(non-finite values must match positionally and are excluded); integer/pred "
                            "outputs must match exactly",
    }


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------

def f64_errors(sample, args, outs):
    """Relative L2 error of JAX's f32 outputs against the same program run in f64."""
    args64 = [a.astype(np.float64) if np.asarray(a).dtype == np.float32 else a for a in args]
    with jax.enable_x64(True):
        outs64 = jax.tree_util.tree_leaves(jax.jit(sample.fn)(*args64))
        outs64 = [np.asarray(o) for o in outs64]
    errs = []
    for o, o64 in zip(outs, outs64):
        if is_float(o) and o64.dtype == np.float64:
            errs.append(rel_l2(o, o64))
        else:
            errs.append(None)
    return errs


def generate_sample(sample):
    d = os.path.join(HERE, sample.name)
    clean_dir(d)
    args = [np.asarray(a) for a in sample.make_inputs(rng_for(sample.name))]

    jf = jax.jit(sample.fn, keep_unused=True)
    lowered = jf.lower(*args)
    pre = lowered.as_text(dialect="hlo")
    compiled = lowered.compile()
    opt = compiled.as_text()
    outs = [np.asarray(o) for o in jax.tree_util.tree_leaves(jf(*args))]
    # The compiled executable must agree with jf (same executable in practice).
    outs2 = [np.asarray(o) for o in jax.tree_util.tree_leaves(compiled(*args))]
    for a, b in zip(outs, outs2):
        assert np.array_equal(a, b, equal_nan=True), sample.name

    s_pre, s_opt = hlo_summary(pre), hlo_summary(opt)
    want = [hlo_shape_str(a) for a in args]
    if s_pre["entry_params"] != want:
        raise SystemExit("%s: pre-opt ENTRY params %s != inputs %s"
                         % (sample.name, s_pre["entry_params"], want))
    pruned = s_opt["entry_params"] != want

    write_text(os.path.join(d, "module.hlo"), pre)
    write_text(os.path.join(d, "module.opt.hlo"), opt)
    meta = base_meta(sample.name, sample.description, sample.tol)
    inputs = []
    for k, a in enumerate(args):
        st = save_array(os.path.join(d, "in_%d.npy" % k), a)
        inputs.append(io_entry("in_%d.npy" % k, a, st))
    outputs = []
    for k, o in enumerate(outs):
        st = save_array(os.path.join(d, "out_%d.npy" % k), o)
        outputs.append(io_entry("out_%d.npy" % k, o, st, sample.tol if is_float(o) else 0))
    if sample.f64_check:
        try:
            errs = f64_errors(sample, args, outs)
        except Exception as e:  # informational only
            print("  (f64 check failed for %s: %s)" % (sample.name, e))
            errs = [None] * len(outs)
        for e, err in zip(outputs, errs):
            if err is not None:
                e["f32_vs_f64_rel_l2"] = float("%.3g" % err)
                if err * 3 > e["tolerance"] and e["tolerance"] > 0:
                    print("  WARNING %s %s: f32-vs-f64 error %.3g close to tolerance %g"
                          % (sample.name, e["file"], err, e["tolerance"]))
    meta["inputs"] = inputs
    meta["outputs"] = outputs
    meta["entry_param_count"] = len(s_pre["entry_params"])
    meta["opt_entry_param_count"] = len(s_opt["entry_params"])
    meta["opt_params_pruned"] = pruned
    meta["opcodes"] = sorted(set(s_pre["opcode_counts"]) | set(s_opt["opcode_counts"]))
    meta["opcodes_by_file"] = {"module.hlo": sorted(s_pre["opcode_counts"]),
                               "module.opt.hlo": sorted(s_opt["opcode_counts"])}
    meta["opcode_counts"] = {"module.hlo": s_pre["opcode_counts"],
                             "module.opt.hlo": s_opt["opcode_counts"]}
    meta["custom_call_targets"] = {"module.hlo": s_pre["custom_call_targets"],
                                   "module.opt.hlo": s_opt["custom_call_targets"]}
    meta["compare_types"] = sorted(set(s_pre["compare_types"]) | set(s_opt["compare_types"]))
    if sample.notes:
        meta["notes"] = sample.notes
    meta.update(sample.extra_meta)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=False)
        f.write("\n")
    return meta


# --- seed_draw_points: a real post-optimisation module from the seed text --------------

SEED_NAME = "seed_draw_points"


def seed_module_text():
    path = os.path.join(HERE, SEED_NAME, "module.opt.hlo")
    if os.path.exists(path):
        with open(path) as f:
            return f.read()
    with open(SEED_TEXT_SOURCE) as f:
        lines = f.read().splitlines(keepends=True)
    start = next(i for i, l in enumerate(lines)
                 if l.startswith("HloModule xla_computation_draw_points.130"))
    text = "".join(lines[start:])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return text


def seed_oracle_text(text):
    """Semantics-preserving rewrite so that today's XLA:CPU accepts an *optimised* module
    as compiler input: fusion instructions become `call`s of the same fused computations,
    and `bitcast` becomes `reshape` (all shapes in this module carry the default row-major
    layout, for which a bitcast between equal-sized shapes is exactly a reshape)."""
    t = re.sub(r" fusion\((.*)\), kind=k\w+, calls=(%[\w.\-]+)", r" call(\1), to_apply=\2",
               text)
    t = re.sub(r"(\]) bitcast\(", r"\1 reshape(", t)
    return t


def run_hlo_text_on_xla_cpu(text, args):
    from jax._src.lib import xla_client as xc
    module = xc._xla.hlo_module_from_text(text)
    stablehlo = xc._xla.mlir.hlo_to_stablehlo(module.as_serialized_hlo_module_proto())
    dev = jax.devices("cpu")[0]
    exe = dev.client.compile_and_load(stablehlo, executable_devices=xc.DeviceList((dev,)),
                                      compile_options=xc.CompileOptions())
    bufs = [jax.device_put(a, dev) for a in args]
    res = exe.execute_sharded(bufs).disassemble_into_single_device_arrays()
    return [np.asarray(r[0]) for r in res]


def seed_numpy_crosscheck(pos):
    """Independent numpy reading of the seed module (sanity check only, not the oracle)."""
    out = np.zeros((64, 64), np.float32)
    a = np.arange(4)
    shape = (pos.shape[0], 4, 4)
    x = np.broadcast_to(pos[:, 0][:, None, None] + a[None, None, :], shape)  # [n,a,b]: x + b
    y = np.broadcast_to(pos[:, 1][:, None, None] + a[None, :, None], shape)  # [n,a,b]: y + a
    cx = np.trunc(x).astype(np.int16).astype(np.int32).ravel()
    cy = np.trunc(y).astype(np.int16).astype(np.int32).ravel()
    val = ((cx < 64) & (cy < 64)).astype(np.float32)
    cx = np.where(cx < 0, cx + 64, cx)
    cy = np.where(cy < 0, cy + 64, cy)
    ok = (cx >= 0) & (cx < 64) & (cy >= 0) & (cy < 64)
    np.add.at(out, (cx[ok], cy[ok]), val[ok])
    return out


def generate_seed_draw_points():
    d = os.path.join(HERE, SEED_NAME)
    text = seed_module_text()
    clean_dir(d)
    rng = rng_for(SEED_NAME)
    pos = rng.uniform(-8, 72, (4096, 2)).astype(F32)
    outs = run_hlo_text_on_xla_cpu(seed_oracle_text(text), [pos])
    check = seed_numpy_crosscheck(pos)
    if not np.array_equal(outs[0], check):
        raise SystemExit("seed_draw_points: XLA result disagrees with numpy cross-check")
    s_opt = hlo_summary(text)
    assert s_opt["entry_params"] == [hlo_shape_str(pos)], s_opt["entry_params"]
    meta = base_meta(SEED_NAME,
                     "Verbatim post-optimisation XLA HLO from the seed article "
                     "(xla_computation_draw_points.130, an older XLA GPU dump: kLoop/kInput "
                     "fusions, bitcasts, gather, scatter-add into f32[64,64]). Points "
                     "f32[4096,2] uniform in [-8,72): each point adds 1 to the 4x4 pixel block "
                     "at its truncated s16 coordinates if both are < 64; negative indices wrap "
                     "(+64) and out-of-range scatter indices are dropped.",
                     0.0)
    meta["jax_version_note"] = ("module text predates this JAX; versions are those used to "
                                "compute the reference output")
    st = save_array(os.path.join(d, "in_0.npy"), pos)
    meta["inputs"] = [io_entry("in_0.npy", pos, st)]
    meta["outputs"] = []
    for k, o in enumerate(outs):
        st = save_array(os.path.join(d, "out_%d.npy" % k), o)
        meta["outputs"].append(io_entry("out_%d.npy" % k, o, st, 0.0))
    meta["tolerance_note"] = "outputs are small integer counts in f32; exact match expected"
    meta["has_pre_opt_module"] = False
    meta["entry_param_count"] = len(s_opt["entry_params"])
    meta["opt_entry_param_count"] = len(s_opt["entry_params"])
    meta["opt_params_pruned"] = False
    meta["result_is_tuple"] = True
    meta["opcodes"] = sorted(s_opt["opcode_counts"])
    meta["opcodes_by_file"] = {"module.opt.hlo": sorted(s_opt["opcode_counts"])}
    meta["opcode_counts"] = {"module.opt.hlo": s_opt["opcode_counts"]}
    meta["custom_call_targets"] = {"module.opt.hlo": s_opt["custom_call_targets"]}
    meta["compare_types"] = s_opt["compare_types"]
    meta["reference_method"] = (
        "module.opt.hlo text executed by XLA itself (jaxlib %s CPU): hlo_module_from_text -> "
        "hlo_to_stablehlo -> Client.compile_and_load -> execute. Before compiling, two "
        "semantics-preserving textual rewrites are applied because XLA:CPU rejects an "
        "already-fused module as input: 'fusion(...), kind=k*, calls=%%c' -> "
        "'call(...), to_apply=%%c' and 'bitcast(' -> 'reshape(' (all layouts are default). "
        "The result is additionally cross-checked against an independent numpy reading."
        % jaxlib.__version__)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    return meta


ALL_NAMES = list(SAMPLES) + [SEED_NAME]


def dir_size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
               if os.path.isfile(os.path.join(d, f)))


def write_manifest():
    entries = []
    for name in ALL_NAMES:
        mp = os.path.join(HERE, name, "meta.json")
        if not os.path.exists(mp):
            continue
        with open(mp) as f:
            m = json.load(f)
        entries.append({
            "name": name,
            "description": m["description"],
            "files": sorted(os.listdir(os.path.join(HERE, name))),
            "has_pre_opt_module": m.get("has_pre_opt_module", True),
            "num_inputs": len(m["inputs"]),
            "num_outputs": len(m["outputs"]),
            "tolerance": m["tolerance"],
            "opt_params_pruned": m["opt_params_pruned"],
            "bytes": dir_size(os.path.join(HERE, name)),
        })
    man = {"jax_version": jax.__version__, "jaxlib_version": jaxlib.__version__,
           "generator": "hlo-samples/generate.py", "samples": entries}
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
        f.write("\n")
    return entries


def load_array(path, entry):
    arr = np.load(path, allow_pickle=False)
    if entry.get("storage") == "bf16-bits-as-u16":
        arr = arr.view(jnp.bfloat16)
    return arr


def verify(names):
    """Re-run every committed module.hlo text through XLA:CPU (parsed from text, not
    re-traced) on the committed inputs and compare with the committed outputs."""
    bad = 0
    for name in names:
        d = os.path.join(HERE, name)
        with open(os.path.join(d, "meta.json")) as f:
            meta = json.load(f)
        args = [load_array(os.path.join(d, e["file"]), e) for e in meta["inputs"]]
        refs = [load_array(os.path.join(d, e["file"]), e) for e in meta["outputs"]]
        if os.path.exists(os.path.join(d, "module.hlo")):
            with open(os.path.join(d, "module.hlo")) as f:
                text = f.read()
            n_params = len(hlo_summary(text)["entry_params"])
            assert n_params == len(args), (name, n_params, len(args))
        else:
            with open(os.path.join(d, "module.opt.hlo")) as f:
                text = seed_oracle_text(f.read())
        got = run_hlo_text_on_xla_cpu(text, args)
        ok = len(got) == len(refs)
        worst = 0.0
        for g, r in zip(got, refs):
            ok = ok and g.dtype == r.dtype and g.shape == r.shape
            if ok and is_float(r):
                gf, rf = g.astype(np.float64), r.astype(np.float64)
                ok = ok and np.array_equal(np.isnan(gf), np.isnan(rf))
                ok = ok and np.array_equal(gf[np.isinf(rf)], rf[np.isinf(rf)])
                worst = max(worst, rel_l2(gf, rf))
            elif ok:
                ok = ok and np.array_equal(g, r)
        ok = ok and worst <= meta["tolerance"]
        bad += not ok
        print("%-24s %s  (max rel L2 %.2g)" % (name, "ok" if ok else "MISMATCH", worst))
    if bad:
        raise SystemExit("%d sample(s) failed verification" % bad)


def main(argv):
    if "--list" in argv:
        print("\n".join(ALL_NAMES))
        return
    if "--verify" in argv:
        verify([a for a in argv if not a.startswith("-")] or ALL_NAMES)
        return
    names = [a for a in argv if not a.startswith("-")] or ALL_NAMES
    unknown = [n for n in names if n not in ALL_NAMES]
    if unknown:
        raise SystemExit("unknown samples: %s (see --list)" % unknown)
    for name in names:
        print("generating", name, flush=True)
        if name == SEED_NAME:
            generate_seed_draw_points()
        else:
            generate_sample(SAMPLES[name])
    entries = write_manifest()
    total = 0
    print("\n%-24s %5s %5s %10s  %s" % ("sample", "in", "out", "bytes", "tolerance"))
    for e in entries:
        total += e["bytes"]
        print("%-24s %5d %5d %10d  %g" % (e["name"], e["num_inputs"], e["num_outputs"],
                                          e["bytes"], e["tolerance"]))
    print("%-24s %22d" % ("total (sample dirs)", total))


if __name__ == "__main__":
    main(sys.argv[1:])
