/* LoRA adapters through the C interface (0.5.0). The tiny Stable Diffusion pipeline with
 * fixtures/lora/sd_tiny_kohya_locon_r4.safetensors at scale 0.5 gives the image the CLI gives for
 * the same request (`engine generate --lora FILE:0.5 --output-tensor`, tensor "image" in [0, 1]),
 * which differs from the run without the adapter; a request without it afterwards gives the
 * no-LoRA image again bit for bit (the base weights come back), and so does a caller built against
 * 0.4.0 (the struct without the adapter fields). Bad adapters are named: NULL array or path,
 * non-finite scale, missing file (NOT_FOUND), and an SD LoRA on the built-in UNet (INVALID_DATA).
 *
 *   test_lora CLI_COMMAND...       (e.g. dotnet path/to/engine.dll)
 *
 * Skipped (77) without the fixtures (ENGINE_FIXTURES, else ../shared/fixtures beside the repository). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_cli.h"

/* engine_request exactly as interface 0.4.0 declared it: everything before `loras`. */
typedef struct request_v0_4 {
    unsigned char bytes[offsetof(engine_request, loras)];
} request_v0_4;

int main(int argc, char** argv)
{
    if (argc < 2) { fprintf(stderr, "usage: %s CLI_COMMAND...\n", argv[0]); return 2; }
    const char* root = test_fixtures_root();
    if (root == NULL) {
        printf("SKIP: fixtures not found (set ENGINE_FIXTURES)\n");
        return TEST_SKIP;
    }
    char pipeline[1024], lora_path[1024], lora_arg[1100], missing[1100];
    snprintf(pipeline, sizeof pipeline, "%s/pipelines/sd_tiny/pipeline", root);
    snprintf(lora_path, sizeof lora_path, "%s/lora/sd_tiny_kohya_locon_r4.safetensors", root);
    snprintf(lora_arg, sizeof lora_arg, "%s:0.5", lora_path);
    snprintf(missing, sizeof missing, "%s/lora/no_such_adapter.safetensors", root);

    /* The CLI first (a separate process): DDIM, 5 steps, one prompt, PyTorch's generator. */
    const char* cli_args[] = { "--model", pipeline, "--lora", lora_arg, "--prompt", "an astronaut riding a horse",
                               "--sampler", "ddim", "--steps", "5", "--cfg", "1", "--seed", "504", "--rng", "torch",
                               "--height", "24", "--width", "16", "--device", "cpu" };
    size_t cli_len = 0;
    float* cli = test_cli_image(argv + 1, argc - 1, cli_args, sizeof cli_args / sizeof cli_args[0], &cli_len);
    CHECK(cli_len == 3 * 24 * 16);

    engine_context* context = NULL;
    engine_model* model = NULL;
    test_open_cpu(pipeline, &context, &model);

    const char* prompts[] = { "an astronaut riding a horse" };
    engine_request request;
    REQUIRE_OK(engine_request_init(&request));
    CHECK(request.loras == NULL && request.lora_count == 0);
    request.sampler = "ddim";
    request.steps = 5;
    request.guidance_scale = 1.0f;
    request.seed = 504;
    request.rng = "torch";
    request.height = 24;
    request.width = 16;
    request.prompts = prompts;
    request.prompt_count = 1;
    size_t length = 0;
    REQUIRE_OK(engine_output_size(context, model, &request, &length));
    CHECK(length == cli_len);
    float* base = malloc(length * sizeof(float));
    float* adapted = malloc(length * sizeof(float));
    float* again = malloc(length * sizeof(float));
    CHECK(base != NULL && adapted != NULL && again != NULL);
    REQUIRE_OK(engine_generate(context, model, &request, base, length));

    engine_lora lora = { lora_path, 0.5f };
    request.loras = &lora;
    request.lora_count = 1;
    REQUIRE_OK(engine_generate(context, model, &request, adapted, length));

    /* Ours is [-1, 1]; the CLI's image [0, 1], from the same pixels (only the last rounding may differ). */
    float err = 0.0f, change = 0.0f;
    for (size_t i = 0; i < length; ++i) {
        float ours = (adapted[i] + 1.0f) / 2.0f;
        err = fmaxf(err, fabsf(ours - cli[i]));
        change = fmaxf(change, fabsf(adapted[i] - base[i]));
    }
    printf("  LoRA image vs CLI: max abs error %.3g; change vs no LoRA: %.3g\n", err, change);
    if (!(err <= 1e-6f)) FAIL("C interface and CLI disagree with the LoRA (max |diff| %g)", err);
    if (!(change > 1e-3f)) FAIL("the LoRA changed the image by only %g", change);

    /* Without the adapter again: the base weights are back, bit for bit. */
    request.loras = NULL;
    request.lora_count = 0;
    REQUIRE_OK(engine_generate(context, model, &request, again, length));
    CHECK(memcmp(again, base, length * sizeof(float)) == 0);

    /* A host built against 0.4.0 passes the shorter struct: no adapter, the same image. The
     * adapter fields of our struct are set, so reading past the caller's size would show. */
    request.loras = &lora;
    request.lora_count = 1;
    request_v0_4 old;
    memcpy(&old, &request, sizeof old);
    ((engine_request*)(void*)&old)->struct_size = sizeof old;
    memset(again, 0, length * sizeof(float));
    REQUIRE_OK(engine_generate(context, model, (const engine_request*)(void*)&old, again, length));
    CHECK(memcmp(again, base, length * sizeof(float)) == 0);
    /* ...and the adapter applies again when asked for (scale read as given). */
    REQUIRE_OK(engine_generate(context, model, &request, again, length));
    CHECK(memcmp(again, adapted, length * sizeof(float)) == 0);

    /* Bad adapters are named. */
    request.loras = NULL;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "request.loras");
    request.loras = &lora;
    lora.path = NULL;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "loras[0].path");
    lora.path = lora_path;
    lora.scale = NAN;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "scale");
    lora.scale = 0.5f;
    lora.path = missing;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_NOT_FOUND, "no_such_adapter");
    lora.path = lora_path;
    /* A failed request leaves the model as it was. */
    request.loras = NULL;
    request.lora_count = 0;
    REQUIRE_OK(engine_generate(context, model, &request, again, length));
    CHECK(memcmp(again, base, length * sizeof(float)) == 0);

    /* A Stable Diffusion LoRA on the built-in class-conditional UNet: its modules do not fit. */
    const char* builtin = test_model_path();
    if (builtin != NULL) {
        engine_model* unet = NULL;
        REQUIRE_OK(engine_load_model(context, builtin, &unet));
        engine_request plain;
        REQUIRE_OK(engine_request_init(&plain));
        plain.steps = 2;
        plain.loras = &lora;
        plain.lora_count = 1;
        size_t unet_len = 0;
        REQUIRE_OK(engine_output_size(context, unet, &plain, &unet_len));
        float* buffer = malloc(unet_len * sizeof(float));
        CHECK(buffer != NULL);
        EXPECT_STATUS(engine_generate(context, unet, &plain, buffer, unet_len), ENGINE_INVALID_DATA, "sd_tiny_kohya_locon_r4");
        free(buffer);
        REQUIRE_OK(engine_release_model(unet));
    }

    REQUIRE_OK(engine_release_model(model));
    REQUIRE_OK(engine_release_context(context));
    free(cli);
    free(base);
    free(adapted);
    free(again);
    printf("PASS\n");
    return 0;
}
