/*
 * engine.h - C interface of the diffusion inference engine.
 *
 * Plain C99, no C++ types. The library (libengine) hosts the .NET runtime and forwards every
 * call to the managed engine (Engine.Native.dll), which it finds next to libengine, in the
 * directory given in engine_options.managed_dir, or in the ENGINE_MANAGED_DIR environment
 * variable. The runtime is started once per process, by the first engine_create.
 *
 * Conventions
 *   - Every function returns an engine_status, except engine_version, engine_status_name and
 *     engine_last_error, which cannot fail.
 *   - On failure, engine_last_error() on the same thread describes what went wrong. Output
 *     parameters are left untouched (handles) or unspecified (buffers) on failure.
 *   - A NULL pointer where an object is required gives ENGINE_INVALID_ARGUMENT.
 *   - Strings are NUL-terminated UTF-8. The library keeps no pointer to caller memory after a
 *     call returns, except the progress callback's user_data.
 *   - No exception or signal crosses this boundary: managed exceptions become status codes.
 *   - Versioned structs start with struct_size; set it to sizeof(the struct) (the *_init
 *     functions do this) so a newer library can tell which fields a host knows.
 *
 * Threading
 *   - Functions may be called from any thread. Calls on one context are serialised (one
 *     generation at a time per context); use several contexts to generate in parallel.
 *   - engine_cancel may be called from any thread at any time while its context is alive,
 *     including from inside the progress callback.
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "engine_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  if defined(ENGINE_BUILDING_LIBRARY)
#    define ENGINE_API __declspec(dllexport)
#  else
#    define ENGINE_API __declspec(dllimport)
#  endif
#else
#  define ENGINE_API __attribute__((visibility("default")))
#endif

/* The interface version this header describes, packed as (major << 16) | (minor << 8) | patch. */
#define ENGINE_VERSION_NUMBER \
    ((uint32_t)((ENGINE_VERSION_MAJOR << 16) | (ENGINE_VERSION_MINOR << 8) | ENGINE_VERSION_PATCH))

/* Result of every call. Values are stable across versions; new codes may be added. */
typedef enum engine_status {
    ENGINE_OK = 0,
    /* A NULL pointer, a bad value (unknown sampler or device, steps <= 0, bad label...), a
     * struct_size the library does not know, a handle used after release or with the wrong
     * context. */
    ENGINE_INVALID_ARGUMENT = 1,
    /* A file or directory (model folder, weights, managed assembly) does not exist. */
    ENGINE_NOT_FOUND = 2,
    /* The output buffer is smaller than engine_output_size reports. */
    ENGINE_BUFFER_TOO_SMALL = 3,
    /* The run was stopped by engine_cancel or by the progress callback. */
    ENGINE_CANCELLED = 4,
    /* The request is valid but not supported by this model, device or library version. */
    ENGINE_UNSUPPORTED = 5,
    /* The .NET runtime could not be found or started, or the compute device failed. */
    ENGINE_RUNTIME_ERROR = 6,
    /* A model file exists but its contents are malformed (bad JSON, truncated weights...). */
    ENGINE_INVALID_DATA = 7,
    /* Host or device memory ran out. */
    ENGINE_OUT_OF_MEMORY = 8,
    /* An unexpected failure inside the engine; the text names the exception. */
    ENGINE_INTERNAL = 9,
    /* The samples became NaN or infinite during sampling (the text names the step and the
     * images; typical causes: weights or a configuration value so large that activations
     * overflow, an extreme guidance scale, or half-precision weights that overflow). No samples are
     * returned. */
    ENGINE_NON_FINITE = 10
} engine_status;

/* An engine instance: one compute device, its memory pool, a progress callback and a cancel
 * flag. Created by engine_create, released by engine_release_context. */
typedef struct engine_context engine_context;

/* A model loaded on a context's device. Created by engine_load_model, released by
 * engine_release_model (before its context is released). */
typedef struct engine_model engine_model;

/* Options for engine_create. Initialise with engine_options_init, then set what you need. */
typedef struct engine_options {
    size_t struct_size;      /* sizeof(engine_options) */
    /* Compute device: "cpu", "cuda", "opencl", "ilgpu-cpu", or NULL / "" / "auto" for the
     * default (the ENGINE_DEVICE environment variable, else the best available device). */
    const char* device;
    /* Directory holding Engine.Native.dll and Engine.Native.runtimeconfig.json; NULL = the
     * ENGINE_MANAGED_DIR environment variable, else the directory of libengine itself.
     * Only the call that starts the runtime uses it; later calls must name the same
     * directory or NULL. */
    const char* managed_dir;
    /* Root of the .NET installation (the folder holding host/fxr); NULL = the usual search
     * (DOTNET_ROOT, then the system install location). Used only when starting the runtime. */
    const char* dotnet_root;
    /* Storage of the Linear and Conv2d weights of models this context loads: "f32" (NULL or ""
     * for the default), "f16" or "bf16". Half storage halves their memory; products still
     * accumulate in float32. Since interface 0.2.0; callers built against 0.1.0 pass the
     * shorter struct and get float32. */
    const char* weights;
} engine_options;

/* Layouts of an engine_image's pixels (interleaved R, G, B). Since interface 0.4.0. */
typedef enum engine_pixel_format {
    ENGINE_PIXELS_RGB8 = 1,    /* 3 bytes per pixel, 0..255 */
    ENGINE_PIXELS_RGB_F32 = 2  /* 3 floats per pixel, in [0, 1] */
} engine_pixel_format;

/* An image in the caller's memory, read during the call only: rows top to bottom, pixels left
 * to right, channels interleaved. Since interface 0.4.0. */
typedef struct engine_image {
    const void* data;
    int32_t format;            /* an engine_pixel_format */
    int32_t width;             /* pixels */
    int32_t height;            /* pixels */
    size_t stride;             /* bytes from one row to the next; 0 = packed rows */
} engine_image;

/* Storage of the activations inside the networks (UNet, DiT, VAE, text encoders) for one request, as
 * `engine generate --precision`: products and reductions accumulate in float32 in every mode; softmax and
 * norm statistics, embeddings, the sampler state and the tensors between the networks stay float32. The
 * managed "cpu" device computes with float32 activations only (F16 and BF16 are ENGINE_UNSUPPORTED there);
 * the ILGPU devices ("cuda", "opencl", "ilgpu-cpu") take all three. Since interface 0.7.0. */
typedef enum engine_precision {
    ENGINE_PRECISION_DEFAULT = 0, /* the device's default: F16 on "cuda", F32 elsewhere */
    ENGINE_PRECISION_F32 = 1,
    ENGINE_PRECISION_F16 = 2,
    ENGINE_PRECISION_BF16 = 3
} engine_precision;

/* Input precision of the Linear layers and convolutions for one request, as `engine generate --compute`:
 * products accumulate in float32 and norms, softmax and attention stay float32 in every mode. BF16 needs a
 * device that offers it (the "cpu" device on CPUs with AVX512-BF16, with libengine_bf16 beside the managed
 * engine); elsewhere it is ENGINE_UNSUPPORTED with the reason. Since interface 0.7.0. */
typedef enum engine_compute {
    ENGINE_COMPUTE_F32 = 0,  /* float32 throughout (the default, and the mode of every parity test) */
    ENGINE_COMPUTE_BF16 = 1, /* bf16 inputs, float32 accumulation */
    ENGINE_COMPUTE_AUTO = 2  /* BF16 where the device has it and expects it to be faster, else F32 */
} engine_compute;

/* A LoRA adapter applied for one request: W + scale * (alpha / rank) * (up @ down) on every module
 * the file names, in float32 (kohya and diffusers/PEFT layouts; `engine generate --lora`). The path
 * is read during the call only. Since interface 0.5.0. */
typedef struct engine_lora {
    const char* path;          /* the .safetensors file */
    float scale;               /* its scale, taken as given (1 = the file's full effect, 0 = none) */
} engine_lora;

/* A ControlNet steering one request (SD 1.x/2.x and SDXL pipeline folders; `engine generate
 * --controlnet`): its residuals, times scale, are added inside the UNet at the model calls i of N
 * with i / N >= start and (i + 1) / N <= end. The control image (a depth, normal, edge or pose
 * buffer, values in [0, 1]; it is never normalised) is resized to the output size as diffusers
 * does (8-bit pixels as PIL images, float ones as tensors) and serves every image of the request.
 * Set every field: {path, &image, 1.0f, 0.0f, 1.0f} is the full effect over the whole run. The
 * path and image are read during the call only. Since interface 0.6.0. */
typedef struct engine_controlnet {
    const char* path;          /* the ControlNetModel folder (config.json + weights) */
    const engine_image* image; /* its control image */
    float scale;               /* controlnet_conditioning_scale */
    float start;               /* control_guidance_start, in [0, 1) */
    float end;                 /* control_guidance_end, in (start, 1] */
} engine_controlnet;

/* One generation request. Initialise with engine_request_init (defaults below), then set
 * what you need. */
typedef struct engine_request {
    size_t struct_size;                /* sizeof(engine_request) */
    /* Sampler short name ("ddim", "euler", "euler_a", "dpmpp_2m", ...); ComfyUI's names mean what
     * ComfyUI's KSampler means (see `engine samplers`); NULL = "dpmpp_2m". */
    const char* sampler;
    /* A diffusers scheduler_config JSON text; when not NULL it overrides sampler. */
    const char* scheduler_config_json;
    /* Sigma/timestep schedule ("karras", "exponential", ...); NULL = the sampler's own ("normal"
     * for ComfyUI's names). */
    const char* schedule;
    int32_t steps;                     /* denoising steps; default 20 */
    float guidance_scale;              /* classifier-free guidance scale; 1 = conditional only;
                                        * default 3 */
    uint64_t seed;                     /* image i uses sample index i of this seed; default 0 */
    int32_t count;                     /* number of images; default 1 */
    /* Class labels: NULL/0 = the model's default, 1 label for every image, or count labels
     * (one per image). The array is read during the call only. */
    const int32_t* class_labels;
    size_t class_label_count;
    int32_t height;                    /* pixels; 0 = the model's sample size */
    int32_t width;                     /* pixels; 0 = the model's sample size */
    int32_t batch_size;                /* images per model call; 0 = automatic */
    /* Generator the seed drives: NULL, "" or "philox" = the engine's batch-invariant Philox
     * stream (image i is sample index i of seed); "torch" = PyTorch's CPU generator as diffusers
     * uses it: one torch.Generator().manual_seed(seed) for the request, x_T drawn first for all
     * count images at once, then every sampler draw, the same noise diffusers draws from that
     * seed. Since interface 0.3.0; callers built against 0.2.0 pass the shorter struct and get
     * Philox. */
    const char* rng;

    /* ---- Since interface 0.4.0: pipeline folders (model_index.json). Callers built against
     * 0.3.0 pass the shorter struct; the fields below then keep their defaults (no prompt, no
     * init image), so such a caller's requests run as before. */
    /* Prompts of a text-to-image pipeline: NULL/0 = none (the empty prompt), 1 prompt for every
     * image, or count prompts (image i gets prompt i). Models without text conditioning refuse
     * prompts (INVALID_ARGUMENT). The strings are read during the call only. */
    const char* const* prompts;
    size_t prompt_count;
    /* Negative prompts (the unconditional branch of guidance; used when guidance_scale > 1):
     * NULL/0 = none, 1 for every image, or count. */
    const char* const* negative_prompts;
    size_t negative_prompt_count;
    /* diffusers' clip_skip: 0 = the text encoder's last hidden state, n > 0 = the state n
     * layers before the last (beyond the layer count is INVALID_ARGUMENT). */
    int32_t clip_skip;
    /* SDXL micro-conditioning as {height, width}, {top, left}, {height, width}: {0, 0} = the
     * defaults (original and target size = the image size, crop at the top left). Other models
     * refuse non-default values. */
    int32_t original_size[2];
    int32_t crop_top_left[2];
    int32_t target_size[2];
    /* img2img strength in (0, 1] (diffusers' strength: the share of the schedule run from the
     * noised init image); read only with init_image; default 0.8. */
    float strength;
    /* img2img source image, NULL = text to image. SD and SDXL pipeline folders run diffusers'
     * Img2Img on it (resized to height x width as diffusers does: 8-bit pixels as PIL images,
     * float ones as tensors); other models refuse it. A bad image (NULL data, unknown format,
     * size < 1, stride shorter than a row) or strength is INVALID_ARGUMENT. */
    const engine_image* init_image;

    /* ---- Since interface 0.5.0: LoRA adapters. Callers built against 0.4.0 (or older) pass the
     * shorter struct and get none. */
    /* Adapters merged into the model (UNet and text encoders) for this request only, each with its
     * own scale: NULL/0 = none. The base weights come back unchanged for a later request without
     * them, and changing adapters or scales between requests does not reload the model. A NULL
     * array with lora_count > 0, a NULL path or a non-finite scale is INVALID_ARGUMENT; a missing
     * file is NOT_FOUND; a malformed file, or one whose keys match no module of the model or whose
     * modules do not fit its weights (a Stable Diffusion LoRA on another model), is INVALID_DATA
     * (the text names the file); a layout the engine does not read (LoKr, LoHa, DoRA) is UNSUPPORTED. */
    const engine_lora* loras;
    size_t lora_count;

    /* ---- Since interface 0.6.0: ControlNets. Callers built against 0.5.0 (or older) pass the
     * shorter struct and get none. */
    /* NULL/0 = none; several are summed in order. A NULL array with controlnet_count > 0, a NULL
     * path or image, a bad image (see init_image) or a value outside [0, 1], a non-finite scale or
     * a window outside 0 <= start < end <= 1 is INVALID_ARGUMENT; a missing folder is NOT_FOUND; a
     * ControlNet whose block layout, cross-attention width or added conditioning does not fit the
     * model's UNet is INVALID_ARGUMENT (the text names the folder). */
    const engine_controlnet* controlnets;
    size_t controlnet_count;
    /* diffusers' guess_mode: nonzero = with guidance the ControlNets see the conditional half only,
     * their residuals scaled from 0.1 (first) to 1 (mid block). Needs a ControlNet. */
    int32_t guess_mode;

    /* ---- Since interface 0.7.0: precision and SDXL's negative micro-conditioning. Callers built
     * against 0.6.0 (or older) pass the shorter struct and get the defaults below. (On 64-bit targets
     * `precision` lies where 0.6.0's struct ended in padding; the library reads it only from a struct
     * larger than 0.6.0's, never from an older caller's padding.) */
    /* An engine_precision; default ENGINE_PRECISION_DEFAULT. Any other value is INVALID_ARGUMENT; F16 or
     * BF16 on a device that computes with float32 activations only is UNSUPPORTED. */
    int32_t precision;
    /* An engine_compute; default ENGINE_COMPUTE_F32. Any other value is INVALID_ARGUMENT; BF16 on a
     * device without it is UNSUPPORTED (the text says why). */
    int32_t compute;
    /* SDXL's negative_original_size {height, width}, negative_crops_coords_top_left {top, left} and
     * negative_target_size {height, width}: the time ids of the unconditional branch of guidance. {0, 0}
     * everywhere = the positive ids (diffusers' default). The two sizes go together (one alone is
     * INVALID_ARGUMENT, as is the crop without them); negative values are INVALID_ARGUMENT; other models
     * than SDXL refuse them. With more than one image diffusers pairs the time ids with the rows as
     * README.md ("SDXL sizes") describes, and so does the engine. */
    int32_t negative_original_size[2];
    int32_t negative_crop_top_left[2];
    int32_t negative_target_size[2];
} engine_request;

/* Progress callback, called on the thread running engine_generate after each denoising step
 * of each batch: step counts from 1 to total_steps; image_index is the index of the first
 * image of the batch. Return 0 to continue, nonzero to cancel (engine_generate then returns
 * ENGINE_CANCELLED). It may call engine_cancel, engine_last_error and engine_status_name, but
 * no other function on the same context. */
typedef int (*engine_progress_fn)(int32_t step, int32_t total_steps, int32_t image_index,
                                  void* user_data);

/* Finished-image callback, called on the thread running engine_generate for each image as soon
 * as its batch is finished, before later batches run, so a host keeps every finished image even
 * when a later batch is cancelled or fails. image_index is the image's index in the request;
 * pixels holds that image alone as float32 CHW clamped to [-1, 1] (len = channels x height x
 * width floats, the image's part of out_pixels), valid only during the call. Images whose
 * samples went NaN or infinite are not reported. Return 0 to continue, nonzero to cancel (as the
 * progress callback; no further image is reported). It may call the same functions as the
 * progress callback. */
typedef int (*engine_image_fn)(int32_t image_index, const float* pixels, size_t len,
                               void* user_data);

/* Interface version of the library, packed like ENGINE_VERSION_NUMBER. Compare its major
 * part with the header's before use. Needs no runtime; never fails. */
ENGINE_API uint32_t engine_version(void);

/* A constant name for a status code ("ENGINE_OK", ...; "ENGINE_UNKNOWN_STATUS" for other
 * values). Never fails, never NULL. */
ENGINE_API const char* engine_status_name(engine_status status);

/* Text describing the last failure of a call made on this thread; "" when the last call
 * succeeded. Valid until the next engine_* call on this thread; never NULL. */
ENGINE_API const char* engine_last_error(void);

/* Fills *options with defaults (struct_size set, everything else NULL).
 * INVALID_ARGUMENT: options is NULL. */
ENGINE_API engine_status engine_options_init(engine_options* options);

/* Fills *request with defaults: struct_size set, steps 20, guidance_scale 3, count 1, seed 0,
 * strength 0.8, everything else NULL/0 (precision ENGINE_PRECISION_DEFAULT, compute ENGINE_COMPUTE_F32).
 * INVALID_ARGUMENT: request is NULL. */
ENGINE_API engine_status engine_request_init(engine_request* request);

/* Creates a context on the device chosen by options (NULL = all defaults) and stores it in
 * *out_context. The first successful call starts the .NET runtime for the whole process.
 * INVALID_ARGUMENT: out_context NULL, unknown struct_size, device or weights, managed_dir differs
 * from the one the runtime was started with. NOT_FOUND: the managed assembly or its
 * runtimeconfig is missing. RUNTIME_ERROR: no .NET runtime found, it failed to start, or
 * the device is unavailable. */
ENGINE_API engine_status engine_create(const engine_options* options,
                                       engine_context** out_context);

/* Releases a context and its device memory. Release its models first: a context that still
 * has models is left alive and INVALID_ARGUMENT is returned. Must not run concurrently with
 * any other call on the same context. INVALID_ARGUMENT: context NULL or already released. */
ENGINE_API engine_status engine_release_context(engine_context* context);

/* Loads the diffusers model folder at path (config.json + weights, scheduler_config.json), a
 * pipeline folder (model_index.json beside its components: StableDiffusionPipeline,
 * StableDiffusionXLPipeline, StableDiffusion3Pipeline without T5, DiTPipeline), or a single-file
 * SD 1.x / 2.x / SDXL checkpoint (.safetensors in the original layout; configs inferred from its
 * header, as `engine inspect --json` shows them) onto the context's device and stores it in
 * *out_model. A pipeline or checkpoint loads as one model whose requests take prompts and whose
 * output is the decoded image.
 * INVALID_ARGUMENT: a NULL argument, a file that is not a single-file checkpoint (.safetensors), or a
 * model type the engine does not know (config.json's _class_name, model_index.json's pipeline class).
 * NOT_FOUND: the folder or a required file (config.json, the weights, a pipeline component) is missing.
 * INVALID_DATA: malformed files: bad JSON, a bad config value, truncated or corrupt
 * safetensors, weights missing a tensor the network needs (or holding one it does not),
 * a weight holding NaN or infinity (the text names the tensor). */
ENGINE_API engine_status engine_load_model(engine_context* context, const char* path,
                                           engine_model** out_model);

/* Releases a model and its weights. INVALID_ARGUMENT: model NULL or already released. */
ENGINE_API engine_status engine_release_model(engine_model* model);

/* Number of floats engine_generate writes for this request: count * channels * height *
 * width (for a pipeline folder: count * 3 * height * width of the decoded image). INVALID_ARGUMENT: a NULL argument, a model of another context, a bad request.
 * UNSUPPORTED: a precision or compute the context's device cannot do (as engine_generate). */
ENGINE_API engine_status engine_output_size(engine_context* context, engine_model* model,
                                            const engine_request* request, size_t* out_len);

/* Output shape of this request as {count, channels, height, width}.
 * INVALID_ARGUMENT and UNSUPPORTED as engine_output_size. */
ENGINE_API engine_status engine_output_shape(engine_context* context, engine_model* model,
                                             const engine_request* request,
                                             int32_t out_shape[4]);

/* Runs the request and writes the images to out_pixels as NCHW float32 clamped to [-1, 1]
 * (count x channels x height x width; out_len is the buffer's length in floats). For a
 * pipeline folder these are the VAE-decoded RGB images, 2 x (diffusers' [0, 1] image) - 1. Blocks
 * until done; calls the progress callback after each step.
 * BUFFER_TOO_SMALL: out_len < engine_output_size (nothing is generated).
 * CANCELLED: engine_cancel or the callback stopped the run (buffer contents unspecified).
 * NON_FINITE: the samples became NaN or infinite; the text names the step (buffer contents
 * unspecified).
 * INVALID_ARGUMENT: a NULL argument, unknown sampler or schedule, bad steps/count/labels, an unknown
 * precision or compute value.
 * UNSUPPORTED: a valid option this model or device cannot do (a half precision on the "cpu" device, BF16
 * compute without AVX512-BF16). */
ENGINE_API engine_status engine_generate(engine_context* context, engine_model* model,
                                         const engine_request* request, float* out_pixels,
                                         size_t out_len);

/* Sets (or with fn NULL clears) the context's progress callback; user_data is passed back to
 * it unchanged. Takes effect at the next engine_generate.
 * INVALID_ARGUMENT: context NULL. */
ENGINE_API engine_status engine_set_progress_callback(engine_context* context,
                                                      engine_progress_fn fn, void* user_data);

/* Sets (or with fn NULL clears) the context's finished-image callback; user_data is passed back
 * to it unchanged. Takes effect at the next engine_generate. INVALID_ARGUMENT: context NULL. */
ENGINE_API engine_status engine_set_image_callback(engine_context* context, engine_image_fn fn,
                                                   void* user_data);

/* Asks the generation running on context to stop; engine_generate then returns
 * ENGINE_CANCELLED at the next step boundary. Has no effect when nothing runs (a later run
 * is not affected). Thread-safe; may be called from the progress callback.
 * INVALID_ARGUMENT: context NULL or released. */
ENGINE_API engine_status engine_cancel(engine_context* context);

#ifdef __cplusplus
}
#endif

#endif /* ENGINE_H */
