/* The C ABI test: links libbnnative through bnnative.h and checks what a C caller relies on — version,
 * status codes and messages, argument checks that write nothing, the instruction set in use, and
 * BatchNorm forward/backward (F32, F64, F16 and BF16, NCHW, NHWC and NC, sizes with vector tails) against a float64
 * reference written here, and the split path (a batch in two parts) against the fused calls.
 * Usage: test_abi [expected-isa]. Prints "N passed, N failed". */
#include "bnnative.h"
#include "sixteen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

static double urand(unsigned* state) { *state = *state * 1664525u + 1013904223u; return (*state >> 8) / 16777216.0; }

static size_t offset(const bn_tensor_desc* d, int64_t n, int64_t c, int64_t h, int64_t w) {
    if (d->layout == BN_LAYOUT_NHWC) return (size_t)(((n * d->h + h) * d->w + w) * d->c + c);
    return (size_t)(((n * d->c + c) * d->h + h) * d->w + w);
}

/* float64 reference of BatchNorm training forward and backward for channel c */
static void reference(const bn_tensor_desc* d, const double* x, const double* dy, const double* gamma, double eps,
                      double* y, double* dx, double* mean_out, double* invstd_out, double* dgamma, double* dbeta) {
    int64_t m = d->n * d->h * d->w;
    for (int64_t c = 0; c < d->c; c++) {
        double mean = 0, var = 0, sdy = 0, sdyx = 0;
        for (int64_t n = 0; n < d->n; n++) for (int64_t h = 0; h < d->h; h++) for (int64_t w = 0; w < d->w; w++)
            mean += x[offset(d, n, c, h, w)];
        mean /= m;
        for (int64_t n = 0; n < d->n; n++) for (int64_t h = 0; h < d->h; h++) for (int64_t w = 0; w < d->w; w++) {
            double v = x[offset(d, n, c, h, w)] - mean; var += v * v; }
        var /= m;
        double invstd = 1.0 / sqrt(var + eps);
        for (int64_t n = 0; n < d->n; n++) for (int64_t h = 0; h < d->h; h++) for (int64_t w = 0; w < d->w; w++) {
            size_t i = offset(d, n, c, h, w);
            double xh = (x[i] - mean) * invstd;
            y[i] = gamma[c] * xh + 0.5;
            sdy += dy[i]; sdyx += dy[i] * xh;
        }
        for (int64_t n = 0; n < d->n; n++) for (int64_t h = 0; h < d->h; h++) for (int64_t w = 0; w < d->w; w++) {
            size_t i = offset(d, n, c, h, w);
            double xh = (x[i] - mean) * invstd;
            dx[i] = gamma[c] * invstd * (dy[i] - sdy / m - xh * sdyx / m);
        }
        mean_out[c] = mean; invstd_out[c] = invstd; dgamma[c] = sdyx; dbeta[c] = sdy;
    }
}

static double get(const void* p, int dtype, size_t i) {
    switch (dtype) {
    case BN_DTYPE_F64: return ((const double*)p)[i];
    case BN_DTYPE_F16: return half_to_float(((const uint16_t*)p)[i]);
    case BN_DTYPE_BF16: return bf16_to_float(((const uint16_t*)p)[i]);
    default: return ((const float*)p)[i];
    }
}

static void put(void* p, int dtype, size_t i, double v) {
    switch (dtype) {
    case BN_DTYPE_F64: ((double*)p)[i] = v; break;
    case BN_DTYPE_F16: ((uint16_t*)p)[i] = float_to_half((float)v); break;
    case BN_DTYPE_BF16: ((uint16_t*)p)[i] = float_to_bf16((float)v); break;
    default: ((float*)p)[i] = (float)v; break;
    }
}

static int sixteen_bit(int dtype) { return dtype == BN_DTYPE_F16 || dtype == BN_DTYPE_BF16; }

/* A tensor output's error beyond what SPEC §4 grants a 16-bit format (2.5 of its ulps), relative to 1 + |ref|. */
static double tensor_error(int dtype, double got, double ref) {
    double slack = sixteen_bit(dtype) ? 2.5 * sixteen_ulp(dtype == BN_DTYPE_BF16, ref) : 0;
    return fmax(0, fabs(got - ref) - slack) / (1 + fabs(ref));
}

static void check_batch_norm(int layout, int dtype, int64_t n, int64_t c, int64_t h, int64_t w) {
    bn_tensor_desc d = { layout, dtype, n, c, h, w };
    /* Parameters and statistics are float beside F16/BF16 tensors (SPEC §1). */
    int pdtype = dtype == BN_DTYPE_F64 ? BN_DTYPE_F64 : BN_DTYPE_F32;
    size_t count = (size_t)(n * c * h * w), size = dtype == BN_DTYPE_F64 ? 8 : sixteen_bit(dtype) ? 2 : 4, psize = pdtype == BN_DTYPE_F64 ? 8 : 4;
    double tol = dtype == BN_DTYPE_F64 ? 1e-10 : 1e-4, eps = 1e-5;
    double *x = malloc(count * 8), *dy = malloc(count * 8), *ry = malloc(count * 8), *rdx = malloc(count * 8);
    double *gamma = malloc(c * 8), *rmean = malloc(c * 8), *rinv = malloc(c * 8), *rdg = malloc(c * 8), *rdb = malloc(c * 8);
    void *tx = malloc(count * size), *tdy = malloc(count * size), *ty = malloc(count * size), *tdx = malloc(count * size);
    void *tg = malloc(c * psize), *tb = malloc(c * psize), *tm = malloc(c * psize), *ti = malloc(c * psize);
    void *tdg = malloc(c * psize), *tdb = malloc(c * psize), *trm = malloc(c * psize), *trv = malloc(c * psize);
    unsigned seed = 12345u + (unsigned)(layout * 7 + dtype);
    for (size_t i = 0; i < count; i++) {
        x[i] = 3.0 + 2.0 * (urand(&seed) - 0.5); dy[i] = urand(&seed) - 0.5;
        put(tx, dtype, i, x[i]); x[i] = get(tx, dtype, i);
        put(tdy, dtype, i, dy[i]); dy[i] = get(tdy, dtype, i);
    }
    for (int64_t k = 0; k < c; k++) {
        gamma[k] = 0.5 + urand(&seed); put(tg, pdtype, k, gamma[k]); gamma[k] = get(tg, pdtype, k);
        put(tb, pdtype, k, 0.5); put(trm, pdtype, k, 0.0); put(trv, pdtype, k, 1.0);
    }
    reference(&d, x, dy, gamma, eps, ry, rdx, rmean, rinv, rdg, rdb);

    bn_status s = bn_batch_norm_forward_training(&d, tx, ty, tg, tb, trm, trv, 0.1, eps, tm, ti);
    CHECK(s == BN_STATUS_SUCCESS, "forward_training status %d (%s)", s, bn_last_error_message());
    double worst = 0;
    for (size_t i = 0; i < count; i++) worst = fmax(worst, tensor_error(dtype, get(ty, dtype, i), ry[i]));
    for (int64_t k = 0; k < c; k++) {
        worst = fmax(worst, fabs(get(tm, pdtype, k) - rmean[k]) / (1 + fabs(rmean[k])));
        worst = fmax(worst, fabs(get(ti, pdtype, k) - rinv[k]) / rinv[k]);
        double m = (double)(n * h * w), var = 1.0 / (rinv[k] * rinv[k]) - eps;
        worst = fmax(worst, fabs(get(trm, pdtype, k) - 0.1 * rmean[k]) / (1 + fabs(rmean[k])));
        worst = fmax(worst, fabs(get(trv, pdtype, k) - (0.9 + 0.1 * var * m / (m - 1))));
    }
    CHECK(worst <= tol, "forward layout %d dtype %d: worst error %g", layout, dtype, worst);

    s = bn_batch_norm_backward(&d, tx, tdy, tdx, tg, tm, ti, tdg, tdb);
    CHECK(s == BN_STATUS_SUCCESS, "backward status %d (%s)", s, bn_last_error_message());
    worst = 0;
    for (size_t i = 0; i < count; i++) worst = fmax(worst, tensor_error(dtype, get(tdx, dtype, i), rdx[i]));
    for (int64_t k = 0; k < c; k++) {
        worst = fmax(worst, fabs(get(tdg, pdtype, k) - rdg[k]) / (1 + fabs(rdg[k])));
        worst = fmax(worst, fabs(get(tdb, pdtype, k) - rdb[k]) / (1 + fabs(rdb[k])));
    }
    CHECK(worst <= tol, "backward layout %d dtype %d: worst error %g", layout, dtype, worst);

    free(x); free(dy); free(ry); free(rdx); free(gamma); free(rmean); free(rinv); free(rdg); free(rdb);
    free(tx); free(tdy); free(ty); free(tdx); free(tg); free(tb); free(tm); free(ti); free(tdg); free(tdb); free(trm); free(trv);
}

static void check_errors(void) {
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8], rm[2] = {0, 0}, rv[2] = {1, 1};
    bn_tensor_desc d = { BN_LAYOUT_NC, BN_DTYPE_F32, 4, 2, 1, 1 };
    for (int i = 0; i < 8; i++) y[i] = -1.0f;

    CHECK(bn_batch_norm_forward_training(NULL, x, y, NULL, NULL, NULL, NULL, 0.1, 1e-5, NULL, NULL) == BN_STATUS_NULL_POINTER, "NULL desc");
    CHECK(strstr(bn_last_error_message(), "desc") != NULL, "message names desc: '%s'", bn_last_error_message());
    CHECK(bn_batch_norm_forward_training(&d, x, y, NULL, NULL, rm, NULL, 0.1, 1e-5, NULL, NULL) == BN_STATUS_NULL_POINTER, "running_var alone");
    bn_tensor_desc bad = d; bad.layout = 7;
    CHECK(bn_batch_norm_forward_training(&bad, x, y, NULL, NULL, NULL, NULL, 0.1, 1e-5, NULL, NULL) == BN_STATUS_UNSUPPORTED, "bad layout");
    bad = d; bad.dtype = 4;
    CHECK(bn_batch_norm_forward_training(&bad, x, y, NULL, NULL, NULL, NULL, 0.1, 1e-5, NULL, NULL) == BN_STATUS_UNSUPPORTED, "unknown dtype");
    bad = d; bad.h = 2;
    CHECK(bn_batch_norm_forward_training(&bad, x, y, NULL, NULL, NULL, NULL, 0.1, 1e-5, NULL, NULL) == BN_STATUS_BAD_SHAPE, "NC with h=2");
    bad = d; bad.n = INT64_MAX / 2;
    CHECK(bn_batch_norm_forward_training(&bad, x, y, NULL, NULL, NULL, NULL, 0.1, 1e-5, NULL, NULL) == BN_STATUS_BAD_SHAPE, "overflow");
    CHECK(bn_batch_norm_forward_training(&d, x, y, NULL, NULL, rm, rv, 1.5, 1e-5, NULL, NULL) == BN_STATUS_BAD_ARGUMENT, "momentum 1.5");
    CHECK(bn_batch_norm_forward_training(&d, x, y, NULL, NULL, rm, rv, 0.1, 0.0, NULL, NULL) == BN_STATUS_BAD_ARGUMENT, "eps 0");
    CHECK(bn_batch_norm_forward_training(&d, x, y, NULL, NULL, rm, rv, NAN, 1e-5, NULL, NULL) == BN_STATUS_BAD_ARGUMENT, "momentum NaN");
    bad = d; bad.n = 1;
    CHECK(bn_batch_norm_forward_training(&bad, x, y, NULL, NULL, rm, rv, 0.1, 1e-5, NULL, NULL) == BN_STATUS_BAD_ARGUMENT, "M = 1");
    /* several things wrong: NULL_POINTER comes first, then UNSUPPORTED, then BAD_SHAPE */
    bad = d; bad.layout = 9; bad.n = 0;
    CHECK(bn_batch_norm_forward_training(&bad, x, NULL, NULL, NULL, NULL, NULL, 2.0, -1.0, NULL, NULL) == BN_STATUS_NULL_POINTER, "order: NULL first");
    CHECK(bn_batch_norm_forward_training(&bad, x, y, NULL, NULL, NULL, NULL, 2.0, -1.0, NULL, NULL) == BN_STATUS_UNSUPPORTED, "order: UNSUPPORTED second");
    bad.layout = BN_LAYOUT_NC;
    CHECK(bn_batch_norm_forward_training(&bad, x, y, NULL, NULL, NULL, NULL, 2.0, -1.0, NULL, NULL) == BN_STATUS_BAD_SHAPE, "order: BAD_SHAPE third");
    int untouched = 1;
    for (int i = 0; i < 8; i++) untouched &= y[i] == -1.0f;
    CHECK(untouched && rm[0] == 0 && rv[0] == 1, "nothing written on error");
    CHECK(strcmp(bn_status_string(BN_STATUS_SUCCESS), "success") == 0, "status string");
    CHECK(strlen(bn_status_string(12345)) > 0, "unknown status has text");
}

/* Batch Renormalization with rmax = 1, dmax = 0 is BatchNorm. */
static void check_renorm(void) {
    enum { N = 6, C = 45, COUNT = N * C };
    bn_tensor_desc d = { BN_LAYOUT_NC, BN_DTYPE_F32, N, C, 1, 1 };
    float x[COUNT], y1[COUNT], y2[COUNT], gamma[C], beta[C], rm1[C], rv1[C], rm2[C], rv2[C], r[C], dd[C];
    unsigned seed = 99u;
    for (int i = 0; i < COUNT; i++) x[i] = (float)(5.0 * urand(&seed) - 1.0);
    for (int c = 0; c < C; c++) { gamma[c] = (float)urand(&seed) + 0.5f; beta[c] = (float)urand(&seed); rm1[c] = rm2[c] = 0.2f; rv1[c] = rv2[c] = 1.5f; }
    CHECK(bn_batch_norm_forward_training(&d, x, y1, gamma, beta, rm1, rv1, 0.1, 1e-5, NULL, NULL) == BN_STATUS_SUCCESS, "bn");
    CHECK(bn_batch_renorm_forward_training(&d, x, y2, gamma, beta, rm2, rv2, 0.1, 1e-5, 1.0, 0.0, NULL, NULL, r, dd) == BN_STATUS_SUCCESS,
          "renorm: %s", bn_last_error_message());
    CHECK(memcmp(y1, y2, sizeof y1) == 0 && memcmp(rv1, rv2, sizeof rv1) == 0 && r[0] == 1.0f && dd[0] == 0.0f, "renorm(rmax=1, dmax=0) == batch norm");
    CHECK(bn_batch_renorm_forward_training(&d, x, y2, gamma, beta, rm2, rv2, 0.1, 1e-5, 0.5, 0.0, NULL, NULL, NULL, NULL) == BN_STATUS_BAD_ARGUMENT, "rmax < 1");
}

/* LayerNorm over n rows of c against a float64 reference. */
static void check_layer_norm(int n_rows, int c_len) {
    bn_tensor_desc d = { BN_LAYOUT_NC, BN_DTYPE_F32, n_rows, c_len, 1, 1 };
    size_t count = (size_t)n_rows * c_len;
    float *x = malloc(count * sizeof(float)), *y = malloc(count * sizeof(float));
    float *gamma = malloc(c_len * sizeof(float)), *beta = malloc(c_len * sizeof(float));
    float *mean = malloc(n_rows * sizeof(float)), *invstd = malloc(n_rows * sizeof(float));
    unsigned seed = 99u;
    for (size_t i = 0; i < count; i++) x[i] = (float)(5.0 * urand(&seed) - 1.0);
    for (int c = 0; c < c_len; c++) { gamma[c] = (float)urand(&seed) + 0.5f; beta[c] = (float)urand(&seed); }
    CHECK(bn_layer_norm_forward(&d, x, y, gamma, beta, 1e-5, mean, invstd) == BN_STATUS_SUCCESS, "layer norm: %s", bn_last_error_message());
    double worst = 0;
    for (int n = 0; n < n_rows; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < c_len; c++) m += x[n * c_len + c];
        m /= c_len;
        for (int c = 0; c < c_len; c++) v += (x[n * c_len + c] - m) * (x[n * c_len + c] - m);
        double inv = 1.0 / sqrt(v / c_len + 1e-5);
        for (int c = 0; c < c_len; c++) {
            double ref = gamma[c] * (x[n * c_len + c] - m) * inv + beta[c];
            worst = fmax(worst, fabs(y[n * c_len + c] - ref) / (1 + fabs(ref)));
        }
        worst = fmax(worst, fabs(mean[n] - m) / (1 + fabs(m)));
        worst = fmax(worst, fabs(invstd[n] - inv) / inv);
    }
    CHECK(worst <= 1e-5, "layer norm %d x %d worst error %g", n_rows, c_len, worst);
    free(x); free(y); free(gamma); free(beta); free(mean); free(invstd);
}

/* ---- a batch split across processes (contract §2.4) ---- */

static double worst_tensor(int dtype, const void* got, const void* ref, size_t count) {
    double worst = 0;
    for (size_t i = 0; i < count; i++) worst = fmax(worst, tensor_error(dtype, get(got, dtype, i), get(ref, dtype, i)));
    return worst;
}

static double worst_values(int pdtype, const void* got, const void* ref, size_t count) {
    double worst = 0;
    for (size_t i = 0; i < count; i++) worst = fmax(worst, fabs(get(got, pdtype, i) - get(ref, pdtype, i)) / (1 + fabs(get(ref, pdtype, i))));
    return worst;
}

/* The batch (N = 5) cut into parts of 2 and 3 samples: partial statistics, merge, forward with statistics, backward
 * partial sums and backward with sums (all K partials), against the fused calls on the whole batch within the
 * tolerances above; Batch Renormalization (rmax 1.5, dmax 0.5: r and d clipped on some channels) too. */
static void check_split(int layout, int dtype, int renorm) {
    enum { N = 5, C = 19, P = 2 * C + 1, GAMMA = 0, BETA, MEAN, INVSTD, R, D, RM, RV, DG, DB, VECTORS };
    int64_t h = layout == BN_LAYOUT_NC ? 1 : 3, w = layout == BN_LAYOUT_NC ? 1 : 2;
    bn_tensor_desc whole = { layout, dtype, N, C, h, w }, part[2] = { whole, whole };
    part[0].n = 2; part[1].n = 3;
    int pdtype = dtype == BN_DTYPE_F64 ? BN_DTYPE_F64 : BN_DTYPE_F32;
    size_t count = (size_t)(N * C * h * w), size = dtype == BN_DTYPE_F64 ? 8 : sixteen_bit(dtype) ? 2 : 4, psize = pdtype == BN_DTYPE_F64 ? 8 : 4;
    size_t first[2] = { 0, (size_t)(2 * C * h * w) * size };
    double ftol = dtype == BN_DTYPE_F64 ? 1e-12 : 1e-5, gtol = dtype == BN_DTYPE_F64 ? 1e-10 : 1e-4, eps = 1e-5, partials[2 * P];
    char *x = malloc(count * size), *dy = malloc(count * size), *fy = malloc(count * size), *fdx = malloc(count * size);
    char *sy = malloc(count * size), *sdx = malloc(count * size), *other = malloc(2 * C * psize); /* part 1's dgamma, dbeta */
    void *f[VECTORS], *s[VECTORS]; /* [fused, split] per-channel values; gamma and beta are f's */
    for (int i = 0; i < VECTORS; i++) { f[i] = malloc(C * psize); s[i] = malloc(C * psize); }
    unsigned seed = 777u + (unsigned)(layout * 8 + dtype * 2 + renorm);
    for (size_t i = 0; i < count; i++) { put(x, dtype, i, 3.0 + 2.0 * (urand(&seed) - 0.5)); put(dy, dtype, i, urand(&seed) - 0.5); }
    for (int k = 0; k < C; k++) {
        put(f[GAMMA], pdtype, k, 0.5 + urand(&seed)); put(f[BETA], pdtype, k, urand(&seed) - 0.5);
        put(f[RM], pdtype, k, 2.5 + 0.05 * k); put(f[RV], pdtype, k, 0.1 + 0.05 * k);
    }
    memcpy(s[RM], f[RM], C * psize); memcpy(s[RV], f[RV], C * psize);

    bn_status st = renorm
        ? bn_batch_renorm_forward_training(&whole, x, fy, f[GAMMA], f[BETA], f[RM], f[RV], 0.1, eps, 1.5, 0.5, f[MEAN], f[INVSTD], f[R], f[D])
        : bn_batch_norm_forward_training(&whole, x, fy, f[GAMMA], f[BETA], f[RM], f[RV], 0.1, eps, f[MEAN], f[INVSTD]);
    if (st == BN_STATUS_SUCCESS)
        st = renorm ? bn_batch_renorm_backward(&whole, x, dy, fdx, f[GAMMA], f[MEAN], f[INVSTD], f[R], f[D], f[DG], f[DB])
                    : bn_batch_norm_backward(&whole, x, dy, fdx, f[GAMMA], f[MEAN], f[INVSTD], f[DG], f[DB]);
    CHECK(st == BN_STATUS_SUCCESS, "fused layout %d dtype %d renorm %d: status %d (%s)", layout, dtype, renorm, st, bn_last_error_message());

    int ok = 1;
    for (int k = 0; k < 2; k++) ok &= bn_batch_norm_partial_statistics(&part[k], x + first[k], partials + k * P) == BN_STATUS_SUCCESS;
    ok &= partials[0] == (double)(2 * h * w) && partials[P] == (double)(3 * h * w);
    ok &= (renorm ? bn_batch_renorm_merge_statistics(dtype, C, 2, partials, s[RM], s[RV], 0.1, eps, 1.5, 0.5, s[MEAN], s[INVSTD], s[R], s[D])
                  : bn_batch_norm_merge_statistics(dtype, C, 2, partials, s[RM], s[RV], 0.1, eps, s[MEAN], s[INVSTD])) == BN_STATUS_SUCCESS;
    for (int k = 0; k < 2; k++)
        ok &= (renorm ? bn_batch_renorm_forward_with_statistics(&part[k], x + first[k], sy + first[k], f[GAMMA], f[BETA], s[MEAN], s[INVSTD], s[R], s[D])
                      : bn_batch_norm_forward_with_statistics(&part[k], x + first[k], sy + first[k], f[GAMMA], f[BETA], s[MEAN], s[INVSTD])) == BN_STATUS_SUCCESS;
    for (int k = 0; k < 2; k++)
        ok &= bn_batch_norm_backward_partial_sums(&part[k], x + first[k], dy + first[k], s[MEAN], partials + k * P) == BN_STATUS_SUCCESS;
    for (int k = 0; k < 2; k++) {
        void *dg = k ? other : s[DG], *db = k ? other + C * psize : s[DB];
        ok &= (renorm ? bn_batch_renorm_backward_with_sums(&part[k], x + first[k], dy + first[k], sdx + first[k], f[GAMMA], s[MEAN], s[INVSTD], s[R], s[D], 2, partials, dg, db)
                      : bn_batch_norm_backward_with_sums(&part[k], x + first[k], dy + first[k], sdx + first[k], f[GAMMA], s[MEAN], s[INVSTD], 2, partials, dg, db)) == BN_STATUS_SUCCESS;
    }
    CHECK(ok, "split layout %d dtype %d renorm %d: a call failed or a count is wrong (%s)", layout, dtype, renorm, bn_last_error_message());

    double worst = worst_tensor(dtype, sy, fy, count);
    for (int i = MEAN; i <= RV; i++) if (renorm || (i != R && i != D)) worst = fmax(worst, worst_values(pdtype, s[i], f[i], C));
    CHECK(worst <= ftol, "split forward layout %d dtype %d renorm %d: worst error against the fused call %g", layout, dtype, renorm, worst);
    worst = fmax(worst_tensor(dtype, sdx, fdx, count), fmax(worst_values(pdtype, s[DG], f[DG], C), worst_values(pdtype, s[DB], f[DB], C)));
    CHECK(worst <= gtol, "split backward layout %d dtype %d renorm %d: worst error against the fused call %g", layout, dtype, renorm, worst);
    CHECK(memcmp(other, s[DG], C * psize) == 0 && memcmp(other + C * psize, s[DB], C * psize) == 0, "both parts get bitwise the same dgamma, dbeta");

    for (int i = 0; i < VECTORS; i++) { free(f[i]); free(s[i]); }
    free(x); free(dy); free(fy); free(fdx); free(sy); free(sdx); free(other);
}

/* The split calls' argument checks: their order, nothing written on error, count-0 parts skipped. */
static void check_split_errors(void) {
    enum { C = 2, P = 2 * C + 1 };
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, dx[8], mean[C], invstd[C], r[C], d[C], dg[C], db[C], rm[C] = {0, 0}, rv[C] = {1, 1};
    double partials[2 * P], bad[2 * P], part[P];
    bn_tensor_desc desc = { BN_LAYOUT_NC, BN_DTYPE_F32, 4, C, 1, 1 }, odd = desc;
    for (int i = 0; i < 8; i++) dx[i] = -1.0f;
    for (int c = 0; c < C; c++) mean[c] = invstd[c] = r[c] = d[c] = dg[c] = db[c] = -1.0f;
    for (int i = 0; i < P; i++) part[i] = -1.0;
    /* channel 0 is 1, 3, 5, 7: M = 4, mean 4, M2 = 20 exactly */
    CHECK(bn_batch_norm_partial_statistics(&desc, x, partials) == BN_STATUS_SUCCESS && partials[0] == 4 && partials[1] == 4
          && partials[2] == 5 && partials[3] == 20, "partial statistics of 1..8");
    memcpy(partials + P, partials, P * sizeof(double));
    odd.layout = 7;
    CHECK(bn_batch_norm_partial_statistics(&odd, x, NULL) == BN_STATUS_NULL_POINTER, "partial statistics: NULL first");
    CHECK(bn_batch_norm_partial_statistics(&odd, x, part) == BN_STATUS_UNSUPPORTED, "partial statistics: bad layout");
    CHECK(bn_batch_norm_backward_partial_sums(&desc, x, x, NULL, part) == BN_STATUS_NULL_POINTER, "partial sums: NULL mean");
    CHECK(bn_batch_norm_merge_statistics(4, 0, 0, NULL, rm, rv, 2.0, -1.0, mean, invstd) == BN_STATUS_NULL_POINTER, "merge order: NULL first");
    CHECK(bn_batch_norm_merge_statistics(4, 0, 0, partials, rm, rv, 2.0, -1.0, mean, invstd) == BN_STATUS_UNSUPPORTED, "merge order: UNSUPPORTED second");
    CHECK(bn_batch_norm_merge_statistics(BN_DTYPE_F32, 0, 2, partials, rm, rv, 2.0, -1.0, mean, invstd) == BN_STATUS_BAD_SHAPE, "merge order: C = 0 third");
    CHECK(bn_batch_norm_merge_statistics(BN_DTYPE_F32, C, 0, partials, rm, rv, 0.1, 1e-5, mean, invstd) == BN_STATUS_BAD_SHAPE, "merge K = 0");
    CHECK(bn_batch_norm_merge_statistics(BN_DTYPE_F32, C, INT64_MAX / 16, partials, rm, rv, 0.1, 1e-5, mean, invstd) == BN_STATUS_BAD_SHAPE, "merge K·(2C+1) doubles overflow");
    double wide[6] = { 2, 0, 0, -1, 0, 0 }; /* C = 1, K·3 doubles past int64 bytes though 2·C·K is not: no count may be read */
    CHECK(bn_batch_norm_merge_statistics(BN_DTYPE_F32, 1, (INT64_MAX / 8 - 1) / 2, wide, rm, rv, 0.1, 1e-5, mean, invstd) == BN_STATUS_BAD_SHAPE,
          "merge K·(2C+1) doubles overflow, C = 1: %s", bn_last_error_message());
    CHECK(bn_batch_norm_merge_statistics(BN_DTYPE_F32, C, 2, partials, rm, NULL, 0.1, 1e-5, mean, invstd) == BN_STATUS_NULL_POINTER, "merge running_mean alone");
    CHECK(bn_batch_norm_merge_statistics(BN_DTYPE_F32, C, 2, partials, rm, rv, 0.1, 0.0, mean, invstd) == BN_STATUS_BAD_ARGUMENT, "merge eps 0");
    memcpy(bad, partials, sizeof bad);
    bad[P] = -1;
    CHECK(bn_batch_norm_merge_statistics(BN_DTYPE_F32, C, 2, bad, rm, rv, 0.1, 1e-5, mean, invstd) == BN_STATUS_BAD_ARGUMENT, "merge negative count");
    bad[P] = NAN;
    CHECK(bn_batch_norm_merge_statistics(BN_DTYPE_F32, C, 2, bad, rm, rv, 0.1, 1e-5, mean, invstd) == BN_STATUS_BAD_ARGUMENT, "merge NaN count");
    bad[P] = 0; bad[0] = 1;
    CHECK(bn_batch_norm_merge_statistics(BN_DTYPE_F32, C, 2, bad, rm, rv, 0.1, 1e-5, mean, invstd) == BN_STATUS_BAD_ARGUMENT, "merge total count 1");
    CHECK(bn_batch_renorm_merge_statistics(BN_DTYPE_F32, C, 2, partials, rm, rv, 0.1, 1e-5, 0.5, 0.0, mean, invstd, r, d) == BN_STATUS_BAD_ARGUMENT, "renorm merge rmax < 1");
    CHECK(bn_batch_renorm_merge_statistics(BN_DTYPE_F32, C, 2, partials, rm, rv, 0.1, 1e-5, 1.0, 0.0, mean, invstd, r, NULL) == BN_STATUS_NULL_POINTER, "renorm merge d NULL");
    CHECK(bn_batch_norm_backward_with_sums(&desc, x, x, dx, NULL, x, x, 0, partials, dg, db) == BN_STATUS_BAD_SHAPE, "backward with sums K = 0");
    CHECK(bn_batch_norm_backward_with_sums(NULL, x, x, dx, NULL, x, x, 0, partials, dg, db) == BN_STATUS_NULL_POINTER,
          "backward with sums: NULL desc first: %s", bn_last_error_message());
    CHECK(bn_batch_renorm_backward_with_sums(&desc, x, x, dx, NULL, x, x, x, x, 0, partials, dg, db) == BN_STATUS_BAD_SHAPE, "renorm backward with sums K = 0");
    bad[0] = 0;
    CHECK(bn_batch_norm_backward_with_sums(&desc, x, x, dx, NULL, x, x, 2, bad, dg, db) == BN_STATUS_BAD_ARGUMENT, "backward with sums: all counts 0");
    int untouched = rm[0] == 0 && rv[0] == 1 && part[0] == -1.0;
    for (int i = 0; i < 8; i++) untouched &= dx[i] == -1.0f;
    for (int c = 0; c < C; c++) untouched &= mean[c] == -1.0f && invstd[c] == -1.0f && r[c] == -1.0f && d[c] == -1.0f && dg[c] == -1.0f && db[c] == -1.0f;
    CHECK(untouched, "split calls write nothing on error");
    /* a part with count 0 (and garbage values) is skipped: one part of 1, 3, 5, 7 */
    memcpy(bad, partials, sizeof bad);
    bad[P] = 0; bad[P + 1] = NAN; bad[P + 3] = 1e300;
    CHECK(bn_batch_norm_merge_statistics(BN_DTYPE_F32, C, 2, bad, rm, rv, 0.1, 1e-5, mean, invstd) == BN_STATUS_SUCCESS && mean[0] == 4.0f
          && fabs(invstd[0] - 1 / sqrt(5 + 1e-5)) < 1e-6 && fabs(rv[0] - (0.9 + 0.1 * 20 / 3)) < 1e-6, "count-0 part skipped");
}

int main(int argc, char** argv) {
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", BN_VERSION_MAJOR, BN_VERSION_MINOR, BN_VERSION_PATCH);
    CHECK(strcmp(bn_version(), version) == 0, "bn_version() %s vs header %s", bn_version(), version);
    printf("isa: %s, threads: %d\n", bn_get_isa(), bn_get_num_threads());
    if (argc > 1) CHECK(strcmp(bn_get_isa(), argv[1]) == 0, "isa is %s, expected %s", bn_get_isa(), argv[1]);
    const char* env_threads = getenv("BNNATIVE_NUM_THREADS");
    if (env_threads) CHECK(bn_get_num_threads() == atoi(env_threads), "BNNATIVE_NUM_THREADS=%s but %d threads", env_threads, bn_get_num_threads());
    CHECK(bn_set_num_threads(3) == 3 && bn_get_num_threads() == 3, "set_num_threads(3)");
    CHECK(bn_set_num_threads(0) >= 1, "set_num_threads(0)");

    check_errors();
    int layouts[] = { BN_LAYOUT_NCHW, BN_LAYOUT_NHWC }, dtypes[] = { BN_DTYPE_F32, BN_DTYPE_F64, BN_DTYPE_F16, BN_DTYPE_BF16 };
    for (int l = 0; l < 2; l++)
        for (int t = 0; t < 4; t++) {
            check_batch_norm(layouts[l], dtypes[t], 3, 37, 5, 7);  /* 37 channels: tails for every vector width */
            check_batch_norm(layouts[l], dtypes[t], 2, 3, 1, 1);
        }
    check_batch_norm(BN_LAYOUT_NC, BN_DTYPE_F32, 19, 70, 1, 1);
    check_batch_norm(BN_LAYOUT_NC, BN_DTYPE_F16, 19, 70, 1, 1);
    check_batch_norm(BN_LAYOUT_NC, BN_DTYPE_BF16, 19, 70, 1, 1);
    check_renorm();
    /* rows of 45 end one member at a time at every width; 6 rows of 48 end in whole vectors, four rows at a time (and
     * at AVX2 and AVX-512, 44 and 52 end in a last vector): the RowGroup kernels' transposing lane sums of each image */
    check_layer_norm(6, 45);
    check_layer_norm(6, 48);
    check_layer_norm(7, 44);
    check_layer_norm(7, 52);
    check_split_errors();
    for (int l = BN_LAYOUT_NC; l <= BN_LAYOUT_NHWC; l++)  /* NC, NCHW, NHWC */
        for (int t = 0; t < 4; t++) { check_split(l, dtypes[t], 0); check_split(l, dtypes[t], 1); }

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
