#!/usr/bin/env python3
"""Time hlo-samples workloads through JAX/XLA: the JAX column of `cargo xtask bench`.

Usage (run with the JAX venv's interpreter, see scripts/setup-jax.sh):
    /opt/jaxvenv/bin/python xtask/bench_jax.py [--runs N] [--warmup W] NAME ...
        prints one JSON object per sample, one per line
    /opt/jaxvenv/bin/python xtask/bench_jax.py --serve [--runs N] [--warmup W]
        prints {"ready": true, ...} once JAX is imported, then reads one sample name per
        stdin line and answers each with one JSON line (lets `cargo xtask bench`
        interleave our runs and JAX's in one Python process)

Each sample is the function generate.py registered in SAMPLES, jitted exactly as
generate.py does (jax.jit(fn, keep_unused=True); static values are baked into the
registered lambdas), called on the committed in_K.npy inputs (bf16 stored as u16 bits is
viewed back as bfloat16) placed on the default device with jax.device_put. Compile time
is lower()+compile() once; then W untimed calls, then N calls timed one by one with
time.perf_counter around f(*args) and jax.block_until_ready.

seed_draw_points has no Python function: its module.opt.hlo text goes through XLA the way
`generate.py --verify` does (fusion->call, bitcast->reshape, hlo_module_from_text,
compile_and_load, execute_sharded); "method" says which path was used.

Statistics: min, median = sorted[round((n-1)*0.5)], p99 = sorted[round((n-1)*0.99)],
the same picks as hlo-run's stats.rs. Platform: JAX_PLATFORMS as given in the
environment (or --platform); generate.py pins "cpu" at import, which this script undoes,
so a CUDA jaxlib is used when present and JAX_PLATFORMS is unset.
"""

import argparse
import importlib.util
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES_DIR = os.path.join(os.path.dirname(HERE), "hlo-samples")

# What the user asked for, before generate.py's import-time setdefault/config pin.
_USER_PLATFORMS = os.environ.get("JAX_PLATFORMS")


def sample_dir(name):
    """hlo-samples/<name>/, or hlo-samples/pending/<name>/ for a pending sample."""
    d = os.path.join(SAMPLES_DIR, name)
    pending = os.path.join(SAMPLES_DIR, "pending", name)
    return pending if not os.path.isdir(d) and os.path.isdir(pending) else d


def load_generate():
    """Imports hlo-samples/generate.py as a module (its main() only runs as a script)."""
    path = os.path.join(SAMPLES_DIR, "generate.py")
    sys.dont_write_bytecode = True  # leave no __pycache__ in hlo-samples/
    spec = importlib.util.spec_from_file_location("hlo_samples_generate", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pick(sorted_ms, q):
    return sorted_ms[int(round((len(sorted_ms) - 1) * q))]


def summarize(times_ms):
    s = sorted(times_ms)
    return {
        "runs": len(s),
        "min_ms": s[0],
        "median_ms": pick(s, 0.5),
        "p99_ms": pick(s, 0.99),
        "mean_ms": sum(s) / len(s),
    }


class Bench:
    def __init__(self, platform):
        gen = load_generate()
        import jax
        import jaxlib
        import numpy as np

        # generate.py pins jax_platforms="cpu"; the backends are not initialised yet.
        want = platform if platform is not None else _USER_PLATFORMS
        jax.config.update("jax_platforms", want or None)
        self.gen, self.jax, self.np = gen, jax, np
        try:
            self.device = jax.devices()[0]
        except Exception as e:
            raise RuntimeError("no JAX backend for jax_platforms=%r (%s: %s)"
                               % (want or "auto", type(e).__name__, e)) from e
        self.info = {
            "jax_version": jax.__version__,
            "jaxlib_version": jaxlib.__version__,
            "platform": self.device.platform,
            "device_kind": self.device.device_kind,
            "device_count": len(jax.devices()),
            "x64": bool(jax.config.jax_enable_x64),
        }

    def load_inputs(self, name):
        d = sample_dir(name)
        with open(os.path.join(d, "meta.json")) as f:
            meta = json.load(f)
        arrays = [self.gen.load_array(os.path.join(d, e["file"]), e) for e in meta["inputs"]]
        refs = [self.gen.load_array(os.path.join(d, e["file"]), e) for e in meta["outputs"]]
        return meta, arrays, refs

    def check(self, outs, refs, tol):
        """'ok' when JAX's result matches the committed out_K.npy within the sample tolerance."""
        np = self.np
        outs = [np.asarray(o) for o in outs]
        if len(outs) != len(refs):
            return "mismatch: %d outputs, %d expected" % (len(outs), len(refs))
        worst = 0.0
        for g, r in zip(outs, refs):
            if g.shape != r.shape or g.dtype != r.dtype:
                return "mismatch: %s%s vs %s%s" % (g.dtype, g.shape, r.dtype, r.shape)
            if self.gen.is_float(r):
                gf, rf = g.astype(np.float64), r.astype(np.float64)
                fin = np.isfinite(rf)
                if not np.array_equal(np.isnan(gf), np.isnan(rf)):
                    return "mismatch: NaN positions"
                worst = max(worst, self.gen.rel_l2(gf[fin], rf[fin]) if fin.any() else 0.0)
            elif not np.array_equal(g, r):
                return "mismatch: %d elements differ" % int((g != r).sum())
        return "ok" if worst <= tol else "mismatch: rel L2 %.3g > %g" % (worst, tol)

    def time_calls(self, call, runs, warmup):
        jax = self.jax
        for _ in range(warmup):
            jax.block_until_ready(call())
        times = []
        for _ in range(max(runs, 1)):
            t0 = time.perf_counter()
            jax.block_until_ready(call())
            times.append((time.perf_counter() - t0) * 1e3)
        return times

    def run_jit(self, name, runs, warmup):
        jax = self.jax
        sample = self.gen.SAMPLES[name]
        meta, arrays, refs = self.load_inputs(name)
        args = [jax.device_put(a, self.device) for a in arrays]
        jax.block_until_ready(args)
        f = jax.jit(sample.fn, keep_unused=True)
        t0 = time.perf_counter()
        f.lower(*args).compile()
        compile_ms = (time.perf_counter() - t0) * 1e3
        check = self.check(jax.tree_util.tree_leaves(f(*args)), refs, meta["tolerance"])
        times = self.time_calls(lambda: f(*args), runs, warmup)
        return {"method": "jax.jit(generate.SAMPLES[%r].fn, keep_unused=True)" % name,
                "compile_ms": compile_ms, "check": check, **summarize(times)}

    def run_hlo_text(self, name, runs, warmup):
        """The generate.py --verify path, split into compile-once and execute-N."""
        jax, gen = self.jax, self.gen
        from jax._src.lib import xla_client as xc
        meta, arrays, refs = self.load_inputs(name)
        d = sample_dir(name)
        if os.path.exists(os.path.join(d, "module.hlo")):
            with open(os.path.join(d, "module.hlo")) as f:
                text, src = f.read(), "module.hlo"
        else:
            with open(os.path.join(d, "module.opt.hlo")) as f:
                text, src = gen.seed_oracle_text(f.read()), "module.opt.hlo (rewritten)"
        dev = self.device
        t0 = time.perf_counter()
        module = xc._xla.hlo_module_from_text(text)
        stablehlo = xc._xla.mlir.hlo_to_stablehlo(module.as_serialized_hlo_module_proto())
        exe = dev.client.compile_and_load(stablehlo, executable_devices=xc.DeviceList((dev,)),
                                          compile_options=xc.CompileOptions())
        compile_ms = (time.perf_counter() - t0) * 1e3
        bufs = [jax.device_put(a, dev) for a in arrays]
        jax.block_until_ready(bufs)

        def call():
            res = exe.execute_sharded(bufs).disassemble_into_single_device_arrays()
            return [r[0] for r in res]

        check = self.check(call(), refs, meta["tolerance"])
        times = self.time_calls(call, runs, warmup)
        return {"method": "XLA compile of %s text (generate.py --verify path)" % src,
                "compile_ms": compile_ms, "check": check, **summarize(times)}

    def run(self, name, runs, warmup):
        out = {"name": name}
        try:
            if name in self.gen.SAMPLES:
                out.update(self.run_jit(name, runs, warmup))
            elif os.path.isdir(sample_dir(name)):
                out.update(self.run_hlo_text(name, runs, warmup))
            else:
                raise KeyError("unknown sample %r (see hlo-samples/generate.py --list)" % name)
        except Exception as e:  # reported per sample; the caller keeps going
            out["error"] = "%s: %s" % (type(e).__name__, e)
            out["traceback"] = traceback.format_exc(limit=4)
        out.update(self.info)
        return out


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="sample names (hlo-samples/<name>)")
    ap.add_argument("--runs", "-n", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--platform", default=None,
                    help="jax_platforms value (default: $JAX_PLATFORMS, else JAX's choice)")
    ap.add_argument("--serve", action="store_true",
                    help="read names from stdin, one JSON answer line each")
    a = ap.parse_args(argv)
    if not a.serve and not a.names:
        ap.error("give sample names, or --serve")
    try:
        bench = Bench(a.platform)
    except Exception as e:
        emit({"ready": False, "error": "%s: %s" % (type(e).__name__, e)})
        return 1
    if a.serve:
        emit({"ready": True, **bench.info})
        for line in sys.stdin:
            name = line.strip()
            if name:
                emit(bench.run(name, a.runs, a.warmup))
        return 0
    for name in a.names:
        emit(bench.run(name, a.runs, a.warmup))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
