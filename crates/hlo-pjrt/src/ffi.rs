//! `#[repr(C)]` mirrors of the PJRT C API structs this plugin reads or writes.
//!
//! Written from `xla/pjrt/c/pjrt_c_api.h` (API 0.94): same field order, types and therefore layout.
//! Every args struct starts with `struct_size` and `extension_start`; the caller sets `struct_size`
//! to the size it was compiled with, so a field is only touched when that size covers it
//! ([`crate::api`] checks this through [`Args::REQUIRED`]).
//! Opaque handles (`PJRT_Client*`, `PJRT_Buffer*`, ...) are pointers to this crate's own objects.

use std::ffi::{c_char, c_void};

use crate::client::{Buffer, Client, Device, DeviceDescription, Event, Executable, LoadedExecutable, Memory};
use crate::error::PjrtError;

/// `PJRT_API_MAJOR` and `PJRT_API_MINOR` of the header these definitions follow.
pub const API_MAJOR: i32 = 0;
pub const API_MINOR: i32 = 94;

/// `PJRT_Error_Code`: absl status codes.
pub mod code {
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const NOT_FOUND: i32 = 5;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const OUT_OF_RANGE: i32 = 11;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const INTERNAL: i32 = 13;
}

/// An args struct: how many leading bytes of it the plugin needs the caller to have.
pub trait Args {
    /// The end of the last field this plugin reads or writes (`PJRT_STRUCT_SIZE` of that field).
    const REQUIRED: usize;
    fn struct_size(&self) -> usize;
}

/// `PJRT_STRUCT_SIZE(T, field)`.
macro_rules! struct_size_to {
    ($t:ty, $field:ident) => {{
        // The field's type is inferred from a projection closure that is never called.
        const fn size_of_return<T, F>(_: fn(&T) -> &F) -> usize {
            std::mem::size_of::<F>()
        }
        std::mem::offset_of!($t, $field) + size_of_return::<$t, _>(|s: &$t| &s.$field)
    }};
}

/// Declares an args struct (with the common `struct_size` and `extension_start` head) and the
/// last field the plugin needs.
macro_rules! args {
    ($name:ident, needs $last:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        #[repr(C)]
        pub struct $name {
            pub struct_size: usize,
            pub extension_start: *mut c_void,
            $(pub $field: $ty),*
        }
        impl Args for $name {
            const REQUIRED: usize = struct_size_to!($name, $last);
            fn struct_size(&self) -> usize {
                self.struct_size
            }
        }
    };
}

#[repr(C)]
pub struct ApiVersion {
    pub struct_size: usize,
    pub extension_start: *mut c_void,
    pub major_version: i32,
    pub minor_version: i32,
}

/// `PJRT_NamedValue_Type`.
pub mod named_type {
    pub const STRING: u32 = 0;
    pub const INT64: u32 = 1;
    pub const INT64_LIST: u32 = 2;
    pub const FLOAT: u32 = 3;
    pub const BOOL: u32 = 4;
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union NamedValueUnion {
    pub string_value: *const c_char,
    pub int64_value: i64,
    pub int64_array_value: *const i64,
    pub float_value: f32,
    pub bool_value: bool,
}

#[repr(C)]
pub struct NamedValue {
    pub struct_size: usize,
    pub extension_start: *mut c_void,
    pub name: *const c_char,
    pub name_size: usize,
    pub value_type: u32,
    pub value: NamedValueUnion,
    /// Elements of a list or bytes of a string; 1 for scalars.
    pub value_size: usize,
}

/// `PJRT_Program`.
#[repr(C)]
pub struct Program {
    pub struct_size: usize,
    pub extension_start: *mut c_void,
    pub code: *mut c_char,
    pub code_size: usize,
    pub format: *const c_char,
    pub format_size: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct MemoryLayoutTiled {
    pub struct_size: usize,
    pub extension_start: *mut c_void,
    pub minor_to_major: *const i64,
    pub minor_to_major_size: usize,
    pub tile_dims: *const i64,
    pub tile_dim_sizes: *const usize,
    pub num_tiles: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct MemoryLayoutStrides {
    pub struct_size: usize,
    pub extension_start: *mut c_void,
    pub byte_strides: *const i64,
    pub num_byte_strides: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub union MemoryLayoutUnion {
    pub tiled: MemoryLayoutTiled,
    pub strides: MemoryLayoutStrides,
}

/// `PJRT_Buffer_MemoryLayout_Type`.
pub const LAYOUT_TILED: u32 = 0;
pub const LAYOUT_STRIDES: u32 = 1;

/// `PJRT_Buffer_MemoryLayout`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MemoryLayout {
    pub struct_size: usize,
    pub extension_start: *mut c_void,
    pub layout: MemoryLayoutUnion,
    pub layout_type: u32,
}

pub type OnReadyCallback = Option<unsafe extern "C" fn(error: *mut PjrtError, user_arg: *mut c_void)>;

// ----------------------------------- Errors -----------------------------------
args!(ErrorDestroyArgs, needs error { error: *mut PjrtError });
args!(ErrorMessageArgs, needs message_size { error: *const PjrtError, message: *const c_char, message_size: usize });
args!(ErrorGetCodeArgs, needs code { error: *const PjrtError, code: i32 });

// ----------------------------------- Plugin -----------------------------------
args!(PluginInitializeArgs, needs extension_start {});
args!(PluginAttributesArgs, needs num_attributes { attributes: *const NamedValue, num_attributes: usize });

// ----------------------------------- Events -----------------------------------
args!(EventDestroyArgs, needs event { event: *mut Event });
args!(EventIsReadyArgs, needs is_ready { event: *mut Event, is_ready: bool });
args!(EventErrorArgs, needs event { event: *mut Event });
args!(EventAwaitArgs, needs event { event: *mut Event });
args!(EventOnReadyArgs, needs user_arg { event: *mut Event, callback: OnReadyCallback, user_arg: *mut c_void });

// ----------------------------------- Client -----------------------------------
args!(ClientCreateArgs, needs client {
    create_options: *const NamedValue,
    num_options: usize,
    kv_get_callback: *mut c_void,
    kv_get_user_arg: *mut c_void,
    kv_put_callback: *mut c_void,
    kv_put_user_arg: *mut c_void,
    client: *mut Client,
    // (API 0.94 goes on with `kv_try_get_callback` and `kv_try_get_user_arg`, which the plugin
    // does not use: every mirror ends at the last field it reads or writes, so that a caller
    // built against an older header passes the size check.)
});
args!(ClientDestroyArgs, needs client { client: *mut Client });
args!(ClientPlatformNameArgs, needs platform_name_size {
    client: *mut Client, platform_name: *const c_char, platform_name_size: usize,
});
args!(ClientProcessIndexArgs, needs process_index { client: *mut Client, process_index: i32 });
args!(ClientPlatformVersionArgs, needs platform_version_size {
    client: *mut Client, platform_version: *const c_char, platform_version_size: usize,
});
args!(ClientDevicesArgs, needs num_devices { client: *mut Client, devices: *const *mut Device, num_devices: usize });
args!(ClientLookupDeviceArgs, needs device { client: *mut Client, id: i32, device: *mut Device });
args!(ClientLookupAddressableDeviceArgs, needs addressable_device {
    client: *mut Client, local_hardware_id: i32, addressable_device: *mut Device,
});
args!(ClientAddressableMemoriesArgs, needs num_addressable_memories {
    client: *mut Client, addressable_memories: *const *mut Memory, num_addressable_memories: usize,
});
args!(ClientCompileArgs, needs executable {
    client: *mut Client,
    program: *const Program,
    compile_options: *const c_char,
    compile_options_size: usize,
    executable: *mut LoadedExecutable,
});
args!(ClientDefaultDeviceAssignmentArgs, needs default_assignment {
    client: *mut Client,
    num_replicas: i32,
    num_partitions: i32,
    default_assignment_size: usize,
    default_assignment: *mut i32,
});
args!(ClientBufferFromHostBufferArgs, needs buffer {
    client: *mut Client,
    data: *const c_void,
    buffer_type: u32,
    dims: *const i64,
    num_dims: usize,
    byte_strides: *const i64,
    num_byte_strides: usize,
    host_buffer_semantics: u32,
    device: *mut Device,
    memory: *mut Memory,
    device_layout: *mut MemoryLayout,
    done_with_host_buffer: *mut Event,
    buffer: *mut Buffer,
});

// ----------------------------- Device descriptions ----------------------------
args!(DeviceDescriptionIdArgs, needs id { device_description: *mut DeviceDescription, id: i32 });
args!(DeviceDescriptionProcessIndexArgs, needs process_index {
    device_description: *mut DeviceDescription, process_index: i32,
});
args!(DeviceDescriptionAttributesArgs, needs attributes {
    device_description: *mut DeviceDescription, num_attributes: usize, attributes: *const NamedValue,
});
// Kind, DebugString and ToString share this shape.
args!(DeviceDescriptionStringArgs, needs size {
    device_description: *mut DeviceDescription, string: *const c_char, size: usize,
});

// ----------------------------------- Devices ----------------------------------
args!(DeviceGetDescriptionArgs, needs device_description {
    device: *mut Device, device_description: *mut DeviceDescription,
});
args!(DeviceIsAddressableArgs, needs is_addressable { device: *mut Device, is_addressable: bool });
args!(DeviceLocalHardwareIdArgs, needs local_hardware_id { device: *mut Device, local_hardware_id: i32 });
args!(DeviceAddressableMemoriesArgs, needs num_memories {
    device: *mut Device, memories: *const *mut Memory, num_memories: usize,
});
args!(DeviceDefaultMemoryArgs, needs memory { device: *mut Device, memory: *mut Memory });
// The plugin sets the statistics up to `bytes_reserved` and clears the later `_is_set` flags where
// the caller's struct has them (callers do not zero the struct).
args!(DeviceMemoryStatsArgs, needs bytes_reserved_is_set {
    device: *mut Device,
    bytes_in_use: i64,
    peak_bytes_in_use: i64,
    peak_bytes_in_use_is_set: bool,
    num_allocs: i64,
    num_allocs_is_set: bool,
    largest_alloc_size: i64,
    largest_alloc_size_is_set: bool,
    bytes_limit: i64,
    bytes_limit_is_set: bool,
    bytes_reserved: i64,
    bytes_reserved_is_set: bool,
    peak_bytes_reserved: i64,
    peak_bytes_reserved_is_set: bool,
    bytes_reservable_limit: i64,
    bytes_reservable_limit_is_set: bool,
    largest_free_block_bytes: i64,
    largest_free_block_bytes_is_set: bool,
    pool_bytes: i64,
    pool_bytes_is_set: bool,
    peak_pool_bytes: i64,
    peak_pool_bytes_is_set: bool,
});

// ----------------------------------- Memory -----------------------------------
args!(MemoryIdArgs, needs id { memory: *mut Memory, id: i32 });
// Kind, DebugString and ToString share this shape.
args!(MemoryStringArgs, needs size { memory: *mut Memory, string: *const c_char, size: usize });
args!(MemoryKindIdArgs, needs kind_id { memory: *mut Memory, kind_id: i32 });
args!(MemoryAddressableByDevicesArgs, needs num_devices {
    memory: *mut Memory, devices: *const *mut Device, num_devices: usize,
});

// --------------------------------- Executables --------------------------------
args!(ExecutableDestroyArgs, needs executable { executable: *mut Executable });
args!(LoadedExecutableDestroyArgs, needs executable { executable: *mut LoadedExecutable });
args!(LoadedExecutableGetExecutableArgs, needs executable {
    loaded_executable: *mut LoadedExecutable, executable: *mut Executable,
});
args!(ExecutableNameArgs, needs executable_name_size {
    executable: *mut Executable, executable_name: *const c_char, executable_name_size: usize,
});
// NumReplicas, NumPartitions and NumOutputs share this shape.
args!(ExecutableCountArgs, needs count { executable: *mut Executable, count: usize });
args!(LoadedExecutableAddressableDevicesArgs, needs num_addressable_devices {
    executable: *mut LoadedExecutable, addressable_devices: *const *mut Device, num_addressable_devices: usize,
});
args!(ExecutableOptimizedProgramArgs, needs program { executable: *mut Executable, program: *mut Program });
args!(LoadedExecutableDeleteArgs, needs executable { executable: *mut LoadedExecutable });
args!(LoadedExecutableIsDeletedArgs, needs is_deleted { executable: *mut LoadedExecutable, is_deleted: bool });
// `PJRT_ExecuteOptions`: the plugin reads only which inputs must not be donated; an older caller's
// shorter struct has no such list.
args!(ExecuteOptions, needs num_non_donatable_input_indices {
    send_callbacks: *mut c_void,
    recv_callbacks: *mut c_void,
    num_send_ops: usize,
    num_recv_ops: usize,
    launch_id: i32,
    non_donatable_input_indices: *const i64,
    num_non_donatable_input_indices: usize,
});
args!(LoadedExecutableExecuteArgs, needs execute_device {
    executable: *mut LoadedExecutable,
    options: *mut ExecuteOptions,
    argument_lists: *const *const *mut Buffer,
    num_devices: usize,
    num_args: usize,
    output_lists: *const *mut *mut Buffer,
    device_complete_events: *mut *mut Event,
    execute_device: *mut Device,
});
args!(ExecutableSizeOfGeneratedCodeArgs, needs size_in_bytes { executable: *mut Executable, size_in_bytes: i64 });
args!(ExecutableGetCostAnalysisArgs, needs properties {
    executable: *mut Executable, num_properties: usize, properties: *const NamedValue,
});
args!(ExecutableOutputElementTypesArgs, needs num_output_types {
    executable: *mut Executable, output_types: *const u32, num_output_types: usize,
});
args!(ExecutableOutputDimensionsArgs, needs dim_sizes {
    executable: *mut Executable, num_outputs: usize, dims: *const i64, dim_sizes: *const usize,
});
args!(ExecutableOutputMemoryKindsArgs, needs memory_kind_sizes {
    executable: *mut Executable,
    num_outputs: usize,
    memory_kinds: *const *const c_char,
    memory_kind_sizes: *const usize,
});

// ----------------------------------- Buffers ----------------------------------
// Destroy, Delete, IncreaseExternalReferenceCount and DecreaseExternalReferenceCount share this shape.
args!(BufferArgs, needs buffer { buffer: *mut Buffer });
args!(BufferElementTypeArgs, needs buffer_type { buffer: *mut Buffer, buffer_type: u32 });
// Dimensions and UnpaddedDimensions share this shape.
args!(BufferDimensionsArgs, needs num_dims { buffer: *mut Buffer, dims: *const i64, num_dims: usize });
args!(BufferDynamicDimensionIndicesArgs, needs num_dynamic_dims {
    buffer: *mut Buffer, dynamic_dim_indices: *const usize, num_dynamic_dims: usize,
});
args!(BufferGetMemoryLayoutArgs, needs layout { buffer: *mut Buffer, layout: MemoryLayout });
args!(BufferToHostBufferArgs, needs event {
    src: *mut Buffer,
    host_layout: *mut MemoryLayout,
    dst: *mut c_void,
    dst_size: usize,
    event: *mut Event,
});
args!(BufferOnDeviceSizeArgs, needs on_device_size_in_bytes { buffer: *mut Buffer, on_device_size_in_bytes: usize });
// IsDeleted and IsOnCpu share this shape.
args!(BufferBoolArgs, needs value { buffer: *mut Buffer, value: bool });
args!(BufferCopyToDeviceArgs, needs dst_buffer { buffer: *mut Buffer, dst_device: *mut Device, dst_buffer: *mut Buffer });
args!(BufferCopyToMemoryArgs, needs dst_buffer { buffer: *mut Buffer, dst_memory: *mut Memory, dst_buffer: *mut Buffer });
args!(BufferDeviceArgs, needs device { buffer: *mut Buffer, device: *mut Device });
args!(BufferMemoryArgs, needs memory { buffer: *mut Buffer, memory: *mut Memory });
args!(BufferReadyEventArgs, needs event { buffer: *mut Buffer, event: *mut Event });
args!(LoadedExecutableGetDeviceAssignmentArgs, needs serialized_device_assignment_deleter {
    executable: *mut LoadedExecutable,
    serialized_bytes: *const c_char,
    serialized_bytes_size: usize,
    serialized_device_assignment: *mut c_void,
    serialized_device_assignment_deleter: Option<unsafe extern "C" fn(*mut c_void)>,
});
