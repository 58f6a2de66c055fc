"""JAX programs whose values depend on XLA:CPU's own rewrites, with JAX's outputs.

Each case directory holds the pre-optimisation module (`module.hlo`), its inputs
(`in_K.npy`) and what JAX 0.8.3 on CPU returns (`out_K.npy`); bf16 arrays are stored as
their `<u2` bits. `crates/hlo-run/tests/cli.rs` checks that both backends reproduce the
outputs bit for bit. Regenerate with `/opt/jaxvenv/bin/python generate.py` from this
directory (scripts/setup-jax.sh makes the venv).

What each group exercises (docs/architecture.md, Numerics):
- division by a constant is a multiplication by its reciprocal (x / 3 is x * 0.333333343),
  which moves nearest-neighbour resize indices and means;
- reductions longer than 32 add in blocks of 32 (TreeReductionRewriter), so a sum of 2e7
  ones is 2e7;
- cumulative sums, products and maxima scan in blocks of 16 (ReduceWindowRewriter);
- bf16 ops are computed in f32, and a bf16 result converted to f32 keeps its f32 value;
- pow by 0, 1, 2, 3, -1 and (non-negative) 0.5 becomes multiplications, a division or sqrt;
- products with several constants fold the constants first; a pred mask times x is a select.
"""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(11)


def f32(*shape):
    return jnp.asarray(rng.standard_normal(shape).astype(np.float32))


def bf16(*shape):
    return f32(*shape).astype(jnp.bfloat16)


def save(path, a):
    a = np.asarray(a)
    if a.dtype == jnp.bfloat16:
        a = a.view(np.uint16)
    np.save(path, a)


def case(name, f, *args):
    d = os.path.join(HERE, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "module.hlo"), "w") as out:
        out.write(jax.jit(f).lower(*args).as_text(dialect="hlo"))
    for i, a in enumerate(args):
        save(os.path.join(d, f"in_{i}.npy"), a)
    for i, a in enumerate(jax.tree_util.tree_leaves(jax.jit(f)(*args))):
        save(os.path.join(d, f"out_{i}.npy"), a)


case("div_const", lambda x: x / 3.0, f32(1000))
case("div_const_vec", lambda x: x / jnp.arange(1, 9, dtype=jnp.float32), f32(4, 8))
case("mean_rows", lambda x: jnp.mean(x, axis=-1), f32(4, 300))
case("var_cols", lambda x: jnp.var(x, axis=0), f32(300, 4))
for n, m in [(16, 37), (100, 33), (9, 61), (64, 17)]:
    case(f"resize_nearest_{n}_{m}", lambda x, m=m: jax.image.resize(x, (m,), "nearest"), f32(n))
case("resize_nearest_2d", lambda x: jax.image.resize(x, (37, 23), "nearest"), f32(16, 9))

case("sum_1k", jnp.sum, f32(1000))
# Not here: a reduction over several dimensions at once (jnp.sum of a matrix) after the
# blocks of 32. XLA:CPU lets LLVM reorder those additions (the order depends on the shape),
# which we do not reproduce; see docs/architecture.md, Numerics.
case("sum_axis0", lambda x: jnp.sum(x, axis=0), f32(1000, 3))
case("sum_40k", jnp.sum, f32(40000))
case("sum_20m_ones", lambda: jnp.sum(jnp.ones(20_000_000, jnp.float32)))

case("cumsum_1000", jnp.cumsum, f32(1000))
case("cumsum_axis0", lambda x: jnp.cumsum(x, axis=0), f32(300, 5))
case("cumsum_reverse", lambda x: jax.lax.cumsum(x, reverse=True), f32(1000))
case("cumsum_flip", lambda x: jnp.cumsum(x[::-1])[::-1], f32(1000))
case("cumprod", jnp.cumprod, f32(100) * 0.1 + 1)
case("cummax", jax.lax.cummax, f32(1000))
case("cumsum_10k", jnp.cumsum, f32(10000))

case("bf16_product_to_f32", lambda a, b: (a * b).astype(jnp.float32), bf16(1000), bf16(1000))
case("bf16_chain_to_f32", lambda a, b, c: (a * b + c).astype(jnp.float32), bf16(1000), bf16(1000), bf16(1000))
case("bf16_reshape_to_f32", lambda a, b: (a * b).reshape(10, 100).astype(jnp.float32), bf16(1000), bf16(1000))
case("bf16_div_const", lambda x: x / jnp.bfloat16(3.0), bf16(1000))
case("bf16_div_const_to_f32", lambda x: (x / jnp.bfloat16(3.0)).astype(jnp.float32), bf16(1000))
case("bf16_chain", lambda a, b, c: a * b + c, bf16(1000), bf16(1000), bf16(1000))
case("bf16_mean", lambda a: jnp.mean(a, axis=-1), bf16(8, 100))

case("pow_2", lambda x: jnp.power(x, 2.0), f32(1000))
case("pow_3", lambda x: jnp.power(x, 3.0), f32(1000))
case("pow_minus_1", lambda x: jnp.power(x, -1.0), f32(1000))
case("pow_half_of_abs", lambda x: jnp.power(jnp.abs(x), 0.5), f32(1000))
case("two_constants", lambda x: x * 0.1 * 0.3, f32(1000))
case("mask_times_nan", lambda x, m: m.astype(jnp.float32) * x,
     jnp.asarray(np.where(np.arange(1000) % 3 == 0, np.nan, 1.0).astype(np.float32)),
     jnp.asarray(np.arange(1000) % 2 == 0))
case("div_of_div", lambda a, b, c: a / b / c, f32(1000), f32(1000), f32(1000))
case("log_of_exp", lambda x: jnp.log(jnp.exp(x * 50)), f32(1000))
