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
use crate::util::{users, NameUniquer};
use hlo_ir::{CompId, Computation, FusionKind, Instr, InstrId, Module, Op, Shape};

/// Moves products into their epilogue fusions in the control computation `cid`; true if any moved.
pub(crate) fn fuse_epilogues(
    module: &mut Module,
    cid: CompId,
    names: &mut NameUniquer,
    report: &mut FusionReport,
) -> bool {
    let mut changed = false;
    let ids: Vec<InstrId> = module.comp(cid).ids().collect();
    for fusion_id in ids {
        let comp = module.comp(cid);
        let fusion = comp.instr(fusion_id);
        let Op::Fusion { kind: FusionKind::Loop, calls } = fusion.op else { continue };
        if fusion.shape.as_array().is_none() {
            continue;
        }
        let user_lists = users(comp);
        let fused = module.comp(calls);
        let candidate = fusion.operands.iter().enumerate().find(|&(k, &o)| {
            let product = comp.instr(o);
            matches!(product.op, Op::Dot { .. } | Op::Convolution { .. })
                && user_lists[o.index()].iter().all(|&u| u == fusion_id)
                && fusion.operands.iter().filter(|&&x| x == o).count() == 1
                && is_epilogue_of(fused, fused.params[k])
        });
        let Some((k, &product_id)) = candidate else { continue };
        let product = comp.instr(product_id).clone();
        let operand_shapes: Vec<Shape> = product.operands.iter().map(|&o| comp.instr(o).shape.clone()).collect();
        let (fusion_name, fused_name) = (fusion.name.clone(), fused.name.clone());
        let new_comp = with_product(fused, k, &product, &operand_shapes, names, &fused_name);
        module.comps.push(new_comp);
        let new_id = CompId((module.comps.len() - 1) as u32);
        let comp = module.comp_mut(cid);
        let fusion = comp.instr_mut(fusion_id);
        let mut operands = fusion.operands.clone();
        operands[k] = product.operands[0];
        operands.extend(product.operands[1..].iter().copied());
        fusion.operands = operands;
        fusion.op = Op::Fusion { kind: FusionKind::Output, calls: new_id };
        report.edges.push(EdgeRecord {
            comp: comp.name.clone(),
            producer: product.name.clone(),
            consumer: fusion_name.clone(),
            decision: FusionDecision::Fuse,
        });
        report.merges.push(format!(
            "{}: `{}` moved into `{fusion_name}` as the hero of its elementwise epilogue",
            comp.name, product.name
        ));
        report.kernels.retain(|r| r.name != product.name);
        if let Some(record) = report.kernels.iter_mut().find(|r| r.name == fusion_name) {
            record.kind = match product.op {
                Op::Dot { .. } => crate::fusion_analysis::KernelKind::Dot,
                _ => crate::fusion_analysis::KernelKind::Convolution,
            };
            record.n_instrs += 1;
        }
        changed = true;
    }
    changed
}

/// Whether the root of `fused` is an elementwise epilogue of `value`: it reads `value` only
/// through elementwise ops of `value`'s dimensions (and is not `value` itself). Code generation
/// asks the same of a `kOutput` fusion's product.
pub fn is_epilogue_of(fused: &Computation, value: InstrId) -> bool {
    let dims = crate::util::dims(&fused.instr(value).shape);
    let mut reads = vec![false; fused.instrs.len()];
    reads[value.index()] = true;
    for id in fused.ids() {
        let instr = fused.instr(id);
        if id == value || !instr.operands.iter().any(|o| reads[o.index()]) {
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
    reads[fused.root.index()] && fused.root != value
}

/// `fused` with parameter `k` replaced by `product` computed from parameters: its first operand
/// takes number `k`, the others numbers after the existing parameters.
fn with_product(
    fused: &Computation,
    k: usize,
    product: &Instr,
    operand_shapes: &[Shape],
    names: &mut NameUniquer,
    fused_name: &str,
) -> Computation {
    let mut out = Computation::new(names.fresh(&format!("{fused_name}.{}", product.name)));
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
            map.push(out.push(copy));
            continue;
        }
        let mut copy = instr.clone();
        copy.operands = instr.operands.iter().map(|o| map[o.index()]).collect();
        map.push(out.push_with_span(copy, fused.spans[idx].clone()));
    }
    out.root = map[fused.root.index()];
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
