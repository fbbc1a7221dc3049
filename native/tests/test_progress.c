/* The progress callback is called once per denoising step, in order, with the request's step
 * count, and not at all once cleared. The finished-image callback hands out each image, equal to
 * its part of the output, as its batch finishes. */
#include "test_support.h"

#define MAX_CALLS 256

typedef struct {
    int calls;
    int32_t step[MAX_CALLS], total[MAX_CALLS], image[MAX_CALLS];
} record;

static int on_progress(int32_t step, int32_t total, int32_t image_index, void* user_data)
{
    record* r = user_data;
    if (r->calls < MAX_CALLS) {
        r->step[r->calls] = step;
        r->total[r->calls] = total;
        r->image[r->calls] = image_index;
    }
    r->calls++;
    return 0;
}

typedef struct {
    int calls;
    const float* expected; /* the output of an earlier identical run */
    int mismatches;
} images;

static int on_image(int32_t image_index, const float* pixels, size_t len, void* user_data)
{
    images* r = user_data;
    if (image_index != r->calls || len != 28 * 28) r->mismatches++;
    else if (memcmp(pixels, r->expected + (size_t)image_index * len, len * sizeof(float)) != 0) r->mismatches++;
    r->calls++;
    return 0;
}

typedef struct {
    engine_context* context;
    engine_model* model;
    const engine_request* request;
    engine_status status;
    char error[256];
} reentry;

/* Tries to start another run on the same context from inside the callback. */
static int reenter(int32_t step, int32_t total, int32_t image_index, void* user_data)
{
    (void)total;
    (void)image_index;
    reentry* r = user_data;
    if (step == 1) {
        float pixel[28 * 28];
        r->status = engine_generate(r->context, r->model, r->request, pixel, 28 * 28);
        snprintf(r->error, sizeof r->error, "%s", engine_last_error());
    }
    return 0;
}

int main(void)
{
    engine_context* context;
    engine_model* model;
    test_open_model(&context, &model);

    engine_request request;
    REQUIRE_OK(engine_request_init(&request));
    request.steps = 5;
    request.sampler = "ddim";
    size_t length;
    REQUIRE_OK(engine_output_size(context, model, &request, &length));
    float* pixels = malloc(length * sizeof(float));
    CHECK(pixels != NULL);

    /* One image: exactly one call per step, steps 1..5 of 5, image 0. */
    record r = { 0 };
    REQUIRE_OK(engine_set_progress_callback(context, on_progress, &r));
    REQUIRE_OK(engine_generate(context, model, &request, pixels, length));
    if (r.calls != request.steps) FAIL("%d progress calls for %d steps", r.calls, request.steps);
    for (int i = 0; i < r.calls; ++i)
        if (r.step[i] != i + 1 || r.total[i] != request.steps || r.image[i] != 0)
            FAIL("call %d: step %d of %d, image %d", i, r.step[i], r.total[i], r.image[i]);

    /* Three images, one per batch: each batch counts its steps 1..5 and names its first image. */
    request.count = 3;
    request.batch_size = 1;
    REQUIRE_OK(engine_output_size(context, model, &request, &length));
    float* three = malloc(length * sizeof(float));
    CHECK(three != NULL);
    memset(&r, 0, sizeof r);
    REQUIRE_OK(engine_generate(context, model, &request, three, length));
    if (r.calls != 3 * request.steps) FAIL("%d progress calls for 3 batches of %d steps", r.calls, request.steps);
    for (int i = 0; i < r.calls; ++i)
        if (r.step[i] != i % request.steps + 1 || r.total[i] != request.steps || r.image[i] != i / request.steps)
            FAIL("call %d: step %d of %d, image %d", i, r.step[i], r.total[i], r.image[i]);

    /* Finished images: one call per image, in order, each equal to its part of the output. */
    images im = { 0, three, 0 };
    REQUIRE_OK(engine_set_image_callback(context, on_image, &im));
    float* again = malloc(length * sizeof(float));
    CHECK(again != NULL);
    REQUIRE_OK(engine_generate(context, model, &request, again, length));
    REQUIRE_OK(engine_set_image_callback(context, NULL, NULL));
    if (im.calls != 3 || im.mismatches != 0) FAIL("%d image calls for 3 images, %d wrong", im.calls, im.mismatches);
    free(again);

    /* A callback cannot start another run on its own context, and the outer run still works. */
    request.count = 1;
    reentry re = { context, model, &request, ENGINE_OK, "" };
    REQUIRE_OK(engine_set_progress_callback(context, reenter, &re));
    REQUIRE_OK(engine_generate(context, model, &request, pixels, 28 * 28));
    if (re.status != ENGINE_INVALID_ARGUMENT || strstr(re.error, "progress callback") == NULL)
        FAIL("engine_generate from the callback returned %s: '%s'", engine_status_name(re.status), re.error);
    printf("  engine_generate inside the callback -> %s: %s\n", engine_status_name(re.status), re.error);
    request.count = 3;

    /* Cleared: no more calls. */
    REQUIRE_OK(engine_set_progress_callback(context, NULL, NULL));
    memset(&r, 0, sizeof r);
    REQUIRE_OK(engine_generate(context, model, &request, three, length));
    CHECK(r.calls == 0);

    REQUIRE_OK(engine_release_model(model));
    REQUIRE_OK(engine_release_context(context));
    free(pixels);
    free(three);
    printf("PASS\n");
    return 0;
}
