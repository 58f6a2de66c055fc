/* A C client of the PJRT C API, built with the system cc by tests/c_client.rs: it loads the
 * plugin with dlopen, as a framework would, and drives it through the function table alone:
 * version, plugin initialisation, a client, its platform and devices, compiling a textual
 * StableHLO module, an executable query, and an UNIMPLEMENTED entry's error object.
 *
 * The structs below are this project's own minimal declarations of the C API's layout (every
 * args struct starts with struct_size and extension_start); the table's entries are indexed
 * in the header's order. Usage: pjrt_smoke LIBRARY.so */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void *(*pjrt_fn)(void *args);

typedef struct {
    size_t struct_size;
    void *extension_start;
    struct {
        size_t struct_size;
        void *extension_start;
        int major_version;
        int minor_version;
    } version;
    pjrt_fn fns[];
} api_t;

/* Indices of the entries used here, in the table's order. */
enum {
    ERROR_DESTROY = 0, ERROR_MESSAGE = 1, ERROR_GET_CODE = 2, PLUGIN_INITIALIZE = 3,
    CLIENT_CREATE = 10, CLIENT_DESTROY = 11, CLIENT_PLATFORM_NAME = 12, CLIENT_DEVICES = 15,
    CLIENT_COMPILE = 20, EXECUTABLE_DESTROY = 40, EXECUTABLE_NUM_OUTPUTS = 44,
    EXECUTABLE_SERIALIZE = 49, LOADED_EXECUTABLE_DESTROY = 50, LOADED_EXECUTABLE_GET_EXECUTABLE = 51,
};

#define HEAD size_t struct_size; void *extension_start
typedef struct { HEAD; void *error; } error_destroy_args;
typedef struct { HEAD; const void *error; const char *message; size_t message_size; } error_message_args;
typedef struct { HEAD; const void *error; int code; } error_code_args;
typedef struct { HEAD; } plugin_initialize_args;
typedef struct {
    HEAD; const void *create_options; size_t num_options;
    void *kv_get; void *kv_get_arg; void *kv_put; void *kv_put_arg; void *client;
    void *kv_try_get; void *kv_try_get_arg;
} client_create_args;
typedef struct { HEAD; void *client; } client_destroy_args;
typedef struct { HEAD; void *client; const char *name; size_t name_size; } client_platform_name_args;
typedef struct { HEAD; void *client; void *const *devices; size_t num_devices; } client_devices_args;
typedef struct { HEAD; char *code; size_t code_size; const char *format; size_t format_size; } program_t;
typedef struct {
    HEAD; void *client; const program_t *program; const char *compile_options; size_t compile_options_size;
    void *executable;
} client_compile_args;
typedef struct { HEAD; void *loaded_executable; void *executable; } loaded_get_executable_args;
typedef struct { HEAD; void *executable; size_t num_outputs; } executable_num_outputs_args;
typedef struct { HEAD; void *executable; } executable_destroy_args;
typedef struct {
    HEAD; const void *executable; const char *bytes; size_t bytes_size; void *serialized; void *deleter;
} executable_serialize_args;

static const api_t *api;

/* Prints and frees an error; returns 1 if there was one. */
static int failed(void *error, const char *what) {
    if (!error) return 0;
    error_message_args m = {sizeof m, NULL, error, NULL, 0};
    api->fns[ERROR_MESSAGE](&m);
    error_code_args c = {sizeof c, NULL, error, 0};
    api->fns[ERROR_GET_CODE](&c);
    printf("%s: error code %d: %.*s\n", what, c.code, (int)m.message_size, m.message);
    error_destroy_args d = {sizeof d, NULL, error};
    api->fns[ERROR_DESTROY](&d);
    return 1;
}

static char MODULE[] =
    "func.func public @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {\n"
    "  %0 = stablehlo.add %arg0, %arg0 : tensor<4xf32>\n"
    "  return %0 : tensor<4xf32>\n"
    "}\n";

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s LIBRARY\n", argv[0]); return 2; }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    const api_t *(*get)(void) = (const api_t *(*)(void))dlsym(lib, "GetPjrtApi");
    if (!get) { fprintf(stderr, "no GetPjrtApi\n"); return 1; }
    api = get();
    printf("PJRT C API %d.%d, table of %zu bytes\n", api->version.major_version, api->version.minor_version,
           api->struct_size);

    plugin_initialize_args init = {sizeof init, NULL};
    if (failed(api->fns[PLUGIN_INITIALIZE](&init), "PJRT_Plugin_Initialize")) return 1;

    client_create_args create;
    memset(&create, 0, sizeof create);
    create.struct_size = sizeof create;
    if (failed(api->fns[CLIENT_CREATE](&create), "PJRT_Client_Create")) return 1;

    client_platform_name_args name = {sizeof name, NULL, create.client, NULL, 0};
    if (failed(api->fns[CLIENT_PLATFORM_NAME](&name), "PJRT_Client_PlatformName")) return 1;
    printf("platform %.*s\n", (int)name.name_size, name.name);

    client_devices_args devices = {sizeof devices, NULL, create.client, NULL, 0};
    if (failed(api->fns[CLIENT_DEVICES](&devices), "PJRT_Client_Devices")) return 1;
    printf("%zu device(s)\n", devices.num_devices);

    program_t program = {sizeof program, NULL, MODULE, strlen(MODULE), "mlir", 4};
    client_compile_args compile = {sizeof compile, NULL, create.client, &program, NULL, 0, NULL};
    if (failed(api->fns[CLIENT_COMPILE](&compile), "PJRT_Client_Compile")) return 1;

    loaded_get_executable_args get_exe = {sizeof get_exe, NULL, compile.executable, NULL};
    if (failed(api->fns[LOADED_EXECUTABLE_GET_EXECUTABLE](&get_exe), "GetExecutable")) return 1;
    executable_num_outputs_args outputs = {sizeof outputs, NULL, get_exe.executable, 0};
    if (failed(api->fns[EXECUTABLE_NUM_OUTPUTS](&outputs), "PJRT_Executable_NumOutputs")) return 1;
    printf("compiled: %zu output(s)\n", outputs.num_outputs);

    /* An entry the plugin does not implement answers with an error object, never a crash. */
    executable_serialize_args serialize = {sizeof serialize, NULL, get_exe.executable, NULL, 0, NULL, NULL};
    if (!failed(api->fns[EXECUTABLE_SERIALIZE](&serialize), "PJRT_Executable_Serialize")) {
        fprintf(stderr, "PJRT_Executable_Serialize unexpectedly succeeded\n");
        return 1;
    }
    /* A struct_size too small for the entry is refused, not read past. */
    client_platform_name_args short_args = {8, NULL, create.client, NULL, 0};
    if (!failed(api->fns[CLIENT_PLATFORM_NAME](&short_args), "PJRT_Client_PlatformName with struct_size 8")) {
        fprintf(stderr, "a short struct was accepted\n");
        return 1;
    }

    executable_destroy_args exe_destroy = {sizeof exe_destroy, NULL, get_exe.executable};
    api->fns[EXECUTABLE_DESTROY](&exe_destroy);
    executable_destroy_args loaded_destroy = {sizeof loaded_destroy, NULL, compile.executable};
    if (failed(api->fns[LOADED_EXECUTABLE_DESTROY](&loaded_destroy), "LoadedExecutable_Destroy")) return 1;
    client_destroy_args destroy = {sizeof destroy, NULL, create.client};
    if (failed(api->fns[CLIENT_DESTROY](&destroy), "PJRT_Client_Destroy")) return 1;
    printf("ok\n");
    return 0;
}
