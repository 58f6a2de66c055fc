//! The math accuracy suite's harness, shared by the interpreter's and the Vulkan backend's
//! tests: reading the cases in `hlo-samples/math/` and comparing results with JAX's in ulps.
//!
//! The metric follows XLA:CPU's floating-point environment (docs/numerics.md): for f32, bf16
//! and f64, values below the smallest normal number count as zero of their sign, and the
//! distance between zero and the smallest normal is one ulp. f16 is computed in f32, so its
//! subnormals are ordinary values. NaN must meet NaN, infinities must be equal, and a zero
//! result must carry JAX's sign. Below 16 times the smallest normal number the comparison is
//! absolute: results there that differ by less are equal (XLA:CPU flushes intermediate
//! results, so its own results there have no relative accuracy).
//!
//! Where an operand is subnormal, XLA:CPU reads it as zero in most functions but not in all
//! (it passes it through in some library calls); a result then also passes when it matches
//! JAX's result for the operand read as zero, looked up among the case's own points.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Element types of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    F16,
    BF16,
    F32,
    F64,
}

impl Ty {
    fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "f16" => Ty::F16,
            "bf16" => Ty::BF16,
            "f32" => Ty::F32,
            "f64" => Ty::F64,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Ty::F16 => "f16",
            Ty::BF16 => "bf16",
            Ty::F32 => "f32",
            Ty::F64 => "f64",
        }
    }
    pub fn width(self) -> usize {
        match self {
            Ty::F16 | Ty::BF16 => 2,
            Ty::F32 => 4,
            Ty::F64 => 8,
        }
    }
    /// Whether XLA:CPU flushes subnormals of this type.
    fn flushes(self) -> bool {
        self != Ty::F16
    }
    fn min_normal(self) -> f64 {
        match self {
            Ty::F16 => 6.103_515_625e-5,
            Ty::BF16 | Ty::F32 => f32::MIN_POSITIVE as f64,
            Ty::F64 => f64::MIN_POSITIVE,
        }
    }
}

/// One case: a function of one or two operands at one type.
pub struct Case {
    pub name: String,
    pub function: String,
    pub ty: Ty,
    pub dir: PathBuf,
    pub inputs: Vec<Vec<u8>>,
    /// JAX's output (raw bytes; pred outputs one byte per element).
    pub want: Vec<u8>,
    pub points: usize,
}

pub fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hlo-samples/math")
}

/// Every case, sorted by name.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(suite_dir()).expect("hlo-samples/math exists").flatten() {
        let dir = entry.path();
        if !dir.join("module.hlo").exists() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let (function, ty) = name.rsplit_once('_').expect("<function>_<dtype>");
        let ty = Ty::parse(ty).unwrap_or_else(|| panic!("{name}: unknown type"));
        let mut inputs = Vec::new();
        while dir.join(format!("in_{}.npy", inputs.len())).exists() {
            inputs.push(read_npy(&dir.join(format!("in_{}.npy", inputs.len()))));
        }
        let want = read_npy(&dir.join("out_0.npy"));
        let points = inputs[0].len() / ty.width();
        out.push(Case { name: name.clone(), function: function.to_string(), ty, dir, inputs, want, points });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(out.len() > 50, "the math suite looks incomplete: {} cases", out.len());
    out
}

/// The little-endian data of a `.npy` file.
pub fn read_npy(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not a .npy file", path.display());
    let (len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    bytes[start + len..].to_vec()
}

/// Element `i` of raw data of type `ty` as f64.
pub fn value(ty: Ty, data: &[u8], i: usize) -> f64 {
    let w = ty.width();
    let b = &data[i * w..(i + 1) * w];
    match ty {
        Ty::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f64(),
        Ty::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f64(),
        Ty::F32 => f32::from_le_bytes(b.try_into().unwrap()) as f64,
        Ty::F64 => f64::from_le_bytes(b.try_into().unwrap()),
    }
}

/// The position of `v` among the type's (flushed) non-negative values, signed by `v`'s sign:
/// consecutive representable values differ by one.
fn ordinal(ty: Ty, v: f64) -> i64 {
    let a = v.abs();
    let idx = match ty {
        Ty::F16 => half::f16::from_f64(a).to_bits() as i64,
        Ty::BF16 | Ty::F32 | Ty::F64 if a < ty.min_normal() => 0,
        Ty::BF16 => (half::bf16::from_f64(a).to_bits() - 0x0080 + 1) as i64,
        Ty::F32 => ((a as f32).to_bits() - 0x0080_0000 + 1) as i64,
        Ty::F64 => (a.to_bits() - 0x0010_0000_0000_0000 + 1) as i64,
    };
    if v.is_sign_negative() {
        -idx
    } else {
        idx
    }
}

fn flush(ty: Ty, v: f64) -> f64 {
    if ty.flushes() && v.abs() < ty.min_normal() {
        0.0f64.copysign(v)
    } else {
        v
    }
}

/// Distance in ulps of `got` from `want`, or `None` when a special value is not matched.
pub fn ulp_distance(ty: Ty, got: f64, want: f64) -> Option<u64> {
    if want.is_nan() || got.is_nan() {
        return (want.is_nan() && got.is_nan()).then_some(0);
    }
    if want.is_infinite() || got.is_infinite() {
        return (want == got).then_some(0);
    }
    let (g, w) = (flush(ty, got), flush(ty, want));
    if g == 0.0 && w == 0.0 && g.is_sign_negative() != w.is_sign_negative() {
        return None;
    }
    // Results within 16 smallest normals of zero: XLA:CPU flushes intermediate values there,
    // so its own results have no relative accuracy left (an absolute error floor).
    if ty.flushes() && g.abs() < 16.0 * ty.min_normal() && w.abs() < 16.0 * ty.min_normal() {
        return Some(0);
    }
    Some(ordinal(ty, g).abs_diff(ordinal(ty, w)))
}

/// What comparing one case found.
#[derive(Default)]
pub struct Outcome {
    /// The largest ulp distance over the checked points.
    pub max_ulp: u64,
    /// Points that failed the bound or a special value, as `(index, description)`.
    pub failures: Vec<(usize, String)>,
    /// Points with a subnormal operand and no zero-operand counterpart to compare with.
    pub unchecked: usize,
}

/// Compares `got` (raw bytes of the case's output type) with JAX's output within `bound` ulps.
pub fn compare(case: &Case, got: &[u8], bound: u64) -> Outcome {
    let ty = case.ty;
    let n = case.points;
    let mut out = Outcome::default();
    if case.function == "is_finite" {
        for (i, (&g, &w)) in got.iter().zip(&case.want).enumerate().take(n) {
            if (g != 0) != (w != 0) {
                out.failures.push((i, format!("x = {:e}: got {g} want {w}", input(case, 0, i))));
            }
        }
        return out;
    }
    assert_eq!(got.len(), n * ty.width(), "{}: output size", case.name);
    // JAX's result per operand tuple, for the subnormal-read-as-zero alternative.
    let key = |i: usize| -> Vec<u64> { (0..case.inputs.len()).map(|k| input(case, k, i).to_bits()).collect() };
    let mut by_operands: Option<HashMap<Vec<u64>, usize>> = None;
    for i in 0..n {
        let g = value(ty, got, i);
        let w = value(ty, &case.want, i);
        let d = ulp_distance(ty, g, w);
        if d.is_some_and(|d| d <= bound) {
            out.max_ulp = out.max_ulp.max(d.unwrap_or(0));
            continue;
        }
        let subnormal_operand = ty.flushes() && (0..case.inputs.len()).any(|k| is_subnormal(ty, input(case, k, i)));
        if subnormal_operand {
            let map = by_operands.get_or_insert_with(|| (0..n).map(|j| (key(j), j)).collect());
            let zeroed: Vec<u64> = (0..case.inputs.len())
                .map(|k| {
                    let v = input(case, k, i);
                    (if is_subnormal(ty, v) { 0.0f64.copysign(v) } else { v }).to_bits()
                })
                .collect();
            match map.get(&zeroed) {
                Some(&j) => {
                    let alt = value(ty, &case.want, j);
                    if ulp_distance(ty, g, alt).is_some_and(|d| d <= bound) {
                        continue;
                    }
                }
                None => {
                    out.unchecked += 1;
                    continue;
                }
            }
        }
        let operands: Vec<String> = (0..case.inputs.len()).map(|k| format!("{:e}", input(case, k, i))).collect();
        let dist = d.map_or("special value".to_string(), |d| format!("{d} ulp"));
        out.max_ulp = out.max_ulp.max(d.unwrap_or(u64::MAX));
        out.failures.push((i, format!("({}): got {g:e} want {w:e} ({dist})", operands.join(", "))));
    }
    out
}

fn is_subnormal(ty: Ty, v: f64) -> bool {
    v != 0.0 && v.abs() < ty.min_normal()
}

/// Operand `k` at point `i`.
pub fn input(case: &Case, k: usize, i: usize) -> f64 {
    value(case.ty, &case.inputs[k], i)
}

/// A readable report of the failing cases (the first few points of each).
pub fn report(failed: &[(String, Outcome)]) -> String {
    let mut s = String::new();
    for (name, o) in failed {
        s += &format!("{name}: {} points fail (max {} ulp)\n", o.failures.len(), o.max_ulp);
        for (_, f) in o.failures.iter().take(6) {
            s += &format!("    {f}\n");
        }
    }
    s
}
