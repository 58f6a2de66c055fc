//! Device arrays (issue 12): uploaded once, kept on the device, passed to executions, read back on request,
//! donated for in-place updates; with validation on, any validation message fails the test.

mod common;

use std::sync::Arc;

use common::*;
use hlo_program::{Access, BufferId, BufferRole, Conditional, DeviceCondition, Loop, Program, Step, TripCount};
use hlo_vulkan::{ArrayInput, BuildOptions, Context, DeviceArray, Executable, MemoryReport, VulkanError};

const R: Access = Access::Read;
const W: Access = Access::Write;
const RW: Access = Access::ReadWrite;

fn build(ctx: &Arc<Context>, program: &Program, force_staging: bool) -> Executable {
    Executable::with_options(ctx, program, &BuildOptions { force_staging, ..Default::default() })
        .unwrap_or_else(|err| panic!("build failed: {err}"))
}

/// `next = state + 1` over `n` floats, applied `times` times in a chain of temporaries.
fn inc_program(n: usize, times: u32) -> Program {
    let mut buffers = vec![buffer("state", n, BufferRole::Input(0))];
    let mut steps = Vec::new();
    for i in 0..times {
        buffers.push(buffer(&format!("t{i}"), n, BufferRole::Temp));
        steps.push(dispatch(0, &[i, i + 1], n));
    }
    Program {
        kernels: vec![kernel("inc", INC, &[R, W], 0)],
        buffers,
        steps,
        outputs: ids(&[times]),
        ..Default::default()
    }
}

fn upload_f32(exe: &mut Executable, values: &[f32]) -> DeviceArray {
    exe.upload(&f32_bytes(values)).unwrap()
}

fn read_f32(array: &DeviceArray) -> Vec<f32> {
    f32s(&array.to_host().unwrap())
}

fn single(mut outputs: Vec<DeviceArray>) -> DeviceArray {
    assert_eq!(outputs.len(), 1);
    outputs.pop().unwrap()
}

#[test]
fn upload_execute_read_back() {
    for staging in [false, true] {
        let ctx = context();
        let n = 1000;
        let mut exe = build(&ctx, &add_program(n), staging);
        let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..n).map(|i| 0.5 * i as f32).collect();
        let (da, db) = (upload_f32(&mut exe, &a), upload_f32(&mut exe, &b));
        assert_eq!(da.size_bytes(), 4 * n as u64);
        let out = single(exe.execute(&[&da, &db]).unwrap());
        assert_eq!(read_f32(&out), (0..n).map(|i| 1.5 * i as f32).collect::<Vec<_>>());
        // Reading into a slice works too, and an input is still readable after the execution.
        let mut bytes = vec![0u8; 4 * n];
        da.read(&mut bytes).unwrap();
        assert_eq!(f32s(&bytes), a);
        // The old API still works on the same executable.
        let old = exe.run(&[&f32_bytes(&b), &f32_bytes(&b)]).unwrap();
        assert_eq!(f32s(&old[0]), (0..n).map(|i| i as f32).collect::<Vec<_>>());
        exe.synchronize().unwrap();
        drop((exe, da, db, out));
        assert_clean(&ctx);
    }
}

#[test]
fn one_array_feeds_several_executions_and_executables() {
    let ctx = context();
    let n = 300;
    let mut add = build(&ctx, &add_program(n), false);
    let mut inc = build(&ctx, &inc_program(n, 1), false);
    let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let da = upload_f32(&mut add, &a);
    let twice = single(add.execute(&[&da, &da]).unwrap());
    // Produced by one executable, read by another: ordered on the device by the first one's timeline.
    let plus_one = single(inc.execute(&[&twice]).unwrap());
    let sum = single(add.execute(&[&plus_one, &da]).unwrap());
    let again = single(inc.execute(&[&da]).unwrap());
    assert_eq!(read_f32(&sum), (0..n).map(|i| 3.0 * i as f32 + 1.0).collect::<Vec<_>>());
    assert_eq!(read_f32(&twice), (0..n).map(|i| 2.0 * i as f32).collect::<Vec<_>>());
    assert_eq!(read_f32(&again), (0..n).map(|i| i as f32 + 1.0).collect::<Vec<_>>());
    // The producing executable may go away before its arrays are read.
    let late = single(inc.execute(&[&sum]).unwrap());
    drop(inc);
    assert_eq!(read_f32(&late), (0..n).map(|i| 3.0 * i as f32 + 2.0).collect::<Vec<_>>());
    drop((add, da, twice, plus_one, sum, again, late));
    assert_clean(&ctx);
}

fn same_memory(a: MemoryReport, b: MemoryReport) -> bool {
    a.allocated_bytes == b.allocated_bytes && a.n_allocations == b.n_allocations
}

/// 10,000 executions, each output the next one's input, with no host wait in between; memory returns to the
/// same level after warm-up.
#[test]
fn ten_thousand_chained_executions() {
    let ctx = context();
    let n = 64;
    let mut exe = build(&ctx, &inc_program(n, 1), false);
    let mut state = upload_f32(&mut exe, &vec![0.0; n]);
    let chain = |exe: &mut Executable, state: DeviceArray, calls: usize| {
        let mut state = state;
        for _ in 0..calls {
            state = single(exe.execute(&[&state]).unwrap());
            let stats = exe.last_run_stats();
            assert_eq!(stats.host_waits, 0, "{stats:?}");
        }
        state
    };
    state = chain(&mut exe, state, 100);
    exe.synchronize().unwrap();
    let after_warmup = ctx.memory_report();
    state = chain(&mut exe, state, 10_000);
    exe.synchronize().unwrap();
    assert!(same_memory(ctx.memory_report(), after_warmup), "{:?} vs {after_warmup:?}", ctx.memory_report());
    assert_eq!(read_f32(&state), vec![10_100.0; n]);
    drop((exe, state));
    assert_clean(&ctx);
}

#[test]
fn dropping_arrays_frees_their_memory() {
    for staging in [false, true] {
        let ctx = context();
        let n = 4096;
        let mut exe = build(&ctx, &add_program(n), staging);
        let baseline = ctx.memory_report();
        let a = upload_f32(&mut exe, &vec![1.0; n]);
        let b = upload_f32(&mut exe, &vec![2.0; n]);
        let c = single(exe.execute(&[&a, &b]).unwrap());
        let d = single(exe.execute(&[&c, &b]).unwrap());
        assert!(ctx.memory_report().allocated_bytes >= baseline.allocated_bytes + 4 * 4 * n as u64);
        assert_eq!(read_f32(&d), vec![5.0; n]);
        drop((a, b, c, d));
        exe.synchronize().unwrap();
        assert!(same_memory(ctx.memory_report(), baseline), "{:?} vs {baseline:?}", ctx.memory_report());
        drop(exe);
        assert_clean(&ctx);
    }
}

#[test]
fn dropping_an_array_in_flight_is_safe() {
    for staging in [false, true] {
        let ctx = context();
        // Enough work that the execution is still running when its input is dropped.
        let n = 1 << 20;
        let mut exe = build(&ctx, &inc_program(n, 8), staging);
        let baseline = ctx.memory_report();
        let a: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
        let input = upload_f32(&mut exe, &a);
        // Slow work queued first, so that the next execution has not started when its input is dropped.
        let busy = upload_f32(&mut exe, &vec![0.0; n]);
        let queued: Vec<_> = (0..4).map(|_| exe.execute(&[&busy]).unwrap()).collect();
        drop(busy);
        let out = single(exe.execute(&[&input]).unwrap());
        drop(input);
        drop(queued);
        // The output of an in-flight execution may be dropped too.
        let unread = single(exe.execute(&[&out]).unwrap());
        drop(unread);
        assert_eq!(read_f32(&out), (0..n).map(|i| (i % 1000) as f32 + 8.0).collect::<Vec<_>>());
        drop(out);
        exe.synchronize().unwrap();
        assert!(same_memory(ctx.memory_report(), baseline));
        drop(exe);
        assert_clean(&ctx);
    }
}

#[test]
fn donation_updates_in_place() {
    for staging in [false, true] {
        let ctx = context();
        let n = 256;
        let mut exe = build(&ctx, &inc_program(n, 1), staging);
        let mut state = upload_f32(&mut exe, &vec![0.0; n]);
        let step = |exe: &mut Executable, state: DeviceArray| {
            single(exe.execute_with(vec![ArrayInput::Donate { array: state, output: 0 }]).unwrap())
        };
        state = step(&mut exe, state);
        // Releases the upload's staging buffer (with `staging`).
        exe.synchronize().unwrap();
        let warm = ctx.memory_report();
        for _ in 0..200 {
            state = step(&mut exe, state);
            let now = ctx.memory_report();
            assert!(same_memory(now, warm), "a donated call allocated memory: {now:?} vs {warm:?}");
            assert_eq!(exe.last_run_stats().host_waits, 0);
        }
        assert_eq!(read_f32(&state), vec![201.0; n]);
        // An array donated after being read elsewhere is overwritten only after that read.
        let copy = single(exe.execute(&[&state]).unwrap());
        let state = step(&mut exe, state);
        assert_eq!(read_f32(&copy), vec![202.0; n]);
        assert_eq!(read_f32(&state), vec![202.0; n]);
        drop((exe, state, copy));
        assert_clean(&ctx);
    }
}

#[test]
fn wrong_inputs_are_errors() {
    let ctx = context();
    let n = 8;
    let mut exe = build(&ctx, &add_program(n), false);
    let good = upload_f32(&mut exe, &[1.0; 8]);
    let short = upload_f32(&mut exe, &[1.0; 7]);
    assert!(matches!(exe.execute(&[&good]), Err(VulkanError::InputCount { expected: 2, found: 1 })));
    assert!(matches!(exe.execute(&[&good, &short]), Err(VulkanError::InputSize { index: 1, expected: 32, found: 28 })));
    let mut small = [0u8; 4];
    assert!(matches!(good.read(&mut small), Err(VulkanError::ArrayReadSize { expected: 32, found: 4 })));
    let donate =
        |output| ArrayInput::Donate { array: upload_f32(&mut build(&ctx, &add_program(n), false), &[0.0; 8]), output };
    let err = exe.execute_with(vec![donate(1), (&good).into()]).unwrap_err();
    assert!(matches!(err, VulkanError::Donation { input: 0, output: 1, .. }), "{err}");
    let err = exe.execute_with(vec![donate(0), donate(0)]).unwrap_err();
    assert!(matches!(err, VulkanError::Donation { input: 1, output: 0, .. }), "{err}");

    // An input larger than the output cannot be donated to it.
    let program = Program {
        kernels: vec![kernel("inc", INC, &[R, W], 0)],
        buffers: vec![buffer("a", 16, BufferRole::Input(0)), buffer("b", 8, BufferRole::Temp)],
        steps: vec![dispatch(0, &[0, 1], 8)],
        outputs: ids(&[1]),
        ..Default::default()
    };
    let mut narrowing = build(&ctx, &program, false);
    let wide = upload_f32(&mut narrowing, &[3.0; 16]);
    let err = narrowing.execute_with(vec![ArrayInput::Donate { array: wide, output: 0 }]).unwrap_err();
    assert!(matches!(err, VulkanError::Donation { input: 0, output: 0, .. }), "{err}");

    // An array of another context (another device handle) is refused.
    let other_ctx = context();
    let foreign = upload_f32(&mut build(&other_ctx, &add_program(n), false), &[1.0; 8]);
    assert!(matches!(exe.execute(&[&good, &foreign]), Err(VulkanError::ForeignArray { index: 1 })));
    drop(foreign);
    assert_clean(&other_ctx);

    // The executable still works after rejected calls.
    assert_eq!(read_f32(&single(exe.execute(&[&good, &good]).unwrap())), vec![2.0; 8]);
    drop((exe, narrowing, good, short));
    assert_clean(&ctx);
}

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn structured_programs_run_on_device_arrays() {
    let ctx = context();
    let kernels = vec![kernel("inc", INC_U32, &[RW], 0), kernel("less", LESS, &[R, R, W], 0)];
    // `x = x0; while x < limit { x += 1 }`: a loop the device decides.
    let counting = Program {
        kernels: kernels.clone(),
        buffers: vec![
            word("x0", BufferRole::Input(0)),
            word("limit", BufferRole::Input(1)),
            word("x", BufferRole::Temp),
            word("flag", BufferRole::Temp),
        ],
        steps: vec![
            Step::Copy { src: BufferId(0), dst: BufferId(2), size_bytes: 4 },
            Step::Loop(Loop {
                body: vec![dispatch(0, &[2], 1)],
                trip: TripCount::Device(DeviceCondition { steps: vec![dispatch(1, &[2, 1, 3], 1)], flag: BufferId(3) }),
            }),
        ],
        outputs: ids(&[2]),
        ..Default::default()
    };
    // `out = selector == 0 ? x + 1 : x + 2` with a static loop of 2 in the second branch: gated on the device.
    let branching = Program {
        kernels,
        buffers: vec![
            word("selector", BufferRole::Input(0)),
            word("x", BufferRole::Input(1)),
            word("out", BufferRole::Temp),
        ],
        steps: vec![
            Step::Copy { src: BufferId(1), dst: BufferId(2), size_bytes: 4 },
            Step::Conditional(Conditional {
                selector: BufferId(0),
                branches: vec![
                    vec![dispatch(0, &[2], 1)],
                    vec![Step::Loop(Loop { body: vec![dispatch(0, &[2], 1)], trip: TripCount::Static(2) })],
                ],
            }),
        ],
        outputs: ids(&[2]),
        ..Default::default()
    };
    let mut counting = build(&ctx, &counting, false);
    let mut branching = build(&ctx, &branching, false);
    let x0 = counting.upload(&u32s(&[3])).unwrap();
    let limit = counting.upload(&u32s(&[50])).unwrap();
    let x = single(counting.execute(&[&x0, &limit]).unwrap());
    let (zero, one) = (branching.upload(&u32s(&[0])).unwrap(), branching.upload(&u32s(&[1])).unwrap());
    let y = single(branching.execute(&[&one, &x]).unwrap());
    assert_eq!(branching.last_run_stats().host_waits, 0, "a gated conditional needs no host decision");
    let z = single(branching.execute_with(vec![(&zero).into(), ArrayInput::Donate { array: y, output: 0 }]).unwrap());
    let limit = counting.upload(&u32s(&[80])).unwrap();
    let w = single(counting.execute(&[&z, &limit]).unwrap());
    assert_eq!(x.to_host().unwrap(), u32s(&[50]));
    assert_eq!(z.to_host().unwrap(), u32s(&[53]));
    assert_eq!(w.to_host().unwrap(), u32s(&[80]));
    drop((counting, branching, x0, limit, x, zero, one, z, w));
    assert_clean(&ctx);
}
