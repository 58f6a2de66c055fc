//! The semantic pitfalls of HLO, one small module each, with expected values worked out
//! by hand from XLA's operation semantics (not by running this evaluator).
//!
//! Every case goes through [`run`]: parse the text, evaluate the entry computation on the
//! given arguments, return the result. Float expectations compare bit patterns, so -0
//! and NaN are checked exactly.

use half::bf16;
use hlo_interp::evaluate;
use hlo_ir::{ArrayData, ArrayShape, DType, Literal, LiteralData};

fn run(hlo: &str, args: &[Literal]) -> Literal {
    let module = hlo_parse::parse_module(hlo).unwrap_or_else(|e| panic!("parse error: {e}\n{hlo}"));
    evaluate(&module, args).unwrap_or_else(|e| panic!("evaluation error: {e}\n{hlo}"))
}

fn data(lit: &Literal) -> &ArrayData {
    lit.array_data().expect("an array result")
}

fn tuple(lit: &Literal) -> &[Literal] {
    match &lit.data {
        LiteralData::Tuple(t) => t,
        _ => panic!("expected a tuple result"),
    }
}

fn f32s(dims: &[i64], v: &[f32]) -> Literal {
    Literal::array(ArrayShape::new(DType::F32, dims.to_vec()), ArrayData::F32(v.to_vec()))
}

fn s32s(dims: &[i64], v: &[i32]) -> Literal {
    Literal::array(ArrayShape::new(DType::S32, dims.to_vec()), ArrayData::S32(v.to_vec()))
}

fn u32s(dims: &[i64], v: &[u32]) -> Literal {
    Literal::array(ArrayShape::new(DType::U32, dims.to_vec()), ArrayData::U32(v.to_vec()))
}

/// Asserts f32 results bit for bit (so -0 differs from +0 and NaN equals NaN).
fn assert_f32_bits(got: &ArrayData, want: &[f32]) {
    let ArrayData::F32(got) = got else { panic!("expected f32, got {got:?}") };
    let g: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
    let w: Vec<u32> = want.iter().map(|x| x.to_bits()).collect();
    assert_eq!(g, w, "got {got:?}, want {want:?}");
}

const MIN: i32 = i32::MIN;

#[test]
fn integer_division_by_zero_and_overflow() {
    let hlo = r#"
HloModule m
ENTRY e {
  a = s32[5] parameter(0)
  b = s32[5] parameter(1)
  d = s32[5] divide(a, b)
  r = s32[5] remainder(a, b)
  ROOT t = (s32[5], s32[5]) tuple(d, r)
}"#;
    let res = run(hlo, &[s32s(&[5], &[7, -7, 7, -7, MIN]), s32s(&[5], &[0, 0, 2, 2, -1])]);
    let t = tuple(&res);
    // x/0 = -1, division truncates, MIN/-1 = MIN.
    assert_eq!(data(&t[0]), &ArrayData::S32(vec![-1, -1, 3, -3, MIN]));
    // x%0 = x, the remainder has the dividend's sign, MIN%-1 = 0.
    assert_eq!(data(&t[1]), &ArrayData::S32(vec![7, -7, 1, -1, 0]));
}

#[test]
fn unsigned_division_by_zero() {
    let hlo = r#"
HloModule m
ENTRY e {
  a = u32[2] parameter(0)
  b = u32[2] parameter(1)
  d = u32[2] divide(a, b)
  r = u32[2] remainder(a, b)
  ROOT t = (u32[2], u32[2]) tuple(d, r)
}"#;
    let res = run(hlo, &[u32s(&[2], &[7, 9]), u32s(&[2], &[0, 4])]);
    let t = tuple(&res);
    assert_eq!(data(&t[0]), &ArrayData::U32(vec![u32::MAX, 2]));
    assert_eq!(data(&t[1]), &ArrayData::U32(vec![7, 1]));
}

#[test]
fn shifts_by_at_least_the_bit_width() {
    let hlo = r#"
HloModule m
ENTRY e {
  a = s32[5] parameter(0)
  n = s32[5] parameter(1)
  l = s32[5] shift-left(a, n)
  rl = s32[5] shift-right-logical(a, n)
  ra = s32[5] shift-right-arithmetic(a, n)
  ROOT t = (s32[5], s32[5], s32[5]) tuple(l, rl, ra)
}"#;
    let res = run(hlo, &[s32s(&[5], &[1, -8, -8, 5, -8]), s32s(&[5], &[32, 1, 40, 31, -1])]);
    let t = tuple(&res);
    // Amounts >= 32 (and negative ones, read as unsigned) shift everything out.
    assert_eq!(data(&t[0]), &ArrayData::S32(vec![0, -16, 0, MIN, 0]));
    assert_eq!(data(&t[1]), &ArrayData::S32(vec![0, 0x7FFF_FFFC, 0, 0, 0]));
    // The arithmetic shift fills with sign bits.
    assert_eq!(data(&t[2]), &ArrayData::S32(vec![0, -4, -1, 0, -1]));
}

#[test]
fn integer_power_count_and_mulhi() {
    let hlo = r#"
HloModule m
ENTRY e {
  a = s32[6] parameter(0)
  b = s32[6] parameter(1)
  p = s32[6] power(a, b)
  c = s32[6] count-leading-zeros(a)
  n = s32[6] popcnt(a)
  h = s32[6] mulhi(a, b)
  ROOT t = (s32[6], s32[6], s32[6], s32[6]) tuple(p, c, n, h)
}"#;
    let res = run(hlo, &[s32s(&[6], &[2, 1, -1, 3, 0, -1]), s32s(&[6], &[-1, -5, -1, 4, 0, 1])]);
    let t = tuple(&res);
    // Negative exponents give 0 except for base 1; x^0 = 1 even for 0.
    assert_eq!(data(&t[0]), &ArrayData::S32(vec![0, 1, 0, 81, 1, -1]));
    assert_eq!(data(&t[1]), &ArrayData::S32(vec![30, 31, 0, 30, 32, 0]));
    assert_eq!(data(&t[2]), &ArrayData::S32(vec![1, 1, 32, 2, 0, 32]));
    // High 32 bits of the 64-bit products -2, -5, 1, 12, 0, -1.
    assert_eq!(data(&t[3]), &ArrayData::S32(vec![-1, -1, 0, 0, 0, -1]));
}

#[test]
fn float_to_int_conversion_saturates_and_maps_nan_to_zero() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = f32[9] parameter(0)
  a = s32[9] convert(x)
  b = u8[9] convert(x)
  c = s8[9] convert(x)
  d = pred[9] convert(x)
  ROOT t = (s32[9], u8[9], s8[9], pred[9]) tuple(a, b, c, d)
}"#;
    let x = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e9, -3e9, 2.7, -2.7, 300.0, -0.0];
    let res = run(hlo, &[f32s(&[9], &x)]);
    let t = tuple(&res);
    assert_eq!(data(&t[0]), &ArrayData::S32(vec![0, i32::MAX, MIN, i32::MAX, MIN, 2, -2, 300, 0]));
    assert_eq!(data(&t[1]), &ArrayData::U8(vec![0, 255, 0, 255, 0, 2, 0, 255, 0]));
    assert_eq!(data(&t[2]), &ArrayData::S8(vec![0, 127, -128, 127, -128, 2, -2, 127, 0]));
    // NaN is nonzero; -0 is zero.
    assert_eq!(data(&t[3]), &ArrayData::Pred(vec![true, true, true, true, true, true, true, true, false]));
}

#[test]
fn int_to_float_and_narrowing_round_to_nearest_even() {
    let hlo = r#"
HloModule m
ENTRY e {
  i = s32[3] parameter(0)
  f = f32[3] convert(i)
  x = f32[3] parameter(1)
  b = bf16[3] convert(x)
  w = s8[3] convert(i)
  ROOT t = (f32[3], bf16[3], s8[3]) tuple(f, b, w)
}"#;
    // 2^24+1 and 2^24+3 are halfway between floats: ties go to the even significand.
    let i = s32s(&[3], &[16_777_217, 16_777_219, 300]);
    // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7; 1 + 3*2^-8 between 1 + 2^-7 and 1 + 2^-6.
    let x = f32s(&[3], &[1.0 + 1.0 / 256.0, 1.0 + 3.0 / 256.0, -2.0]);
    let res = run(hlo, &[i, x]);
    let t = tuple(&res);
    assert_f32_bits(data(&t[0]), &[16_777_216.0, 16_777_220.0, 300.0]);
    let want: Vec<bf16> = [1.0, 1.0 + 1.0 / 64.0, -2.0].iter().map(|&v| bf16::from_f32(v)).collect();
    assert_eq!(data(&t[1]), &ArrayData::BF16(want));
    // Integer narrowing wraps: 300 mod 256 = 44.
    assert_eq!(data(&t[2]), &ArrayData::S8(vec![1, 3, 44]));
}

#[test]
fn rounding_half_even_versus_half_away_from_zero() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = f32[6] parameter(0)
  a = f32[6] round-nearest-even(x)
  b = f32[6] round-nearest-afz(x)
  ROOT t = (f32[6], f32[6]) tuple(a, b)
}"#;
    let res = run(hlo, &[f32s(&[6], &[0.5, 1.5, 2.5, -0.5, -2.5, 2.4])]);
    let t = tuple(&res);
    assert_f32_bits(data(&t[0]), &[0.0, 2.0, 2.0, -0.0, -2.0, 2.0]);
    assert_f32_bits(data(&t[1]), &[1.0, 2.0, 3.0, -1.0, -3.0, 2.0]);
}

#[test]
fn max_and_min_propagate_nan_and_sign_keeps_zeros() {
    let hlo = r#"
HloModule m
ENTRY e {
  a = f32[4] parameter(0)
  b = f32[4] parameter(1)
  mx = f32[4] maximum(a, b)
  mn = f32[4] minimum(a, b)
  s = f32[4] sign(a)
  ROOT t = (f32[4], f32[4], f32[4]) tuple(mx, mn, s)
}"#;
    let nan = f32::NAN;
    let res = run(hlo, &[f32s(&[4], &[nan, 1.0, -0.0, -3.0]), f32s(&[4], &[1.0, nan, 2.0, 0.0])]);
    let t = tuple(&res);
    assert_f32_bits(data(&t[0]), &[nan, nan, 2.0, 0.0]);
    assert_f32_bits(data(&t[1]), &[nan, nan, -0.0, -3.0]);
    assert_f32_bits(data(&t[2]), &[nan, 1.0, -0.0, -1.0]);
}

#[test]
fn total_order_comparison() {
    let hlo = r#"
HloModule m
ENTRY e {
  a = f32[5] parameter(0)
  b = f32[5] parameter(1)
  lt = pred[5] compare(a, b), direction=LT, type=TOTALORDER
  eq = pred[5] compare(a, b), direction=EQ, type=TOTALORDER
  feq = pred[5] compare(a, b), direction=EQ
  ROOT t = (pred[5], pred[5], pred[5]) tuple(lt, eq, feq)
}"#;
    let neg_nan = f32::from_bits(0xFFC0_0000);
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let res = run(hlo, &[f32s(&[5], &[-0.0, 0.0, inf, neg_nan, nan]), f32s(&[5], &[0.0, -0.0, nan, -inf, nan])]);
    let t = tuple(&res);
    // -NaN < -inf < ... < -0 < +0 < ... < +inf < +NaN.
    assert_eq!(data(&t[0]), &ArrayData::Pred(vec![true, false, true, true, false]));
    assert_eq!(data(&t[1]), &ArrayData::Pred(vec![false, false, false, false, true]));
    // IEEE equality: -0 == +0 and NaN != NaN.
    assert_eq!(data(&t[2]), &ArrayData::Pred(vec![true, true, false, false, false]));
}

#[test]
fn dynamic_slice_and_update_clamp_their_starts() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = s32[5] parameter(0)
  i = s32[] parameter(1)
  j = s32[] parameter(2)
  a = s32[3] dynamic-slice(x, i), dynamic_slice_sizes={3}
  b = s32[3] dynamic-slice(x, j), dynamic_slice_sizes={3}
  u = s32[2] constant({70, 80})
  c = s32[5] dynamic-update-slice(x, u, i)
  ROOT t = (s32[3], s32[3], s32[5]) tuple(a, b, c)
}"#;
    let res = run(hlo, &[s32s(&[5], &[0, 1, 2, 3, 4]), s32s(&[], &[4]), s32s(&[], &[-1])]);
    let t = tuple(&res);
    // Start 4 becomes 5 - 3 = 2; start -1 becomes 0; the update at 4 moves to 5 - 2 = 3.
    assert_eq!(data(&t[0]), &ArrayData::S32(vec![2, 3, 4]));
    assert_eq!(data(&t[1]), &ArrayData::S32(vec![0, 1, 2]));
    assert_eq!(data(&t[2]), &ArrayData::S32(vec![0, 1, 2, 70, 80]));
}

#[test]
fn pad_with_negative_and_interior_padding() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = s32[3] parameter(0)
  z = s32[] constant(0)
  a = s32[5] pad(x, z), padding=-1_1_1
  y = s32[2,2] parameter(1)
  b = s32[3,4] pad(y, z), padding=1_-1_1x0_1_1
  ROOT t = (s32[5], s32[3,4]) tuple(a, b)
}"#;
    let res = run(hlo, &[s32s(&[3], &[1, 2, 3]), s32s(&[2, 2], &[1, 2, 3, 4])]);
    let t = tuple(&res);
    // Interior padding gives 1 0 2 0 3; low -1 drops the 1; high 1 appends a 0.
    assert_eq!(data(&t[0]), &ArrayData::S32(vec![0, 2, 0, 3, 0]));
    // Rows: pad 1 low, interior 1 -> [0], [1 2], [0], [3 4]; high -1 drops the last row.
    // Columns: interior 1 and high 1 -> a b become a 0 b 0.
    assert_eq!(data(&t[1]), &ArrayData::S32(vec![0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0]));
}

#[test]
fn gather_clamps_start_indices() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = s32[3,3] parameter(0)
  i = s32[3,1] parameter(1)
  rows = s32[3,3] gather(x, i), offset_dims={1}, collapsed_slice_dims={0}, start_index_map={0}, index_vector_dim=1, slice_sizes={1,3}
  j = s32[2,2] parameter(2)
  wins = s32[2,2,2] gather(x, j), offset_dims={1,2}, collapsed_slice_dims={}, start_index_map={0,1}, index_vector_dim=1, slice_sizes={2,2}
  ROOT t = (s32[3,3], s32[2,2,2]) tuple(rows, wins)
}"#;
    let x = s32s(&[3, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let res = run(hlo, &[x, s32s(&[3, 1], &[2, 5, -1]), s32s(&[2, 2], &[2, 2, 0, -3])]);
    let t = tuple(&res);
    // Row starts 5 and -1 clamp to 2 and 0.
    assert_eq!(data(&t[0]), &ArrayData::S32(vec![7, 8, 9, 7, 8, 9, 1, 2, 3]));
    // 2x2 windows: start (2,2) clamps to (1,1); (0,-3) clamps to (0,0).
    assert_eq!(data(&t[1]), &ArrayData::S32(vec![5, 6, 8, 9, 1, 2, 4, 5]));
}

#[test]
fn scatter_skips_out_of_bounds_windows() {
    let hlo = r#"
HloModule m
add {
  a = s32[] parameter(0)
  b = s32[] parameter(1)
  ROOT s = s32[] add(a, b)
}
ENTRY e {
  x = s32[5] parameter(0)
  i = s32[4,1] parameter(1)
  u = s32[4,2] parameter(2)
  ROOT r = s32[5] scatter(x, i, u), update_window_dims={1}, inserted_window_dims={}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add
}"#;
    let res = run(
        hlo,
        &[
            s32s(&[5], &[0, 0, 0, 0, 0]),
            s32s(&[4, 1], &[1, 4, -1, 3]),
            s32s(&[4, 2], &[1, 2, 10, 20, 100, 200, 1000, 2000]),
        ],
    );
    // Windows at 4 and -1 would cross the bounds: they are dropped whole, not clipped.
    assert_eq!(data(&res), &ArrayData::S32(vec![0, 1, 2, 1000, 2000]));
}

#[test]
fn scatter_with_general_combiner_applies_updates_in_order() {
    let hlo = r#"
HloModule m
combine {
  a = s32[] parameter(0)
  b = s32[] parameter(1)
  ten = s32[] constant(10)
  m = s32[] multiply(a, ten)
  ROOT s = s32[] add(m, b)
}
ENTRY e {
  x = s32[2] parameter(0)
  i = s32[3] parameter(1)
  u = s32[3] parameter(2)
  ROOT r = s32[2] scatter(x, i, u), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=combine
}"#;
    let res = run(hlo, &[s32s(&[2], &[0, 5]), s32s(&[3], &[0, 0, 1]), s32s(&[3], &[1, 2, 3])]);
    // Element 0: (0*10+1)*10+2 = 12; element 1: 5*10+3 = 53.
    assert_eq!(data(&res), &ArrayData::S32(vec![12, 53]));
}

#[test]
fn bf16_arithmetic_rounds_after_every_op() {
    let hlo = r#"
HloModule m
ENTRY e {
  a = bf16[] parameter(0)
  b = bf16[] parameter(1)
  s = bf16[] add(a, b)
  ROOT r = bf16[] add(s, b)
}"#;
    let one = Literal::array(ArrayShape::scalar(DType::BF16), ArrayData::BF16(vec![bf16::from_f32(1.0)]));
    let eps = Literal::array(ArrayShape::scalar(DType::BF16), ArrayData::BF16(vec![bf16::from_f32(1.0 / 256.0)]));
    let res = run(hlo, &[one, eps]);
    // 1 + 2^-8 rounds (to even) back to 1 after each add; adding 2^-7 at once would not.
    assert_eq!(data(&res), &ArrayData::BF16(vec![bf16::from_f32(1.0)]));
}

#[test]
fn reduce_window_with_padding_skips_padded_positions() {
    let hlo = r#"
HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
max {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] maximum(a, b)
}
ENTRY e {
  x = f32[4] parameter(0)
  z = f32[] constant(0)
  lo = f32[] constant(-inf)
  s = f32[4] reduce-window(x, z), window={size=3 pad=1_1}, to_apply=add
  m = f32[2] reduce-window(x, lo), window={size=3 stride=2 pad=1_0}, to_apply=max
  d = f32[4] reduce-window(x, z), window={size=2 pad=0_2 rhs_dilate=2}, to_apply=add
  ROOT t = (f32[4], f32[2], f32[4]) tuple(s, m, d)
}"#;
    let res = run(hlo, &[f32s(&[4], &[1.0, 2.0, 3.0, 4.0])]);
    let t = tuple(&res);
    assert_f32_bits(data(&t[0]), &[3.0, 6.0, 9.0, 7.0]);
    // Windows over padded positions [-1, 0, 1] and [1, 2, 3].
    assert_f32_bits(data(&t[1]), &[2.0, 4.0]);
    // Window dilation 2: positions {i, i+2}, the last ones reaching into padding.
    assert_f32_bits(data(&t[2]), &[4.0, 6.0, 3.0, 4.0]);
}

#[test]
fn convolution_with_feature_groups() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = f32[1,1,4] parameter(0)
  w = f32[1,2,2] parameter(1)
  ROOT c = f32[1,1,2] convolution(x, w), window={size=1}, dim_labels=b0f_0io->b0f, feature_group_count=2
}"#;
    let res = run(hlo, &[f32s(&[1, 1, 4], &[1.0, 2.0, 3.0, 4.0]), f32s(&[1, 2, 2], &[1.0, 10.0, 100.0, 1000.0])]);
    // Output feature 0 sees input features 0,1; output feature 1 sees 2,3.
    assert_f32_bits(data(&res), &[1.0 * 1.0 + 2.0 * 100.0, 3.0 * 10.0 + 4.0 * 1000.0]);
}

#[test]
fn convolution_with_padding_stride_and_dilation() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = f32[1,5,1] parameter(0)
  w = f32[2,1,1] parameter(1)
  ROOT c = f32[1,3,1] convolution(x, w), window={size=2 stride=2 pad=1_1 rhs_dilate=2}, dim_labels=b0f_0io->b0f
}"#;
    let res = run(hlo, &[f32s(&[1, 5, 1], &[1.0, 2.0, 3.0, 4.0, 5.0]), f32s(&[2, 1, 1], &[1.0, 10.0])]);
    // Padded input: 0 1 2 3 4 5 0; taps at p and p+2 for p = 0, 2, 4.
    assert_f32_bits(data(&res), &[0.0 + 20.0, 2.0 + 40.0, 4.0 + 0.0]);
}

#[test]
fn sort_is_stable() {
    let hlo = r#"
HloModule m
less {
  a = s32[] parameter(0)
  b = s32[] parameter(1)
  c = s32[] parameter(2)
  d = s32[] parameter(3)
  ROOT lt = pred[] compare(a, b), direction=LT
}
ENTRY e {
  k = s32[6] parameter(0)
  v = s32[6] parameter(1)
  ROOT s = (s32[6], s32[6]) sort(k, v), dimensions={0}, is_stable=false, to_apply=less
}"#;
    let res = run(hlo, &[s32s(&[6], &[2, 1, 2, 1, 0, 2]), s32s(&[6], &[0, 1, 2, 3, 4, 5])]);
    let t = tuple(&res);
    assert_eq!(data(&t[0]), &ArrayData::S32(vec![0, 1, 1, 2, 2, 2]));
    // Equal keys keep their original order.
    assert_eq!(data(&t[1]), &ArrayData::S32(vec![4, 1, 3, 0, 2, 5]));
}

#[test]
fn topk_breaks_ties_by_lower_index() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = f32[2,4] parameter(0)
  ROOT t = (f32[2,3], s32[2,3]) topk(x), k=3, largest=true
}"#;
    let res = run(hlo, &[f32s(&[2, 4], &[1.0, 3.0, 3.0, 2.0, f32::NAN, 0.0, 5.0, 5.0])]);
    let t = tuple(&res);
    // NaN ranks above everything in the total order.
    assert_f32_bits(data(&t[0]), &[3.0, 3.0, 2.0, f32::NAN, 5.0, 5.0]);
    assert_eq!(data(&t[1]), &ArrayData::S32(vec![1, 2, 3, 0, 2, 3]));
}

#[test]
fn variadic_reduce_argmax() {
    let hlo = r#"
HloModule m
argmax {
  av = f32[] parameter(0)
  ai = s32[] parameter(1)
  bv = f32[] parameter(2)
  bi = s32[] parameter(3)
  gt = pred[] compare(av, bv), direction=GT
  eq = pred[] compare(av, bv), direction=EQ
  lt = pred[] compare(ai, bi), direction=LT
  tie = pred[] and(eq, lt)
  keep = pred[] or(gt, tie)
  v = f32[] select(keep, av, bv)
  i = s32[] select(keep, ai, bi)
  ROOT r = (f32[], s32[]) tuple(v, i)
}
ENTRY e {
  x = f32[2,3] parameter(0)
  i = s32[2,3] iota(), iota_dimension=1
  lo = f32[] constant(-inf)
  z = s32[] constant(0)
  ROOT r = (f32[2], s32[2]) reduce(x, i, lo, z), dimensions={1}, to_apply=argmax
}"#;
    let res = run(hlo, &[f32s(&[2, 3], &[1.0, 7.0, 7.0, -1.0, -2.0, -0.5])]);
    let t = tuple(&res);
    assert_f32_bits(data(&t[0]), &[7.0, -0.5]);
    assert_eq!(data(&t[1]), &ArrayData::S32(vec![1, 2]));
}

#[test]
fn bitcast_follows_layouts_and_bitcast_convert_splits_words() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = f32[2,3]{1,0} parameter(0)
  b = f32[3,2]{0,1} bitcast(x)
  c = f32[3,2]{1,0} copy(b)
  one = f32[] constant(1)
  h = u16[2] bitcast-convert(one)
  ROOT t = (f32[3,2]{1,0}, u16[2]) tuple(c, h)
}"#;
    let res = run(hlo, &[f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]);
    let t = tuple(&res);
    // Reading the same memory column-major is a transpose.
    assert_f32_bits(data(&t[0]), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    // 1.0f32 = 0x3F800000: the low half word comes first.
    assert_eq!(data(&t[1]), &ArrayData::U16(vec![0x0000, 0x3F80]));
}

#[test]
fn conditional_index_out_of_range_takes_the_last_branch() {
    let hlo = r#"
HloModule m
b0 {
  p = s32[] parameter(0)
  ROOT r = s32[] constant(100)
}
b1 {
  p = s32[] parameter(0)
  ROOT r = s32[] negate(p)
}
ENTRY e {
  k = s32[] parameter(0)
  x = s32[] parameter(1)
  ROOT c = s32[] conditional(k, x, x), branch_computations={b0, b1}
}"#;
    let at = |k: i32| run(hlo, &[s32s(&[], &[k]), s32s(&[], &[5])]);
    assert_eq!(data(&at(0)), &ArrayData::S32(vec![100]));
    assert_eq!(data(&at(1)), &ArrayData::S32(vec![-5]));
    assert_eq!(data(&at(7)), &ArrayData::S32(vec![-5]));
    assert_eq!(data(&at(-1)), &ArrayData::S32(vec![-5]));
}

#[test]
fn while_loop_counts() {
    let hlo = r#"
HloModule m
cond {
  s = (s32[], s32[]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  n = s32[] constant(10)
  ROOT lt = pred[] compare(i, n), direction=LT
}
body {
  s = (s32[], s32[]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  a = s32[] get-tuple-element(s), index=1
  one = s32[] constant(1)
  j = s32[] add(i, one)
  b = s32[] add(a, i)
  ROOT t = (s32[], s32[]) tuple(j, b)
}
ENTRY e {
  z = s32[] constant(0)
  t = (s32[], s32[]) tuple(z, z)
  ROOT w = (s32[], s32[]) while(t), condition=cond, body=body
}"#;
    let res = run(hlo, &[]);
    let t = tuple(&res);
    assert_eq!(data(&t[0]), &ArrayData::S32(vec![10]));
    assert_eq!(data(&t[1]), &ArrayData::S32(vec![45]));
}

#[test]
fn rng_bit_generator_matches_the_reference_generators() {
    let hlo = r#"
HloModule m
ENTRY e {
  s = u64[2] parameter(0)
  a = (u64[2], u32[2]) rng-bit-generator(s), algorithm=rng_three_fry
  b = (u64[2], u32[4]) rng-bit-generator(s), algorithm=rng_philox
  ROOT t = ((u64[2], u32[2]), (u64[2], u32[4])) tuple(a, b)
}"#;
    let state = Literal::array(ArrayShape::new(DType::U64, vec![2]), ArrayData::U64(vec![0, 0]));
    let res = run(hlo, &[state]);
    let t = tuple(&res);
    let (tf, ph) = (tuple(&t[0]), tuple(&t[1]));
    // u32[2] splits into one counter (0) whose two output words are the two elements:
    // Threefry-2x32-20 of counter 0 under key 0 (Random123's first known answer).
    assert_eq!(data(&tf[1]), &ArrayData::U32(vec![0x6b20_0159, 0x99ba_4efe]));
    assert_eq!(data(&tf[0]), &ArrayData::U64(vec![0, 1]));
    // One Philox-4x32-10 block from counter 0 under key 0 (Random123's known answer).
    assert_eq!(data(&ph[1]), &ArrayData::U32(vec![0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]));
    assert_eq!(data(&ph[0]), &ArrayData::U64(vec![0, 1]));
}

#[test]
fn clamp_with_scalar_bounds_and_nan() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = f32[4] parameter(0)
  lo = f32[] constant(-1)
  hi = f32[] constant(1)
  ROOT c = f32[4] clamp(lo, x, hi)
}"#;
    let res = run(hlo, &[f32s(&[4], &[-5.0, 0.5, 5.0, f32::NAN])]);
    assert_f32_bits(data(&res), &[-1.0, 0.5, 1.0, f32::NAN]);
}

#[test]
fn unsupported_ops_are_reported_not_panicked() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = f32[4] parameter(0)
  ROOT c = f32[4] custom-call(x), custom_call_target="my_kernel"
}"#;
    let module = hlo_parse::parse_module(hlo).expect("parses");
    let err = evaluate(&module, &[f32s(&[4], &[0.0; 4])]).expect_err("unsupported");
    let msg = err.to_string();
    assert!(matches!(err, hlo_interp::InterpError::Unsupported { .. }), "{msg}");
    assert!(msg.contains("my_kernel") && msg.contains('c'), "{msg}");
}

#[test]
fn gather_and_scatter_with_batching_dims() {
    let hlo = r#"
HloModule m
add {
  a = s32[] parameter(0)
  b = s32[] parameter(1)
  ROOT s = s32[] add(a, b)
}
ENTRY e {
  x = s32[2,3] parameter(0)
  i = s32[2,1] parameter(1)
  g = s32[2] gather(x, i), offset_dims={}, collapsed_slice_dims={1}, start_index_map={1}, operand_batching_dims={0}, start_indices_batching_dims={0}, index_vector_dim=1, slice_sizes={1,1}
  zero = s32[] constant(0)
  z = s32[2,3] broadcast(zero), dimensions={}
  u = s32[2] constant({10, 20})
  s = s32[2,3] scatter(z, i, u), update_window_dims={}, inserted_window_dims={1}, scatter_dims_to_operand_dims={1}, input_batching_dims={0}, scatter_indices_batching_dims={0}, index_vector_dim=1, to_apply=add
  ROOT t = (s32[2], s32[2,3]) tuple(g, s)
}"#;
    let res = run(hlo, &[s32s(&[2, 3], &[1, 2, 3, 4, 5, 6]), s32s(&[2, 1], &[2, 0])]);
    let t = tuple(&res);
    // Batch b reads row b at column i[b].
    assert_eq!(data(&t[0]), &ArrayData::S32(vec![3, 4]));
    assert_eq!(data(&t[1]), &ArrayData::S32(vec![0, 0, 10, 20, 0, 0]));
}

#[test]
fn dot_general_with_batch_and_contracting_dims() {
    let hlo = r#"
HloModule m
ENTRY e {
  a = s32[2,2,3] parameter(0)
  b = s32[3,2] parameter(1)
  ROOT d = s32[2,2,2] dot(a, b), lhs_contracting_dims={2}, rhs_contracting_dims={0}
}"#;
    let a = s32s(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0]);
    let b = s32s(&[3, 2], &[1, 10, 2, 20, 3, 30]);
    let res = run(hlo, &[a, b]);
    // Rows [1 2 3], [4 5 6], [1 0 0], [0 1 0] times columns [1 2 3] and [10 20 30].
    assert_eq!(data(&res), &ArrayData::S32(vec![14, 140, 32, 320, 1, 10, 2, 20]));
}

#[test]
fn convolution_with_batch_groups() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = f32[2,1,1] parameter(0)
  w = f32[1,1,2] parameter(1)
  ROOT c = f32[1,1,2] convolution(x, w), window={size=1}, dim_labels=b0f_0io->b0f, batch_group_count=2
}"#;
    let res = run(hlo, &[f32s(&[2, 1, 1], &[3.0, 5.0]), f32s(&[1, 1, 2], &[2.0, 7.0])]);
    // Output feature k belongs to batch group k and reads input batch element k.
    assert_f32_bits(data(&res), &[6.0, 35.0]);
}

#[test]
fn f8_conversions_round_to_nearest_even_and_overflow_per_format() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = f32[7] parameter(0)
  a = f8e4m3fn[7] convert(x)
  ra = f32[7] convert(a)
  b = f8e5m2[7] convert(x)
  rb = f32[7] convert(b)
  ROOT t = (f32[7], f32[7]) tuple(ra, rb)
}"#;
    let (p9, p10) = (2f32.powi(-9), 2f32.powi(-10));
    let x = [448.0, 464.0, 500.0, 1.0, -0.0, p10, 0.75 * p9];
    let res = run(hlo, &[f32s(&[7], &x)]);
    let t = tuple(&res);
    // e4m3fn: max 448; 464 is halfway to the NaN code and ties to even (448); beyond is
    // NaN (no infinity); 2^-10 is half the smallest subnormal 2^-9 and ties to 0.
    assert_f32_bits(data(&t[0]), &[448.0, 448.0, f32::NAN, 1.0, -0.0, 0.0, p9]);
    // e5m2 (2 mantissa bits) has a wider range: 448 is exact, 464 and 500 round to the
    // nearer of 448 and 512, and both small values are normal numbers.
    assert_f32_bits(data(&t[1]), &[448.0, 448.0, 512.0, 1.0, -0.0, p10, 0.75 * p9]);
}

#[test]
fn bad_arguments_are_errors() {
    let hlo = r#"
HloModule m
ENTRY e {
  x = f32[2] parameter(0)
  ROOT n = f32[2] negate(x)
}"#;
    let module = hlo_parse::parse_module(hlo).expect("parses");
    let err = evaluate(&module, &[]).expect_err("missing argument");
    assert!(matches!(err, hlo_interp::InterpError::ArgCount { expected: 1, got: 0, .. }), "{err}");
    let err = evaluate(&module, &[s32s(&[2], &[1, 2])]).expect_err("wrong type");
    assert!(matches!(err, hlo_interp::InterpError::ArgShape { index: 0, .. }), "{err}");
}

/// A dot of preds is an OR of ANDs (XLA's SmallIntegerDot execution test).
#[test]
fn dot_of_preds() {
    let pred = |dims: &[i64], v: &[bool]| {
        Literal::array(hlo_ir::ArrayShape::new(hlo_ir::DType::Pred, dims.to_vec()), ArrayData::Pred(v.to_vec()))
    };
    let hlo = "HloModule m\nENTRY e {\n  a = pred[2,2] parameter(0)\n  b = pred[2,2] parameter(1)\n  \
               ROOT d = pred[2,2] dot(a, b), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n";
    let a = pred(&[2, 2], &[true, false, true, true]);
    let b = pred(&[2, 2], &[false, true, true, false]);
    // [[1,0],[1,1]] x [[0,1],[1,0]] = [[0,1],[1,1]].
    assert_eq!(data(&run(hlo, &[a, b])), &ArrayData::Pred(vec![false, true, true, true]));
}

/// Complex `log` of subnormal parts as jax 0.8.3's XLA:CPU gives it: `|z|` reads them as zero
/// (`-inf`), `atan2` classifies them by their bits before its DAZ arithmetic (two subnormals: 0/0,
/// NaN; a subnormal over +0: pi/2). The device computed this; the interpreter had flushed the
/// operand first (difftest seed 141617).
#[test]
fn complex_log_of_subnormal_parts_follows_xla_cpu() {
    let t = 1e-45f32;
    let z = [[t, t], [1e-40, 0.0], [0.0, 1e-40], [-1e-40, 1e-40], [2.0, 0.0]];
    let arg = Literal::array(ArrayShape::new(DType::C64, vec![5]), ArrayData::C64(z.to_vec()));
    let out = run("HloModule m\nENTRY e {\n  x = c64[5] parameter(0)\n  ROOT l = c64[5] log(x)\n}\n", &[arg]);
    let ArrayData::C64(got) = data(&out) else { panic!("expected c64") };
    let want = [
        [f32::NEG_INFINITY, f32::NAN],
        [f32::NEG_INFINITY, 0.0],
        [f32::NEG_INFINITY, std::f32::consts::FRAC_PI_2],
        [f32::NEG_INFINITY, f32::NAN],
        [std::f32::consts::LN_2, 0.0],
    ];
    for (g, w) in got.iter().zip(&want) {
        for k in 0..2 {
            assert!(g[k] == w[k] || (g[k].is_nan() && w[k].is_nan()), "got {got:?}, want {want:?}");
        }
    }
}
