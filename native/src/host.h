/* Starting the .NET runtime in this process and resolving the managed entry points. */
#ifndef ENGINE_HOST_H
#define ENGINE_HOST_H

#include <stdint.h>

#include "engine.h"

/* Managed entry points of Engine.Native (Engine.Native.NativeExports), all returning an
 * engine_status. Handles are GCHandle values. */
typedef struct engine_managed {
    int32_t (*create_context)(const char* device, const char* weights, intptr_t* out_context);
    int32_t (*release_context)(intptr_t context);
    int32_t (*load_model)(intptr_t context, const char* path, intptr_t* out_model);
    int32_t (*release_model)(intptr_t context, intptr_t model);
    int32_t (*output_shape)(intptr_t context, intptr_t model, const engine_request* request,
                            int32_t* out_shape);
    int32_t (*generate)(intptr_t context, intptr_t model, const engine_request* request,
                        float* out_pixels, size_t out_len);
    int32_t (*set_progress_callback)(intptr_t context, engine_progress_fn fn, void* user_data);
    int32_t (*set_image_callback)(intptr_t context, engine_image_fn fn, void* user_data);
    int32_t (*cancel)(intptr_t context);
} engine_managed;

/* Starts the runtime on the first successful call (thread-safe; a failed start may be
 * retried) and returns the entry points in *out. managed_dir and dotnet_root may be NULL
 * (see engine_options). On failure the thread's error text says why. */
engine_status engine_host_start(const char* managed_dir, const char* dotnet_root,
                                const engine_managed** out);

#endif /* ENGINE_HOST_H */
