"""jax.jit on the Vulkan plugin against JAX's own CPU backend.

Run with the plugin installed (or on PYTHONPATH) and the library findable, e.g.
    HLO_VK_PJRT_LIBRARY=target/release/libhlo_pjrt.so python -m pytest python/tests
"""

from common import VULKAN, check  # first: sets JAX_PLATFORMS before JAX starts

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

rng = np.random.default_rng(0)
X = rng.standard_normal((8, 16)).astype(np.float32)
Y = rng.standard_normal((16, 4)).astype(np.float32)


def test_devices():
    assert VULKAN.platform == "vulkan"
    assert len(jax.devices("vulkan")) == 1


def test_readme_example():
    x = jax.device_put(jnp.ones((4, 4)), VULKAN)
    out = jax.jit(lambda x: jnp.sin(x) @ x.T)(x)
    np.testing.assert_allclose(np.asarray(out), np.full((4, 4), 4 * np.sin(1.0)), rtol=1e-6)


def test_elementwise():
    check(lambda x: jnp.exp(jnp.sin(x) * 2.0) - jnp.tanh(x) / (1.0 + x * x), X)


def test_integer_and_bool():
    a = np.arange(-12, 12, dtype=np.int32).reshape(4, 6)
    check(lambda a: (jnp.where(a % 3 == 0, a * 7, -a), a > 2), a)


def test_reduction():
    check(lambda x: (jnp.sum(x, axis=1), jnp.max(x, axis=0), jnp.argmax(x, axis=1)), X, rtol=1e-5)


def test_dot():
    check(lambda x, y: x @ y, X, Y, rtol=1e-5, atol=1e-5)


def test_fori_loop():
    def f(x):
        return jax.lax.fori_loop(0, 10, lambda i, acc: acc * 0.5 + jnp.cos(acc) + i, x)

    check(f, X[0], rtol=1e-5)


def test_scatter_add():
    idx = np.array([0, 2, 2, 5, 7], dtype=np.int32)
    upd = np.arange(5 * 16, dtype=np.float32).reshape(5, 16)
    check(lambda x, i, u: x.at[i].add(u), X, idx, upd)


def test_several_outputs_and_reuse():
    f = jax.jit(lambda x: (x + 1.0, x * 2.0))
    x = jax.device_put(X, VULKAN)
    a, b = f(x)
    c, d = f(a)  # an output buffer fed back in stays on the device
    np.testing.assert_allclose(np.asarray(c), X + 2.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(d), (X + 1.0) * 2.0, rtol=1e-6)


def test_unsupported_op_is_an_error():
    with pytest.raises(Exception):
        x = jax.device_put(np.ones((4,), np.float32), VULKAN)
        jax.jit(lambda x: jax.pure_callback(lambda v: v, jax.ShapeDtypeStruct((4,), np.float32), x))(x)


def test_random_normal():
    # The key is a uint32 array; JAX wraps it in `sdy.sharding_constraint` when serialising for PJRT.
    check(lambda k: jax.random.normal(k, (5, 3)), np.asarray(jax.random.key_data(jax.random.key(0))), rtol=1e-5)


def test_bfloat16_and_grad():
    w = np.linspace(-1, 1, 6).astype(np.float32)
    check(lambda w: (w * 3).astype(jnp.bfloat16), w)
    check(jax.grad(lambda w: jnp.sum(jnp.tanh(w) ** 2)), w, rtol=1e-5)


def test_strided_host_array():
    host = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    out = jax.jit(lambda a: a * 2.0)(jax.device_put(host, VULKAN))
    np.testing.assert_array_equal(np.asarray(out), host * 2.0)
