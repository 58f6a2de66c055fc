"""More op families under `jax.jit` on the plugin, each compared with JAX's CPU backend."""

from common import check  # first: sets JAX_PLATFORMS before JAX starts

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

rng = np.random.default_rng(2)


def normal(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_sort_and_argsort():
    x = normal(6, 33)
    keys = rng.integers(0, 5, size=(40,)).astype(np.int32)  # ties: argsort is stable
    check(lambda x: (jnp.sort(x, axis=1), jnp.argsort(x, axis=0), jnp.sort(x, axis=None)), x)
    check(lambda k: (jnp.argsort(k, stable=True), jnp.sort(k)), keys)
    check(lambda x: lax.top_k(x, 5), x)


def test_convolution_and_its_grad():
    lhs = normal(2, 3, 12, 10)  # NCHW
    rhs = normal(4, 3, 3, 3)  # OIHW

    def conv(lhs, rhs):
        return lax.conv_general_dilated(lhs, rhs, window_strides=(1, 2), padding="SAME", rhs_dilation=(1, 1))

    check(conv, lhs, rhs, rtol=1e-5, atol=1e-5)
    check(
        lambda lhs, rhs: lax.conv_general_dilated(
            lhs, rhs, (2, 1), ((1, 0), (2, 1)), lhs_dilation=(1, 1), rhs_dilation=(2, 1), feature_group_count=1
        ),
        lhs,
        rhs,
        rtol=1e-5,
        atol=1e-5,
    )
    loss = lambda lhs, rhs: jnp.sum(jnp.tanh(conv(lhs, rhs)) ** 2)  # noqa: E731
    check(jax.grad(loss, argnums=(0, 1)), lhs, rhs, rtol=1e-4, atol=1e-5)


def test_cond():
    def f(x, p):
        return lax.cond(p > 0, lambda x: jnp.sin(x) * 2.0, lambda x: jnp.cos(x) - 1.0, x)

    x = normal(5, 7)
    check(f, x, np.float32(1.0))
    check(f, x, np.float32(-1.0))
    check(lambda i, x: lax.switch(i, [jnp.sin, jnp.cos, jnp.tanh], x), np.int32(2), x)


def test_while_loop_with_a_data_dependent_exit():
    def collatz_steps(n):
        def body(state):
            n, k = state
            return jnp.where(n % 2 == 0, n // 2, 3 * n + 1), k + 1

        return lax.while_loop(lambda s: s[0] != 1, body, (n, 0))[1]

    check(jax.vmap(collatz_steps), np.array([1, 6, 7, 27, 97], np.int32))

    def newton_sqrt(a):
        def body(state):
            x, _ = state
            nx = 0.5 * (x + a / x)
            return nx, jnp.abs(nx - x)

        return lax.while_loop(lambda s: s[1] > 1e-6, body, (a, jnp.float32(1.0)))[0]

    check(newton_sqrt, np.float32(1234.5), rtol=1e-6)


def test_gather_and_scatter_with_fancy_indexing():
    x = normal(10, 8)
    rows = np.array([3, 0, 9, 3, -1], np.int32)
    cols = np.array([1, 7, 2, 2, 0], np.int32)
    check(lambda x, r, c: (x[r, c], x[r], x[:, c], x[r[:, None], c[None, :]]), x, rows, cols)
    upd = normal(5)
    check(lambda x, r, c, u: (x.at[r, c].set(u), x.at[r, c].add(u), x.at[r, c].max(u), x.at[r].mul(2.0)), x, rows, cols, upd)
    check(lambda x: x[jnp.argmax(x, axis=0), jnp.arange(8)], x)


def test_cumsum():
    x = normal(7, 300)
    check(lambda x: (jnp.cumsum(x, axis=1), jnp.cumprod(x[:, :10], axis=1), lax.cummax(x, axis=0)), x, rtol=1e-5, atol=1e-5)
    check(lambda a: jnp.cumsum(a), np.arange(1000, dtype=np.int32))


def attention_block(params, x):
    """Pre-norm single-head softmax attention plus an MLP, with residuals."""
    wq, wk, wv, wo, w1, w2 = params

    def norm(h):
        mean = h.mean(-1, keepdims=True)
        return (h - mean) * lax.rsqrt(((h - mean) ** 2).mean(-1, keepdims=True) + 1e-5)

    h = norm(x)
    q, k, v = h @ wq, h @ wk, h @ wv
    scores = q @ jnp.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]).astype(np.float32)
    causal = jnp.tril(jnp.ones(scores.shape[-2:], bool))
    scores = jnp.where(causal, scores, -1e9)
    x = x + jax.nn.softmax(scores, axis=-1) @ v @ wo
    return x + jax.nn.gelu(norm(x) @ w1) @ w2


def test_transformer_block_and_its_grad():
    d, t = 16, 12
    params = tuple(normal(*s) * 0.3 for s in [(d, d), (d, d), (d, d), (d, d), (d, 4 * d), (4 * d, d)])
    x = normal(2, t, d)
    check(attention_block, params, x, rtol=1e-4, atol=1e-5)
    loss = lambda params, x: jnp.mean(attention_block(params, x) ** 2)  # noqa: E731
    check(jax.grad(loss), params, x, rtol=1e-3, atol=1e-5)


def test_complex_numbers():
    z = (normal(4, 16) + 1j * normal(4, 16)).astype(np.complex64)
    w = (normal(4, 16) + 1j * normal(4, 16)).astype(np.complex64)
    check(lambda z, w: (z * w, z / w, jnp.abs(z), jnp.conj(z) + w, jnp.real(z * w), jnp.angle(w)), z, w, rtol=1e-5, atol=1e-5)
    check(lambda z: jnp.fft.fft(z), z, rtol=1e-4, atol=1e-4)
    check(lambda x: jnp.fft.ifft(jnp.fft.fft(x, axis=0), axis=0), z, rtol=1e-4, atol=1e-5)
    check(lambda x: jnp.fft.rfft(x), normal(3, 64), rtol=1e-4, atol=1e-4)
    # A complex result made only of constants (`jnp.ones`, `jnp.full`).
    check(lambda x: (jnp.ones(3, jnp.complex64), jnp.full((2, 2), 1 + 2j, jnp.complex64) * x[0, 0]), z)


def test_hyperbolic_and_inverse_trigonometric():
    # CHLO ops, which reach the plugin as `mhlo.sinh`, `mhlo.asin`, ... custom calls.
    x = np.linspace(-3, 3, 61, dtype=np.float32)
    u = np.linspace(-0.99, 0.99, 45, dtype=np.float32)
    check(lambda x: (jnp.sinh(x), jnp.cosh(x), jnp.arcsinh(x * 100)), x, rtol=1e-6, atol=1e-6)
    check(lambda u: (jnp.arcsin(u), jnp.arccos(u), jnp.arctanh(u), jnp.arccosh(2.0 + u * u * 50)), u, rtol=1e-6, atol=1e-6)


def test_composite():
    # `lax.composite` reaches the plugin as `stablehlo.composite`: a call of its decomposition.
    def tangent(x, *, scale):
        return jnp.sin(x) / jnp.cos(x) * scale

    composite = lax.composite(tangent, name="test.tangent")
    check(lambda x: composite(x, scale=3.0), np.linspace(-1, 1, 9, dtype=np.float32), rtol=1e-6)


def test_rng_bit_generator_and_rbg_keys():
    """`lax.rng_bit_generator` (ThreeFry, Philox, default) and rbg keys: JAX's CPU bits exactly."""
    key = rng.integers(0, 2**32, size=(4,), dtype=np.uint32)
    algs = (lax.RandomAlgorithm.RNG_THREE_FRY, lax.RandomAlgorithm.RNG_PHILOX, lax.RandomAlgorithm.RNG_DEFAULT)

    def bits(k):
        return [lax.rng_bit_generator(k, (5, 7), dtype=jnp.uint32, algorithm=a) for a in algs]

    check(bits, key, rtol=0, atol=0)

    def split(k):
        return jax.random.split(jax.random.wrap_key_data(k, impl="rbg"))

    check(lambda k: jax.random.bits(split(k)[0], (17,)), key, rtol=0, atol=0)
    # Floats from the bits: JAX's erf_inv in our arithmetic, within the default tolerance.
    check(lambda k: jax.random.normal(split(k)[1], (100,)), key)
