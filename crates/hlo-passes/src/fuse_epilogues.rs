//! `fusion`'s last stage: a dot or convolution whose only user is a loop fusion that applies an
//! elementwise epilogue to it (a bias and an activation, a mask, an SGD update `w - lr * g`)
//! moves into that fusion as its hero (XLA's `kOutput` fusion). The blocked kernel then stores
//! the epilogue's value: one dispatch instead of two, and the product never goes through memory.
//!
//! The epilogue must read the product only through elementwise ops of the product's dimensions
//! (so each output element needs exactly the product element the kernel holds): a fusion that
//! reverses, transposes or broadcasts the product keeps reading it from memory.
//!
//! Pre-condition: the control computation is fused (`fuse.rs`). Post-condition: every fusion of
//! kind `kOutput` holds exactly one `dot` or `convolution`, read by the root through elementwise
//! ops of its dimensions, and its operands are the fusion's parameters.

use crate::fuse::{EdgeRecord, FusionDecision, FusionReport};
use crate::util::{compact, users, NameUniquer};
use crate::PassError;
use hlo_ir::{CompId, Computation, FusionKind, Instr, InstrId, Module, Op, Shape};

/// Moves products into their epilogue fusions in the control computation `cid`; true if any moved.
///
/// A product that other kernels read too (a dot whose relu and whose relu's derivative both
/// need it) moves all the same: the fusion then also yields the product itself, as a second
/// output the other readers take (`get-tuple-element` 1), unless one of them feeds the fusion.
pub(crate) fn fuse_epilogues(
    module: &mut Module,
    cid: CompId,
    names: &mut NameUniquer,
    report: &mut FusionReport,
) -> Result<bool, PassError> {
    let mut changed = false;
    // Each move renumbers the computation (`compact`), so the scan starts over after it.
    while let Some((fusion_id, k)) = next_move(module, cid) {
        move_product(module, cid, fusion_id, k, names, report)?;
        changed = true;
    }
    Ok(changed)
}

/// The first loop fusion and operand position whose product can move into it.
fn next_move(module: &Module, cid: CompId) -> Option<(InstrId, usize)> {
    let comp = module.comp(cid);
    let user_lists = users(comp);
    for fusion_id in comp.ids() {
        let fusion = comp.instr(fusion_id);
        let Op::Fusion { kind: FusionKind::Loop, calls } = fusion.op else { continue };
        if fusion.shape.as_array().is_none() {
            continue;
        }
        let fused = module.comp(calls);
        let found = fusion.operands.iter().enumerate().find(|&(k, &o)| {
            let product = comp.instr(o);
            let others: Vec<InstrId> = user_lists[o.index()].iter().copied().filter(|&u| u != fusion_id).collect();
            matches!(product.op, Op::Dot { .. } | Op::Convolution { .. })
                && comp.root != o
                && fusion.operands.iter().filter(|&&x| x == o).count() == 1
                && is_epilogue_of(fused, fused.params[k])
                && !others.iter().any(|&u| feeds(comp, u, fusion_id, o))
        });
        if let Some((k, _)) = found {
            return Some((fusion_id, k));
        }
    }
    None
}

/// Whether `from` is an operand of `to`, directly or through other instructions (not through
/// `product`, which moves into `to`).
fn feeds(comp: &Computation, from: InstrId, to: InstrId, product: InstrId) -> bool {
    let mut stack: Vec<InstrId> = comp.instr(to).operands.iter().copied().filter(|&o| o != product).collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(id) = stack.pop() {
        if id == from {
            return true;
        }
        if seen.insert(id) {
            stack.extend(comp.instr(id).operands.iter().copied());
        }
    }
    false
}

/// Moves the product at operand `k` of the fusion `fusion_id` into it (see [`fuse_epilogues`]).
fn move_product(
    module: &mut Module,
    cid: CompId,
    fusion_id: InstrId,
    k: usize,
    names: &mut NameUniquer,
    report: &mut FusionReport,
) -> Result<(), PassError> {
    let comp = module.comp(cid);
    let fusion = comp.instr(fusion_id);
    let Op::Fusion { calls, .. } = fusion.op else { unreachable!("next_move found a fusion") };
    let product_id = fusion.operands[k];
    let product = comp.instr(product_id).clone();
    let shared = users(comp)[product_id.index()].iter().any(|&u| u != fusion_id);
    let operand_shapes: Vec<Shape> = product.operands.iter().map(|&o| comp.instr(o).shape.clone()).collect();
    let (fusion_name, fused) = (fusion.name.clone(), module.comp(calls));
    let new_comp = with_product(fused, k, &product, &operand_shapes, shared, names);
    let out_shape = new_comp.instr(new_comp.root).shape.clone();
    module.comps.push(new_comp);
    let new_id = CompId((module.comps.len() - 1) as u32);
    let comp = module.comp_mut(cid);
    let fusion = comp.instr_mut(fusion_id);
    let epilogue_shape = std::mem::replace(&mut fusion.shape, out_shape);
    let mut operands = fusion.operands.clone();
    operands[k] = product.operands[0];
    operands.extend(product.operands[1..].iter().copied());
    fusion.operands = operands;
    fusion.op = Op::Fusion { kind: FusionKind::Output, calls: new_id };
    if shared {
        // The fusion's old users take output 0, the product's other users output 1.
        let gte = |index: u64, shape: &Shape, names: &mut NameUniquer| {
            Instr::new(
                names.fresh(&format!("{fusion_name}.out")),
                shape.clone(),
                Op::GetTupleElement { index },
                vec![fusion_id],
            )
        };
        let epilogue = comp.push(gte(0, &epilogue_shape, names));
        let own = comp.push(gte(1, &product.shape, names));
        for id in comp.ids().collect::<Vec<_>>() {
            if id == epilogue || id == own || id == fusion_id {
                continue;
            }
            for o in comp.instr_mut(id).operands.iter_mut() {
                if *o == fusion_id {
                    *o = epilogue;
                } else if *o == product_id {
                    *o = own;
                }
            }
        }
        if comp.root == fusion_id {
            comp.root = epilogue;
        }
    }
    compact(comp)?;
    report.edges.push(EdgeRecord {
        comp: comp.name.clone(),
        producer: product.name.clone(),
        consumer: fusion_name.clone(),
        decision: FusionDecision::Fuse,
    });
    report.merges.push(format!(
        "{}: `{}` moved into `{fusion_name}` as the hero of its elementwise epilogue{}",
        comp.name,
        product.name,
        if shared { ", which also yields it for its other readers" } else { "" }
    ));
    report.kernels.retain(|r| r.name != product.name);
    if let Some(record) = report.kernels.iter_mut().find(|r| r.name == fusion_name) {
        record.kind = match product.op {
            Op::Dot { .. } => crate::fusion_analysis::KernelKind::Dot,
            _ => crate::fusion_analysis::KernelKind::Convolution,
        };
        record.n_instrs += 1;
        if shared {
            record.outputs.push(product.name.clone());
        }
    }
    Ok(())
}

/// Whether the root of `fused` is an elementwise epilogue of `value`: it reads `value` only
/// through elementwise ops of `value`'s dimensions (and is not `value` itself). Code generation
/// asks the same of a `kOutput` fusion's product.
pub fn is_epilogue_of(fused: &Computation, value: InstrId) -> bool {
    is_epilogue_at(fused, value, fused.root)
}

/// [`is_epilogue_of`] for the value `root` of `fused` (output 0 of a fusion that also yields
/// the product).
pub fn is_epilogue_at(fused: &Computation, value: InstrId, root: InstrId) -> bool {
    let dims = crate::util::dims(&fused.instr(value).shape);
    // Only what `root` is computed from (a tuple root that also yields `value` reads it too).
    let mut needed = vec![false; fused.instrs.len()];
    needed[root.index()] = true;
    for id in (0..fused.instrs.len()).rev().map(InstrId::from_index) {
        if needed[id.index()] {
            for &o in &fused.instr(id).operands {
                needed[o.index()] = true;
            }
        }
    }
    let mut reads = vec![false; fused.instrs.len()];
    reads[value.index()] = true;
    for id in fused.ids() {
        let instr = fused.instr(id);
        if id == value || !needed[id.index()] || !instr.operands.iter().any(|o| reads[o.index()]) {
            continue;
        }
        // A complex result is what `lower-complex` rebuilds from real products at an output:
        // no kernel stores it (XLA's ConvolveC64Forward).
        let complex = instr.shape.dtype().is_some_and(|t| t.is_complex());
        if !instr.op.is_elementwise()
            || crate::util::dims(&instr.shape) != dims
            || instr.shape.as_array().is_none()
            || complex
        {
            return false;
        }
        reads[id.index()] = true;
    }
    reads[root.index()] && root != value
}

/// `fused` with parameter `k` replaced by `product` computed from parameters: its first operand
/// takes number `k`, the others numbers after the existing parameters. With `keep_product` the
/// root is the tuple (epilogue, product).
fn with_product(
    fused: &Computation,
    k: usize,
    product: &Instr,
    operand_shapes: &[Shape],
    keep_product: bool,
    names: &mut NameUniquer,
) -> Computation {
    let mut out = Computation::new(names.fresh(&format!("{}.{}", fused.name, product.name)));
    let mut product_id = None;
    let mut map: Vec<InstrId> = Vec::with_capacity(fused.instrs.len());
    let n = fused.params.len();
    for (idx, instr) in fused.instrs.iter().enumerate() {
        if InstrId::from_index(idx) == fused.params[k] {
            let params: Vec<InstrId> = product
                .operands
                .iter()
                .enumerate()
                .map(|(j, _)| {
                    let number = if j == 0 { k } else { n + j - 1 };
                    let shape = operand_shapes[j].clone();
                    let name = names.fresh(&format!("{}.operand{j}", product.name));
                    out.push(Instr::new(name, shape, Op::Parameter { number: number as u64 }, vec![]))
                })
                .collect();
            let mut copy = product.clone();
            copy.name = names.fresh(&product.name);
            copy.operands = params;
            let id = out.push(copy);
            product_id = Some(id);
            map.push(id);
            continue;
        }
        let mut copy = instr.clone();
        copy.operands = instr.operands.iter().map(|o| map[o.index()]).collect();
        map.push(out.push_with_span(copy, fused.spans[idx].clone()));
    }
    out.root = map[fused.root.index()];
    if keep_product {
        // Output 0 the epilogue, output 1 the product (`dot::product_hero` reads this order).
        let product_id = product_id.expect("the parameter was replaced");
        let shapes = vec![out.instr(out.root).shape.clone(), product.shape.clone()];
        let name = names.fresh(&format!("{}.outputs", fused.name));
        out.root = out.push(Instr::new(name, Shape::Tuple(shapes), Op::Tuple, vec![out.root, product_id]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fused(text: &str) -> Module {
        let mut m = hlo_parse::parse_module(text).expect("parses");
        let mut opts = crate::PipelineOptions::default();
        crate::run_pipeline(&mut m, &mut opts).expect("pipeline");
        m
    }

    fn output_fusions(m: &Module) -> Vec<&Computation> {
        m.entry_comp()
            .instrs
            .iter()
            .filter_map(|i| match i.op {
                Op::Fusion { kind: FusionKind::Output, calls } => Some(m.comp(calls)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_bias_and_relu_join_their_dot() {
        let m = fused(
            "HloModule m
ENTRY e {
  x = f32[64,32] parameter(0)
  w = f32[32,48] parameter(1)
  b = f32[48] parameter(2)
  d = f32[64,48] dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  bb = f32[64,48] broadcast(b), dimensions={1}
  s = f32[64,48] add(d, bb)
  z = f32[] constant(0)
  zz = f32[64,48] broadcast(z), dimensions={}
  ROOT r = f32[64,48] maximum(s, zz)
}
",
        );
        let outputs = output_fusions(&m);
        assert_eq!(outputs.len(), 1, "{}", hlo_ir::print::print_module(&m));
        assert!(outputs[0].instrs.iter().any(|i| matches!(i.op, Op::Dot { .. })));
    }

    /// `lower-complex` turns a c64 convolution into four real ones rebuilt by `complex`: the
    /// rebuilt c64 value is no kernel's epilogue (XLA's ConvolveC64Forward was refused).
    #[test]
    fn complex_results_stay_out_of_epilogues() {
        let m = fused(
            "HloModule m
ENTRY e {
  x = c64[1,6,6,2] parameter(0)
  k = c64[3,3,2,4] parameter(1)
  ROOT c = c64[1,4,4,4] convolution(x, k), window={size=3x3}, dim_labels=b01f_01io->b01f
}
",
        );
        for comp in output_fusions(&m) {
            let root = comp.instr(comp.root);
            assert!(!root.shape.dtype().is_some_and(|t| t.is_complex()), "{}", hlo_ir::print::print_module(&m));
        }
    }
}
