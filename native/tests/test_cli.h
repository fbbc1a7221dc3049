/* The C tests that compare the C interface with the CLI run `engine generate` in a child process through these
 * helpers (POSIX: fork and exec), and open the same model on the "cpu" device. */
#ifndef ENGINE_TEST_CLI_H
#define ENGINE_TEST_CLI_H

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.h"

/* Runs `COMMAND... generate ARGS... --output-tensor TMP --out TMPDIR` (COMMAND: how to start the CLI, e.g.
 * `dotnet path/to/engine.dll`) and returns the `image` tensor it wrote ([N, 3, H, W] in [0, 1]) with its length
 * in *count; fails the test when the run fails. The scratch file and folder are removed. */
static inline float* test_cli_image(char* const* command, int command_count, const char* const* args,
                                    size_t arg_count, size_t* count)
{
    char out[] = "/tmp/engine-cli-XXXXXX.safetensors";
    int fd = mkstemps(out, 12);
    CHECK(fd >= 0);
    close(fd);
    char out_dir[] = "/tmp/engine-cli-out-XXXXXX";
    CHECK(mkdtemp(out_dir) != NULL);
    char* argv[128];
    CHECK(command_count >= 1 && (size_t)command_count + arg_count + 6 <= sizeof argv / sizeof argv[0]);
    size_t k = 0;
    for (int i = 0; i < command_count; ++i) argv[k++] = command[i];
    argv[k++] = "generate";
    for (size_t i = 0; i < arg_count; ++i) argv[k++] = (char*)args[i];
    argv[k++] = "--output-tensor";
    argv[k++] = out;
    argv[k++] = "--out";
    argv[k++] = out_dir;
    argv[k] = NULL;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) { execvp(argv[0], argv); perror(argv[0]); _exit(127); }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) FAIL("engine generate (%s) failed (status %d)", argv[0], status);
    float* image = test_read_f32_tensor(out, "image", count);
    if (image == NULL) FAIL("cannot read tensor 'image' of %s", out);
    unlink(out);
    DIR* dir = opendir(out_dir);
    if (dir != NULL) {
        char path[1200];
        for (struct dirent* e; (e = readdir(dir)) != NULL;) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", out_dir, e->d_name);
            unlink(path);
        }
        closedir(dir);
    }
    rmdir(out_dir);
    return image;
}

/* Creates a context on the "cpu" device and loads the model or pipeline folder. */
static inline void test_open_cpu(const char* folder, engine_context** context, engine_model** model)
{
    engine_options options;
    REQUIRE_OK(engine_options_init(&options));
    options.device = "cpu";
    REQUIRE_OK(engine_create(&options, context));
    REQUIRE_OK(engine_load_model(*context, folder, model));
}

#endif
