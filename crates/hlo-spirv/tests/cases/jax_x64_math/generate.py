# Writes this case: a JAX program of f64 math with x64 enabled, its inputs and JAX's outputs on CPU.
# JAX_PLATFORMS=cpu /opt/jaxvenv/bin/python crates/hlo-spirv/tests/cases/jax_x64_math/generate.py
import os
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
def f(x, y):
    a = jnp.sin(x) * jnp.exp(-jnp.abs(x)) + jnp.cos(3.0 * x)
    b = jnp.log1p(x * x) - jnp.tanh(y) + jax.nn.sigmoid(x - y)
    c = jnp.arctan2(x, y) + jnp.abs(y) ** 1.7 + jnp.tan(x / 4.0)
    d = jnp.expm1(-jnp.abs(y)) + jnp.cbrt(x) + jax.scipy.special.erf(y) + jnp.log(jnp.abs(x) + 1e-3)
    return a * b + c - d
HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
x = rng.uniform(-20, 20, 64).astype(np.float64)
y = rng.uniform(-5, 5, 64).astype(np.float64)
low = jax.jit(f).lower(x, y)
open(HERE + '/module.hlo', 'w').write(low.as_text(dialect="hlo"))
out = np.asarray(jax.jit(f)(x, y))
np.save(HERE + '/x.npy', x); np.save(HERE + '/y.npy', y); np.save(HERE + '/out.npy', out)
print(out[:4], out.dtype)
