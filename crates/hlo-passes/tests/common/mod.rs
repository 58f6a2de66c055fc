//! Helpers shared by the sample-driven tests: finding samples, reading their
//! `.npy` inputs and outputs as literals, and comparing results.
#![allow(dead_code)]

use hlo_ir::{ArrayShape, Literal, LiteralData, Module, Shape};
use std::path::{Path, PathBuf};

/// `hlo-samples/` at the workspace root.
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hlo-samples")
}

/// Every sample directory name, sorted.
pub fn sample_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(samples_dir())
        .expect("hlo-samples exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `(sample, file)` for every module file of every sample (`module.hlo`, `module.opt.hlo`).
pub fn sample_modules() -> Vec<(String, &'static str)> {
    let mut res = Vec::new();
    for name in sample_names() {
        for file in ["module.hlo", "module.opt.hlo"] {
            if samples_dir().join(&name).join(file).exists() {
                res.push((name.clone(), file));
            }
        }
    }
    res
}

pub fn load(sample: &str, file: &str) -> Module {
    let path = samples_dir().join(sample).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    hlo_parse::parse_module(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The raw little-endian data bytes of an `.npy` file, checked against `shape`.
fn npy_bytes(path: &Path, shape: &ArrayShape) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dims: Vec<i64> = npy.shape().iter().map(|&d| d as i64).collect();
    assert_eq!(dims, shape.dims, "{}: shape", path.display());
    let n = shape.num_elements() as usize * shape.dtype.byte_size();
    bytes[bytes.len() - n..].to_vec()
}

/// The sample's inputs, typed by the entry computation's parameters.
pub fn inputs(sample: &str, module: &Module) -> Vec<Literal> {
    let entry = module.entry_comp();
    entry
        .param_shapes()
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let shape = shape.as_array().expect("array parameters");
            let shape = ArrayShape { layout: None, ..shape.clone() };
            let path = samples_dir().join(sample).join(format!("in_{i}.npy"));
            hlo_interp::literal_from_bytes(&shape, &npy_bytes(&path, &shape)).expect("input literal")
        })
        .collect()
}

/// JAX's outputs, typed by the leaves of `result`.
pub fn expected_outputs(sample: &str, result: &Shape) -> Vec<Literal> {
    result
        .leaves()
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let shape = ArrayShape { layout: None, ..(*shape).clone() };
            let path = samples_dir().join(sample).join(format!("out_{i}.npy"));
            hlo_interp::literal_from_bytes(&shape, &npy_bytes(&path, &shape)).expect("output literal")
        })
        .collect()
}

/// The array leaves of a literal, depth first.
pub fn leaves(lit: &Literal) -> Vec<&Literal> {
    match &lit.data {
        LiteralData::Tuple(elems) => elems.iter().flat_map(leaves).collect(),
        _ => vec![lit],
    }
}

/// The sample's tolerance from its `meta.json` (`"tolerance": x`), 0 when absent.
pub fn tolerance(sample: &str) -> f64 {
    let text = std::fs::read_to_string(samples_dir().join(sample).join("meta.json")).unwrap_or_default();
    let Some(at) = text.find("\"tolerance\":") else { return 0.0 };
    let rest = &text[at + "\"tolerance\":".len()..];
    let num: String = rest.trim_start().chars().take_while(|c| !matches!(c, ',' | '\n' | '}')).collect();
    num.trim().parse().unwrap_or(0.0)
}

/// The elements of an array literal as f64 (bit-exact for integers up to 2^53).
pub fn as_f64(lit: &Literal) -> Vec<f64> {
    use hlo_ir::ArrayData as D;
    match lit.array_data().expect("array literal") {
        D::Pred(v) => v.iter().map(|&x| x as u8 as f64).collect(),
        D::S8(v) => v.iter().map(|&x| x as f64).collect(),
        D::S16(v) => v.iter().map(|&x| x as f64).collect(),
        D::S32(v) => v.iter().map(|&x| x as f64).collect(),
        D::S64(v) => v.iter().map(|&x| x as f64).collect(),
        D::U8(v) => v.iter().map(|&x| x as f64).collect(),
        D::U16(v) => v.iter().map(|&x| x as f64).collect(),
        D::U32(v) => v.iter().map(|&x| x as f64).collect(),
        D::U64(v) => v.iter().map(|&x| x as f64).collect(),
        D::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
        D::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
        D::F32(v) => v.iter().map(|&x| x as f64).collect(),
        D::F64(v) => v.clone(),
        D::C64(v) => v.iter().flat_map(|x| [x[0] as f64, x[1] as f64]).collect(),
        D::C128(v) => v.iter().flat_map(|x| [x[0], x[1]]).collect(),
        D::Bits(v) => v.iter().map(|&x| x as f64).collect(),
    }
}

/// Compares two array literals: integers and preds exactly (up to `int_mismatches`
/// differing elements), floats by relative L2 error within `tol` with non-finite values
/// matching positionally. Returns a description of the first failure.
pub fn compare(got: &Literal, want: &Literal, tol: f64, int_mismatches: usize) -> Result<(), String> {
    if !got.shape.compatible(&want.shape) {
        return Err(format!("shape {} != {}", got.shape, want.shape));
    }
    let (g, w) = (as_f64(got), as_f64(want));
    let dtype = want.shape.dtype().expect("array");
    if !dtype.is_float() && !dtype.is_complex() {
        let bad = g.iter().zip(&w).filter(|(a, b)| a != b).count();
        return if bad <= int_mismatches { Ok(()) } else { Err(format!("{bad} of {} elements differ", w.len())) };
    }
    let mut num = 0.0;
    let mut den = 0.0;
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        if !b.is_finite() || !a.is_finite() {
            let same = (a.is_nan() && b.is_nan()) || a == b;
            if !same {
                return Err(format!("element {i}: {a} vs {b}"));
            }
            continue;
        }
        num += (a - b) * (a - b);
        den += b * b;
    }
    let rel = if den > 0.0 { (num / den).sqrt() } else { num.sqrt() };
    if rel <= tol.max(1e-6) {
        Ok(())
    } else {
        Err(format!("relative L2 error {rel:e} > {tol:e}"))
    }
}
