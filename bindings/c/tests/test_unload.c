/* dlopen/dlclose of the library, 100 times (SPEC §3 "Resources"): each cycle sets 2 threads and makes a call,
 * so the worker pool is running when the library is closed. No crash, and no thread left behind per cycle.
 * Not linked against the library: dlclose must be the last reference. Usage: test_unload LIBRARY */
#define _GNU_SOURCE
#include "test_support.h"

#include <dlfcn.h>

static int passed, failed;
#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); fflush(stdout); } } while (0)

typedef bn_status (*forward_training)(const bn_tensor_desc*, const void*, void*, const void*, const void*, void*, void*,
                                      double, double, void*, void*);

static int unload(const char* path) {
    int threads_after_first = -1;
    for (int cycle = 0; cycle < 100; cycle++) {
        void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!lib) { CHECK(0, "dlopen %s: %s", path, dlerror()); return 1; }
        int32_t (*set_threads)(int32_t) = (int32_t (*)(int32_t))dlsym(lib, "bn_set_num_threads");
        forward_training forward = (forward_training)dlsym(lib, "bn_batch_norm_forward_training");
        if (!set_threads || !forward) { CHECK(0, "dlsym failed"); return 1; }
        set_threads(2);
        enum { N = 4096, C = 256 }; /* 8 tasks: the pool's worker runs */
        static float x[N * C], y[N * C];
        bn_fill(x, BN_DTYPE_F32, N * C, (uint64_t)cycle, -1, 1);
        bn_tensor_desc d = { BN_LAYOUT_NC, BN_DTYPE_F32, N, C, 1, 1 };
        bn_status s = forward(&d, x, y, NULL, NULL, NULL, NULL, 0.1, 1e-5, NULL, NULL);
        if (s != BN_STATUS_SUCCESS) { CHECK(0, "cycle %d: status %d", cycle, s); return 1; }
        CHECK(dlclose(lib) == 0, "dlclose: %s", dlerror());
        if (cycle == 0) threads_after_first = bn_thread_count();
    }
    int threads = bn_thread_count();
    CHECK(threads == threads_after_first, "threads after 100 cycles: %d, after the first: %d (a leak per cycle)", threads, threads_after_first);
    printf("unload: 100 cycles, %d threads in the process after the first and after the last\n", threads);
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s LIBRARY\n", argv[0]); return 2; }
    unload(argv[1]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
