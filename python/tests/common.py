"""Shared by the tests: the two devices and a comparison of a jitted function on both."""

import os

os.environ.setdefault("JAX_PLATFORMS", "vulkan,cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

VULKAN = jax.devices("vulkan")[0]
CPU = jax.devices("cpu")[0]


def run_both(f, *args):
    """`f` jitted on each device, its outputs as numpy arrays."""
    jitted = jax.jit(f)
    on_vulkan = jitted(*[jax.device_put(a, VULKAN) for a in args])
    on_cpu = jitted(*[jax.device_put(a, CPU) for a in args])
    leaves_v = jax.tree_util.tree_leaves(on_vulkan)
    leaves_c = jax.tree_util.tree_leaves(on_cpu)
    for leaf in leaves_v:
        assert leaf.devices() == {VULKAN}
    return [np.asarray(v) for v in leaves_v], [np.asarray(c) for c in leaves_c]


def check(f, *args, rtol=1e-6, atol=1e-6):
    got, want = run_both(f, *args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
