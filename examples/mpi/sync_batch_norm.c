/* Synchronized Batch Normalization across MPI processes with BnNative's split ABI.
 *
 * Data-parallel training splits each batch along N across processes. Plain BatchNorm in each process would
 * normalize with the statistics of its own few samples; synchronized BatchNorm normalizes with those of the
 * whole batch, exactly as one process holding all of it would. The library cuts a training step into a local
 * reduction, a merge and a local elementwise pass, so only 2·C + 1 doubles per process cross the network,
 * once in the forward and once in the backward:
 *
 *   forward   bn_batch_norm_partial_statistics   -> MPI_Allgather -> bn_batch_norm_merge_statistics
 *                                                                 -> bn_batch_norm_forward_with_statistics
 *   backward  bn_batch_norm_backward_partial_sums -> MPI_Allgather -> bn_batch_norm_backward_with_sums
 *
 * and the same for Batch Renormalization (bn_batch_renorm_*). Every rank builds the same whole batch and works
 * on its own contiguous slice of samples; rank 0 gathers y and dx and checks everything against the fused
 * single-process calls on the whole batch, for NCHW and NHWC, float64 and float32. The exit status is 0 only
 * if every value is within tolerance and every rank holds bitwise the same statistics and gradients.
 *
 * Build and run: see README.md in this folder.
 */
#include <bnnative.h>
#include <mpi.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole batch. N = 7 does not divide evenly, so the ranks' slices differ in size. */
enum { N = 7, C = 5, H = 3, W = 4, SAMPLE = C * H * W, TOTAL = N * SAMPLE, PARTIAL = 2 * C + 1 };
static const double MOMENTUM = 0.1, EPS = 1e-5, RMAX = 3.0, DMAX = 5.0;

static int rank, ranks; /* this process, and how many there are */

/* ---- small helpers -------------------------------------------------------------------------------------- */

/* A call that fails on one rank would leave the others waiting in the next collective for ever: say why and
 * take the whole job down (mpirun then exits non-zero). */
static void check(bn_status status, const char *what) {
    if (status == BN_STATUS_SUCCESS) return;
    fprintf(stderr, "rank %d: %s failed: %s: %s\n", rank, what, bn_status_string(status), bn_last_error_message());
    MPI_Abort(MPI_COMM_WORLD, 2);
}

/* x, y, dy, dx are of the tensor's dtype, and so are the per-channel values (double for F64, float for F32):
 * these let one code path serve both. */
static size_t size_of(int dtype) { return dtype == BN_DTYPE_F64 ? sizeof(double) : sizeof(float); }
static MPI_Datatype mpi_type(int dtype) { return dtype == BN_DTYPE_F64 ? MPI_DOUBLE : MPI_FLOAT; }
static double get(const void *p, int dtype, size_t i) {
    return dtype == BN_DTYPE_F64 ? ((const double *)p)[i] : ((const float *)p)[i];
}
static void put(void *p, int dtype, size_t i, double v) {
    if (dtype == BN_DTYPE_F64) ((double *)p)[i] = v;
    else ((float *)p)[i] = (float)v;
}
static void *element(const void *p, int dtype, size_t i) { return (char *)p + i * size_of(dtype); }
static void *alloc(size_t count, size_t size) {
    void *p = calloc(count, size);
    if (p == NULL) { fprintf(stderr, "rank %d: out of memory\n", rank); MPI_Abort(MPI_COMM_WORLD, 2); }
    return p;
}

/* Samples [first, first + count) belong to rank r: the first N % ranks ranks take one more. Along N a slice
 * is contiguous in every layout, so a rank's part is a plain pointer offset and a desc with a smaller n. */
static void slice(int r, int *first, int *count) {
    *count = N / ranks + (r < N % ranks);
    *first = r * (N / ranks) + (r < N % ranks ? r : N % ranks);
}

/* Deterministic values in [-1, 1) from a hash of the element's logical index (n, c, h, w), so that every rank
 * and both layouts hold the same batch without any communication. */
static double noise(uint32_t seed, uint32_t i) {
    uint32_t z = i * 0x9E3779B9u + seed * 0x85EBCA6Bu;
    z ^= z >> 16; z *= 0x7FEB352Du; z ^= z >> 15; z *= 0x846CA68Bu; z ^= z >> 16;
    return z / 2147483648.0 - 1.0;
}

static size_t offset(int layout, int n, int c, int h, int w) {
    return layout == BN_LAYOUT_NHWC ? (((size_t)n * H + h) * W + w) * C + c : (((size_t)n * C + c) * H + h) * W + w;
}

/* ---- one training step ---------------------------------------------------------------------------------- */

/* What a step produces (r and d: Batch Renormalization only). */
typedef struct step {
    void *y, *dx;                         /* the whole batch's, N·C·H·W values (gathered on rank 0) */
    void *mean, *invstd, *r, *d;          /* C values each, as saved for the backward */
    void *running_mean, *running_var;     /* C values, updated by the step */
    void *dgamma, *dbeta;                 /* C values: the whole batch's parameter gradients */
} step;

/* Batch Renormalization's running statistics sit away from the batch's so that r and d are not trivial:
 * some channels are clipped (r at 1/3 or 3, d at ±5), others not. */
static const double BRN_MEAN_SHIFT[C] = { 2.0, -4.0, 0.0, 1.0, 12.0 };
static const double BRN_RUNNING_VAR[C] = { 4.0, 0.25, 1.0, 0.25, 4.0 };

static void step_init(step *s, int dtype, int renorm) {
    void **values[] = { &s->mean, &s->invstd, &s->r, &s->d, &s->running_mean, &s->running_var, &s->dgamma, &s->dbeta };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) *values[i] = alloc(C, size_of(dtype));
    s->y = alloc(TOTAL, size_of(dtype));
    s->dx = alloc(TOTAL, size_of(dtype));
    for (int c = 0; c < C; c++) {
        put(s->running_mean, dtype, c, renorm ? 10.0 * c - 7.0 - BRN_MEAN_SHIFT[c] : 0.5 * c);
        put(s->running_var, dtype, c, renorm ? BRN_RUNNING_VAR[c] : 1.0 + 0.5 * c);
    }
}

static void step_free(step *s) {
    void *values[] = { s->y, s->dx, s->mean, s->invstd, s->r, s->d, s->running_mean, s->running_var, s->dgamma, s->dbeta };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) free(values[i]);
}

/* The synchronized step, on every rank: only this rank's slice of x and dy is read. */
static void distributed_step(const bn_tensor_desc *whole, int renorm, const void *x, const void *dy,
                             const void *gamma, const void *beta, step *s) {
    const int dtype = whole->dtype;
    int first, count;
    slice(rank, &first, &count);
    bn_tensor_desc part = *whole;
    part.n = count;
    const void *my_x = element(x, dtype, (size_t)first * SAMPLE), *my_dy = element(dy, dtype, (size_t)first * SAMPLE);
    void *my_y = alloc((size_t)count * SAMPLE, size_of(dtype)), *my_dx = alloc((size_t)count * SAMPLE, size_of(dtype));
    double partial[PARTIAL];
    double *partials = alloc((size_t)ranks * PARTIAL, sizeof(double));

    /* Forward. Gather the partials (count, mean, M2) rather than MPI_Allreduce sums of x and x²: Chan's merge
     * is not a plain sum, and Σx² − (Σx)²/M loses the variance to cancellation when the mean is large. With
     * the partials of all ranks in rank order, every rank merges the same numbers in the same order and gets
     * bitwise the same mean, invstd and running statistics, whatever reduction algorithm the MPI uses. */
    check(bn_batch_norm_partial_statistics(&part, my_x, partial), "bn_batch_norm_partial_statistics");
    MPI_Allgather(partial, PARTIAL, MPI_DOUBLE, partials, PARTIAL, MPI_DOUBLE, MPI_COMM_WORLD);
    if (renorm) {
        check(bn_batch_renorm_merge_statistics(dtype, C, ranks, partials, s->running_mean, s->running_var, MOMENTUM,
                                               EPS, RMAX, DMAX, s->mean, s->invstd, s->r, s->d),
              "bn_batch_renorm_merge_statistics");
        check(bn_batch_renorm_forward_with_statistics(&part, my_x, my_y, gamma, beta, s->mean, s->invstd, s->r, s->d),
              "bn_batch_renorm_forward_with_statistics");
    } else {
        check(bn_batch_norm_merge_statistics(dtype, C, ranks, partials, s->running_mean, s->running_var, MOMENTUM,
                                             EPS, s->mean, s->invstd),
              "bn_batch_norm_merge_statistics");
        check(bn_batch_norm_forward_with_statistics(&part, my_x, my_y, gamma, beta, s->mean, s->invstd),
              "bn_batch_norm_forward_with_statistics");
    }

    /* Backward: dx of every element depends on Σdy and Σdy·x̂ over the whole batch. These are plain sums, but
     * gathering them and letting the library add them in rank order again makes every rank's dgamma and dbeta
     * bitwise the same. Σdy·(x − mean) uses the merged mean, so the same partial serves both variants. */
    check(bn_batch_norm_backward_partial_sums(&part, my_x, my_dy, s->mean, partial), "bn_batch_norm_backward_partial_sums");
    MPI_Allgather(partial, PARTIAL, MPI_DOUBLE, partials, PARTIAL, MPI_DOUBLE, MPI_COMM_WORLD);
    if (renorm)
        check(bn_batch_renorm_backward_with_sums(&part, my_x, my_dy, my_dx, gamma, s->mean, s->invstd, s->r, s->d,
                                                 ranks, partials, s->dgamma, s->dbeta),
              "bn_batch_renorm_backward_with_sums");
    else
        check(bn_batch_norm_backward_with_sums(&part, my_x, my_dy, my_dx, gamma, s->mean, s->invstd, ranks, partials,
                                               s->dgamma, s->dbeta),
              "bn_batch_norm_backward_with_sums");

    /* A trainer would stop here; for the check, rank 0 collects the slices of y and dx into whole tensors. */
    int *counts = alloc((size_t)ranks, sizeof(int)), *displs = alloc((size_t)ranks, sizeof(int));
    for (int r = 0; r < ranks; r++) {
        slice(r, &displs[r], &counts[r]);
        counts[r] *= SAMPLE;
        displs[r] *= SAMPLE;
    }
    MPI_Gatherv(my_y, count * SAMPLE, mpi_type(dtype), s->y, counts, displs, mpi_type(dtype), 0, MPI_COMM_WORLD);
    MPI_Gatherv(my_dx, count * SAMPLE, mpi_type(dtype), s->dx, counts, displs, mpi_type(dtype), 0, MPI_COMM_WORLD);
    free(counts); free(displs); free(partials); free(my_y); free(my_dx);
}

/* The reference: the fused single-process calls on the whole batch (rank 0 only). */
static void fused_step(const bn_tensor_desc *whole, int renorm, const void *x, const void *dy, const void *gamma,
                       const void *beta, step *s) {
    if (renorm) {
        check(bn_batch_renorm_forward_training(whole, x, s->y, gamma, beta, s->running_mean, s->running_var, MOMENTUM,
                                               EPS, RMAX, DMAX, s->mean, s->invstd, s->r, s->d),
              "bn_batch_renorm_forward_training");
        check(bn_batch_renorm_backward(whole, x, dy, s->dx, gamma, s->mean, s->invstd, s->r, s->d, s->dgamma, s->dbeta),
              "bn_batch_renorm_backward");
    } else {
        check(bn_batch_norm_forward_training(whole, x, s->y, gamma, beta, s->running_mean, s->running_var, MOMENTUM,
                                             EPS, s->mean, s->invstd),
              "bn_batch_norm_forward_training");
        check(bn_batch_norm_backward(whole, x, dy, s->dx, gamma, s->mean, s->invstd, s->dgamma, s->dbeta),
              "bn_batch_norm_backward");
    }
}

/* ---- checking ------------------------------------------------------------------------------------------- */

/* The outputs compared, in the table's order; r and d only for Batch Renormalization. */
enum { OUT_Y, OUT_MEAN, OUT_INVSTD, OUT_R, OUT_D, OUT_RUNNING_MEAN, OUT_RUNNING_VAR, OUT_DX, OUT_DGAMMA, OUT_DBETA, OUTPUTS };
static const char *const OUTPUT_NAME[OUTPUTS] = { "y", "save_mean", "save_invstd", "r", "d", "running_mean",
                                                  "running_var", "dx", "dgamma", "dbeta" };
enum { CASES = 4 };              /* (F64, F32) x (NCHW, NHWC) */
static const char *const CASE_NAME[CASES] = { "NCHW f64", "NHWC f64", "NCHW f32", "NHWC f32" };
static double error[2][OUTPUTS][CASES];   /* [renorm][output][case]: max |got − ref|/(1 + |ref|) */
static int differ[2][OUTPUTS];            /* a rank held other bits than rank 0 (any case) */

static void **output(step *s, int o) {
    void **p[OUTPUTS] = { &s->y, &s->mean, &s->invstd, &s->r, &s->d, &s->running_mean, &s->running_var, &s->dx,
                          &s->dgamma, &s->dbeta };
    return p[o];
}
static int is_gradient(int o) { return o == OUT_DX || o == OUT_DGAMMA || o == OUT_DBETA; }
static int per_channel(int o) { return o != OUT_Y && o != OUT_DX; }
static int shown(int renorm, int o) { return renorm || (o != OUT_R && o != OUT_D); }
static double tolerance(int dtype, int o) {
    if (dtype == BN_DTYPE_F64) return is_gradient(o) ? 1e-10 : 1e-12;
    return is_gradient(o) ? 1e-4 : 1e-5;
}

/* The largest |got − ref|/(1 + |ref|); a NaN anywhere makes it NaN, which fails every tolerance. */
static double max_error(const void *got, const void *ref, size_t count, int dtype) {
    double worst = 0.0;
    for (size_t i = 0; i < count; i++) {
        double ref_i = get(ref, dtype, i), e = fabs(get(got, dtype, i) - ref_i) / (1.0 + fabs(ref_i));
        if (e > worst || isnan(e)) worst = e;
        if (isnan(worst)) break;
    }
    return worst;
}

/* Whether every rank holds the same bytes as rank 0 (the answer is valid on rank 0; all ranks must call). */
static int same_on_all_ranks(const void *p, int bytes) {
    unsigned char *all = rank == 0 ? alloc((size_t)ranks, (size_t)bytes) : NULL;
    MPI_Gather(p, bytes, MPI_BYTE, all, bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    int same = 1;
    if (rank == 0)
        for (int r = 1; r < ranks; r++) same &= memcmp(all + (size_t)r * bytes, p, (size_t)bytes) == 0;
    free(all);
    return same;
}

static void run_case(int layout, int dtype, int column) {
    bn_tensor_desc whole = { layout, dtype, N, C, H, W };
    void *x = alloc(TOTAL, size_of(dtype)), *dy = alloc(TOTAL, size_of(dtype));
    void *gamma = alloc(C, size_of(dtype)), *beta = alloc(C, size_of(dtype));
    /* Per-channel offsets (−7 .. 33) and spreads (0.5 .. 4.5): the means are far from 0 and differ per channel,
     * and dy has a per-channel bias so that dbeta is not near 0. */
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    uint32_t logical = (uint32_t)(((n * C + c) * H + h) * W + w);
                    size_t at = offset(layout, n, c, h, w);
                    put(x, dtype, at, (10.0 * c - 7.0) + (0.5 + c) * noise(1, logical));
                    put(dy, dtype, at, 0.3 * noise(2, logical) + 0.05 * c);
                }
    for (int c = 0; c < C; c++) {
        put(gamma, dtype, c, 1.0 + 0.25 * c);
        put(beta, dtype, c, 0.1 * c - 0.2);
    }

    for (int renorm = 0; renorm < 2; renorm++) {
        step got, ref;
        step_init(&got, dtype, renorm);
        step_init(&ref, dtype, renorm);
        distributed_step(&whole, renorm, x, dy, gamma, beta, &got);
        for (int o = 0; o < OUTPUTS; o++)
            if (shown(renorm, o) && per_channel(o) && !same_on_all_ranks(*output(&got, o), C * (int)size_of(dtype)))
                differ[renorm][o] = 1;
        if (rank == 0) {
            fused_step(&whole, renorm, x, dy, gamma, beta, &ref);
            for (int o = 0; o < OUTPUTS; o++)
                if (shown(renorm, o))
                    error[renorm][o][column] = max_error(*output(&got, o), *output(&ref, o), per_channel(o) ? C : TOTAL, dtype);
            if (renorm && column == 0) {
                printf("Batch Renormalization r:");
                for (int c = 0; c < C; c++) printf(" %7.4f", get(got.r, dtype, c));
                printf("   d:");
                for (int c = 0; c < C; c++) printf(" %7.4f", get(got.d, dtype, c));
                printf("   (clipped to [1/%g, %g] and [-%g, %g])\n", RMAX, RMAX, DMAX, DMAX);
            }
        }
        step_free(&got);
        step_free(&ref);
    }
    free(x); free(dy); free(gamma); free(beta);
}

/* Prints the table on rank 0; returns how many entries failed. */
static int report(void) {
    int failures = 0;
    printf("\nmax |sync - fused| / (1 + |fused|); tolerance f64: 1e-12 forward, 1e-10 gradients; f32: 1e-5, 1e-4\n");
    printf("%-24s", "");
    for (int k = 0; k < CASES; k++) printf("%11s", CASE_NAME[k]);
    printf("   %s\n", "ranks bitwise");
    for (int renorm = 0; renorm < 2; renorm++)
        for (int o = 0; o < OUTPUTS; o++) {
            if (!shown(renorm, o)) continue;
            printf("%-10s %-13s", o == 0 ? (renorm ? "renorm" : "batch norm") : "", OUTPUT_NAME[o]);
            for (int k = 0; k < CASES; k++) {
                double e = error[renorm][o][k];
                int ok = e <= tolerance(k < 2 ? BN_DTYPE_F64 : BN_DTYPE_F32, o);
                failures += !ok;
                printf("%10.1e%c", e, ok ? ' ' : '*');
            }
            failures += differ[renorm][o];
            printf("   %s\n", !per_channel(o) ? "-" : differ[renorm][o] ? "DIFFER*" : "same");
        }
    return failures;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (ranks > N) {
        /* A rank without samples has no tensor to describe (n = 0 is a bad shape); keep the example simple. */
        if (rank == 0) fprintf(stderr, "this example splits N = %d samples: run it on at most %d ranks\n", N, N);
        MPI_Finalize();
        return 1;
    }
    /* MPI usually runs one process per core; the library's default of one thread per processor in every
     * process would oversubscribe the cores. BNNATIVE_NUM_THREADS still wins when set. */
    if (getenv("BNNATIVE_NUM_THREADS") == NULL) bn_set_num_threads(1);

    if (rank == 0) {
        printf("BnNative %s (%s kernels): batch N=%d C=%d H=%d W=%d over %d ranks, samples per rank:", bn_version(),
               bn_get_isa(), N, C, H, W, ranks);
        for (int r = 0; r < ranks; r++) {
            int first, count;
            slice(r, &first, &count);
            printf(" %d", count);
        }
        printf("\n");
    }
    static const int dtypes[2] = { BN_DTYPE_F64, BN_DTYPE_F32 }, layouts[2] = { BN_LAYOUT_NCHW, BN_LAYOUT_NHWC };
    for (int t = 0; t < 2; t++)
        for (int l = 0; l < 2; l++) run_case(layouts[l], dtypes[t], 2 * t + l);

    int failures = 0;
    if (rank == 0) {
        failures = report();
        if (failures == 0) printf("sync batch norm over %d ranks: OK\n", ranks);
        else printf("sync batch norm over %d ranks: FAILED (%d entries marked *)\n", ranks, failures);
    }
    /* Every rank exits with the verdict, so mpirun's status is the same whichever rank it reports. */
    MPI_Bcast(&failures, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return failures == 0 ? 0 : 1;
}
