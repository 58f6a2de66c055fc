//! The plugin's errors: one `thiserror` enum, and the heap object behind a `PJRT_Error*`.

use crate::ffi::code;

/// Why a PJRT call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument the caller passed is wrong (a null handle, a short struct, a bad size).
    #[error("{0}")]
    InvalidArgument(String),
    /// The plugin does not implement the function or the feature.
    #[error("{0}")]
    Unimplemented(String),
    /// The program has an op, type or form the compiler cannot handle.
    #[error("{0}")]
    Unsupported(String),
    /// A lookup found nothing.
    #[error("{0}")]
    NotFound(String),
    /// The object was deleted (or donated) already.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A Vulkan failure, a failed device check or a compiler bug.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The `PJRT_Error_Code` of this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::InvalidArgument(_) => code::INVALID_ARGUMENT,
            Error::Unimplemented(_) | Error::Unsupported(_) => code::UNIMPLEMENTED,
            Error::NotFound(_) => code::NOT_FOUND,
            Error::FailedPrecondition(_) => code::FAILED_PRECONDITION,
            Error::Internal(_) => code::INTERNAL,
        }
    }
}

impl From<hlo_vulkan::VulkanError> for Error {
    fn from(err: hlo_vulkan::VulkanError) -> Error {
        match err {
            hlo_vulkan::VulkanError::DeviceCheckFailed { kernel, message } => {
                Error::Unsupported(format!("cannot run on this Vulkan device: kernel `{kernel}`: {message}"))
            }
            other => Error::Internal(format!("Vulkan: {other}")),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// What a `PJRT_Error*` points to: a code and a message, owned by the caller until
/// `PJRT_Error_Destroy`.
#[derive(Clone, Debug)]
pub struct PjrtError {
    pub code: i32,
    pub message: String,
}

impl PjrtError {
    pub fn new(code: i32, message: impl Into<String>) -> PjrtError {
        PjrtError { code, message: message.into() }
    }

    /// A heap error handed to the caller.
    pub fn into_raw(self) -> *mut PjrtError {
        Box::into_raw(Box::new(self))
    }
}

impl From<Error> for PjrtError {
    fn from(err: Error) -> PjrtError {
        PjrtError::new(err.code(), err.to_string())
    }
}
