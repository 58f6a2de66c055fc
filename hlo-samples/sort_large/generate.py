#!/usr/bin/env python3
"""JAX reference results for large and unusual sorts, kept small on disk.

Usage:
    /opt/jaxvenv/bin/python hlo-samples/sort_large/generate.py            # the test cases
    /opt/jaxvenv/bin/python hlo-samples/sort_large/generate.py --bench    # benchmark samples

--bench writes hlo-samples/sort_bench_*/ (module.hlo, in/out .npy, meta.json: what
`cargo xtask bench` reads) for the side-by-side timings in docs/performance.md; they are 8 MB
each and not committed: hlo-samples/sort_large/bench.sh makes them, runs the benchmark and
removes them.

Writes, for every case below, <case>/module.hlo (jax.jit(f).lower(...).as_text("hlo")) and
<case>/module.opt.hlo (XLA:CPU's optimised text), and one line per case in cases.txt with the
recipe of each input and a hash of each of JAX's outputs. Inputs are not stored: they come from
a splitmix64 stream that crates/hlo-spirv/tests/sort.rs reproduces bit for bit (see `draw`), so a
1M-element case costs a few hundred bytes in the repository.

cases.txt grammar, one case per line, fields separated by spaces:
    <case> in=<kind>:<dtype>:<d0>x<d1>...:<seed> ... out=<dtype>:<d0>x...:<fnv64 hex> ...
The output hash is FNV-1a 64 over the little-endian bytes of the array in its own dtype
(bf16 as its 16 bits, pred as one byte), i.e. over what numpy's tobytes() gives.

Input kinds (`draw`):
    mix      f32 from: random bit patterns (NaNs with payloads, denormals, infinities) 4/16,
             half-integers in [-8, 8] (many duplicates) 6/16, special values 2/16,
             multiples of 0.001 in [-1000, 1000] 4/16
    plain    f32 multiples of 0.5 in [-8, 8] and of 0.001: duplicates but no -0 and no NaN
             (for is_stable=False, where ties may come out in any order)
    dup      integers in [-50, 50] (as the dtype)
    bits     random bit patterns of the dtype's width (all of its values, NaNs included; f16
             NaNs quiet, bf16 NaNs canonical)
"""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_ENABLE_X64", "0")

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jaxlib  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

jax.config.update("jax_hlo_source_file_canonicalization_regex", r".*/")
jax.config.update("jax_platforms", "cpu")

HERE = os.path.dirname(os.path.abspath(__file__))
M64 = (1 << 64) - 1

DTYPES = {
    "f32": np.float32, "s32": np.int32, "u32": np.uint32, "s8": np.int8, "u8": np.uint8,
    "s16": np.int16, "f16": np.float16, "bf16": jnp.bfloat16, "pred": np.bool_,
}
# (exponent mask, mantissa mask, quiet bit) of the 16-bit floats.
QUIET_BIT = {"f16": (0x7C00, 0x03FF, 0x0200), "bf16": (0x7F80, 0x007F, 0x0040)}
SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 3.4e38, -3.4e38,
                     1.0, -1.0], dtype=np.float32)


def splitmix64(seed, n):
    """The first n outputs of splitmix64 seeded with `seed`, as uint64."""
    with np.errstate(over="ignore"):
        state = np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = state
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def draw(kind, dtype, shape, seed):
    n = int(np.prod(shape)) if shape else 1
    r = splitmix64(seed, n)
    hi = (r >> np.uint64(32)).astype(np.uint64)
    if kind in ("mix", "plain"):
        assert dtype == "f32"
        sel = (r >> np.uint64(60)).astype(np.int64)
        bits = (r & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)
        halves = ((hi % np.uint64(33)).astype(np.int64) - 16).astype(np.float32) * np.float32(0.5)
        special = SPECIALS[(hi % np.uint64(len(SPECIALS))).astype(np.int64)]
        milli = ((hi % np.uint64(2000001)).astype(np.int64) - 1000000).astype(np.float32) * np.float32(0.001)
        if kind == "mix":
            x = np.where(sel < 4, bits, np.where(sel < 10, halves, np.where(sel < 12, special, milli)))
        else:
            x = np.where(sel < 8, halves, milli)
        return x.astype(np.float32).reshape(shape)
    if kind == "dup":
        v = (hi % np.uint64(101)).astype(np.int64) - 50
        if dtype == "pred":
            return (v > 0).reshape(shape)
        return v.astype(DTYPES[dtype]).reshape(shape)
    if kind == "bits":
        width = {"f32": 32, "s32": 32, "u32": 32, "s16": 16, "f16": 16, "bf16": 16, "s8": 8, "u8": 8,
                 "pred": 1}[dtype]
        if dtype == "pred":
            return (r >> np.uint64(63)).astype(np.bool_).reshape(shape)
        u = {32: np.uint32, 16: np.uint16, 8: np.uint8}[width]
        raw = (hi & np.uint64((1 << width) - 1)).astype(u)
        if dtype in QUIET_BIT:
            # Signalling NaNs of f16/bf16 are quietened: the device holds them as f32, and the
            # conversions on the way do that (a known limitation, not the sort's business).
            # XLA:CPU's sort also returns bf16 NaNs as the canonical NaN of their sign (it does not
            # move them as bits), so bf16 NaNs are drawn canonical.
            exp, mant, quiet = QUIET_BIT[dtype]
            nan = ((raw & exp) == exp) & ((raw & mant) != 0)
            canonical = (raw & np.uint16(0x8000)) | np.uint16(exp | quiet)
            raw = np.where(nan, canonical if dtype == "bf16" else raw | quiet, raw).astype(u)
        return raw.view(DTYPES[dtype]).reshape(shape)
    raise ValueError(kind)


def fnv64(a):
    """FNV-1a 64 over the array's little-endian bytes."""
    h = 0xCBF29CE484222325
    for b in np.ascontiguousarray(a).tobytes():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def dtype_name(a):
    if a.dtype == jnp.bfloat16:
        return "bf16"
    return {np.dtype(v): k for k, v in DTYPES.items() if k != "bf16"}[a.dtype]


CASES = []


def case(name, inputs):
    def deco(fn):
        CASES.append((name, fn, inputs))
        return fn
    return deco


# ---- the cases --------------------------------------------------------------------------------

SIZES = [1, 2, 7, 8, 9, 33, 255, 256, 257, 1023, 1024, 1025, 2049, 4097]


@case("sizes_f32", [("mix", "f32", (n,), 100 + n) for n in SIZES])
def sizes_f32(*xs):
    return tuple(t for x in xs for t in (jnp.sort(x), jnp.argsort(x)))


case("sort_f32_65537", [("mix", "f32", (65537,), 1)])(lambda x: jnp.sort(x))
case("argsort_f32_65537", [("mix", "f32", (65537,), 2)])(lambda x: jnp.argsort(x))
case("sort_desc_f32_4097", [("mix", "f32", (4097,), 3)])(
    lambda x: (jnp.sort(x, descending=True), jnp.argsort(x, descending=True)))
case("sort_two_keys_4097", [("dup", "f32", (4097,), 4), ("dup", "s32", (4097,), 5), ("bits", "s32", (4097,), 6)])(
    lambda a, b, c: lax.sort((a, b, c), num_keys=2))
case("sort_payloads_65537", [("dup", "s32", (65537,), 7), ("mix", "f32", (65537,), 8), ("bits", "f16", (65537,), 9)])(
    lambda k, v, w: lax.sort((k, v, w), num_keys=1))
case("sort_unstable_4097", [("plain", "f32", (4097,), 10)])(lambda x: lax.sort(x, is_stable=False))


@case("sort_rank3_axes", [("mix", "f32", (33, 40, 50), 11)])
def sort_rank3_axes(x):
    return tuple(t for d in range(3) for t in (jnp.sort(x, axis=d), jnp.argsort(x, axis=d)))


case("sort_rank3_strided", [("mix", "f32", (3, 5000, 2), 12)])(
    lambda x: (jnp.sort(x, axis=1), jnp.argsort(x, axis=1)))
case("sort_rank2_rows", [("mix", "f32", (300, 700), 13)])(
    lambda x: (jnp.sort(x, axis=1), jnp.argsort(x, axis=0)))

for _dt in ["s32", "u32", "f16", "bf16", "s8", "u8", "s16", "pred"]:
    case(f"sort_{_dt}", [("bits", _dt, (4097,), 20), ("dup", _dt, (300,), 21)])(
        lambda a, b: (jnp.sort(a), jnp.argsort(a), jnp.sort(b), jnp.argsort(b)))

case("top_k", [("mix", "f32", (3, 4097), 30)])(
    lambda x: (*lax.top_k(x, 1), *lax.top_k(x, 8), *lax.top_k(x, 100)))
case("top_k_rows", [("dup", "s32", (64, 300), 31)])(lambda x: lax.top_k(x, 8))
case("sort_f32_1m", [("mix", "f32", (1 << 20,), 40)])(lambda x: jnp.sort(x))


BENCH = [
    ("sort_bench_f32_1m", lambda x: jnp.sort(x), [("mix", "f32", (1 << 20,), 50)]),
    ("sort_bench_argsort_1m", lambda x: jnp.argsort(x), [("mix", "f32", (1 << 20,), 51)]),
    ("sort_bench_two_keys_1m", lambda a, b: lax.sort((a, b), num_keys=2),
     [("dup", "f32", (1 << 20,), 52), ("bits", "s32", (1 << 20,), 53)]),
    ("sort_bench_rows_1024x1024", lambda x: jnp.sort(x, axis=-1), [("mix", "f32", (1024, 1024), 54)]),
    ("sort_bench_top_k_1m", lambda x: lax.top_k(x, 100), [("mix", "f32", (1 << 20,), 55)]),
]


def bench_samples():
    """hlo-samples/<name>/ in the layout `cargo xtask bench` reads (module.hlo through XLA)."""
    import json
    root = os.path.dirname(HERE)
    for name, fn, inputs in BENCH:
        args = [draw(*i) for i in inputs]
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        lowered = jax.jit(fn).lower(*args)
        with open(os.path.join(d, "module.hlo"), "w") as f:
            f.write(lowered.as_text(dialect="hlo"))
        outs = [np.asarray(o) for o in jax.tree_util.tree_leaves(jax.jit(fn)(*args))]
        meta = {"name": name, "tolerance": 0, "jax_version": jax.__version__, "inputs": [], "outputs": []}
        for k, a in enumerate(args):
            np.save(os.path.join(d, f"in_{k}.npy"), a)
            meta["inputs"].append({"file": f"in_{k}.npy", "dtype": dtype_name(a), "shape": list(a.shape)})
        for k, o in enumerate(outs):
            np.save(os.path.join(d, f"out_{k}.npy"), o)
            meta["outputs"].append({"file": f"out_{k}.npy", "dtype": dtype_name(o), "shape": list(o.shape)})
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print(name)


def spec(kind, dtype, shape, seed):
    return f"{kind}:{dtype}:{'x'.join(map(str, shape)) or 'scalar'}:{seed}"


def main():
    lines = []
    for name, fn, inputs in CASES:
        args = [draw(*i) for i in inputs]
        jitted = jax.jit(fn)
        lowered = jitted.lower(*args)
        d = os.path.join(HERE, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "module.hlo"), "w") as f:
            f.write(lowered.as_text(dialect="hlo"))
        with open(os.path.join(d, "module.opt.hlo"), "w") as f:
            f.write(lowered.compile().as_text())
        outs = jax.tree_util.tree_leaves(jitted(*args))
        fields = [name] + ["in=" + spec(*i) for i in inputs]
        for o in outs:
            o = np.asarray(o)
            fields.append(f"out={dtype_name(o)}:{'x'.join(map(str, o.shape))}:{fnv64(o):016x}")
        lines.append(" ".join(fields))
        print(name, file=sys.stderr)
    with open(os.path.join(HERE, "cases.txt"), "w") as f:
        f.write(f"# jax {jax.__version__} jaxlib {jaxlib.__version__} numpy {np.__version__};"
                " regenerate with generate.py in this directory\n")
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--bench"]:
        bench_samples()
    else:
        main()
