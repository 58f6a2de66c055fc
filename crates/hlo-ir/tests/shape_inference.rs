//! Table-driven tests of `hlo_ir::shape_inference`: one correct and one wrong case per op family,
//! plus XLA's semantic pitfalls (negative padding, base dilation, batching dims, feature groups,
//! strided slices, width-changing bitcast-convert).
//!
//! Each case calls `check(op, operands, expect)` (or a variant with a declared shape or callee
//! signatures) with shapes written as in HLO text. `expect` is the inferred shape as printed,
//! `"declared"` when the op accepts its declared shape, or `"error: <substring of the message>"`.

use hlo_ir::shape_inference::{infer_op, Arity};
use hlo_ir::*;

mod shape_inference_support;
use shape_inference_support::{conv_dims, parse_shape, parse_signature, window};

fn run(op: Op, operands: &[&str], declared: Option<&str>, callees: &[&str], expect: &str) {
    let operands: Vec<Shape> = operands.iter().map(|s| parse_shape(s)).collect();
    let refs: Vec<&Shape> = operands.iter().collect();
    let declared = declared.map(parse_shape);
    let sigs: Vec<ProgramShape> = callees.iter().map(|s| parse_signature(s)).collect();
    let callee = |c: CompId| sigs.get(c.index()).cloned();
    let got = match infer_op(&op, &refs, declared.as_ref(), &callee) {
        Ok(Some(shape)) => shape.to_string(),
        Ok(None) => "declared".to_string(),
        Err(err) => format!("error: {err}"),
    };
    if let Some(want) = expect.strip_prefix("error: ") {
        assert!(
            got.starts_with("error: ") && got.contains(want),
            "{op:?} on {operands:?}:\n  want error containing {want:?}\n  got {got}"
        );
    } else {
        assert_eq!(got, expect, "{op:?} on {operands:?}");
    }
}

fn check(op: Op, operands: &[&str], expect: &str) {
    run(op, operands, None, &[], expect)
}

fn check_decl(op: Op, operands: &[&str], declared: &str, expect: &str) {
    run(op, operands, Some(declared), &[], expect)
}

/// Callee `i` in `callees` is `CompId(i)`.
fn check_calls(op: Op, operands: &[&str], callees: &[&str], expect: &str) {
    run(op, operands, None, callees, expect)
}

const C0: CompId = CompId(0);
const C1: CompId = CompId(1);

#[test]
fn arity() {
    check(Op::Binary(BinaryOp::Add), &["f32[4]"], "error: add takes exactly 2 operands but has 1");
    check(Op::Select, &["pred[]", "f32[]", "f32[]", "f32[]"], "error: select takes exactly 3 operands but has 4");
    check(Op::Concatenate { dimension: 0 }, &[], "error: concatenate takes at least 1 operands but has 0");
    assert!(Arity::Any.accepts(7));
}

#[test]
fn unary() {
    let u = |op| Op::Unary(op);
    check(u(UnaryOp::Exp), &["f32[2,3]"], "f32[2,3]");
    check(
        u(UnaryOp::Exp),
        &["s32[2]"],
        "error: operand 0 of exponential has element type s32; expected a floating-point or complex type",
    );
    check(u(UnaryOp::IsFinite), &["bf16[3]"], "pred[3]");
    check(u(UnaryOp::IsFinite), &["s32[3]"], "error: element type s32; expected a floating-point type");
    check(u(UnaryOp::Real), &["c64[2]"], "f32[2]");
    check(u(UnaryOp::Imag), &["c128[]"], "f64[]");
    check(u(UnaryOp::Real), &["f32[2]"], "f32[2]");
    check(u(UnaryOp::Abs), &["c64[5]"], "f32[5]");
    check(u(UnaryOp::Abs), &["s8[5]"], "s8[5]");
    check(u(UnaryOp::Abs), &["u8[5]"], "error: expected a signed, floating-point or complex type");
    check(u(UnaryOp::Not), &["pred[4]"], "pred[4]");
    check(u(UnaryOp::Not), &["u32[4]"], "u32[4]");
    check(u(UnaryOp::Not), &["f32[4]"], "error: expected pred or an integer type");
    check(u(UnaryOp::Floor), &["s32[]"], "error: operand 0 of floor has element type s32");
    check(u(UnaryOp::PopulationCount), &["u16[2]"], "u16[2]");
    check(u(UnaryOp::Clz), &["f32[2]"], "error: count-leading-zeros");
    check(u(UnaryOp::Negate), &["pred[]"], "error: expected a numeric type");
    check(u(UnaryOp::Sign), &["s32[3]"], "s32[3]");
    check(u(UnaryOp::Exp), &["(f32[2])"], "error: operand 0 of exponential must be an array but has shape (f32[2])");
}

#[test]
fn binary() {
    let b = |op| Op::Binary(op);
    check(b(BinaryOp::Add), &["f32[4]", "f32[4]"], "f32[4]");
    check(b(BinaryOp::Add), &["f32[4]", "f32[3]"], "error: operand 1 of add has shape f32[3] but operand 0 has f32[4]");
    check(
        b(BinaryOp::Multiply),
        &["f32[4]", "bf16[4]"],
        "error: operand 1 of multiply has shape bf16[4] but operand 0 has f32[4]",
    );
    // HLO has no implicit broadcasting, not even of scalars.
    check(b(BinaryOp::Add), &["f32[4]", "f32[]"], "error: operand 1 of add has shape f32[]");
    check(b(BinaryOp::And), &["pred[2]", "pred[2]"], "pred[2]");
    check(b(BinaryOp::Xor), &["u8[2]", "u8[2]"], "u8[2]");
    check(
        b(BinaryOp::Or),
        &["f32[2]", "f32[2]"],
        "error: operand 0 of or has element type f32; expected pred or an integer type",
    );
    check(b(BinaryOp::ShiftLeft), &["s32[2]", "s32[2]"], "s32[2]");
    check(b(BinaryOp::ShiftRightLogical), &["pred[2]", "pred[2]"], "error: expected an integer type");
    check(b(BinaryOp::Complex), &["f32[3]", "f32[3]"], "c64[3]");
    check(b(BinaryOp::Complex), &["f64[]", "f64[]"], "c128[]");
    check(b(BinaryOp::Complex), &["bf16[3]", "bf16[3]"], "error: expected f32 or f64");
    check(b(BinaryOp::Atan2), &["s32[3]", "s32[3]"], "error: atan2");
    check(b(BinaryOp::Remainder), &["s32[3]", "s32[3]"], "s32[3]");
}

#[test]
fn compare_select_clamp() {
    let lt = |ty| Op::Compare { direction: CompareDirection::Lt, compare_type: ty };
    check(lt(None), &["f32[4]", "f32[4]"], "pred[4]");
    check(lt(Some(CompareType::TotalOrder)), &["f32[4]", "f32[4]"], "pred[4]");
    check(
        lt(Some(CompareType::Signed)),
        &["u32[4]", "u32[4]"],
        "error: expected a signed integer type for a SIGNED compare",
    );
    check(lt(None), &["f32[4]", "s32[4]"], "error: operand 1 of compare has shape s32[4] but operand 0 has f32[4]");
    check(Op::Select, &["pred[2,3]", "f32[2,3]", "f32[2,3]"], "f32[2,3]");
    check(Op::Select, &["pred[]", "f32[2,3]", "f32[2,3]"], "f32[2,3]");
    check(
        Op::Select,
        &["pred[3]", "f32[2,3]", "f32[2,3]"],
        "error: operand 0 of select has shape pred[3] but operand 1 has f32[2,3]",
    );
    check(
        Op::Select,
        &["s32[2,3]", "f32[2,3]", "f32[2,3]"],
        "error: operand 0 of select has element type s32; expected pred",
    );
    check(Op::Select, &["pred[]", "f32[2,3]", "s32[2,3]"], "error: operand 2 of select");
    check(Op::Clamp, &["f32[]", "f32[5]", "f32[]"], "f32[5]");
    check(Op::Clamp, &["f32[5]", "f32[5]", "f32[5]"], "f32[5]");
    check(
        Op::Clamp,
        &["f32[]", "f32[5]", "f32[2]"],
        "error: operand 2 of clamp has shape f32[2] but operand 1 has f32[5]",
    );
    check(Op::Clamp, &["s32[]", "f32[5]", "f32[]"], "error: operand 0 of clamp has shape s32[]");
}

#[test]
fn conversions() {
    check_decl(Op::Convert, &["f32[2,3]"], "s8[2,3]", "s8[2,3]");
    check_decl(Op::Convert, &["c64[2]"], "f32[2]", "error: cannot convert complex c64 to real type f32");
    check(Op::Convert, &["f32[2]"], "error: convert needs a declared array shape to infer its result, got none");
    // Width-changing bitcast-convert adds or removes a minor dimension.
    check_decl(Op::BitcastConvert, &["f32[8]"], "u8[8,4]", "u8[8,4]");
    check_decl(Op::BitcastConvert, &["u8[8,4]"], "f32[8]", "f32[8]");
    check_decl(
        Op::BitcastConvert,
        &["u8[8,2]"],
        "f32[8]",
        "error: needs a minor dimension of size 4, got shape u8[8,2]",
    );
    check_decl(Op::BitcastConvert, &["u32[3]"], "f32[3]", "f32[3]");
    check_decl(Op::BitcastConvert, &["f64[]"], "s16[4]", "s16[4]");
    check(Op::ReducePrecision { exponent_bits: 8, mantissa_bits: 7 }, &["f32[3]"], "f32[3]");
    check(Op::ReducePrecision { exponent_bits: 0, mantissa_bits: 7 }, &["f32[3]"], "error: needs exponent_bits >= 1");
    check(
        Op::ReducePrecision { exponent_bits: 5, mantissa_bits: 2 },
        &["s32[3]"],
        "error: reduce-precision has element type s32",
    );
    check_decl(Op::StochasticConvert, &["f32[4]", "u32[4]"], "s8[4]", "s8[4]");
    check_decl(Op::StochasticConvert, &["f32[4]", "u16[4]"], "s8[4]", "error: random operand u16[4] must be unsigned");
}

#[test]
fn broadcast_reshape_transpose_reverse() {
    let bcast = |d: &[i64]| Op::Broadcast { dimensions: d.to_vec() };
    check_decl(bcast(&[1]), &["f32[3]"], "f32[2,3]", "f32[2,3]");
    check_decl(bcast(&[]), &["s32[]"], "s32[4,5]", "s32[4,5]");
    check_decl(
        bcast(&[0]),
        &["f32[3]"],
        "f32[2,3]",
        "error: operand dimension 0 (size 3) maps to output dimension 0 of size 2",
    );
    // HLO broadcast never stretches a size-1 dimension.
    check_decl(bcast(&[0, 1]), &["f32[1,3]"], "f32[2,3]", "error: maps to output dimension 0 of size 2");
    check_decl(bcast(&[2]), &["f32[3]"], "f32[2,3]", "error: dimension 2 is out of range for rank 2");
    check_decl(bcast(&[1, 1]), &["f32[3,3]"], "f32[2,3]", "error: dimension 1 is repeated");
    check_decl(Op::Reshape, &["f32[2,3]"], "f32[6]", "f32[6]");
    check_decl(Op::Reshape, &["f32[2,3]"], "f32[1,6,1]", "f32[1,6,1]");
    check_decl(
        Op::Reshape,
        &["f32[2,3]"],
        "f32[5]",
        "error: cannot reshape f32[2,3] (6 elements) to f32[5] (5 elements)",
    );
    check(Op::Transpose { dimensions: vec![1, 2, 0] }, &["f32[2,3,4]"], "f32[3,4,2]");
    check(Op::Transpose { dimensions: vec![1, 1, 0] }, &["f32[2,3,4]"], "error: dimension 1 is repeated");
    check(Op::Transpose { dimensions: vec![1, 0] }, &["f32[2,3,4]"], "error: is not a permutation");
    check(Op::Reverse { dimensions: vec![0, 1] }, &["f32[3,3,3,4]"], "f32[3,3,3,4]");
    check(Op::Reverse { dimensions: vec![4] }, &["f32[3,3,3,4]"], "error: dimension 4 is out of range for rank 4");
}

#[test]
fn slices() {
    let slice = |dims: &[(i64, i64, i64)]| Op::Slice {
        dims: dims.iter().map(|&(start, limit, stride)| SliceDim { start, limit, stride }).collect(),
    };
    check(slice(&[(1, 3, 1), (0, 4, 2)]), &["f32[4,4]"], "f32[2,2]");
    // A stride that does not divide the extent rounds up: [1:8:3] takes 1, 4, 7.
    check(slice(&[(1, 8, 3)]), &["f32[10]"], "f32[3]");
    check(slice(&[(0, 10, 4)]), &["f32[10]"], "f32[3]");
    check(slice(&[(2, 2, 1)]), &["f32[10]"], "f32[0]");
    check(slice(&[(0, 11, 1)]), &["f32[10]"], "error: [0:11] is not within dimension 0 of size 10");
    check(slice(&[(3, 2, 1)]), &["f32[10]"], "error: [3:2] is not within");
    check(slice(&[(0, 4, 0)]), &["f32[10]"], "error: stride 0 of dimension 0 must be positive");
    check(slice(&[(0, 4, 1)]), &["f32[10,2]"], "error: has 1 slice dimensions for operand f32[10,2] of rank 2");

    let ds = |sizes: &[i64]| Op::DynamicSlice { sizes: sizes.to_vec() };
    check(ds(&[2, 2]), &["f32[4,5]", "s32[]", "s32[]"], "f32[2,2]");
    check(ds(&[2, 2]), &["f32[4,5]", "s32[2]"], "f32[2,2]");
    check(ds(&[2, 6]), &["f32[4,5]", "s32[]", "s32[]"], "error: slice size 6 of dimension 1 is not within 0..=5");
    check(ds(&[2, 2]), &["f32[4,5]", "s32[]"], "error: needs 2 start indices for operand f32[4,5], got 1");
    check(
        ds(&[2, 2]),
        &["f32[4,5]", "s32[]", "f32[]"],
        "error: operand 2 of dynamic-slice has element type f32; expected an integer type",
    );
    check(
        ds(&[2, 2]),
        &["f32[4,5]", "s32[]", "u32[]"],
        "error: operand 2 of dynamic-slice has shape u32[] but operand 1 has s32[]",
    );

    let dus = Op::DynamicUpdateSlice;
    check(dus.clone(), &["f32[4,5]", "f32[2,5]", "s32[]", "s32[]"], "f32[4,5]");
    check(
        dus.clone(),
        &["f32[4,5]", "f32[2,6]", "s32[]", "s32[]"],
        "error: update f32[2,6] must have the element type and rank of operand f32[4,5] and fit inside it",
    );
    check(dus, &["f32[4,5]", "s32[2,5]", "s32[]", "s32[]"], "error: update s32[2,5]");
}

#[test]
fn concatenate_pad_iota() {
    let cat = |d| Op::Concatenate { dimension: d };
    check(cat(1), &["f32[2,3]", "f32[2,4]", "f32[2,1]"], "f32[2,8]");
    check(
        cat(0),
        &["f32[2,3]", "f32[2,4]"],
        "error: operand 1 of concatenate has shape f32[2,4] but operand 0 has f32[2,3]",
    );
    check(cat(0), &["f32[2]", "s32[3]"], "error: operand 1 of concatenate has shape s32[3]");
    check(cat(2), &["f32[2,3]"], "error: dimension 2 is out of range for rank 2");

    let pad = |spec: &[(i64, i64, i64)]| Op::Pad {
        dims: spec.iter().map(|&(low, high, interior)| PadDim { low, high, interior }).collect(),
    };
    // From hlo-samples/pad: padding=1_2_0x-1_1_2 and -1_-1_1x2_0_0.
    check(pad(&[(1, 2, 0), (-1, 1, 2)]), &["f32[4,5]", "f32[]"], "f32[7,13]");
    check(pad(&[(-1, -1, 1), (2, 0, 0)]), &["s32[5,3]", "s32[]"], "s32[7,5]");
    // Interior padding of an empty or one-element dimension adds nothing.
    check(pad(&[(0, 0, 3)]), &["f32[1]", "f32[]"], "f32[1]");
    check(pad(&[(0, 0, 3)]), &["f32[0]", "f32[]"], "f32[0]");
    check(pad(&[(-3, -2, 0)]), &["f32[4]", "f32[]"], "error: makes dimension 0 (size 4) negative: -1");
    check(pad(&[(0, 0, -1)]), &["f32[4]", "f32[]"], "error: interior padding -1 of dimension 0 is negative");
    check(pad(&[(0, 0, 0)]), &["f32[4]", "f32[1]"], "error: operand 1 of pad must be a scalar but has shape f32[1]");
    check(pad(&[(0, 0, 0)]), &["f32[4]", "s32[]"], "error: operand 1 of pad has shape s32[] but operand 0 has f32[4]");

    check_decl(Op::Iota { dimension: 1 }, &[], "s32[2,3]", "s32[2,3]");
    check_decl(Op::Iota { dimension: 2 }, &[], "s32[2,3]", "error: iota_dimension 2 is out of range for rank 2");
    check_decl(Op::Iota { dimension: 0 }, &[], "s32[]", "error: the result must not be a scalar");
}

#[test]
fn tuples_and_misc() {
    check(Op::Tuple, &["f32[2]", "s32[]", "token[]"], "(f32[2], s32[], token[])");
    check(Op::Tuple, &[], "()");
    check(Op::GetTupleElement { index: 1 }, &["(f32[2], (s32[], pred[]))"], "(s32[], pred[])");
    check(Op::GetTupleElement { index: 2 }, &["(f32[2], s32[])"], "error: index 2 is out of range for (f32[2], s32[])");
    check(
        Op::GetTupleElement { index: 0 },
        &["f32[2]"],
        "error: operand 0 of get-tuple-element must be a tuple but has shape f32[2]",
    );
    check(Op::Copy, &["(f32[2], s32[])"], "(f32[2], s32[])");
    check(Op::OptimizationBarrier, &["(f32[2], s32[])"], "(f32[2], s32[])");
    check(Op::AfterAll, &["token[]", "token[]"], "token[]");
    check(Op::AfterAll, &[], "token[]");
    check(Op::AfterAll, &["f32[]", "token[]"], "token[]");
    check(Op::AddDependency, &["f32[3]", "token[]"], "f32[3]");
    check(
        Op::AddDependency,
        &["f32[3]", "f32[]"],
        "error: operand 1 of add-dependency must be a token but has shape f32[]",
    );
    check(Op::GetDimensionSize { dimension: 1 }, &["f32[3,4]"], "s32[]");
    check(Op::GetDimensionSize { dimension: 2 }, &["f32[3,4]"], "error: dimension 2 is out of range for rank 2");
    check(Op::ReplicaId, &[], "u32[]");
    check_decl(Op::Bitcast, &["f32[2,3]"], "f32[3,2]", "f32[3,2]");
    check_decl(Op::Bitcast, &["f32[2,3]"], "u8[24]", "u8[24]");
    check_decl(
        Op::Bitcast,
        &["f32[2,3]"],
        "f32[7]",
        "error: result f32[7] (224 bits) and operand f32[2,3] (192 bits) differ in size",
    );
    check_decl(Op::Rng { distribution: RngDistribution::Uniform }, &["f32[]", "f32[]"], "f32[5]", "f32[5]");
    check_decl(
        Op::Rng { distribution: RngDistribution::Normal },
        &["s32[]", "s32[]"],
        "s32[5]",
        "error: for a normal distribution",
    );
}

#[test]
fn declared_shape_accepted() {
    let cc = Op::CustomCall(Box::new(CustomCall {
        target: "foo".into(),
        api_version: None,
        called_computations: vec![],
        has_side_effect: false,
        operand_layout_constraints: None,
        output_to_operand_aliasing: vec![],
        literal: None,
    }));
    check_decl(cc, &["f32[2]", "s32[]"], "(f32[9], u8[])", "declared");
    check_decl(Op::Parameter { number: 0 }, &[], "f32[2]", "declared");
    check_decl(Op::RngBitGenerator { algorithm: RngAlgorithm::Default }, &["u64[2]"], "(u64[2], u32[8])", "declared");
    check_decl(Op::Infeed, &["token[]"], "((f32[2]), token[])", "declared");
    check_decl(
        Op::Collective { opcode: Opcode::AllReduce, attrs: CollectiveAttrs::default() },
        &["f32[2]"],
        "f32[2]",
        "declared",
    );
    check_decl(
        Op::RngBitGenerator { algorithm: RngAlgorithm::Default },
        &[],
        "(u64[2], u32[8])",
        "error: rng-bit-generator takes exactly 1 operands but has 0",
    );
    check_decl(Op::Constant(Box::new(Literal::scalar_f32(1.5))), &[], "f32[]", "f32[]");
}

const ADD_F32: &str = "(f32[], f32[]) -> f32[]";

#[test]
fn reduce() {
    let red = |dims: &[i64]| Op::Reduce { dimensions: dims.to_vec(), to_apply: C0 };
    check_calls(red(&[1]), &["f32[2,3]", "f32[]"], &[ADD_F32], "f32[2]");
    check_calls(red(&[0, 1]), &["f32[2,3]", "f32[]"], &[ADD_F32], "f32[]");
    check_calls(red(&[]), &["f32[2,3]", "f32[]"], &[ADD_F32], "f32[2,3]");
    check_calls(
        red(&[2]),
        &["f32[2,3]", "f32[]"],
        &[ADD_F32],
        "error: dimensions={2}: dimension 2 is out of range for rank 2",
    );
    check_calls(red(&[1, 1]), &["f32[2,3]", "f32[]"], &[ADD_F32], "error: dimension 1 is repeated");
    check_calls(
        red(&[1]),
        &["f32[2,3]", "f32[2]"],
        &[ADD_F32],
        "error: operand 1 of reduce must be a scalar but has shape f32[2]",
    );
    check_calls(
        red(&[1]),
        &["f32[2,3]", "s32[]"],
        &[ADD_F32],
        "error: reduce: to_apply computation result 0 is f32[] but must be s32[] like the init value",
    );
    check_calls(
        red(&[1]),
        &["f32[2,3]", "f32[]"],
        &["(f32[]) -> f32[]"],
        "error: to_apply computation takes 1 parameters but a reducer of 1 input(s) takes 2",
    );
    check_calls(
        red(&[1]),
        &["f32[2,3]", "f32[]"],
        &["(f32[], f32[]) -> f32[2]"],
        "error: result 0 is f32[2] but must be f32[]",
    );
    check_calls(red(&[1]), &["f32[2,3]", "f32[]"], &["(f32[], f32[]) -> (f32[])"], "(f32[2])");
    check_calls(
        red(&[1]),
        &["f32[2,3]", "f32[]", "f32[]"],
        &[ADD_F32],
        "error: reduce: takes N inputs and N init values, but has 3 operands",
    );
    check(red(&[1]), &["f32[2,3]", "f32[]"], "error: reduce calls computation c0, which does not exist");
    // Variadic argmax-style reduce: a tuple of (value, index).
    let argmax = "(f32[], s32[], f32[], s32[]) -> (f32[], s32[])";
    check_calls(red(&[1]), &["f32[4,8]", "s32[4,8]", "f32[]", "s32[]"], &[argmax], "(f32[4], s32[4])");
    check_calls(
        red(&[1]),
        &["f32[4,8]", "s32[4,9]", "f32[]", "s32[]"],
        &[argmax],
        "error: operand 1 of reduce has shape s32[4,9] but operand 0 has f32[4,8]",
    );
    check_calls(
        red(&[1]),
        &["f32[4,8]", "s32[4,8]", "f32[]", "s32[]"],
        &["(f32[], s32[], f32[], s32[]) -> f32[]"],
        "error: returns f32[] but must return 2 scalar(s)",
    );
    // The value parameters may differ from the inputs in floating-point precision only.
    check_calls(red(&[0]), &["bf16[8]", "f32[]"], &[ADD_F32], "f32[]");
    check_calls(
        red(&[0]),
        &["s32[8]", "f32[]"],
        &[ADD_F32],
        "error: parameter 1 has shape f32[] but the input elements are s32[]",
    );
}

#[test]
fn reduce_window() {
    let rw = |w: &str| Op::ReduceWindow { window: window(w), to_apply: C0 };
    check_calls(rw("size=1x2x2x1 stride=1x2x2x1"), &["f32[2,16,16,3]", "f32[]"], &[ADD_F32], "f32[2,8,8,3]");
    check_calls(
        rw("size=1x3x3x1 stride=1x2x2x1 pad=0_0x0_1x0_1x0_0"),
        &["f32[2,16,16,3]", "f32[]"],
        &[ADD_F32],
        "f32[2,8,8,3]",
    );
    // A cumulative sum: the window sees 63 padded elements before each.
    check_calls(rw("size=64 pad=63_0"), &["f32[64]", "f32[]"], &[ADD_F32], "f32[64]");
    check_calls(
        rw("size=3x2 stride=2x3 pad=1_1x0_2"),
        &["s32[8,10]", "s32[]"],
        &["(s32[], s32[]) -> s32[]"],
        "s32[4,4]",
    );
    // Base dilation: 5 elements dilated by 2 are 9 positions; a window of 3 fits 7 times.
    check_calls(rw("size=3 lhs_dilate=2"), &["f32[5]", "f32[]"], &[ADD_F32], "f32[7]");
    // Window dilation: a window of 3 dilated by 2 spans 5 positions.
    check_calls(rw("size=3 rhs_dilate=2"), &["f32[9]", "f32[]"], &[ADD_F32], "f32[5]");
    // All four at once: 9 dilated + 2 padded = 11 positions, a 5-wide dilated window, stride 2.
    check_calls(rw("size=3 stride=2 pad=1_1 lhs_dilate=2 rhs_dilate=2"), &["f32[5]", "f32[]"], &[ADD_F32], "f32[4]");
    // A window larger than the padded base has no positions.
    check_calls(rw("size=10"), &["f32[5]", "f32[]"], &[ADD_F32], "f32[0]");
    check_calls(
        rw("size=2x2"),
        &["f32[5]", "f32[]"],
        &[ADD_F32],
        "error: window has 2 dimensions but the base has rank 1",
    );
    check_calls(
        rw("size=2 stride=0"),
        &["f32[5]", "f32[]"],
        &[ADD_F32],
        "error: window dimension 0 needs size > 0, stride > 0",
    );
    let pair = "(f32[], s32[], f32[], s32[]) -> (f32[], s32[])";
    check_calls(rw("size=2 stride=2"), &["f32[6]", "s32[6]", "f32[]", "s32[]"], &[pair], "(f32[3], s32[3])");
}

#[test]
fn select_and_scatter() {
    let sas = |w: &str| Op::SelectAndScatter { window: window(w), select: C0, scatter: C1 };
    let ge = "(f32[], f32[]) -> pred[]";
    check_calls(
        sas("size=1x3x3x1 stride=1x2x2x1"),
        &["f32[2,11,11,3]", "f32[2,5,5,3]", "f32[]"],
        &[ge, ADD_F32],
        "f32[2,11,11,3]",
    );
    check_calls(
        sas("size=1x3x3x1 stride=1x2x2x1"),
        &["f32[2,11,11,3]", "f32[2,6,6,3]", "f32[]"],
        &[ge, ADD_F32],
        "error: source f32[2,6,6,3] must have the window's output shape f32[2,5,5,3]",
    );
    check_calls(
        sas("size=2 stride=2"),
        &["f32[4]", "f32[2]", "f32[]"],
        &[ADD_F32, ADD_F32],
        "error: select computation must return pred[] but returns f32[]",
    );
    check_calls(
        sas("size=2 stride=2"),
        &["f32[4]", "f32[2]", "f32[]"],
        &[ge, ge],
        "error: scatter computation result 0 is pred[] but must be f32[]",
    );
}

#[test]
fn map_sort_topk() {
    let map = Op::Map { dimensions: vec![0, 1], to_apply: C0 };
    check_calls(map.clone(), &["f32[2,3]", "f32[2,3]"], &[ADD_F32], "f32[2,3]");
    check_calls(
        map.clone(),
        &["f32[2,3]", "f32[3,2]"],
        &[ADD_F32],
        "error: operand 1 of map has shape f32[3,2] but operand 0 has f32[2,3]",
    );
    check_calls(
        map.clone(),
        &["f32[2,3]", "s32[2,3]"],
        &[ADD_F32],
        "error: map: to_apply computation parameter 1 has shape f32[] but map passes s32[]",
    );
    check_calls(map, &["f32[2,3]", "f32[2,3]"], &["(f32[], f32[]) -> pred[]"], "pred[2,3]");
    check_calls(
        Op::Map { dimensions: vec![1], to_apply: C0 },
        &["f32[2,3]", "f32[2,3]"],
        &[ADD_F32],
        "error: must be every dimension in order",
    );

    let sort = |d| Op::Sort { dimension: d, is_stable: false, to_apply: C0 };
    let lt = "(f32[], f32[]) -> pred[]";
    check_calls(sort(1), &["f32[4,8]"], &[lt], "f32[4,8]");
    check_calls(sort(0), &["f32[8]", "s32[8]"], &["(f32[], f32[], s32[], s32[]) -> pred[]"], "(f32[8], s32[8])");
    check_calls(
        sort(0),
        &["f32[8]", "s32[8]"],
        &[lt],
        "error: comparator computation takes 2 parameters but sort passes 4",
    );
    check_calls(sort(0), &["f32[8]"], &[ADD_F32], "error: comparator computation must return pred[] but returns f32[]");
    check_calls(sort(2), &["f32[4,8]"], &[lt], "error: dimension 2 is out of range for rank 2");
    check_calls(
        sort(0),
        &["f32[8]", "s32[7]"],
        &[lt],
        "error: operand 1 of sort has shape s32[7] but operand 0 has f32[8]",
    );

    check(Op::TopK { k: 3, largest: true }, &["f32[5,10]"], "(f32[5,3], s32[5,3])");
    check(Op::TopK { k: 11, largest: true }, &["f32[5,10]"], "error: k=11 is not within 0..=10");
    check(Op::TopK { k: 1, largest: true }, &["f32[]"], "error: must be an array of rank >= 1");
}

fn gather(offset: &[i64], collapsed: &[i64], map: &[i64], ivd: i64, ob: &[i64], sib: &[i64], sizes: &[i64]) -> Op {
    Op::Gather {
        dims: GatherDims {
            offset_dims: offset.to_vec(),
            collapsed_slice_dims: collapsed.to_vec(),
            start_index_map: map.to_vec(),
            index_vector_dim: ivd,
            operand_batching_dims: ob.to_vec(),
            start_indices_batching_dims: sib.to_vec(),
        },
        slice_sizes: sizes.to_vec(),
        indices_are_sorted: false,
    }
}

#[test]
fn gather_cases() {
    // Row gather, as jnp.take emits it.
    check(gather(&[1], &[0], &[0], 1, &[], &[], &[1, 4]), &["f32[10,4]", "s32[8,1]"], "f32[8,4]");
    // index_vector_dim == rank: each index is a scalar.
    check(gather(&[1], &[0], &[0], 1, &[], &[], &[1, 4]), &["f32[10,4]", "s32[8]"], "f32[8,4]");
    // From the draw_points seed: offset dims before the batch dim.
    check(gather(&[0, 1], &[2], &[2], 1, &[], &[], &[4096, 16, 1]), &["s16[4096,16,2]", "s32[2,1]"], "s16[4096,16,2]");
    // Batching dims (StableHLO spec example): operand dim 0 pairs with indices dim 1.
    check(
        gather(&[3, 4], &[1], &[2, 1], 3, &[0], &[1], &[1, 1, 2, 2]),
        &["s64[2,3,4,2]", "s64[2,2,3,2]"],
        "s64[2,2,3,2,2]",
    );
    // Batched take_along_axis: no offset dims.
    check(gather(&[], &[1], &[1], 2, &[0], &[0], &[1, 1]), &["f32[4,3]", "s32[4,3,1]"], "f32[4,3]");
    check(
        gather(&[], &[1], &[1], 2, &[0], &[0], &[1, 1]),
        &["f32[4,3]", "s32[5,3,1]"],
        "error: batching dimension 0 of the operand (size 4) and 0 of the indices (size 5) differ",
    );
    check(
        gather(&[], &[1], &[0], 2, &[0], &[0], &[1, 1]),
        &["f32[4,3]", "s32[4,3,1]"],
        "error: dimension 0 is in both start_index_map and operand_batching_dims",
    );
    check(
        gather(&[], &[0], &[1], 2, &[0], &[0], &[1, 1]),
        &["f32[4,3]", "s32[4,3,1]"],
        "error: dimension 0 is in both collapsed_slice_dims and operand_batching_dims",
    );
    check(
        gather(&[], &[1], &[1], 2, &[0], &[2], &[1, 1]),
        &["f32[4,3]", "s32[4,3,1]"],
        "error: must not contain index_vector_dim 2",
    );
    check(
        gather(&[], &[1], &[1], 2, &[0], &[], &[1, 1]),
        &["f32[4,3]", "s32[4,3,1]"],
        "error: must have the same length",
    );
    check(
        gather(&[1], &[0], &[0], 1, &[], &[], &[2, 4]),
        &["f32[10,4]", "s32[8,1]"],
        "error: dimension 0 is in collapsed_slice_dims but its slice size 2 is not 0 or 1",
    );
    check(
        gather(&[1], &[0], &[0], 1, &[], &[], &[1, 5]),
        &["f32[10,4]", "s32[8,1]"],
        "error: slice size 5 of dimension 1 is not within 0..=4",
    );
    check(
        gather(&[1], &[0], &[0, 1], 1, &[], &[], &[1, 4]),
        &["f32[10,4]", "s32[8,1]"],
        "error: start_index_map={0,1} has 2 entries but the index vector has 1",
    );
    check(
        gather(&[1], &[0], &[0], 3, &[], &[], &[1, 4]),
        &["f32[10,4]", "s32[8,1]"],
        "error: index_vector_dim 3 is out of range for indices s32[8,1]",
    );
    check(
        gather(&[2, 1], &[], &[0], 1, &[], &[], &[1, 4]),
        &["f32[10,4]", "s32[8,1]"],
        "error: offset_dims={2,1} must be sorted",
    );
    check(
        gather(&[1], &[], &[0], 1, &[], &[], &[1, 4]),
        &["f32[10,4]", "s32[8,1]"],
        "error: have 1 entries in all but the operand has rank 2",
    );
    check(
        gather(&[1], &[0], &[0], 1, &[], &[], &[1, 4]),
        &["f32[10,4]", "f32[8,1]"],
        "error: operand 1 of gather has element type f32; expected an integer type",
    );
}

fn scatter(uwd: &[i64], iwd: &[i64], sdod: &[i64], ivd: i64, ib: &[i64], sib: &[i64]) -> Op {
    Op::Scatter {
        dims: ScatterDims {
            update_window_dims: uwd.to_vec(),
            inserted_window_dims: iwd.to_vec(),
            scatter_dims_to_operand_dims: sdod.to_vec(),
            index_vector_dim: ivd,
            input_batching_dims: ib.to_vec(),
            scatter_indices_batching_dims: sib.to_vec(),
        },
        indices_are_sorted: false,
        unique_indices: false,
        to_apply: C0,
    }
}

#[test]
fn scatter_cases() {
    // The draw_points seed: point splatting into an image.
    check_calls(
        scatter(&[], &[0, 1], &[0, 1], 1, &[], &[]),
        &["f32[64,64]", "s32[65536,2]", "f32[65536]"],
        &[ADD_F32],
        "f32[64,64]",
    );
    check_calls(
        scatter(&[1], &[0], &[0], 1, &[], &[]),
        &["f32[10,4]", "s32[8,1]", "f32[8,4]"],
        &[ADD_F32],
        "f32[10,4]",
    );
    // index_vector_dim=0 with window dims first (from hlo-samples).
    check_calls(
        scatter(&[0, 1], &[2], &[2], 0, &[], &[]),
        &["s16[64,243,3]", "s32[1]", "s16[64,243]"],
        &["(s16[], s16[]) -> s16[]"],
        "s16[64,243,3]",
    );
    // Batching dims: operand dim 0 pairs with indices dim 0.
    check_calls(
        scatter(&[], &[1], &[1], 2, &[0], &[0]),
        &["f32[4,3]", "s32[4,3,1]", "f32[4,3]"],
        &[ADD_F32],
        "f32[4,3]",
    );
    check_calls(
        scatter(&[], &[1], &[1], 2, &[0], &[0]),
        &["f32[4,3]", "s32[5,3,1]", "f32[5,3]"],
        &[ADD_F32],
        "error: batching dimension 0 of the operand (size 4) and 0 of the indices (size 5) differ",
    );
    // Variadic scatter.
    let pair = "(f32[], s32[], f32[], s32[]) -> (f32[], s32[])";
    check_calls(
        scatter(&[1], &[0], &[0], 1, &[], &[]),
        &["f32[10,4]", "s32[10,4]", "s32[8,1]", "f32[8,4]", "s32[8,4]"],
        &[pair],
        "(f32[10,4], s32[10,4])",
    );
    check_calls(
        scatter(&[1], &[0], &[0], 1, &[], &[]),
        &["f32[10,4]", "s32[8,1]", "f32[8,5]"],
        &[ADD_F32],
        "error: update window dimension 1 (size 5) is larger than operand dimension 1 (size 4)",
    );
    check_calls(
        scatter(&[1], &[0], &[0], 1, &[], &[]),
        &["f32[10,4]", "s32[8,1]", "f32[7,4]"],
        &[ADD_F32],
        "error: update scatter dimension 0 has size 7 but the matching indices dimension has size 8",
    );
    check_calls(
        scatter(&[1], &[0], &[0], 1, &[], &[]),
        &["f32[10,4]", "s32[8,1]", "f32[8,4,1]"],
        &[ADD_F32],
        "error: updates f32[8,4,1] must have rank 2",
    );
    check_calls(
        scatter(&[1], &[0], &[0], 1, &[], &[]),
        &["f32[10,4]", "s32[8,1]", "s32[8,4]"],
        &[ADD_F32],
        "error: operand 2 of scatter has shape s32[8,4] but operand 0 has f32[10,4]",
    );
    check_calls(
        scatter(&[1], &[0], &[0], 1, &[], &[]),
        &["f32[10,4]", "s32[8,1]", "f32[8,4]"],
        &["(s32[], s32[]) -> s32[]"],
        "error: scatter: to_apply computation result 0 is s32[] but must be f32[]",
    );
    check_calls(
        scatter(&[1], &[0], &[0], 1, &[], &[]),
        &["f32[10,4]", "s32[8,1]", "f32[8,4]", "f32[8,4]"],
        &[ADD_F32],
        "error: takes N operands, indices and N updates, but has 4 operands",
    );
    check_calls(
        scatter(&[1], &[], &[0], 1, &[], &[]),
        &["f32[10,4]", "s32[8,1]", "f32[8,4]"],
        &[ADD_F32],
        "error: have 1 entries in all but the operand has rank 2",
    );
}

fn dot(lb: &[i64], lc: &[i64], rb: &[i64], rc: &[i64]) -> Op {
    Op::Dot {
        dims: DotDims {
            lhs_batch: lb.to_vec(),
            lhs_contracting: lc.to_vec(),
            rhs_batch: rb.to_vec(),
            rhs_contracting: rc.to_vec(),
        },
        precision: vec![],
        algorithm: None,
    }
}

#[test]
fn dot_cases() {
    check(dot(&[], &[1], &[], &[0]), &["f32[2,3]", "f32[3,4]"], "f32[2,4]");
    check(dot(&[0], &[2], &[0], &[1]), &["f32[5,2,3]", "f32[5,3,4]"], "f32[5,2,4]");
    // Contracting the lhs's leading dimension, rhs batch not leading.
    check(dot(&[1], &[0], &[2], &[0]), &["f32[3,5,2]", "f32[3,4,5]"], "f32[5,2,4]");
    // An outer product has no contracting dimensions.
    check(dot(&[], &[], &[], &[]), &["f32[2]", "f32[3]"], "f32[2,3]");
    // The declared (preferred) element type wins.
    check_decl(dot(&[], &[1], &[], &[0]), &["bf16[2,3]", "bf16[3,4]"], "f32[2,4]", "f32[2,4]");
    check_decl(dot(&[], &[1], &[], &[0]), &["s8[2,3]", "s8[3,4]"], "s32[2,4]", "s32[2,4]");
    check(
        dot(&[], &[1], &[], &[0]),
        &["f32[2,3]", "f32[4,4]"],
        "error: contracting dimension 1 of lhs f32[2,3] and 0 of rhs f32[4,4] differ in size",
    );
    check(dot(&[0], &[2], &[0], &[1]), &["f32[5,2,3]", "f32[6,3,4]"], "error: batch dimension 0 of lhs");
    check(
        dot(&[], &[1], &[], &[0, 1]),
        &["f32[2,3]", "f32[3,4]"],
        "error: lhs and rhs must have as many batch and as many contracting dimensions",
    );
    check(
        dot(&[1], &[1], &[], &[0]),
        &["f32[2,3]", "f32[3,4]"],
        "error: lhs batch and contracting dimensions={1,1}: dimension 1 is repeated",
    );
    check(dot(&[], &[2], &[], &[0]), &["f32[2,3]", "f32[3,4]"], "error: dimension 2 is out of range for rank 2");
}

fn conv(w: &str, labels: &str, fgc: i64, bgc: i64) -> Op {
    Op::Convolution {
        window: window(w),
        dims: conv_dims(labels),
        feature_group_count: fgc,
        batch_group_count: bgc,
        precision: vec![],
    }
}

#[test]
fn convolution() {
    // All from hlo-samples/conv2d_*.
    check(
        conv("size=3x3 pad=2_1x2_1 lhs_dilate=2x2", "b01f_01oi->b01f", 1, 1),
        &["f32[2,6,6,4]", "f32[3,3,3,4]"],
        "f32[2,12,12,3]",
    );
    check(
        conv("size=6x6 pad=0_1x0_1 rhs_dilate=2x2", "f01b_i01o->01bf", 1, 1),
        &["f32[2,12,12,3]", "f32[2,6,6,4]"],
        "f32[3,3,3,4]",
    );
    check(
        conv("size=3x3 pad=1_2x2_1 rhs_dilate=2x2", "b01f_01io->b01f", 1, 1),
        &["f32[2,16,16,3]", "f32[3,3,3,8]"],
        "f32[2,15,15,8]",
    );
    check(
        conv("size=3x3 stride=2x2 pad=0_1x0_1", "b01f_01io->b01f", 1, 1),
        &["f32[2,16,16,3]", "f32[3,3,3,8]"],
        "f32[2,8,8,8]",
    );
    // Depthwise: feature_group_count=3, each group sees one input feature.
    check(conv("size=3x3 pad=1_1x1_1", "b01f_01io->b01f", 3, 1), &["f32[2,12,12,3]", "f32[3,3,1,3]"], "f32[2,12,12,3]");
    check(conv("size=3x3 pad=1_1x1_1", "b01f_01io->b01f", 3, 1), &["f32[2,12,12,3]", "f32[3,3,3,3]"], "error: input feature dimension (3) must be feature_group_count (3) times the kernel input feature dimension (3)");
    check(
        conv("size=3x3 pad=1_1x1_1", "b01f_01io->b01f", 3, 1),
        &["f32[2,12,12,6]", "f32[3,3,2,4]"],
        "error: kernel output features (4) must be a multiple of feature_group_count (3)",
    );
    // batch_group_count splits the batch (weight gradients of grouped convolutions).
    check(conv("size=3", "b0f_0io->b0f", 1, 2), &["f32[4,5,3]", "f32[3,3,6]"], "f32[2,3,6]");
    check(
        conv("size=3", "b0f_0io->b0f", 1, 3),
        &["f32[4,5,3]", "f32[3,3,6]"],
        "error: input batch (4) and kernel output features (6) must be multiples of batch_group_count (3)",
    );
    check(conv("size=3", "b0f_0io->b0f", 2, 2), &["f32[4,5,6]", "f32[3,3,6]"], "error: cannot both be greater than 1");
    check(
        conv("size=2", "b0f_0io->b0f", 1, 1),
        &["f32[4,5,3]", "f32[3,3,6]"],
        "error: window size 2 of spatial dimension 0 differs from the kernel's size 3",
    );
    check(
        conv("size=3x3", "b0f_0io->b0f", 1, 1),
        &["f32[4,5,3]", "f32[3,3,6]"],
        "error: window has 2 dimensions but there are 1 spatial dimensions",
    );
    check(
        conv("size=3", "b01f_01io->b01f", 1, 1),
        &["f32[4,5,3]", "f32[3,3,6]"],
        "error: dim_labels with 2 spatial dimensions do not fit",
    );
    check_decl(conv("size=3", "b0f_0io->b0f", 1, 1), &["bf16[4,5,3]", "bf16[3,3,6]"], "f32[4,3,6]", "f32[4,3,6]");
}

#[test]
fn control_flow() {
    let state = "(s32[], f32[4])";
    let cond = "((s32[], f32[4])) -> pred[]";
    let body = "((s32[], f32[4])) -> (s32[], f32[4])";
    let w = Op::While { condition: C0, body: C1 };
    check_calls(w.clone(), &[state], &[cond, body], "(s32[], f32[4])");
    check_calls(
        w.clone(),
        &[state],
        &["((s32[], f32[4])) -> s32[]", body],
        "error: while: condition computation must return pred[] but returns s32[]",
    );
    check_calls(
        w.clone(),
        &[state],
        &[cond, "((s32[], f32[4])) -> (s32[], f32[5])"],
        "error: body computation must return the loop state (s32[], f32[4]) but returns (s32[], f32[5])",
    );
    check_calls(
        w,
        &["(s32[], f32[3])"],
        &[cond, body],
        "error: condition computation parameter 0 has shape (s32[], f32[4]) but while passes (s32[], f32[3])",
    );

    let cond2 = Op::Conditional { branches: vec![C0, C1] };
    let b0 = "(f32[2]) -> f32[2]";
    let b1 = "(s32[]) -> f32[2]";
    check_calls(cond2.clone(), &["pred[]", "f32[2]", "s32[]"], &[b0, b1], "f32[2]");
    check_calls(cond2.clone(), &["s32[]", "f32[2]", "s32[]"], &[b0, b1], "f32[2]");
    check_calls(
        cond2.clone(),
        &["pred[]", "f32[2]", "f32[2]"],
        &[b0, b1],
        "error: branch 1 computation parameter 0 has shape s32[] but conditional passes f32[2]",
    );
    check_calls(
        cond2.clone(),
        &["pred[]", "f32[2]", "s32[]"],
        &[b0, "(s32[]) -> f32[3]"],
        "error: branch 1 computation returns f32[3] but branch 0 returns f32[2]",
    );
    check_calls(
        cond2.clone(),
        &["f32[]", "f32[2]", "s32[]"],
        &[b0, b1],
        "error: operand 0 of conditional has element type f32; expected pred or s32",
    );
    check_calls(cond2, &["pred[2]", "f32[2]", "s32[]"], &[b0, b1], "error: operand 0 of conditional must be a scalar");
    check_calls(
        Op::Conditional { branches: vec![C0] },
        &["pred[]", "f32[2]"],
        &[b0],
        "error: a pred selector needs exactly 2 branches, got 1",
    );

    let call = Op::Call { to_apply: C0, is_composite: false };
    check_calls(call.clone(), &["f32[2]", "s32[]"], &["(f32[2], s32[]) -> (f32[2])"], "(f32[2])");
    check_calls(
        call.clone(),
        &["f32[2]"],
        &["(f32[2], s32[]) -> f32[2]"],
        "error: call: called computation takes 2 parameters but call passes 1",
    );
    let fusion = Op::Fusion { kind: FusionKind::Loop, calls: C0 };
    check_calls(fusion.clone(), &["f32[2]{0}"], &["(f32[2]) -> f32[4]"], "f32[4]");
    check_calls(
        fusion,
        &["f32[3]"],
        &["(f32[2]) -> f32[4]"],
        "error: fusion: fused computation parameter 0 has shape f32[2] but fusion passes f32[3]",
    );
}

#[test]
fn linear_algebra_fft_batch_norm() {
    check(Op::Cholesky { lower: true }, &["f32[3,4,4]"], "f32[3,4,4]");
    check(
        Op::Cholesky { lower: true },
        &["f32[3,4,5]"],
        "error: operand 0 of cholesky must be a batch of square matrices but has shape f32[3,4,5]",
    );
    let ts = |left| Op::TriangularSolve {
        left_side: left,
        lower: true,
        unit_diagonal: false,
        transpose_a: TransposeKind::NoTranspose,
    };
    check(ts(true), &["f32[2,4,4]", "f32[2,4,3]"], "f32[2,4,3]");
    check(ts(false), &["f32[2,4,4]", "f32[2,3,4]"], "f32[2,3,4]");
    check(ts(true), &["f32[2,4,4]", "f32[2,3,4]"], "error: b f32[2,3,4] must have 4 rows to match a f32[2,4,4]");
    check(ts(true), &["f32[2,4,4]", "f32[3,4,3]"], "error: operand 1 of triangular-solve has shape f32[3,4,3]");

    let fft = |ty, len: &[i64]| Op::Fft { fft_type: ty, fft_length: len.to_vec() };
    check(fft(FftType::Fft, &[8]), &["c64[3,8]"], "c64[3,8]");
    check(fft(FftType::Rfft, &[8]), &["f32[3,8]"], "c64[3,5]");
    check(fft(FftType::Irfft, &[8]), &["c64[3,5]"], "f32[3,8]");
    check(fft(FftType::Rfft, &[4, 8]), &["f64[4,8]"], "c128[4,5]");
    check(
        fft(FftType::Fft, &[8]),
        &["f32[3,8]"],
        "error: operand 0 of fft has element type f32; expected a complex type",
    );
    check(fft(FftType::Irfft, &[8]), &["c64[3,8]"], "error: do not match fft_length={8}");
    check(fft(FftType::Fft, &[2, 2, 2, 2]), &["c64[2,2,2,2]"], "error: must name 1 to 3 dimensions");

    let bn_t = Op::BatchNormTraining { epsilon: 1e-3, feature_index: 1 };
    check(bn_t.clone(), &["f32[2,3,4]", "f32[3]", "f32[3]"], "(f32[2,3,4], f32[3], f32[3])");
    check(bn_t, &["f32[2,3,4]", "f32[4]", "f32[3]"], "error: operand 1 has shape f32[4] but must be f32[3]");
    let bn_i = Op::BatchNormInference { epsilon: 1e-3, feature_index: 2 };
    check(bn_i, &["f32[2,3,4]", "f32[4]", "f32[4]", "f32[4]", "f32[4]"], "f32[2,3,4]");
    let bn_g = Op::BatchNormGrad { epsilon: 1e-3, feature_index: 0 };
    check(bn_g.clone(), &["f32[2,3]", "f32[2]", "f32[2]", "f32[2]", "f32[2,3]"], "(f32[2,3], f32[2], f32[2])");
    check(
        bn_g,
        &["f32[2,3]", "f32[2]", "f32[2]", "f32[2]", "f32[2]"],
        "error: operand 4 has shape f32[2] but must be f32[2,3]",
    );
}
