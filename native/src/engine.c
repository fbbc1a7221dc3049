/* The C interface: argument checks that need no runtime, then forwarding to the managed
 * engine. Handles are small C structs around the managed GCHandles, tagged so that a
 * context passed as a model (or a released handle, while its memory is not reused) is
 * reported instead of crashing. */
#include "engine.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "host.h"

#define CONTEXT_TAG 0x454e4743u /* "ENGC" */
#define MODEL_TAG 0x454e474du   /* "ENGM" */
#define DEAD_TAG 0xdeaddeadu

struct engine_context {
    uint32_t tag;
    intptr_t handle;
    const engine_managed* managed;
};

struct engine_model {
    uint32_t tag;
    intptr_t handle;
    engine_context* context;
};

/* Oldest struct layouts this library accepts: engine_options of interface 0.1.0 ended before
 * `weights`, engine_request of 0.2.0 before `rng` (0.3.0's ended before `prompts`, 0.4.0's before
 * `loras`, 0.5.0's before `controlnets`, 0.6.0's after `guess_mode`). */
#define OPTIONS_MIN_SIZE offsetof(engine_options, weights)
#define REQUEST_MIN_SIZE offsetof(engine_request, rng)

/* engine_request of 0.6.0 ended with guess_mode, and its sizeof rounds that up to the struct's
 * alignment: on 64-bit targets 0.7.0's first field (`precision`) lies inside that tail padding, so
 * those bytes of a struct no larger than 0.6.0's are padding, never a precision. */
#define ROUND_UP(n, a) (((n) + (a) - 1) / (a) * (a))
#define REQUEST_0_6_SIZE \
    ROUND_UP(offsetof(engine_request, guess_mode) + sizeof(int32_t), _Alignof(engine_request))

uint32_t engine_version(void) { return ENGINE_VERSION_NUMBER; }

const char* engine_status_name(engine_status status)
{
    switch (status) {
    case ENGINE_OK: return "ENGINE_OK";
    case ENGINE_INVALID_ARGUMENT: return "ENGINE_INVALID_ARGUMENT";
    case ENGINE_NOT_FOUND: return "ENGINE_NOT_FOUND";
    case ENGINE_BUFFER_TOO_SMALL: return "ENGINE_BUFFER_TOO_SMALL";
    case ENGINE_CANCELLED: return "ENGINE_CANCELLED";
    case ENGINE_UNSUPPORTED: return "ENGINE_UNSUPPORTED";
    case ENGINE_RUNTIME_ERROR: return "ENGINE_RUNTIME_ERROR";
    case ENGINE_INVALID_DATA: return "ENGINE_INVALID_DATA";
    case ENGINE_OUT_OF_MEMORY: return "ENGINE_OUT_OF_MEMORY";
    case ENGINE_INTERNAL: return "ENGINE_INTERNAL";
    case ENGINE_NON_FINITE: return "ENGINE_NON_FINITE";
    }
    return "ENGINE_UNKNOWN_STATUS";
}

engine_status engine_options_init(engine_options* options)
{
    engine_error_clear();
    if (options == NULL) return engine_error_set(ENGINE_INVALID_ARGUMENT, "options is NULL");
    memset(options, 0, sizeof *options);
    options->struct_size = sizeof *options;
    return ENGINE_OK;
}

engine_status engine_request_init(engine_request* request)
{
    engine_error_clear();
    if (request == NULL) return engine_error_set(ENGINE_INVALID_ARGUMENT, "request is NULL");
    memset(request, 0, sizeof *request);
    request->struct_size = sizeof *request;
    request->steps = 20;
    request->guidance_scale = 3.0f;
    request->count = 1;
    request->strength = 0.8f;
    return ENGINE_OK;
}

static engine_status check_struct_size(const char* name, size_t size, size_t min, size_t max)
{
    if (size < min || size > max)
        return engine_error_set(size > max ? ENGINE_UNSUPPORTED : ENGINE_INVALID_ARGUMENT,
                                "%s.struct_size is %zu; this library (interface %d.%d.%d) "
                                "accepts %zu (set it to sizeof(%s) or use %s_init)",
                                name, size, ENGINE_VERSION_MAJOR, ENGINE_VERSION_MINOR,
                                ENGINE_VERSION_PATCH, max, name, name);
    return ENGINE_OK;
}

static engine_status check_context(const engine_context* context)
{
    if (context == NULL) return engine_error_set(ENGINE_INVALID_ARGUMENT, "context is NULL");
    if (context->tag != CONTEXT_TAG)
        return engine_error_set(ENGINE_INVALID_ARGUMENT,
                                context->tag == DEAD_TAG ? "context was already released"
                                                         : "context is not an engine_context");
    return ENGINE_OK;
}

static engine_status check_model(const engine_context* context, const engine_model* model)
{
    if (model == NULL) return engine_error_set(ENGINE_INVALID_ARGUMENT, "model is NULL");
    if (model->tag != MODEL_TAG)
        return engine_error_set(ENGINE_INVALID_ARGUMENT,
                                model->tag == DEAD_TAG ? "model was already released"
                                                       : "model is not an engine_model");
    if (context != NULL && model->context != context)
        return engine_error_set(ENGINE_INVALID_ARGUMENT,
                                "model was loaded by another context; use it with that context");
    return ENGINE_OK;
}

static engine_status check_request(const engine_request* request)
{
    if (request == NULL) return engine_error_set(ENGINE_INVALID_ARGUMENT, "request is NULL");
    engine_status st = check_struct_size("engine_request", request->struct_size, REQUEST_MIN_SIZE,
                                         sizeof(engine_request));
    if (st != ENGINE_OK) return st;
    if (request->class_labels == NULL && request->class_label_count != 0)
        return engine_error_set(ENGINE_INVALID_ARGUMENT,
                                "request.class_labels is NULL but class_label_count is %zu",
                                request->class_label_count);
    /* Fields of 0.4.0 are read only when the caller's struct holds them. */
    if (request->struct_size >= offsetof(engine_request, negative_prompt_count) + sizeof(size_t)) {
        if (request->prompts == NULL && request->prompt_count != 0)
            return engine_error_set(ENGINE_INVALID_ARGUMENT,
                                    "request.prompts is NULL but prompt_count is %zu",
                                    request->prompt_count);
        if (request->negative_prompts == NULL && request->negative_prompt_count != 0)
            return engine_error_set(ENGINE_INVALID_ARGUMENT,
                                    "request.negative_prompts is NULL but negative_prompt_count is %zu",
                                    request->negative_prompt_count);
    }
    /* Fields of 0.5.0 likewise. */
    if (request->struct_size >= offsetof(engine_request, lora_count) + sizeof(size_t)) {
        if (request->loras == NULL && request->lora_count != 0)
            return engine_error_set(ENGINE_INVALID_ARGUMENT,
                                    "request.loras is NULL but lora_count is %zu", request->lora_count);
        for (size_t i = 0; i < request->lora_count; ++i)
            if (request->loras[i].path == NULL)
                return engine_error_set(ENGINE_INVALID_ARGUMENT, "request.loras[%zu].path is NULL", i);
    }
    /* Fields of 0.6.0 likewise. */
    if (request->struct_size >= offsetof(engine_request, controlnet_count) + sizeof(size_t)) {
        if (request->controlnets == NULL && request->controlnet_count != 0)
            return engine_error_set(ENGINE_INVALID_ARGUMENT,
                                    "request.controlnets is NULL but controlnet_count is %zu",
                                    request->controlnet_count);
        for (size_t i = 0; i < request->controlnet_count; ++i) {
            if (request->controlnets[i].path == NULL)
                return engine_error_set(ENGINE_INVALID_ARGUMENT, "request.controlnets[%zu].path is NULL", i);
            if (request->controlnets[i].image == NULL)
                return engine_error_set(ENGINE_INVALID_ARGUMENT, "request.controlnets[%zu].image is NULL", i);
        }
    }
    return ENGINE_OK;
}

engine_status engine_create(const engine_options* options, engine_context** out_context)
{
    engine_error_clear();
    if (out_context == NULL) return engine_error_set(ENGINE_INVALID_ARGUMENT, "out_context is NULL");
    engine_options defaults;
    if (options == NULL) {
        engine_options_init(&defaults);
        options = &defaults;
    }
    engine_status st = check_struct_size("engine_options", options->struct_size, OPTIONS_MIN_SIZE,
                                         sizeof(engine_options));
    if (st != ENGINE_OK) return st;

    const engine_managed* managed = NULL;
    st = engine_host_start(options->managed_dir, options->dotnet_root, &managed);
    if (st != ENGINE_OK) return st;

    engine_context* context = calloc(1, sizeof *context);
    if (context == NULL) return engine_error_set(ENGINE_OUT_OF_MEMORY, "out of memory");
    const char* weights = options->struct_size >= offsetof(engine_options, weights) + sizeof options->weights
                              ? options->weights : NULL;
    st = (engine_status)managed->create_context(options->device, weights, &context->handle);
    if (st != ENGINE_OK) { free(context); return st; }
    context->tag = CONTEXT_TAG;
    context->managed = managed;
    *out_context = context;
    return ENGINE_OK;
}

engine_status engine_release_context(engine_context* context)
{
    engine_error_clear();
    engine_status st = check_context(context);
    if (st != ENGINE_OK) return st;
    st = (engine_status)context->managed->release_context(context->handle);
    /* INVALID_ARGUMENT (models still loaded) leaves the context alive; any other failure
     * happened while disposing, after the managed handle was freed. */
    if (st == ENGINE_INVALID_ARGUMENT) return st;
    context->tag = DEAD_TAG;
    free(context);
    return st;
}

engine_status engine_load_model(engine_context* context, const char* path, engine_model** out_model)
{
    engine_error_clear();
    engine_status st = check_context(context);
    if (st != ENGINE_OK) return st;
    if (path == NULL) return engine_error_set(ENGINE_INVALID_ARGUMENT, "path is NULL");
    if (out_model == NULL) return engine_error_set(ENGINE_INVALID_ARGUMENT, "out_model is NULL");
    engine_model* model = calloc(1, sizeof *model);
    if (model == NULL) return engine_error_set(ENGINE_OUT_OF_MEMORY, "out of memory");
    st = (engine_status)context->managed->load_model(context->handle, path, &model->handle);
    if (st != ENGINE_OK) { free(model); return st; }
    model->tag = MODEL_TAG;
    model->context = context;
    *out_model = model;
    return ENGINE_OK;
}

engine_status engine_release_model(engine_model* model)
{
    engine_error_clear();
    engine_status st = check_model(NULL, model);
    if (st != ENGINE_OK) return st;
    st = check_context(model->context);
    if (st != ENGINE_OK) return st;
    st = (engine_status)model->context->managed->release_model(model->context->handle, model->handle);
    if (st != ENGINE_OK) return st;
    model->tag = DEAD_TAG;
    free(model);
    return ENGINE_OK;
}

/* The request at this library's size: the fields of a shorter (older) caller struct are copied
 * over the defaults, so the managed side always reads a full engine_request. */
static const engine_request* full_request(const engine_request* request, engine_request* buffer)
{
    if (request->struct_size == sizeof *request) return request;
    engine_request_init(buffer);
    size_t fields = request->struct_size;
    if (fields <= REQUEST_0_6_SIZE && fields > offsetof(engine_request, precision))
        fields = offsetof(engine_request, precision); /* a 0.6.0 caller's tail padding */
    memcpy(buffer, request, fields);
    buffer->struct_size = sizeof *buffer;
    return buffer;
}

/* Shared checks of output_shape / output_size / generate. */
static engine_status check_run(engine_context* context, engine_model* model,
                               const engine_request* request)
{
    engine_status st = check_context(context);
    if (st == ENGINE_OK) st = check_model(context, model);
    if (st == ENGINE_OK) st = check_request(request);
    return st;
}

engine_status engine_output_shape(engine_context* context, engine_model* model,
                                  const engine_request* request, int32_t out_shape[4])
{
    engine_error_clear();
    engine_status st = check_run(context, model, request);
    if (st != ENGINE_OK) return st;
    if (out_shape == NULL) return engine_error_set(ENGINE_INVALID_ARGUMENT, "out_shape is NULL");
    engine_request full;
    return (engine_status)context->managed->output_shape(context->handle, model->handle,
                                                         full_request(request, &full), out_shape);
}

engine_status engine_output_size(engine_context* context, engine_model* model,
                                 const engine_request* request, size_t* out_len)
{
    engine_error_clear();
    if (out_len == NULL) {
        engine_status st = check_run(context, model, request);
        return st != ENGINE_OK ? st : engine_error_set(ENGINE_INVALID_ARGUMENT, "out_len is NULL");
    }
    int32_t shape[4];
    engine_status st = engine_output_shape(context, model, request, shape);
    if (st != ENGINE_OK) return st;
    *out_len = (size_t)shape[0] * (size_t)shape[1] * (size_t)shape[2] * (size_t)shape[3];
    return ENGINE_OK;
}

engine_status engine_generate(engine_context* context, engine_model* model,
                              const engine_request* request, float* out_pixels, size_t out_len)
{
    engine_error_clear();
    engine_status st = check_run(context, model, request);
    if (st != ENGINE_OK) return st;
    if (out_pixels == NULL) return engine_error_set(ENGINE_INVALID_ARGUMENT, "out_pixels is NULL");
    /* The managed side compares out_len with the request's shape before generating. */
    engine_request full;
    st = (engine_status)context->managed->generate(context->handle, model->handle,
                                                   full_request(request, &full), out_pixels, out_len);
    /* The progress callback runs on this thread and may have made failing calls of its own
     * (engine_cancel on a released context, ...); a successful run reports no error. */
    if (st == ENGINE_OK) engine_error_clear();
    return st;
}

engine_status engine_set_progress_callback(engine_context* context, engine_progress_fn fn,
                                           void* user_data)
{
    engine_error_clear();
    engine_status st = check_context(context);
    if (st != ENGINE_OK) return st;
    return (engine_status)context->managed->set_progress_callback(context->handle, fn, user_data);
}

engine_status engine_set_image_callback(engine_context* context, engine_image_fn fn,
                                        void* user_data)
{
    engine_error_clear();
    engine_status st = check_context(context);
    if (st != ENGINE_OK) return st;
    return (engine_status)context->managed->set_image_callback(context->handle, fn, user_data);
}

engine_status engine_cancel(engine_context* context)
{
    engine_error_clear();
    engine_status st = check_context(context);
    if (st != ENGINE_OK) return st;
    return (engine_status)context->managed->cancel(context->handle);
}
