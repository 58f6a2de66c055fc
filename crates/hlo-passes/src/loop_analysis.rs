//! Analyses of `while` loops: known trip counts, and loops that can run inside one kernel.
//!
//! [`known_trip_count`] recognises the counter pattern JAX's `fori_loop` emits
//! (`i` starts at a constant, the body adds a constant step, the condition
//! compares `i` with a constant bound), looking through fusions, and also reads
//! XLA's `known_trip_count` backend config.
//!
//! [`elementwise_loop_analysis`] finds loops like the Mandelbrot iteration:
//! every carried array of rank > 0 has the same dimensions and is updated
//! elementwise (element `i` of the next state depends only on element `i` of
//! the current state, on the counter and scalars, and on loop-invariant
//! values read in any way). Such a loop can run as one kernel with one
//! invocation per element that iterates the whole loop, instead of one
//! dispatch sequence per iteration. The analysis looks through fusions, so
//! it gives the same answer before and after the fusion pass.

use hlo_ir::{CompId, CompareDirection, Computation, InstrId, Literal, Module, Op};

/// What one element of a loop's state tuple is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoopCarry {
    /// The induction variable: starts at `init` and adds `step` every iteration.
    Counter { init: i64, step: i64 },
    /// An array of the loop's element dimensions, updated elementwise.
    PerElement,
    /// A scalar updated from the counter, scalars and invariants only (the same for every element).
    Scalar,
    /// Passed to the next iteration unchanged.
    Invariant,
}

/// A `while` loop that one kernel can run per element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementwiseLoop {
    pub trip_count: u64,
    /// Tuple index of the counter in the loop state.
    pub counter: usize,
    /// Dimensions of every [`LoopCarry::PerElement`] array.
    pub dims: Vec<i64>,
    /// One entry per element of the loop state, by tuple index.
    pub carries: Vec<LoopCarry>,
}

/// A symbolic scalar value, enough to recognise counters and bounds.
#[derive(Clone, Debug, PartialEq)]
enum Sym {
    /// The loop state tuple (parameter 0 of the body and the condition).
    State,
    /// Element `k` of the loop state.
    Elem(usize),
    Const(i64),
    /// `Elem(k) + step`.
    Step(usize, i64),
    /// `lhs <direction> rhs`.
    Compare(CompareDirection, Box<Sym>, Box<Sym>),
    Tuple(Vec<Sym>),
    Unknown,
}

fn const_int(lit: &Literal) -> Option<i64> {
    let data = lit.array_data()?;
    if data.len() != 1 {
        return None;
    }
    match data {
        hlo_ir::ArrayData::S8(v) => Some(v[0] as i64),
        hlo_ir::ArrayData::S16(v) => Some(v[0] as i64),
        hlo_ir::ArrayData::S32(v) => Some(v[0] as i64),
        hlo_ir::ArrayData::S64(v) => Some(v[0]),
        hlo_ir::ArrayData::U8(v) => Some(v[0] as i64),
        hlo_ir::ArrayData::U16(v) => Some(v[0] as i64),
        hlo_ir::ArrayData::U32(v) => Some(v[0] as i64),
        hlo_ir::ArrayData::U64(v) => i64::try_from(v[0]).ok(),
        _ => None,
    }
}

/// The symbolic value of `id` in `comp`, given its parameters' values.
fn sym(module: &Module, comp: &Computation, id: InstrId, params: &[Sym], depth: usize) -> Sym {
    if depth > 32 {
        return Sym::Unknown;
    }
    let instr = comp.instr(id);
    let operand = |k: usize| sym(module, comp, instr.operands[k], params, depth + 1);
    match &instr.op {
        Op::Parameter { number } => params.get(*number as usize).cloned().unwrap_or(Sym::Unknown),
        Op::Constant(lit) => const_int(lit).map(Sym::Const).unwrap_or(Sym::Unknown),
        Op::GetTupleElement { index } => match operand(0) {
            Sym::State => Sym::Elem(*index as usize),
            Sym::Tuple(elems) => elems.get(*index as usize).cloned().unwrap_or(Sym::Unknown),
            _ => Sym::Unknown,
        },
        Op::Tuple => Sym::Tuple((0..instr.operands.len()).map(operand).collect()),
        Op::Copy | Op::Reshape | Op::Bitcast | Op::OptimizationBarrier => operand(0),
        Op::Binary(hlo_ir::BinaryOp::Add) => match (operand(0), operand(1)) {
            (Sym::Elem(k), Sym::Const(s)) | (Sym::Const(s), Sym::Elem(k)) => Sym::Step(k, s),
            (Sym::Const(a), Sym::Const(b)) => Sym::Const(a.wrapping_add(b)),
            _ => Sym::Unknown,
        },
        Op::Binary(hlo_ir::BinaryOp::Subtract) => match (operand(0), operand(1)) {
            (Sym::Elem(k), Sym::Const(s)) => Sym::Step(k, s.wrapping_neg()),
            (Sym::Const(a), Sym::Const(b)) => Sym::Const(a.wrapping_sub(b)),
            _ => Sym::Unknown,
        },
        Op::Compare { direction, .. } => Sym::Compare(*direction, Box::new(operand(0)), Box::new(operand(1))),
        Op::Fusion { calls, .. } | Op::Call { to_apply: calls, .. } => {
            let args: Vec<Sym> = (0..instr.operands.len()).map(operand).collect();
            let callee = module.comp(*calls);
            sym(module, callee, callee.root, &args, depth + 1)
        }
        _ => Sym::Unknown,
    }
}

/// Reads `"known_trip_count":{"n":"100"}` from a backend config.
fn trip_count_from_config(config: &str) -> Option<u64> {
    let at = config.find("\"known_trip_count\"")?;
    let rest = &config[at..];
    let n_at = rest.find("\"n\"")?;
    let digits: String =
        rest[n_at + 3..].chars().skip_while(|c| !c.is_ascii_digit()).take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// The counter of a while loop: `(tuple index, init, step, bound direction, bound)`,
/// with the direction normalised so the counter is on the left (`i < N`).
fn counter_pattern(
    module: &Module,
    comp: CompId,
    while_instr: InstrId,
) -> Option<(usize, i64, i64, CompareDirection, i64)> {
    let parent = module.comp(comp);
    let instr = parent.instr(while_instr);
    let Op::While { condition, body } = instr.op else { return None };
    let cond_comp = module.comp(condition);
    let body_comp = module.comp(body);
    let (dir, k, bound) = match sym(module, cond_comp, cond_comp.root, &[Sym::State], 0) {
        Sym::Compare(dir, lhs, rhs) => match (*lhs, *rhs) {
            (Sym::Elem(k), Sym::Const(n)) => (dir, k, n),
            (Sym::Const(n), Sym::Elem(k)) => (flip(dir), k, n),
            _ => return None,
        },
        _ => return None,
    };
    let Sym::Tuple(next) = sym(module, body_comp, body_comp.root, &[Sym::State], 0) else { return None };
    let step = match next.get(k)? {
        Sym::Step(j, s) if *j == k => *s,
        _ => return None,
    };
    let init_tuple = parent.instr(*instr.operands.first()?);
    let init = match sym(
        module,
        parent,
        init_tuple.operands.get(k).copied().filter(|_| matches!(init_tuple.op, Op::Tuple))?,
        &[],
        0,
    ) {
        Sym::Const(c) => c,
        _ => return None,
    };
    Some((k, init, step, dir, bound))
}

/// `a <dir> b` == `b <flip(dir)> a`.
fn flip(dir: CompareDirection) -> CompareDirection {
    match dir {
        CompareDirection::Lt => CompareDirection::Gt,
        CompareDirection::Le => CompareDirection::Ge,
        CompareDirection::Gt => CompareDirection::Lt,
        CompareDirection::Ge => CompareDirection::Le,
        other => other,
    }
}

/// The number of iterations of the `while` instruction `while_instr` in computation `comp`,
/// when it is known at compile time.
pub fn known_trip_count(module: &Module, comp: CompId, while_instr: InstrId) -> Option<u64> {
    if let Some(n) =
        module.comp(comp).instr(while_instr).meta.backend_config.as_deref().and_then(trip_count_from_config)
    {
        return Some(n);
    }
    let (_, init, step, dir, bound) = counter_pattern(module, comp, while_instr)?;
    let (init, step, bound) = (init as i128, step as i128, bound as i128);
    let n = match dir {
        CompareDirection::Lt if step > 0 => (bound - init + step - 1).div_euclid(step),
        CompareDirection::Le if step > 0 => (bound - init + step).div_euclid(step),
        CompareDirection::Gt if step < 0 => (init - bound + (-step) - 1).div_euclid(-step),
        CompareDirection::Ge if step < 0 => (init - bound + (-step)).div_euclid(-step),
        CompareDirection::Ne if step != 0 && (bound - init) % step == 0 && (bound - init) / step >= 0 => {
            (bound - init) / step
        }
        _ => return None,
    };
    u64::try_from(n.max(0)).ok()
}

/// How a value in the loop body depends on the per-element state.
#[derive(Clone, Debug, PartialEq)]
enum Dep {
    /// Independent of per-element state: invariants, the counter, scalars, constants, iotas.
    Uniform,
    /// Element `i` of a per-element array: only readable at the same index.
    Elem,
    Tuple(Vec<Dep>),
}

impl Dep {
    fn touches_elem(&self) -> bool {
        match self {
            Dep::Uniform => false,
            Dep::Elem => true,
            Dep::Tuple(elems) => elems.iter().any(Dep::touches_elem),
        }
    }
}

/// The dependency class of every instruction of `comp`, or `None` when a
/// per-element value is read other than elementwise at the same index.
fn deps(module: &Module, comp: &Computation, params: &[Dep], dims: &[i64]) -> Option<Dep> {
    let mut res: Vec<Dep> = Vec::with_capacity(comp.instrs.len());
    for id in comp.ids() {
        let instr = comp.instr(id);
        let operands: Vec<&Dep> = instr.operands.iter().map(|o| &res[o.index()]).collect();
        let any_elem = operands.iter().any(|d| d.touches_elem());
        let dep = match &instr.op {
            Op::Parameter { number } => params.get(*number as usize).cloned().unwrap_or(Dep::Uniform),
            Op::Tuple => Dep::Tuple(operands.into_iter().cloned().collect()),
            Op::GetTupleElement { index } => match operands[0] {
                Dep::Tuple(elems) => elems.get(*index as usize).cloned()?,
                other => other.clone(),
            },
            Op::Fusion { calls, .. } | Op::Call { to_apply: calls, .. } => {
                let args: Vec<Dep> = operands.into_iter().cloned().collect();
                deps(module, module.comp(*calls), &args, dims)?
            }
            // Copies, barriers and same-dimension bitcasts move no element.
            Op::Copy | Op::OptimizationBarrier => operands[0].clone(),
            Op::Bitcast | Op::Reshape
                if crate::util::dims(&instr.shape) == crate::util::dims(&comp.instr(instr.operands[0]).shape) =>
            {
                operands[0].clone()
            }
            op if op.is_elementwise() && any_elem => {
                let same_dims = crate::util::dims(&instr.shape) == dims
                    && instr.operands.iter().all(|&o| crate::util::dims(&comp.instr(o).shape) == dims);
                if !same_dims {
                    return None;
                }
                Dep::Elem
            }
            _ if any_elem => return None,
            _ => Dep::Uniform,
        };
        res.push(dep);
    }
    Some(res[comp.root.index()].clone())
}

/// Describes `while_instr` (in computation `comp`) as an elementwise loop, if it is one.
pub fn elementwise_loop_analysis(module: &Module, comp: CompId, while_instr: InstrId) -> Option<ElementwiseLoop> {
    let parent = module.comp(comp);
    let instr = parent.instr(while_instr);
    let Op::While { condition, body } = instr.op else { return None };
    let trip_count = known_trip_count(module, comp, while_instr)?;
    let (counter, init, step, _, _) = counter_pattern(module, comp, while_instr)?;
    let state = instr.shape.as_tuple()?;
    let body_comp = module.comp(body);
    let root = body_comp.root_instr();
    if !matches!(root.op, Op::Tuple) || root.operands.len() != state.len() {
        return None;
    }
    // Classify the state elements by shape and by whether the body passes them through.
    let param = *body_comp.params.first()?;
    let passes_through = |k: usize| {
        let elem = body_comp.instr(root.operands[k]);
        matches!(elem.op, Op::GetTupleElement { index } if index as usize == k && elem.operands[0] == param)
    };
    let mut dims: Option<Vec<i64>> = None;
    let mut carries = Vec::with_capacity(state.len());
    for (k, shape) in state.iter().enumerate() {
        let carry = if k == counter {
            LoopCarry::Counter { init, step }
        } else if passes_through(k) {
            LoopCarry::Invariant
        } else {
            let array = shape.as_array()?;
            if array.rank() == 0 {
                LoopCarry::Scalar
            } else {
                match &dims {
                    None => dims = Some(array.dims.clone()),
                    Some(d) if *d == array.dims => {}
                    Some(_) => return None,
                }
                LoopCarry::PerElement
            }
        };
        carries.push(carry);
    }
    let dims = dims?;
    let state_deps = Dep::Tuple(
        carries.iter().map(|c| if *c == LoopCarry::PerElement { Dep::Elem } else { Dep::Uniform }).collect(),
    );
    let Dep::Tuple(next) = deps(module, body_comp, std::slice::from_ref(&state_deps), &dims)? else { return None };
    for (carry, dep) in carries.iter().zip(&next) {
        if *carry != LoopCarry::PerElement && dep.touches_elem() {
            return None;
        }
    }
    if deps(module, module.comp(condition), &[state_deps], &dims)?.touches_elem() {
        return None;
    }
    Some(ElementwiseLoop { trip_count, counter, dims, carries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::parse;

    const FORI: &str = r#"
HloModule m
cond {
  s = (s32[], f32[16], f32[], f32[4]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  n = s32[] constant(10)
  ROOT lt = pred[] compare(i, n), direction=LT
}
body {
  s = (s32[], f32[16], f32[], f32[4]) parameter(0)
  i = s32[] get-tuple-element(s), index=0
  one = s32[] constant(1)
  j = s32[] add(i, one)
  x = f32[16] get-tuple-element(s), index=1
  a = f32[] get-tuple-element(s), index=2
  c = f32[4] get-tuple-element(s), index=3
  ab = f32[16] broadcast(a), dimensions={}
  y = f32[16] multiply(x, ab)
  cs = f32[1] slice(c), slice={[0:1]}
  cr = f32[] reshape(cs)
  cb = f32[16] broadcast(cr), dimensions={}
  z = f32[16] add(y, cb)
  h = f32[] constant(0.5)
  a2 = f32[] multiply(a, h)
  ROOT t = (s32[], f32[16], f32[], f32[4]) tuple(j, z, a2, c)
}
ENTRY main {
  x = f32[16] parameter(0)
  c = f32[4] parameter(1)
  zero = s32[] constant(2)
  a = f32[] constant(3)
  init = (s32[], f32[16], f32[], f32[4]) tuple(zero, x, a, c)
  w = (s32[], f32[16], f32[], f32[4]) while(init), condition=cond, body=body
  ROOT r = f32[16] get-tuple-element(w), index=1
}
"#;

    fn while_of(module: &Module) -> InstrId {
        module.entry_comp().find("w").unwrap()
    }

    #[test]
    fn counter_pattern_gives_the_trip_count() {
        let module = parse(FORI);
        assert_eq!(known_trip_count(&module, module.entry, while_of(&module)), Some(8));
    }

    #[test]
    fn backend_config_gives_the_trip_count() {
        let mut module = parse(FORI);
        let w = while_of(&module);
        let entry = module.entry;
        module.comp_mut(entry).instr_mut(w).meta.backend_config =
            Some(r#"{"known_trip_count":{"n":"100"},"known_init_step":{"init":"0","step":"1"}}"#.into());
        assert_eq!(known_trip_count(&module, entry, w), Some(100));
    }

    #[test]
    fn elementwise_loop_is_recognised_before_and_after_fusion() {
        let expected = ElementwiseLoop {
            trip_count: 8,
            counter: 0,
            dims: vec![16],
            carries: vec![
                LoopCarry::Counter { init: 2, step: 1 },
                LoopCarry::PerElement,
                LoopCarry::Scalar,
                LoopCarry::Invariant,
            ],
        };
        let mut module = parse(FORI);
        assert_eq!(elementwise_loop_analysis(&module, module.entry, while_of(&module)), Some(expected.clone()));
        crate::fuse::run(&mut module).unwrap();
        let w =
            module.entry_comp().ids().find(|&id| matches!(module.entry_comp().instr(id).op, Op::While { .. })).unwrap();
        assert_eq!(elementwise_loop_analysis(&module, module.entry, w), Some(expected));
    }

    #[test]
    fn a_loop_that_mixes_elements_is_not_elementwise() {
        let text = FORI
            .replace("z = f32[16] add(y, cb)", "yr = f32[16] reverse(y), dimensions={0}\n  z = f32[16] add(yr, cb)");
        let module = parse(&text);
        assert_eq!(elementwise_loop_analysis(&module, module.entry, while_of(&module)), None);
        assert_eq!(known_trip_count(&module, module.entry, while_of(&module)), Some(8));
    }
}
