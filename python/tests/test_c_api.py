"""The PJRT C API driven directly with ctypes (no JAX): the table's version, plugin
initialisation, a client with its platform and devices, compiling textual StableHLO, and the
error objects of an UNIMPLEMENTED entry and of a too-short args struct.

The library is $HLO_VK_PJRT_LIBRARY (scripts/test-pjrt.sh sets it). The args structs are this
project's own ctypes declarations of the C API's layout; entries are indexed in the header's
order (the indices below)."""

import ctypes
import os

import pytest

ERROR_DESTROY, ERROR_MESSAGE, ERROR_GET_CODE, PLUGIN_INITIALIZE = 0, 1, 2, 3
CLIENT_CREATE, CLIENT_DESTROY, CLIENT_PLATFORM_NAME, CLIENT_DEVICES, CLIENT_COMPILE = 10, 11, 12, 15, 20
EXECUTABLE_NUM_OUTPUTS, EXECUTABLE_SERIALIZE = 44, 49
LOADED_EXECUTABLE_DESTROY, LOADED_EXECUTABLE_GET_EXECUTABLE = 50, 51
UNIMPLEMENTED, INVALID_ARGUMENT = 12, 3

P = ctypes.c_void_p
FN = ctypes.CFUNCTYPE(P, P)


def args(*fields):
    """An args struct: struct_size and extension_start, then `fields`."""

    class Args(ctypes.Structure):
        _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", P)] + list(fields)

        def __init__(self, **kw):
            super().__init__(struct_size=ctypes.sizeof(self), **kw)

    return Args


class Version(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", P),
                ("major", ctypes.c_int), ("minor", ctypes.c_int)]


ErrorMessage = args(("error", P), ("message", ctypes.c_char_p), ("message_size", ctypes.c_size_t))
ErrorCode = args(("error", P), ("code", ctypes.c_int))
ErrorDestroy = args(("error", P))
ClientCreate = args(("options", P), ("num_options", ctypes.c_size_t), ("kv_get", P), ("kv_get_arg", P),
                    ("kv_put", P), ("kv_put_arg", P), ("client", P), ("kv_try_get", P), ("kv_try_get_arg", P))
ClientOnly = args(("client", P))
PlatformName = args(("client", P), ("name", ctypes.c_char_p), ("name_size", ctypes.c_size_t))
Devices = args(("client", P), ("devices", P), ("num_devices", ctypes.c_size_t))
Program = args(("code", ctypes.c_char_p), ("code_size", ctypes.c_size_t), ("format", ctypes.c_char_p),
               ("format_size", ctypes.c_size_t))
Compile = args(("client", P), ("program", ctypes.POINTER(Program)), ("options", ctypes.c_char_p),
               ("options_size", ctypes.c_size_t), ("executable", P))
GetExecutable = args(("loaded", P), ("executable", P))
NumOutputs = args(("executable", P), ("num_outputs", ctypes.c_size_t))
Serialize = args(("executable", P), ("bytes", P), ("bytes_size", ctypes.c_size_t), ("serialized", P),
                 ("deleter", P))
LoadedDestroy = args(("executable", P))

MODULE = b"""func.func public @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
  %0 = stablehlo.add %arg0, %arg0 : tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""


class Plugin:
    def __init__(self, path):
        lib = ctypes.CDLL(path)
        lib.GetPjrtApi.restype = P
        base = lib.GetPjrtApi()
        self.size = ctypes.c_size_t.from_address(base).value
        self.version = Version.from_address(base + 2 * ctypes.sizeof(P))
        table = base + 2 * ctypes.sizeof(P) + ctypes.sizeof(Version)
        self.count = (self.size - (table - base)) // ctypes.sizeof(P)
        self.fns = [FN(P.from_address(table + k * ctypes.sizeof(P)).value) for k in range(self.count)]

    def call(self, index, a):
        """Calls entry `index`; returns (code, message) of its error, or None."""
        err = self.fns[index](ctypes.addressof(a))
        if not err:
            return None
        m = ErrorMessage(error=err)
        self.fns[ERROR_MESSAGE](ctypes.addressof(m))
        c = ErrorCode(error=err)
        self.fns[ERROR_GET_CODE](ctypes.addressof(c))
        message = ctypes.string_at(m.message, m.message_size).decode()
        self.fns[ERROR_DESTROY](ctypes.addressof(ErrorDestroy(error=err)))
        return c.code, message

    def ok(self, index, a):
        err = self.call(index, a)
        assert err is None, err
        return a


@pytest.fixture(scope="module")
def plugin():
    path = os.environ.get("HLO_VK_PJRT_LIBRARY")
    assert path and os.path.isfile(path), "set HLO_VK_PJRT_LIBRARY to libhlo_pjrt.so"
    return Plugin(path)


def test_the_c_api_directly(plugin):
    assert plugin.version.major == 0 and plugin.version.minor >= 29
    assert all(fn for fn in plugin.fns), "no null entry in the table"
    plugin.ok(PLUGIN_INITIALIZE, args()())
    client = plugin.ok(CLIENT_CREATE, ClientCreate()).client
    name = plugin.ok(CLIENT_PLATFORM_NAME, PlatformName(client=client))
    assert ctypes.string_at(name.name, name.name_size) == b"vulkan"
    assert plugin.ok(CLIENT_DEVICES, Devices(client=client)).num_devices >= 1

    program = Program(code=MODULE, code_size=len(MODULE), format=b"mlir", format_size=4)
    loaded = plugin.ok(CLIENT_COMPILE, Compile(client=client, program=ctypes.pointer(program))).executable
    exe = plugin.ok(LOADED_EXECUTABLE_GET_EXECUTABLE, GetExecutable(loaded=loaded)).executable
    assert plugin.ok(EXECUTABLE_NUM_OUTPUTS, NumOutputs(executable=exe)).num_outputs == 1

    code, message = plugin.call(EXECUTABLE_SERIALIZE, Serialize(executable=exe))
    assert code == UNIMPLEMENTED and "PJRT_Executable_Serialize" in message
    short = PlatformName(client=client)
    short.struct_size = 8
    code, message = plugin.call(CLIENT_PLATFORM_NAME, short)
    assert code == INVALID_ARGUMENT and "struct_size" in message

    plugin.ok(LOADED_EXECUTABLE_DESTROY, LoadedDestroy(executable=loaded))
    plugin.ok(CLIENT_DESTROY, ClientOnly(client=client))
