/* SDXL's negative micro-conditioning through the C interface (0.7.0). The tiny SDXL pipeline with the sizes of
 * fixtures/controlnet/pipelines/sdxl_tiny/reference_0 (original 96x64, crop 8,4, target 24x16; negative
 * original 32x32, negative target 24x16; the ControlNet left out, since that reference's two control images
 * differ per prompt and an engine_controlnet carries one) gives the image the CLI gives for the same request
 * (`engine generate --negative-original-size 32,32 --negative-target-size 24,16 ...`, which reproduces that
 * reference in its own test), and the negative sizes change the image. A caller built against 0.6.0 passes the
 * shorter struct, whose tail padding (where 0.7.0's `precision` lies on 64-bit targets) holds garbage here, and
 * gets the run without negative sizes. Bad sizes are named: negative values, one size without the other, the
 * crop alone, any of them on a model that is not SDXL.
 *
 *   test_negative_sizes CLI_COMMAND...       (e.g. dotnet path/to/engine.dll)
 *
 * Skipped (77) without the fixtures (ENGINE_FIXTURES, else ../shared/fixtures beside the repository). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "test_cli.h"

enum { W = 16, H = 24, COUNT = 2 };

/* engine_request exactly as interface 0.6.0 declared it: what a host compiled then passes (its sizeof
 * includes the tail padding after guess_mode). */
typedef struct request_v0_6 {
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
    const char* const* prompts;
    size_t prompt_count;
    const char* const* negative_prompts;
    size_t negative_prompt_count;
    int32_t clip_skip;
    int32_t original_size[2];
    int32_t crop_top_left[2];
    int32_t target_size[2];
    float strength;
    const engine_image* init_image;
    const engine_lora* loras;
    size_t lora_count;
    const engine_controlnet* controlnets;
    size_t controlnet_count;
    int32_t guess_mode;
} request_v0_6;

int main(int argc, char** argv)
{
    if (argc < 2) { fprintf(stderr, "usage: %s CLI_COMMAND...\n", argv[0]); return 2; }
    const char* root = test_fixtures_root();
    if (root == NULL) {
        printf("SKIP: fixtures not found (set ENGINE_FIXTURES)\n");
        return TEST_SKIP;
    }
    char pipeline[1024], sd[1024];
    snprintf(pipeline, sizeof pipeline, "%s/pipelines/sdxl_tiny/pipeline", root);
    snprintf(sd, sizeof sd, "%s/pipelines/sd_tiny/pipeline", root);
    CHECK(offsetof(request_v0_6, guess_mode) == offsetof(engine_request, guess_mode));
    CHECK(sizeof(request_v0_6) <= offsetof(engine_request, negative_original_size));

    /* The CLI first (a separate process): Euler, 5 steps, CFG 5, the reference's prompts, seed and sizes. */
    const char* cli_args[] = { "--model", pipeline, "--prompt", "a lighthouse on a rock", "--prompt",
                               "a cup of coffee, studio photo", "--negative-prompt", "fog", "--negative-prompt", "blurry",
                               "--sampler", "euler", "--steps", "5", "--cfg", "5", "--seed", "56", "--rng", "torch",
                               "--height", "24", "--width", "16", "--original-size", "96,64", "--crop-top-left", "8,4",
                               "--target-size", "24,16", "--negative-original-size", "32,32", "--negative-crop-top-left",
                               "2,0", "--negative-target-size", "24,16", "--device", "cpu" };
    size_t cli_len = 0;
    float* cli = test_cli_image(argv + 1, argc - 1, cli_args, sizeof cli_args / sizeof cli_args[0], &cli_len);
    CHECK(cli_len == COUNT * 3 * H * W);

    engine_context* context = NULL;
    engine_model* model = NULL;
    test_open_cpu(pipeline, &context, &model);

    const char* prompts[] = { "a lighthouse on a rock", "a cup of coffee, studio photo" };
    const char* negatives[] = { "fog", "blurry" };
    engine_request request;
    REQUIRE_OK(engine_request_init(&request));
    CHECK(request.negative_original_size[0] == 0 && request.negative_crop_top_left[1] == 0 &&
          request.negative_target_size[1] == 0);
    request.sampler = "euler";
    request.steps = 5;
    request.guidance_scale = 5.0f;
    request.seed = 56;
    request.rng = "torch";
    request.count = COUNT;
    request.height = H;
    request.width = W;
    request.prompts = prompts;
    request.prompt_count = COUNT;
    request.negative_prompts = negatives;
    request.negative_prompt_count = COUNT;
    request.original_size[0] = 96, request.original_size[1] = 64;
    request.crop_top_left[0] = 8, request.crop_top_left[1] = 4;
    request.target_size[0] = 24, request.target_size[1] = 16;
    size_t length = 0;
    REQUIRE_OK(engine_output_size(context, model, &request, &length));
    CHECK(length == cli_len);
    float* plain = malloc(length * sizeof(float));
    float* negative = malloc(length * sizeof(float));
    float* again = malloc(length * sizeof(float));
    CHECK(plain != NULL && negative != NULL && again != NULL);
    REQUIRE_OK(engine_generate(context, model, &request, plain, length));

    request.negative_original_size[0] = 32, request.negative_original_size[1] = 32;
    request.negative_crop_top_left[0] = 2, request.negative_crop_top_left[1] = 0;
    request.negative_target_size[0] = 24, request.negative_target_size[1] = 16;
    REQUIRE_OK(engine_generate(context, model, &request, negative, length));

    /* Ours is [-1, 1]; the CLI's image [0, 1], from the same pixels (only the last rounding may differ). */
    float err = 0.0f, change = 0.0f;
    for (size_t i = 0; i < length; ++i) {
        err = fmaxf(err, fabsf((negative[i] + 1.0f) / 2.0f - cli[i]));
        change = fmaxf(change, fabsf(negative[i] - plain[i]));
    }
    printf("  negative sizes vs CLI: max abs error %.3g; change vs no negative sizes: %.3g\n", err, change);
    if (!(err <= 1e-6f)) FAIL("C interface and CLI disagree with negative sizes (max |diff| %g)", err);
    if (!(change > 1e-4f)) FAIL("the negative sizes changed the image by only %g", change);

    /* A host built against 0.6.0: garbage in its tail padding, every 0.6.0 field as ours, no negative sizes. */
    request_v0_6 old;
    memset(&old, 0x7f, sizeof old);
    memcpy(&old, &request, offsetof(engine_request, guess_mode) + sizeof(int32_t));
    old.struct_size = sizeof old;
    REQUIRE_OK(engine_generate(context, model, (const engine_request*)(void*)&old, again, length));
    if (memcmp(again, plain, length * sizeof(float)) != 0)
        FAIL("a 0.6.0 caller's request differs from the run without negative sizes (max |diff| %g)",
             test_max_abs_diff(again, plain, length));

    /* Bad sizes are named, before any work. */
    request.negative_original_size[0] = -32;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "request.negative_original_size");
    request.negative_original_size[0] = 32;
    request.negative_target_size[1] = -16;
    EXPECT_STATUS(engine_output_size(context, model, &request, &length), ENGINE_INVALID_ARGUMENT, "request.negative_target_size");
    request.negative_target_size[1] = 16;
    request.negative_crop_top_left[0] = -2;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "request.negative_crop_top_left");
    request.negative_crop_top_left[0] = 2;
    request.negative_target_size[0] = 0, request.negative_target_size[1] = 0;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "go together");
    request.negative_original_size[0] = 0, request.negative_original_size[1] = 0;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "request.negative_crop_top_left needs");
    request.negative_crop_top_left[0] = 0;
    REQUIRE_OK(engine_generate(context, model, &request, again, length));
    CHECK(memcmp(again, plain, length * sizeof(float)) == 0);
    REQUIRE_OK(engine_release_model(model));

    /* A pipeline without micro-conditioning refuses them. */
    REQUIRE_OK(engine_load_model(context, sd, &model));
    request.original_size[0] = 0, request.original_size[1] = 0;
    request.crop_top_left[0] = 0, request.crop_top_left[1] = 0;
    request.target_size[0] = 0, request.target_size[1] = 0;
    request.negative_original_size[0] = 32, request.negative_original_size[1] = 32;
    request.negative_target_size[0] = 24, request.negative_target_size[1] = 16;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "SDXL");
    REQUIRE_OK(engine_release_model(model));
    REQUIRE_OK(engine_release_context(context));
    free(cli);
    free(plain);
    free(negative);
    free(again);
    printf("PASS\n");
    return 0;
}
