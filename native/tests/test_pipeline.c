/* A diffusers pipeline folder through the C interface (0.4.0): the tiny Stable Diffusion fixture
 * loads with engine_load_model, a request with prompts, size, PyTorch's generator and the
 * reference's scheduler gives diffusers' image (fixtures/rng/sd_tiny_seed/reference_1, within 1e-3
 * of its largest value), a caller built against 0.3.0 (no prompt fields) is read as such, and the new
 * fields are checked: prompt arrays, clip skip, SDXL sizes, and the init image (image-to-image from
 * 8-bit or float pixels; a malformed one is INVALID_ARGUMENT). Skipped (77) without the
 * fixtures (ENGINE_FIXTURES, else ../shared/fixtures beside the repository). */
#include "test_support.h"

static float absf(float v) { return v < 0.0f ? -v : v; }

/* DPM-Solver++ 2M as the reference's scheduler config (fixtures/rng/sd_tiny_seed/reference_1.json). */
static const char* dpmpp_config =
    "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"num_train_timesteps\": 1000, \"beta_start\": 0.00085,"
    " \"beta_end\": 0.012, \"beta_schedule\": \"scaled_linear\", \"solver_order\": 2, \"prediction_type\": \"epsilon\","
    " \"algorithm_type\": \"dpmsolver++\", \"solver_type\": \"midpoint\", \"lower_order_final\": true,"
    " \"final_sigmas_type\": \"zero\", \"timestep_spacing\": \"leading\", \"steps_offset\": 1}";

/* engine_request exactly as interface 0.3.0 declared it: what a host compiled then passes. */
typedef struct request_v0_3 {
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
} request_v0_3;

int main(void)
{
    const char* root = test_fixtures_root();
    if (root == NULL) {
        printf("SKIP: fixtures not found (set ENGINE_FIXTURES)\n");
        return TEST_SKIP;
    }
    char pipeline[1024], reference[1024];
    snprintf(pipeline, sizeof pipeline, "%s/pipelines/sd_tiny/pipeline", root);
    snprintf(reference, sizeof reference, "%s/rng/sd_tiny_seed/reference_1.safetensors", root);
    size_t expected_len = 0;
    float* expected = test_read_f32_tensor(reference, "image", &expected_len);
    if (expected == NULL) FAIL("cannot read tensor 'image' of %s", reference);
    CHECK(expected_len == 2 * 24 * 16 * 3);
    CHECK(sizeof(request_v0_3) == offsetof(engine_request, prompts));

    engine_options options;
    REQUIRE_OK(engine_options_init(&options));
    options.device = "cpu";
    engine_context* context = NULL;
    REQUIRE_OK(engine_create(&options, &context));
    engine_model* model = NULL;
    REQUIRE_OK(engine_load_model(context, pipeline, &model));

    /* diffusers: pipe(prompt=[...], height=24, width=16, num_inference_steps=6, guidance_scale=1,
     * generator=torch.Generator("cpu").manual_seed(5678)) with DPM-Solver++ 2M. */
    const char* prompts[] = { "a bowl of cherries", "an old map of a harbour town" };
    engine_request request;
    REQUIRE_OK(engine_request_init(&request));
    CHECK(request.strength == 0.8f && request.init_image == NULL && request.prompts == NULL);
    request.scheduler_config_json = dpmpp_config;
    request.steps = 6;
    request.guidance_scale = 1.0f;
    request.seed = 5678;
    request.rng = "torch";
    request.count = 2;
    request.height = 24;
    request.width = 16;
    request.prompts = prompts;
    request.prompt_count = 2;
    int32_t shape[4];
    REQUIRE_OK(engine_output_shape(context, model, &request, shape));
    CHECK(shape[0] == 2 && shape[1] == 3 && shape[2] == 24 && shape[3] == 16);
    size_t length = 0;
    REQUIRE_OK(engine_output_size(context, model, &request, &length));
    CHECK(length == expected_len);
    float* pixels = malloc(length * sizeof(float));
    float* other = malloc(length * sizeof(float));
    CHECK(pixels != NULL && other != NULL);
    REQUIRE_OK(engine_generate(context, model, &request, pixels, length));

    /* Ours is NCHW in [-1, 1]; the reference NHWC in [0, 1]. */
    float err = 0.0f, peak = 0.0f;
    for (int i = 0; i < 2; ++i)
        for (int c = 0; c < 3; ++c)
            for (int p = 0; p < 24 * 16; ++p) {
                float ours = (pixels[(i * 3 + c) * 24 * 16 + p] + 1.0f) / 2.0f;
                float ref = expected[(i * 24 * 16 + p) * 3 + c];
                if (absf(ours - ref) > err) err = absf(ours - ref);
                if (absf(ref) > peak) peak = absf(ref);
            }
    printf("  image vs diffusers: max abs error %.3g of max %.3g\n", err, peak);
    if (!(err <= 1e-3f * peak)) FAIL("image differs from the reference by %g (max %g)", err, peak);

    /* One prompt serves every image: the same as giving it twice. */
    const char* both[] = { "a bowl of cherries", "a bowl of cherries" };
    request.prompts = both;
    REQUIRE_OK(engine_generate(context, model, &request, pixels, length));
    request.prompts = prompts;
    request.prompt_count = 1;
    REQUIRE_OK(engine_generate(context, model, &request, other, length));
    CHECK(memcmp(pixels, other, length * sizeof(float)) == 0);

    /* A host built against 0.3.0 passes its own, shorter struct: its fields are read as before
     * and the prompt fields are not, so a pipeline (which needs a prompt) says so. The same
     * struct on a single-model folder is checked bit for bit in test_errors. */
    request_v0_3 old;
    memset(&old, 0, sizeof old);
    old.struct_size = sizeof old;
    old.scheduler_config_json = dpmpp_config;
    old.steps = 6;
    old.guidance_scale = 1.0f;
    old.seed = 5678;
    old.rng = "torch";
    old.count = 2;
    old.height = 24;
    old.width = 16;
    EXPECT_STATUS(engine_generate(context, model, (const engine_request*)&old, pixels, length),
                  ENGINE_INVALID_ARGUMENT, "needs a prompt");

    /* The new fields are checked. */
    request.prompts = NULL;
    request.prompt_count = 1;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "prompts");
    const char* with_null[] = { "a cat", NULL };
    request.prompts = with_null;
    request.prompt_count = 2;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "prompts[1]");
    request.prompts = prompts;
    request.negative_prompt_count = 1;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "negative_prompts");
    request.negative_prompt_count = 0;
    request.clip_skip = -1;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "clip_skip");
    request.clip_skip = 9;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "clip skip 9");
    request.clip_skip = 0;
    request.original_size[0] = 512; /* SD 1.x takes no micro-conditioning */
    request.original_size[1] = 512;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "original size");
    request.original_size[1] = 0;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "original_size");
    request.original_size[0] = 0;

    /* An init image (image-to-image): malformed ones are named; a good one runs, the same pixels as
     * 8-bit RGB or as floats v / 255 in a buffer with padded rows, and not the text-to-image pixels. */
    request.prompts = prompts;
    request.prompt_count = 2;
    REQUIRE_OK(engine_generate(context, model, &request, other, length));
    unsigned char rgb[24][16][3];
    float rgbf[24][20][3]; /* 4 pixels of padding per row */
    for (int y = 0; y < 24; ++y)
        for (int x = 0; x < 16; ++x)
            for (int c = 0; c < 3; ++c) {
                rgb[y][x][c] = (unsigned char)(y * 10 + x * 3 + c);
                rgbf[y][x][c] = rgb[y][x][c] / 255.0f;
            }
    engine_image image = { rgb, ENGINE_PIXELS_RGB8, 16, 24, 0 };
    request.init_image = &image;
    request.strength = 0.5f;
    image.format = 7;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "format");
    image.format = ENGINE_PIXELS_RGB8;
    image.stride = 16 * 3 - 1;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "stride");
    image.stride = 0;
    image.data = NULL;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "data");
    image.data = rgb;
    request.strength = 0.0f;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_INVALID_ARGUMENT, "strength");
    request.strength = 0.5f;
    REQUIRE_OK(engine_generate(context, model, &request, pixels, length));
    CHECK(memcmp(pixels, other, length * sizeof(float)) != 0);
    engine_image floats = { rgbf, ENGINE_PIXELS_RGB_F32, 16, 24, sizeof rgbf[0] };
    request.init_image = &floats;
    REQUIRE_OK(engine_generate(context, model, &request, other, length));
    CHECK(memcmp(pixels, other, length * sizeof(float)) == 0);
    request.init_image = NULL;

    /* Prompts on a model without text conditioning are refused. */
    const char* builtin = test_model_path();
    if (builtin != NULL) {
        engine_model* unet = NULL;
        REQUIRE_OK(engine_load_model(context, builtin, &unet));
        engine_request plain;
        REQUIRE_OK(engine_request_init(&plain));
        plain.steps = 2;
        plain.prompts = prompts;
        plain.prompt_count = 1;
        EXPECT_STATUS(engine_output_size(context, unet, &plain, &length), ENGINE_INVALID_ARGUMENT, "rompt");
        REQUIRE_OK(engine_release_model(unet));
    }

    REQUIRE_OK(engine_release_model(model));
    REQUIRE_OK(engine_release_context(context));
    free(expected);
    free(pixels);
    free(other);
    printf("PASS\n");
    return 0;
}
