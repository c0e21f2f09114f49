/* Helpers shared by the C fault, soak and resource tests: deterministic data, one "job" per operation
 * (inputs made from a seed, every output hashed), and the thread count of this process. */
#ifndef BN_TEST_SUPPORT_H
#define BN_TEST_SUPPORT_H

#include "bnnative.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over bytes: two runs agree bitwise exactly when their digests do (with overwhelming odds). */
static inline uint64_t bn_digest(uint64_t h, const void* data, size_t bytes) {
    const unsigned char* p = (const unsigned char*)data;
    for (size_t i = 0; i < bytes; i++) { h ^= p[i]; h *= 1099511628211ull; }
    return h;
}

/* Threads of this process (/proc/self/task entries). */
static inline int bn_thread_count(void) {
    int n = 0;
    DIR* dir = opendir("/proc/self/task");
    if (!dir) return -1;
    struct dirent* e;
    while ((e = readdir(dir)) != NULL) if (e->d_name[0] != '.') n++;
    closedir(dir);
    return n;
}

static inline double bn_uniform(uint64_t* state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*state >> 11) / 9007199254740992.0;
}

static inline void bn_fill(void* p, int dtype, size_t count, uint64_t seed, double lo, double hi) {
    for (size_t i = 0; i < count; i++) {
        double v = lo + (hi - lo) * bn_uniform(&seed);
        if (dtype == BN_DTYPE_F64) ((double*)p)[i] = v; else ((float*)p)[i] = (float)v;
    }
}

enum { JOB_BN_TRAIN, JOB_BN_INFERENCE, JOB_BN_BACKWARD, JOB_BN_FROZEN_BACKWARD, JOB_BRN_TRAIN, JOB_BRN_BACKWARD,
       JOB_LN_FORWARD, JOB_LN_BACKWARD, JOB_KINDS };

typedef struct bn_job { int kind; bn_tensor_desc desc; uint64_t seed; } bn_job;

/* Runs one operation (and the forward its backward needs) on inputs made from the job's seed; returns the
 * digest of every output, or 0 when a call failed (*status then holds its status). */
static inline uint64_t bn_run_job(const bn_job* job, bn_status* status) {
    const bn_tensor_desc* d = &job->desc;
    size_t count = (size_t)(d->n * d->c * d->h * d->w), size = d->dtype == BN_DTYPE_F64 ? 8 : 4;
    size_t vectors = (size_t)(job->kind >= JOB_LN_FORWARD ? d->n * d->h * d->w : d->c);
    size_t channels = (size_t)d->c;
    char* x = malloc(count * size); char* dy = malloc(count * size); char* out = malloc(count * size);
    char* gamma = malloc(channels * size); char* beta = malloc(channels * size);
    char* rm = malloc(channels * size); char* rv = malloc(channels * size);
    char* mean = malloc(vectors * size); char* invstd = malloc(vectors * size);
    char* r = malloc(channels * size); char* dd = malloc(channels * size);
    char* dgamma = malloc(channels * size); char* dbeta = malloc(channels * size);
    bn_fill(x, d->dtype, count, job->seed, -3, 5);
    bn_fill(dy, d->dtype, count, job->seed + 1, -1, 1);
    bn_fill(gamma, d->dtype, channels, job->seed + 2, 0.5, 1.5);
    bn_fill(beta, d->dtype, channels, job->seed + 3, -1, 1);
    bn_fill(rm, d->dtype, channels, job->seed + 4, -1, 1);
    bn_fill(rv, d->dtype, channels, job->seed + 5, 0.5, 2);
    uint64_t h = 1469598103934665603ull;
    bn_status s = BN_STATUS_SUCCESS;
    switch (job->kind) {
    case JOB_BN_TRAIN: case JOB_BN_BACKWARD:
        s = bn_batch_norm_forward_training(d, x, out, gamma, beta, rm, rv, 0.1, 1e-5, mean, invstd);
        if (s == BN_STATUS_SUCCESS && job->kind == JOB_BN_BACKWARD)
            s = bn_batch_norm_backward(d, x, dy, out, gamma, mean, invstd, dgamma, dbeta);
        break;
    case JOB_BN_INFERENCE:
        s = bn_batch_norm_forward_inference(d, x, out, gamma, beta, rm, rv, 1e-5);
        break;
    case JOB_BN_FROZEN_BACKWARD:
        s = bn_batch_norm_backward_inference(d, x, dy, out, gamma, rm, rv, 1e-5, dgamma, dbeta);
        break;
    case JOB_BRN_TRAIN: case JOB_BRN_BACKWARD:
        s = bn_batch_renorm_forward_training(d, x, out, gamma, beta, rm, rv, 0.1, 1e-5, 3, 5, mean, invstd, r, dd);
        if (s == BN_STATUS_SUCCESS && job->kind == JOB_BRN_BACKWARD)
            s = bn_batch_renorm_backward(d, x, dy, out, gamma, mean, invstd, r, dd, dgamma, dbeta);
        break;
    case JOB_LN_FORWARD: case JOB_LN_BACKWARD:
        s = bn_layer_norm_forward(d, x, out, gamma, beta, 1e-5, mean, invstd);
        if (s == BN_STATUS_SUCCESS && job->kind == JOB_LN_BACKWARD)
            s = bn_layer_norm_backward(d, x, dy, out, gamma, mean, invstd, dgamma, dbeta);
        break;
    }
    h = bn_digest(h, out, count * size);
    if (job->kind == JOB_BN_TRAIN || job->kind == JOB_BRN_TRAIN || job->kind == JOB_LN_FORWARD)
        h = bn_digest(bn_digest(h, mean, vectors * size), invstd, vectors * size);
    if (job->kind == JOB_BN_TRAIN || job->kind == JOB_BRN_TRAIN)
        h = bn_digest(bn_digest(h, rm, channels * size), rv, channels * size);
    if (job->kind == JOB_BN_BACKWARD || job->kind == JOB_BN_FROZEN_BACKWARD || job->kind == JOB_BRN_BACKWARD || job->kind == JOB_LN_BACKWARD)
        h = bn_digest(bn_digest(h, dgamma, channels * size), dbeta, channels * size);
    free(x); free(dy); free(out); free(gamma); free(beta); free(rm); free(rv);
    free(mean); free(invstd); free(r); free(dd); free(dgamma); free(dbeta);
    if (status) *status = s;
    return s == BN_STATUS_SUCCESS ? h : 0;
}

/* A mix of jobs: every operation, layout and dtype, shapes big enough for several tasks. */
static inline int bn_job_mix(bn_job* jobs, int capacity) {
    static const int64_t shapes[][4] = { { 8, 37, 13, 11 }, { 64, 96, 1, 1 }, { 3, 160, 9, 7 }, { 512, 24, 1, 1 } };
    int n = 0;
    for (int kind = 0; kind < JOB_KINDS; kind++)
        for (int layout = 0; layout < 3; layout++)
            for (int dtype = 0; dtype < 2 && n < capacity; dtype++) {
                const int64_t* s = shapes[(kind + layout + dtype) % 4];
                bn_job j = { kind, { layout, dtype, s[0], s[1], layout == BN_LAYOUT_NC ? 1 : s[2], layout == BN_LAYOUT_NC ? 1 : s[3] },
                             (uint64_t)(1000 + 17 * n) };
                jobs[n++] = j;
            }
    return n;
}

#endif
