//! Marks every float arithmetic instruction of a SPIR-V module `NoContraction`.
//!
//! Why: without it a driver may treat float arithmetic as "inexact" and rewrite it the way
//! fast-math would. Mesa's NIR (lavapipe, RADV, ANV, ...) folds `0.0 + x` to `x` (so a sum of
//! `-0.0`s returned `-0.0` where XLA gives `+0.0`), `x * 0.0` to `0.0` (wrong for inf/NaN), and
//! fuses a multiply feeding an add into one `fma`. HLO's semantics are IEEE operations, each
//! rounded on its own; where XLA:CPU contracts, the emitter asks for an explicit `fma`
//! ([`crate::FmaMode`]). `NoContraction` is how SPIR-V says "exactly this operation": spirv-to-nir
//! turns it into NIR's `exact` flag, which disables those rewrites.
//!
//! naga has no option for the decoration, so this works on the binary: it collects the result
//! ids of float arithmetic and inserts one `OpDecorate %id NoContraction` each into the
//! annotation section.

const OP_DECORATE: u32 = 71;
const DECORATION_NO_CONTRACTION: u32 = 42;

/// Annotation opcodes: OpDecorate, OpMemberDecorate, OpDecorationGroup, OpGroupDecorate,
/// OpGroupMemberDecorate, OpDecorateId, OpDecorateString, OpMemberDecorateString.
const ANNOTATIONS: [u32; 8] = [71, 72, 73, 74, 75, 332, 5632, 5633];

/// Float arithmetic whose result must not be rewritten: OpFNegate, OpFAdd, OpFSub, OpFMul,
/// OpFDiv, OpFRem, OpFMod, OpVectorTimesScalar, OpMatrixTimesScalar, OpVectorTimesMatrix,
/// OpMatrixTimesVector, OpMatrixTimesMatrix, OpDot.
const FLOAT_ARITHMETIC: [u32; 13] = [127, 129, 131, 133, 136, 140, 141, 142, 143, 144, 145, 146, 148];

/// Type declarations (OpTypeVoid ..= OpTypeForwardPointer range and friends), constants and
/// OpVariable: the annotation section ends before the first of these.
fn is_declaration(op: u32) -> bool {
    (19..=39).contains(&op) || (41..=52).contains(&op) || op == 59 || op == 322
}

/// Adds `NoContraction` to every float arithmetic result of `words` (a SPIR-V module).
/// Leaves malformed input unchanged: the validator downstream reports it.
pub(crate) fn mark_float_ops_exact(words: &mut Vec<u32>) {
    let Some(list) = crate::spirv_words::instructions(words) else { return };
    let mut results = Vec::new();
    let mut last_annotation_end = None;
    let mut first_declaration = None;
    for (at, op, count) in list {
        if ANNOTATIONS.contains(&op) {
            last_annotation_end = Some(at + count);
        } else if first_declaration.is_none() && is_declaration(op) {
            first_declaration = Some(at);
        }
        // Result-producing arithmetic: OpX %result_type %result ...
        if FLOAT_ARITHMETIC.contains(&op) && count >= 3 {
            results.push(words[at + 2]);
        }
    }
    if results.is_empty() {
        return;
    }
    let Some(insert_at) = last_annotation_end.or(first_declaration) else { return };
    let decorations = results.iter().flat_map(|&id| [(3 << 16) | OP_DECORATE, id, DECORATION_NO_CONTRACTION]);
    words.splice(insert_at..insert_at, decorations);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorations_land_in_the_annotation_section() {
        // Header, OpDecorate %1 Binding 0, OpTypeFloat %2 32, OpFAdd %2 %3 %4 %5.
        let mut words = vec![0x0723_0203, 0x0001_0300, 0, 10, 0];
        words.extend([(4 << 16) | 71, 1, 33, 0]);
        words.extend([(3 << 16) | 22, 2, 32]);
        words.extend([(5 << 16) | 129, 2, 3, 4, 5]);
        mark_float_ops_exact(&mut words);
        assert_eq!(&words[9..12], &[(3 << 16) | 71, 3, 42]);
        assert_eq!(words[12], (3 << 16) | 22);
    }
}
