/* Four images through the C interface equal the same request made through the CLI, which writes
 * its final samples as tensor "samples" of a safetensors file (--output-tensor).
 *
 *   test_matches_cli MODEL_DIR CLI_COMMAND...       (e.g. dotnet path/to/engine.dll)
 *
 * The CLI is run as CLI_COMMAND... generate --model MODEL_DIR --output-tensor OUT.safetensors
 * --out SCRATCH --sampler ddim --steps 10 --seed 5 --count 4 --classes 0,3,7,9 --cfg 3 --device cpu.
 * With ENGINE_TEST_WEIGHTS set (f16, bf16), both sides keep the weights in that storage
 * (--weights for the CLI, engine_options.weights for the C interface). */
#include <stdlib.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.h"

/* Reads tensor `name` (F32) from a safetensors file: 8-byte little-endian header length, JSON
 * header, data. Only what this test needs: finds the entry's dtype, shape and data_offsets. */
static float* read_safetensors_f32(const char* path, const char* name, int64_t shape[4], size_t* count)
{
    FILE* f = fopen(path, "rb");
    if (f == NULL) FAIL("cannot open %s", path);
    unsigned char len_bytes[8];
    CHECK(fread(len_bytes, 1, 8, f) == 8);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = header_len << 8 | len_bytes[i];
    CHECK(header_len > 0 && header_len < (1u << 24));
    char* header = calloc(header_len + 1, 1);
    CHECK(header != NULL && fread(header, 1, header_len, f) == header_len);

    char key[128];
    snprintf(key, sizeof key, "\"%s\"", name);
    const char* entry = strstr(header, key);
    if (entry == NULL) FAIL("%s has no tensor '%s' (header: %s)", path, name, header);
    const char* dtype = strstr(entry, "\"dtype\"");
    const char* shp = strstr(entry, "\"shape\"");
    const char* offs = strstr(entry, "\"data_offsets\"");
    CHECK(dtype && shp && offs);
    CHECK(strstr(dtype, "\"F32\"") == strchr(dtype + 7, '"'));
    int n = sscanf(strchr(shp, '['), "[%ld,%ld,%ld,%ld]", &shape[0], &shape[1], &shape[2], &shape[3]);
    if (n != 4) FAIL("tensor '%s' in %s is not 4-d", name, path);
    long begin, end;
    CHECK(sscanf(strchr(offs, '['), "[%ld,%ld]", &begin, &end) == 2);
    *count = (size_t)(shape[0] * shape[1] * shape[2] * shape[3]);
    CHECK((size_t)(end - begin) == *count * sizeof(float));
    float* data = malloc((size_t)(end - begin));
    CHECK(data != NULL);
    CHECK(fseek(f, (long)(8 + header_len + (uint64_t)begin), SEEK_SET) == 0);
    CHECK(fread(data, sizeof(float), *count, f) == *count); /* little-endian host */
    fclose(f);
    free(header);
    return data;
}

int main(int argc, char** argv)
{
    if (argc < 3) { fprintf(stderr, "usage: %s MODEL_DIR CLI_COMMAND...\n", argv[0]); return 2; }
    const char* model_dir = argv[1];
    char out[] = "/tmp/engine-reference-XXXXXX.safetensors";
    int fd = mkstemps(out, 12);
    CHECK(fd >= 0);
    close(fd);

    /* The CLI run first (a separate process); its images go to a scratch folder. */
    char out_dir[] = "/tmp/engine-cli-XXXXXX";
    CHECK(mkdtemp(out_dir) != NULL);
    char* helper[64];
    int k = 0;
    for (int i = 2; i < argc && k < 40; ++i) helper[k++] = argv[i];
    const char* tail[] = { "generate", "--model", model_dir, "--output-tensor", out, "--out", out_dir,
                           "--sampler", "ddim", "--steps", "10", "--seed", "5", "--count", "4",
                           "--classes", "0,3,7,9", "--cfg", "3", "--device", "cpu" };
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; ++i) helper[k++] = (char*)tail[i];
    const char* weights = getenv("ENGINE_TEST_WEIGHTS");
    if (weights != NULL && weights[0] != '\0') {
        helper[k++] = "--weights";
        helper[k++] = (char*)weights;
        printf("  weights stored as %s\n", weights);
    }
    helper[k] = NULL;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) { execvp(helper[0], helper); perror(helper[0]); _exit(127); }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) FAIL("engine generate (%s) failed (status %d)", helper[0], status);

    int64_t shape[4];
    size_t count = 0;
    float* expected = read_safetensors_f32(out, "samples", shape, &count);
    unlink(out);

    /* The same request through the C interface. */
    engine_options options;
    REQUIRE_OK(engine_options_init(&options));
    options.device = "cpu";
    options.weights = weights;
    engine_context* context;
    engine_model* model;
    REQUIRE_OK(engine_create(&options, &context));
    REQUIRE_OK(engine_load_model(context, model_dir, &model));
    static const int32_t labels[] = { 0, 3, 7, 9 };
    engine_request request;
    REQUIRE_OK(engine_request_init(&request));
    request.sampler = "ddim";
    request.steps = 10;
    request.seed = 5;
    request.count = 4;
    request.class_labels = labels;
    request.class_label_count = 4;
    request.guidance_scale = 3.0f;
    int32_t got[4];
    REQUIRE_OK(engine_output_shape(context, model, &request, got));
    for (int i = 0; i < 4; ++i)
        if (got[i] != shape[i]) FAIL("shape[%d]: C interface %d, CLI %ld", i, got[i], (long)shape[i]);
    float* pixels = malloc(count * sizeof(float));
    CHECK(pixels != NULL);
    REQUIRE_OK(engine_generate(context, model, &request, pixels, count));

    /* The C interface hands back images: the CLI's raw samples clamped to [-1, 1]. */
    for (size_t i = 0; i < count; ++i)
        expected[i] = expected[i] < -1.0f ? -1.0f : expected[i] > 1.0f ? 1.0f : expected[i];
    /* Same code, same device, same batch: the pixels must agree to the last bit. */
    float diff = test_max_abs_diff(pixels, expected, count);
    printf("  %zu floats, max |C - CLI| = %g\n", count, diff);
    if (memcmp(pixels, expected, count * sizeof(float)) != 0)
        FAIL("C interface and CLI disagree (max |diff| %g)", diff);
    for (size_t i = 0; i < count; ++i)
        if (!(pixels[i] >= -1.0f && pixels[i] <= 1.0f)) FAIL("pixel %zu = %g is outside [-1, 1]", i, pixels[i]);

    REQUIRE_OK(engine_release_model(model));
    REQUIRE_OK(engine_release_context(context));
    free(pixels);
    free(expected);
    printf("PASS\n");
    return 0;
}
