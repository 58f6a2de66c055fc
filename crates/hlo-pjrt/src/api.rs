//! The `PJRT_Api` table and the `extern "C"` function behind each entry.
//!
//! Every entry goes through [`call`]: a null or too-short args struct is an INVALID_ARGUMENT
//! error, a Rust error becomes a `PJRT_Error`, and a panic is caught at the boundary and
//! reported as INTERNAL. Entries this plugin does not implement return UNIMPLEMENTED naming the
//! function; no entry of the table is null.

#![allow(non_snake_case)]

use std::ffi::{c_char, c_void};
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use crate::client::{
    Buffer, Client, Device, DeviceDescription, Event, Executable, LoadedExecutable, Memory, PluginAttributes,
    PLATFORM_NAME,
};
use crate::error::{Error, PjrtError, Result};
use crate::ffi::*;
use crate::types;

/// An entry of the table: every PJRT function takes a pointer to its args struct.
pub type ApiFn = unsafe extern "C" fn(args: *mut c_void) -> *mut PjrtError;
/// `PJRT_Error_Destroy` and `PJRT_Error_Message` return nothing.
pub type VoidFn = unsafe extern "C" fn(args: *mut c_void);

/// Runs `f` on the caller's args struct, with the checks every entry shares.
fn call<A: Args>(name: &str, raw: *mut c_void, f: impl FnOnce(&mut A) -> Result<()>) -> *mut PjrtError {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        if raw.is_null() {
            return Err(Error::InvalidArgument(format!("{name}: the args pointer is null")));
        }
        // SAFETY: every PJRT args struct starts with its `size_t struct_size`, which the caller sets.
        let size = unsafe { *(raw as *const usize) };
        if size < A::REQUIRED {
            return Err(Error::InvalidArgument(format!(
                "{name}: args struct_size is {size}, this plugin needs at least {}",
                A::REQUIRED
            )));
        }
        // SAFETY: the caller's struct is at least `A::REQUIRED` bytes, which covers every field of the
        // mirror `A` (each mirror ends at the last field the plugin uses), and the caller lends it to us
        // exclusively for the duration of the call.
        let args = unsafe { &mut *(raw as *mut A) };
        f(args)
    }));
    match outcome {
        Ok(Ok(())) => std::ptr::null_mut(),
        Ok(Err(err)) => PjrtError::from(err).into_raw(),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            PjrtError::new(code::INTERNAL, format!("{name}: internal error in the Vulkan plugin: {what}")).into_raw()
        }
    }
}

/// The object behind a handle the caller passed.
fn handle<'a, T>(ptr: *mut T, what: &str) -> Result<&'a T> {
    if ptr.is_null() {
        return Err(Error::InvalidArgument(format!("the {what} handle is null")));
    }
    // SAFETY: handles are pointers this plugin handed out (`Box::into_raw` or a pointer into a live
    // client); the PJRT contract is that the caller passes only live ones.
    Ok(unsafe { &*ptr })
}

/// A string out-parameter: pointer and length of bytes owned by a live object.
fn out_str(s: &str) -> (*const c_char, usize) {
    (s.as_ptr() as *const c_char, s.len())
}

/// The caller's bytes `(ptr, len)`; empty for a null pointer with length 0.
fn in_bytes<'a>(ptr: *const c_char, len: usize, what: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::InvalidArgument(format!("{what} is null but its size is {len}")));
    }
    // SAFETY: the caller promises `len` readable bytes at `ptr` for the duration of the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr as *const u8, len) })
}

/// The caller's array `(ptr, len)`.
fn in_slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::InvalidArgument(format!("{what} is null but has {len} elements")));
    }
    // SAFETY: the caller promises `len` elements at `ptr` for the duration of the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

fn new_event(error: Option<PjrtError>) -> *mut Event {
    Box::into_raw(Box::new(Event { error }))
}

/// Frees an object this plugin handed out with `Box::into_raw`.
fn destroy<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: `ptr` came from `Box::into_raw` in this plugin and the caller destroys it once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// Defines an implemented entry: `$body` sees the caller's args struct as `$args: &mut $ty`.
macro_rules! entry {
    ($name:ident($args:ident: $ty:ty) $body:block) => {
        unsafe extern "C" fn $name(raw: *mut c_void) -> *mut PjrtError {
            call::<$ty>(stringify!($name), raw, |$args: &mut $ty| -> Result<()> { $body })
        }
    };
}

// ----------------------------------- Errors -----------------------------------

unsafe extern "C" fn PJRT_Error_Destroy(raw: *mut c_void) {
    let error = call::<ErrorDestroyArgs>("PJRT_Error_Destroy", raw, |args| {
        destroy(args.error);
        Ok(())
    });
    destroy(error);
}

unsafe extern "C" fn PJRT_Error_Message(raw: *mut c_void) {
    let error = call::<ErrorMessageArgs>("PJRT_Error_Message", raw, |args| {
        let error = handle(args.error as *mut PjrtError, "error")?;
        (args.message, args.message_size) = out_str(&error.message);
        Ok(())
    });
    destroy(error);
}

entry!(PJRT_Error_GetCode(args: ErrorGetCodeArgs) {
    args.code = handle(args.error as *mut PjrtError, "error")?.code;
    Ok(())
});

// ----------------------------------- Plugin -----------------------------------

entry!(PJRT_Plugin_Initialize(_args: PluginInitializeArgs) { Ok(()) });

/// Lives for the process, as the header asks of plugin attributes.
struct StaticAttributes(PluginAttributes);
// SAFETY: the attributes are written once, then only read; their pointers point into boxes they own.
unsafe impl Sync for StaticAttributes {}
// SAFETY: as above; nothing in them is tied to a thread.
unsafe impl Send for StaticAttributes {}
static ATTRIBUTES: OnceLock<StaticAttributes> = OnceLock::new();

entry!(PJRT_Plugin_Attributes(args: PluginAttributesArgs) {
    let attributes = &ATTRIBUTES.get_or_init(|| StaticAttributes(PluginAttributes::new())).0;
    args.attributes = attributes.values.as_ptr();
    args.num_attributes = attributes.values.len();
    Ok(())
});

// ----------------------------------- Events -----------------------------------

entry!(PJRT_Event_Destroy(args: EventDestroyArgs) {
    destroy(args.event);
    Ok(())
});

entry!(PJRT_Event_IsReady(args: EventIsReadyArgs) {
    handle(args.event, "event")?;
    args.is_ready = true;
    Ok(())
});

/// The event's error as a new `PJRT_Error` (or none): what `Error` and `Await` return.
fn event_status(event: *mut Event) -> Result<()> {
    match &handle(event, "event")?.error {
        None => Ok(()),
        Some(err) => Err(match err.code {
            code::UNIMPLEMENTED => Error::Unimplemented(err.message.clone()),
            code::INVALID_ARGUMENT => Error::InvalidArgument(err.message.clone()),
            _ => Error::Internal(err.message.clone()),
        }),
    }
}

entry!(PJRT_Event_Error(args: EventErrorArgs) { event_status(args.event) });

entry!(PJRT_Event_Await(args: EventAwaitArgs) { event_status(args.event) });

entry!(PJRT_Event_OnReady(args: EventOnReadyArgs) {
    let event = handle(args.event, "event")?;
    let callback = args.callback.ok_or_else(|| Error::InvalidArgument("the callback is null".into()))?;
    let error = event.error.clone().map_or(std::ptr::null_mut(), PjrtError::into_raw);
    // SAFETY: the caller's callback, called once with an error it now owns and its own argument.
    unsafe { callback(error, args.user_arg) };
    Ok(())
});

// ----------------------------------- Client -----------------------------------

entry!(PJRT_Client_Create(args: ClientCreateArgs) {
    args.client = Box::into_raw(Client::new()?);
    Ok(())
});

entry!(PJRT_Client_Destroy(args: ClientDestroyArgs) {
    destroy(args.client);
    Ok(())
});

entry!(PJRT_Client_PlatformName(args: ClientPlatformNameArgs) {
    handle(args.client, "client")?;
    (args.platform_name, args.platform_name_size) = out_str(PLATFORM_NAME);
    Ok(())
});

entry!(PJRT_Client_ProcessIndex(args: ClientProcessIndexArgs) {
    handle(args.client, "client")?;
    args.process_index = 0;
    Ok(())
});

entry!(PJRT_Client_PlatformVersion(args: ClientPlatformVersionArgs) {
    let client = handle(args.client, "client")?;
    (args.platform_version, args.platform_version_size) = out_str(&client.platform_version);
    Ok(())
});

entry!(PJRT_Client_Devices(args: ClientDevicesArgs) {
    let client = handle(args.client, "client")?;
    (args.devices, args.num_devices) = (client.devices.as_ptr(), client.devices.len());
    Ok(())
});

entry!(PJRT_Client_AddressableDevices(args: ClientDevicesArgs) {
    let client = handle(args.client, "client")?;
    (args.devices, args.num_devices) = (client.devices.as_ptr(), client.devices.len());
    Ok(())
});

entry!(PJRT_Client_LookupDevice(args: ClientLookupDeviceArgs) {
    let client = handle(args.client, "client")?;
    if args.id != client.device.description.id {
        return Err(Error::NotFound(format!("no Vulkan device with id {}", args.id)));
    }
    args.device = client.device_ptr();
    Ok(())
});

entry!(PJRT_Client_LookupAddressableDevice(args: ClientLookupAddressableDeviceArgs) {
    let client = handle(args.client, "client")?;
    if args.local_hardware_id != 0 {
        return Err(Error::NotFound(format!("no Vulkan device with local hardware id {}", args.local_hardware_id)));
    }
    args.addressable_device = client.device_ptr();
    Ok(())
});

entry!(PJRT_Client_AddressableMemories(args: ClientAddressableMemoriesArgs) {
    let client = handle(args.client, "client")?;
    (args.addressable_memories, args.num_addressable_memories) = (client.memories.as_ptr(), client.memories.len());
    Ok(())
});

entry!(PJRT_Client_Compile(args: ClientCompileArgs) {
    let client = handle(args.client, "client")?;
    let program = handle(args.program as *mut Program, "program")?;
    let format = in_bytes(program.format, program.format_size, "program format")?;
    let code = in_bytes(program.code, program.code_size, "program code")?;
    let executable = client.compile(format, code)?;
    args.executable = Box::into_raw(Box::new(executable));
    Ok(())
});

entry!(PJRT_Client_DefaultDeviceAssignment(args: ClientDefaultDeviceAssignmentArgs) {
    handle(args.client, "client")?;
    let n = i64::from(args.num_replicas) * i64::from(args.num_partitions);
    if n != 1 {
        return Err(Error::InvalidArgument(format!(
            "{} replicas x {} partitions: the Vulkan plugin has one device",
            args.num_replicas, args.num_partitions
        )));
    }
    if args.default_assignment_size < 1 || args.default_assignment.is_null() {
        return Err(Error::InvalidArgument("the default assignment array is too small".into()));
    }
    // SAFETY: the caller's array holds `default_assignment_size` (>= 1) ints.
    unsafe { *args.default_assignment = 0 };
    Ok(())
});

entry!(PJRT_Client_BufferFromHostBuffer(args: ClientBufferFromHostBufferArgs) {
    let client = handle(args.client, "client")?;
    let dtype = types::from_pjrt(args.buffer_type)
        .ok_or_else(|| Error::Unimplemented(format!("buffer element type {} is not supported", args.buffer_type)))?;
    let dims = in_slice(args.dims, args.num_dims, "dims")?;
    if !args.device_layout.is_null() {
        check_row_major(args.device_layout, dims.len())?;
    }
    let strides = in_slice(args.byte_strides, args.num_byte_strides, "byte_strides")?;
    let host = gather_host(args.data as *const u8, dtype.byte_size(), dims, strides)?;
    let buffer = client.buffer_from_host(dtype, dims, &host)?;
    // The data was copied during the call, whatever the semantics asked.
    args.done_with_host_buffer = new_event(None);
    args.buffer = Box::into_raw(Box::new(buffer));
    Ok(())
});

/// The host array at `data` as dense row-major bytes: copied as is without strides (or with dense
/// ones), element by element otherwise.
fn gather_host(data: *const u8, elem: usize, dims: &[i64], strides: &[i64]) -> Result<Vec<u8>> {
    if dims.iter().any(|&d| d < 0) {
        return Err(Error::InvalidArgument(format!("negative dimension in {dims:?}")));
    }
    let count: usize = dims.iter().map(|&d| d as usize).product();
    let total = count * elem;
    if !strides.is_empty() && strides.len() != dims.len() {
        return Err(Error::InvalidArgument(format!("{} byte strides for {} dimensions", strides.len(), dims.len())));
    }
    let mut dense = vec![0i64; dims.len()];
    let mut acc = elem as i64;
    for k in (0..dims.len()).rev() {
        dense[k] = acc;
        acc *= dims[k];
    }
    if total == 0 {
        return Ok(Vec::new());
    }
    if data.is_null() {
        return Err(Error::InvalidArgument("the host data pointer is null".into()));
    }
    // Dimensions of size 1 may have any stride.
    let is_dense = strides.is_empty() || strides.iter().zip(&dense).zip(dims).all(|((s, d), &n)| s == d || n == 1);
    if is_dense {
        // SAFETY: the caller's dense array holds `count` elements of `elem` bytes.
        return Ok(unsafe { std::slice::from_raw_parts(data, total) }.to_vec());
    }
    let mut out = Vec::with_capacity(total);
    let mut index = vec![0i64; dims.len()];
    for _ in 0..count {
        let offset: i64 = index.iter().zip(strides).map(|(i, s)| i * s).sum();
        // SAFETY: the caller's strides describe its array: every index within `dims` lands on an element
        // of `elem` bytes inside it (a negative stride counts back from `data`).
        let element = unsafe { std::slice::from_raw_parts(data.offset(offset as isize), elem) };
        out.extend_from_slice(element);
        for k in (0..dims.len()).rev() {
            index[k] += 1;
            if index[k] < dims[k] {
                break;
            }
            index[k] = 0;
        }
    }
    Ok(out)
}

/// Accepts only the dense row-major layout (tiled without tiles, minor-to-major `[rank-1, ..., 0]`).
fn check_row_major(layout: *mut MemoryLayout, rank: usize) -> Result<()> {
    let layout = handle(layout, "layout")?;
    let row_major = match layout.layout_type {
        LAYOUT_TILED => {
            // SAFETY: the type says the union holds the tiled layout.
            let tiled = unsafe { layout.layout.tiled };
            let m2m = in_slice(tiled.minor_to_major, tiled.minor_to_major_size, "minor_to_major")?;
            tiled.num_tiles == 0
                && m2m.len() == rank
                && m2m.iter().enumerate().all(|(k, &d)| d == (rank - 1 - k) as i64)
        }
        _ => false,
    };
    if row_major {
        Ok(())
    } else {
        Err(Error::Unimplemented("only dense row-major layouts are supported".into()))
    }
}

// ----------------------------- Device descriptions ----------------------------

fn description<'a>(ptr: *mut DeviceDescription) -> Result<&'a DeviceDescription> {
    handle(ptr, "device description")
}

entry!(PJRT_DeviceDescription_Id(args: DeviceDescriptionIdArgs) {
    args.id = description(args.device_description)?.id;
    Ok(())
});

entry!(PJRT_DeviceDescription_ProcessIndex(args: DeviceDescriptionProcessIndexArgs) {
    description(args.device_description)?;
    args.process_index = 0;
    Ok(())
});

entry!(PJRT_DeviceDescription_Attributes(args: DeviceDescriptionAttributesArgs) {
    let d = description(args.device_description)?;
    (args.attributes, args.num_attributes) = (d.attributes.as_ptr(), d.attributes.len());
    Ok(())
});

entry!(PJRT_DeviceDescription_Kind(args: DeviceDescriptionStringArgs) {
    (args.string, args.size) = out_str(&description(args.device_description)?.kind);
    Ok(())
});

entry!(PJRT_DeviceDescription_DebugString(args: DeviceDescriptionStringArgs) {
    (args.string, args.size) = out_str(&description(args.device_description)?.debug_string);
    Ok(())
});

entry!(PJRT_DeviceDescription_ToString(args: DeviceDescriptionStringArgs) {
    (args.string, args.size) = out_str(&description(args.device_description)?.to_string);
    Ok(())
});

// ----------------------------------- Devices ----------------------------------

entry!(PJRT_Device_GetDescription(args: DeviceGetDescriptionArgs) {
    handle(args.device, "device")?;
    // SAFETY: `device` is live (checked non-null above); the description is a field of it.
    args.device_description = unsafe { &mut (*args.device).description };
    Ok(())
});

entry!(PJRT_Device_IsAddressable(args: DeviceIsAddressableArgs) {
    handle(args.device, "device")?;
    args.is_addressable = true;
    Ok(())
});

entry!(PJRT_Device_LocalHardwareId(args: DeviceLocalHardwareIdArgs) {
    args.local_hardware_id = handle(args.device, "device")?.description.id;
    Ok(())
});

entry!(PJRT_Device_AddressableMemories(args: DeviceAddressableMemoriesArgs) {
    let device: &Device = handle(args.device, "device")?;
    (args.memories, args.num_memories) = (device.memories.as_ptr(), device.memories.len());
    Ok(())
});

entry!(PJRT_Device_DefaultMemory(args: DeviceDefaultMemoryArgs) {
    args.memory = handle(args.device, "device")?.memories[0];
    Ok(())
});

entry!(PJRT_Device_MemoryStats(args: DeviceMemoryStatsArgs) {
    let report = handle(args.device, "device")?.memory_report();
    args.bytes_in_use = report.allocated_bytes as i64;
    args.num_allocs = report.n_allocations as i64;
    args.num_allocs_is_set = true;
    args.bytes_reserved = report.capacity_bytes as i64;
    args.bytes_reserved_is_set = true;
    args.peak_bytes_in_use_is_set = false;
    args.largest_alloc_size_is_set = false;
    args.bytes_limit_is_set = false;
    // The later flags, each only where the caller's (possibly older) struct reaches it.
    let size = args.struct_size;
    macro_rules! clear {
        ($($flag:ident),*) => {$(
            if size > std::mem::offset_of!(DeviceMemoryStatsArgs, $flag) {
                args.$flag = false;
            }
        )*};
    }
    clear!(
        peak_bytes_reserved_is_set,
        bytes_reservable_limit_is_set,
        largest_free_block_bytes_is_set,
        pool_bytes_is_set,
        peak_pool_bytes_is_set
    );
    Ok(())
});

// ----------------------------------- Memory -----------------------------------

entry!(PJRT_Memory_Id(args: MemoryIdArgs) {
    args.id = handle(args.memory, "memory")?.id;
    Ok(())
});

entry!(PJRT_Memory_Kind(args: MemoryStringArgs) {
    (args.string, args.size) = out_str(handle(args.memory, "memory")?.kind);
    Ok(())
});

entry!(PJRT_Memory_Kind_Id(args: MemoryKindIdArgs) {
    handle(args.memory, "memory")?;
    args.kind_id = 0;
    Ok(())
});

entry!(PJRT_Memory_DebugString(args: MemoryStringArgs) {
    (args.string, args.size) = out_str(&handle(args.memory, "memory")?.debug_string);
    Ok(())
});

entry!(PJRT_Memory_ToString(args: MemoryStringArgs) {
    (args.string, args.size) = out_str(&handle(args.memory, "memory")?.to_string);
    Ok(())
});

entry!(PJRT_Memory_AddressableByDevices(args: MemoryAddressableByDevicesArgs) {
    let memory: &Memory = handle(args.memory, "memory")?;
    (args.devices, args.num_devices) = (memory.devices.as_ptr(), memory.devices.len());
    Ok(())
});

// --------------------------------- Executables --------------------------------

entry!(PJRT_Executable_Destroy(args: ExecutableDestroyArgs) {
    destroy(args.executable);
    Ok(())
});

entry!(PJRT_LoadedExecutable_Destroy(args: LoadedExecutableDestroyArgs) {
    destroy(args.executable);
    Ok(())
});

entry!(PJRT_LoadedExecutable_GetExecutable(args: LoadedExecutableGetExecutableArgs) {
    let loaded = handle(args.loaded_executable, "loaded executable")?;
    args.executable = Box::into_raw(Box::new(Executable { info: loaded.info.clone() }));
    Ok(())
});

fn executable<'a>(ptr: *mut Executable) -> Result<&'a Executable> {
    handle(ptr, "executable")
}

entry!(PJRT_Executable_Name(args: ExecutableNameArgs) {
    (args.executable_name, args.executable_name_size) = out_str(&executable(args.executable)?.info.name);
    Ok(())
});

entry!(PJRT_Executable_NumReplicas(args: ExecutableCountArgs) {
    executable(args.executable)?;
    args.count = 1;
    Ok(())
});

entry!(PJRT_Executable_NumPartitions(args: ExecutableCountArgs) {
    executable(args.executable)?;
    args.count = 1;
    Ok(())
});

entry!(PJRT_Executable_NumOutputs(args: ExecutableCountArgs) {
    args.count = executable(args.executable)?.info.outputs.len();
    Ok(())
});

entry!(PJRT_Executable_SizeOfGeneratedCodeInBytes(args: ExecutableSizeOfGeneratedCodeArgs) {
    args.size_in_bytes = executable(args.executable)?.info.code_size;
    Ok(())
});

entry!(PJRT_Executable_GetCostAnalysis(args: ExecutableGetCostAnalysisArgs) {
    executable(args.executable)?;
    (args.properties, args.num_properties) = (std::ptr::null(), 0);
    Ok(())
});

entry!(PJRT_Executable_OutputElementTypes(args: ExecutableOutputElementTypesArgs) {
    let info = &executable(args.executable)?.info;
    (args.output_types, args.num_output_types) = (info.output_types.as_ptr(), info.output_types.len());
    Ok(())
});

entry!(PJRT_Executable_OutputDimensions(args: ExecutableOutputDimensionsArgs) {
    let info = &executable(args.executable)?.info;
    args.num_outputs = info.outputs.len();
    (args.dims, args.dim_sizes) = (info.output_dims.as_ptr(), info.output_ranks.as_ptr());
    Ok(())
});

entry!(PJRT_Executable_OutputMemoryKinds(args: ExecutableOutputMemoryKindsArgs) {
    let info = &executable(args.executable)?.info;
    args.num_outputs = info.outputs.len();
    (args.memory_kinds, args.memory_kind_sizes) =
        // `&u8` has the layout of `const char*`.
        (info.output_memory_kinds.as_ptr() as *const *const c_char, info.output_memory_kind_sizes.as_ptr());
    Ok(())
});

entry!(PJRT_Executable_OptimizedProgram(args: ExecutableOptimizedProgramArgs) {
    let info = &executable(args.executable)?.info;
    if args.program.is_null() {
        return Err(Error::InvalidArgument("the program is null".into()));
    }
    // SAFETY: the caller's program struct, lent for the call.
    let program = unsafe { &mut *args.program };
    (program.format, program.format_size) = out_str(info.program_format);
    if program.code.is_null() {
        program.code_size = info.program.len();
        return Ok(());
    }
    if program.code_size < info.program.len() {
        return Err(Error::InvalidArgument(format!(
            "the code buffer holds {} bytes, the program needs {}",
            program.code_size,
            info.program.len()
        )));
    }
    // SAFETY: the caller's buffer holds `code_size` bytes, at least the program's length.
    unsafe { std::ptr::copy_nonoverlapping(info.program.as_ptr(), program.code as *mut u8, info.program.len()) };
    program.code_size = info.program.len();
    Ok(())
});

fn loaded<'a>(ptr: *mut LoadedExecutable) -> Result<&'a LoadedExecutable> {
    handle(ptr, "loaded executable")
}

entry!(PJRT_LoadedExecutable_AddressableDevices(args: LoadedExecutableAddressableDevicesArgs) {
    let exe = loaded(args.executable)?;
    let client = handle(exe.client as *mut Client, "client")?;
    (args.addressable_devices, args.num_addressable_devices) = (client.devices.as_ptr(), client.devices.len());
    Ok(())
});

entry!(PJRT_LoadedExecutable_Delete(args: LoadedExecutableDeleteArgs) {
    loaded(args.executable)?.delete();
    Ok(())
});

entry!(PJRT_LoadedExecutable_IsDeleted(args: LoadedExecutableIsDeletedArgs) {
    args.is_deleted = loaded(args.executable)?.is_deleted();
    Ok(())
});

entry!(PJRT_LoadedExecutable_Execute(args: LoadedExecutableExecuteArgs) {
    let exe = loaded(args.executable)?;
    let client = handle(exe.client as *mut Client, "client")?;
    if args.num_devices != 1 {
        return Err(Error::InvalidArgument(format!("execute on {} devices: the plugin has one", args.num_devices)));
    }
    let lists = in_slice(args.argument_lists, 1, "argument_lists")?;
    let buffers = in_slice(lists[0], args.num_args, "argument list")?;
    let inputs = buffers.iter().map(|&b| handle(b, "argument buffer")).collect::<Result<Vec<&Buffer>>>()?;
    let non_donatable = non_donatable_inputs(args.options)?;
    let outputs = exe.execute(client, &inputs, non_donatable)?;
    let out_lists = in_slice(args.output_lists, 1, "output_lists")?;
    if out_lists[0].is_null() {
        return Err(Error::InvalidArgument("the output list is null".into()));
    }
    for (k, buffer) in outputs.into_iter().enumerate() {
        // SAFETY: the caller allocated an output list of `num_outputs` entries (NumOutputs).
        unsafe { *out_lists[0].add(k) = Box::into_raw(Box::new(buffer)) };
    }
    if !args.device_complete_events.is_null() {
        // SAFETY: when not null, the caller's array has one entry per device.
        unsafe { *args.device_complete_events = new_event(None) };
    }
    Ok(())
});

/// The inputs the caller forbids donating (`PJRT_ExecuteOptions.non_donatable_input_indices`): none
/// without options or with options from a header that predates the list.
fn non_donatable_inputs<'a>(options: *mut ExecuteOptions) -> Result<&'a [i64]> {
    if options.is_null() {
        return Ok(&[]);
    }
    // SAFETY: the caller's options struct starts with its `size_t struct_size`.
    let size = unsafe { (*options).struct_size };
    if size < ExecuteOptions::REQUIRED {
        return Ok(&[]);
    }
    let options = handle(options, "execute options")?;
    in_slice(
        options.non_donatable_input_indices,
        options.num_non_donatable_input_indices,
        "non_donatable_input_indices",
    )
}

/// The serialized `xla.DeviceAssignmentProto` of one replica and one partition on device 0:
/// `replica_count: 1, computation_count: 1, computation_devices { replica_device_ids: [0] }`.
const DEVICE_ASSIGNMENT_PROTO: [u8; 9] = [0x08, 0x01, 0x10, 0x01, 0x1a, 0x03, 0x0a, 0x01, 0x00];

/// The assignment bytes are static, so there is nothing to free.
unsafe extern "C" fn free_nothing(_: *mut c_void) {}

entry!(PJRT_LoadedExecutable_GetDeviceAssignment(args: LoadedExecutableGetDeviceAssignmentArgs) {
    loaded(args.executable)?;
    args.serialized_bytes = DEVICE_ASSIGNMENT_PROTO.as_ptr() as *const c_char;
    args.serialized_bytes_size = DEVICE_ASSIGNMENT_PROTO.len();
    // Any non-null value: the deleter ignores it.
    args.serialized_device_assignment = DEVICE_ASSIGNMENT_PROTO.as_ptr() as *mut c_void;
    args.serialized_device_assignment_deleter = Some(free_nothing);
    Ok(())
});

// ----------------------------------- Buffers ----------------------------------

fn buffer<'a>(ptr: *mut Buffer) -> Result<&'a Buffer> {
    handle(ptr, "buffer")
}

entry!(PJRT_Buffer_Destroy(args: BufferArgs) {
    destroy(args.buffer);
    Ok(())
});

entry!(PJRT_Buffer_ElementType(args: BufferElementTypeArgs) {
    args.buffer_type = buffer(args.buffer)?.pjrt_type;
    Ok(())
});

entry!(PJRT_Buffer_Dimensions(args: BufferDimensionsArgs) {
    let b = buffer(args.buffer)?;
    (args.dims, args.num_dims) = (b.io.dims.as_ptr(), b.io.dims.len());
    Ok(())
});

entry!(PJRT_Buffer_UnpaddedDimensions(args: BufferDimensionsArgs) {
    let b = buffer(args.buffer)?;
    (args.dims, args.num_dims) = (b.io.dims.as_ptr(), b.io.dims.len());
    Ok(())
});

entry!(PJRT_Buffer_DynamicDimensionIndices(args: BufferDynamicDimensionIndicesArgs) {
    buffer(args.buffer)?;
    (args.dynamic_dim_indices, args.num_dynamic_dims) = (std::ptr::null(), 0);
    Ok(())
});

entry!(PJRT_Buffer_GetMemoryLayout(args: BufferGetMemoryLayoutArgs) {
    let b = buffer(args.buffer)?;
    args.layout = MemoryLayout {
        struct_size: std::mem::size_of::<MemoryLayout>(),
        extension_start: std::ptr::null_mut(),
        layout: MemoryLayoutUnion {
            tiled: MemoryLayoutTiled {
                struct_size: std::mem::size_of::<MemoryLayoutTiled>(),
                extension_start: std::ptr::null_mut(),
                minor_to_major: b.minor_to_major.as_ptr(),
                minor_to_major_size: b.minor_to_major.len(),
                tile_dims: std::ptr::null(),
                tile_dim_sizes: std::ptr::null(),
                num_tiles: 0,
            },
        },
        layout_type: LAYOUT_TILED,
    };
    Ok(())
});

entry!(PJRT_Buffer_ToHostBuffer(args: BufferToHostBufferArgs) {
    let b = buffer(args.src)?;
    if !args.host_layout.is_null() {
        check_row_major(args.host_layout, b.io.dims.len())?;
    }
    let needed = b.io.host_bytes();
    if args.dst.is_null() {
        args.dst_size = needed;
        return Ok(());
    }
    if args.dst_size < needed {
        return Err(Error::InvalidArgument(format!("the host buffer holds {} bytes, {needed} needed", args.dst_size)));
    }
    // A failed read is reported through the event, as an asynchronous copy would report it.
    let error = match b.to_host() {
        Ok(host) => {
            // SAFETY: the caller's buffer holds `dst_size` >= `needed` == `host.len()` bytes.
            unsafe { std::ptr::copy_nonoverlapping(host.as_ptr(), args.dst as *mut u8, host.len()) };
            None
        }
        Err(err) => Some(PjrtError::from(err)),
    };
    args.event = new_event(error);
    Ok(())
});

entry!(PJRT_Buffer_OnDeviceSizeInBytes(args: BufferOnDeviceSizeArgs) {
    args.on_device_size_in_bytes = buffer(args.buffer)?.on_device_size();
    Ok(())
});

entry!(PJRT_Buffer_Device(args: BufferDeviceArgs) {
    let b = buffer(args.buffer)?;
    args.device = handle(b.client as *mut Client, "client")?.device_ptr();
    Ok(())
});

entry!(PJRT_Buffer_Memory(args: BufferMemoryArgs) {
    let b = buffer(args.buffer)?;
    args.memory = handle(b.client as *mut Client, "client")?.memory_ptr();
    Ok(())
});

entry!(PJRT_Buffer_Delete(args: BufferArgs) {
    buffer(args.buffer)?.delete();
    Ok(())
});

entry!(PJRT_Buffer_IsDeleted(args: BufferBoolArgs) {
    args.value = buffer(args.buffer)?.is_deleted();
    Ok(())
});

entry!(PJRT_Buffer_CopyToDevice(args: BufferCopyToDeviceArgs) {
    let b = buffer(args.buffer)?;
    let client = handle(b.client as *mut Client, "client")?;
    handle(args.dst_device, "device")?;
    args.dst_buffer = Box::into_raw(Box::new(b.copy(client)?));
    Ok(())
});

entry!(PJRT_Buffer_CopyToMemory(args: BufferCopyToMemoryArgs) {
    let b = buffer(args.buffer)?;
    let client = handle(b.client as *mut Client, "client")?;
    handle(args.dst_memory, "memory")?;
    args.dst_buffer = Box::into_raw(Box::new(b.copy(client)?));
    Ok(())
});

entry!(PJRT_Buffer_IsOnCpu(args: BufferBoolArgs) {
    buffer(args.buffer)?;
    args.value = false;
    Ok(())
});

entry!(PJRT_Buffer_ReadyEvent(args: BufferReadyEventArgs) {
    buffer(args.buffer)?;
    args.event = new_event(None);
    Ok(())
});

entry!(PJRT_Buffer_IncreaseExternalReferenceCount(args: BufferArgs) {
    *buffer(args.buffer)?.external_references.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    Ok(())
});

entry!(PJRT_Buffer_DecreaseExternalReferenceCount(args: BufferArgs) {
    let mut count = buffer(args.buffer)?.external_references.lock().unwrap_or_else(|p| p.into_inner());
    if *count == 0 {
        return Err(Error::FailedPrecondition("the external reference count is already zero".into()));
    }
    *count -= 1;
    Ok(())
});

// ------------------------------------ Table -----------------------------------

/// An UNIMPLEMENTED error naming `name`.
fn unimplemented(name: &str) -> *mut PjrtError {
    PjrtError::new(code::UNIMPLEMENTED, format!("{name} is not implemented by the hlo-vk Vulkan PJRT plugin"))
        .into_raw()
}

/// The entry for `$name`: its implementation, or (`_`) a function returning UNIMPLEMENTED.
macro_rules! api_entry {
    ($name:ident, _) => {{
        unsafe extern "C" fn $name(_args: *mut c_void) -> *mut PjrtError {
            unimplemented(stringify!($name))
        }
        $name as ApiFn
    }};
    ($name:ident, $imp:ident) => {
        $imp as ApiFn
    };
}

/// Declares `Api` (the `PJRT_Api` struct: its fields in the header's order) and fills it.
macro_rules! api_table {
    ($($name:ident = $imp:tt),* $(,)?) => {
        /// `PJRT_Api`.
        #[repr(C)]
        pub struct Api {
            pub struct_size: usize,
            pub extension_start: *mut c_void,
            pub pjrt_api_version: ApiVersion,
            pub PJRT_Error_Destroy: VoidFn,
            pub PJRT_Error_Message: VoidFn,
            $(pub $name: ApiFn),*
        }

        fn build_api() -> Api {
            Api {
                struct_size: std::mem::size_of::<Api>(),
                extension_start: std::ptr::null_mut(),
                pjrt_api_version: ApiVersion {
                    struct_size: std::mem::size_of::<ApiVersion>(),
                    extension_start: std::ptr::null_mut(),
                    major_version: API_MAJOR,
                    minor_version: API_MINOR,
                },
                PJRT_Error_Destroy,
                PJRT_Error_Message,
                $($name: api_entry!($name, $imp)),*
            }
        }

        /// The names of the entries that return UNIMPLEMENTED.
        pub const UNIMPLEMENTED: &[&str] = &[$(api_unimplemented_name!($name, $imp)),*];
    };
}

macro_rules! api_unimplemented_name {
    ($name:ident, _) => {
        stringify!($name)
    };
    ($name:ident, $imp:ident) => {
        ""
    };
}

api_table! {
    PJRT_Error_GetCode = PJRT_Error_GetCode,
    PJRT_Plugin_Initialize = PJRT_Plugin_Initialize,
    PJRT_Plugin_Attributes = PJRT_Plugin_Attributes,
    PJRT_Event_Destroy = PJRT_Event_Destroy,
    PJRT_Event_IsReady = PJRT_Event_IsReady,
    PJRT_Event_Error = PJRT_Event_Error,
    PJRT_Event_Await = PJRT_Event_Await,
    PJRT_Event_OnReady = PJRT_Event_OnReady,
    PJRT_Client_Create = PJRT_Client_Create,
    PJRT_Client_Destroy = PJRT_Client_Destroy,
    PJRT_Client_PlatformName = PJRT_Client_PlatformName,
    PJRT_Client_ProcessIndex = PJRT_Client_ProcessIndex,
    PJRT_Client_PlatformVersion = PJRT_Client_PlatformVersion,
    PJRT_Client_Devices = PJRT_Client_Devices,
    PJRT_Client_AddressableDevices = PJRT_Client_AddressableDevices,
    PJRT_Client_LookupDevice = PJRT_Client_LookupDevice,
    PJRT_Client_LookupAddressableDevice = PJRT_Client_LookupAddressableDevice,
    PJRT_Client_AddressableMemories = PJRT_Client_AddressableMemories,
    PJRT_Client_Compile = PJRT_Client_Compile,
    PJRT_Client_DefaultDeviceAssignment = PJRT_Client_DefaultDeviceAssignment,
    PJRT_Client_BufferFromHostBuffer = PJRT_Client_BufferFromHostBuffer,
    PJRT_DeviceDescription_Id = PJRT_DeviceDescription_Id,
    PJRT_DeviceDescription_ProcessIndex = PJRT_DeviceDescription_ProcessIndex,
    PJRT_DeviceDescription_Attributes = PJRT_DeviceDescription_Attributes,
    PJRT_DeviceDescription_Kind = PJRT_DeviceDescription_Kind,
    PJRT_DeviceDescription_DebugString = PJRT_DeviceDescription_DebugString,
    PJRT_DeviceDescription_ToString = PJRT_DeviceDescription_ToString,
    PJRT_Device_GetDescription = PJRT_Device_GetDescription,
    PJRT_Device_IsAddressable = PJRT_Device_IsAddressable,
    PJRT_Device_LocalHardwareId = PJRT_Device_LocalHardwareId,
    PJRT_Device_AddressableMemories = PJRT_Device_AddressableMemories,
    PJRT_Device_DefaultMemory = PJRT_Device_DefaultMemory,
    PJRT_Device_MemoryStats = PJRT_Device_MemoryStats,
    PJRT_Memory_Id = PJRT_Memory_Id,
    PJRT_Memory_Kind = PJRT_Memory_Kind,
    PJRT_Memory_DebugString = PJRT_Memory_DebugString,
    PJRT_Memory_ToString = PJRT_Memory_ToString,
    PJRT_Memory_AddressableByDevices = PJRT_Memory_AddressableByDevices,
    PJRT_Executable_Destroy = PJRT_Executable_Destroy,
    PJRT_Executable_Name = PJRT_Executable_Name,
    PJRT_Executable_NumReplicas = PJRT_Executable_NumReplicas,
    PJRT_Executable_NumPartitions = PJRT_Executable_NumPartitions,
    PJRT_Executable_NumOutputs = PJRT_Executable_NumOutputs,
    PJRT_Executable_SizeOfGeneratedCodeInBytes = PJRT_Executable_SizeOfGeneratedCodeInBytes,
    PJRT_Executable_GetCostAnalysis = PJRT_Executable_GetCostAnalysis,
    PJRT_Executable_OutputMemoryKinds = PJRT_Executable_OutputMemoryKinds,
    PJRT_Executable_OptimizedProgram = PJRT_Executable_OptimizedProgram,
    PJRT_Executable_Serialize = _,
    PJRT_LoadedExecutable_Destroy = PJRT_LoadedExecutable_Destroy,
    PJRT_LoadedExecutable_GetExecutable = PJRT_LoadedExecutable_GetExecutable,
    PJRT_LoadedExecutable_AddressableDevices = PJRT_LoadedExecutable_AddressableDevices,
    PJRT_LoadedExecutable_Delete = PJRT_LoadedExecutable_Delete,
    PJRT_LoadedExecutable_IsDeleted = PJRT_LoadedExecutable_IsDeleted,
    PJRT_LoadedExecutable_Execute = PJRT_LoadedExecutable_Execute,
    PJRT_Executable_DeserializeAndLoad = _,
    PJRT_LoadedExecutable_Fingerprint = _,
    PJRT_Buffer_Destroy = PJRT_Buffer_Destroy,
    PJRT_Buffer_ElementType = PJRT_Buffer_ElementType,
    PJRT_Buffer_Dimensions = PJRT_Buffer_Dimensions,
    PJRT_Buffer_UnpaddedDimensions = PJRT_Buffer_UnpaddedDimensions,
    PJRT_Buffer_DynamicDimensionIndices = PJRT_Buffer_DynamicDimensionIndices,
    PJRT_Buffer_GetMemoryLayout = PJRT_Buffer_GetMemoryLayout,
    PJRT_Buffer_OnDeviceSizeInBytes = PJRT_Buffer_OnDeviceSizeInBytes,
    PJRT_Buffer_Device = PJRT_Buffer_Device,
    PJRT_Buffer_Memory = PJRT_Buffer_Memory,
    PJRT_Buffer_Delete = PJRT_Buffer_Delete,
    PJRT_Buffer_IsDeleted = PJRT_Buffer_IsDeleted,
    PJRT_Buffer_CopyToDevice = PJRT_Buffer_CopyToDevice,
    PJRT_Buffer_ToHostBuffer = PJRT_Buffer_ToHostBuffer,
    PJRT_Buffer_IsOnCpu = PJRT_Buffer_IsOnCpu,
    PJRT_Buffer_ReadyEvent = PJRT_Buffer_ReadyEvent,
    PJRT_Buffer_UnsafePointer = _,
    PJRT_Buffer_IncreaseExternalReferenceCount = PJRT_Buffer_IncreaseExternalReferenceCount,
    PJRT_Buffer_DecreaseExternalReferenceCount = PJRT_Buffer_DecreaseExternalReferenceCount,
    PJRT_Buffer_OpaqueDeviceMemoryDataPointer = _,
    PJRT_CopyToDeviceStream_Destroy = _,
    PJRT_CopyToDeviceStream_AddChunk = _,
    PJRT_CopyToDeviceStream_TotalBytes = _,
    PJRT_CopyToDeviceStream_GranuleSize = _,
    PJRT_CopyToDeviceStream_CurrentBytes = _,
    PJRT_TopologyDescription_Create = _,
    PJRT_TopologyDescription_Destroy = _,
    PJRT_TopologyDescription_PlatformName = _,
    PJRT_TopologyDescription_PlatformVersion = _,
    PJRT_TopologyDescription_GetDeviceDescriptions = _,
    PJRT_TopologyDescription_Serialize = _,
    PJRT_TopologyDescription_Attributes = _,
    PJRT_Compile = _,
    PJRT_Executable_OutputElementTypes = PJRT_Executable_OutputElementTypes,
    PJRT_Executable_OutputDimensions = PJRT_Executable_OutputDimensions,
    PJRT_Buffer_CopyToMemory = PJRT_Buffer_CopyToMemory,
    PJRT_Client_CreateViewOfDeviceBuffer = _,
    PJRT_Executable_Fingerprint = _,
    PJRT_Client_TopologyDescription = _,
    PJRT_Executable_GetCompiledMemoryStats = _,
    PJRT_Memory_Kind_Id = PJRT_Memory_Kind_Id,
    PJRT_ExecuteContext_Create = _,
    PJRT_ExecuteContext_Destroy = _,
    PJRT_Buffer_CopyRawToHost = _,
    PJRT_AsyncHostToDeviceTransferManager_Destroy = _,
    PJRT_AsyncHostToDeviceTransferManager_TransferData = _,
    PJRT_Client_CreateBuffersForAsyncHostToDevice = _,
    PJRT_AsyncHostToDeviceTransferManager_RetrieveBuffer = _,
    PJRT_AsyncHostToDeviceTransferManager_Device = _,
    PJRT_AsyncHostToDeviceTransferManager_BufferCount = _,
    PJRT_AsyncHostToDeviceTransferManager_BufferSize = _,
    PJRT_AsyncHostToDeviceTransferManager_SetBufferError = _,
    PJRT_AsyncHostToDeviceTransferManager_AddMetadata = _,
    PJRT_Client_DmaMap = _,
    PJRT_Client_DmaUnmap = _,
    PJRT_Client_CreateUninitializedBuffer = _,
    PJRT_Client_UpdateGlobalProcessInfo = _,
    PJRT_TopologyDescription_Deserialize = _,
    PJRT_Client_CreateAliasBuffer = _,
    PJRT_Client_FulfillAliasBuffer = _,
    PJRT_LoadedExecutable_GetDeviceAssignment = PJRT_LoadedExecutable_GetDeviceAssignment,
    PJRT_Client_CreateErrorBuffer = _,
    PJRT_AsyncHostToDeviceTransferManager_TransferLiteral = _,
    PJRT_Buffer_CopyRawToHostFuture = _,
    PJRT_Device_PoisonExecution = _,
    PJRT_Device_CreateAsyncTrackingEvent = _,
    PJRT_AsyncTrackingEvent_Destroy = _,
    PJRT_Executable_GetCompileOptions = _,
    PJRT_Buffer_DonateWithControlDependency = _,
    PJRT_Event_Create = _,
    PJRT_Event_Set = _,
    PJRT_Device_GetAttributes = _,
}

/// The table lives for the process.
struct StaticApi(Api);
// SAFETY: the table is built once and never written afterwards; it holds function pointers and a
// null extension pointer.
unsafe impl Sync for StaticApi {}
// SAFETY: as above.
unsafe impl Send for StaticApi {}
static API: OnceLock<StaticApi> = OnceLock::new();

/// The process-wide `PJRT_Api` table.
pub fn api() -> &'static Api {
    &API.get_or_init(|| StaticApi(build_api())).0
}
