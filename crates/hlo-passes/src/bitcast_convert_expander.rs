//! `bitcast-convert-expander`: a `bitcast-convert` that changes the element width as integer
//! shifts, ors, slices and concatenations, which fuse like any elementwise code (JAX writes
//! one around every `rng-bit-generator`, turning its `u32[2]` key words into the `u64` state).
//!
//! XLA's semantics: converting to a type `k` times wider consumes a minor dimension of size
//! `k`, converting to a type `k` times narrower adds one; element 0 of that dimension holds the
//! lowest bits (little-endian), whatever the platform.
//! The pieces travel as unsigned integers, so a signed piece is never sign-extended; the ends
//! are reinterpreted with same-width `bitcast-convert`s.
//!
//! Pre-condition: none. Post-condition: every `bitcast-convert` between array types of 8, 16,
//! 32 or 64 bits has operand and result of one width; other forms (sub-byte, complex,
//! `pred`) stay, so that code generation refuses them by name.

use crate::util::{compact, NameUniquer};
use crate::PassError;
use hlo_ir::{ArrayData, ArrayShape, BinaryOp, Computation, DType, InstrId, Literal, Module, Op, SliceDim};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("bitcast-convert-expander").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for comp in module.comps.iter_mut() {
        let ids: Vec<InstrId> = comp.ids().filter(|&id| matches!(comp.instr(id).op, Op::BitcastConvert)).collect();
        let mut comp_changed = false;
        for id in ids {
            comp_changed |= expand(comp, &mut names, id);
        }
        if comp_changed {
            compact(comp)?;
            changed = true;
        }
    }
    Ok(changed)
}

/// The unsigned integer type of `bits` bits, for the widths this pass moves pieces in.
fn unsigned(bits: u32) -> Option<DType> {
    match bits {
        8 => Some(DType::U8),
        16 => Some(DType::U16),
        32 => Some(DType::U32),
        64 => Some(DType::U64),
        _ => None,
    }
}

/// Whether a bitcast may reinterpret this type's bits: integers and real floats only.
fn plain_bits(dtype: DType) -> bool {
    (dtype.is_integer() || dtype.is_float()) && unsigned(dtype.bit_width()).is_some()
}

/// Replaces the `bitcast-convert` at `at` when it changes the width; false otherwise.
fn expand(comp: &mut Computation, names: &mut NameUniquer, at: InstrId) -> bool {
    let instr = comp.instr(at).clone();
    let Some(&x) = instr.operands.first() else { return false };
    let (Some(from), Some(to)) = (comp.instr(x).shape.as_array().cloned(), instr.shape.as_array().cloned()) else {
        return false;
    };
    let (fw, tw) = (from.dtype.bit_width(), to.dtype.bit_width());
    if fw == tw || !plain_bits(from.dtype) || !plain_bits(to.dtype) {
        return false;
    }
    let mut b = Builder { comp, names, at };
    let res = if fw < tw {
        // Narrow to wide: the minor dimension's `k` pieces, lowest bits first.
        let k = i64::from(tw / fw);
        if from.dims.last() != Some(&k) || from.dims[..from.dims.len() - 1] != to.dims[..] {
            return false;
        }
        let (narrow, wide) = (unsigned(fw).expect("plain"), unsigned(tw).expect("plain"));
        let x = b.bitcast(x, narrow);
        let mut acc = None;
        for i in 0..k {
            let mut dims = from.dims.clone();
            let last = dims.len() - 1;
            let slice = dims
                .iter()
                .enumerate()
                .map(|(d, &n)| {
                    if d == last {
                        SliceDim { start: i, limit: i + 1, stride: 1 }
                    } else {
                        SliceDim { start: 0, limit: n, stride: 1 }
                    }
                })
                .collect();
            dims[last] = 1;
            let piece = b.push(narrow, &dims, Op::Slice { dims: slice }, vec![x]);
            let piece = b.push(narrow, &to.dims, Op::Reshape, vec![piece]);
            let piece = b.push(wide, &to.dims, Op::Convert, vec![piece]);
            let piece = if i == 0 {
                piece
            } else {
                let shift = b.splat(wide, (i as u64) * u64::from(fw), &to.dims);
                b.push(wide, &to.dims, Op::Binary(BinaryOp::ShiftLeft), vec![piece, shift])
            };
            acc = Some(match acc {
                None => piece,
                Some(a) => b.push(wide, &to.dims, Op::Binary(BinaryOp::Or), vec![a, piece]),
            });
        }
        let Some(acc) = acc else { return false };
        b.bitcast(acc, to.dtype)
    } else {
        // Wide to narrow: a new minor dimension of `k` pieces, lowest bits first.
        let k = i64::from(fw / tw);
        if to.dims.last() != Some(&k) || to.dims[..to.dims.len() - 1] != from.dims[..] {
            return false;
        }
        let (narrow, wide) = (unsigned(tw).expect("plain"), unsigned(fw).expect("plain"));
        let x = b.bitcast(x, wide);
        let mut piece_dims = from.dims.clone();
        piece_dims.push(1);
        let mut pieces = Vec::new();
        for i in 0..k {
            let shifted = if i == 0 {
                x
            } else {
                let shift = b.splat(wide, (i as u64) * u64::from(tw), &from.dims);
                b.push(wide, &from.dims, Op::Binary(BinaryOp::ShiftRightLogical), vec![x, shift])
            };
            let piece = b.push(narrow, &from.dims, Op::Convert, vec![shifted]);
            pieces.push(b.push(narrow, &piece_dims, Op::Reshape, vec![piece]));
        }
        let dimension = from.dims.len() as i64;
        let joined = b.push(narrow, &to.dims, Op::Concatenate { dimension }, pieces);
        b.bitcast(joined, to.dtype)
    };
    // The instruction becomes a copy-free alias of its expansion: a reshape to its own shape.
    let target = b.comp.instr_mut(at);
    target.op = Op::Reshape;
    target.operands = vec![res];
    true
}

/// Pushes the expansion's instructions, named and located after the original.
struct Builder<'a> {
    comp: &'a mut Computation,
    names: &'a mut NameUniquer,
    at: InstrId,
}

impl Builder<'_> {
    fn push(&mut self, dtype: DType, dims: &[i64], op: Op, operands: Vec<InstrId>) -> InstrId {
        crate::util::push_expansion_step(self.comp, self.names, self.at, (dtype, dims), op, operands)
    }

    /// `x` reinterpreted as `to` of the same width (itself when it already is).
    fn bitcast(&mut self, x: InstrId, to: DType) -> InstrId {
        let Some(a) = self.comp.instr(x).shape.as_array().cloned() else { return x };
        if a.dtype == to {
            return x;
        }
        self.push(to, &a.dims, Op::BitcastConvert, vec![x])
    }

    /// A constant of an unsigned type broadcast to `dims`.
    fn splat(&mut self, dtype: DType, value: u64, dims: &[i64]) -> InstrId {
        let data = match dtype {
            DType::U8 => ArrayData::U8(vec![value as u8]),
            DType::U16 => ArrayData::U16(vec![value as u16]),
            DType::U32 => ArrayData::U32(vec![value as u32]),
            _ => ArrayData::U64(vec![value]),
        };
        let c = self.push(dtype, &[], Op::Constant(Box::new(Literal::array(ArrayShape::scalar(dtype), data))), vec![]);
        if dims.is_empty() {
            return c;
        }
        self.push(dtype, dims, Op::Broadcast { dimensions: vec![] }, vec![c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expansion evaluates to the interpreter's own `bitcast-convert`.
    fn check(from: &str, to: &str) {
        let text =
            format!("HloModule m\nENTRY e {{\n  x = {from} parameter(0)\n  ROOT r = {to} bitcast-convert(x)\n}}\n");
        let module = hlo_parse::parse_module(&text).expect("parses");
        let mut expanded = module.clone();
        assert!(run(&mut expanded).expect("expands"), "{text}");
        hlo_ir::verify::verify(&expanded).expect("verifies");
        assert!(!expanded.entry_comp().instrs.iter().any(|i| {
            matches!(i.op, Op::BitcastConvert)
                && i.operands.first().and_then(|&o| expanded.entry_comp().instr(o).shape.dtype()).map(|d| d.bit_width())
                    != i.shape.dtype().map(|d| d.bit_width())
        }));
        let shape = module.entry_comp().param_shapes()[0].as_array().cloned().expect("array");
        let input = hlo_interp::random_literal(&shape, 11);
        let want = hlo_interp::evaluate(&module, std::slice::from_ref(&input)).expect("interprets");
        let got = hlo_interp::evaluate(&expanded, &[input]).expect("interprets the expansion");
        let bytes = |l: &Literal| hlo_interp::literal_to_bytes(l).expect("bytes");
        assert_eq!(bytes(&got), bytes(&want), "{text}");
    }

    #[test]
    fn expansion_matches_the_interpreter() {
        for (from, to) in [
            ("u32[2,2]", "u64[2]"),
            ("u64[2]", "u32[2,2]"),
            ("s32[3,2]", "s64[3]"),
            ("s64[3]", "s32[3,2]"),
            ("f32[5,2]", "f64[5]"),
            ("f64[5]", "f32[5,2]"),
            ("u8[4,4]", "s32[4]"),
            ("s32[4]", "s8[4,4]"),
            ("s16[2]", "u8[2,2]"),
            ("u16[4,4]", "u64[4]"),
            ("u32[2]", "u64[]"),
            ("u64[]", "u32[2]"),
            ("f16[3,2]", "u32[3]"),
            ("u32[3]", "bf16[3,2]"),
        ] {
            check(from, to);
        }
    }
}
