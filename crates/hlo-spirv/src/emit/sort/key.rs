//! Key orders: comparators that sort by an unsigned key of one operand.
//!
//! A comparator whose root is `compare(g(p_a), g(p_b)), direction=LT|GT`, where `p_a` and `p_b` are
//! the lhs and rhs parameters of one operand and `g` is the same expression on both sides, orders
//! elements exactly as the comparison orders `g(x)`. For the element types a radix sort handles,
//! that order is the order of an unsigned integer key:
//!
//! - floats under `type=TOTALORDER`: the bits, with the magnitude bits flipped for negative values
//!   and the sign bit flipped (-NaN < -inf < ... < -0 < +0 < ... < inf < NaN, XLA's total order);
//! - signed integers: the value plus 2^(w-1); unsigned integers and pred: the value;
//!
//! inverted for a descending order. `g` is evaluated through the elemental emitter, so whatever it
//! does (JAX canonicalises -0 to +0 and every NaN to one NaN first; XLA's optimised form maps the
//! float to a signed integer by hand) is honoured exactly. Comparators that do not have this shape
//! (several keys, floats under the partial order, 64-bit keys) are not key orders; the merge sort
//! evaluates them as written.

use super::Operand;
use crate::builder::{STy, H};
use crate::emit::elemental::{Em, Index, Leaf};
use crate::emit::ops::Val;
use crate::error::Result;
use hlo_ir::{CompId, CompareDirection, CompareType, Computation, DType, InstrId, Module, Op};
use naga::BinaryOperator as Bo;
use std::collections::{HashMap, HashSet};

/// How a key is read from a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyKind {
    /// f32 (or f16/bf16 held as f32) under XLA's total order.
    Float,
    /// Sign-extended in an i32.
    Signed,
    /// Zero-extended in a u32.
    Unsigned,
    Pred,
}

/// Sorting by an unsigned key computed from one operand.
#[derive(Clone, Debug)]
pub(super) struct KeyOrder {
    /// The operand the key is computed from.
    pub operand: usize,
    /// `g`: evaluated in `comp` with `params` bound to the element; `None` is the element itself.
    pub fun: Option<KeyFn>,
    pub kind: KeyKind,
    pub descending: bool,
    /// Flush subnormal floats to zero before `g` (see [`super::flush_for_comparator`]).
    pub flush: bool,
    /// Significant bits of the key (the radix sort makes `ceil(bits / 8)` passes).
    pub bits: u32,
}

#[derive(Clone, Debug)]
pub(super) struct KeyFn {
    pub comp: CompId,
    pub root: InstrId,
    pub params: Vec<InstrId>,
}

impl KeyOrder {
    /// The key of element value `x` (of the key operand), as a u32 whose ascending order is the sort order.
    pub(super) fn key(&self, em: &mut Em, x: Val) -> Result<H> {
        let v = match &self.fun {
            None => x,
            Some(f) => {
                // An arithmetic compare reads subnormals as zero under XLA:CPU's DAZ; inside `g`,
                // each op reads the loaded value as it would (`Leaf::Loaded`).
                let x = if self.flush { super::flush_for_comparator(em, x) } else { x };
                let leaves = f.params.iter().map(|&p| (p, Leaf::Loaded(x))).collect();
                let frame = em.frame(f.comp, leaves);
                em.eval(frame, f.root, &[], &Index::scalar())?
            }
        };
        let kb = &mut em.kb;
        let key = match self.kind {
            KeyKind::Float => {
                let bits = kb.bitcast(v.h, STy::U32);
                let signed = kb.bitcast(v.h, STy::I32);
                let c31 = kb.lit_u32(31);
                let sign = kb.binary(Bo::ShiftRight, signed, c31);
                let sign = kb.bitcast(sign, STy::U32);
                let top = kb.lit_u32(0x8000_0000);
                let mask = kb.binary(Bo::InclusiveOr, sign, top);
                kb.binary(Bo::ExclusiveOr, bits, mask)
            }
            KeyKind::Signed => {
                let bits = kb.bitcast(v.h, STy::U32);
                let bias = kb.lit_u32(1u32 << (self.bits - 1));
                let k = kb.binary(Bo::Add, bits, bias);
                mask_bits(kb, k, self.bits)
            }
            KeyKind::Unsigned => v.h,
            KeyKind::Pred => {
                let one = kb.lit_u32(1);
                let zero = kb.lit_u32(0);
                kb.select(v.h, one, zero)
            }
        };
        Ok(if self.descending {
            let all = kb.lit_u32(if self.bits == 32 { u32::MAX } else { (1u32 << self.bits) - 1 });
            kb.binary(Bo::ExclusiveOr, key, all)
        } else {
            key
        })
    }
}

fn mask_bits(kb: &mut crate::builder::Kb, k: H, bits: u32) -> H {
    if bits == 32 {
        k
    } else {
        let m = kb.lit_u32((1u32 << bits) - 1);
        kb.binary(Bo::And, k, m)
    }
}

/// The key kind and significant bits for values of `dt` compared with `ty`.
fn kind_of(dt: DType, ty: Option<CompareType>) -> Option<(KeyKind, u32)> {
    Some(match dt {
        DType::F32 | DType::F16 | DType::BF16 if ty == Some(CompareType::TotalOrder) => (KeyKind::Float, 32),
        DType::S32 => (KeyKind::Signed, 32),
        DType::S16 => (KeyKind::Signed, 16),
        DType::S8 => (KeyKind::Signed, 8),
        DType::U32 => (KeyKind::Unsigned, 32),
        DType::U16 => (KeyKind::Unsigned, 16),
        DType::U8 => (KeyKind::Unsigned, 8),
        DType::Pred => (KeyKind::Pred, 1),
        _ => return None,
    })
}

/// Ordering by the values of operand `operand` themselves (floats by total order), as `topk` does.
pub(super) fn value_order(dt: DType, operand: usize, descending: bool) -> Option<KeyOrder> {
    let (kind, bits) = kind_of(dt, Some(CompareType::TotalOrder))?;
    Some(KeyOrder { operand, fun: None, kind, descending, flush: false, bits })
}

/// Which parameters of computation `c` its result depends on.
pub(super) fn used_params(m: &Module, c: CompId) -> Vec<bool> {
    let comp = m.comp(c);
    let mut used = vec![false; comp.params.len()];
    let mut seen = vec![false; comp.instrs.len()];
    let mut stack = vec![comp.root];
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut seen[id.index()], true) {
            continue;
        }
        let instr = comp.instr(id);
        if let Op::Parameter { number } = instr.op {
            if let Some(u) = used.get_mut(number as usize) {
                *u = true;
            }
        }
        stack.extend(instr.operands.iter().copied());
    }
    used
}

/// The key order `cmp` is, if it is one (see the module docs); `flush` as in [`KeyOrder`].
pub(super) fn recognize(m: &Module, cmp: CompId, operands: &[Operand], flush: bool) -> Option<KeyOrder> {
    let c = m.comp(cmp);
    if c.params.len() < 2 || c.params.len() % 2 != 0 || c.params.len() > 2 * operands.len() {
        return None;
    }
    // The computation holding the compare, and the comparator parameter each of its parameters is.
    let root = c.root_instr();
    let (inner_id, outer_param): (CompId, HashMap<InstrId, u32>) = match &root.op {
        Op::Compare { .. } => (cmp, c.params.iter().enumerate().map(|(k, &p)| (p, k as u32)).collect()),
        Op::Fusion { calls, .. } | Op::Call { to_apply: calls, .. } => {
            let callee = m.comp(*calls);
            let mut map = HashMap::new();
            for (k, &p) in callee.params.iter().enumerate() {
                let arg = c.instr(*root.operands.get(k)?);
                if let Op::Parameter { number } = arg.op {
                    map.insert(p, number as u32);
                }
            }
            (*calls, map)
        }
        _ => return None,
    };
    let inner = m.comp(inner_id);
    let cmp_instr = inner.root_instr();
    let Op::Compare { direction, compare_type } = cmp_instr.op else { return None };
    if !matches!(direction, CompareDirection::Lt | CompareDirection::Gt) {
        return None;
    }
    let (l, r) = (cmp_instr.operands[0], cmp_instr.operands[1]);
    let a = single_param(inner, l, &outer_param)?;
    let b = single_param(inner, r, &outer_param)?;
    if a / 2 != b / 2 || a == b {
        return None;
    }
    let operand = (a / 2) as usize;
    let dt = inner.instr(l).shape.as_array().filter(|s| s.rank() == 0)?.dtype;
    if operands.get(operand)?.dt != comp_param_dtype(c, a)? {
        return None;
    }
    if !same_expr(inner, l, r, a, b, &outer_param, &mut HashSet::new()) {
        return None;
    }
    let (kind, bits) = kind_of(dt, compare_type)?;
    // lhs before rhs when g(lhs) < g(rhs): ascending; `a` odd means the left side is the rhs.
    let descending = (a % 2 == 1) != (direction == CompareDirection::Gt);
    let params = inner.params.iter().copied().filter(|p| outer_param.get(p) == Some(&a)).collect();
    // A total-order compare reads bits: subnormals are not zero there.
    let flush = flush && compare_type != Some(hlo_ir::CompareType::TotalOrder);
    Some(KeyOrder { operand, fun: Some(KeyFn { comp: inner_id, root: l, params }), kind, descending, flush, bits })
}

fn comp_param_dtype(c: &Computation, number: u32) -> Option<DType> {
    let p = *c.params.get(number as usize)?;
    c.instr(p).shape.as_array().map(|s| s.dtype)
}

/// The one comparator parameter `id` depends on, if it depends on exactly one (and on no
/// parameter of `comp` that is not a comparator parameter).
fn single_param(comp: &Computation, id: InstrId, outer: &HashMap<InstrId, u32>) -> Option<u32> {
    let mut found = None;
    let mut seen = vec![false; comp.instrs.len()];
    let mut stack = vec![id];
    while let Some(x) = stack.pop() {
        if std::mem::replace(&mut seen[x.index()], true) {
            continue;
        }
        let instr = comp.instr(x);
        if let Op::Parameter { .. } = instr.op {
            let n = *outer.get(&x)?;
            if found.is_some_and(|f| f != n) {
                return None;
            }
            found = Some(n);
        }
        stack.extend(instr.operands.iter().copied());
    }
    found
}

/// `x` (a function of comparator parameter `a`) and `y` (of `b`) are the same expression.
/// `equal` holds the pairs already found equal (expressions are DAGs).
fn same_expr(
    comp: &Computation,
    x: InstrId,
    y: InstrId,
    a: u32,
    b: u32,
    outer: &HashMap<InstrId, u32>,
    equal: &mut HashSet<(InstrId, InstrId)>,
) -> bool {
    if x == y || equal.contains(&(x, y)) {
        return true;
    }
    let (ix, iy) = (comp.instr(x), comp.instr(y));
    let same = match (&ix.op, &iy.op) {
        (Op::Parameter { .. }, Op::Parameter { .. }) => outer.get(&x) == Some(&a) && outer.get(&y) == Some(&b),
        (ox, oy) => {
            ox == oy
                && ix.shape == iy.shape
                && ix.operands.len() == iy.operands.len()
                && ix.operands.iter().zip(&iy.operands).all(|(&p, &q)| same_expr(comp, p, q, a, b, outer, equal))
        }
    };
    if same {
        equal.insert((x, y));
    }
    same
}
