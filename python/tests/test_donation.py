"""Buffer donation (`donate_argnums`) and a soak test of a donated step function.

A donated argument's device memory becomes the output the program aliases to it: the argument is
deleted, the output needs no new allocation, and a loop over `state = step(state)` keeps memory flat.
"""

from common import VULKAN  # first: sets JAX_PLATFORMS before JAX starts

import gc  # noqa: E402
import warnings  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

DT = 0.01


def step(x, v):
    return x + DT * v, v - DT * x


def device_bytes():
    """Bytes the plugin's allocator holds on the device (`PJRT_Device_MemoryStats`)."""
    return VULKAN.memory_stats()["bytes_in_use"]


def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def test_donation_deletes_the_argument_and_reuses_its_memory():
    x0 = np.linspace(-1, 1, 64, dtype=np.float32).reshape(32, 2)
    v0 = np.cos(x0)
    f = jax.jit(step, donate_argnums=(0, 1))
    x = jax.device_put(x0, VULKAN)
    v = jax.device_put(v0, VULKAN)
    x1, v1 = f(x, v)  # compiles; the first call's arrays settle
    jax.block_until_ready((x1, v1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Donation is not implemented" / "not usable" fail the test
        before = device_bytes()
        x2, v2 = f(x1, v1)
        jax.block_until_ready((x2, v2))
        after = device_bytes()
    assert x.is_deleted() and v.is_deleted() and x1.is_deleted() and v1.is_deleted()
    assert not x2.is_deleted() and x2.devices() == {VULKAN}
    # Both outputs landed in the donated arrays: no new allocation, and the old ones were not freed either.
    assert after == before
    want_x, want_v = step(*step(x0, v0))
    np.testing.assert_allclose(np.asarray(x2), want_x, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(v2), want_v, rtol=1e-6)
    with pytest.raises(RuntimeError, match="deleted"):
        np.asarray(x1)
    with pytest.raises(ValueError, match="deleted or donated"):  # as on XLA's CPU client
        f(x1, v1)


def test_donation_of_one_argument_keeps_the_other():
    f = jax.jit(lambda a, b: a * b + 1.0, donate_argnums=0)
    a = jax.device_put(np.arange(6, dtype=np.float32), VULKAN)
    b = jax.device_put(np.full(6, 2.0, np.float32), VULKAN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = f(a, b)
    assert a.is_deleted() and not b.is_deleted()
    np.testing.assert_array_equal(np.asarray(out), np.arange(6) * 2.0 + 1.0)
    np.testing.assert_array_equal(np.asarray(b), np.full(6, 2.0))


def test_an_argument_passed_twice_is_read_not_donated():
    f = jax.jit(lambda a, b: a + b, donate_argnums=0)
    a = jax.device_put(np.arange(4, dtype=np.float32), VULKAN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = f(a, a)
    np.testing.assert_array_equal(np.asarray(out), 2.0 * np.arange(4))


def test_unusable_donation_still_runs():
    # No output has the argument's shape: JAX warns that the donation was not usable and copies.
    f = jax.jit(lambda a: jnp.sum(a), donate_argnums=0)
    a = jax.device_put(np.ones((4, 4), np.float32), VULKAN)
    with pytest.warns(UserWarning, match="not usable"):
        out = f(a)
    assert float(out) == 16.0


def test_soak_donated_step_keeps_memory_flat():
    """1000 calls of a donated step on f32[4096, 2]: host RSS and device memory stay flat."""
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((4096, 2)).astype(np.float32)
    v0 = rng.standard_normal((4096, 2)).astype(np.float32)
    f = jax.jit(step, donate_argnums=(0, 1))
    x = jax.device_put(x0, VULKAN)
    v = jax.device_put(v0, VULKAN)
    for _ in range(100):
        x, v = f(x, v)
    jax.block_until_ready((x, v))
    gc.collect()
    rss_100, dev_100 = rss_kib(), device_bytes()
    for _ in range(900):
        x, v = f(x, v)
    jax.block_until_ready((x, v))
    gc.collect()
    rss_1000, dev_1000 = rss_kib(), device_bytes()
    # Each call's arrays are 32 KiB: a leak of one of them per call would be about 28 MiB here.
    assert rss_1000 - rss_100 < 4 * 1024, f"RSS grew from {rss_100} KiB to {rss_1000} KiB"
    assert dev_1000 == dev_100, f"device memory grew from {dev_100} to {dev_1000} bytes"
    # The same recurrence in float64 on the host: a rotation by about DT per step, so x stays bounded.
    want_x, want_v = x0.astype(np.float64), v0.astype(np.float64)
    for _ in range(1000):
        want_x, want_v = step(want_x, want_v)
    np.testing.assert_allclose(np.asarray(x), want_x, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(np.asarray(v), want_v, rtol=1e-3, atol=1e-4)
