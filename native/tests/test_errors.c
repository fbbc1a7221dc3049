/* Error handling at the boundary: NULL pointers, bad struct sizes, a missing managed
 * directory, an unknown device, a missing model path, an unknown sampler, a too-small buffer,
 * handle misuse. Each must return its status with a useful engine_last_error text. */
#include <stddef.h>

#include "test_support.h"

#include <string.h>

int main(void)
{
    /* No runtime needed for these. */
    CHECK(engine_version() == ENGINE_VERSION_NUMBER);
    CHECK(strcmp(engine_status_name(ENGINE_BUFFER_TOO_SMALL), "ENGINE_BUFFER_TOO_SMALL") == 0);
    CHECK(strcmp(engine_status_name(ENGINE_NON_FINITE), "ENGINE_NON_FINITE") == 0);
    CHECK(strcmp(engine_status_name((engine_status)1234), "ENGINE_UNKNOWN_STATUS") == 0);
    CHECK(engine_last_error() != NULL && engine_last_error()[0] == '\0');

    engine_context* context = NULL;
    engine_options options;
    EXPECT_STATUS(engine_options_init(NULL), ENGINE_INVALID_ARGUMENT, "options");
    EXPECT_STATUS(engine_create(NULL, NULL), ENGINE_INVALID_ARGUMENT, "out_context");
    REQUIRE_OK(engine_options_init(&options));
    options.struct_size = 3;
    EXPECT_STATUS(engine_create(&options, &context), ENGINE_INVALID_ARGUMENT, "struct_size");
    options.struct_size = sizeof options + 8;
    EXPECT_STATUS(engine_create(&options, &context), ENGINE_UNSUPPORTED, "struct_size");

    /* Hosting errors come before the runtime starts, and a failed start can be retried. */
    REQUIRE_OK(engine_options_init(&options));
    options.managed_dir = "/nonexistent/engine-managed";
    EXPECT_STATUS(engine_create(&options, &context), ENGINE_NOT_FOUND, "/nonexistent/engine-managed");
    options.managed_dir = "/";
    EXPECT_STATUS(engine_create(&options, &context), ENGINE_NOT_FOUND, "Engine.Native");
    CHECK(context == NULL);

    /* Handles: NULL everywhere. */
    EXPECT_STATUS(engine_release_context(NULL), ENGINE_INVALID_ARGUMENT, "context");
    EXPECT_STATUS(engine_release_model(NULL), ENGINE_INVALID_ARGUMENT, "model");
    EXPECT_STATUS(engine_cancel(NULL), ENGINE_INVALID_ARGUMENT, "context");
    EXPECT_STATUS(engine_set_progress_callback(NULL, NULL, NULL), ENGINE_INVALID_ARGUMENT, "context");
    EXPECT_STATUS(engine_set_image_callback(NULL, NULL, NULL), ENGINE_INVALID_ARGUMENT, "context");
    EXPECT_STATUS(engine_load_model(NULL, "x", NULL), ENGINE_INVALID_ARGUMENT, "context");
    EXPECT_STATUS(engine_request_init(NULL), ENGINE_INVALID_ARGUMENT, "request");

    /* Default directory (next to libengine): starts the runtime. */
    REQUIRE_OK(engine_create(NULL, &context));
    CHECK(context != NULL);
    REQUIRE_OK(engine_set_progress_callback(context, NULL, NULL));
    REQUIRE_OK(engine_cancel(context)); /* nothing runs: no effect */

    engine_context* other = NULL;
    REQUIRE_OK(engine_options_init(&options));
    options.device = "warp-drive";
    EXPECT_STATUS(engine_create(&options, &other), ENGINE_INVALID_ARGUMENT, "warp-drive");
    REQUIRE_OK(engine_options_init(&options));
    options.weights = "int4";
    EXPECT_STATUS(engine_create(&options, &other), ENGINE_INVALID_ARGUMENT, "unknown weights 'int4'");
    /* A caller built against interface 0.1.0 passes the struct without `weights`. */
    REQUIRE_OK(engine_options_init(&options));
    options.struct_size = offsetof(engine_options, weights);
    options.device = "cpu";
    REQUIRE_OK(engine_create(&options, &other));
    REQUIRE_OK(engine_release_context(other));
    other = NULL;
    REQUIRE_OK(engine_options_init(&options));
    options.managed_dir = "/tmp";
    EXPECT_STATUS(engine_create(&options, &other), ENGINE_INVALID_ARGUMENT, "already running");
    CHECK(other == NULL);

    engine_model* model = NULL;
    EXPECT_STATUS(engine_load_model(context, NULL, &model), ENGINE_INVALID_ARGUMENT, "path");
    EXPECT_STATUS(engine_load_model(context, "/nonexistent/model", NULL), ENGINE_INVALID_ARGUMENT, "out_model");
    EXPECT_STATUS(engine_load_model(context, "/nonexistent/model", &model), ENGINE_NOT_FOUND,
                  "/nonexistent/model");
    CHECK(model == NULL);
    /* A context passed where a model is expected is told apart by its tag. */
    EXPECT_STATUS(engine_release_model((engine_model*)context), ENGINE_INVALID_ARGUMENT, "not an engine_model");

    const char* path = test_model_path();
    if (path == NULL) {
        REQUIRE_OK(engine_release_context(context));
        printf("SKIP: model checks: built-in model not found\n");
        return TEST_SKIP;
    }
    REQUIRE_OK(engine_load_model(context, path, &model));

    engine_request request;
    REQUIRE_OK(engine_request_init(&request));
    request.steps = 2;
    size_t length = 0;
    int32_t shape[4];
    EXPECT_STATUS(engine_output_size(NULL, model, &request, &length), ENGINE_INVALID_ARGUMENT, "context");
    EXPECT_STATUS(engine_output_size(context, NULL, &request, &length), ENGINE_INVALID_ARGUMENT, "model");
    EXPECT_STATUS(engine_output_size(context, model, NULL, &length), ENGINE_INVALID_ARGUMENT, "request");
    EXPECT_STATUS(engine_output_size(context, model, &request, NULL), ENGINE_INVALID_ARGUMENT, "out_len");
    EXPECT_STATUS(engine_output_shape(context, model, &request, NULL), ENGINE_INVALID_ARGUMENT, "out_shape");
    REQUIRE_OK(engine_output_size(context, model, &request, &length));
    REQUIRE_OK(engine_output_shape(context, model, &request, shape));
    CHECK(shape[0] == 1 && shape[1] == 1 && shape[2] == 28 && shape[3] == 28);
    CHECK(length == 28 * 28);

    float* pixels = malloc(length * sizeof(float));
    CHECK(pixels != NULL);
    EXPECT_STATUS(engine_generate(context, model, &request, NULL, length), ENGINE_INVALID_ARGUMENT, "out_pixels");
    EXPECT_STATUS(engine_generate(context, model, NULL, pixels, length), ENGINE_INVALID_ARGUMENT, "request");
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length - 1), ENGINE_BUFFER_TOO_SMALL, "784");

    request.struct_size = offsetof(engine_request, rng) - 8;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "struct_size");

    /* rng: Philox by default; a caller built against interface 0.2.0 passes the struct without
     * `rng` (not read, so Philox); "torch" gives other noise; an unknown name is rejected. */
    float* philox = malloc(length * sizeof(float));
    CHECK(philox != NULL);
    REQUIRE_OK(engine_request_init(&request));
    request.steps = 2;
    request.sampler = "euler_a";
    REQUIRE_OK(engine_generate(context, model, &request, philox, length));
    request.struct_size = offsetof(engine_request, rng);
    request.rng = "torch";
    REQUIRE_OK(engine_generate(context, model, &request, pixels, length));
    CHECK(memcmp(pixels, philox, length * sizeof(float)) == 0);
    request.struct_size = sizeof request;
    REQUIRE_OK(engine_generate(context, model, &request, pixels, length));
    CHECK(memcmp(pixels, philox, length * sizeof(float)) != 0);
    request.rng = "numpy";
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "rng 'numpy'");

    /* A host compiled against interface 0.3.0 passes that header's engine_request (it ended at
     * `rng`; 0.4.0 appended the pipeline fields): the same request gives the same bits. */
    struct request_v0_3 {
        size_t struct_size;
        const char* sampler;
        const char* scheduler_config_json;
        const char* schedule;
        int32_t steps;
        float guidance_scale;
        uint64_t seed;
        int32_t count;
        const int32_t* class_labels;
        size_t class_label_count;
        int32_t height;
        int32_t width;
        int32_t batch_size;
        const char* rng;
    } old;
    CHECK(sizeof old == offsetof(engine_request, prompts));
    memset(&old, 0, sizeof old);
    old.struct_size = sizeof old;
    old.sampler = "euler_a";
    old.steps = 2;
    old.guidance_scale = 3.0f;
    old.count = 1;
    old.seed = 9;
    old.rng = "torch";
    REQUIRE_OK(engine_generate(context, model, (const engine_request*)&old, philox, length));
    REQUIRE_OK(engine_request_init(&request));
    request.sampler = "euler_a";
    request.steps = 2;
    request.seed = 9;
    request.rng = "torch";
    REQUIRE_OK(engine_generate(context, model, &request, pixels, length));
    CHECK(memcmp(pixels, philox, length * sizeof(float)) == 0);
    free(philox);
    REQUIRE_OK(engine_request_init(&request));
    request.steps = 2;
    request.class_label_count = 2;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "class_labels");
    REQUIRE_OK(engine_request_init(&request));
    request.steps = 2;
    request.sampler = "no_such_sampler";
    EXPECT_STATUS(engine_output_size(context, model, &request, &length), ENGINE_INVALID_ARGUMENT, "no_such_sampler");
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "no_such_sampler");
    request.sampler = NULL;
    request.steps = 0;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "teps");

    /* Models belong to the context that loaded them; a context with models stays alive. */
    REQUIRE_OK(engine_create(NULL, &other));
    request.steps = 2;
    EXPECT_STATUS(engine_output_size(other, model, &request, &length), ENGINE_INVALID_ARGUMENT, "another context");
    EXPECT_STATUS(engine_release_context(context), ENGINE_INVALID_ARGUMENT, "release them");
    REQUIRE_OK(engine_release_context(other));

    /* A successful call clears the previous error text. */
    EXPECT_STATUS(engine_cancel(NULL), ENGINE_INVALID_ARGUMENT, NULL);
    REQUIRE_OK(engine_output_size(context, model, &request, &length));

    REQUIRE_OK(engine_release_model(model));
    REQUIRE_OK(engine_release_context(context));
    free(pixels);
    printf("PASS\n");
    return 0;
}
