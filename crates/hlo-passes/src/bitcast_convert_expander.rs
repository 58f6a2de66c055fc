//! `bitcast-convert-expander`: a `bitcast-convert` that changes the element width as integer
//! shifts, ors, slices and concatenations, which fuse like any elementwise code (JAX writes
//! one around every `rng-bit-generator`, turning its `u32[2]` key words into the `u64` state).
//!
//! XLA's semantics: converting to a type `k` times wider consumes a minor dimension of size
//! `k`, converting to a type `k` times narrower adds one; element 0 of that dimension holds the
//! lowest bits (little-endian), whatever the platform.
//! The pieces travel as unsigned integers, so a signed piece is never sign-extended; the ends
//! are reinterpreted with same-width `bitcast-convert`s, except at a 2- or 4-bit end, which the
//! device keeps as a value (a 32-bit word, or the f32 of an `f4e2m1fn`): there a `convert`
//! between signed and unsigned wraps to the same bits, and an `f4e2m1fn` is mapped to its 4-bit
//! code and back by comparisons with its seven magnitudes and its sign bit.
//!
//! Pre-condition: none. Post-condition: every `bitcast-convert` between integer or real float
//! array types of 2, 4, 8, 16, 32 or 64 bits has operand and result of one width; other forms
//! (complex, `pred`) stay, so that code generation refuses them by name.

use crate::util::{compact, NameUniquer};
use crate::PassError;
use hlo_ir::{
    ArrayData, ArrayShape, BinaryOp, CompareDirection, Computation, DType, InstrId, Literal, Module, Op, SliceDim,
    UnaryOp,
};

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
        2 => Some(DType::U2),
        4 => Some(DType::U4),
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
    if from.dtype == to.dtype || (fw == tw && fw >= 8) || !plain_bits(from.dtype) || !plain_bits(to.dtype) {
        return false;
    }
    let mut b = Builder { comp, names, at };
    let res = if fw == tw {
        // Between 2- or 4-bit types of one width: through the unsigned bits.
        let bits = b.bits_of(x, unsigned(fw).expect("plain"));
        b.read_bits_as(bits, to.dtype)
    } else if fw < tw {
        // Narrow to wide: the minor dimension's `k` pieces, lowest bits first.
        let k = i64::from(tw / fw);
        if from.dims.last() != Some(&k) || from.dims[..from.dims.len() - 1] != to.dims[..] {
            return false;
        }
        let (narrow, wide) = (unsigned(fw).expect("plain"), unsigned(tw).expect("plain"));
        let x = b.bits_of(x, narrow);
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
        b.read_bits_as(acc, to.dtype)
    } else {
        // Wide to narrow: a new minor dimension of `k` pieces, lowest bits first.
        let k = i64::from(fw / tw);
        if to.dims.last() != Some(&k) || to.dims[..to.dims.len() - 1] != from.dims[..] {
            return false;
        }
        let (narrow, wide) = (unsigned(tw).expect("plain"), unsigned(fw).expect("plain"));
        let x = b.bits_of(x, wide);
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
        b.read_bits_as(joined, to.dtype)
    };
    // The instruction becomes a copy-free alias of its expansion: a reshape to its own shape.
    let target = b.comp.instr_mut(at);
    target.op = Op::Reshape;
    target.operands = vec![res];
    true
}

/// The magnitudes of `f4e2m1fn`, indexed by the low three bits of its code.
const F4_MAGNITUDES: [f32; 8] = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];

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

    /// `x`'s bits as the unsigned `bits` type of its width: a `convert` for 2- and 4-bit
    /// integers (which wraps to the same bits), the code of an `f4e2m1fn`, else a bitcast.
    fn bits_of(&mut self, x: InstrId, bits: DType) -> InstrId {
        let Some(a) = self.comp.instr(x).shape.as_array().cloned() else { return x };
        match a.dtype {
            d if d == bits => x,
            DType::S2 | DType::S4 => self.push(bits, &a.dims, Op::Convert, vec![x]),
            DType::F4E2M1FN => self.f4_code(x, &a.dims),
            _ => self.bitcast(x, bits),
        }
    }

    /// The inverse of [`Self::bits_of`]: unsigned `x` read as `to` of its width.
    fn read_bits_as(&mut self, x: InstrId, to: DType) -> InstrId {
        let Some(a) = self.comp.instr(x).shape.as_array().cloned() else { return x };
        match to {
            d if d == a.dtype => x,
            DType::S2 | DType::S4 => self.push(to, &a.dims, Op::Convert, vec![x]),
            DType::F4E2M1FN => self.f4_value(x, &a.dims),
            _ => self.bitcast(x, to),
        }
    }

    /// The 4-bit code (`u4`) of each `f4e2m1fn` of `x`: sign bit 3, then the index of its
    /// magnitude among [`F4_MAGNITUDES`] (the format has no infinity or NaN, and -0 keeps its sign).
    fn f4_code(&mut self, x: InstrId, dims: &[i64]) -> InstrId {
        let xf = self.push(DType::F32, dims, Op::Convert, vec![x]);
        let mag = self.push(DType::F32, dims, Op::Unary(UnaryOp::Abs), vec![xf]);
        let mut code = self.splat(DType::U4, 0, dims);
        for (i, &m) in F4_MAGNITUDES.iter().enumerate().skip(1) {
            let bound = self.splat_f32(m, dims);
            let ge = self.compare(CompareDirection::Ge, mag, bound, dims);
            let i = self.splat(DType::U4, i as u64, dims);
            code = self.push(DType::U4, dims, Op::Select, vec![ge, i, code]);
        }
        let word = self.bitcast(xf, DType::U32);
        let thirty_one = self.splat(DType::U32, 31, dims);
        let sign = self.push(DType::U32, dims, Op::Binary(BinaryOp::ShiftRightLogical), vec![word, thirty_one]);
        let sign = self.push(DType::U4, dims, Op::Convert, vec![sign]);
        let three = self.splat(DType::U4, 3, dims);
        let sign = self.push(DType::U4, dims, Op::Binary(BinaryOp::ShiftLeft), vec![sign, three]);
        self.push(DType::U4, dims, Op::Binary(BinaryOp::Or), vec![code, sign])
    }

    /// The `f4e2m1fn` whose 4-bit code is each element of the `u4` `x`.
    fn f4_value(&mut self, x: InstrId, dims: &[i64]) -> InstrId {
        let seven = self.splat(DType::U4, 7, dims);
        let index = self.push(DType::U4, dims, Op::Binary(BinaryOp::And), vec![x, seven]);
        let mut mag = self.splat_f32(0.0, dims);
        for (i, &m) in F4_MAGNITUDES.iter().enumerate().skip(1) {
            let i = self.splat(DType::U4, i as u64, dims);
            let eq = self.compare(CompareDirection::Eq, index, i, dims);
            let m = self.splat_f32(m, dims);
            mag = self.push(DType::F32, dims, Op::Select, vec![eq, m, mag]);
        }
        let neg = self.push(DType::F32, dims, Op::Unary(UnaryOp::Negate), vec![mag]);
        let eight = self.splat(DType::U4, 8, dims);
        let zero = self.splat(DType::U4, 0, dims);
        let sign = self.push(DType::U4, dims, Op::Binary(BinaryOp::And), vec![x, eight]);
        let negative = self.compare(CompareDirection::Ne, sign, zero, dims);
        let value = self.push(DType::F32, dims, Op::Select, vec![negative, neg, mag]);
        self.push(DType::F4E2M1FN, dims, Op::Convert, vec![value])
    }

    fn compare(&mut self, direction: CompareDirection, a: InstrId, b: InstrId, dims: &[i64]) -> InstrId {
        self.push(DType::Pred, dims, Op::Compare { direction, compare_type: None }, vec![a, b])
    }

    /// An f32 constant broadcast to `dims`.
    fn splat_f32(&mut self, value: f32, dims: &[i64]) -> InstrId {
        self.splat_literal(DType::F32, ArrayData::F32(vec![value]), dims)
    }

    /// A constant of an unsigned type broadcast to `dims`.
    fn splat(&mut self, dtype: DType, value: u64, dims: &[i64]) -> InstrId {
        let data = match dtype {
            DType::U2 | DType::U4 | DType::U8 => ArrayData::U8(vec![value as u8]),
            DType::U16 => ArrayData::U16(vec![value as u16]),
            DType::U32 => ArrayData::U32(vec![value as u32]),
            _ => ArrayData::U64(vec![value]),
        };
        self.splat_literal(dtype, data, dims)
    }

    fn splat_literal(&mut self, dtype: DType, data: ArrayData, dims: &[i64]) -> InstrId {
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
            ("u8[4]", "s4[4,2]"),
            ("s4[4,2]", "u8[4]"),
            ("u8[3]", "u4[3,2]"),
            ("u4[3,2]", "s8[3]"),
            ("u8[5]", "f4e2m1fn[5,2]"),
            ("f4e2m1fn[5,2]", "u8[5]"),
            ("u8[2]", "s2[2,4]"),
            ("u2[2,4]", "u8[2]"),
            ("s4[3,2]", "s2[3,2,2]"),
            ("f4e2m1fn[3,2]", "u2[3,2,2]"),
            ("u2[3,2]", "f4e2m1fn[3]"),
            ("u16[2]", "s4[2,4]"),
            ("s4[2,4]", "s16[2]"),
            ("s4[6]", "u4[6]"),
        ] {
            check(from, to);
        }
    }
}
