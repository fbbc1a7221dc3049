/* Small helpers shared by the C tests: checks that print the engine's last error, and the
 * location of the built-in model. A test exits 0 on success, 1 on failure, 77 when skipped. */
#ifndef ENGINE_TEST_SUPPORT_H
#define ENGINE_TEST_SUPPORT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine.h"

#define TEST_SKIP 77

#define FAIL(...)                                                                         \
    do {                                                                                  \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                   \
        fprintf(stderr, __VA_ARGS__);                                                     \
        fprintf(stderr, "\n  last error: '%s'\n", engine_last_error());                   \
        exit(1);                                                                          \
    } while (0)

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) FAIL("check failed: %s", #cond);                                     \
    } while (0)

/* Runs call and requires status; a failing status must come with an error text that
 * contains needle (NULL: any non-empty text), a success with an empty one. */
#define EXPECT_STATUS(call, status, needle)                                               \
    do {                                                                                  \
        engine_status st_ = (call);                                                       \
        if (st_ != (status))                                                              \
            FAIL("%s returned %s, expected %s", #call, engine_status_name(st_),           \
                 engine_status_name(status));                                             \
        const char* text_ = engine_last_error();                                          \
        if ((status) == ENGINE_OK && text_[0] != '\0')                                    \
            FAIL("%s succeeded but left an error text", #call);                           \
        if ((status) != ENGINE_OK && text_[0] == '\0')                                    \
            FAIL("%s failed without an error text", #call);                               \
        if ((status) != ENGINE_OK && (needle) != NULL && strstr(text_, (needle)) == NULL) \
            FAIL("%s: error text does not mention '%s'", #call, (const char*)(needle));   \
        if ((status) != ENGINE_OK) printf("  %-50.50s -> %s: %s\n", #call,                \
                                          engine_status_name(st_), text_);                \
    } while (0)

#define REQUIRE_OK(call) EXPECT_STATUS(call, ENGINE_OK, NULL)

/* Folder of the built-in UNet model: ENGINE_TEST_MODEL when set (tests run from a copied
 * build), else models/fmnist-unet in the repository, else the shared copy next to it; NULL
 * when none exists. */
static inline const char* test_model_path(void)
{
    static const char* candidates[] = { ENGINE_SOURCE_DIR "/models/fmnist-unet",
                                        ENGINE_SOURCE_DIR "/../shared/models/fmnist-unet" };
    struct stat st;
    const char* env = getenv("ENGINE_TEST_MODEL");
    if (env != NULL && env[0] != '\0') return stat(env, &st) == 0 && S_ISDIR(st.st_mode) ? env : NULL;
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; ++i)
        if (stat(candidates[i], &st) == 0 && S_ISDIR(st.st_mode)) return candidates[i];
    return NULL;
}

/* Creates a context on the default device and loads the built-in model; exits with
 * TEST_SKIP when the model is not available. */
static inline void test_open_model(engine_context** context, engine_model** model)
{
    const char* path = test_model_path();
    if (path == NULL) {
        printf("SKIP: built-in model not found (models/fmnist-unet or ../shared/models/fmnist-unet)\n");
        exit(TEST_SKIP);
    }
    REQUIRE_OK(engine_create(NULL, context));
    REQUIRE_OK(engine_load_model(*context, path, model));
}

/* The fixtures folder: ENGINE_FIXTURES when set, else ../shared/fixtures beside the repository; NULL when
 * it does not exist. */
static inline const char* test_fixtures_root(void)
{
    struct stat st;
    const char* env = getenv("ENGINE_FIXTURES");
    if (env != NULL && env[0] != '\0') return stat(env, &st) == 0 && S_ISDIR(st.st_mode) ? env : NULL;
    static const char* fallback = ENGINE_SOURCE_DIR "/../shared/fixtures";
    return stat(fallback, &st) == 0 && S_ISDIR(st.st_mode) ? fallback : NULL;
}

/* The F32 tensor `name` of a safetensors file as a malloc'd array of *count floats (little-endian host);
 * NULL when the file or tensor is missing or not F32. Enough of the format for a test: the header is JSON,
 * and the entry's dtype and data_offsets are read from it. */
static inline float* test_read_f32_tensor(const char* path, const char* name, size_t* count)
{
    FILE* f = fopen(path, "rb");
    if (f == NULL) return NULL;
    uint64_t header_len = 0;
    float* values = NULL;
    char* header = NULL;
    char key[128];
    unsigned long long begin, end;
    if (fread(&header_len, 8, 1, f) != 1 || header_len == 0 || header_len > (1u << 24)) goto done;
    header = calloc(header_len + 1, 1);
    if (header == NULL || fread(header, 1, header_len, f) != header_len) goto done;
    snprintf(key, sizeof key, "\"%s\"", name);
    const char* entry = strstr(header, key);
    const char* dtype = entry == NULL ? NULL : strstr(entry, "\"dtype\"");
    const char* offsets = entry == NULL ? NULL : strstr(entry, "\"data_offsets\"");
    if (dtype == NULL || offsets == NULL || strstr(dtype, "\"F32\"") != strchr(dtype + 7, '"')) goto done;
    if (strchr(offsets, '[') == NULL || sscanf(strchr(offsets, '['), "[%llu,%llu]", &begin, &end) != 2 || end <= begin) goto done;
    *count = (size_t)((end - begin) / 4);
    values = malloc(end - begin);
    if (values == NULL || fseek(f, (long)(8 + header_len + begin), SEEK_SET) != 0 || fread(values, 4, *count, f) != *count) {
        free(values);
        values = NULL;
    }
done:
    free(header);
    fclose(f);
    return values;
}

/* Largest |a - b| over n floats. */
static inline float test_max_abs_diff(const float* a, const float* b, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; ++i) {
        float d = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        if (d > m) m = d;
    }
    return m;
}

#endif /* ENGINE_TEST_SUPPORT_H */
