#!/usr/bin/env python3
"""XLA conformance: run the HLO text modules of XLA's own tests through hlo-run.

The project ships no XLA text. Point this at an XLA checkout (or any directory that holds
XLA's `xla/hlo/parser/hlo_parser_test.cc` and `xla/tests/*_test.cc`):

    /opt/jaxvenv/bin/python scripts/xla-conformance.py XLA_DIR \
        --hlo-run target/release/hlo-run --out /tmp/xla-conformance

What it does (docs/xla-conformance.md has the details):

* extracts every raw-string literal that holds an HLO module (`R"(HloModule ...)"`,
  `R"hlo(...)hlo"`) from the .cc files, naming each `file:Test` (`#k` for the k-th module
  of one test); strings that are printf/Substitute templates (`%s`, `$0`, ...) are
  skipped and counted;
* parser modules (hlo_parser_test.cc): the table-driven cases that XLA parses successfully
  (CreateTestCases, CreateShortTestCases, CreateNonRoundtripTestCases) must pass
  `hlo-run check`; the modules of the TEST_F cases are checked too and listed separately
  (many of them are meant to be rejected); those XLA's test only parses
  (ParseAndReturnUnverifiedModule) get `hlo-run check --parse-only`;
* execution modules (xla/tests/*_test.cc minus collectives, AOT, custom calls and test-utility
  tests): inputs come from the test's own `LiteralUtil::CreateR0..R4` literals when
  those match the entry parameters one for one, else from a seeded generator (small ints,
  floats in [-1, 1], pred at random); XLA:CPU (jaxlib, HLO text -> StableHLO -> compile)
  computes the reference, in a worker process that is restarted past a crash; modules
  XLA:CPU rejects are not counted. Both hlo-run backends run each module, and results are
  compared bit-exactly for integers and pred, and with |a-b| <= atol + rtol*|b| (NaN where
  NaN) for floats. XLA:CPU is run twice on each module to flag nondeterminism.

Prints one line per module and a summary, and writes OUT/report.json.
"""

import argparse
import ast
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import concurrent.futures as cf

import numpy as np

PARSER_TEST = "xla/hlo/parser/hlo_parser_test.cc"
# xla/tests files whose modules are not single-device execution tests.
DEFAULT_EXCLUDE = [
    r"collective", r"all_reduce", r"all_gather", r"aot", r"cudnn", r"multithreaded",
    r"test_utils_test", r"constraint_propagator", r"custom_call", r"codegen", r"llvm",
    r"restricted/", r"exhaustive/", r"fuzz/", r"_base\.cc$", r"hlo_runner_agnostic",
    r"local_client", r"multiple_devices", r"replicated",
]

RAW_RE = re.compile(r'R"([A-Za-z0-9_]{0,16})\((.*?)\)\1"', re.S)
TEST_RE = re.compile(r'\b(?:XLA_)?TEST(?:_F|_P)?\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)\s*\{')
TEMPLATE_RE = re.compile(r'%[-0-9.]*(?:s|d|i|lld|ld|u)(?![\w.\-])|\$\d|\$[A-Z][A-Z0-9_]*|\$\{')
NAME_RE = re.compile(r'^\s*"(\w+)",\s*$', re.M)
# A parser TEST_F that expects XLA to refuse its module.
# `ExpectHasSubstr` on a printed module (`module->ToString(...)`) checks an accepted module.
REJECT_RE = re.compile(r'EXPECT_NE\(absl::OkStatus\(\)|ExpectHasSubstr\(\s*(?!\w+->ToString)|EXPECT_FALSE\(\w+\.ok\(\)|StatusIs\(')
VAR_RE = re.compile(r'(\w+)(?:\[\])?\s*=\s*$')


# ----------------------------------------------------------------------------------------
# Extraction


def matching_brace(text, open_pos):
    """Index just past the brace that closes text[open_pos] == '{' (raw strings skipped)."""
    depth = 0
    i = open_pos
    n = len(text)
    while i < n:
        m = RAW_RE.match(text, i) if text.startswith('R"', i) else None
        if m:
            i = m.end()
            continue
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            i = j + 1
            continue
        if c == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == '\\' else 1
            i = j + 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == '{':
            depth += 1
        elif c == '}':
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def is_fragment(text, m, parser):
    """A piece that the test glues to others (`StrCat(R"(...)", x, ...)`, `kHlo + kTail`)."""
    after = text[m.end():m.end() + 40].lstrip()
    before = text[max(0, m.start() - 40):m.start()].rstrip()
    body = m.group(2)
    glued = (after[:1] == "+" or before.endswith("+")
             or (after[:1] == "," and (before.endswith("StrCat(") or before.endswith(","))))
    broken = body.count("{") != body.count("}") or body.count("(") != body.count(")")
    # Parser tests write broken modules on purpose, and their tables put commas after modules.
    return not parser and (glued or broken)


def extract_modules(path, rel):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    tests = []  # (start, end, class, name)
    for m in TEST_RE.finditer(text):
        end = matching_brace(text, m.end() - 1)
        tests.append((m.start(), end, m.group(1), m.group(2)))
    out = []
    per_test = {}
    for m in RAW_RE.finditer(text):
        body = m.group(2)
        if not re.match(r'\s*HloModule\b', body):
            continue
        pos = m.start()
        enclosing = [t for t in tests if t[0] <= pos < t[1]]
        test_body = None
        if enclosing:
            t = enclosing[-1]
            name = t[3]
            kind = "test"
            test_body = text[m.end():t[1]]
        else:
            before = text[max(0, pos - 400):pos]
            names = NAME_RE.findall(before)
            var = VAR_RE.search(before.rstrip())
            if rel.endswith(PARSER_TEST) and names:
                name, kind = names[-1], "table"
            elif var:
                name, kind = var.group(1), "global"
            else:
                name, kind = "line%d" % (text.count("\n", 0, pos) + 1), "global"
        k = per_test.get(name, 0)
        per_test[name] = k + 1
        out.append({
            "file": rel, "test": name, "index": k, "kind": kind,
            "line": text.count("\n", 0, pos) + 1,
            "text": body, "template": bool(TEMPLATE_RE.search(body)) or is_fragment(
                text, m, rel.endswith(PARSER_TEST)),
            "test_body": test_body,
        })
    # Ids: file:Test, file:Test#k when a test holds several modules.
    for e in out:
        base = "%s:%s" % (os.path.basename(rel), e["test"])
        e["id"] = base if per_test[e["test"]] == 1 else "%s#%d" % (base, e["index"])
    return out


# absl::Substitute templates whose parameters the test spells out plainly: module id ->
# [(suffix, ($0, $1, ...))], as the test's INSTANTIATE_TEST_SUITE_P expands them.
def _int4_expansions():
    # XLA's ElementwiseTest::GetElementwiseOpcodesWithIntSupportWithArity, with the test's
    # own skips (clz/popcnt on signed, abs/sign on unsigned, no mulhi).
    unary = ["abs", "count-leading-zeros", "negate", "not", "popcnt", "sign"]
    binary = ["add", "and", "compare", "divide", "maximum", "minimum", "multiply", "or",
              "power", "remainder", "shift-left", "shift-right-arithmetic",
              "shift-right-logical", "subtract", "xor"]
    out = {"int4_test.cc:Unary": [], "int4_test.cc:Binary": [], "int4_test.cc:Ternary": []}
    for t in ("u4", "s4"):
        for op in unary:
            if (t == "s4" and op in ("count-leading-zeros", "popcnt")) or (t == "u4" and op in ("abs", "sign")):
                continue
            out["int4_test.cc:Unary"].append(("%s_%s" % (op, t), (t, op)))
        for op in binary:
            cmp = op == "compare"
            out["int4_test.cc:Binary"].append(("%s_%s" % (op, t), (
                t, op, "pred" if cmp else t, ", direction=LT" if cmp else "")))
        for op in ("clamp", "select"):
            out["int4_test.cc:Ternary"].append(("%s_%s" % (op, t), (
                t, op, "pred" if op == "select" else t)))
    return out


EXPANSIONS = _int4_expansions()


# ----------------------------------------------------------------------------------------
# Literals written in the test (LiteralUtil::CreateR0..R4)

LIT_RE = re.compile(r'LiteralUtil::CreateR([0-4])(?:<([\w:]+)>)?\(')


def balanced_arg(text, open_paren):
    depth = 0
    for i in range(open_paren, len(text)):
        c = text[i]
        if c in "({":
            depth += 1
        elif c in ")}":
            depth -= 1
            if depth == 0:
                return text[open_paren + 1:i]
    return None


def cxx_to_py(arg):
    s = re.sub(r'//[^\n]*', '', arg)
    s = re.sub(r'static_cast<[\w:]+>\(([^()]*)\)', r'\1', s)
    s = re.sub(r'\b(?:u?int\d+_t|float|double|half|bfloat16|Eigen::half|Eigen::bfloat16|'
               r'tsl::float8_\w+|u?int4|s4|u4)\s*\{([^{}]*)\}', r'\1', s)
    s = re.sub(r'\b(?:u?int\d+_t|float|double|half|bfloat16|Eigen::half|Eigen::bfloat16|'
               r'u?int4)\s*\(([^()]*)\)', r'\1', s)
    s = re.sub(r'(?<=[0-9.])[fFlLuU]+\b', '', s)
    s = s.replace("true", "True").replace("false", "False")
    s = s.replace("{", "[").replace("}", "]")
    s = re.sub(r'std::numeric_limits<float>::infinity\(\)', '1e999', s)
    return ast.literal_eval(s.strip())


def test_literals(body):
    if not body:
        return None
    lits = []
    for m in LIT_RE.finditer(body):
        arg = balanced_arg(body, m.end() - 1)
        if arg is None:
            return None
        try:
            v = cxx_to_py(arg)
        except Exception:
            return None
        arr = np.array(v, dtype=object)
        if arr.ndim != int(m.group(1)):
            return None
        lits.append(arr)
    return lits


# ----------------------------------------------------------------------------------------
# XLA:CPU worker (own process: a fatal XLA error loses one module, not the run)


def xla_worker(jobs_path, out_dir):
    import jax
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_enable_x64", True)  # else device_put narrows f64/s64/u64 inputs
    from jax._src.lib import xla_client as xc
    dev = jax.devices("cpu")[0]
    with open(jobs_path) as f:
        jobs = json.load(f)
    for job in jobs:
        d = os.path.join(out_dir, job["key"])
        if os.path.exists(os.path.join(d, "xla.json")) or os.path.exists(
                os.path.join(d, "xla.started")):
            continue
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "xla.started"), "w").close()
        res = {"status": "ok"}
        try:
            module = xc._xla.hlo_module_from_text(xla_cpu_text(job["text"]))
            comp = xc.XlaComputation(module.as_serialized_hlo_module_proto())
            ps = comp.program_shape()
            params = []
            for s in ps.parameter_shapes():
                leaves = s.tuple_shapes() if s.is_tuple() else [s]
                for leaf in leaves:
                    if leaf.is_tuple():
                        raise ValueError("nested tuple parameter")
                    params.append((np.dtype(leaf.element_type()), tuple(leaf.dimensions())))
            res["tuple_params"] = any(s.is_tuple() for s in ps.parameter_shapes())
            args, source = make_inputs(params, job, xc)
            identities = reduce_identities(job["text"])
            if source == "random" and identities:
                leaf_of = param_leaf_index(ps)
                for number, value in identities.items():
                    k = leaf_of.get(number)
                    if k is not None and args[k].ndim == 0:
                        args[k] = np.asarray(np.array(value, np.float64).astype(args[k].dtype)
                                             if args[k].dtype.kind in "fcV" and value != "all-ones"
                                             else
                                             identity_int(value, args[k].dtype))
                source += "+reduce-identities"
            res["inputs_from"] = source
            for i, a in enumerate(args):
                np.save(os.path.join(d, "in_%d.npy" % i), to_storable(a))
            res["in_dtypes"] = [str(a.dtype) for a in args]
            stablehlo = xc._xla.mlir.hlo_to_stablehlo(module.as_serialized_hlo_module_proto())
            exe = dev.client.compile_and_load(stablehlo,
                                              executable_devices=xc.DeviceList((dev,)),
                                              compile_options=xc.CompileOptions())
            runs = []
            for _ in range(2):
                bufs = [jax.device_put(a, dev) for a in args]
                r = exe.execute_sharded(bufs).disassemble_into_single_device_arrays()
                runs.append([np.asarray(x[0]) for x in r])
            res["deterministic"] = all(
                a.tobytes() == b.tobytes() for a, b in zip(runs[0], runs[1]))
            res["out_dtypes"] = [str(o.dtype) for o in runs[0]]
            for i, o in enumerate(runs[0]):
                np.save(os.path.join(d, "xla_%d.npy" % i), to_storable(o))
        except Exception as e:  # XLA rejected the module or the harness could not feed it
            res = {"status": "xla-error", "error": ("%s: %s" % (type(e).__name__, e))[:400]}
        with open(os.path.join(d, "xla.json"), "w") as f:
            json.dump(res, f)


def xla_cpu_text(text):
    """Semantics-preserving rewrite for XLA:CPU through jaxlib, which compiles StableHLO and
    so cannot take an already-fused module: `fusion(...), kind=k*, calls=%c` becomes
    `call(...), to_apply=%c` (the XLA tests that write fusions run them unoptimised)."""
    return re.sub(r"\bfusion\((.*?)\),\s*kind=k\w+,\s*calls=(%?[\w.\-]+)",
                  r"call(\1), to_apply=\2", text)


IDENTITY = {"add": 0.0, "or": 0.0, "xor": 0.0, "multiply": 1.0, "and": "all-ones",
            "maximum": -np.inf, "minimum": np.inf}
COMP_RE = re.compile(r'^\s*(?:ENTRY\s+)?%?([\w.\-]+)\s*(?:\([^\n]*\))?[^\n{]*\{\s*$', re.M)


def reduce_identities(text):
    """{parameter number: identity} for the entry parameters that are the init value of a
    reduce or reduce-window whose reducer is one binary op. XLA requires an identity there
    (its result is otherwise implementation-defined: XLA:CPU adds a non-zero init once per
    partial sum), and XLA's own test inputs (MakeFakeArguments) respect this."""
    comps = {}
    entry = None
    for m in COMP_RE.finditer(text):
        end = text.find("\n}", m.end())
        body = text[m.end():end if end >= 0 else len(text)]
        comps[m.group(1)] = body
        if re.match(r'\s*ENTRY\b', m.group(0)):
            entry = body
    if entry is None:
        return {}
    params = {name: int(n) for name, n in re.findall(
        r'%?([\w.\-]+)\s*=\s*[^=\n]*?\bparameter\((\d+)\)', entry)}
    out = {}
    for m in re.finditer(r'\b(reduce|reduce-window)\(([^()]*)\)[^\n]*?to_apply=%?([\w.\-]+)',
                         entry):
        ops = [o.split()[-1].lstrip("%") for o in m.group(2).split(",") if o.strip()]
        root = re.search(r'ROOT\s+\S+\s*=\s*\S+\s+([\w\-]+)\(', comps.get(m.group(3), ""))
        if not root or root.group(1) not in IDENTITY or len(ops) % 2:
            continue
        for init in ops[len(ops) // 2:]:
            if init in params:
                out[params[init]] = IDENTITY[root.group(1)]
    return out


def param_leaf_index(ps):
    """Entry parameter number -> index of its leaf among the flattened inputs (non-tuples)."""
    out, k = {}, 0
    for i, s in enumerate(ps.parameter_shapes()):
        if s.is_tuple():
            k += len(s.tuple_shapes())
        else:
            out[i] = k
            k += 1
    return out


def identity_int(value, dt):
    if value == "all-ones":
        return np.array(True) if dt == np.bool_ else np.array(-1).astype(dt)
    if dt == np.bool_:
        return np.array(bool(value))
    if value == -np.inf:
        return np.array(np.iinfo(dt).min, dt)
    if value == np.inf:
        return np.array(np.iinfo(dt).max, dt)
    if value == 1.0 and dt.kind in "iu":
        return np.array(1, dt)  # the identity of multiply (and of `and` on pred only)
    return np.array(int(value), dt)


def to_storable(a):
    """numpy cannot save ml_dtypes arrays portably: bits as unsigned ints, as hlo-run reads."""
    name = str(a.dtype)
    if name == "bfloat16":
        return a.view(np.uint16)
    if name.startswith(("float8_", "float6_", "float4_")):
        return a.view(np.uint8)
    if name in ("int4", "int2"):
        return a.astype(np.int8)
    if name in ("uint4", "uint2"):
        return a.astype(np.uint8)
    return a


def make_inputs(params, job, xc):
    lits = job.get("literals")
    if lits is not None and len(lits) == len(params):
        try:
            args = []
            for (dt, dims), v in zip(params, lits):
                a = np.array(v, dtype=np.float64 if dt.kind in "fcV" or str(dt).startswith(
                    ("bfloat", "float")) else None)
                if tuple(a.shape) != dims:
                    raise ValueError("shape")
                args.append(np.asarray(a).astype(dt))
            return args, "test-literals"
        except Exception:
            pass
    seed = int(hashlib.sha256(("%d:%s" % (job["seed"], job["id"])).encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    args = []
    for dt, dims in params:
        name = str(dt)
        if dt == np.bool_:
            a = rng.integers(0, 2, dims).astype(bool)
        elif dt.kind in "iu" or name in ("int4", "uint4", "int2", "uint2"):
            a = rng.integers(0, 4, dims).astype(dt)
        elif dt.kind == "c":
            a = (rng.uniform(-1, 1, dims) + 1j * rng.uniform(-1, 1, dims)).astype(dt)
        else:
            a = rng.uniform(-1, 1, dims).astype(np.float32).astype(dt)
        args.append(np.asarray(a))
    return args, "random"


# ----------------------------------------------------------------------------------------
# Our backends and comparison


def run_hlo(hlo_run, module_path, inputs, out_dir, backend, timeout):
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, f))
    cmd = [hlo_run, module_path] + inputs + ["-o", out_dir, "--backend", backend]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "error": "no result after %ds" % timeout}
    dt = time.time() - t0
    if p.returncode != 0:
        err = (p.stderr.strip() or p.stdout.strip()).splitlines()
        if "panicked" in p.stderr or p.returncode < 0:
            status = "panic"
        elif "internal compiler error" in p.stderr or "internal error" in p.stderr:
            status = "ice"  # an invalid kernel or a broken invariant: a bug, not a refusal
        else:
            status = "refused"
        return {"status": status,
                "rc": p.returncode, "error": " | ".join(err[-3:])[:500], "secs": dt}
    return {"status": "ran", "secs": dt}


def load_out(path, dtype_name):
    a = np.load(path, allow_pickle=False)
    if dtype_name == "bfloat16" or dtype_name.startswith(("float8_", "float6_", "float4_")):
        import ml_dtypes
        a = a.view(getattr(ml_dtypes, dtype_name))
    return a


def compare(ref, got, dtype_name, rtol, atol):
    if ref.shape != got.shape:
        return "shape %s vs %s" % (got.shape, ref.shape)
    if ref.dtype.kind in "biu" or dtype_name in ("int4", "uint4", "int2", "uint2"):
        r = ref.astype(np.int64)
        g = got.astype(np.int64)
        bad = r != g
        if bad.any():
            i = np.flatnonzero(bad)[0]
            return "%d of %d elements differ (first at flat %d: got %s, want %s)" % (
                bad.sum(), bad.size, i, g.flat[i], r.flat[i])
        return None
    if ref.dtype.kind == "c":
        e = compare(ref.real.copy(), got.real.copy(), "float64", rtol, atol)
        return e or compare(ref.imag.copy(), got.imag.copy(), "float64", rtol, atol)
    r = ref.astype(np.float64)
    g = got.astype(np.float64)
    low = dtype_name in ("bfloat16", "float16") or dtype_name.startswith(
        ("float8_", "float6_", "float4_"))
    if low:
        rtol, atol = max(rtol, 2e-2), max(atol, 2e-2)
    nan_r, nan_g = np.isnan(r), np.isnan(g)
    with np.errstate(invalid="ignore"):
        close = (r == g) | (np.abs(r - g) <= atol + rtol * np.abs(r))
    bad = ~((nan_r & nan_g) | (~nan_r & ~nan_g & close))
    if bad.any():
        i = np.flatnonzero(bad)[0]
        return "%d of %d elements differ (first at flat %d: got %r, want %r)" % (
            bad.sum(), bad.size, i, g.flat[i], r.flat[i])
    return None


def evaluate(job, args, work):
    d = os.path.join(work, job["key"])
    mod = os.path.join(d, "module.hlo")
    with open(mod, "w") as f:
        f.write(job["text"])
    with open(os.path.join(d, "xla.json")) as f:
        xla = json.load(f)
    row = {"id": job["id"], "file": job["file"], "line": job["line"], "dir": d,
           "inputs_from": xla.get("inputs_from"), "xla_deterministic": xla.get("deterministic")}
    n_in = len(xla["in_dtypes"])
    inputs = [os.path.join(d, "in_%d.npy" % i) for i in range(n_in)]
    for backend in ("interp", "vulkan"):
        od = os.path.join(d, backend)
        r = run_hlo(args.hlo_run, mod, inputs, od, backend, args.timeout)
        if r["status"] == "ran":
            errs = []
            n_out = len(xla["out_dtypes"])
            have = sorted(f for f in os.listdir(od) if f.startswith("out_"))
            if len(have) != n_out:
                errs.append("%d outputs, XLA has %d" % (len(have), n_out))
            else:
                for i, dn in enumerate(xla["out_dtypes"]):
                    ref = load_out(os.path.join(d, "xla_%d.npy" % i), dn)
                    got = load_out(os.path.join(od, "out_%d.npy" % i), dn)
                    e = compare(ref, got, dn, args.rtol, args.atol)
                    if e:
                        errs.append("out_%d: %s" % (i, e))
            r = {"status": "wrong", "error": "; ".join(errs)[:500], "secs": r["secs"]} \
                if errs else {"status": "pass", "secs": r["secs"]}
        row[backend] = r
    return row


def cross_check(job, args, work):
    """No XLA:CPU reference: run both backends on --random-inputs and compare them with each
    other (bit-exact), to catch crashes and disagreements."""
    d = os.path.join(work, job["key"])
    os.makedirs(d, exist_ok=True)
    mod = os.path.join(d, "module.hlo")
    with open(mod, "w") as f:
        f.write(job["text"])
    out = {}
    for backend in ("interp", "vulkan"):
        out[backend] = run_hlo(args.hlo_run, mod, ["--random-inputs", "--seed", str(args.seed)],
                               os.path.join(d, backend), backend, args.timeout)
    if out["interp"]["status"] == out["vulkan"]["status"] == "ran":
        a = sorted(os.listdir(os.path.join(d, "interp")))
        b = sorted(os.listdir(os.path.join(d, "vulkan")))
        same = a == b and all(
            np.array_equal(np.load(os.path.join(d, "interp", f)),
                           np.load(os.path.join(d, "vulkan", f)), equal_nan=True)
            if np.load(os.path.join(d, "interp", f)).dtype.kind in "fc" else
            np.array_equal(np.load(os.path.join(d, "interp", f)),
                           np.load(os.path.join(d, "vulkan", f))) for f in a)
        out["cross"] = "interp and vulkan agree" if same else "interp and vulkan DIFFER"
    return out


def check_parser(args, e, work):
    d = os.path.join(work, "parser")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, re.sub(r'[^\w.#-]', '_', e["id"]) + ".hlo")
    with open(path, "w") as f:
        f.write(e["text"])
    body = e.get("test_body") or ""
    # XLA's test only parses it (ParseAndReturnUnverifiedModule): so does `check --parse-only`.
    unverified = e["group"] == "accept" and "Unverified" in body and "VerifiedModule(" not in \
        body.replace("UnverifiedModule(", "")
    cmd = [args.hlo_run, "check"] + (["--parse-only"] if unverified else []) + [path]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        ok = p.returncode == 0
        msg = (p.stdout.strip() if ok else (p.stderr.strip() or p.stdout.strip()))
        lines = msg.splitlines()
        msg = " ".join(l.strip() for l in lines[:2]) if lines else ""
        if lines and lines[0].startswith("module does not verify"):
            msg = "does not verify: " + (lines[1].strip() if len(lines) > 1 else "")
        if "panicked" in p.stderr or p.returncode < 0:
            st = "panic"
        elif e["group"] == "reject":
            st = "pass" if not ok else "fail"  # XLA refuses it: so should we
        else:
            st = "pass" if ok else "fail"
    except subprocess.TimeoutExpired:
        st, msg = "timeout", "no answer after %ds" % args.timeout
    return {"id": e["id"], "group": e["group"], "file": e["file"], "line": e["line"],
            "path": path, "status": st, "message": msg[:300], "xla_only_parses": unverified}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("xla_dir", help="an XLA source checkout (holds xla/tests and xla/hlo/parser)")
    ap.add_argument("--hlo-run", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "hlo-run"))
    ap.add_argument("--out", default="/tmp/xla-conformance")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rtol", type=float, default=1e-3)
    ap.add_argument("--atol", type=float, default=1e-3)
    ap.add_argument("--timeout", type=int, default=120, help="seconds per hlo-run call")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--only", help="regex on module ids: run only those")
    ap.add_argument("--reuse-xla", action="store_true",
                    help="keep XLA:CPU results already in --out (same seed and sources)")
    ap.add_argument("--skip-parser", action="store_true")
    ap.add_argument("--skip-exec", action="store_true")
    ap.add_argument("--exclude", action="append", default=[],
                    help="extra regex on xla/tests paths to leave out (defaults: %s)" %
                    ", ".join(DEFAULT_EXCLUDE))
    ap.add_argument("--xla-worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.xla_worker:
        xla_worker(*args.xla_worker)
        return
    args.hlo_run = os.path.abspath(args.hlo_run)
    os.makedirs(args.out, exist_ok=True)
    only = re.compile(args.only) if args.only else None
    report = {"xla_dir": os.path.abspath(args.xla_dir), "seed": args.seed,
              "rtol": args.rtol, "atol": args.atol, "hlo_run": args.hlo_run}
    commit = os.path.join(args.xla_dir, "COMMIT")
    if os.path.exists(commit):
        report["xla_commit"] = open(commit).read().strip()

    # Parser modules.
    parser_rows = []
    ppath = os.path.join(args.xla_dir, PARSER_TEST)
    if not args.skip_parser and os.path.exists(ppath):
        mods = extract_modules(ppath, PARSER_TEST)
        skipped = [m for m in mods if m["template"]]
        todo = []
        for m in mods:
            if m["template"] or (only and not only.search(m["id"])):
                continue
            if m["kind"] == "table":
                m["group"] = "table"
            else:
                m["group"] = "reject" if REJECT_RE.search(m["test_body"] or "") else "accept"
            todo.append(m)
        with cf.ThreadPoolExecutor(args.jobs) as ex:
            parser_rows = list(ex.map(lambda m: check_parser(args, m, args.out), todo))
        print("== parser: %s" % PARSER_TEST)
        for r in parser_rows:
            if r["status"] != "pass":
                print("%-60s %-6s %-7s %s%s" % (r["id"], r["group"], r["status"], r["message"],
                                              " [XLA's test does not verify it: check --parse-only]"
                                              if r["xla_only_parses"] else ""))
        for g, what in (("table", "table cases (XLA parses them): pass hlo-run check"),
                        ("accept", "TEST_F modules XLA accepts: pass hlo-run check"
                         " (--parse-only where XLA's test only parses)"),
                        ("reject", "TEST_F modules XLA refuses: refused by hlo-run check")):
            rows = [r for r in parser_rows if r["group"] == g]
            print("parser: %d of %d %s" % (sum(r["status"] == "pass" for r in rows), len(rows),
                                           what))
        report["parser"] = {"rows": parser_rows, "templates_skipped": len(skipped)}

    # Execution modules.
    exec_rows = []
    if not args.skip_exec:
        tests_dir = os.path.join(args.xla_dir, "xla", "tests")
        excl = [re.compile(x) for x in DEFAULT_EXCLUDE + args.exclude]
        files = []
        for root, _, names in os.walk(tests_dir):
            for n in sorted(names):
                rel = os.path.relpath(os.path.join(root, n), args.xla_dir)
                if n.endswith("_test.cc") and not any(x.search(rel) for x in excl):
                    files.append(rel)
        jobs, skipped = [], []
        for rel in sorted(files):
            for m in extract_modules(os.path.join(args.xla_dir, rel), rel):
                if only and not only.search(m["id"]):
                    continue
                if m["template"] and m["id"] in EXPANSIONS:
                    for suffix, subst in EXPANSIONS[m["id"]]:
                        text = re.sub(r'\$(\d)', lambda g: subst[int(g.group(1))], m["text"])
                        jobs.append({"id": "%s/%s" % (m["id"], suffix), "file": m["file"],
                                     "line": m["line"], "text": text, "seed": args.seed,
                                     "key": re.sub(r'[^\w.#-]', '_', m["id"] + "_" + suffix),
                                     "literals": None})
                    continue
                if m["template"] or (only and not only.search(m["id"])):
                    skipped.append(m["id"])
                    continue
                lits = test_literals(m["test_body"]) if m["kind"] == "test" else None
                key = re.sub(r'[^\w.#-]', '_', m["id"])
                jobs.append({"id": m["id"], "file": m["file"], "line": m["line"],
                             "text": m["text"], "key": key, "seed": args.seed,
                             "literals": [l.tolist() for l in lits] if lits else None})
        work = os.path.join(args.out, "exec")
        os.makedirs(work, exist_ok=True)
        # Fresh run: forget old XLA results of these modules (--reuse-xla keeps them: the
        # inputs are deterministic, so only the hlo-run side is redone).
        for j in ([] if args.reuse_xla else jobs):
            d = os.path.join(work, j["key"])
            for f in ("xla.json", "xla.started"):
                if os.path.exists(os.path.join(d, f)):
                    os.remove(os.path.join(d, f))
        jobs_path = os.path.join(args.out, "jobs.json")
        with open(jobs_path, "w") as f:
            json.dump(jobs, f)
        for attempt in range(len(jobs) + 1):
            p = subprocess.run([sys.executable, os.path.abspath(__file__), args.xla_dir,
                                "--xla-worker", jobs_path, work],
                               capture_output=True, text=True)
            crashed = [j for j in jobs
                       if os.path.exists(os.path.join(work, j["key"], "xla.started"))
                       and not os.path.exists(os.path.join(work, j["key"], "xla.json"))]
            for j in crashed:  # the module that took the worker down
                with open(os.path.join(work, j["key"], "xla.json"), "w") as f:
                    json.dump({"status": "xla-error", "error": "XLA:CPU crashed: " +
                               " | ".join(p.stderr.strip().splitlines()[-2:])[:300]}, f)
            if not crashed:
                break
        xla_ok = []
        for j in jobs:
            with open(os.path.join(work, j["key"], "xla.json")) as f:
                x = json.load(f)
            if x["status"] == "ok":
                xla_ok.append(j)
            else:
                exec_rows.append({"id": j["id"], "file": j["file"], "line": j["line"],
                                  "xla": x["status"], "error": x["error"], "job": j})
        with cf.ThreadPoolExecutor(args.jobs) as ex:
            for r, cross in zip(exec_rows, ex.map(lambda r: cross_check(r.pop("job"), args, work),
                                                   list(exec_rows))):
                r.update(cross)
        with cf.ThreadPoolExecutor(args.jobs) as ex:
            results = list(ex.map(lambda j: evaluate(j, args, work), xla_ok))
        for r in results:
            r["xla"] = "ok"
        exec_rows = results + exec_rows
        print("== execution: %d modules from %d files (%d templates skipped, %d rejected by "
              "XLA:CPU or the harness)" % (len(jobs), len(files), len(skipped),
                                           len(jobs) - len(xla_ok)))
        print("%-58s %-8s %-8s %s" % ("module", "interp", "vulkan", "reason"))
        for r in results:
            reason = r["interp"].get("error") or r["vulkan"].get("error") or ""
            if r["interp"]["status"] != "pass" and r["vulkan"].get("error"):
                reason = "interp: %s / vulkan: %s" % (r["interp"].get("error"),
                                                     r["vulkan"]["error"])
            flag = "" if r["xla_deterministic"] else " [XLA:CPU nondeterministic]"
            print("%-58s %-8s %-8s %s%s" % (r["id"][:58], r["interp"]["status"],
                                             r["vulkan"]["status"], reason[:300], flag))
        print("-- not run by XLA:CPU: both backends on --random-inputs, compared with each other")
        for r in exec_rows:
            if r.get("xla") != "ok":
                st = [r[b]["status"] for b in ("interp", "vulkan")]
                why = [r[b].get("error", "") for b in ("interp", "vulkan")]
                print("%-58s %-8s %-8s %s | XLA:CPU: %s" % (
                    r["id"][:58], st[0], st[1],
                    r.get("cross") or " / ".join(w[:200] for w in why if w),
                    r["error"].splitlines()[0][:160]))
        report["execution"] = {"rows": exec_rows, "templates_skipped": skipped,
                               "files": files}
        n = len(results)
        ip = sum(r["interp"]["status"] == "pass" for r in results)
        vp = sum(r["vulkan"]["status"] == "pass" for r in results)
        report["summary_execution"] = {"modules": n, "interp_pass": ip, "vulkan_pass": vp,
                                       "xla_rejected": len(jobs) - len(xla_ok),
                                       "templates_skipped": len(skipped)}
    summary = []
    if parser_rows:
        def count(g):
            rows = [r for r in parser_rows if r["group"] == g]
            return "%d/%d" % (sum(r["status"] == "pass" for r in rows), len(rows))
        summary.append("parser table %s, TEST_F accepted %s, TEST_F refused %s" % (
            count("table"), count("accept"), count("reject")))
    if "summary_execution" in report:
        s = report["summary_execution"]
        summary.append("execution interp %d/%d, vulkan %d/%d (%d not run by XLA:CPU, %d "
                       "templates skipped)" % (s["interp_pass"], s["modules"], s["vulkan_pass"],
                                               s["modules"], s["xla_rejected"],
                                               s["templates_skipped"]))
    report["summary"] = "; ".join(summary)
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    print("SUMMARY: " + report["summary"])
    print("report: " + os.path.join(args.out, "report.json"))


if __name__ == "__main__":
    main()
