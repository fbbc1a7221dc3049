/* Activation precision and compute precision through the C interface (0.7.0) on the "cpu" device, with the
 * tiny Stable Diffusion pipeline: ENGINE_PRECISION_F32 and ENGINE_COMPUTE_F32 set explicitly give the
 * default run's pixels bit for bit, ENGINE_COMPUTE_AUTO gives those of float32 or of bf16, and
 * ENGINE_COMPUTE_BF16 stays within 2e-2 of the float32 image (of its largest value; README's bf16 tolerance
 * for the tiny pipelines) while changing it, where the CPU has AVX512-BF16 and the bf16 library is not
 * disabled (ENGINE_BF16_LIBRARY=none); elsewhere it is ENGINE_UNSUPPORTED saying why. Every invalid value
 * gets its status and names its field: unknown precision or compute values (INVALID_ARGUMENT), F16 and BF16
 * activations on a device that computes in float32 (UNSUPPORTED), from engine_output_size as from
 * engine_generate.
 *
 * Skipped (77) without the fixtures (ENGINE_FIXTURES, else ../shared/fixtures beside the repository). */
#include <math.h>

#include "test_cli.h"

/* Whether this process should have bf16 compute: the CPU's AVX512-BF16 (with AVX-512F) and the library not
 * disabled. The engine's own check reads CPUID and XCR0 in the bf16 library; this one asks the compiler's. */
static int bf16_expected(void)
{
    const char* library = getenv("ENGINE_BF16_LIBRARY");
    if (library != NULL && strcmp(library, "none") == 0) return 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

int main(void)
{
    const char* root = test_fixtures_root();
    if (root == NULL) {
        printf("SKIP: fixtures not found (set ENGINE_FIXTURES)\n");
        return TEST_SKIP;
    }
    char pipeline[1024];
    snprintf(pipeline, sizeof pipeline, "%s/pipelines/sd_tiny/pipeline", root);

    engine_context* context = NULL;
    engine_model* model = NULL;
    test_open_cpu(pipeline, &context, &model);

    const char* prompts[] = { "a bowl of cherries", "an old map of a harbour town" };
    engine_request request;
    REQUIRE_OK(engine_request_init(&request));
    CHECK(request.precision == ENGINE_PRECISION_DEFAULT && request.compute == ENGINE_COMPUTE_F32);
    request.sampler = "ddim";
    request.steps = 4;
    request.guidance_scale = 3.0f;
    request.seed = 31;
    request.rng = "torch";
    request.count = 2;
    request.height = 24;
    request.width = 16;
    request.prompts = prompts;
    request.prompt_count = 2;
    size_t length = 0;
    REQUIRE_OK(engine_output_size(context, model, &request, &length));
    CHECK(length == 2 * 3 * 24 * 16);
    float* base = malloc(length * sizeof(float));
    float* run = malloc(length * sizeof(float));
    float* bf16 = malloc(length * sizeof(float));
    CHECK(base != NULL && run != NULL && bf16 != NULL);
    REQUIRE_OK(engine_generate(context, model, &request, base, length));

    /* Explicit float32 is the default on the CPU. */
    request.precision = ENGINE_PRECISION_F32;
    request.compute = ENGINE_COMPUTE_F32;
    REQUIRE_OK(engine_generate(context, model, &request, run, length));
    if (memcmp(run, base, length * sizeof(float)) != 0)
        FAIL("precision F32 / compute F32 differ from the default run (max |diff| %g)", test_max_abs_diff(run, base, length));

    /* bf16 compute where the CPU has it, within the stated tolerance of float32 and not equal to it. */
    request.compute = ENGINE_COMPUTE_BF16;
    int have_bf16 = bf16_expected();
    if (have_bf16) {
        REQUIRE_OK(engine_generate(context, model, &request, bf16, length));
        float largest = 0.0f;
        for (size_t i = 0; i < length; ++i) largest = fmaxf(largest, fabsf(base[i]));
        float err = test_max_abs_diff(bf16, base, length) / largest;
        printf("  bf16 compute vs float32: max abs error %.3g of the largest value\n", err);
        if (!(err <= 2e-2f)) FAIL("bf16 compute is %g (relative) from float32; the tolerance is 2e-2", err);
        if (!(err > 0.0f)) FAIL("bf16 compute gave the float32 pixels bit for bit: the setting did not reach the kernels");
    } else {
        printf("  SKIP bf16 comparison: no AVX512-BF16 here or ENGINE_BF16_LIBRARY=none; it must be refused\n");
        EXPECT_STATUS(engine_generate(context, model, &request, run, length), ENGINE_UNSUPPORTED, "ENGINE_COMPUTE_BF16");
        EXPECT_STATUS(engine_output_size(context, model, &request, &length), ENGINE_UNSUPPORTED, "ENGINE_COMPUTE_BF16");
    }

    /* auto picks one of the two: the pixels are float32's or bf16's, bit for bit. */
    request.compute = ENGINE_COMPUTE_AUTO;
    REQUIRE_OK(engine_generate(context, model, &request, run, length));
    int as_f32 = memcmp(run, base, length * sizeof(float)) == 0;
    int as_bf16 = have_bf16 && memcmp(run, bf16, length * sizeof(float)) == 0;
    printf("  compute auto ran as %s\n", as_f32 ? "float32" : as_bf16 ? "bf16" : "neither");
    CHECK(as_f32 || as_bf16);

    /* Invalid values, each named; the context still works afterwards. */
    request.compute = ENGINE_COMPUTE_F32;
    request.precision = 7;
    EXPECT_STATUS(engine_generate(context, model, &request, run, length), ENGINE_INVALID_ARGUMENT, "request.precision 7");
    EXPECT_STATUS(engine_output_size(context, model, &request, &length), ENGINE_INVALID_ARGUMENT, "request.precision 7");
    request.precision = -1;
    EXPECT_STATUS(engine_generate(context, model, &request, run, length), ENGINE_INVALID_ARGUMENT, "request.precision -1");
    request.precision = ENGINE_PRECISION_DEFAULT;
    request.compute = 3;
    EXPECT_STATUS(engine_generate(context, model, &request, run, length), ENGINE_INVALID_ARGUMENT, "request.compute 3");
    request.compute = -2;
    EXPECT_STATUS(engine_output_size(context, model, &request, &length), ENGINE_INVALID_ARGUMENT, "request.compute -2");
    request.compute = ENGINE_COMPUTE_F32;
    /* Half activations need an ILGPU device; the managed CPU device computes in float32. */
    request.precision = ENGINE_PRECISION_F16;
    EXPECT_STATUS(engine_generate(context, model, &request, run, length), ENGINE_UNSUPPORTED, "ENGINE_PRECISION_F16");
    EXPECT_STATUS(engine_output_size(context, model, &request, &length), ENGINE_UNSUPPORTED, "f32 activations only");
    request.precision = ENGINE_PRECISION_BF16;
    EXPECT_STATUS(engine_generate(context, model, &request, run, length), ENGINE_UNSUPPORTED, "ENGINE_PRECISION_BF16");
    request.precision = ENGINE_PRECISION_DEFAULT;
    REQUIRE_OK(engine_output_size(context, model, &request, &length));
    REQUIRE_OK(engine_generate(context, model, &request, run, length));
    CHECK(memcmp(run, base, length * sizeof(float)) == 0);

    REQUIRE_OK(engine_release_model(model));
    REQUIRE_OK(engine_release_context(context));
    free(base);
    free(run);
    free(bf16);
    printf("PASS\n");
    return 0;
}
