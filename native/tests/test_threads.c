/* Two contexts used from two threads at once both succeed and give exactly the pixels of the
 * same requests run one after the other. */
#include <pthread.h>

#include "test_support.h"

typedef struct {
    engine_context* context;
    engine_model* model;
    engine_request request;
    float* pixels;
    size_t length;
    engine_status status;
    char error[512];
    pthread_barrier_t* start;
} job;

static void* run(void* arg)
{
    job* j = arg;
    pthread_barrier_wait(j->start);
    j->status = engine_generate(j->context, j->model, &j->request, j->pixels, j->length);
    snprintf(j->error, sizeof j->error, "%s", engine_last_error());
    return NULL;
}

static void make_request(engine_request* r, uint64_t seed, const int32_t* labels, size_t nlabels)
{
    engine_request_init(r);
    r->steps = 6;
    r->sampler = "ddim";
    r->seed = seed;
    r->count = 2;
    r->class_labels = labels;
    r->class_label_count = nlabels;
}

int main(void)
{
    static const int32_t labels_a[] = { 3 };
    static const int32_t labels_b[] = { 1, 7 };
    job jobs[2];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 2; ++i) test_open_model(&jobs[i].context, &jobs[i].model);
    make_request(&jobs[0].request, 11, labels_a, 1);
    make_request(&jobs[1].request, 22, labels_b, 2);

    float* sequential[2];
    for (int i = 0; i < 2; ++i) {
        REQUIRE_OK(engine_output_size(jobs[i].context, jobs[i].model, &jobs[i].request, &jobs[i].length));
        jobs[i].pixels = calloc(jobs[i].length, sizeof(float));
        sequential[i] = calloc(jobs[i].length, sizeof(float));
        CHECK(jobs[i].pixels != NULL && sequential[i] != NULL);
        /* Both sequential runs on the first context: contexts must not matter either. */
        REQUIRE_OK(engine_generate(jobs[0].context, jobs[0].model, &jobs[i].request, sequential[i], jobs[i].length));
    }
    CHECK(test_max_abs_diff(sequential[0], sequential[1], jobs[0].length) > 0.0f);

    pthread_barrier_t start;
    CHECK(pthread_barrier_init(&start, NULL, 2) == 0);
    pthread_t threads[2];
    for (int i = 0; i < 2; ++i) {
        jobs[i].start = &start;
        CHECK(pthread_create(&threads[i], NULL, run, &jobs[i]) == 0);
    }
    for (int i = 0; i < 2; ++i) CHECK(pthread_join(threads[i], NULL) == 0);
    pthread_barrier_destroy(&start);

    for (int i = 0; i < 2; ++i) {
        if (jobs[i].status != ENGINE_OK)
            FAIL("thread %d: %s: %s", i, engine_status_name(jobs[i].status), jobs[i].error);
        if (memcmp(jobs[i].pixels, sequential[i], jobs[i].length * sizeof(float)) != 0)
            FAIL("thread %d: pixels differ from the sequential run (max |diff| %g)", i,
                 test_max_abs_diff(jobs[i].pixels, sequential[i], jobs[i].length));
        REQUIRE_OK(engine_release_model(jobs[i].model));
        REQUIRE_OK(engine_release_context(jobs[i].context));
        free(jobs[i].pixels);
        free(sequential[i]);
    }
    printf("PASS\n");
    return 0;
}
