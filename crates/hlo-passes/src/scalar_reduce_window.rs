//! `scalar-reduce-window`: a `reduce-window` over scalar operands (its window has no
//! dimensions, so it holds the one element) becomes the same reduction over the operands
//! reshaped to one-element vectors, with a window of size 1, reshaped back: the reducer applied
//! once to the initial values and the elements, which the device's window emitter runs like
//! any other (it indexes dimensions and has none to index in a scalar).
//!
//! Pre-condition: none. Post-condition: every `reduce-window` has operands of rank 1 or more.

use crate::util::{compact, NameUniquer};
use crate::PassError;
use hlo_ir::{ArrayShape, Computation, Instr, InstrId, Module, Op, Shape, Window, WindowDim};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("scalar-reduce-window").entered();
    let mut names = NameUniquer::new(module);
    let mut changed = false;
    for comp in &mut module.comps {
        let ids: Vec<InstrId> = comp
            .ids()
            .filter(|&id| {
                let instr = comp.instr(id);
                matches!(instr.op, Op::ReduceWindow { .. })
                    && instr.operands.iter().all(|&o| comp.instr(o).shape.as_array().is_some_and(|a| a.rank() == 0))
            })
            .collect();
        if ids.is_empty() {
            continue;
        }
        for id in ids {
            rewrite(comp, &mut names, id);
        }
        compact(comp)?;
        changed = true;
    }
    Ok(changed)
}

fn rewrite(comp: &mut Computation, names: &mut NameUniquer, id: InstrId) {
    let instr = comp.instr(id).clone();
    let Op::ReduceWindow { to_apply, .. } = instr.op else { return };
    let span = comp.span(id);
    let mut push = |comp: &mut Computation, shape: Shape, op: Op, operands: Vec<InstrId>| {
        let mut new = Instr::new(names.fresh(&instr.name), shape, op, operands);
        new.meta.metadata = instr.meta.metadata.clone();
        comp.push_with_span(new, span)
    };
    let n = instr.operands.len() / 2;
    let vector = |dtype| Shape::Array(ArrayShape::new(dtype, vec![1]));
    let dtype = |comp: &Computation, o: InstrId| comp.instr(o).shape.as_array().map(|a| a.dtype).expect("an array");
    let mut operands = Vec::new();
    for &x in &instr.operands[..n] {
        let d = dtype(comp, x);
        operands.push(push(comp, vector(d), Op::Reshape, vec![x]));
    }
    operands.extend_from_slice(&instr.operands[n..]);
    let window = Window { dims: vec![WindowDim::default()] };
    let result_dtypes: Vec<_> = instr.operands[..n].iter().map(|&x| dtype(comp, x)).collect();
    let shape = if n == 1 {
        vector(result_dtypes[0])
    } else {
        Shape::Tuple(result_dtypes.iter().map(|&d| vector(d)).collect())
    };
    let reduced = push(comp, shape, Op::ReduceWindow { window, to_apply }, operands);
    if n == 1 {
        let target = comp.instr_mut(id);
        target.op = Op::Reshape;
        target.operands = vec![reduced];
        return;
    }
    let parts: Vec<InstrId> = result_dtypes
        .iter()
        .enumerate()
        .map(|(k, &d)| {
            let e = push(comp, vector(d), Op::GetTupleElement { index: k as u64 }, vec![reduced]);
            push(comp, Shape::Array(ArrayShape::scalar(d)), Op::Reshape, vec![e])
        })
        .collect();
    let target = comp.instr_mut(id);
    target.op = Op::Tuple;
    target.operands = parts;
}
