/* ControlNet through the C interface (0.6.0). The tiny Stable Diffusion pipeline steered by
 * fixtures/controlnet/models/sd_tiny at scale 0.8 over the window [0.2, 1], its control image handed
 * over from host memory as a float32 RGB buffer with padded rows (a game engine's depth or normal
 * buffer), gives the image the CLI gives for the same request with the same values written to a
 * safetensors file (`engine generate --controlnet DIR:0.8 --control-image FILE --control-start 0.2`),
 * which differs from the run without the ControlNet; a caller built against 0.5.0 (the struct without
 * the ControlNet fields) gets the run without it. Bad entries are named: NULL array, path or image,
 * values outside [0, 1], a bad window, a missing folder (NOT_FOUND).
 *
 *   test_controlnet CLI_COMMAND...       (e.g. dotnet path/to/engine.dll)
 *
 * Skipped (77) without the fixtures (ENGINE_FIXTURES, else ../shared/fixtures beside the repository). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_cli.h"

enum { W = 16, H = 24, ROW = W * 3 + 5 /* floats per padded row */ };

/* Writes tensor `image` [1, 3, H, W] (channels first) of the interleaved buffer to a safetensors file. */
static void write_control_file(const char* path, const float* rows)
{
    static float planar[3 * H * W];
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
            for (int c = 0; c < 3; ++c) planar[(c * H + y) * W + x] = rows[y * ROW + x * 3 + c];
    char header[128];
    int n = snprintf(header, sizeof header, "{\"image\":{\"dtype\":\"F32\",\"shape\":[1,3,%d,%d],\"data_offsets\":[0,%zu]}}",
                     H, W, sizeof planar);
    while (n % 8 != 0) header[n++] = ' ';
    uint64_t len = (uint64_t)n;
    FILE* f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(&len, 8, 1, f) == 1 && fwrite(header, 1, (size_t)n, f) == (size_t)n);
    CHECK(fwrite(planar, sizeof planar, 1, f) == 1);
    fclose(f);
}

/* engine_request exactly as interface 0.5.0 declared it: everything before `controlnets`. */
typedef struct request_v0_5 {
    unsigned char bytes[offsetof(engine_request, controlnets)];
} request_v0_5;

int main(int argc, char** argv)
{
    if (argc < 2) { fprintf(stderr, "usage: %s CLI_COMMAND...\n", argv[0]); return 2; }
    const char* root = test_fixtures_root();
    if (root == NULL) {
        printf("SKIP: fixtures not found (set ENGINE_FIXTURES)\n");
        return TEST_SKIP;
    }
    char pipeline[1024], net[1024], net_arg[1100], missing[1100];
    snprintf(pipeline, sizeof pipeline, "%s/pipelines/sd_tiny/pipeline", root);
    snprintf(net, sizeof net, "%s/controlnet/models/sd_tiny", root);
    snprintf(net_arg, sizeof net_arg, "%s:0.8", net);
    snprintf(missing, sizeof missing, "%s/controlnet/models/no_such_net", root);

    /* The control image: a smooth pattern in [0, 1], rows padded past the pixels. */
    static float rows[H * ROW];
    for (int y = 0; y < H; ++y) {
        for (int x = 0; x < W; ++x)
            for (int c = 0; c < 3; ++c) rows[y * ROW + x * 3 + c] = (float)((x * 7 + y * 13 + c * 50) % 256) / 255.0f;
        for (int p = W * 3; p < ROW; ++p) rows[y * ROW + p] = -7.0f; /* padding: never read */
    }
    char control[] = "/tmp/engine-cn-image-XXXXXX.safetensors";
    int fd = mkstemps(control, 12);
    CHECK(fd >= 0);
    close(fd);
    write_control_file(control, rows);

    /* The CLI first (a separate process): DDIM, 5 steps, CFG 3, one prompt, PyTorch's generator. */
    const char* cli_args[] = { "--model", pipeline, "--controlnet", net_arg, "--control-image", control,
                               "--control-start", "0.2", "--prompt", "a house by a lake", "--sampler", "ddim",
                               "--steps", "5", "--cfg", "3", "--seed", "12", "--rng", "torch", "--height", "24",
                               "--width", "16", "--device", "cpu" };
    size_t cli_len = 0;
    float* cli = test_cli_image(argv + 1, argc - 1, cli_args, sizeof cli_args / sizeof cli_args[0], &cli_len);
    unlink(control);
    CHECK(cli_len == 3 * H * W);

    engine_context* context = NULL;
    engine_model* model = NULL;
    test_open_cpu(pipeline, &context, &model);

    const char* prompts[] = { "a house by a lake" };
    engine_request request;
    REQUIRE_OK(engine_request_init(&request));
    CHECK(request.controlnets == NULL && request.controlnet_count == 0 && request.guess_mode == 0);
    request.sampler = "ddim";
    request.steps = 5;
    request.guidance_scale = 3.0f;
    request.seed = 12;
    request.rng = "torch";
    request.height = H;
    request.width = W;
    request.prompts = prompts;
    request.prompt_count = 1;
    size_t length = 0;
    REQUIRE_OK(engine_output_size(context, model, &request, &length));
    CHECK(length == cli_len);
    float* base = malloc(length * sizeof(float));
    float* steered = malloc(length * sizeof(float));
    float* again = malloc(length * sizeof(float));
    CHECK(base != NULL && steered != NULL && again != NULL);
    REQUIRE_OK(engine_generate(context, model, &request, base, length));

    engine_image image = { rows, ENGINE_PIXELS_RGB_F32, W, H, ROW * sizeof(float) };
    engine_controlnet cn = { net, &image, 0.8f, 0.2f, 1.0f };
    request.controlnets = &cn;
    request.controlnet_count = 1;
    REQUIRE_OK(engine_generate(context, model, &request, steered, length));

    /* Ours is [-1, 1]; the CLI's image [0, 1], from the same pixels (only the last rounding may differ). */
    float err = 0.0f, change = 0.0f;
    for (size_t i = 0; i < length; ++i) {
        err = fmaxf(err, fabsf((steered[i] + 1.0f) / 2.0f - cli[i]));
        change = fmaxf(change, fabsf(steered[i] - base[i]));
    }
    printf("  ControlNet image vs CLI: max abs error %.3g; change vs no ControlNet: %.3g\n", err, change);
    if (!(err <= 1e-6f)) FAIL("C interface and CLI disagree with the ControlNet (max |diff| %g)", err);
    if (!(change > 1e-3f)) FAIL("the ControlNet changed the image by only %g", change);

    /* A host built against 0.5.0 passes the shorter struct: no ControlNet, the base image. The
     * ControlNet fields of our struct are set, so reading past the caller's size would show. */
    request_v0_5 old;
    memcpy(&old, &request, sizeof old);
    ((engine_request*)(void*)&old)->struct_size = sizeof old;
    REQUIRE_OK(engine_generate(context, model, (const engine_request*)(void*)&old, again, length));
    CHECK(memcmp(again, base, length * sizeof(float)) == 0);

    /* Bad entries are named. */
    request.controlnets = NULL;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "request.controlnets");
    request.controlnets = &cn;
    cn.path = NULL;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "controlnets[0].path");
    cn.path = net;
    cn.image = NULL;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "controlnets[0].image");
    cn.image = &image;
    cn.start = 0.9f;
    cn.end = 0.5f;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "window");
    cn.start = 0.2f;
    cn.end = 1.0f;
    rows[0] = 2.0f;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "[0, 1]");
    rows[0] = 0.0f;
    cn.path = missing;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_NOT_FOUND, "no_such_net");
    cn.path = net;
    request.guess_mode = 1;
    request.controlnet_count = 0;
    EXPECT_STATUS(engine_generate(context, model, &request, again, length), ENGINE_INVALID_ARGUMENT, "guess");

    REQUIRE_OK(engine_release_model(model));
    REQUIRE_OK(engine_release_context(context));
    free(cli);
    free(base);
    free(steered);
    free(again);
    printf("PASS\n");
    return 0;
}
