//! The program whose outputs bound the terms the tested program's sums add, for judging a sum
//! that cancelled (an exact zero where the device leaves a last-bit residue, or the reverse).
//!
//! Running the program on absolute inputs ([`crate::exec`]) bounds the terms of real sums, but
//! two kinds of cancellation survive it, because they come from the program and not from signs
//! of its inputs:
//! - a complex product `(a + bi)(c + di)` whose real part `ac - bd` cancels for equal parts
//!   (`complex(p, p)` squared: XLA:CPU gives an exact 0 where its LLVM merged the two products,
//!   and a fused multiply-add's residue where it did not; difftest seed 197140);
//! - an FFT of a constant row, whose bins past the first are exact zeros (seed 186530).
//!
//! [`bound_module`] replaces those ops by bounds of their terms: a complex product by
//! `|x| |y|` in both parts (at least `|ac| + |bd|` and `|ad| + |bc|`, by Cauchy-Schwarz), an FFT
//! by the sum of its row's absolute values in every bin (at least any bin's terms).

use hlo_ir::{
    ArrayShape, BinaryOp, CompId, Computation, DType, FftType, Instr, InstrId, Literal, Module, Op, Shape, UnaryOp,
};

/// `module` with every complex product and FFT replaced by a bound of its terms (module docs).
pub fn bound_module(module: &Module) -> Module {
    let mut out = module.clone();
    let mut adders: Vec<(DType, CompId)> = Vec::new();
    for c in 0..module.comps.len() {
        let comp = &module.comps[c];
        if !comp.instrs.iter().any(|i| needs_bound(comp, i)) {
            continue;
        }
        let mut b = Rebuild { comp: Computation::new(comp.name.clone()), fresh: 0 };
        b.comp.execution_thread = comp.execution_thread.clone();
        let mut map: Vec<InstrId> = Vec::with_capacity(comp.instrs.len());
        for (k, instr) in comp.instrs.iter().enumerate() {
            let operands: Vec<InstrId> = instr.operands.iter().map(|o| map[o.index()]).collect();
            let id = if needs_bound(comp, instr) {
                match &instr.op {
                    Op::Binary(BinaryOp::Multiply) => b.product_bound(&instr.shape, operands[0], operands[1]),
                    Op::Fft { fft_type, fft_length } => {
                        let part = real_of(comp.instr(instr.operands[0]).shape.as_array().map(|a| a.dtype));
                        let add = adder(&mut out, &mut adders, part);
                        b.fft_bound(
                            &instr.shape,
                            comp.instr(instr.operands[0]),
                            operands[0],
                            *fft_type,
                            fft_length,
                            add,
                        )
                    }
                    _ => unreachable!("needs_bound matches products and FFTs"),
                }
            } else {
                let mut copy = instr.clone();
                copy.operands = operands;
                b.comp.push_with_span(copy, comp.spans[k].clone())
            };
            map.push(id);
        }
        b.comp.root = map[comp.root.index()];
        out.comps[c] = b.comp;
    }
    out
}

fn needs_bound(comp: &Computation, instr: &Instr) -> bool {
    let complex = instr.shape.as_array().is_some_and(|a| a.dtype.is_complex());
    match &instr.op {
        Op::Binary(BinaryOp::Multiply) => complex,
        Op::Fft { .. } => comp.instr(instr.operands[0]).shape.as_array().is_some(),
        _ => false,
    }
}

/// The real type of a complex (or real) element type: f64 for c128 and f64, else f32.
fn real_of(dtype: Option<DType>) -> DType {
    match dtype {
        Some(DType::C128 | DType::F64) => DType::F64,
        _ => DType::F32,
    }
}

/// An `add` computation over `dtype` scalars, added to the module once.
fn adder(module: &mut Module, adders: &mut Vec<(DType, CompId)>, dtype: DType) -> CompId {
    if let Some(&(_, id)) = adders.iter().find(|(d, _)| *d == dtype) {
        return id;
    }
    let scalar = Shape::Array(ArrayShape::scalar(dtype));
    let mut comp = Computation::new(format!("magnitude_add_{}", dtype.name()));
    let x = comp.push(Instr::new("x", scalar.clone(), Op::Parameter { number: 0 }, vec![]));
    let y = comp.push(Instr::new("y", scalar.clone(), Op::Parameter { number: 1 }, vec![]));
    comp.root = comp.push(Instr::new("sum", scalar, Op::Binary(BinaryOp::Add), vec![x, y]));
    module.comps.push(comp);
    let id = CompId((module.comps.len() - 1) as u32);
    adders.push((dtype, id));
    id
}

struct Rebuild {
    comp: Computation,
    fresh: usize,
}

impl Rebuild {
    fn push(&mut self, shape: ArrayShape, op: Op, operands: Vec<InstrId>) -> InstrId {
        self.fresh += 1;
        let name = format!("magnitude_bound.{}", self.fresh);
        self.comp.push(Instr::new(name, Shape::Array(shape), op, operands))
    }

    /// `complex(|x| |y|, |x| |y|)`, of `shape` (complex).
    fn product_bound(&mut self, shape: &Shape, x: InstrId, y: InstrId) -> InstrId {
        let out = shape.as_array().expect("a complex array").clone();
        let real = ArrayShape::new(real_of(Some(out.dtype)), out.dims.clone());
        let ax = self.push(real.clone(), Op::Unary(UnaryOp::Abs), vec![x]);
        let ay = self.push(real.clone(), Op::Unary(UnaryOp::Abs), vec![y]);
        let m = self.push(real, Op::Binary(BinaryOp::Multiply), vec![ax, ay]);
        self.push(out, Op::Binary(BinaryOp::Complex), vec![m, m])
    }

    /// Every bin of the FFT of `z` (the old operand `old_z`) as the sum of `|z|` over its row:
    /// complex with that value in both parts, or real for an IRFFT.
    fn fft_bound(
        &mut self,
        shape: &Shape,
        old_z: &Instr,
        z: InstrId,
        fft_type: FftType,
        fft_length: &[i64],
        add: CompId,
    ) -> InstrId {
        let out = shape.as_array().expect("an FFT gives an array").clone();
        let input = old_z.shape.as_array().expect("an FFT reads an array");
        let real = real_of(Some(input.dtype));
        let rank = input.rank();
        let outer = rank - fft_length.len();
        let az = self.push(ArrayShape::new(real, input.dims.clone()), Op::Unary(UnaryOp::Abs), vec![z]);
        let zero = self.comp.push(Instr::new(
            format!("magnitude_zero.{}", self.fresh),
            Shape::Array(ArrayShape::scalar(real)),
            Op::Constant(Box::new(match real {
                DType::F64 => Literal::array(ArrayShape::scalar(DType::F64), hlo_ir::ArrayData::F64(vec![0.0])),
                _ => Literal::scalar_f32(0.0),
            })),
            vec![],
        ));
        let dims: Vec<i64> = (outer as i64..rank as i64).collect();
        let row = ArrayShape::new(real, input.dims[..outer].to_vec());
        let sum = self.push(row, Op::Reduce { dimensions: dims, to_apply: add }, vec![az, zero]);
        let spread = ArrayShape::new(real, out.dims.clone());
        let keep: Vec<i64> = (0..outer as i64).collect();
        let bound = self.push(spread, Op::Broadcast { dimensions: keep }, vec![sum]);
        match fft_type {
            FftType::Irfft => bound,
            FftType::Fft | FftType::Ifft | FftType::Rfft => {
                self.push(out, Op::Binary(BinaryOp::Complex), vec![bound, bound])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluate(m: &Module, inputs: &[Literal]) -> Vec<f64> {
        let out = hlo_interp::evaluate(m, inputs).expect("interprets");
        match out.array_data() {
            Some(hlo_ir::ArrayData::F32(v)) => v.iter().map(|&x| x as f64).collect(),
            Some(hlo_ir::ArrayData::C64(v)) => v.iter().flat_map(|[re, im]| [*re as f64, *im as f64]).collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// `real(complex(p, p)^2)` cancels to (about) zero; its bound is `2 p^2`.
    #[test]
    fn complex_products_are_bounded_by_the_product_of_magnitudes() {
        let text = "HloModule m
ENTRY e {
  p = f32[] parameter(0)
  z = c64[] complex(p, p)
  s = c64[] multiply(z, z)
  ROOT r = f32[] real(s)
}
";
        let m = hlo_parse::parse_module(text).expect("parses");
        let bound = bound_module(&m);
        hlo_ir::verify::verify(&bound).expect("verifies");
        let p = -0.13384548f32;
        let got = evaluate(&bound, &[Literal::scalar_f32(p)]);
        let want = 2.0 * (p as f64) * (p as f64);
        assert!((got[0] - want).abs() < 1e-6 * want, "{got:?} against {want}");
    }

    /// The IFFT of a broadcast constant has exact-zero bins past the first; every bin of the
    /// bound is the row's sum of magnitudes, and the constant's own shape is kept.
    #[test]
    fn ffts_are_bounded_by_their_rows_sums() {
        let text = "HloModule m
ENTRY e {
  c = c64[] constant((1.5, -2))
  b = c64[3,8] broadcast(c), dimensions={}
  ROOT f = c64[3,8] fft(b), fft_type=IFFT, fft_length={8}
}
";
        let m = hlo_parse::parse_module(text).expect("parses");
        let bound = bound_module(&m);
        hlo_ir::verify::verify(&bound).expect("verifies");
        let got = evaluate(&bound, &[]);
        assert_eq!(got.len(), 48);
        assert!(got.iter().all(|&x| (x - 8.0 * 2.5).abs() < 1e-5), "{got:?}");
        let rfft = "HloModule m
ENTRY e {
  x = f32[2,6] parameter(0)
  ROOT f = c64[2,4] fft(x), fft_type=RFFT, fft_length={6}
}
";
        let bound = bound_module(&hlo_parse::parse_module(rfft).expect("parses"));
        hlo_ir::verify::verify(&bound).expect("verifies");
        let x = Literal::array(
            ArrayShape::new(DType::F32, [2, 6]),
            hlo_ir::ArrayData::F32(vec![1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 0.5, 0.5, 0.5, 0.5, 0.5, -0.5]),
        );
        let got = evaluate(&bound, &[x]);
        assert_eq!(&got[..2], &[6.0, 6.0]);
        assert_eq!(&got[8..10], &[3.0, 3.0]);
    }
}
