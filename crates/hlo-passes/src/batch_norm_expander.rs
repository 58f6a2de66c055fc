//! `batch-norm-expander`: `batch-norm-training`, `-inference` and `-grad` as the elementwise
//! ops, broadcasts and sums XLA's `BatchNormExpander` writes (XLA:CPU runs the expanded form,
//! so the same formulas in the same order give its results):
//! - training: `mean = sum(x) / n`, `var = sum(x * x) / n - mean * mean`,
//!   `y = (x - mean) * rsqrt(var + eps) * scale + offset`, result `(y, mean, var)`;
//! - inference: `s = scale * rsqrt(var + eps)`, `y = x * s + (offset - mean * s)`;
//! - grad: `d_offset = sum(dy)`, `d_scale = sum(dy * (x - mean)) * rsqrt(var + eps)`,
//!   `dx = mean_n(scale * rsqrt(var + eps)) * (dy * n - d_offset - (x - mean) * sum(dy * (x - mean)) / (var + eps))`
//!   where `n` counts the elements per feature and `mean_n(v) = v / n`.
//!
//! Pre-condition: none. Post-condition: no batch-norm instruction remains; each is replaced in
//! place (a tuple for training and grad), so its users are untouched.

use crate::util::{compact, NameUniquer};
use crate::PassError;
use hlo_ir::{ArrayShape, BinaryOp, CompId, Computation, DType, Instr, InstrId, Literal, Module, Op, Shape, UnaryOp};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("batch-norm-expander").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for c in 0..module.comps.len() {
        let ids: Vec<InstrId> = module.comps[c]
            .ids()
            .filter(|&id| {
                matches!(
                    module.comps[c].instr(id).op,
                    Op::BatchNormTraining { .. } | Op::BatchNormInference { .. } | Op::BatchNormGrad { .. }
                )
            })
            .collect();
        for id in ids {
            let dtype = module.comps[c]
                .instr(id)
                .operands
                .first()
                .and_then(|&o| module.comps[c].instr(o).shape.as_array().map(|a| a.dtype));
            let Some(dtype) = dtype.filter(|d| d.is_float()) else { continue };
            let add = add_computation(module, dtype);
            let mut b = Expander { comp: &mut module.comps[c], names: &mut names, at: id, dtype, add };
            changed |= b.expand()?;
        }
        if changed {
            compact(&mut module.comps[c])?;
        }
    }
    if changed {
        crate::util::order_callees_first(module);
    }
    Ok(changed)
}

/// A scalar `add` over `dtype` for the sums.
fn add_computation(module: &mut Module, dtype: DType) -> CompId {
    crate::util::scalar_add_computation(module, &format!("batch_norm_add_{dtype}"), dtype)
}

/// Builds the expansion of the batch-norm instruction `at`.
struct Expander<'a> {
    comp: &'a mut Computation,
    names: &'a mut NameUniquer,
    at: InstrId,
    dtype: DType,
    add: CompId,
}

impl Expander<'_> {
    fn push(&mut self, dims: &[i64], op: Op, operands: Vec<InstrId>) -> InstrId {
        let base = self.comp.instr(self.at);
        let mut instr = Instr::new(
            self.names.fresh(&base.name),
            Shape::Array(ArrayShape::new(self.dtype, dims.to_vec())),
            op,
            operands,
        );
        instr.meta.metadata = base.meta.metadata.clone();
        self.comp.push(instr)
    }

    fn binary(&mut self, dims: &[i64], op: BinaryOp, a: InstrId, b: InstrId) -> InstrId {
        self.push(dims, Op::Binary(op), vec![a, b])
    }

    /// A scalar of the element type: an f32 constant, converted when the type is another.
    fn scalar(&mut self, value: f32) -> InstrId {
        let base = self.comp.instr(self.at).name.clone();
        let f32_shape = Shape::Array(ArrayShape::scalar(DType::F32));
        let c =
            Instr::new(self.names.fresh(&base), f32_shape, Op::Constant(Box::new(Literal::scalar_f32(value))), vec![]);
        let c = self.comp.push(c);
        if self.dtype == DType::F32 {
            c
        } else {
            self.push(&[], Op::Convert, vec![c])
        }
    }

    fn broadcast(&mut self, dims: &[i64], x: InstrId, dimensions: Vec<i64>) -> InstrId {
        self.push(dims, Op::Broadcast { dimensions }, vec![x])
    }

    /// `sum(x)` over every dimension but `feature`.
    fn sum(&mut self, x: InstrId, rank: usize, feature: i64, feature_dims: &[i64]) -> InstrId {
        let zero = self.scalar(0.0);
        let dimensions: Vec<i64> = (0..rank as i64).filter(|&d| d != feature).collect();
        self.push(feature_dims, Op::Reduce { dimensions, to_apply: self.add }, vec![x, zero])
    }

    fn expand(&mut self) -> Result<bool, PassError> {
        let instr = self.comp.instr(self.at).clone();
        let (epsilon, feature) = match instr.op {
            Op::BatchNormTraining { epsilon, feature_index }
            | Op::BatchNormInference { epsilon, feature_index }
            | Op::BatchNormGrad { epsilon, feature_index } => (epsilon, feature_index),
            _ => return Ok(false),
        };
        let x = instr.operands[0];
        let Some(xs) = self.comp.instr(x).shape.as_array().cloned() else { return Ok(false) };
        let Some(&features) = xs.dims.get(feature as usize) else { return Ok(false) };
        let dims = xs.dims.clone();
        let fdims = [features];
        let per_feature: i64 = dims.iter().product::<i64>() / features.max(1);
        let on_x = |e: &mut Self, v: InstrId| e.broadcast(&dims, v, vec![feature]);
        let (rank, op) = (dims.len(), instr.op.clone());
        match op {
            Op::BatchNormTraining { .. } => {
                let (scale, offset) = (instr.operands[1], instr.operands[2]);
                let eps_scalar = self.scalar(epsilon);
                let eps = self.broadcast(&dims, eps_scalar, vec![]);
                let n = self.scalar(per_feature as f32);
                let n_f = self.broadcast(&fdims, n, vec![]);
                let scale_b = on_x(self, scale);
                let offset_b = on_x(self, offset);
                let squared = self.binary(&dims, BinaryOp::Multiply, x, x);
                let sum = self.sum(x, rank, feature, &fdims);
                let squared_sum = self.sum(squared, rank, feature, &fdims);
                let mean = self.binary(&fdims, BinaryOp::Divide, sum, n_f);
                let mean_b = on_x(self, mean);
                let square_mean = self.binary(&fdims, BinaryOp::Divide, squared_sum, n_f);
                let mean_square = self.binary(&fdims, BinaryOp::Multiply, mean, mean);
                let var = self.binary(&fdims, BinaryOp::Subtract, square_mean, mean_square);
                let var_b = on_x(self, var);
                let var_eps = self.binary(&dims, BinaryOp::Add, var_b, eps);
                let rsqrt = self.push(&dims, Op::Unary(UnaryOp::Rsqrt), vec![var_eps]);
                let centered = self.binary(&dims, BinaryOp::Subtract, x, mean_b);
                let normalized = self.binary(&dims, BinaryOp::Multiply, centered, rsqrt);
                let scaled = self.binary(&dims, BinaryOp::Multiply, normalized, scale_b);
                let y = self.binary(&dims, BinaryOp::Add, scaled, offset_b);
                let target = self.comp.instr_mut(self.at);
                target.op = Op::Tuple;
                target.operands = vec![y, mean, var];
            }
            Op::BatchNormInference { .. } => {
                let (scale, offset, mean, var) =
                    (instr.operands[1], instr.operands[2], instr.operands[3], instr.operands[4]);
                let eps_scalar = self.scalar(epsilon);
                let eps = self.broadcast(&fdims, eps_scalar, vec![]);
                let var_eps = self.binary(&fdims, BinaryOp::Add, var, eps);
                let rsqrt = self.push(&fdims, Op::Unary(UnaryOp::Rsqrt), vec![var_eps]);
                let true_scale = self.binary(&fdims, BinaryOp::Multiply, scale, rsqrt);
                let mean_scaled = self.binary(&fdims, BinaryOp::Multiply, mean, true_scale);
                let true_shift = self.binary(&fdims, BinaryOp::Subtract, offset, mean_scaled);
                let scale_b = on_x(self, true_scale);
                let shift_b = on_x(self, true_shift);
                let scaled = self.binary(&dims, BinaryOp::Multiply, x, scale_b);
                let target = self.comp.instr_mut(self.at);
                target.op = Op::Binary(BinaryOp::Add);
                target.operands = vec![scaled, shift_b];
            }
            Op::BatchNormGrad { .. } => {
                let (scale, mean, var, dy) =
                    (instr.operands[1], instr.operands[2], instr.operands[3], instr.operands[4]);
                let n = self.scalar(per_feature as f32);
                let eps_scalar = self.scalar(epsilon);
                let eps_x = self.broadcast(&dims, eps_scalar, vec![]);
                let eps_f = self.broadcast(&fdims, eps_scalar, vec![]);
                let scale_b = on_x(self, scale);
                let var_b = on_x(self, var);
                let mean_b = on_x(self, mean);
                let var_eps_b = self.binary(&dims, BinaryOp::Add, var_b, eps_x);
                let rsqrt_b = self.push(&dims, Op::Unary(UnaryOp::Rsqrt), vec![var_eps_b]);
                let var_eps_f = self.binary(&fdims, BinaryOp::Add, var, eps_f);
                let rsqrt_f = self.push(&fdims, Op::Unary(UnaryOp::Rsqrt), vec![var_eps_f]);
                let centered = self.binary(&dims, BinaryOp::Subtract, x, mean_b);
                let dy_centered = self.binary(&dims, BinaryOp::Multiply, dy, centered);
                let sum_dy_centered = self.sum(dy_centered, rank, feature, &fdims);
                let d_offset = self.sum(dy, rank, feature, &fdims);
                let d_scale = self.binary(&fdims, BinaryOp::Multiply, sum_dy_centered, rsqrt_f);
                let i2 = on_x(self, d_offset);
                let i3 = on_x(self, sum_dy_centered);
                let i4 = self.binary(&dims, BinaryOp::Multiply, i3, centered);
                let var_eps_b2 = self.binary(&dims, BinaryOp::Add, var_b, eps_x);
                let i5 = self.binary(&dims, BinaryOp::Divide, i4, var_eps_b2);
                let scale_rsqrt = self.binary(&dims, BinaryOp::Multiply, scale_b, rsqrt_b);
                let n_x = self.broadcast(&dims, n, vec![]);
                let scale_rsqrt_mean = self.binary(&dims, BinaryOp::Divide, scale_rsqrt, n_x);
                let i1 = self.binary(&dims, BinaryOp::Multiply, dy, n_x);
                let i1_i2 = self.binary(&dims, BinaryOp::Subtract, i1, i2);
                let i6 = self.binary(&dims, BinaryOp::Subtract, i1_i2, i5);
                let dx = self.binary(&dims, BinaryOp::Multiply, scale_rsqrt_mean, i6);
                let target = self.comp.instr_mut(self.at);
                target.op = Op::Tuple;
                target.operands = vec![dx, d_scale, d_offset];
            }
            _ => unreachable!("matched above"),
        }
        Ok(true)
    }
}
