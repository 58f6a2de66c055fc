#!/usr/bin/env python3
"""Generate the math accuracy suite: every float unary and binary op JAX emits, and the
JAX-level functions that decompose into them, over a dense sweep plus special values.

Usage:
    /opt/jaxvenv/bin/python hlo-samples/math/generate_math.py          # every case
    /opt/jaxvenv/bin/python hlo-samples/math/generate_math.py exp_f32  # only these
    /opt/jaxvenv/bin/python hlo-samples/math/generate_math.py --list

Per case directory <function>_<dtype>/:
    module.hlo   jax.jit(f).lower(*args).as_text(dialect="hlo")
    in_K.npy     parameter K (f32/f16/f64 as such; bf16 as its raw bits in a uint16 array)
    out_0.npy    JAX's output on the CPU backend (XLA:CPU), stored like the inputs
manifest.json lists every case with its function, dtype, arity and point count.

The inputs are deterministic. A unary sweep holds, for both signs, a few points of every
binade of the type (subnormals included: XLA:CPU flushes them, and the suite checks that
both backends agree with what JAX does), the type's special values (+-0, +-inf, NaN,
smallest and largest numbers), the function's domain edges and overflow thresholds, and a
uniform sweep over the function's interesting interval. A binary sweep is the full grid of
a list of special operands plus random pairs of log-uniform magnitudes and a uniform
region. The ulp bounds the tests apply are stated in docs/numerics.md.
"""

import json
import os
import sys
import zlib

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

jax.config.update("jax_platforms", "cpu")
# 64-bit mode only in the child process that makes the f64 cases (see main), so that the
# other modules are lowered exactly as in a default JAX session.
X64 = os.environ.get("MATH_SUITE_X64") == "1"
jax.config.update("jax_enable_x64", X64)

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": jnp.bfloat16, "f64": np.float64}
# Points per binade and sign in the sweep, and uniform points in the function's interval.
PER_BINADE = {"f32": 8, "f16": 24, "bf16": 4, "f64": 2}
# Every how many binades the sweep takes points (f64 has 2046 binades).
BINADE_STRIDE = {"f32": 1, "f16": 1, "bf16": 1, "f64": 4}
UNIFORM = {"f32": 2048, "f16": 1024, "bf16": 1024, "f64": 1024}


def finfo(dt):
    return jnp.finfo(DTYPES[dt])


def binade_sweep(rng, dt):
    """A few points of every binade (subnormal range included), both signs."""
    fi = finfo(dt)
    nmant = fi.nmant
    emin, emax = int(fi.minexp), int(fi.maxexp) - 1
    out = []
    for e in range(emin - nmant, emax + 1, BINADE_STRIDE[dt]):
        lo = 2.0 ** e
        m = np.concatenate([[1.0, 2.0 - 2.0 ** -nmant], 1.0 + rng.random(PER_BINADE[dt] - 2)])
        v = (m * lo).astype(np.float64)
        out.append(v)
        out.append(-v)
    return np.concatenate(out)


def specials(dt):
    fi = finfo(dt)
    tiny = float(fi.tiny)  # smallest normal
    eps = float(fi.eps)
    big = float(fi.max)
    sub = tiny * eps  # smallest subnormal
    v = [0.0, 1.0, 0.5, 2.0, 3.0, 10.0, 0.1, 1e-3, 1e-7, 1e-20, tiny, sub, tiny - sub, 2 * sub,
         tiny / 2, big, big / 2, 1.0 - eps / 2, 1.0 + eps, 1.0 - eps, np.pi / 2, np.pi, 2 * np.pi,
         np.pi / 4, 100.0, 1e4, 1e10, 1e20, 1e30, 1e38, np.inf]
    v = [x for x in v if x <= big or x == np.inf]
    v = v + [-x for x in v]
    return np.array(v + [np.nan], dtype=np.float64)


def edges(name, dt):
    """Domain edges and overflow thresholds of a function, with their neighbours."""
    e = {
        "exp": [88.72283, 88.7, 89.0, -87.33654, -87.5, -103.97, -104.0, 709.78, -745.1],
        "exp2": [127.99, 128.0, -126.0, -149.0, -150.0, 1023.9, -1074.0],
        "expm1": [88.72283, 88.7, 88.73, -17.0, -88.0, 1e-7, -1e-7, 0.3465736, 709.78],
        "logistic": [88.7, -88.7, -87.0, -103.9, 17.0, -17.0, 1e-7],
        "log1p": [-1.0, -0.99999994, -0.5, 1e-7, -1e-7, 1e38, 3.4e38],
        "log": [0.99999994, 1.0000001, 1e-38],
        "tanh": [9.0, 9.01, 10.0, 0.55, 0.6, 1e-4, 4e-4, 1e-7],
        "sinh": [89.41, 89.42, 88.72, 1e-7, 1.0, 0.99999994],
        "cosh": [89.41, 89.42, 88.72, 1e-7],
        "asinh": [1.8446743e19, 1e-7, 1e19, 3e38],
        "acosh": [1.0, 1.0000001, 0.99999994, 1.70141173e38, 1e19],
        "atanh": [0.99999994, 1.0, 1.0000001, 1e-7, 0.5],
        "asin": [0.99999994, 1.0, 1.0000001, 1e-7, 0.5],
        "acos": [0.99999994, 1.0, 1.0000001, 1e-7, 0.5],
        "tan": [1.5707963, 1.5707964, 4.712389, 1e4 * np.pi / 2, 8388608.0, 1.6e7],
        "sin": [3.1415927, 6.2831855, 1e5, 8192.0, 8193.0, 1e6, 3e38, 1e22],
        "cos": [1.5707964, 4.712389, 1e5, 8192.0, 1e6, 3e38, 1e22],
        "erf_inv": [0.99999994, 1.0, 1.0000001, 0.9999, 1e-7],
        "erfc": [9.0, 10.0, 10.06, -6.0, 0.5],
        "lgamma": [1.0, 2.0, -1.0, -2.5, -0.5, 1e-7, 4e36, 1e38],
        "digamma": [1.0, -1.0, -0.5, 1.4616321, 1e-7],
        "sqrt": [4.0, 1e-38],
        "rsqrt": [4.0, 1e-38],
        "cbrt": [8.0, 27.0, 1e-38, 8.5e37],
    }.get(name, [])
    e = np.array(e, dtype=np.float64)
    return np.concatenate([e, -e, np.nextafter(e, np.inf), np.nextafter(e, -np.inf)])


# name -> (function, uniform interval) for unary functions.
UNARY = {
    # HLO primitives.
    "exp": (jnp.exp, (-104, 89)),
    "expm1": (jnp.expm1, (-2, 2)),
    "log": (jnp.log, (0, 4)),
    "log1p": (jnp.log1p, (-1, 2)),
    "sqrt": (jnp.sqrt, (0, 4)),
    "rsqrt": (lax.rsqrt, (0, 4)),
    "cbrt": (jnp.cbrt, (-8, 8)),
    "sin": (jnp.sin, (-10, 10)),
    "cos": (jnp.cos, (-10, 10)),
    "tan": (jnp.tan, (-10, 10)),
    "tanh": (jnp.tanh, (-10, 10)),
    "erf": (lax.erf, (-5, 5)),
    "abs": (jnp.abs, (-4, 4)),
    "negate": (jnp.negative, (-4, 4)),
    "sign": (jnp.sign, (-4, 4)),
    "floor": (jnp.floor, (-8, 8)),
    "ceil": (jnp.ceil, (-8, 8)),
    "round_even": (jnp.round, (-8, 8)),
    "round_afz": (lambda x: lax.round(x, lax.RoundingMethod.AWAY_FROM_ZERO), (-8, 8)),
    "is_finite": (jnp.isfinite, (-4, 4)),
    # JAX-level functions that decompose into primitives.
    "logistic": (jax.nn.sigmoid, (-20, 20)),
    "exp2": (jnp.exp2, (-150, 128)),
    "log2": (jnp.log2, (0, 4)),
    "log10": (jnp.log10, (0, 4)),
    "sinh": (jnp.sinh, (-10, 10)),
    "cosh": (jnp.cosh, (-10, 10)),
    "asinh": (jnp.arcsinh, (-10, 10)),
    "acosh": (jnp.arccosh, (1, 10)),
    "atanh": (jnp.arctanh, (-1, 1)),
    "asin": (jnp.arcsin, (-1, 1)),
    "acos": (jnp.arccos, (-1, 1)),
    "atan": (jnp.arctan, (-10, 10)),
    "erfc": (lax.erfc, (-4, 10)),
    "erf_inv": (lax.erf_inv, (-1, 1)),
    "lgamma": (lax.lgamma, (-10, 10)),
    "digamma": (lax.digamma, (-10, 10)),
}

BINARY = {
    "atan2": (jnp.arctan2, ((-4, 4), (-4, 4))),
    "pow": (jnp.power, ((0, 4), (-30, 30))),
    "rem": (lax.rem, ((-100, 100), (-10, 10))),
    "add": (jnp.add, ((-4, 4), (-4, 4))),
    "subtract": (jnp.subtract, ((-4, 4), (-4, 4))),
    "multiply": (jnp.multiply, ((-4, 4), (-4, 4))),
    "divide": (jnp.divide, ((-4, 4), (-4, 4))),
    "max": (jnp.maximum, ((-4, 4), (-4, 4))),
    "min": (jnp.minimum, ((-4, 4), (-4, 4))),
}

# Which functions get cases in the narrow and wide types.
NARROW = ["exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "cbrt", "sin", "cos", "tan", "tanh",
          "erf", "logistic", "round_even", "atan2", "pow", "rem", "divide"]
WIDE = ["exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "cbrt", "sin", "cos", "tan", "tanh",
        "erf", "logistic", "atan2", "pow", "rem", "divide", "floor", "round_even", "sign"]


def cases():
    out = {}
    for name in UNARY:
        out[f"{name}_f32"] = (name, "f32")
    for name in BINARY:
        out[f"{name}_f32"] = (name, "f32")
    for dt in ["f16", "bf16"]:
        for name in NARROW:
            out[f"{name}_{dt}"] = (name, dt)
    for name in WIDE:
        out[f"{name}_f64"] = (name, "f64")
    return out


def rng_for(case):
    return np.random.default_rng(zlib.crc32(case.encode()))


def to_dtype(v, dt):
    """Rounds f64 values to the case's type, keeping only distinct finite-or-special values."""
    return np.asarray(v, dtype=np.float64).astype(DTYPES[dt])


def unary_inputs(case, name, dt):
    rng = rng_for(case)
    lo, hi = UNARY[name][1]
    parts = [specials(dt), edges(name, dt), binade_sweep(rng, dt), rng.uniform(lo, hi, UNIFORM[dt])]
    with np.errstate(over="ignore"):
        x = to_dtype(np.concatenate(parts), dt)
    return [x]


def grid_operands(dt):
    fi = finfo(dt)
    tiny, big = float(fi.tiny), float(fi.max)
    v = [0.0, float(fi.tiny * fi.eps), tiny, 1e-30, 1e-7, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 7.0,
         1e4, 1e10, 1e30, 0.6 * big, big, np.inf]
    v = [x for x in v if x <= big or x == np.inf]
    v = v + [-x for x in v]
    return np.array(v + [np.nan], dtype=np.float64)


def binary_inputs(case, name, dt):
    rng = rng_for(case)
    g = grid_operands(dt)
    gx, gy = np.meshgrid(g, g, indexing="ij")
    n = UNIFORM[dt]
    fi = finfo(dt)
    emin, emax = int(fi.minexp) - int(fi.nmant), int(fi.maxexp) - 1

    def logu(k):
        mag = 2.0 ** rng.uniform(emin, emax + 1, k)
        return np.where(rng.random(k) < 0.5, -mag, mag)

    (xl, xh), (yl, yh) = BINARY[name][1]
    xs = [gx.ravel(), logu(n), rng.uniform(xl, xh, n)]
    ys = [gy.ravel(), logu(n), rng.uniform(yl, yh, n)]
    if name == "pow":
        # Negative bases with integral exponents, and bases near 1 with large exponents.
        k = n // 4
        xs += [-rng.uniform(0, 4, k), 1.0 + rng.uniform(-1e-3, 1e-3, k)]
        ys += [rng.integers(-40, 40, k).astype(np.float64), rng.uniform(-1e5, 1e5, k)]
    with np.errstate(over="ignore"):
        return [to_dtype(np.concatenate(xs), dt), to_dtype(np.concatenate(ys), dt)]


def save(path, arr, dt):
    arr = np.asarray(arr)
    if dt == "bf16" and arr.dtype != np.bool_:
        arr = arr.view(np.uint16)
    np.save(path, arr)


def generate(case, name, dt):
    if name in UNARY:
        fn = UNARY[name][0]
        args = unary_inputs(case, name, dt)
    else:
        fn = BINARY[name][0]
        args = binary_inputs(case, name, dt)
    args = [jnp.asarray(a, dtype=DTYPES[dt]) for a in args]
    jitted = jax.jit(fn)
    text = jitted.lower(*args).as_text(dialect="hlo")
    out = np.asarray(jitted(*args))
    d = os.path.join(HERE, case)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "module.hlo"), "w") as f:
        f.write(text)
    for k, a in enumerate(args):
        save(os.path.join(d, f"in_{k}.npy"), np.asarray(a), dt)
    save(os.path.join(d, "out_0.npy"), out, dt)
    return {"case": case, "function": name, "dtype": dt, "arity": len(args), "points": int(args[0].size)}


def main(argv):
    all_cases = cases()
    if "--list" in argv:
        print("\n".join(all_cases))
        return
    wanted = [a for a in argv if not a.startswith("-")] or list(all_cases)
    manifest_path = os.path.join(HERE, "manifest.json")
    manifest = {}
    if os.path.exists(manifest_path):
        manifest = {c["case"]: c for c in json.load(open(manifest_path))["cases"]}
    wide = [c for c in wanted if all_cases[c][1] == "f64"]
    if wide and not X64:
        import subprocess
        env = dict(os.environ, MATH_SUITE_X64="1")
        subprocess.run([sys.executable, os.path.abspath(__file__)] + wide, env=env, check=True)
        if os.path.exists(manifest_path):
            manifest = {c["case"]: c for c in json.load(open(manifest_path))["cases"]}
    for case in wanted:
        name, dt = all_cases[case]
        if (dt == "f64") != X64:
            continue
        manifest[case] = generate(case, name, dt)
        print(case, manifest[case]["points"])
    meta = {
        "jax_version": jax.__version__,
        "numpy_version": np.__version__,
        "backend": "cpu",
        "cases": [manifest[c] for c in sorted(manifest)],
    }
    with open(manifest_path, "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
