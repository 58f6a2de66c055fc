//! End-to-end runs of hand-written programs on the Vulkan device, with validation (synchronization
//! validation included) on; any validation message fails the test.

mod common;

use common::*;
use hlo_program::{Access, BufferId, BufferRole, Dispatch, KernelId, Program, Step};
use hlo_vulkan::{BuildOptions, Executable, VulkanError};

const R: Access = Access::Read;
const W: Access = Access::Write;
const RW: Access = Access::ReadWrite;

fn build(ctx: &std::sync::Arc<hlo_vulkan::Context>, program: &Program, force_staging: bool) -> Executable {
    Executable::with_options(ctx, program, &BuildOptions { force_staging, ..Default::default() })
        .unwrap_or_else(|err| panic!("build failed: {err}"))
}

#[test]
fn elementwise_add() {
    for staging in [false, true] {
        let ctx = context();
        let n = 1000;
        let mut exe = build(&ctx, &add_program(n), staging);
        let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..n).map(|i| 0.5 * i as f32).collect();
        let out = exe.run(&[&f32_bytes(&a), &f32_bytes(&b)]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(f32s(&out[0]), (0..n).map(|i| 1.5 * i as f32).collect::<Vec<_>>());
        // The same command buffer again, with new inputs.
        let out = exe.run(&[&f32_bytes(&b), &f32_bytes(&b)]).unwrap();
        assert_eq!(f32s(&out[0]), (0..n).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(exe.stats().n_dispatches, 1);
        // Staging adds a barrier after the uploads and one before the readback copies.
        assert_eq!(exe.stats().n_barriers, 1 + 2 * staging as usize);
        drop(exe);
        assert_clean(&ctx);
    }
}

#[test]
fn temp_between_dispatches_gets_a_barrier() {
    let ctx = context();
    let n = 300;
    // t = a + 1; out = t + a
    let program = Program {
        kernels: vec![kernel("inc", INC, &[R, W], 0), kernel("add", ADD, &[R, R, W], 0)],
        buffers: vec![
            buffer("a", n, BufferRole::Input(0)),
            buffer("t", n, BufferRole::Temp),
            buffer("out", n, BufferRole::Temp),
        ],
        steps: vec![dispatch(0, &[0, 1], n), dispatch(1, &[1, 0, 2], n)],
        outputs: ids(&[2]),
        ..Default::default()
    };
    let mut exe = build(&ctx, &program, false);
    // One barrier between the dispatches, one for the host read at the end.
    assert_eq!(exe.stats().n_barriers, 2);
    let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let out = exe.run(&[&f32_bytes(&a)]).unwrap();
    assert_eq!(f32s(&out[0]), (0..n).map(|i| 2.0 * i as f32 + 1.0).collect::<Vec<_>>());
    drop(exe);
    assert_clean(&ctx);
}

#[test]
fn independent_dispatches_share_no_barrier() {
    let ctx = context();
    let n = 64;
    let program = Program {
        kernels: vec![kernel("inc", INC, &[R, W], 0)],
        buffers: vec![
            buffer("a", n, BufferRole::Input(0)),
            buffer("x", n, BufferRole::Temp),
            buffer("y", n, BufferRole::Temp),
        ],
        steps: vec![dispatch(0, &[0, 1], n), dispatch(0, &[0, 2], n)],
        outputs: ids(&[1, 2]),
        ..Default::default()
    };
    let exe = build(&ctx, &program, false);
    assert_eq!(exe.stats().n_barriers, 1, "only the final host barrier");
    drop(exe);
    assert_clean(&ctx);
}

#[test]
fn fill_then_accumulate() {
    let ctx = context();
    let n = 130;
    let program = Program {
        kernels: vec![kernel("acc", ACCUMULATE, &[R, RW], 0)],
        buffers: vec![buffer("x", n, BufferRole::Input(0)), buffer("acc", n, BufferRole::Temp)],
        steps: vec![
            Step::Fill { buffer: BufferId(1), word: 1.0f32.to_bits() },
            dispatch(0, &[0, 1], n),
            dispatch(0, &[0, 1], n),
            dispatch(0, &[0, 1], n),
        ],
        outputs: ids(&[1]),
        ..Default::default()
    };
    let mut exe = build(&ctx, &program, false);
    let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
    for _ in 0..3 {
        // The fill resets the accumulator on every run.
        let out = exe.run(&[&f32_bytes(&x)]).unwrap();
        assert_eq!(f32s(&out[0]), (0..n).map(|i| 1.0 + 3.0 * i as f32).collect::<Vec<_>>());
    }
    assert_eq!(exe.stats().n_barriers, 4);
    drop(exe);
    assert_clean(&ctx);
}

#[test]
fn copy_steps() {
    for staging in [false, true] {
        let ctx = context();
        let n = 100;
        // t = copy(a); u[..50] = copy(t[..50]) after u = fill(7.0); out = t + 1
        let program = Program {
            kernels: vec![kernel("inc", INC, &[R, W], 0)],
            buffers: vec![
                buffer("a", n, BufferRole::Input(0)),
                buffer("t", n, BufferRole::Temp),
                buffer("u", n, BufferRole::Temp),
                buffer("out", n, BufferRole::Temp),
            ],
            steps: vec![
                Step::Copy { src: BufferId(0), dst: BufferId(1), size_bytes: 4 * n as u64 },
                Step::Fill { buffer: BufferId(2), word: 7.0f32.to_bits() },
                Step::Copy { src: BufferId(1), dst: BufferId(2), size_bytes: 200 },
                dispatch(0, &[1, 3], n),
            ],
            outputs: ids(&[2, 3]),
            ..Default::default()
        };
        let mut exe = build(&ctx, &program, staging);
        let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let out = exe.run(&[&f32_bytes(&a)]).unwrap();
        let expected_u: Vec<f32> = (0..n).map(|i| if i < 50 { i as f32 } else { 7.0 }).collect();
        assert_eq!(f32s(&out[0]), expected_u);
        assert_eq!(f32s(&out[1]), (0..n).map(|i| i as f32 + 1.0).collect::<Vec<_>>());
        drop(exe);
        assert_clean(&ctx);
    }
}

#[test]
fn push_constants() {
    let ctx = context();
    let n = 200;
    let push = |scale: f32, offset: f32, n: u32| {
        [scale.to_le_bytes(), offset.to_le_bytes(), n.to_le_bytes(), 0u32.to_le_bytes()].concat()
    };
    let step = |out: u32, bytes: Vec<u8>| {
        Step::Dispatch(Dispatch {
            kernel: KernelId(0),
            buffers: ids(&[0, out]),
            windows: Vec::new(),
            groups: [4, 1, 1],
            push_constants: bytes,
        })
    };
    let program = Program {
        kernels: vec![kernel("affine", AFFINE_PUSH, &[R, W], 16)],
        buffers: vec![
            buffer("a", n, BufferRole::Input(0)),
            buffer("x", n, BufferRole::Temp),
            buffer("y", n, BufferRole::Temp),
        ],
        steps: vec![
            Step::Fill { buffer: BufferId(2), word: 0 },
            step(1, push(2.0, 1.0, n as u32)),
            // Only the first half of y is written.
            step(2, push(-1.0, 0.5, n as u32 / 2)),
        ],
        outputs: ids(&[1, 2]),
        ..Default::default()
    };
    let mut exe = build(&ctx, &program, false);
    let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let out = exe.run(&[&f32_bytes(&a)]).unwrap();
    assert_eq!(f32s(&out[0]), (0..n).map(|i| 2.0 * i as f32 + 1.0).collect::<Vec<_>>());
    assert_eq!(f32s(&out[1]), (0..n).map(|i| if i < n / 2 { 0.5 - i as f32 } else { 0.0 }).collect::<Vec<_>>());
    drop(exe);
    assert_clean(&ctx);
}

#[test]
fn chain_of_temps_shares_memory() {
    let ctx = context();
    let n = 4096;
    let bytes = 4 * n as u64;
    // t0 = a + 1, t1 = t0 + 1, ..., t4 = t3 + 1; only t4 is an output.
    let mut buffers = vec![buffer("a", n, BufferRole::Input(0))];
    let mut steps = Vec::new();
    for i in 0..5u32 {
        buffers.push(buffer(&format!("t{i}"), n, BufferRole::Temp));
        steps.push(dispatch(0, &[i, i + 1], n));
    }
    let program = Program {
        kernels: vec![kernel("inc", INC, &[R, W], 0)],
        buffers,
        steps,
        outputs: ids(&[5]),
        ..Default::default()
    };
    let mut exe = build(&ctx, &program, false);
    let stats = exe.stats().clone();
    assert_eq!(stats.temp_logical_bytes, 5 * bytes);
    assert!(stats.temp_assigned_bytes <= 2 * bytes, "{stats}");
    assert_eq!(stats.n_barriers, 5, "four between the dispatches and one for the host");
    let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
    for _ in 0..2 {
        let out = exe.run(&[&f32_bytes(&a)]).unwrap();
        assert_eq!(f32s(&out[0]), (0..n).map(|i| i as f32 + 5.0).collect::<Vec<_>>());
    }
    drop(exe);
    assert_clean(&ctx);
}

#[test]
fn duplicate_outputs_inputs_and_constants_as_outputs() {
    for staging in [false, true] {
        let ctx = context();
        let n = 16;
        let c: Vec<f32> = (0..n).map(|i| 100.0 + i as f32).collect();
        let program = Program {
            kernels: vec![kernel("add", ADD, &[R, R, W], 0)],
            buffers: vec![
                buffer("a", n, BufferRole::Input(0)),
                buffer("c", n, BufferRole::Constant(f32_bytes(&c))),
                buffer("sum", n, BufferRole::Temp),
            ],
            steps: vec![dispatch(0, &[0, 1, 2], n)],
            outputs: ids(&[2, 0, 2, 1, 0]),
            ..Default::default()
        };
        let mut exe = build(&ctx, &program, staging);
        assert_eq!(exe.output_sizes(), vec![64; 5]);
        let a: Vec<f32> = (0..n).map(|i| -(i as f32)).collect();
        let out = exe.run(&[&f32_bytes(&a)]).unwrap();
        assert_eq!(f32s(&out[0]), vec![100.0; n]);
        assert_eq!(out[0], out[2]);
        assert_eq!(f32s(&out[1]), a);
        assert_eq!(out[1], out[4]);
        assert_eq!(f32s(&out[3]), c);
        drop(exe);
        assert_clean(&ctx);
    }
}

#[test]
fn low_level_api_and_feedback_loop() {
    for staging in [false, true] {
        let ctx = context();
        let n = 70;
        // state' = state + 1, fed back on the device.
        let program = Program {
            kernels: vec![kernel("inc", INC, &[R, W], 0)],
            buffers: vec![buffer("state", n, BufferRole::Input(0)), buffer("next", n, BufferRole::Temp)],
            steps: vec![dispatch(0, &[0, 1], n)],
            outputs: ids(&[1]),
            ..Default::default()
        };
        let mut exe = build(&ctx, &program, staging);
        assert_eq!(exe.num_inputs(), 1);
        assert_eq!(exe.input_size(0), Some(4 * n as u64));
        exe.upload_inputs(&[&f32_bytes(&vec![0.0; n])]).unwrap();
        for _ in 0..5 {
            let ticket = exe.submit().unwrap();
            exe.wait(ticket).unwrap();
            exe.copy_output_to_input(0, 0).unwrap();
        }
        let ticket = exe.submit().unwrap();
        exe.wait(ticket).unwrap();
        let mut out = vec![0u8; 4 * n];
        exe.read_output(0, &mut out).unwrap();
        assert_eq!(f32s(&out), vec![6.0; n]);
        // Submitting without waiting in between is allowed; the submissions run in order.
        exe.upload_input(0, &f32_bytes(&vec![10.0; n])).unwrap();
        exe.submit().unwrap();
        exe.copy_output_to_input(0, 0).unwrap();
        exe.submit().unwrap();
        exe.read_output(0, &mut out).unwrap();
        assert_eq!(f32s(&out), vec![12.0; n]);
        drop(exe);
        assert_clean(&ctx);
    }
}

#[test]
fn pipeline_cache_round_trip() {
    let ctx = context();
    let dir = std::env::temp_dir().join(format!("hlo-vulkan-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let program = add_program(64);
    let first = Executable::new(&ctx, &program, Some(&dir)).unwrap();
    assert_eq!(first.stats().pipeline_cache_loaded_bytes, 0);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1, "one cache file per device");
    drop(first);
    let mut second = Executable::new(&ctx, &program, Some(&dir)).unwrap();
    let stats = second.stats().clone();
    eprintln!("second build:\n{stats}");
    assert!(stats.pipeline_cache_loaded_bytes > 0, "{stats}");
    // Lavapipe (Mesa 22.3) keeps no pipeline binaries in its cache, so it reports no hits; drivers that do
    // report them through pipeline-creation feedback.
    if ctx.info().driver_name != "llvmpipe" && stats.pipeline_cache_hits.is_some() {
        assert_eq!(stats.pipeline_cache_hits, Some(1), "{stats}");
    }
    let out = second.run(&[&f32_bytes(&[1.0; 64]), &f32_bytes(&[2.0; 64])]).unwrap();
    assert_eq!(f32s(&out[0]), vec![3.0; 64]);
    // A corrupt file is ignored, not fed to the driver.
    let path = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    std::fs::write(&path, b"garbage that is longer than a pipeline cache header").unwrap();
    let third = Executable::new(&ctx, &program, Some(&dir)).unwrap();
    assert_eq!(third.stats().pipeline_cache_loaded_bytes, 0);
    drop((second, third));
    let _ = std::fs::remove_dir_all(&dir);
    assert_clean(&ctx);
}

#[test]
fn input_errors() {
    let ctx = context();
    let mut exe = build(&ctx, &add_program(8), false);
    let good = f32_bytes(&[1.0; 8]);
    let short = f32_bytes(&[1.0; 7]);
    assert!(matches!(exe.run(&[&good]), Err(VulkanError::InputCount { expected: 2, found: 1 })));
    assert!(matches!(exe.run(&[&good, &short]), Err(VulkanError::InputSize { index: 1, expected: 32, found: 28 })));
    let mut small = [0u8; 4];
    assert!(matches!(exe.read_output(0, &mut small), Err(VulkanError::Output { index: 0, .. })));
    assert!(matches!(exe.read_output(3, &mut small), Err(VulkanError::Output { index: 3, .. })));
    assert!(matches!(exe.copy_output_to_input(0, 5), Err(VulkanError::NoSuchInput { index: 5, .. })));
    // The executable still works after rejected calls.
    let out = exe.run(&[&good, &good]).unwrap();
    assert_eq!(f32s(&out[0]), vec![2.0; 8]);
    drop(exe);
    assert_clean(&ctx);
}

#[test]
fn program_errors() {
    let ctx = context();
    let build_err = |program: &Program| Executable::new(&ctx, program, None).expect_err("build must fail");

    let mut program = add_program(8);
    program.steps = vec![dispatch(0, &[0, 1], 8)];
    let err = build_err(&program);
    assert!(matches!(err, VulkanError::InvalidProgram(hlo_program::ProgramError::BindingCount { .. })), "{err}");

    let mut program = add_program(8);
    program.kernels[0].spirv = vec![1, 2, 3];
    let err = build_err(&program);
    assert!(matches!(&err, VulkanError::InvalidKernel { kernel, .. } if kernel == "add"), "{err}");

    let mut program = add_program(8);
    program.kernels[0].workgroup_size = [4096, 1, 1];
    assert!(matches!(build_err(&program), VulkanError::InvalidKernel { .. }));

    let mut program = add_program(8);
    if let Step::Dispatch(d) = &mut program.steps[0] {
        d.groups = [u32::MAX, 1, 1];
    }
    assert!(matches!(build_err(&program), VulkanError::InvalidStep { step: 0, .. }));

    let max = ctx.caps().max_storage_buffer_range;
    let mut program = add_program(8);
    program.buffers[2].size_bytes = max + 4;
    let err = build_err(&program);
    assert!(matches!(&err, VulkanError::BufferTooLarge { name, .. } if name == "c"), "{err}");
    assert!(err.to_string().contains("maxStorageBufferRange"));

    let mut program = add_program(8);
    program.steps.push(Step::Copy { src: BufferId(2), dst: BufferId(2), size_bytes: 64 });
    assert!(matches!(build_err(&program), VulkanError::InvalidStep { step: 1, .. }));

    assert_clean(&ctx);
}

#[test]
fn validation_layer_reports_errors() {
    // The shader declares three bindings, the kernel only two: the layer must complain. This proves that the
    // "no validation messages" checks in the other tests are not vacuous. Nothing dispatches the broken
    // pipeline: the 1.3.239 layer itself crashes when a dispatch with it is recorded.
    let ctx = context();
    let mut program = add_program(8);
    program.kernels[0].bindings = vec![R, W];
    program.steps = vec![];
    program.outputs = vec![];
    let _ = Executable::new(&ctx, &program, None);
    let messages = ctx.take_validation_messages();
    assert!(!messages.is_empty(), "the validation layer reported nothing");
}

#[test]
fn device_listing_and_selection() {
    let devices = hlo_vulkan::list_devices().unwrap();
    assert!(!devices.is_empty());
    let usable = devices.iter().find(|d| d.unusable.is_none()).expect("a usable device");
    assert!(usable.caps.timeline_semaphore);
    assert!(usable.caps.max_storage_buffer_range > 0);
    assert!(usable.caps.max_compute_work_group_invocations >= 128);

    let by_name = hlo_vulkan::ContextOptions {
        device: hlo_vulkan::DeviceSelector::Name(usable.name.to_uppercase()),
        validation: true,
    };
    let ctx = hlo_vulkan::Context::new(&by_name).unwrap();
    assert_eq!(ctx.info().index, usable.index);
    drop(ctx);

    for selector in [hlo_vulkan::DeviceSelector::Name("no such device".into()), hlo_vulkan::DeviceSelector::Index(99)] {
        let options = hlo_vulkan::ContextOptions { device: selector, validation: false };
        let err = hlo_vulkan::Context::new(&options).expect_err("must fail");
        assert!(matches!(&err, VulkanError::DeviceNotFound { available, .. } if !available.is_empty()), "{err}");
    }
}

#[test]
fn executable_is_send() {
    fn is_send<T: Send>() {}
    fn is_send_sync<T: Send + Sync>() {}
    is_send::<Executable>();
    is_send_sync::<hlo_vulkan::Context>();
}

#[test]
fn profiling_reports_one_time_per_step() {
    let ctx = context();
    let n = 4096;
    let mut program = add_program(n);
    // A second dispatch reading the first one's output, so there are two steps to time.
    program.buffers.push(buffer("d", n, BufferRole::Temp));
    program.steps.push(dispatch(0, &[2, 1, 3], n));
    program.outputs = ids(&[3]);
    let options = BuildOptions { profile: true, ..Default::default() };
    let mut exe = Executable::with_options(&ctx, &program, &options).unwrap();
    assert_eq!(exe.last_step_times().unwrap(), Some(Vec::new()), "no call yet");
    let a = vec![1.0f32; n];
    let out = exe.run(&[&f32_bytes(&a), &f32_bytes(&a)]).unwrap();
    assert_eq!(f32s(&out[0]), vec![3.0; n]);
    let times = exe.last_step_times().unwrap().expect("built with profile");
    assert_eq!(times.iter().map(|t| (t.step, t.name.as_str())).collect::<Vec<_>>(), [(0, "add"), (1, "add")]);
    assert!(times.iter().all(|t| t.nanos.is_finite() && t.nanos >= 0.0), "{times:?}");
    // Without profiling there is nothing to report.
    let plain = build(&ctx, &program, false);
    assert_eq!(plain.last_step_times().unwrap(), None);
    drop((exe, plain));
    assert_clean(&ctx);
}

/// A kernel that stores 2 into its status buffer when `a[0] > 0` (check 1 failed).
const CHECKED: &str = r#"
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> status: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    out[gid.x] = a[gid.x];
    if a[0] > 0.0 { status[0] = 2u; }
}
"#;

#[test]
fn failed_device_checks_fail_the_run() {
    let ctx = context();
    let n = 64;
    let program = Program {
        kernels: vec![kernel("checked", CHECKED, &[R, W, RW], 0)],
        buffers: vec![
            buffer("a", n, BufferRole::Input(0)),
            buffer("out", n, BufferRole::Temp),
            buffer("status", 1, BufferRole::Temp),
        ],
        steps: vec![Step::Fill { buffer: BufferId(2), word: 0 }, dispatch(0, &[0, 1, 2], n)],
        outputs: ids(&[1]),
        checks: vec![hlo_program::StatusBuffer {
            buffer: BufferId(2),
            kernel: "checked".into(),
            messages: vec!["first".into(), "the second check failed".into()],
        }],
    };
    for staging in [false, true] {
        let mut exe = build(&ctx, &program, staging);
        let bad: Vec<f32> = (0..n).map(|i| i as f32 + 1.0).collect();
        let good: Vec<f32> = (0..n).map(|i| -(i as f32)).collect();
        match exe.run(&[&f32_bytes(&bad)]) {
            Err(VulkanError::DeviceCheckFailed { kernel, message }) => {
                assert_eq!((kernel.as_str(), message.as_str()), ("checked", "the second check failed"))
            }
            other => panic!("expected a failed device check, got {other:?}"),
        }
        // The status is zeroed at the start of every run: a good run after a bad one succeeds.
        assert_eq!(f32s(&exe.run(&[&f32_bytes(&good)]).unwrap()[0]), good);
        drop(exe);
    }
    assert_clean(&ctx);
    // A status buffer that is not zeroed first is a compiler bug.
    let mut broken = program.clone();
    broken.steps.remove(0);
    assert!(matches!(
        Executable::with_options(&ctx, &broken, &BuildOptions::default()),
        Err(VulkanError::InvalidProgram(hlo_program::ProgramError::BadStatus { .. }))
    ));
}

/// 10,000 chained executions on device-resident state (each call's output copied into its input
/// on the device, no host wait in between): the result is exact, and neither device memory nor
/// the executable's recorded command buffers grow with the number of calls.
#[test]
fn ten_thousand_chained_executions_do_not_grow_memory() {
    let ctx = context();
    let n = 64;
    let program = Program {
        kernels: vec![kernel("inc", INC, &[R, W], 0)],
        buffers: vec![buffer("state", n, BufferRole::Input(0)), buffer("next", n, BufferRole::Temp)],
        steps: vec![dispatch(0, &[0, 1], n)],
        outputs: ids(&[1]),
        ..Default::default()
    };
    let mut exe = build(&ctx, &program, false);
    exe.upload_inputs(&[&f32_bytes(&vec![0.0; n])]).unwrap();
    let chain = |exe: &mut Executable, calls: usize| {
        for _ in 0..calls {
            exe.submit().unwrap();
            exe.copy_output_to_input(0, 0).unwrap();
        }
    };
    chain(&mut exe, 100);
    let ticket = exe.submit().unwrap();
    exe.wait(ticket).unwrap();
    let after_warmup = ctx.memory_report();
    chain(&mut exe, 10_000);
    let ticket = exe.submit().unwrap();
    exe.wait(ticket).unwrap();
    let after = ctx.memory_report();
    let mut out = vec![0u8; 4 * n];
    exe.read_output(0, &mut out).unwrap();
    // 100 fed-back calls, one unfed, 10,000 fed back from the same state, one more: 10,101.
    assert_eq!(f32s(&out), vec![10_101.0; n]);
    assert_eq!(after.allocated_bytes, after_warmup.allocated_bytes, "device memory grew over 10,000 calls");
    assert_eq!(after.n_allocations, after_warmup.n_allocations);
    drop(exe);
    assert_clean(&ctx);
}
