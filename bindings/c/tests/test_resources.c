/* Scratch memory of every operation (SPEC §3 "Resources": O(threads·C) plus a small fraction of the tensor,
 * never a multiple of it). This program defines malloc and friends itself, so the library's allocations
 * come through it (its scratch is NativeMemory, that is malloc); it records the peak of live heap bytes
 * during each call above what was live before it. Tensors and per-channel vectors are mmap'd, outside
 * the count. Prints one line per case; fails when a call's scratch passes
 *     tensor/16 + (16 + 4·sizeof(T))·C + 16·P + 2 MiB·threads
 * (C: channels, P: LayerNorm positions): the row-block partials of channels-last BatchNorm and LayerNorm's
 * dgamma/dbeta partials are at most 1/32 of the tensor; per channel, the statistics in float64 and four
 * coefficients in the element type; per wide LayerNorm row, two coefficients; per task, its chunk buffers. With --errors instead: 1000 short-lived
 * host threads each make a failing call and read its message; the heap must not grow by a buffer per thread.
 * Usage: test_resources [--quick | --errors] */
#define _GNU_SOURCE
#include "test_support.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

static atomic_long live, peak;

static void account(long delta) {
    long now = atomic_fetch_add(&live, delta) + delta, high = atomic_load(&peak);
    while (now > high && !atomic_compare_exchange_weak(&peak, &high, now)) {}
}
static long usable(void* p) { return p ? (long)malloc_usable_size(p) : 0; }

void* malloc(size_t n) { void* p = __libc_malloc(n); account(usable(p)); return p; }
void* calloc(size_t a, size_t b) { void* p = __libc_calloc(a, b); account(usable(p)); return p; }
void free(void* p) { account(-usable(p)); __libc_free(p); }
void* realloc(void* p, size_t n) {
    long before = usable(p);
    void* q = __libc_realloc(p, n);
    if (q || n == 0) account(usable(q) - before);
    return q;
}
void* memalign(size_t alignment, size_t n) { void* p = __libc_memalign(alignment, n); account(usable(p)); return p; }
void* aligned_alloc(size_t alignment, size_t n) { return memalign(alignment, n); }
int posix_memalign(void** out, size_t alignment, size_t n) {
    void* p = memalign(alignment, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

static void* mapped(size_t bytes) {
    void* p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static int failed, passed;

static void measure(const char* name, int kind, bn_tensor_desc d, int threads) {
    size_t count = (size_t)(d.n * d.c * d.h * d.w), size = d.dtype == BN_DTYPE_F64 ? 8 : 4;
    size_t positions = (size_t)(d.n * d.h * d.w), channels = (size_t)d.c;
    size_t vectors = kind >= JOB_LN_FORWARD ? positions : channels;
    char *x = mapped(count * size), *dy = mapped(count * size), *out = mapped(count * size);
    char *gamma = mapped(channels * size), *beta = mapped(channels * size), *rm = mapped(channels * size), *rv = mapped(channels * size);
    char *mean = mapped(vectors * size), *invstd = mapped(vectors * size), *r = mapped(channels * size), *dd = mapped(channels * size);
    char *dgamma = mapped(channels * size), *dbeta = mapped(channels * size);
    bn_fill(x, d.dtype, count, 1, -2, 3);
    bn_fill(dy, d.dtype, count, 2, -1, 1);
    bn_fill(gamma, d.dtype, channels, 3, 0.5, 1.5);
    bn_fill(rv, d.dtype, channels, 4, 0.5, 1.5);
    bn_fill(mean, d.dtype, vectors, 5, -0.1, 0.1);
    bn_fill(invstd, d.dtype, vectors, 6, 0.5, 1.5);
    bn_fill(r, d.dtype, channels, 7, 0.5, 1.5);
    bn_set_num_threads(threads);
    atomic_store(&peak, atomic_load(&live));
    long before = atomic_load(&live);
    bn_status s = BN_STATUS_SUCCESS;
    switch (kind) {
    case JOB_BN_TRAIN: s = bn_batch_norm_forward_training(&d, x, out, gamma, beta, rm, rv, 0.1, 1e-5, mean, invstd); break;
    case JOB_BN_INFERENCE: s = bn_batch_norm_forward_inference(&d, x, out, gamma, beta, rm, rv, 1e-5); break;
    case JOB_BN_BACKWARD: s = bn_batch_norm_backward(&d, x, dy, out, gamma, mean, invstd, dgamma, dbeta); break;
    case JOB_BN_FROZEN_BACKWARD: s = bn_batch_norm_backward_inference(&d, x, dy, out, gamma, rm, rv, 1e-5, dgamma, dbeta); break;
    case JOB_BRN_TRAIN: s = bn_batch_renorm_forward_training(&d, x, out, gamma, beta, rm, rv, 0.1, 1e-5, 3, 5, mean, invstd, r, dd); break;
    case JOB_BRN_BACKWARD: s = bn_batch_renorm_backward(&d, x, dy, out, gamma, mean, invstd, r, dd, dgamma, dbeta); break;
    case JOB_LN_FORWARD: s = bn_layer_norm_forward(&d, x, out, gamma, beta, 1e-5, mean, invstd); break;
    case JOB_LN_BACKWARD: s = bn_layer_norm_backward(&d, x, dy, out, gamma, mean, invstd, dgamma, dbeta); break;
    }
    long scratch = atomic_load(&peak) - before;
    double tensor = (double)(count * size);
    double bound = tensor / 16 + (16.0 + 4.0 * (double)size) * (double)channels + 16.0 * (double)(kind >= JOB_LN_FORWARD ? positions : 0)
                   + 2.0 * 1048576 * threads;
    int ok = s == BN_STATUS_SUCCESS && scratch <= bound;
    if (ok) passed++; else failed++;
    printf("%s %-28s %-4s %-5s n=%-6lld c=%-8lld s=%-6lld %2d threads  tensor %9.1f MB  scratch %9.3f MB  (%6.2f%% of the tensor, bound %8.1f MB)%s\n",
           ok ? "ok  " : "FAIL", name, d.layout == BN_LAYOUT_NC ? "NC" : d.layout == BN_LAYOUT_NCHW ? "NCHW" : "NHWC",
           d.dtype == BN_DTYPE_F64 ? "F64" : "F32", (long long)d.n, (long long)d.c, (long long)(d.h * d.w), threads,
           tensor / 1e6, scratch / 1e6, 100.0 * scratch / tensor, bound / 1e6, s == BN_STATUS_SUCCESS ? "" : " (call failed)");
    fflush(stdout);
    munmap(x, count * size); munmap(dy, count * size); munmap(out, count * size);
    munmap(gamma, channels * size); munmap(beta, channels * size); munmap(rm, channels * size); munmap(rv, channels * size);
    munmap(mean, vectors * size); munmap(invstd, vectors * size); munmap(r, channels * size); munmap(dd, channels * size);
    munmap(dgamma, channels * size); munmap(dbeta, channels * size);
}

static void* failing_call(void* arg) {
    (void)arg;
    bn_tensor_desc d = { BN_LAYOUT_NC, BN_DTYPE_F32, 0, 4, 1, 1 };
    float x[4] = { 0, 0, 0, 0 };
    bn_status s = bn_batch_norm_forward_inference(&d, x, x, NULL, NULL, x, x, 1e-5);
    return (void*)(intptr_t)(s == BN_STATUS_BAD_SHAPE && strlen(bn_last_error_message()) > 0);
}

/* Error messages are per thread; a thread's buffer must go when the thread does. */
static void error_buffers(void) {
    enum { THREADS = 1000 };
    for (int round = 0; round < 2; round++) {
        long before = atomic_load(&live);
        int ok = 1;
        for (int i = 0; i < THREADS; i++) {
            pthread_t t;
            void* result;
            pthread_create(&t, NULL, failing_call, NULL);
            pthread_join(t, &result);
            ok &= result != NULL;
        }
        long grown = atomic_load(&live) - before;
        /* The first round may start the runtime's own per-process state; the second must not grow by ~512 bytes a thread. */
        int good = ok && (round == 0 || grown < THREADS * 64);
        if (good) passed++; else failed++;
        printf("%s error messages: %d threads, heap grew by %ld bytes (%.1f per thread)%s\n", good ? "ok  " : "FAIL", THREADS, grown,
               (double)grown / THREADS, ok ? "" : " (a call did not fail as expected)");
    }
}

int main(int argc, char** argv) {
    if (argc > 1 && !strcmp(argv[1], "--errors")) {
        error_buffers();
        printf("%d passed, %d failed\n", passed, failed);
        return failed ? 1 : 0;
    }
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    static const struct { const char* name; int layout; int64_t n, c, h, w; int ln; } cases[] = {
        { "resnet-early", BN_LAYOUT_NCHW, 32, 64, 56, 56, 0 }, { "resnet-early", BN_LAYOUT_NHWC, 32, 64, 56, 56, 0 },
        { "resnet-late", BN_LAYOUT_NCHW, 32, 512, 7, 7, 0 },   { "resnet-late", BN_LAYOUT_NHWC, 32, 512, 7, 7, 0 },
        { "mlp", BN_LAYOUT_NC, 256, 4096, 1, 1, 0 },           { "inference", BN_LAYOUT_NHWC, 1, 256, 56, 56, 0 },
        { "renorm", BN_LAYOUT_NHWC, 8, 256, 28, 28, 0 },
        { "bert", BN_LAYOUT_NC, 8192, 768, 1, 1, 1 },          { "llm", BN_LAYOUT_NC, 2048, 4096, 1, 1, 1 },
        { "convnext", BN_LAYOUT_NHWC, 32, 96, 56, 56, 1 },     { "convnext", BN_LAYOUT_NCHW, 32, 96, 56, 56, 1 },
        { "LN wide rows", BN_LAYOUT_NC, 64, 1048576, 1, 1, 1 }, { "LN NCHW, one position", BN_LAYOUT_NCHW, 4096, 512, 1, 1, 1 },
        { "BN NC, two rows", BN_LAYOUT_NC, 2, 1 << 26, 1, 1, 0 },
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        if (quick && (cases[i].c >= 1048576)) continue;
        for (int kind = 0; kind < JOB_KINDS; kind++) {
            int ln = kind >= JOB_LN_FORWARD;
            if (ln != cases[i].ln) continue;
            if (cases[i].c >= (1 << 26) && kind != JOB_BN_TRAIN && kind != JOB_BN_BACKWARD) continue;
            static const char* kinds[] = { "BN forward", "BN inference", "BN backward", "BN frozen backward", "BRN forward", "BRN backward", "LN forward", "LN backward" };
            char name[64];
            snprintf(name, sizeof name, "%s %s", cases[i].name, kinds[kind]);
            bn_tensor_desc d = { cases[i].layout, BN_DTYPE_F32, cases[i].n, cases[i].c, cases[i].h, cases[i].w };
            measure(name, kind, d, 2);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
