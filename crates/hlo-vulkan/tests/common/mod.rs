//! Shared test helpers: a validated context, WGSL kernels compiled with naga, byte conversions.
#![allow(dead_code)]

use std::sync::Arc;

use hlo_program::{Access, Buffer, BufferId, BufferRole, Dispatch, Kernel, KernelId, Step};
use hlo_vulkan::{Context, ContextOptions};

/// A context with validation on; tests must never run without it.
pub fn context() -> Arc<Context> {
    let ctx = Context::new(&ContextOptions { validation: true, ..Default::default() })
        .unwrap_or_else(|err| panic!("cannot open a Vulkan device: {err}"));
    assert!(ctx.validation_enabled());
    ctx
}

/// Fails the test if the validation layer reported anything.
pub fn assert_clean(ctx: &Context) {
    let messages = ctx.take_validation_messages();
    assert!(
        messages.is_empty(),
        "validation messages:\n{}",
        messages.iter().map(|m| format!("  {m}\n")).collect::<String>()
    );
}

/// Compiles a WGSL compute shader with entry point `main` to SPIR-V 1.3.
pub fn spirv(wgsl: &str) -> Vec<u32> {
    let module = naga::front::wgsl::parse_str(wgsl).unwrap_or_else(|e| panic!("{}", e.emit_to_string(wgsl)));
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::IMMEDIATES)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string(wgsl)));
    let options = naga::back::spv::Options { lang_version: (1, 3), ..Default::default() };
    let pipeline =
        naga::back::spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: "main".into() };
    naga::back::spv::write_vec(&module, &info, &options, Some(&pipeline)).expect("spv-out")
}

pub fn kernel(name: &str, wgsl: &str, bindings: &[Access], push_constant_bytes: u32) -> Kernel {
    Kernel {
        name: name.into(),
        spirv: spirv(wgsl),
        entry_point: "main".into(),
        bindings: bindings.to_vec(),
        workgroup_size: [64, 1, 1],
        push_constant_bytes,
        cache_key: 0,
    }
}

/// `c[i] = a[i] + b[i]`.
pub const ADD: &str = r#"
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i < arrayLength(&c) { c[i] = a[i] + b[i]; }
}
"#;

/// `b[i] = a[i] + 1`.
pub const INC: &str = r#"
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i < arrayLength(&b) { b[i] = a[i] + 1.0; }
}
"#;

/// `acc[i] += x[i]` (acc is read-write).
pub const ACCUMULATE: &str = r#"
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i < arrayLength(&acc) { acc[i] = acc[i] + x[i]; }
}
"#;

/// `b[i] = a[i] * pc.scale + pc.offset` for `i < pc.n`.
pub const AFFINE_PUSH: &str = r#"
struct Params { scale: f32, offset: f32, n: u32, pad: u32 }
var<immediate> pc: Params;
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i < pc.n { b[i] = a[i] * pc.scale + pc.offset; }
}
"#;

pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

pub fn buffer(name: &str, n_f32: usize, role: BufferRole) -> Buffer {
    Buffer { size_bytes: 4 * n_f32 as u64, role, name: name.into() }
}

/// A dispatch of `kernel` over `n` elements with 64-wide workgroups.
pub fn dispatch(kernel: u32, buffers: &[u32], n: usize) -> Step {
    Step::Dispatch(Dispatch {
        kernel: KernelId(kernel),
        buffers: buffers.iter().map(|&b| BufferId(b)).collect(),
        windows: Vec::new(),
        groups: [n.div_ceil(64) as u32, 1, 1],
        push_constants: Vec::new(),
    })
}

pub fn ids(ids: &[u32]) -> Vec<BufferId> {
    ids.iter().map(|&b| BufferId(b)).collect()
}

/// `x[0] += 1` on a u32 word.
pub const INC_U32: &str = r#"
@group(0) @binding(0) var<storage, read_write> x: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) { if id.x == 0u { x[0] = x[0] + 1u; } }
"#;

/// `flag[0] = x[0] < limit[0]`.
pub const LESS: &str = r#"
@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read> limit: array<u32>;
@group(0) @binding(2) var<storage, read_write> flag: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x == 0u { flag[0] = select(0u, 1u, x[0] < limit[0]); }
}
"#;

/// A one-word (u32) buffer.
pub fn word(name: &str, role: BufferRole) -> Buffer {
    Buffer { size_bytes: 4, role, name: name.into() }
}

/// `c = a + b` over `n` floats.
pub fn add_program(n: usize) -> hlo_program::Program {
    hlo_program::Program {
        kernels: vec![kernel("add", ADD, &[Access::Read, Access::Read, Access::Write], 0)],
        buffers: vec![
            buffer("a", n, BufferRole::Input(0)),
            buffer("b", n, BufferRole::Input(1)),
            buffer("c", n, BufferRole::Temp),
        ],
        steps: vec![dispatch(0, &[0, 1, 2], n)],
        outputs: ids(&[2]),
        ..Default::default()
    }
}
