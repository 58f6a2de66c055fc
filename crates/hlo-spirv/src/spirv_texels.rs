//! Turns the 1D sampled images of a SPIR-V module into texel buffers.
//!
//! Why: naga's IR has no buffer images (WGSL has none), but uniform texel buffers are how a
//! kernel reads a storage buffer's bytes through the driver's texture path, which on CPU drivers
//! gathers a whole subgroup's elements at once ([`crate::Target::texel_gathers`]). Kernels declare
//! such bindings as `texture_1d<f32>` ([`crate::builder::Kb::texel_buffer`]) and never use
//! real 1D textures, so after naga has written the module this pass rewrites, in the binary:
//! - `OpTypeImage ... 1D ...` to `Dim Buffer`;
//! - the `Sampled1D` capability to `SampledBuffer`;
//! - `OpImageFetch %t %r %image %coord Lod %0` to `OpImageFetch %t %r %image %coord` (a texel
//!   buffer has no mip levels, so the `Lod` operand is not allowed).

const OP_CAPABILITY: u32 = 17;
const OP_TYPE_IMAGE: u32 = 25;
const OP_IMAGE_FETCH: u32 = 95;
const CAPABILITY_SAMPLED_1D: u32 = 43;
const CAPABILITY_SAMPLED_BUFFER: u32 = 46;
const DIM_1D: u32 = 0;
const DIM_BUFFER: u32 = 5;
const IMAGE_OPERANDS_LOD: u32 = 0x2;

/// Rewrites every 1D image of `words` (a SPIR-V module) into a texel buffer; a module without
/// 1D images is left as it is, and so is malformed input (the validator downstream reports it).
pub(crate) fn images_to_texel_buffers(words: &mut Vec<u32>) {
    use crate::spirv_words::{instructions, HEADER};
    let Some(list) = instructions(words) else { return };
    let mut out = Vec::with_capacity(words.len());
    out.extend_from_slice(&words[..HEADER]);
    let mut any_image = false;
    let mut capability_at = None;
    let mut has_sampled_buffer = false;
    for (at, op, count) in list {
        let inst = &words[at..at + count];
        match op {
            OP_CAPABILITY if count == 2 => {
                capability_at.get_or_insert(out.len());
                match inst[1] {
                    // Dropped here; `SampledBuffer` is added below once a 1D image was seen.
                    CAPABILITY_SAMPLED_1D => {}
                    CAPABILITY_SAMPLED_BUFFER => {
                        has_sampled_buffer = true;
                        out.extend_from_slice(inst);
                    }
                    _ => out.extend_from_slice(inst),
                }
            }
            OP_TYPE_IMAGE if count >= 9 && inst[3] == DIM_1D => {
                any_image = true;
                out.extend_from_slice(inst);
                let dim = out.len() - count + 3;
                out[dim] = DIM_BUFFER;
            }
            OP_IMAGE_FETCH if count == 7 && inst[5] == IMAGE_OPERANDS_LOD => {
                out.push((5 << 16) | OP_IMAGE_FETCH);
                out.extend_from_slice(&inst[1..5]);
            }
            _ => out.extend_from_slice(inst),
        }
    }
    if !any_image {
        return;
    }
    if !has_sampled_buffer {
        let Some(insert_at) = capability_at else { return };
        out.splice(insert_at..insert_at, [(2 << 16) | OP_CAPABILITY, CAPABILITY_SAMPLED_BUFFER]);
    }
    *words = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1d_image_becomes_a_texel_buffer() {
        let header = [0x0723_0203, 0x0001_0300, 0, 10, 0];
        let mut words = header.to_vec();
        words.extend([(2 << 16) | OP_CAPABILITY, 1]); // Shader
        words.extend([(2 << 16) | OP_CAPABILITY, CAPABILITY_SAMPLED_1D]);
        words.extend([(9 << 16) | OP_TYPE_IMAGE, 2, 3, DIM_1D, 0, 0, 0, 1, 0]);
        words.extend([(7 << 16) | OP_IMAGE_FETCH, 4, 5, 6, 7, IMAGE_OPERANDS_LOD, 8]);
        images_to_texel_buffers(&mut words);
        let mut want = header.to_vec();
        want.extend([(2 << 16) | OP_CAPABILITY, CAPABILITY_SAMPLED_BUFFER]);
        want.extend([(2 << 16) | OP_CAPABILITY, 1]);
        want.extend([(9 << 16) | OP_TYPE_IMAGE, 2, 3, DIM_BUFFER, 0, 0, 0, 1, 0]);
        want.extend([(5 << 16) | OP_IMAGE_FETCH, 4, 5, 6, 7]);
        assert_eq!(words, want);
    }

    #[test]
    fn modules_without_images_are_unchanged() {
        let mut words = vec![0x0723_0203, 0x0001_0300, 0, 10, 0, (2 << 16) | OP_CAPABILITY, 1];
        let before = words.clone();
        images_to_texel_buffers(&mut words);
        assert_eq!(words, before);
    }
}
