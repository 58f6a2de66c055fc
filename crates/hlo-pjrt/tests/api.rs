//! The plugin through its C table, as JAX drives it: `GetPjrtApi`, a client, a compiled StableHLO
//! module (text and a portable artifact), a buffer transfer, an execution and a read-back.

use std::ffi::{c_char, c_void};
use std::ptr::null_mut;

use hlo_pjrt::api::{Api, ApiFn};
use hlo_pjrt::client::{Buffer, Client, Event, LoadedExecutable};
use hlo_pjrt::error::PjrtError;
use hlo_pjrt::ffi::*;

fn api() -> &'static Api {
    // SAFETY: `GetPjrtApi` returns the process-wide table, which lives for the process.
    unsafe { &*hlo_pjrt::GetPjrtApi() }
}

/// A zeroed args struct with its `struct_size` set, as the C callers build them.
fn args<T>() -> T {
    // SAFETY: every args mirror is plain data (sizes, integers, bools, raw pointers, nullable
    // function pointers), for which all-zero bytes are valid.
    let mut a: T = unsafe { std::mem::zeroed() };
    // SAFETY: every args struct starts with its `usize` struct_size.
    unsafe { *(&mut a as *mut T as *mut usize) = std::mem::size_of::<T>() };
    a
}

/// Calls a table entry on `a`.
fn call<T>(f: ApiFn, a: &mut T) -> Result<(), (i32, String)> {
    // SAFETY: `a` is the args struct the entry expects, live for the call.
    let err = unsafe { f(a as *mut T as *mut c_void) };
    take_error(err)
}

/// The code and message of an error, which is then destroyed.
fn take_error(err: *mut PjrtError) -> Result<(), (i32, String)> {
    if err.is_null() {
        return Ok(());
    }
    let mut code: ErrorGetCodeArgs = args();
    code.error = err;
    assert!(call(api().PJRT_Error_GetCode, &mut code).is_ok());
    let mut msg: ErrorMessageArgs = args();
    msg.error = err;
    // SAFETY: a valid args struct for `PJRT_Error_Message`.
    unsafe { (api().PJRT_Error_Message)(&mut msg as *mut _ as *mut c_void) };
    // SAFETY: the message lives as long as the error, which is destroyed below.
    let text =
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(msg.message as *const u8, msg.message_size) })
            .into_owned();
    let mut destroy: ErrorDestroyArgs = args();
    destroy.error = err;
    // SAFETY: a valid args struct for `PJRT_Error_Destroy`.
    unsafe { (api().PJRT_Error_Destroy)(&mut destroy as *mut _ as *mut c_void) };
    Err((code.code, text))
}

fn str_of(ptr: *const c_char, len: usize) -> String {
    // SAFETY: the plugin returns a pointer and length of a live string.
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }).into_owned()
}

fn await_event(event: *mut Event) {
    assert!(!event.is_null());
    let mut a: EventAwaitArgs = args();
    a.event = event;
    call(api().PJRT_Event_Await, &mut a).unwrap();
    let mut d: EventDestroyArgs = args();
    d.event = event;
    call(api().PJRT_Event_Destroy, &mut d).unwrap();
}

fn upload(client: *mut Client, data: &[f32], dims: &[i64]) -> *mut Buffer {
    let mut a: ClientBufferFromHostBufferArgs = args();
    a.client = client;
    a.data = data.as_ptr() as *const c_void;
    a.buffer_type = 11; // F32
    a.dims = dims.as_ptr();
    a.num_dims = dims.len();
    call(api().PJRT_Client_BufferFromHostBuffer, &mut a).unwrap();
    await_event(a.done_with_host_buffer);
    a.buffer
}

fn download(buffer: *mut Buffer) -> Vec<f32> {
    let mut a: BufferToHostBufferArgs = args();
    a.src = buffer;
    call(api().PJRT_Buffer_ToHostBuffer, &mut a).unwrap();
    let mut host = vec![0f32; a.dst_size / 4];
    a.dst = host.as_mut_ptr() as *mut c_void;
    call(api().PJRT_Buffer_ToHostBuffer, &mut a).unwrap();
    await_event(a.event);
    host
}

fn compile(client: *mut Client, code: &[u8]) -> Result<*mut LoadedExecutable, (i32, String)> {
    let format = "mlir";
    let mut program: Program = args();
    program.code = code.as_ptr() as *mut c_char;
    program.code_size = code.len();
    program.format = format.as_ptr() as *const c_char;
    program.format_size = format.len();
    let mut a: ClientCompileArgs = args();
    a.client = client;
    a.program = &program;
    call(api().PJRT_Client_Compile, &mut a)?;
    Ok(a.executable)
}

fn execute(exe: *mut LoadedExecutable, inputs: &[*mut Buffer], num_outputs: usize) -> Vec<*mut Buffer> {
    execute_with(exe, inputs, num_outputs, null_mut())
}

fn execute_with(
    exe: *mut LoadedExecutable,
    inputs: &[*mut Buffer],
    num_outputs: usize,
    options: *mut ExecuteOptions,
) -> Vec<*mut Buffer> {
    let mut outputs = vec![null_mut::<Buffer>(); num_outputs];
    let arg_list: *const *mut Buffer = inputs.as_ptr();
    let out_list: *mut *mut Buffer = outputs.as_mut_ptr();
    let mut event: *mut Event = null_mut();
    let mut a: LoadedExecutableExecuteArgs = args();
    a.executable = exe;
    a.options = options;
    a.argument_lists = &arg_list;
    a.num_devices = 1;
    a.num_args = inputs.len();
    a.output_lists = &out_list;
    a.device_complete_events = &mut event;
    call(api().PJRT_LoadedExecutable_Execute, &mut a).unwrap();
    await_event(event);
    outputs
}

fn destroy_buffer(buffer: *mut Buffer) {
    let mut a: BufferArgs = args();
    a.buffer = buffer;
    call(api().PJRT_Buffer_Destroy, &mut a).unwrap();
}

const TEXT_MODULE: &str = r#"
module @mul_add {
  func.func public @main(%arg0: tensor<2x3xf32>, %arg1: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
    %0 = stablehlo.multiply %arg0, %arg1 : tensor<2x3xf32>
    %1 = stablehlo.add %0, %arg0 : tensor<2x3xf32>
    return %0, %1 : tensor<2x3xf32>, tensor<2x3xf32>
  }
}
"#;

#[test]
fn client_compile_transfer_execute_read_back() {
    std::env::set_var("HLO_VULKAN_VALIDATION", "1");
    let mut init: PluginInitializeArgs = args();
    call(api().PJRT_Plugin_Initialize, &mut init).unwrap();

    let mut create: ClientCreateArgs = args();
    call(api().PJRT_Client_Create, &mut create).unwrap();
    let client = create.client;

    let mut name: ClientPlatformNameArgs = args();
    name.client = client;
    call(api().PJRT_Client_PlatformName, &mut name).unwrap();
    assert_eq!(str_of(name.platform_name, name.platform_name_size), "vulkan");

    let mut devices: ClientDevicesArgs = args();
    devices.client = client;
    call(api().PJRT_Client_AddressableDevices, &mut devices).unwrap();
    assert_eq!(devices.num_devices, 1);

    let exe = compile(client, TEXT_MODULE.as_bytes()).unwrap();
    let mut get: LoadedExecutableGetExecutableArgs = args();
    get.loaded_executable = exe;
    call(api().PJRT_LoadedExecutable_GetExecutable, &mut get).unwrap();
    let mut count: ExecutableCountArgs = args();
    count.executable = get.executable;
    call(api().PJRT_Executable_NumOutputs, &mut count).unwrap();
    assert_eq!(count.count, 2);
    let mut dims: ExecutableOutputDimensionsArgs = args();
    dims.executable = get.executable;
    call(api().PJRT_Executable_OutputDimensions, &mut dims).unwrap();
    // SAFETY: the plugin's arrays, `num_outputs` ranks and their sum of dimensions.
    let ranks = unsafe { std::slice::from_raw_parts(dims.dim_sizes, dims.num_outputs) };
    assert_eq!(ranks, [2, 2]);
    // SAFETY: as above.
    assert_eq!(unsafe { std::slice::from_raw_parts(dims.dims, 4) }, [2, 3, 2, 3]);
    let mut destroy_exe: ExecutableDestroyArgs = args();
    destroy_exe.executable = get.executable;
    call(api().PJRT_Executable_Destroy, &mut destroy_exe).unwrap();

    let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [0.5f32, -1.0, 2.0, 0.0, 10.0, 3.0];
    let ba = upload(client, &a, &[2, 3]);
    let bb = upload(client, &b, &[2, 3]);
    let outputs = execute(exe, &[ba, bb], 2);
    let product: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
    let sum: Vec<f32> = product.iter().zip(&a).map(|(p, x)| p + x).collect();
    assert_eq!(download(outputs[0]), product);
    assert_eq!(download(outputs[1]), sum);

    // An output stays on the device and feeds the next call.
    let again = execute(exe, &[outputs[1], bb], 2);
    let want: Vec<f32> = sum.iter().zip(&b).map(|(s, y)| s * y).collect();
    assert_eq!(download(again[0]), want);

    // A wrong argument shape is an INVALID_ARGUMENT error, not a crash.
    let wrong = upload(client, &a[..4], &[4]);
    let mut out = [null_mut::<Buffer>(); 2];
    let wrong_args = [wrong, bb];
    let arg_list: *const *mut Buffer = wrong_args.as_ptr();
    let out_list: *mut *mut Buffer = out.as_mut_ptr();
    let mut exec: LoadedExecutableExecuteArgs = args();
    exec.executable = exe;
    exec.argument_lists = &arg_list;
    exec.num_devices = 1;
    exec.num_args = 2;
    exec.output_lists = &out_list;
    let err = call(api().PJRT_LoadedExecutable_Execute, &mut exec).unwrap_err();
    assert_eq!(err.0, code::INVALID_ARGUMENT, "{}", err.1);

    // A portable artifact (MLIR bytecode) written by JAX: `cond` of hlo-stablehlo's fixtures.
    let artifact = include_bytes!("../../hlo-stablehlo/tests/fixtures/cond.mlirbc");
    let cond = compile(client, artifact).unwrap();
    let mut destroy_cond: LoadedExecutableDestroyArgs = args();
    destroy_cond.executable = cond;
    call(api().PJRT_LoadedExecutable_Destroy, &mut destroy_cond).unwrap();

    // An op the Vulkan path cannot lower is an error naming it.
    let bad = "module @bad {\n  func.func public @main(%arg0: tensor<f32>) -> tensor<f32> {\n    %0 = stablehlo.frobnicate %arg0 : tensor<f32>\n    return %0 : tensor<f32>\n  }\n}\n";
    assert!(compile(client, bad.as_bytes()).is_err());

    for buffer in outputs.into_iter().chain(again).chain([ba, bb, wrong]) {
        destroy_buffer(buffer);
    }
    let mut destroy: LoadedExecutableDestroyArgs = args();
    destroy.executable = exe;
    call(api().PJRT_LoadedExecutable_Destroy, &mut destroy).unwrap();
    let mut destroy_client: ClientDestroyArgs = args();
    destroy_client.client = client;
    call(api().PJRT_Client_Destroy, &mut destroy_client).unwrap();
}

fn is_deleted(buffer: *mut Buffer) -> bool {
    let mut a: BufferBoolArgs = args();
    a.buffer = buffer;
    call(api().PJRT_Buffer_IsDeleted, &mut a).unwrap();
    a.value
}

/// `jax.jit(step, donate_argnums=(0, 1))`: each argument's memory becomes the output it aliases.
const DONATING_MODULE: &str = r#"
module @step {
  func.func public @main(%arg0: tensor<3xf32> {tf.aliasing_output = 1 : i32}, %arg1: tensor<3xf32> {jax.buffer_donor = true}) -> (tensor<3xf32>, tensor<3xf32>) {
    %0 = stablehlo.add %arg0, %arg1 : tensor<3xf32>
    %1 = stablehlo.subtract %arg1, %arg0 : tensor<3xf32>
    return %0, %1 : tensor<3xf32>, tensor<3xf32>
  }
}
"#;

#[test]
fn donated_buffers_are_deleted_unless_the_caller_forbids_it() {
    let mut create: ClientCreateArgs = args();
    call(api().PJRT_Client_Create, &mut create).unwrap();
    let client = create.client;
    let exe = compile(client, DONATING_MODULE.as_bytes()).unwrap();
    let (x, v) = ([1.0f32, 2.0, 3.0], [0.5f32, 0.25, -1.0]);

    let (bx, bv) = (upload(client, &x, &[3]), upload(client, &v, &[3]));
    let out = execute(exe, &[bx, bv], 2);
    assert_eq!((is_deleted(bx), is_deleted(bv)), (true, true));
    assert_eq!(download(out[0]), [1.5, 2.25, 2.0]);
    assert_eq!(download(out[1]), [-0.5, -1.75, -4.0]);
    // A donated buffer passed again is an INVALID_ARGUMENT error.
    let stale = [bx, bv];
    let arg_list: *const *mut Buffer = stale.as_ptr();
    let mut sink = [null_mut::<Buffer>(); 2];
    let out_list: *mut *mut Buffer = sink.as_mut_ptr();
    let mut exec: LoadedExecutableExecuteArgs = args();
    exec.executable = exe;
    exec.argument_lists = &arg_list;
    exec.num_devices = 1;
    exec.num_args = 2;
    exec.output_lists = &out_list;
    let err = call(api().PJRT_LoadedExecutable_Execute, &mut exec).unwrap_err();
    assert_eq!(err.0, code::INVALID_ARGUMENT, "{}", err.1);

    // `non_donatable_input_indices` keeps input 1; the same buffer passed twice is never donated.
    let mut options: ExecuteOptions = args();
    let keep = [1i64];
    options.non_donatable_input_indices = keep.as_ptr();
    options.num_non_donatable_input_indices = 1;
    let again = execute_with(exe, &[out[0], out[1]], 2, &mut options);
    assert!(is_deleted(out[0]) && !is_deleted(out[1]));
    assert_eq!(download(again[0]), [1.0, 0.5, -2.0]);
    let twice = execute(exe, &[out[1], out[1]], 2);
    assert!(!is_deleted(out[1]));
    assert_eq!(download(twice[1]), [0.0, 0.0, 0.0]);

    for buffer in [bx, bv].into_iter().chain(out).chain(again).chain(twice) {
        destroy_buffer(buffer);
    }
    let mut destroy: LoadedExecutableDestroyArgs = args();
    destroy.executable = exe;
    call(api().PJRT_LoadedExecutable_Destroy, &mut destroy).unwrap();
    let mut destroy_client: ClientDestroyArgs = args();
    destroy_client.client = client;
    call(api().PJRT_Client_Destroy, &mut destroy_client).unwrap();
}

#[test]
fn table_is_complete_and_unimplemented_entries_say_so() {
    let api = api();
    // 3 words of head, a 24-byte version struct, then one pointer per function of API 0.94.
    assert_eq!(std::mem::size_of::<Api>(), 8 + 8 + 24 + 129 * 8);
    assert_eq!(api.struct_size, std::mem::size_of::<Api>());
    assert_eq!((api.pjrt_api_version.major_version, api.pjrt_api_version.minor_version), (API_MAJOR, API_MINOR));
    let mut a: BufferArgs = args();
    let err = call(api.PJRT_Buffer_UnsafePointer, &mut a).unwrap_err();
    assert_eq!(err.0, code::UNIMPLEMENTED);
    assert!(err.1.contains("PJRT_Buffer_UnsafePointer"), "{}", err.1);
    let names: Vec<&str> = hlo_pjrt::api::UNIMPLEMENTED.iter().copied().filter(|n| !n.is_empty()).collect();
    assert!(names.contains(&"PJRT_TopologyDescription_Create"));
}

#[test]
fn short_args_struct_is_invalid_argument() {
    let mut a: ClientPlatformNameArgs = args();
    a.struct_size = 16;
    let err = call(api().PJRT_Client_PlatformName, &mut a).unwrap_err();
    assert_eq!(err.0, code::INVALID_ARGUMENT);
    assert!(err.1.contains("struct_size"), "{}", err.1);
    // A null handle is an error too.
    let mut a: ClientPlatformNameArgs = args();
    assert_eq!(call(api().PJRT_Client_PlatformName, &mut a).unwrap_err().0, code::INVALID_ARGUMENT);
}

#[test]
fn plugin_attributes_carry_stablehlo_versions() {
    let mut a: PluginAttributesArgs = args();
    call(api().PJRT_Plugin_Attributes, &mut a).unwrap();
    // SAFETY: the plugin's attribute list, `num_attributes` long, lives for the process.
    let attrs = unsafe { std::slice::from_raw_parts(a.attributes, a.num_attributes) };
    let names: Vec<String> = attrs.iter().map(|v| str_of(v.name, v.name_size)).collect();
    assert_eq!(names, ["xla_version", "stablehlo_current_version", "stablehlo_minimum_version"]);
    let (_, current) = hlo_stablehlo::supported_versions();
    // SAFETY: an int64 list of `value_size` elements.
    let got = unsafe { std::slice::from_raw_parts(attrs[1].value.int64_array_value, attrs[1].value_size) };
    assert_eq!(got, [current.0 as i64, current.1 as i64, current.2 as i64]);
}
