/* Cancellation: a nonzero return from the callback, engine_cancel from inside the callback and
 * engine_cancel from another thread all stop the run with ENGINE_CANCELLED; the next run on
 * the same context is not affected. */
#include <pthread.h>
#include <stdatomic.h>

#include "test_support.h"

typedef struct {
    engine_context* context;
    int stop_at;          /* step at which to stop */
    int use_cancel;       /* 1: call engine_cancel and return 0; 0: return nonzero */
    atomic_int calls;
} stopper;

static int on_progress(int32_t step, int32_t total, int32_t image_index, void* user_data)
{
    (void)total;
    (void)image_index;
    stopper* s = user_data;
    atomic_fetch_add(&s->calls, 1);
    if (s->stop_at > 0 && step == s->stop_at) {
        if (!s->use_cancel) return 1;
        if (engine_cancel(s->context) != ENGINE_OK) {
            fprintf(stderr, "engine_cancel inside the callback failed: %s\n", engine_last_error());
            exit(1);
        }
    }
    return 0;
}

/* Waits for the first progress call, then cancels from this thread. */
static void* cancel_later(void* arg)
{
    stopper* s = arg;
    while (atomic_load(&s->calls) == 0) {
        struct timespec pause = { 0, 1000000 };
        nanosleep(&pause, NULL);
    }
    engine_status st = engine_cancel(s->context);
    return (void*)(intptr_t)st;
}

int main(void)
{
    engine_context* context;
    engine_model* model;
    test_open_model(&context, &model);

    engine_request request;
    REQUIRE_OK(engine_request_init(&request));
    request.steps = 8;
    request.sampler = "ddim";
    size_t length;
    REQUIRE_OK(engine_output_size(context, model, &request, &length));
    float* pixels = malloc(length * sizeof(float));
    CHECK(pixels != NULL);

    stopper s = { .context = context };
    REQUIRE_OK(engine_set_progress_callback(context, on_progress, &s));

    /* Callback returns nonzero at step 3: no step after it runs. */
    s.stop_at = 3;
    s.use_cancel = 0;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_CANCELLED, NULL);
    if (atomic_load(&s.calls) != 3) FAIL("%d progress calls after stopping at step 3", atomic_load(&s.calls));

    /* Callback calls engine_cancel at step 2. */
    atomic_store(&s.calls, 0);
    s.stop_at = 2;
    s.use_cancel = 1;
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_CANCELLED, NULL);
    if (atomic_load(&s.calls) != 2) FAIL("%d progress calls after cancelling at step 2", atomic_load(&s.calls));

    /* The cancel was for that run only. */
    atomic_store(&s.calls, 0);
    s.stop_at = 0;
    REQUIRE_OK(engine_generate(context, model, &request, pixels, length));
    CHECK(atomic_load(&s.calls) == request.steps);

    /* engine_cancel from another thread while the run is going. */
    request.steps = 200;
    atomic_store(&s.calls, 0);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, cancel_later, &s) == 0);
    EXPECT_STATUS(engine_generate(context, model, &request, pixels, length), ENGINE_CANCELLED, NULL);
    void* result;
    CHECK(pthread_join(thread, &result) == 0);
    CHECK((engine_status)(intptr_t)result == ENGINE_OK);
    if (atomic_load(&s.calls) >= request.steps) FAIL("all %d steps ran despite engine_cancel", request.steps);
    printf("  cancelled from another thread after %d of %d steps\n", atomic_load(&s.calls), request.steps);

    /* Cancel while idle does not touch the next run. */
    request.steps = 2;
    REQUIRE_OK(engine_cancel(context));
    REQUIRE_OK(engine_generate(context, model, &request, pixels, length));

    REQUIRE_OK(engine_release_model(model));
    REQUIRE_OK(engine_release_context(context));
    free(pixels);
    printf("PASS\n");
    return 0;
}
