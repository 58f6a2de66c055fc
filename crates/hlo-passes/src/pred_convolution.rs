//! `pred-convolution`: a `convolution` of `pred` arrays, which XLA computes as an OR of ANDs,
//! as the `s32` convolution of the operands converted to 0 and 1, compared with 0: a sum of
//! 0/1 products is nonzero exactly when one product is (a window has far fewer than 2^31
//! elements), so the device's integer convolution gives XLA's result.
//!
//! Pre-condition: none. Post-condition: no `convolution` has a `pred` result.

use crate::util::{expand_elementwise, int_scalar, push_expansion_step};
use crate::PassError;
use hlo_ir::{CompareDirection, DType, Module, Op};

pub fn run(module: &mut Module) -> Result<bool, PassError> {
    let _span = tracing::info_span!("pred-convolution").entered();
    let wanted = |i: &hlo_ir::Instr| {
        matches!(i.op, Op::Convolution { .. }) && i.shape.as_array().is_some_and(|a| a.dtype == DType::Pred)
    };
    expand_elementwise(module, wanted, |s, _, operands| {
        let at = s.at;
        let conv = s.comp.instr(at).op.clone();
        let ints: Vec<_> = operands
            .iter()
            .map(|&x| {
                let dims = s.comp.instr(x).shape.as_array().map(|a| a.dims.clone()).unwrap_or_default();
                push_expansion_step(s.comp, s.names, at, (DType::S32, &dims), Op::Convert, vec![x])
            })
            .collect();
        let sum = s.push(DType::S32, conv, ints);
        let zero = s.splat(DType::S32, int_scalar(DType::S32, 0).expect("s32"));
        s.compare(CompareDirection::Ne, sum, zero)
    })
}

#[cfg(test)]
mod tests {
    /// The expansion evaluates to the interpreter's own pred convolution (an OR of ANDs).
    #[test]
    fn expansion_matches_the_interpreter() {
        let text = "HloModule m
ENTRY e {
  x = pred[2,6,5,4] parameter(0)
  w = pred[3,2,2,6] parameter(1)
  ROOT c = pred[2,6,4,6] convolution(x, w), window={size=3x2 pad=1_1x0_0}, dim_labels=b01f_01io->b01f, feature_group_count=2
}
";
        let module = hlo_parse::parse_module(text).expect("parses");
        let mut expanded = module.clone();
        assert!(super::run(&mut expanded).expect("expands"));
        hlo_ir::verify::verify(&expanded).expect("verifies");
        let inputs: Vec<_> = module
            .entry_comp()
            .param_shapes()
            .iter()
            .enumerate()
            .map(|(k, s)| hlo_interp::random_literal(s.as_array().expect("array"), 7 + k as u64))
            .collect();
        let want = hlo_interp::evaluate(&module, &inputs).expect("interprets");
        let got = hlo_interp::evaluate(&expanded, &inputs).expect("interprets the expansion");
        assert_eq!(got, want);
    }
}
