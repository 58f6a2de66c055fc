//! Shared helpers for the workspace-level tests: finding the repository's
//! samples, loading their inputs and JAX outputs, and comparing results.

use hlo_run::npy::{self, HostArray};
use std::path::{Path, PathBuf};

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// One sample directory of `hlo-samples/`.
#[derive(Clone, Debug)]
pub struct Sample {
    pub name: String,
    pub dir: PathBuf,
    /// `module.hlo` and/or `module.opt.hlo`, whichever exist.
    pub modules: Vec<PathBuf>,
    /// Relative L2 tolerance for float outputs (from `meta.json`).
    pub tolerance: f64,
}

impl Sample {
    pub fn inputs(&self) -> Vec<HostArray> {
        numbered(&self.dir, "in")
    }
    pub fn outputs(&self) -> Vec<HostArray> {
        numbered(&self.dir, "out")
    }
}

/// Reads `PREFIX_0.npy`, `PREFIX_1.npy`, ... until one is missing.
fn numbered(dir: &Path, prefix: &str) -> Vec<HostArray> {
    (0..)
        .map(|k| dir.join(format!("{prefix}_{k}.npy")))
        .take_while(|p| p.exists())
        .map(|p| npy::read_npy(&p).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Every sample in `hlo-samples/`, sorted by name.
pub fn samples() -> Vec<Sample> {
    let root = repo_root().join("hlo-samples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).expect("hlo-samples/ exists") {
        let dir = entry.expect("readable dir entry").path();
        if !dir.is_dir() {
            continue;
        }
        let modules: Vec<PathBuf> =
            ["module.hlo", "module.opt.hlo"].iter().map(|f| dir.join(f)).filter(|p| p.exists()).collect();
        if modules.is_empty() {
            continue;
        }
        let tolerance = std::fs::read_to_string(dir.join("meta.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|meta| meta.get("tolerance").and_then(|t| t.as_f64()))
            .unwrap_or(1e-5);
        let name = dir.file_name().expect("dir name").to_string_lossy().into_owned();
        out.push(Sample { name, dir, modules, tolerance });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Compares one output with JAX's: integers and predicates exactly, floats by
/// relative L2 error `||out - ref|| / ||ref||` (absolute when `ref` is all zero).
/// NaNs must match position for position, infinities exactly.
pub fn compare(out: &HostArray, reference: &HostArray, tolerance: f64) -> Result<(), String> {
    let relabelled;
    let reference = if out.dtype == hlo_ir::DType::BF16 && reference.dtype == hlo_ir::DType::U16 {
        // JAX's bf16 outputs are saved as their bits in `<u2`.
        relabelled = HostArray { dtype: hlo_ir::DType::BF16, ..reference.clone() };
        &relabelled
    } else {
        reference
    };
    if out.dtype != reference.dtype || out.dims != reference.dims {
        return Err(format!("shape {} but JAX gave {}", out.describe(), reference.describe()));
    }
    let Some(a) = float_values(out) else {
        return if out.bytes == reference.bytes {
            Ok(())
        } else {
            let n = out.bytes.iter().zip(&reference.bytes).filter(|(x, y)| x != y).count();
            Err(format!("{n} of {} bytes differ from JAX's exact integer output", out.bytes.len()))
        };
    };
    let b = float_values(reference).expect("same dtype as out");
    let (mut diff2, mut ref2) = (0.0f64, 0.0f64);
    for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
        if x.is_nan() || y.is_nan() || x.is_infinite() || y.is_infinite() {
            if !(x.is_nan() && y.is_nan()) && x != y {
                return Err(format!("element {i}: {x} but JAX gave {y}"));
            }
            continue;
        }
        diff2 += (x - y) * (x - y);
        ref2 += y * y;
    }
    let err = if ref2 > 0.0 { (diff2 / ref2).sqrt() } else { diff2.sqrt() };
    if err <= tolerance {
        Ok(())
    } else {
        Err(format!("relative L2 error {err:.3e} exceeds tolerance {tolerance:.1e}"))
    }
}

/// Float elements as f64 (complex as interleaved parts); `None` for non-floats.
fn float_values(a: &HostArray) -> Option<Vec<f64>> {
    use hlo_ir::DType;
    let b = &a.bytes;
    Some(match a.dtype {
        DType::F16 => b.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64()).collect(),
        DType::BF16 => b.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64()).collect(),
        DType::F32 | DType::C64 => {
            b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect()
        }
        DType::F64 | DType::C128 => {
            b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
        }
        _ => return None,
    })
}
