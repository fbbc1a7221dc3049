/* Hosting: nethost finds hostfxr, hostfxr starts the runtime from
 * Engine.Native.runtimeconfig.json, and load_assembly_and_get_function_pointer resolves the
 * [UnmanagedCallersOnly] entry points of Engine.Native.dll once per process. */
#define _GNU_SOURCE
#include "host.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <coreclr_delegates.h>
#include <hostfxr.h>
#include <nethost.h>

#include "error.h"

#define MANAGED_ASSEMBLY "Engine.Native.dll"
#define MANAGED_RUNTIMECONFIG "Engine.Native.runtimeconfig.json"
#define MANAGED_TYPE "Engine.Native.NativeExports, Engine.Native"

/* The start is serialised by a mutex rather than pthread_once: it needs the options of the
 * calling engine_create, must report its own failure to that caller, and a start that failed
 * before the runtime was loaded (wrong directory, no runtime installed) may be retried. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_started;                  /* read with acquire, written with release */
static char g_managed_dir[PATH_MAX];   /* the directory the runtime was started from */
static engine_managed g_managed;

/* hostfxr reports details (missing framework versions, bad JSON) through an error writer;
 * collect them so the caller's error text carries them. */
static _Thread_local char t_hostfxr_message[1024];

static void HOSTFXR_CALLTYPE collect_hostfxr_message(const char_t* message)
{
    size_t used = strlen(t_hostfxr_message);
    if (used + 2 >= sizeof t_hostfxr_message || message == NULL) return;
    snprintf(t_hostfxr_message + used, sizeof t_hostfxr_message - used, "%s%s",
             used ? " " : "", message);
}

static int is_directory(const char* path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char* path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Directory of the file that holds this library's code (libengine.so). */
static engine_status library_directory(char* out, size_t capacity)
{
    Dl_info info;
    if (dladdr((void*)&engine_host_start, &info) == 0 || info.dli_fname == NULL)
        return engine_error_set(ENGINE_RUNTIME_ERROR,
                                "cannot locate libengine on disk (dladdr failed); set "
                                "engine_options.managed_dir or ENGINE_MANAGED_DIR");
    char resolved[PATH_MAX];
    const char* file = realpath(info.dli_fname, resolved) ? resolved : info.dli_fname;
    const char* slash = strrchr(file, '/');
    size_t n = slash ? (size_t)(slash - file) : 0;
    if (n == 0) { snprintf(out, capacity, "%s", slash ? "/" : "."); return ENGINE_OK; }
    if (n >= capacity)
        return engine_error_set(ENGINE_RUNTIME_ERROR, "path of libengine is too long: %s", file);
    memcpy(out, file, n);
    out[n] = '\0';
    return ENGINE_OK;
}

/* Chooses the managed directory (argument, ENGINE_MANAGED_DIR, libengine's directory) as an
 * absolute path and checks that the assembly and its runtimeconfig are there. */
static engine_status resolve_managed_dir(const char* requested, char* out, size_t capacity)
{
    const char* source = "engine_options.managed_dir";
    char dir[PATH_MAX];
    if (requested == NULL || requested[0] == '\0') {
        requested = getenv("ENGINE_MANAGED_DIR");
        source = "ENGINE_MANAGED_DIR";
    }
    if (requested != NULL && requested[0] != '\0') {
        if (strlen(requested) >= sizeof dir)
            return engine_error_set(ENGINE_INVALID_ARGUMENT, "%s is too long", source);
        snprintf(dir, sizeof dir, "%s", requested);
    } else {
        source = "the directory of libengine";
        engine_status st = library_directory(dir, sizeof dir);
        if (st != ENGINE_OK) return st;
    }
    if (!is_directory(dir))
        return engine_error_set(ENGINE_NOT_FOUND,
                                "managed engine directory '%s' (from %s) does not exist", dir,
                                source);
    if (realpath(dir, out) == NULL || strlen(out) >= capacity)
        return engine_error_set(ENGINE_NOT_FOUND, "cannot resolve the managed engine directory '%s'",
                                dir);
    char path[PATH_MAX + 64];
    const char* files[] = { MANAGED_ASSEMBLY, MANAGED_RUNTIMECONFIG };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; ++i) {
        snprintf(path, sizeof path, "%s/%s", out, files[i]);
        if (!is_file(path))
            return engine_error_set(ENGINE_NOT_FOUND,
                                    "%s not found in '%s' (from %s); build the native target "
                                    "(it publishes src/Engine.Native there) or set "
                                    "engine_options.managed_dir / ENGINE_MANAGED_DIR",
                                    files[i], out, source);
    }
    return ENGINE_OK;
}

static engine_status resolve(load_assembly_and_get_function_pointer_fn load, const char* assembly,
                             const char* method, void** out)
{
    int rc = load(assembly, MANAGED_TYPE, method, UNMANAGEDCALLERSONLY_METHOD, NULL, out);
    if (rc != 0 || *out == NULL)
        return engine_error_set(ENGINE_RUNTIME_ERROR,
                                "cannot resolve managed entry point %s.%s in %s (hostfxr error "
                                "0x%08x); the managed engine and libengine do not match",
                                MANAGED_TYPE, method, assembly, (unsigned)rc);
    return ENGINE_OK;
}

/* Starts the runtime from managed_dir and fills g_managed. Called with g_lock held. */
static engine_status start_runtime(const char* managed_dir, const char* dotnet_root)
{
    char assembly[PATH_MAX + 64], config[PATH_MAX + 64];
    snprintf(assembly, sizeof assembly, "%s/%s", managed_dir, MANAGED_ASSEMBLY);
    snprintf(config, sizeof config, "%s/%s", managed_dir, MANAGED_RUNTIMECONFIG);

    /* 1. nethost: where is hostfxr? */
    char fxr_path[PATH_MAX];
    size_t fxr_size = sizeof fxr_path;
    struct get_hostfxr_parameters params = { sizeof params, assembly,
                                             dotnet_root && dotnet_root[0] ? dotnet_root : NULL };
    int rc = get_hostfxr_path(fxr_path, &fxr_size, &params);
    if (rc != 0)
        return engine_error_set(ENGINE_RUNTIME_ERROR,
                                "no .NET installation found (get_hostfxr_path error 0x%08x%s%s); "
                                "install the .NET runtime, or set DOTNET_ROOT or "
                                "engine_options.dotnet_root",
                                (unsigned)rc, dotnet_root ? " for dotnet_root " : "",
                                dotnet_root ? dotnet_root : "");

    /* 2. hostfxr itself. The library stays loaded for the life of the process: the runtime
     * cannot be unloaded. */
    void* fxr = dlopen(fxr_path, RTLD_NOW | RTLD_LOCAL);
    if (fxr == NULL)
        return engine_error_set(ENGINE_RUNTIME_ERROR, "cannot load hostfxr '%s': %s", fxr_path,
                                dlerror());
    hostfxr_initialize_for_runtime_config_fn init =
        (hostfxr_initialize_for_runtime_config_fn)dlsym(fxr, "hostfxr_initialize_for_runtime_config");
    hostfxr_get_runtime_delegate_fn get_delegate =
        (hostfxr_get_runtime_delegate_fn)dlsym(fxr, "hostfxr_get_runtime_delegate");
    hostfxr_close_fn close_fxr = (hostfxr_close_fn)dlsym(fxr, "hostfxr_close");
    hostfxr_set_error_writer_fn set_writer =
        (hostfxr_set_error_writer_fn)dlsym(fxr, "hostfxr_set_error_writer");
    if (!init || !get_delegate || !close_fxr)
        return engine_error_set(ENGINE_RUNTIME_ERROR,
                                "hostfxr '%s' lacks the hosting API (.NET 5 or later needed)",
                                fxr_path);

    /* 3. Runtime from the runtimeconfig; then the assembly-loading delegate. */
    t_hostfxr_message[0] = '\0';
    hostfxr_error_writer_fn previous = set_writer ? set_writer(collect_hostfxr_message) : NULL;
    hostfxr_handle handle = NULL;
    void* load_ptr = NULL;
    rc = init(config, NULL, &handle);
    /* 0 = started; 1 and 2 = a runtime was already running in this process (another host),
     * which is usable when compatible. Negative values are errors. */
    int init_ok = rc >= 0 && handle != NULL;
    if (init_ok)
        rc = get_delegate(handle, hdt_load_assembly_and_get_function_pointer, &load_ptr);
    if (handle != NULL) close_fxr(handle);
    if (set_writer) set_writer(previous);
    if (!init_ok)
        return engine_error_set(ENGINE_RUNTIME_ERROR,
                                "cannot start the .NET runtime for '%s' (hostfxr error 0x%08x)%s%s",
                                config, (unsigned)rc, t_hostfxr_message[0] ? ": " : "",
                                t_hostfxr_message);
    if (rc != 0 || load_ptr == NULL)
        return engine_error_set(ENGINE_RUNTIME_ERROR,
                                "the .NET runtime gave no assembly loader (hostfxr error 0x%08x)%s%s",
                                (unsigned)rc, t_hostfxr_message[0] ? ": " : "", t_hostfxr_message);
    load_assembly_and_get_function_pointer_fn load = (load_assembly_and_get_function_pointer_fn)load_ptr;

    /* 4. Entry points. Initialize hands the managed side our error setter and checks that
     * both sides agree on the layout of the structs passed by pointer. */
    int32_t (*initialize)(void (*)(const char*), int32_t, int32_t) = NULL;
    engine_managed m;
    struct { const char* name; void** slot; } entries[] = {
        { "Initialize", (void**)&initialize },
        { "CreateContext", (void**)&m.create_context },
        { "ReleaseContext", (void**)&m.release_context },
        { "LoadModel", (void**)&m.load_model },
        { "ReleaseModel", (void**)&m.release_model },
        { "OutputShape", (void**)&m.output_shape },
        { "Generate", (void**)&m.generate },
        { "SetProgressCallback", (void**)&m.set_progress_callback },
        { "SetImageCallback", (void**)&m.set_image_callback },
        { "Cancel", (void**)&m.cancel },
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; ++i) {
        engine_status st = resolve(load, assembly, entries[i].name, entries[i].slot);
        if (st != ENGINE_OK) return st;
    }
    engine_status st = (engine_status)initialize(engine_error_set_text, (int32_t)sizeof(engine_options),
                                                 (int32_t)sizeof(engine_request));
    if (st != ENGINE_OK) return st; /* the managed side set the text */
    g_managed = m;
    return ENGINE_OK;
}

engine_status engine_host_start(const char* managed_dir, const char* dotnet_root,
                                const engine_managed** out)
{
    if (!__atomic_load_n(&g_started, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&g_lock);
        engine_status st = ENGINE_OK;
        if (!g_started) {
            char dir[PATH_MAX];
            st = resolve_managed_dir(managed_dir, dir, sizeof dir);
            if (st == ENGINE_OK) st = start_runtime(dir, dotnet_root);
            if (st == ENGINE_OK) {
                snprintf(g_managed_dir, sizeof g_managed_dir, "%s", dir);
                __atomic_store_n(&g_started, 1, __ATOMIC_RELEASE);
            }
        }
        pthread_mutex_unlock(&g_lock);
        if (st != ENGINE_OK) return st;
        if (managed_dir == NULL) { *out = &g_managed; return ENGINE_OK; }
    }
    /* Running already: a different explicit directory cannot be honoured. */
    if (managed_dir != NULL && managed_dir[0] != '\0') {
        char resolved[PATH_MAX];
        if (realpath(managed_dir, resolved) == NULL || strcmp(resolved, g_managed_dir) != 0)
            return engine_error_set(ENGINE_INVALID_ARGUMENT,
                                    "the engine runtime is already running from '%s'; "
                                    "engine_options.managed_dir '%s' cannot be used in this process",
                                    g_managed_dir, managed_dir);
    }
    *out = &g_managed;
    return ENGINE_OK;
}
