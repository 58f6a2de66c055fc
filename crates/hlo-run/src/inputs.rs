//! Matching host arrays to a module's entry parameters.
//!
//! Inputs are one array per entry-parameter *leaf* (tuple parameters are
//! flattened depth first, as JAX flattens pytrees), given as `.npy` files or one
//! `.npz` with `arr_0..arr_N`. Each is checked against the entry signature.

use crate::npy::{self, HostArray};
use crate::user_error;
use hlo_ir::{ArrayShape, DType, InstrId, Module, Shape};
use std::path::PathBuf;

/// One entry-parameter leaf: its shape and a name for messages.
#[derive(Clone, Debug)]
pub struct ParamLeaf {
    pub name: String,
    pub shape: ArrayShape,
    /// The entry computation's parameter instruction the leaf belongs to.
    pub param: InstrId,
}

/// The entry computation's parameter leaves, in order.
pub fn param_leaves(module: &Module) -> Vec<ParamLeaf> {
    let entry = module.entry_comp();
    let mut leaves = Vec::new();
    for (number, &id) in entry.params.iter().enumerate() {
        let instr = entry.instr(id);
        let arrays = instr.shape.leaves();
        for (k, leaf) in arrays.iter().enumerate() {
            let name = if arrays.len() == 1 && !instr.shape.is_tuple() {
                format!("parameter {number} ({})", instr.name)
            } else {
                format!("parameter {number} ({}) leaf {k}", instr.name)
            };
            leaves.push(ParamLeaf { name, shape: (*leaf).clone(), param: id });
        }
    }
    leaves
}

/// Reads the input files: several `.npy`, or a single `.npz`, with at most `limit` bytes of data in all.
pub fn read_inputs(paths: &[PathBuf], limit: u64) -> anyhow::Result<Vec<(String, HostArray)>> {
    if let [single] = paths {
        if single.extension().is_some_and(|e| e == "npz") {
            // `np.savez(f, a, b)` names its arrays arr_0, arr_1, ...: in that order. Other names
            // are matched to parameter names later ([`order_by_parameter_name`]).
            let mut arrays = npy::read_npz_named(single, limit).map_err(|e| user_error(e.to_string()))?;
            let positional = |key: &str| key.strip_prefix("arr_").and_then(|k| k.parse::<usize>().ok());
            if arrays.iter().all(|(key, _)| positional(key).is_some()) {
                arrays.sort_by_key(|(key, _)| positional(key));
            }
            return Ok(arrays.into_iter().map(|(key, a)| (format!("{}[{key}]", single.display()), a)).collect());
        }
    }
    let mut used = 0u64;
    let mut arrays = Vec::with_capacity(paths.len());
    for p in paths {
        let array = npy::read_npy_limited(p, limit.saturating_sub(used)).map_err(|e| user_error(e.to_string()))?;
        used += array.bytes.len() as u64;
        arrays.push((p.display().to_string(), array));
    }
    Ok(arrays)
}

/// Puts the arrays of an `.npz` archive written with names (`np.savez(f, x=..., w=...)`) in
/// parameter order when every array parameter of the entry has an array of its name; otherwise
/// they stay in archive order.
pub fn order_by_parameter_name(module: &hlo_ir::Module, leaves: &[ParamLeaf], inputs: &mut Vec<(String, HostArray)>) {
    let entry = module.entry_comp();
    let key_of = |label: &str| label.rsplit_once('[').and_then(|(_, k)| k.strip_suffix(']')).map(str::to_string);
    let mut ordered = Vec::with_capacity(leaves.len());
    for leaf in leaves {
        let name = &entry.instr(leaf.param).name;
        match inputs.iter().position(|(label, _)| key_of(label).as_deref() == Some(name.as_str())) {
            Some(k) if leaves.iter().filter(|l| l.param == leaf.param).count() == 1 => ordered.push(k),
            _ => return,
        }
    }
    if ordered.len() == inputs.len() {
        let mut taken: Vec<Option<(String, HostArray)>> = std::mem::take(inputs).into_iter().map(Some).collect();
        *inputs = ordered.into_iter().map(|k| taken[k].take().expect("each array once")).collect();
    }
}

/// Bytes of every entry-parameter leaf together.
pub fn leaves_bytes(leaves: &[ParamLeaf]) -> u64 {
    leaves.iter().fold(0u64, |acc, l| {
        acc.saturating_add(l.shape.num_elements().saturating_mul(l.shape.dtype.byte_size() as u64))
    })
}

/// Checks count, element type and dimensions of every input against the entry signature.
/// A bf16 parameter accepts a `<u2` array holding the bits (numpy has no
/// bf16; that is how JAX users save one), an 8-bit float parameter a byte array; such inputs
/// are relabelled.
pub fn check_inputs(leaves: &[ParamLeaf], inputs: &mut [(String, HostArray)]) -> anyhow::Result<()> {
    if leaves.len() != inputs.len() {
        let expected: Vec<String> = leaves.iter().map(|l| l.shape.to_string()).collect();
        return Err(user_error(format!(
            "the module takes {} input(s) ({}), but {} were given",
            leaves.len(),
            expected.join(", "),
            inputs.len()
        )));
    }
    for (leaf, (source, array)) in leaves.iter().zip(inputs) {
        if leaf.shape.dtype == DType::BF16 && array.dtype == DType::U16 {
            array.dtype = DType::BF16;
        }
        // An 8- or 4-bit float parameter takes its bits as bytes (`|u1`, or ml_dtypes' `<V1`).
        if leaf.shape.dtype.is_float() && leaf.shape.dtype.bit_width() <= 8 && array.dtype == DType::U8 {
            array.dtype = leaf.shape.dtype;
        }
        // A 2- or 4-bit integer parameter takes a byte per element: numpy's int8/uint8, or
        // ml_dtypes' int4 (`<V1`, the value in the low bits); the backends wrap to the width.
        if leaf.shape.dtype.is_integer()
            && leaf.shape.dtype.bit_width() < 8
            && matches!(array.dtype, DType::U8 | DType::S8)
        {
            array.dtype = leaf.shape.dtype;
        }
        if leaf.shape.dtype != array.dtype || leaf.shape.dims != array.dims {
            return Err(user_error(format!(
                "input {source} is {} but {} expects {}",
                array.describe(),
                leaf.name,
                ArrayShape::new(leaf.shape.dtype, leaf.shape.dims.clone())
            )));
        }
    }
    Ok(())
}

/// Deterministic random inputs for every parameter leaf, if they fit in `limit` bytes
/// (twice over: the literal and its bytes exist together for a moment).
pub fn random_inputs(leaves: &[ParamLeaf], seed: u64, limit: u64) -> anyhow::Result<Vec<(String, HostArray)>> {
    let what = match leaves.iter().max_by_key(|l| l.shape.num_elements()) {
        Some(largest) => format!("--random-inputs (the largest, {}, is {})", largest.name, largest.shape),
        None => "--random-inputs".to_string(),
    };
    crate::limits::check_budget(&what, leaves_bytes(leaves).saturating_mul(2), limit)?;
    leaves
        .iter()
        .enumerate()
        .map(|(k, leaf)| {
            let shape = ArrayShape::new(leaf.shape.dtype, leaf.shape.dims.clone());
            let lit = hlo_interp::random_literal(&shape, seed.wrapping_add(k as u64));
            let bytes = hlo_interp::literal_to_bytes(&lit)
                .map_err(|e| anyhow::anyhow!("cannot make random input for {}: {e}", leaf.name))?;
            Ok((format!("random input {k}"), HostArray { dtype: shape.dtype, dims: shape.dims, bytes }))
        })
        .collect()
}

/// Flattens a result shape's leaves into output arrays, in order.
pub fn output_leaves(shape: &Shape) -> Vec<ArrayShape> {
    shape.leaves().into_iter().cloned().collect()
}
