//! Walking a SPIR-V binary instruction by instruction, for the passes that patch what naga
//! writes ([`crate::spirv_exact`], [`crate::spirv_texels`]).

/// Words of a SPIR-V module's header, before the first instruction.
pub(crate) const HEADER: usize = 5;

/// Each instruction of `words` after the header as `(offset, opcode, word count)`, or `None` when
/// the module is malformed (shorter than a header, a zero or overlong word count): the patching
/// passes then leave it as it is and the validator downstream reports it.
pub(crate) fn instructions(words: &[u32]) -> Option<Vec<(usize, u32, usize)>> {
    if words.len() < HEADER {
        return None;
    }
    let mut out = Vec::new();
    let mut at = HEADER;
    while at < words.len() {
        let count = (words[at] >> 16) as usize;
        if count == 0 || at + count > words.len() {
            return None;
        }
        out.push((at, words[at] & 0xffff, count));
        at += count;
    }
    Some(out)
}
