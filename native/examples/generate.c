/* Generates images through the C interface and writes them side by side as one PGM (grey
 * models) or PPM (RGB models) file.
 *
 *   engine_generate MODEL_DIR OUT.pgm [--sampler NAME] [--steps N] [--seed N] [--count N]
 *                   [--label L] [--guidance G] [--device KIND]
 *
 * Prints progress on stderr; exits 0 on success, 1 with the engine's error text otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static int progress(int32_t step, int32_t total, int32_t image_index, void* user_data)
{
    (void)user_data;
    fprintf(stderr, "\rimages from %d: step %d/%d", image_index, step, total);
    if (step == total) fputc('\n', stderr);
    return 0;
}

static unsigned char to_byte(float v)
{
    float x = (v + 1.0f) * 127.5f + 0.5f;
    return x <= 0.0f ? 0 : x >= 255.0f ? 255 : (unsigned char)x;
}

/* Writes count NCHW images of channels x height x width in one row. */
static int write_pnm(const char* path, const float* pixels, const int32_t shape[4])
{
    int n = shape[0], c = shape[1], h = shape[2], w = shape[3];
    if (c != 1 && c != 3) { fprintf(stderr, "cannot write %d-channel images as PNM\n", c); return 0; }
    FILE* f = fopen(path, "wb");
    if (f == NULL) { perror(path); return 0; }
    fprintf(f, "%s\n%d %d\n255\n", c == 1 ? "P5" : "P6", n * w, h);
    for (int y = 0; y < h; ++y)
        for (int i = 0; i < n; ++i)
            for (int x = 0; x < w; ++x)
                for (int ch = 0; ch < c; ++ch)
                    fputc(to_byte(pixels[(((size_t)i * c + ch) * h + y) * w + x]), f);
    int ok = fclose(f) == 0;
    if (!ok) perror(path);
    return ok;
}

static int fail(const char* what, engine_status status)
{
    fprintf(stderr, "%s failed: %s: %s\n", what, engine_status_name(status), engine_last_error());
    return 1;
}

int main(int argc, char** argv)
{
    if (argc < 3 || (argc - 3) % 2 != 0) {
        fprintf(stderr, "usage: %s MODEL_DIR OUT.pgm [--sampler NAME] [--steps N] [--seed N] "
                        "[--count N] [--label L] [--guidance G] [--device KIND]\n", argv[0]);
        return 2;
    }
    engine_options options;
    engine_request request;
    engine_options_init(&options);
    engine_request_init(&request);
    int32_t label = 0;
    for (int i = 3; i < argc; i += 2) {
        const char *key = argv[i], *value = argv[i + 1];
        if (strcmp(key, "--sampler") == 0) request.sampler = value;
        else if (strcmp(key, "--steps") == 0) request.steps = atoi(value);
        else if (strcmp(key, "--seed") == 0) request.seed = strtoull(value, NULL, 10);
        else if (strcmp(key, "--count") == 0) request.count = atoi(value);
        else if (strcmp(key, "--label") == 0) { label = atoi(value); request.class_labels = &label; request.class_label_count = 1; }
        else if (strcmp(key, "--guidance") == 0) request.guidance_scale = (float)atof(value);
        else if (strcmp(key, "--device") == 0) options.device = value;
        else { fprintf(stderr, "unknown option %s\n", key); return 2; }
    }

    engine_context* context = NULL;
    engine_model* model = NULL;
    engine_status st = engine_create(&options, &context);
    if (st != ENGINE_OK) return fail("engine_create", st);
    int rc = 1;
    float* pixels = NULL;
    int32_t shape[4];
    size_t length = 0;
    if ((st = engine_load_model(context, argv[1], &model)) != ENGINE_OK) { fail("engine_load_model", st); goto done; }
    if ((st = engine_output_shape(context, model, &request, shape)) != ENGINE_OK) { fail("engine_output_shape", st); goto done; }
    if ((st = engine_output_size(context, model, &request, &length)) != ENGINE_OK) { fail("engine_output_size", st); goto done; }
    pixels = malloc(length * sizeof *pixels);
    if (pixels == NULL) { fprintf(stderr, "out of memory\n"); goto done; }
    engine_set_progress_callback(context, progress, NULL);
    if ((st = engine_generate(context, model, &request, pixels, length)) != ENGINE_OK) { fail("engine_generate", st); goto done; }
    if (!write_pnm(argv[2], pixels, shape)) goto done;
    printf("wrote %s: %d image(s) of %dx%dx%d\n", argv[2], shape[0], shape[1], shape[2], shape[3]);
    rc = 0;
done:
    free(pixels);
    if (model != NULL && (st = engine_release_model(model)) != ENGINE_OK) { fail("engine_release_model", st); rc = 1; }
    if ((st = engine_release_context(context)) != ENGINE_OK) { fail("engine_release_context", st); rc = 1; }
    return rc;
}
