//! Float formatting and literal round trips: every bit pattern of every 16-, 8- and 4-bit
//! float type, and many random f32/f64 patterns, print to text that parses back to the
//! same bits; decimal text rounds to the narrow types with ties to even.

use half::{bf16, f16};
use hlo_ir::print::{format_f32, format_f64, print_literal, MiniFloat};
use hlo_ir::{ArrayData, ArrayShape, DType, Literal, LiteralData, Shape};

fn scalar(dtype: DType, data: ArrayData) -> Literal {
    Literal { shape: Shape::Array(ArrayShape::scalar(dtype)), data: LiteralData::Array(data) }
}

fn reparse(lit: &Literal) -> Literal {
    let text = print_literal(lit);
    hlo_parse::parse_literal(&text, &lit.shape).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Parses `text` as a scalar of `dtype` and returns the element's bits.
fn bits_of(text: &str, dtype: DType) -> u64 {
    let lit = hlo_parse::parse_literal(text, &Shape::scalar(dtype)).unwrap_or_else(|e| panic!("{text}: {e}"));
    match lit.data {
        LiteralData::Array(ArrayData::F16(v)) => v[0].to_bits() as u64,
        LiteralData::Array(ArrayData::BF16(v)) => v[0].to_bits() as u64,
        LiteralData::Array(ArrayData::F32(v)) => v[0].to_bits() as u64,
        LiteralData::Array(ArrayData::F64(v)) => v[0].to_bits(),
        LiteralData::Array(ArrayData::Bits(v)) => v[0] as u64,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn every_half_and_bfloat16_pattern_round_trips() {
    for bits in 0..=u16::MAX {
        let h = scalar(DType::F16, ArrayData::F16(vec![f16::from_bits(bits)]));
        assert_eq!(reparse(&h), h, "f16 {bits:#06x} printed as {}", print_literal(&h));
        let b = scalar(DType::BF16, ArrayData::BF16(vec![bf16::from_bits(bits)]));
        assert_eq!(reparse(&b), b, "bf16 {bits:#06x} printed as {}", print_literal(&b));
    }
}

#[test]
fn every_minifloat_pattern_round_trips() {
    for dtype in DType::ALL {
        let Some(format) = MiniFloat::of(dtype) else { continue };
        for bits in 0..(1u32 << format.width()) {
            let lit = scalar(dtype, ArrayData::Bits(vec![bits as u8]));
            let again = reparse(&lit);
            let is_nan = format.to_f64(bits as u8).is_nan();
            // Types with a single NaN encoding print every NaN as `nan`; the rest keep every bit.
            if is_nan && !matches!(format.kind, hlo_ir::print::MiniFloatKind::Ieee) {
                let LiteralData::Array(ArrayData::Bits(v)) = &again.data else { panic!() };
                assert!(format.to_f64(v[0]).is_nan());
            } else {
                assert_eq!(again, lit, "{dtype} {bits:#04x} printed as {}", print_literal(&lit));
            }
        }
    }
}

#[test]
fn random_f32_and_f64_patterns_round_trip() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for _ in 0..200_000 {
        let r = next();
        let x = f32::from_bits(r as u32);
        assert_eq!(bits_of(&format_f32(x), DType::F32), x.to_bits() as u64, "{x:e} printed as {}", format_f32(x));
        let y = f64::from_bits(r);
        assert_eq!(bits_of(&format_f64(y), DType::F64), y.to_bits(), "{y:e} printed as {}", format_f64(y));
    }
}

#[test]
fn xla_float_text() {
    assert_eq!(format_f32(0.1), "0.1");
    assert_eq!(format_f32(1.0 / 3.0), "0.333333343");
    assert_eq!(format_f32(1e-7), "1e-07");
    assert_eq!(format_f32(16777216.0), "16777216");
    assert_eq!(format_f64(0.1), "0.1");
    assert_eq!(format_f64(1.0 / 3.0), "0.33333333333333331");
    assert_eq!(print_literal(&scalar(DType::F16, ArrayData::F16(vec![f16::from_f32(0.1)]))), "0.099976");
    assert_eq!(print_literal(&scalar(DType::BF16, ArrayData::BF16(vec![bf16::from_f32(0.1)]))), "0.1001");
    assert_eq!(bits_of("nan", DType::F32), 0x7fc0_0000);
    assert_eq!(bits_of("-nan", DType::F32), 0xffc0_0000);
    assert_eq!(bits_of("nan(0x1)", DType::F32), 0x7f80_0001);
    assert_eq!(bits_of("-inf", DType::F64), f64::NEG_INFINITY.to_bits());
}

#[test]
fn decimal_text_rounds_to_nearest_even() {
    assert_eq!(bits_of("0.1", DType::BF16), 0x3dcd);
    assert_eq!(bits_of("0.1", DType::F16), 0x2e66);
    // Halfway between bf16 1.0 and 1.0078125: ties to the even mantissa (1.0).
    assert_eq!(bits_of("1.00390625", DType::BF16), 0x3f80);
    // Halfway between 1.0078125 (odd) and 1.015625 (even).
    assert_eq!(bits_of("1.01171875", DType::BF16), 0x3f82);
    assert_eq!(bits_of("65519", DType::F16), 0x7bff);
    assert_eq!(bits_of("1.0625", DType::F8E4M3FN), 0x38);
    assert_eq!(bits_of("1.1875", DType::F8E4M3FN), 0x3a);
    assert_eq!(bits_of("0.75", DType::F4E2M1FN), 0x2);
    assert_eq!(bits_of("1.25", DType::F4E2M1FN), 0x2);
    assert_eq!(bits_of("2.5e38", DType::F8E8M0FNU), 0xfe);
}

#[test]
fn arrays_and_tuples() {
    let shape = hlo_parse::parse_shape("pred[2,2]").unwrap();
    let lit = hlo_parse::parse_literal("{ {true, 0}, {1, false} }", &shape).unwrap();
    assert_eq!(print_literal(&lit), "{ { 1, 0 }, { 1, 0 } }");
    let shape = hlo_parse::parse_shape("(s32[], (f32[2], pred[]), c64[])").unwrap();
    let lit = hlo_parse::parse_literal("(7, ({1, 2.5}, true), (1, -1))", &shape).unwrap();
    assert_eq!(print_literal(&lit), "( 7, ( {1, 2.5}, true ), (1, -1) )");
    assert_eq!(reparse(&lit), lit);
    let shape = hlo_parse::parse_shape("s32[2,1,1,2]").unwrap();
    let lit = hlo_parse::parse_literal("{{{{1,2}}},{{{3,4}}}}", &shape).unwrap();
    assert_eq!(print_literal(&lit), "{ { /*i0=0*/ { /*i1=0*/ { 1, 2 } } }, { /*i0=1*/ { /*i1=0*/ { 3, 4 } } } }");
}
