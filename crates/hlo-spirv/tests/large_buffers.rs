//! Arrays larger than one storage-buffer binding may be (`maxStorageBufferRange`, 128 MiB on
//! lavapipe) are bound as several windows of one buffer. Here the target claims a range of 4 KiB,
//! so arrays of a few thousand elements take 2 to 6 windows, and every kind of kernel that
//! reads or writes through windows runs on lavapipe against the interpreter: elementwise
//! outputs, reductions and gathers reading a windowed input, and scatters (atomic add, a
//! compare-exchange combiner, overwrite) writing into a windowed operand. Kernels that index
//! buffers directly (sorting) must refuse such arrays with `Unsupported`, never answer.

mod common;
use common::*;
use hlo_spirv::{CodegenError, Target};

const RANGE: u64 = 4096;

fn small_range_target() -> Target {
    Target { max_storage_buffer_range: RANGE, ..target_from_caps(vulkan().caps()) }
}

fn f32_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn s32_bytes(values: impl IntoIterator<Item = i32>) -> Vec<u8> {
    values.into_iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Compiles `hlo` for the small-range target, requires some dispatch to bind windows, runs it and
/// compares every output with the interpreter (floats within `tol`, the rest exactly).
fn windows_match_interp(hlo: &str, inputs: &[Vec<u8>], tol: f64) {
    let m = parse_and_fuse(hlo);
    let c = hlo_spirv::compile(&m, &small_range_target()).unwrap_or_else(|e| panic!("compile: {e}\n{hlo}"));
    check_spirv(&c);
    let mut windowed = 0;
    hlo_program::walk_steps(&c.program.steps, &mut |s| {
        if let hlo_program::Step::Dispatch(d) = s {
            windowed += d.windows.iter().flatten().count();
        }
    });
    assert!(windowed >= 2, "no dispatch binds windows\n{}", c.wgsl());
    let got = run_vulkan(&vulkan(), &c, inputs);
    let want = run_interp(&parse(hlo), inputs);
    for (k, io) in c.outputs.iter().enumerate() {
        compare(io.dtype, &got[k], &want[k], tol).unwrap_or_else(|e| panic!("output {k}: {e}\n{hlo}"));
    }
}

/// An elementwise output of 5000 f32 (5 windows of 1024, the last 904 long), its sum, and an s16
/// and u8 conversion of it (other element widths, other window lengths).
#[test]
fn elementwise_outputs_and_reductions_through_windows() {
    let hlo = r#"HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY e {
  x = f32[5000] parameter(0)
  two = f32[] constant(2)
  tb = f32[5000] broadcast(two), dimensions={}
  one = f32[] constant(1)
  ob = f32[5000] broadcast(one), dimensions={}
  m = f32[5000] multiply(x, tb)
  y = f32[5000] add(m, ob)
  zero = f32[] constant(0)
  s = f32[] reduce(y, zero), dimensions={0}, to_apply=add
  r = f32[50,100] reshape(y)
  rows = f32[50] reduce(r, zero), dimensions={1}, to_apply=add
  h = s16[5000] convert(y)
  b = u8[5000] convert(y)
  ROOT t = (f32[5000], f32[], f32[50], s16[5000], u8[5000]) tuple(y, s, rows, h, b)
}
"#;
    windows_match_interp(hlo, &[f32_bytes((0..5000).map(|k| (k % 97) as f32 * 0.25))], 1e-6);
}

/// A gather from a windowed input at indices in every window, clamped ones included.
#[test]
fn gathers_read_every_window() {
    let hlo = r#"HloModule m
ENTRY e {
  x = f32[3000] parameter(0)
  i = s32[40,1] parameter(1)
  ROOT g = f32[40] gather(x, i), offset_dims={}, collapsed_slice_dims={0}, start_index_map={0}, index_vector_dim=1, slice_sizes={1}
}
"#;
    let idx: Vec<i32> = (0..40)
        .map(|k| {
            if k == 39 {
                5000
            } else if k == 38 {
                -3
            } else {
                k * 77
            }
        })
        .collect();
    windows_match_interp(hlo, &[f32_bytes((0..3000).map(|k| k as f32)), s32_bytes(idx)], 0.0);
}

/// Scatters into a windowed f32[3000] operand: add (atomic where the device has float atomics),
/// max (a compare-exchange loop) and overwrite with unique indices; indices land in every window,
/// repeat, and run out of bounds (dropped).
#[test]
fn scatters_write_every_window() {
    for (combiner, body, unique) in [
        ("add", "ROOT s = f32[] add(a, b)", false),
        ("max", "ROOT s = f32[] maximum(a, b)", false),
        ("overwrite", "ROOT s = f32[] add(b, b)", true),
    ] {
        let hlo = format!(
            r#"HloModule m
comb {{
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  {body}
}}
ENTRY e {{
  x = f32[3000] parameter(0)
  i = s32[64,1] parameter(1)
  u = f32[64] parameter(2)
  ROOT s = f32[3000] scatter(x, i, u), update_window_dims={{}}, inserted_window_dims={{0}}, scatter_dims_to_operand_dims={{0}}, index_vector_dim=1, indices_are_sorted=false, unique_indices={unique}, to_apply=comb
}}
"#
        );
        let idx: Vec<i32> = (0..64)
            .map(|k| match (k, unique) {
                (63, _) => 3000,
                (62, _) => -1,
                (_, true) => k * 47,
                (_, false) => (k % 20) * 149,
            })
            .collect();
        let updates = f32_bytes((0..64).map(|k| k as f32 - 20.0));
        let x = f32_bytes((0..3000).map(|k| (k % 13) as f32));
        windows_match_interp(&hlo, &[x, s32_bytes(idx), updates], 0.0);
        let _ = combiner;
    }
}

/// Sorting indexes its buffers directly: an array over the range is refused, by name.
#[test]
fn kernels_that_index_directly_refuse_windowed_arrays() {
    let hlo = r#"HloModule m
lt {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT c = pred[] compare(a, b), direction=LT
}
ENTRY e {
  x = f32[5000] parameter(0)
  ROOT s = f32[5000] sort(x), dimensions={0}, to_apply=lt
}
"#;
    match hlo_spirv::compile(&parse_and_fuse(hlo), &small_range_target()) {
        Err(CodegenError::Unsupported { reason, .. }) => {
            assert!(reason.contains("maxStorageBufferRange") || reason.contains("one binding"), "{reason}")
        }
        Err(e) => panic!("expected Unsupported, got {e}"),
        Ok(_) => panic!("a sort over 5000 f32 compiled for a 4 KiB binding range"),
    }
}

/// Windows count against the device's storage-buffer bindings per kernel: an array that would
/// need more windows than that, or a fusion whose windows add up past it, is refused by name.
#[test]
fn windows_beyond_the_binding_limit_are_refused() {
    let tiny = Target { max_storage_buffer_range: 256, ..small_range_target() };
    let one_array = "HloModule m\nENTRY e {\n  x = f32[5000] parameter(0)\n  ROOT y = f32[5000] negate(x)\n}\n";
    let mut sum = String::from("HloModule m\nENTRY e {\n");
    for k in 0..9 {
        sum.push_str(&format!("  x{k} = f32[5000] parameter({k})\n"));
    }
    sum.push_str("  a0 = f32[5000] add(x0, x1)\n");
    for k in 2..9 {
        sum.push_str(&format!("  a{} = f32[5000] add(a{}, x{k})\n", k - 1, k - 2));
    }
    sum.push_str("  ROOT r = f32[5000] negate(a7)\n}\n");
    for (hlo, target, words) in
        [(one_array, &tiny, "windows of 256 bytes"), (sum.as_str(), &small_range_target(), "storage buffers")]
    {
        match hlo_spirv::compile(&parse_and_fuse(hlo), target) {
            Err(CodegenError::Unsupported { reason, .. }) => assert!(reason.contains(words), "{reason}"),
            Err(e) => panic!("expected Unsupported, got {e}"),
            Ok(_) => panic!("compiled past the binding limit:\n{hlo}"),
        }
    }
}
