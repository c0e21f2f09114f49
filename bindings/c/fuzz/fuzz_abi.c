/* libFuzzer target over the whole C ABI (SPEC §2–§4). Each input is decoded into one call: the operation,
 * a descriptor (small legal shapes, or hostile ones: dimensions < 1, NC with h or w != 1, sizes that
 * overflow), the scalar parameters, which pointers are NULL, in-place choices, byte offsets that break the
 * element alignment, and the values (a palette per call that mixes ordinary numbers with zeros, huge
 * values, subnormals, NaN and Inf; a palette of one value makes constant channels). Every buffer is sized
 * exactly and placed against a PROT_NONE guard page (after it, or before it), with canary bytes on its
 * other side. After the call it checks what the SPEC promises:
 *   - the status is the one the SPEC's order of checks gives (NULL_POINTER, UNSUPPORTED, BAD_SHAPE,
 *     BAD_ARGUMENT), and never INTERNAL;
 *   - a call that fails has written nothing (every output and running statistic as before);
 *   - a call that succeeds wrote nothing outside its buffers, and every output of a group (channel or
 *     position) whose inputs are finite and whose float64 statistics are finite is within SPEC §4 of a
 *     long-double reference wherever the exact result is representable; a constant channel (position) gives
 *     y = beta exactly.
 * The split path (contract §2.4) too: each of its entry points alone (hostile C, K, counts, NULLs and dtypes as
 * above; valid partial statistics and partial sums against long double, merges against a long-double merge of the
 * partials given, forwards and backwards with given statistics or sums as the fused ones), and a whole batch cut into
 * two parts through all of them, judged as the fused training forward and backward on the whole batch are (with the
 * float64 range of §2.4 exempt).
 * A broken invariant prints what differed and traps, so libFuzzer keeps the input.
 * Build and run: tools/fuzz.sh SECONDS (the README's test command runs it for about a minute). */
#define _GNU_SOURCE
#include "bnnative.h"
#include "../tests/sixteen.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef long double real;

/* ---- the input ---------------------------------------------------------------------------------- */

typedef struct { const uint8_t* p; size_t n; } input;

static uint8_t take8(input* in) { if (!in->n) return 0; in->n--; return *in->p++; }
static uint64_t take64(input* in) { uint64_t v = 0; for (int i = 0; i < 8; i++) v = v << 8 | take8(in); return v; }

/* ---- element types -------------------------------------------------------------------------------- */

static size_t element_size(int dtype) { return dtype == BN_DTYPE_F64 ? 8 : dtype == BN_DTYPE_F32 ? 4 : 2; }
static size_t parameter_size(int dtype) { return dtype == BN_DTYPE_F64 ? 8 : 4; }

static real get(const void* p, int dtype, size_t i) {
    switch (dtype) {
    case BN_DTYPE_F64: { double v; memcpy(&v, (const char*)p + 8 * i, 8); return v; }
    case BN_DTYPE_F32: { float v; memcpy(&v, (const char*)p + 4 * i, 4); return v; }
    case BN_DTYPE_F16: { uint16_t v; memcpy(&v, (const char*)p + 2 * i, 2); return half_to_float(v); }
    default: { uint16_t v; memcpy(&v, (const char*)p + 2 * i, 2); return bf16_to_float(v); }
    }
}

static void put(void* p, int dtype, size_t i, double value) {
    switch (dtype) {
    case BN_DTYPE_F64: memcpy((char*)p + 8 * i, &value, 8); break;
    case BN_DTYPE_F32: { float v = (float)value; memcpy((char*)p + 4 * i, &v, 4); break; }
    case BN_DTYPE_F16: { uint16_t v = float_to_half((float)value); memcpy((char*)p + 2 * i, &v, 2); break; }
    default: { uint16_t v = float_to_bf16((float)value); memcpy((char*)p + 2 * i, &v, 2); break; }
    }
}

static double largest(int dtype) {
    return dtype == BN_DTYPE_F64 ? DBL_MAX : dtype == BN_DTYPE_F32 ? FLT_MAX : dtype == BN_DTYPE_F16 ? 65504.0 : 0x1.FEp127;
}
static double smallest_subnormal(int dtype) {
    return dtype == BN_DTYPE_F64 ? 0x1p-1074 : dtype == BN_DTYPE_F32 ? 0x1p-149 : dtype == BN_DTYPE_F16 ? 0x1p-24 : 0x1p-133;
}
static double smallest_normal(int dtype) {
    return dtype == BN_DTYPE_F64 ? DBL_MIN : dtype == BN_DTYPE_F16 ? 0x1p-14 : FLT_MIN;
}
static int mantissa_bits(int dtype) { return dtype == BN_DTYPE_F64 ? 53 : dtype == BN_DTYPE_F32 ? 24 : dtype == BN_DTYPE_F16 ? 11 : 8; }

/* One value as the fuzzer picks it: ordinary numbers on a coarse grid (ties and repeats happen), the ends of
 * the range, subnormals, zeros, and — when allowed — NaN and Inf. */
static double take_value(input* in, int dtype, int allow_nonfinite) {
    uint8_t kind = take8(in), k = take8(in);
    double sign = k & 1 ? -1.0 : 1.0, max = largest(dtype);
    switch (kind % 14) {
    case 0: case 1: case 2: case 3: return ((int)k - 128) / 16.0;
    case 4: return sign * (k >> 1) * 1000.0 + 1e4;
    case 5: return sign * max * ((k >> 1) + 1) / 128.0;
    case 6: return sign * max;
    case 7: return sign * smallest_subnormal(dtype) * ((k >> 1) + 1);
    case 8: return sign * smallest_normal(dtype) * (1 + (k >> 1) / 128.0);
    case 9: return sign * 0.0;
    case 10: return sign * pow(10.0, (k >> 1) % (dtype == BN_DTYPE_F64 ? 600 : 76) - (dtype == BN_DTYPE_F64 ? 300 : 38));
    case 11: { uint64_t b = take64(in); double d; memcpy(&d, &b, 8); return isfinite(d) || allow_nonfinite ? d : 1.5; }
    case 12: return allow_nonfinite ? NAN : 2.25;
    default: return allow_nonfinite ? sign * INFINITY : -0.75;
    }
}

/* ---- buffers against guard pages ------------------------------------------------------------------- */

enum { SLOT_X, SLOT_Y, SLOT_DY, SLOT_DX, SLOT_GAMMA, SLOT_BETA, SLOT_RM, SLOT_RV, SLOT_MEAN, SLOT_INVSTD, SLOT_R, SLOT_D,
       SLOT_DGAMMA, SLOT_DBETA, SLOT_PARTIALS, SLOTS };
static const char* slot_names[SLOTS] = { "x", "y", "dy", "dx", "gamma", "beta", "running_mean", "running_var", "save_mean",
                                         "save_invstd", "save_r", "save_d", "dgamma", "dbeta", "partials" };

enum { REGION = 1 << 17, CANARY = 256 };
static const uint8_t canary_byte = 0xA5;

typedef struct { uint8_t* start; uint8_t* end; uint8_t* data; size_t bytes; } slot;
static slot slots[SLOTS];
static long page;

static void map_slots(void) {
    page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < SLOTS; i++) {
        uint8_t* base = mmap(NULL, REGION + 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) abort();
        mprotect(base, (size_t)page, PROT_NONE);
        mprotect(base + page + REGION, (size_t)page, PROT_NONE);
        slots[i].start = base + page;
        slots[i].end = base + page + REGION;
    }
}

/* Places a buffer of `bytes` in its slot: flush against the guard after it (or before it), shifted by
 * `misalign` bytes, with canaries around it. */
static void* place(int i, size_t bytes, int before_guard, size_t misalign) {
    slot* s = &slots[i];
    s->bytes = bytes;
    s->data = before_guard ? s->start + misalign : s->end - bytes - misalign;
    uint8_t* lo = s->data - CANARY > s->start ? s->data - CANARY : s->start;
    uint8_t* hi = s->data + bytes + CANARY < s->end ? s->data + bytes + CANARY : s->end;
    memset(lo, canary_byte, (size_t)(hi - lo));
    return s->data;
}

static int canaries_intact(int i) {
    slot* s = &slots[i];
    uint8_t* lo = s->data - CANARY > s->start ? s->data - CANARY : s->start;
    uint8_t* hi = s->data + s->bytes + CANARY < s->end ? s->data + s->bytes + CANARY : s->end;
    for (uint8_t* p = lo; p < s->data; p++) if (*p != canary_byte) return 0;
    for (uint8_t* p = s->data + s->bytes; p < hi; p++) if (*p != canary_byte) return 0;
    return 1;
}

/* ---- the call ---------------------------------------------------------------------------------------- */

/* The fused operations, then the split ones (contract §2.4): each entry point alone, and a whole batch cut into two
 * parts through all of them (OP_SPLIT, OP_BRN_SPLIT), judged as the fused training forward and backward. */
enum { OP_BN_TRAIN, OP_BN_INFERENCE, OP_BN_BACKWARD, OP_BN_FROZEN, OP_BRN_TRAIN, OP_BRN_BACKWARD, OP_LN_FORWARD, OP_LN_BACKWARD,
       OP_PARTIAL_STATISTICS, OP_MERGE, OP_BRN_MERGE, OP_FORWARD_WITH, OP_BRN_FORWARD_WITH, OP_PARTIAL_SUMS, OP_BACKWARD_WITH,
       OP_BRN_BACKWARD_WITH, OP_SPLIT, OP_BRN_SPLIT, OPS, FUSED_OPS = OP_PARTIAL_STATISTICS };
static const char* op_names[OPS] = { "bn_batch_norm_forward_training", "bn_batch_norm_forward_inference", "bn_batch_norm_backward",
                                     "bn_batch_norm_backward_inference", "bn_batch_renorm_forward_training", "bn_batch_renorm_backward",
                                     "bn_layer_norm_forward", "bn_layer_norm_backward", "bn_batch_norm_partial_statistics",
                                     "bn_batch_norm_merge_statistics", "bn_batch_renorm_merge_statistics",
                                     "bn_batch_norm_forward_with_statistics", "bn_batch_renorm_forward_with_statistics",
                                     "bn_batch_norm_backward_partial_sums", "bn_batch_norm_backward_with_sums",
                                     "bn_batch_renorm_backward_with_sums", "split batch norm (2 parts)", "split batch renorm (2 parts)" };

/* Which pointers each operation reads (required: NULL gives NULL_POINTER) and may take (optional). merge: takes a
 * dtype and C, no desc; parts: takes K partials; pipeline: OP_SPLIT or OP_BRN_SPLIT. */
typedef struct { unsigned required, optional, written; int eps, momentum, renorm, training, layer_norm, backward, merge, parts, pipeline; } signature;
#define B(s) (1u << (s))
#define PARTIALS B(SLOT_PARTIALS)
#define STATISTICS (B(SLOT_MEAN) | B(SLOT_INVSTD))
#define GRADIENTS (B(SLOT_DX) | B(SLOT_DGAMMA) | B(SLOT_DBETA))
static const signature signatures[OPS] = {
    [OP_BN_TRAIN] = { B(SLOT_X) | B(SLOT_Y), B(SLOT_GAMMA) | B(SLOT_BETA) | B(SLOT_RM) | B(SLOT_RV) | B(SLOT_MEAN) | B(SLOT_INVSTD),
                      B(SLOT_Y) | B(SLOT_RM) | B(SLOT_RV) | B(SLOT_MEAN) | B(SLOT_INVSTD), 1, 1, 0, 1, 0, 0, 0, 0, 0 },
    [OP_BN_INFERENCE] = { B(SLOT_X) | B(SLOT_Y) | B(SLOT_RM) | B(SLOT_RV), B(SLOT_GAMMA) | B(SLOT_BETA), B(SLOT_Y), 1, 0, 0, 0, 0, 0, 0, 0, 0 },
    [OP_BN_BACKWARD] = { B(SLOT_X) | B(SLOT_DY) | B(SLOT_MEAN) | B(SLOT_INVSTD), B(SLOT_DX) | B(SLOT_GAMMA) | B(SLOT_DGAMMA) | B(SLOT_DBETA),
                         B(SLOT_DX) | B(SLOT_DGAMMA) | B(SLOT_DBETA), 0, 0, 0, 0, 0, 1, 0, 0, 0 },
    [OP_BN_FROZEN] = { B(SLOT_X) | B(SLOT_DY) | B(SLOT_RM) | B(SLOT_RV), B(SLOT_DX) | B(SLOT_GAMMA) | B(SLOT_DGAMMA) | B(SLOT_DBETA),
                       B(SLOT_DX) | B(SLOT_DGAMMA) | B(SLOT_DBETA), 1, 0, 0, 0, 0, 1, 0, 0, 0 },
    [OP_BRN_TRAIN] = { B(SLOT_X) | B(SLOT_Y) | B(SLOT_RM) | B(SLOT_RV),
                       B(SLOT_GAMMA) | B(SLOT_BETA) | B(SLOT_MEAN) | B(SLOT_INVSTD) | B(SLOT_R) | B(SLOT_D),
                       B(SLOT_Y) | B(SLOT_RM) | B(SLOT_RV) | B(SLOT_MEAN) | B(SLOT_INVSTD) | B(SLOT_R) | B(SLOT_D), 1, 1, 1, 1, 0, 0, 0, 0, 0 },
    [OP_BRN_BACKWARD] = { B(SLOT_X) | B(SLOT_DY) | B(SLOT_MEAN) | B(SLOT_INVSTD) | B(SLOT_R) | B(SLOT_D),
                          B(SLOT_DX) | B(SLOT_GAMMA) | B(SLOT_DGAMMA) | B(SLOT_DBETA), B(SLOT_DX) | B(SLOT_DGAMMA) | B(SLOT_DBETA), 0, 0, 0, 0, 0, 1, 0, 0, 0 },
    [OP_LN_FORWARD] = { B(SLOT_X) | B(SLOT_Y), B(SLOT_GAMMA) | B(SLOT_BETA) | B(SLOT_MEAN) | B(SLOT_INVSTD),
                        B(SLOT_Y) | B(SLOT_MEAN) | B(SLOT_INVSTD), 1, 0, 0, 0, 1, 0, 0, 0, 0 },
    [OP_LN_BACKWARD] = { B(SLOT_X) | B(SLOT_DY) | B(SLOT_MEAN) | B(SLOT_INVSTD), B(SLOT_DX) | B(SLOT_GAMMA) | B(SLOT_DGAMMA) | B(SLOT_DBETA),
                         B(SLOT_DX) | B(SLOT_DGAMMA) | B(SLOT_DBETA), 0, 0, 0, 0, 1, 1, 0, 0, 0 },
    [OP_PARTIAL_STATISTICS] = { B(SLOT_X) | PARTIALS, 0, PARTIALS, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    [OP_MERGE] = { PARTIALS | STATISTICS, B(SLOT_RM) | B(SLOT_RV), B(SLOT_RM) | B(SLOT_RV) | STATISTICS, 1, 1, 0, 0, 0, 0, 1, 1, 0 },
    [OP_BRN_MERGE] = { PARTIALS | STATISTICS | B(SLOT_RM) | B(SLOT_RV) | B(SLOT_R) | B(SLOT_D), 0,
                       B(SLOT_RM) | B(SLOT_RV) | STATISTICS | B(SLOT_R) | B(SLOT_D), 1, 1, 1, 0, 0, 0, 1, 1, 0 },
    [OP_FORWARD_WITH] = { B(SLOT_X) | B(SLOT_Y) | STATISTICS, B(SLOT_GAMMA) | B(SLOT_BETA), B(SLOT_Y), 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    [OP_BRN_FORWARD_WITH] = { B(SLOT_X) | B(SLOT_Y) | STATISTICS | B(SLOT_R) | B(SLOT_D), B(SLOT_GAMMA) | B(SLOT_BETA), B(SLOT_Y),
                              0, 0, 0, 0, 0, 0, 0, 0, 0 },
    [OP_PARTIAL_SUMS] = { B(SLOT_X) | B(SLOT_DY) | B(SLOT_MEAN) | PARTIALS, 0, PARTIALS, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
    [OP_BACKWARD_WITH] = { B(SLOT_X) | B(SLOT_DY) | STATISTICS | PARTIALS, GRADIENTS | B(SLOT_GAMMA), GRADIENTS, 0, 0, 0, 0, 0, 1, 0, 1, 0 },
    [OP_BRN_BACKWARD_WITH] = { B(SLOT_X) | B(SLOT_DY) | STATISTICS | B(SLOT_R) | B(SLOT_D) | PARTIALS, GRADIENTS | B(SLOT_GAMMA), GRADIENTS,
                               0, 0, 0, 0, 0, 1, 0, 1, 0 },
    [OP_SPLIT] = { B(SLOT_X) | B(SLOT_Y) | B(SLOT_DY) | B(SLOT_DX) | STATISTICS | PARTIALS,
                   B(SLOT_GAMMA) | B(SLOT_BETA) | B(SLOT_RM) | B(SLOT_RV) | B(SLOT_DGAMMA) | B(SLOT_DBETA),
                   B(SLOT_Y) | GRADIENTS | STATISTICS | B(SLOT_RM) | B(SLOT_RV) | PARTIALS, 1, 1, 0, 1, 0, 0, 0, 0, 1 },
    [OP_BRN_SPLIT] = { B(SLOT_X) | B(SLOT_Y) | B(SLOT_DY) | B(SLOT_DX) | STATISTICS | B(SLOT_R) | B(SLOT_D) | B(SLOT_RM) | B(SLOT_RV) | PARTIALS,
                       B(SLOT_GAMMA) | B(SLOT_BETA) | B(SLOT_DGAMMA) | B(SLOT_DBETA),
                       B(SLOT_Y) | GRADIENTS | STATISTICS | B(SLOT_R) | B(SLOT_D) | B(SLOT_RM) | B(SLOT_RV) | PARTIALS, 1, 1, 1, 1, 0, 0, 0, 0, 1 },
};

static int renorm_backward(int op) { return op == OP_BRN_BACKWARD || op == OP_BRN_BACKWARD_WITH; }
static int given_statistics(int op) {
    return op == OP_BN_BACKWARD || op == OP_BRN_BACKWARD || op == OP_BACKWARD_WITH || op == OP_BRN_BACKWARD_WITH
        || op == OP_FORWARD_WITH || op == OP_BRN_FORWARD_WITH;
}

typedef struct {
    int op;
    bn_tensor_desc desc;
    int desc_null, legal_shape;
    void* p[SLOTS];
    int in_place;
    int consistent_statistics; /* a training backward given the statistics of its x, as a forward saves them */
    double eps, momentum, rmax, dmax;
    int64_t parts;             /* K of the merges and the backwards with sums */
    int64_t split_at;          /* OP_SPLIT: samples in the first part */
    int zero_part;             /* OP_SPLIT: a count-0 partial (its values NaN) between the two in the merge */
    int split;                 /* judged with the split path's float64 range (contract §2.4 "Range") */
} call;

static bn_status run_split(const call* k);

static bn_status invoke(const call* k) {
    const bn_tensor_desc* d = k->desc_null ? NULL : &k->desc;
    void* const* p = k->p;
    switch (k->op) {
    case OP_BN_TRAIN: return bn_batch_norm_forward_training(d, p[SLOT_X], p[SLOT_Y], p[SLOT_GAMMA], p[SLOT_BETA], p[SLOT_RM], p[SLOT_RV],
                                                            k->momentum, k->eps, p[SLOT_MEAN], p[SLOT_INVSTD]);
    case OP_BN_INFERENCE: return bn_batch_norm_forward_inference(d, p[SLOT_X], p[SLOT_Y], p[SLOT_GAMMA], p[SLOT_BETA], p[SLOT_RM], p[SLOT_RV], k->eps);
    case OP_BN_BACKWARD: return bn_batch_norm_backward(d, p[SLOT_X], p[SLOT_DY], p[SLOT_DX], p[SLOT_GAMMA], p[SLOT_MEAN], p[SLOT_INVSTD],
                                                       p[SLOT_DGAMMA], p[SLOT_DBETA]);
    case OP_BN_FROZEN: return bn_batch_norm_backward_inference(d, p[SLOT_X], p[SLOT_DY], p[SLOT_DX], p[SLOT_GAMMA], p[SLOT_RM], p[SLOT_RV],
                                                               k->eps, p[SLOT_DGAMMA], p[SLOT_DBETA]);
    case OP_BRN_TRAIN: return bn_batch_renorm_forward_training(d, p[SLOT_X], p[SLOT_Y], p[SLOT_GAMMA], p[SLOT_BETA], p[SLOT_RM], p[SLOT_RV],
                                                               k->momentum, k->eps, k->rmax, k->dmax, p[SLOT_MEAN], p[SLOT_INVSTD], p[SLOT_R], p[SLOT_D]);
    case OP_BRN_BACKWARD: return bn_batch_renorm_backward(d, p[SLOT_X], p[SLOT_DY], p[SLOT_DX], p[SLOT_GAMMA], p[SLOT_MEAN], p[SLOT_INVSTD],
                                                          p[SLOT_R], p[SLOT_D], p[SLOT_DGAMMA], p[SLOT_DBETA]);
    case OP_LN_FORWARD: return bn_layer_norm_forward(d, p[SLOT_X], p[SLOT_Y], p[SLOT_GAMMA], p[SLOT_BETA], k->eps, p[SLOT_MEAN], p[SLOT_INVSTD]);
    case OP_LN_BACKWARD: return bn_layer_norm_backward(d, p[SLOT_X], p[SLOT_DY], p[SLOT_DX], p[SLOT_GAMMA], p[SLOT_MEAN], p[SLOT_INVSTD],
                                                       p[SLOT_DGAMMA], p[SLOT_DBETA]);
    case OP_PARTIAL_STATISTICS: return bn_batch_norm_partial_statistics(d, p[SLOT_X], p[SLOT_PARTIALS]);
    case OP_MERGE: return bn_batch_norm_merge_statistics(k->desc.dtype, k->desc.c, k->parts, p[SLOT_PARTIALS], p[SLOT_RM], p[SLOT_RV],
                                                         k->momentum, k->eps, p[SLOT_MEAN], p[SLOT_INVSTD]);
    case OP_BRN_MERGE: return bn_batch_renorm_merge_statistics(k->desc.dtype, k->desc.c, k->parts, p[SLOT_PARTIALS], p[SLOT_RM], p[SLOT_RV],
                                                               k->momentum, k->eps, k->rmax, k->dmax, p[SLOT_MEAN], p[SLOT_INVSTD], p[SLOT_R], p[SLOT_D]);
    case OP_FORWARD_WITH: return bn_batch_norm_forward_with_statistics(d, p[SLOT_X], p[SLOT_Y], p[SLOT_GAMMA], p[SLOT_BETA], p[SLOT_MEAN], p[SLOT_INVSTD]);
    case OP_BRN_FORWARD_WITH: return bn_batch_renorm_forward_with_statistics(d, p[SLOT_X], p[SLOT_Y], p[SLOT_GAMMA], p[SLOT_BETA], p[SLOT_MEAN],
                                                                             p[SLOT_INVSTD], p[SLOT_R], p[SLOT_D]);
    case OP_PARTIAL_SUMS: return bn_batch_norm_backward_partial_sums(d, p[SLOT_X], p[SLOT_DY], p[SLOT_MEAN], p[SLOT_PARTIALS]);
    case OP_BACKWARD_WITH: return bn_batch_norm_backward_with_sums(d, p[SLOT_X], p[SLOT_DY], p[SLOT_DX], p[SLOT_GAMMA], p[SLOT_MEAN], p[SLOT_INVSTD],
                                                                   k->parts, p[SLOT_PARTIALS], p[SLOT_DGAMMA], p[SLOT_DBETA]);
    case OP_BRN_BACKWARD_WITH: return bn_batch_renorm_backward_with_sums(d, p[SLOT_X], p[SLOT_DY], p[SLOT_DX], p[SLOT_GAMMA], p[SLOT_MEAN],
                                                                         p[SLOT_INVSTD], p[SLOT_R], p[SLOT_D], k->parts, p[SLOT_PARTIALS],
                                                                         p[SLOT_DGAMMA], p[SLOT_DBETA]);
    default: return run_split(k);
    }
}

static int sixteen_bit_supported = -1;
static int verbose; /* FUZZ_VERBOSE=1: print every call before it is made (to read a crash) */

/* The status SPEC §3 asks for: the first failing check in the order NULL_POINTER, UNSUPPORTED, BAD_SHAPE, BAD_ARGUMENT. */
static bn_status expected_status(const call* k) {
    const signature* s = &signatures[k->op];
    const bn_tensor_desc* d = &k->desc;
    if (k->desc_null && !s->merge) return BN_STATUS_NULL_POINTER;
    for (int i = 0; i < SLOTS; i++)
        if ((s->required & B(i)) && k->p[i] == NULL) return BN_STATUS_NULL_POINTER;
    if ((k->op == OP_BN_TRAIN || k->op == OP_MERGE) && (k->p[SLOT_RM] == NULL) != (k->p[SLOT_RV] == NULL)) return BN_STATUS_NULL_POINTER;
    if ((!s->merge && (d->layout < 0 || d->layout > 2)) || d->dtype < 0 || d->dtype > 3) return BN_STATUS_UNSUPPORTED;
    if ((d->dtype == BN_DTYPE_F16 || d->dtype == BN_DTYPE_BF16) && !sixteen_bit_supported) return BN_STATUS_UNSUPPORTED;
    if (!k->legal_shape) return BN_STATUS_BAD_SHAPE;
    if (s->eps && !(k->eps > 0 && isfinite(k->eps))) return BN_STATUS_BAD_ARGUMENT;
    if (s->momentum && !(k->momentum >= 0 && k->momentum <= 1)) return BN_STATUS_BAD_ARGUMENT;
    if (s->renorm && !(k->rmax >= 1 && k->dmax >= 0)) return BN_STATUS_BAD_ARGUMENT;
    if (s->training && d->n * d->h * d->w < 2) return BN_STATUS_BAD_ARGUMENT;
    if (s->parts) { /* every count finite and >= 0, at least 2 in all (merges) or 1 (backwards), added as the library adds them */
        double total = 0;
        for (int64_t j = 0; j < k->parts; j++) {
            double count = (double)get(k->p[SLOT_PARTIALS], BN_DTYPE_F64, (size_t)(j * (2 * d->c + 1)));
            if (!(count >= 0) || !isfinite(count)) return BN_STATUS_BAD_ARGUMENT;
            total += count;
        }
        if (!(total >= (s->merge ? 2 : 1))) return BN_STATUS_BAD_ARGUMENT;
    }
    return BN_STATUS_SUCCESS;
}

/* ---- the reference and the checks --------------------------------------------------------------------- */

static void fail(const char* what, ...) __attribute__((noreturn, format(printf, 1, 2)));

static const call* current;

static void describe(const call* k) {
    const bn_tensor_desc* d = &k->desc;
    fprintf(stderr, "  call: %s layout %d dtype %d n=%lld c=%lld h=%lld w=%lld eps=%g momentum=%g rmax=%g dmax=%g in_place=%d isa=%s\n",
            op_names[k->op], d->layout, d->dtype, (long long)d->n, (long long)d->c, (long long)d->h, (long long)d->w,
            k->eps, k->momentum, k->rmax, k->dmax, k->in_place, bn_get_isa());
    if (k->op >= FUSED_OPS)
        fprintf(stderr, "  desc %s, parts K=%lld, split_at=%lld, zero_part=%d\n", k->desc_null ? "NULL" : "given", (long long)k->parts,
                (long long)k->split_at, k->zero_part);
}

#include <stdarg.h>
static void fail(const char* what, ...) {
    va_list args;
    va_start(args, what);
    fprintf(stderr, "INVARIANT BROKEN: ");
    vfprintf(stderr, what, args);
    fprintf(stderr, "\n");
    va_end(args);
    if (current) describe(current);
    __builtin_trap();
}

typedef struct { double forward, gradient, absolute; int format_ulps; } tolerance;

static tolerance tolerance_of(int dtype) {
    if (dtype == BN_DTYPE_F64) return (tolerance){ 1e-12, 1e-10, 0, 0 };
    return (tolerance){ 1e-5, 1e-4, 1, dtype == BN_DTYPE_F16 || dtype == BN_DTYPE_BF16 };
}

/* ulp of the 16-bit format at v */
static real ulp16(int dtype, real v) {
    real a = fabsl(v), min = smallest_normal(dtype);
    if (a < min) return smallest_subnormal(dtype);
    int e;
    frexpl(a, &e);
    return ldexpl(1, e - mantissa_bits(dtype));
}

/* SPEC §4 on one element: |got − ref| ≤ tol·(a + max(|ref|, s)), plus 2.5 ulps of the format for 16-bit
 * tensors; skipped where the exact result is not representable in the output's type. */
static void near_sum(const char* what, size_t i, real got, real ref, real s, double tol, double a, int out_dtype, int tensor_output, real terms, real extra);

static void near(const char* what, size_t i, real got, real ref, real s, double tol, double a, int out_dtype, int tensor_output) {
    near_sum(what, i, got, ref, s, tol, a, out_dtype, tensor_output, 4, 0);
}

/* As near, with `extra` added to the bound: what the representation of an intermediate already costs
 * (a statistic of the element type known only to half its subnormal step, times the factor it meets). */
static void near_plus(const char* what, size_t i, real got, real ref, real s, double tol, double a, int out_dtype, real extra) {
    near_sum(what, i, got, ref, s, tol, a, out_dtype, 1, 4, extra);
}

/* As near, for a value that sums `terms` rounded products: each may lose half a subnormal step. */
static void near_sum(const char* what, size_t i, real got, real ref, real s, double tol, double a, int out_dtype, int tensor_output, real terms, real extra) {
    /* Skipped too: elements whose terms (s) pass the output type's range, where §4's bound itself does, and
     * elements whose terms lie all near or below the normal range, where products already lose whole
     * subnormal steps (F64's rule is purely relative: no absolute slack covers them). */
    if (!isfinite(ref) || fabsl(ref) >= largest(out_dtype) * (1 - 1e-6) || !(s < largest(out_dtype))) return;
    if (fmaxl(fabsl(ref), s) < smallest_normal(out_dtype) * 0x1p24) return;
    /* Below the normal range a result is representable only to its absolute step (F64 has no absolute term). */
    real bound = tol * (a + fmaxl(fabsl(ref), s)) + (terms + 4) * smallest_subnormal(out_dtype) + extra;
    if (tensor_output && (out_dtype == BN_DTYPE_F16 || out_dtype == BN_DTYPE_BF16)) {
        char bits[2];
        put(bits, out_dtype, 0, (double)ref);
        real rounded = get(bits, out_dtype, 0);
        if (fabsl(got - rounded) <= 2.5L * ulp16(out_dtype, ref) + bound) return;
    }
    if (!(fabsl(got - ref) <= bound))
        fail("%s[%zu] = %.17Lg, reference %.17Lg (error %.3Lg > bound %.3Lg, s = %.3Lg)", what, i, got, ref, fabsl(got - ref), bound, s);
}

static void relative(const char* what, size_t i, real got, real ref, double tol, int out_dtype) {
    if (!isfinite(ref) || ref == 0 || fabsl(ref) >= largest(out_dtype) * (1 - 1e-6) || fabsl(ref) < smallest_normal(out_dtype) * 0x1p30) return;
    if (!(fabsl(got - ref) <= tol * fabsl(ref)))
        fail("%s[%zu] = %.17Lg, reference %.17Lg (relative error %.3Lg > %.1g)", what, i, got, ref, fabsl(got - ref) / fabsl(ref), tol);
}

static int finite_in_double(real v) { return isfinite(v) && fabsl(v) <= DBL_MAX; }

/* A nonzero value the element type holds only below its normal range (with a margin for the sums it meets in). */
static int below_normal(real v, int dtype) { return v != 0 && fabsl(v) < smallest_normal(dtype == BN_DTYPE_F64 ? BN_DTYPE_F64 : BN_DTYPE_F32) * 0x1p24; }

/* Offsets of the members of group g: a channel (BN) or a position (LN). */
static size_t member_offset(const bn_tensor_desc* d, int layer_norm, int64_t group, int64_t k) {
    int64_t s = d->h * d->w;
    int64_t n, c, sp;
    if (!layer_norm) { c = group; n = k / s; sp = k % s; }
    else { n = group / s; sp = group % s; c = k; }
    if (d->layout == BN_LAYOUT_NCHW) return (size_t)((n * d->c + c) * s + sp);
    return (size_t)((n * s + sp) * d->c + c);
}

/* Mean and biased variance of a group in long double, two passes about the group's first value: even long
 * double's mean of values near 1e151 that differ in their last bit would lose those differences. */
static void statistics(const real* x, const bn_tensor_desc* d, int layer_norm, int64_t group, int64_t members, real* mean, real* var) {
    real shift = x[member_offset(d, layer_norm, group, 0)], sum = 0, squares = 0;
    for (int64_t j = 0; j < members; j++) sum += x[member_offset(d, layer_norm, group, j)] - shift;
    real m = sum / members;
    for (int64_t j = 0; j < members; j++) {
        real v = x[member_offset(d, layer_norm, group, j)] - shift - m;
        squares += v * v;
    }
    *mean = shift + m;
    *var = squares / members;
}

typedef struct { real* x; real* dy; real* gamma; real* beta; real* rm; real* rv; real* mean; real* invstd; real* r; real* d; } inputs;

/* Contract §2.4 "Range": M2 and the gradient sums travel between the split calls in float64, so a channel whose
 * deviations pass about 1e154 (2^510: Chan's delta² stays finite) or whose M2, Σ|dy| or Σ|dy·(x − center)| pass
 * float64 (with a margin for the count factors) is outside the split path's promise. Only F64 data gets there. */
static const real range_limit = DBL_MAX / 16;

/* Contract §2.4 "Range": the merged mean, invstd, r and d are of the parameter type and the parts compute with them
 * as given, so a channel where one of them is not finite (an invstd past FLT_MAX from eps = 1e-300, r or d past it
 * with rmax or dmax = ∞) is outside the split path's promise. */
static int split_statistics_finite(const call* k, int64_t g) {
    int pt = k->desc.dtype == BN_DTYPE_F64 ? BN_DTYPE_F64 : BN_DTYPE_F32;
    int ok = isfinite(get(k->p[SLOT_MEAN], pt, (size_t)g)) && isfinite(get(k->p[SLOT_INVSTD], pt, (size_t)g));
    if (k->op == OP_BRN_TRAIN || renorm_backward(k->op))
        ok &= isfinite(get(k->p[SLOT_R], pt, (size_t)g)) && isfinite(get(k->p[SLOT_D], pt, (size_t)g));
    return ok;
}
static int within_float64(const call* k, const inputs* in, int64_t g, int64_t members, real center, real var) {
    real deviation = 0, sum_dy = 0, sum_dyx = 0;
    for (int64_t j = 0; j < members; j++) {
        size_t i = member_offset(&k->desc, 0, g, j);
        deviation = fmaxl(deviation, fabsl(in->x[i] - center));
        if (in->dy) { sum_dy += fabsl(in->dy[i]); sum_dyx += fabsl(in->dy[i] * (in->x[i] - center)); }
    }
    return deviation < 0x1p510L && var * members < range_limit && sum_dy < range_limit && sum_dyx < range_limit;
}

static void check_success(const call* k, const inputs* in) {
    const signature* sig = &signatures[k->op];
    const bn_tensor_desc* d = &k->desc;
    int t = d->dtype, pt = t == BN_DTYPE_F64 ? BN_DTYPE_F64 : BN_DTYPE_F32;
    tolerance tol = tolerance_of(t);
    int ln = sig->layer_norm;
    int64_t groups = ln ? d->n * d->h * d->w : d->c, members = ln ? d->c : d->n * d->h * d->w;
    real m = (real)members;
    void* const* p = k->p;
    /* The tensor output: y or dx (which may be x or dy in place). */
    const void* out = sig->backward ? p[SLOT_DX] : p[SLOT_Y];

    /* LN's dgamma/dbeta sum over every position; BN's are per channel. */
    real* dgamma_ref = calloc((size_t)d->c, sizeof(real));
    real* dbeta_ref = calloc((size_t)d->c, sizeof(real));
    real* dgamma_s = calloc((size_t)d->c, sizeof(real));
    real* dbeta_s = calloc((size_t)d->c, sizeof(real));
    int* channel_poisoned = calloc((size_t)d->c, sizeof(int));
    int parameters_poisoned = 0;

    for (int64_t g = 0; g < groups; g++) {
        int poisoned = 0;
        real sum_abs = 0;
        for (int64_t j = 0; j < members; j++) {
            size_t i = member_offset(d, ln, g, j);
            poisoned |= !isfinite(in->x[i]) || (sig->backward && !isfinite(in->dy[i]));
            sum_abs += fabsl(in->x[i]);
        }
        real mean, var;
        statistics(in->x, d, ln, g, members, &mean, &var);
        int constant = 1;
        for (int64_t j = 1; j < members; j++) constant &= in->x[member_offset(d, ln, g, j)] == in->x[member_offset(d, ln, g, 0)];
        if (!ln) {
            poisoned |= (in->gamma && !isfinite(in->gamma[g])) || (in->beta && !isfinite(in->beta[g]));
            if (sig->eps && !sig->training) poisoned |= !isfinite(in->rm[g]) || !isfinite(in->rv[g]);
            if (k->op == OP_BRN_TRAIN) poisoned |= !isfinite(in->rm[g]) || !isfinite(in->rv[g]);
            if (given_statistics(k->op)) poisoned |= !isfinite(in->mean[g]) || !isfinite(in->invstd[g]);
            if (renorm_backward(k->op) || k->op == OP_BRN_FORWARD_WITH) poisoned |= !isfinite(in->r[g]) || !isfinite(in->d[g]);
            channel_poisoned[g] = poisoned;
        } else if (k->op == OP_LN_BACKWARD) {
            poisoned |= !isfinite(in->mean[g]) || !isfinite(in->invstd[g]);
        }
        if (poisoned) { parameters_poisoned |= ln; continue; }
        if (k->split && !within_float64(k, in, g, members, sig->backward ? in->mean[g] : mean, var)) continue;
        if (k->split && !split_statistics_finite(k, g)) continue;
        int statistics_finite = finite_in_double(mean) && finite_in_double(var);
        real gm = 1, bt = 0;
        if (!ln) { gm = in->gamma ? in->gamma[g] : 1; bt = in->beta ? in->beta[g] : 0; }

        switch (k->op) {
        case OP_BN_TRAIN: case OP_BRN_TRAIN: case OP_LN_FORWARD: {
            if (!statistics_finite) break;
            real sigma = sqrtl(var + k->eps), invstd = 1 / sigma, r = 1, dd = 0;
            if (k->op == OP_BRN_TRAIN) {
                real run_sigma = sqrtl(in->rv[g] + k->eps);
                r = fminl(fmaxl(sigma / run_sigma, 1 / (real)k->rmax), k->rmax);
                dd = fminl(fmaxl((mean - in->rm[g]) / run_sigma, -(real)k->dmax), k->dmax);
                if (!isfinite(r) || !isfinite(dd)) break;
            }
            /* Contract §2.4 "Accuracy": a part's mean travels as a float64, known to half an ulp of its magnitude, so the
             * merged variance is within 2^-52·max|mean_k|/σ relative (|mean_k| ≤ (M/M_k)·mean(|x|)), invstd and r within
             * half that; with a margin for the merge's own roundings. */
            real split_extra = 0, split_var_extra = 0; /* relative: to var + eps (invstd, r, y), and to var (running_var) */
            if (k->split) {
                int64_t smallest = k->split_at < d->n - k->split_at ? k->split_at : d->n - k->split_at;
                split_extra = 0x1p-50L * ((real)d->n / (real)smallest) * (sum_abs / m) * invstd;
                split_var_extra = var > 0 ? 0x1p-49L * ((real)d->n / (real)smallest) * (sum_abs / m) / sqrtl(var) : 0;
            }
            real ftol = tol.forward + (double)split_extra;
            for (int64_t j = 0; j < members; j++) {
                size_t i = member_offset(d, ln, g, j);
                if (ln) { gm = in->gamma ? in->gamma[j] : 1; bt = in->beta ? in->beta[j] : 0; if (!isfinite(gm) || !isfinite(bt)) continue; }
                real got = get(out, t, i);
                real ref = gm * ((in->x[i] - mean) * invstd * r + dd) + bt;
                /* §4's s counts the magnitudes of the terms that meet in y; the mean's own terms are the data's, so
                 * its part is mean(|x|) (with |mean| itself, an exactly rounded mean would be needed whenever
                 * |γ|·invstd is large). Batch Renormalization's d is (mean − running_mean)/σ_run. */
                real s = fabsl(gm) * ((fabsl(in->x[i]) + sum_abs / m) * invstd * r + fabsl(dd)) + fabsl(bt);
                /* The mean, kept in the element type, is known only to half a subnormal step; F64 has no absolute
                 * term to cover that once γ·invstd scales it up. */
                real quantum = fabsl(gm) * invstd * r * 2 * smallest_subnormal(t);
                if (k->op == OP_BRN_TRAIN) {
                    real inverse_sigma_run = 1 / sqrtl(in->rv[g] + k->eps);
                    s += fabsl(gm) * (sum_abs / m + fabsl(in->rm[g])) * inverse_sigma_run;
                    quantum += fabsl(gm) * inverse_sigma_run * 2 * smallest_subnormal(t); /* the same mean, in d */
                    /* Contract §2.4 "Range": a split's r and d travel in the parameter type, known below its normal
                     * range to half a subnormal step, which γ (and x̂ for r) scale up. */
                    if (k->split)
                        quantum += fabsl(gm) * (1 + fabsl((in->x[i] - mean) * invstd)) * 2 * smallest_subnormal(pt);
                }
                if (constant && k->op != OP_BRN_TRAIN) { /* y = beta exactly (beta rounded to the output type) */
                    char rounded[8];
                    put(rounded, t, 0, (double)bt);
                    if (got != get(rounded, t, 0))
                        fail("constant %s %lld: y[%zu] = %.17Lg, beta %.17Lg", ln ? "position" : "channel", (long long)g, i, got, bt);
                }
                /* x̂ below the normal range: the documented limit of intermediate products (huge γ lifts them back) */
                if (!below_normal((in->x[i] - mean) * invstd * r, t))
                    near_plus("y", i, got, ref, s, ftol, tol.absolute, t, quantum);
            }
            size_t gi = (size_t)g;
            if (p[SLOT_MEAN]) near("save_mean", gi, get(p[SLOT_MEAN], pt, gi), mean, sum_abs / m, tol.forward, tol.absolute, pt, 0);
            if (p[SLOT_INVSTD]) relative("save_invstd", gi, get(p[SLOT_INVSTD], pt, gi), invstd, ftol, pt);
            if (k->op == OP_BRN_TRAIN) {
                if (p[SLOT_R]) relative("save_r", gi, get(p[SLOT_R], pt, gi), r, ftol, pt);
                /* d = (mean − running_mean)/σ_run: the mean known to half a subnormal step of the type (§5), times 1/σ_run */
                if (p[SLOT_D]) near_plus("save_d", gi, get(p[SLOT_D], pt, gi), dd, (sum_abs / m + fabsl(in->rm[g])) / sqrtl(in->rv[g] + k->eps),
                                         tol.forward, tol.absolute, pt, 2 * smallest_subnormal(pt) / sqrtl(in->rv[g] + k->eps));
            }
            if (!ln && p[SLOT_RM] && isfinite(in->rm[g]) && isfinite(in->rv[g]) && in->rv[g] >= 0) {
                real mo = k->momentum;
                near("running_mean", gi, get(p[SLOT_RM], pt, gi), (1 - mo) * in->rm[g] + mo * mean,
                     fabsl((1 - mo) * in->rm[g]) + mo * sum_abs / m, tol.forward, tol.absolute, pt, 0);
                relative("running_var", gi, get(p[SLOT_RV], pt, gi), (1 - mo) * in->rv[g] + mo * var * m / (m - 1), tol.forward + split_var_extra, pt);
            }
            break;
        }
        case OP_FORWARD_WITH: case OP_BRN_FORWARD_WITH: { /* as the inference forward, with the statistics (and r, d) given */
            real r = k->op == OP_BRN_FORWARD_WITH ? in->r[g] : 1, dd = k->op == OP_BRN_FORWARD_WITH ? in->d[g] : 0;
            for (int64_t j = 0; j < members; j++) {
                size_t i = member_offset(d, 0, g, j);
                real ref = gm * ((in->x[i] - in->mean[g]) * in->invstd[g] * r + dd) + bt;
                real s = fabsl(gm) * ((fabsl(in->x[i]) + fabsl(in->mean[g])) * in->invstd[g] * fabsl(r) + fabsl(dd)) + fabsl(bt);
                near("y", i, get(out, t, i), ref, s, tol.forward, tol.absolute, t, 1);
            }
            break;
        }
        case OP_BN_INFERENCE: {
            real invstd = 1 / sqrtl(in->rv[g] + k->eps);
            if (!isfinite(invstd)) break;
            for (int64_t j = 0; j < members; j++) {
                size_t i = member_offset(d, 0, g, j);
                real ref = gm * (in->x[i] - in->rm[g]) * invstd + bt;
                real s = fabsl(gm) * (fabsl(in->x[i]) + fabsl(in->rm[g])) * invstd + fabsl(bt);
                near("y", i, get(out, t, i), ref, s, tol.forward, tol.absolute, t, 1);
            }
            break;
        }
        case OP_BN_BACKWARD: case OP_BRN_BACKWARD: case OP_BN_FROZEN: case OP_LN_BACKWARD: case OP_BACKWARD_WITH: case OP_BRN_BACKWARD_WITH: {
            real center, invstd, r = 1, dd = 0;
            if (k->op == OP_BN_FROZEN) { center = in->rm[g]; invstd = 1 / sqrtl(in->rv[g] + k->eps); }
            else { center = in->mean[g]; invstd = in->invstd[g]; }
            if (renorm_backward(k->op)) { r = in->r[g]; dd = in->d[g]; }
            if (!isfinite(invstd)) break;
            real sum_g = 0, sum_gx = 0, abs_g = 0, abs_gx = 0;
            int tiny = 0;
            for (int64_t j = 0; j < members; j++) {
                size_t i = member_offset(d, ln, g, j);
                real xhat = (in->x[i] - center) * invstd;
                real gg = in->dy[i] * (ln ? (in->gamma ? in->gamma[j] : 1) : 1);
                sum_g += gg; sum_gx += gg * xhat; abs_g += fabsl(gg); abs_gx += fabsl(gg * xhat);
                tiny |= below_normal(gg, t) || below_normal(gg * (in->x[i] - center), t);
            }
            if (!finite_in_double(sum_g / m) || !finite_in_double(sum_gx / m)) break;
            /* Gradient products below the element type's normal range keep only a few bits there; huge γ or invstd
             * can lift them back into the outputs. Documented as a limit of computing in the element type. */
            if (tiny) break;
            for (int64_t j = 0; j < members; j++) {
                size_t i = member_offset(d, ln, g, j);
                real xhat = (in->x[i] - center) * invstd, ref, s, quantum = 0;
                if (k->op == OP_BN_FROZEN) {
                    ref = in->dy[i] * gm * invstd;
                    s = fabsl(ref);
                } else if (ln) {
                    real gj = in->gamma ? in->gamma[j] : 1;
                    if (!isfinite(gj)) continue;
                    real gg = in->dy[i] * gj;
                    ref = invstd * (gg - sum_g / m - xhat * sum_gx / m);
                    s = invstd * (fabsl(gg) + abs_g / m + fabsl(xhat) * abs_gx / m);
                    quantum = invstd * 2 * smallest_subnormal(t); /* mean(g), kept in the element type */
                } else {
                    real a = gm * r * invstd;
                    ref = a * (in->dy[i] - sum_g / m - xhat * sum_gx / m);
                    s = fabsl(a) * (fabsl(in->dy[i]) + abs_g / m + fabsl(xhat) * abs_gx / m);
                    quantum = fabsl(a) * 2 * smallest_subnormal(t); /* mean(dy), kept in the element type */
                }
                if (out) near_plus("dx", i, get(out, t, i), ref, s, tol.gradient, tol.absolute, t, quantum);
            }
            if (!ln) {
                size_t gi = (size_t)g;
                real dgamma = renorm_backward(k->op) ? r * sum_gx + dd * sum_g : sum_gx;
                real dgamma_scale = renorm_backward(k->op) ? fabsl(r) * abs_gx + fabsl(dd) * abs_g : abs_gx;
                if (p[SLOT_DGAMMA]) near_sum("dgamma", gi, get(p[SLOT_DGAMMA], pt, gi), dgamma, dgamma_scale, tol.gradient, tol.absolute, pt, 0, m, 0);
                if (p[SLOT_DBETA]) near_sum("dbeta", gi, get(p[SLOT_DBETA], pt, gi), sum_g, abs_g, tol.gradient, tol.absolute, pt, 0, m, 0);
            }
            break;
        }
        }
    }
    /* LayerNorm's dgamma/dbeta: every position meets in them, so only when none is poisoned (SPEC §3 exempts them). */
    if (k->op == OP_LN_BACKWARD && !parameters_poisoned)
        for (int64_t g = 0; g < groups; g++)
            for (int64_t j = 0; j < members; j++) {
                size_t i = member_offset(d, 1, g, j);
                real deviation = in->x[i] - in->mean[g], xhat = deviation * in->invstd[g];
                dgamma_ref[j] += in->dy[i] * xhat; dbeta_ref[j] += in->dy[i];
                dgamma_s[j] += fabsl(in->dy[i] * xhat); dbeta_s[j] += fabsl(in->dy[i]);
                /* products below the normal range (the documented limit, as for dx above) */
                channel_poisoned[j] |= below_normal(deviation, t) || below_normal(xhat, t) || below_normal(in->dy[i] * xhat, t);
            }
    if (k->op == OP_LN_BACKWARD && !parameters_poisoned)
        for (int64_t c = 0; c < d->c; c++) {
            if ((in->gamma && !isfinite(in->gamma[c])) || channel_poisoned[c]) continue;
            if (p[SLOT_DGAMMA]) near_sum("LN dgamma", (size_t)c, get(p[SLOT_DGAMMA], pt, (size_t)c), dgamma_ref[c], dgamma_s[c], tol.gradient, tol.absolute, pt, 0, groups, 0);
            if (p[SLOT_DBETA]) near_sum("LN dbeta", (size_t)c, get(p[SLOT_DBETA], pt, (size_t)c), dbeta_ref[c], dbeta_s[c], tol.gradient, tol.absolute, pt, 0, groups, 0);
        }
    free(dgamma_ref); free(dbeta_ref); free(dgamma_s); free(dbeta_s); free(channel_poisoned);
}

static real* to_real(const void* p, int dtype, size_t count) {
    if (!p) return NULL;
    real* v = malloc((count ? count : 1) * sizeof(real));
    for (size_t i = 0; i < count; i++) v[i] = get(p, dtype, i);
    return v;
}

/* ---- the split path (contract §2.4) ------------------------------------------------------------------- */

/* A partial's value j (count, then C values, then C values), wherever the buffer lies: no alignment is assumed. */
static real partial_at(const void* partials, int64_t channels, int64_t part, int64_t j) {
    return get(partials, BN_DTYPE_F64, (size_t)(part * (2 * channels + 1) + j));
}

/* bn_batch_norm_partial_statistics: the count exactly; the mean as a forward's saved mean (the |x| scale); M2
 * relative to Σ(x − mean)², plus what the mean's own tolerance gives it (m·(tol·mean(|x|))²). Partials are float64. */
static void check_partial_statistics(const call* k, const inputs* in) {
    const bn_tensor_desc* d = &k->desc;
    tolerance tol = tolerance_of(d->dtype);
    int64_t members = d->n * d->h * d->w;
    const void* partial = k->p[SLOT_PARTIALS];
    if (partial_at(partial, d->c, 0, 0) != (real)members) fail("partial count %.17Lg, M is %lld", partial_at(partial, d->c, 0, 0), (long long)members);
    for (int64_t g = 0; g < d->c; g++) {
        int poisoned = 0;
        real sum_abs = 0, mean, var;
        for (int64_t j = 0; j < members; j++) {
            real v = in->x[member_offset(d, 0, g, j)];
            poisoned |= !isfinite(v);
            sum_abs += fabsl(v);
        }
        statistics(in->x, d, 0, g, members, &mean, &var);
        if (poisoned || !finite_in_double(mean) || !finite_in_double(var)) continue;
        real m2 = var * members, spread = tol.forward * sum_abs / members;
        near("partial mean", (size_t)g, partial_at(partial, d->c, 0, 1 + g), mean, sum_abs / members, tol.forward, tol.absolute, BN_DTYPE_F64, 0);
        if (within_float64(k, in, g, members, mean, var))
            near("partial M2", (size_t)g, partial_at(partial, d->c, 0, 1 + d->c + g), m2, m2 + members * spread * spread, tol.forward,
                 tol.absolute, BN_DTYPE_F64, 0);
    }
}

/* bn_batch_norm_backward_partial_sums with the mean given: the count exactly, Σdy and Σdy·(x − mean) as the
 * backward's dbeta and dgamma are judged (gradient tolerance, the sums of magnitudes as s); the same exemptions. */
static void check_partial_sums(const call* k, const inputs* in) {
    const bn_tensor_desc* d = &k->desc;
    int t = d->dtype;
    tolerance tol = tolerance_of(t);
    int64_t members = d->n * d->h * d->w;
    const void* partial = k->p[SLOT_PARTIALS];
    if (partial_at(partial, d->c, 0, 0) != (real)members) fail("partial count %.17Lg, M is %lld", partial_at(partial, d->c, 0, 0), (long long)members);
    for (int64_t g = 0; g < d->c; g++) {
        real center = in->mean[g], sum_dy = 0, sum_dyx = 0, abs_dy = 0, abs_dyx = 0;
        int skip = !isfinite(center);
        for (int64_t j = 0; j < members && !skip; j++) {
            size_t i = member_offset(d, 0, g, j);
            real product = in->dy[i] * (in->x[i] - center);
            skip |= !isfinite(in->x[i]) || !isfinite(in->dy[i]);
            skip |= below_normal(in->dy[i], t) || below_normal(product, t); /* products below the normal range (§5) */
            sum_dy += in->dy[i]; sum_dyx += product; abs_dy += fabsl(in->dy[i]); abs_dyx += fabsl(product);
        }
        if (skip || !(abs_dy < range_limit) || !(abs_dyx < range_limit)) continue;
        near_sum("partial sum dy", (size_t)g, partial_at(partial, d->c, 0, 1 + g), sum_dy, abs_dy, tol.gradient, tol.absolute, BN_DTYPE_F64, 0, members, 0);
        near_sum("partial sum dy*(x-mean)", (size_t)g, partial_at(partial, d->c, 0, 1 + d->c + g), sum_dyx, abs_dyx, tol.gradient, tol.absolute,
                 BN_DTYPE_F64, 0, members, 0);
    }
}

/* The merges against the long-double merge of the partials as given (count-0 parts skipped): the mean, invstd, r, d
 * and running statistics as the fused forward's are judged (the mean's s: Σ count·|mean_k| / Σ count). A partial
 * holds its mean as a float64 (contract §2.4), so a merged variance is known only to about K·u64·mean(|mean_k|)/σ
 * relative, which invstd, r and running_var are granted beyond SPEC §4. */
static void check_merge(const call* k, const inputs* in) {
    int64_t c = k->desc.c;
    int pt = k->desc.dtype == BN_DTYPE_F64 ? BN_DTYPE_F64 : BN_DTYPE_F32, renorm = k->op == OP_BRN_MERGE;
    tolerance tol = tolerance_of(k->desc.dtype);
    const void* partials = k->p[SLOT_PARTIALS];
    void* const* p = k->p;
    for (int64_t g = 0; g < c; g++) {
        real count = 0, sum = 0, sum_abs = 0, mean, m2 = 0, deviation = 0, shift = 0, largest = 0;
        int poisoned = 0;
        for (int64_t j = 0; j < k->parts; j++) {
            real n = partial_at(partials, c, j, 0), mk = partial_at(partials, c, j, 1 + g), m2k = partial_at(partials, c, j, 1 + c + g);
            if (!(n > 0)) continue;
            poisoned |= !isfinite(mk) || !isfinite(m2k);
            count += n; sum_abs += n * fabsl(mk);
            if (n > largest) { largest = n; shift = mk; }
        }
        /* The mean about one part's (exact when all parts have the same mean, whose rounding would otherwise swamp a
         * small variance once squared and weighted by a large count). */
        for (int64_t j = 0; j < k->parts; j++) {
            real n = partial_at(partials, c, j, 0);
            if (n > 0) sum += n * (partial_at(partials, c, j, 1 + g) - shift);
        }
        mean = shift + sum / count;
        for (int64_t j = 0; j < k->parts; j++) {
            real n = partial_at(partials, c, j, 0), mk = partial_at(partials, c, j, 1 + g);
            if (!(n > 0)) continue;
            m2 += partial_at(partials, c, j, 1 + c + g) + n * (mk - mean) * (mk - mean);
            deviation = fmaxl(deviation, fabsl(mk - mean));
        }
        int running = (renorm || p[SLOT_RM]) && isfinite(in->rm[g]) && isfinite(in->rv[g]) && in->rv[g] >= 0;
        real var = m2 / count, sigma = sqrtl(var + k->eps), invstd = 1 / sigma, scale = sum_abs / count;
        if (poisoned || !finite_in_double(mean) || !(deviation < 0x1p510L) || !(m2 < range_limit)) continue;
        double merge_tol = tol.forward + 4 * k->parts * 0x1p-53 * (double)(scale * invstd);
        /* running_var is judged relative to var itself (no eps): the same roundings against √var */
        double merge_var_tol = tol.forward + (var > 0 ? 8 * k->parts * 0x1p-53 * (double)(scale / sqrtl(var)) : 0);
        size_t gi = (size_t)g;
        near("merged mean", gi, get(p[SLOT_MEAN], pt, gi), mean, scale, tol.forward, tol.absolute, pt, 0);
        relative("merged invstd", gi, get(p[SLOT_INVSTD], pt, gi), invstd, merge_tol, pt);
        if (renorm && running) {
            real run_sigma = sqrtl(in->rv[g] + k->eps);
            real r = fminl(fmaxl(sigma / run_sigma, 1 / (real)k->rmax), k->rmax);
            real dd = fminl(fmaxl((mean - in->rm[g]) / run_sigma, -(real)k->dmax), k->dmax);
            if (isfinite(r)) relative("merged r", gi, get(p[SLOT_R], pt, gi), r, merge_tol, pt);
            if (isfinite(dd)) near_plus("merged d", gi, get(p[SLOT_D], pt, gi), dd, (scale + fabsl(in->rm[g])) / run_sigma, tol.forward, tol.absolute, pt,
                                        2 * smallest_subnormal(pt) / run_sigma);
        }
        if (p[SLOT_RM] && running) {
            real mo = k->momentum;
            near("running_mean", gi, get(p[SLOT_RM], pt, gi), (1 - mo) * in->rm[g] + mo * mean, fabsl((1 - mo) * in->rm[g]) + mo * scale,
                 tol.forward, tol.absolute, pt, 0);
            relative("running_var", gi, get(p[SLOT_RV], pt, gi), (1 - mo) * in->rv[g] + mo * var * count / (count - 1), merge_var_tol, pt);
        }
    }
}

/* OP_SPLIT, OP_BRN_SPLIT: the batch cut after split_at samples, through every split entry point as two processes
 * would call them (a count-0 partial between theirs when zero_part); part 0's dgamma and dbeta go aside, as they
 * must be bitwise part 1's. Returns the first status that is not SUCCESS. */
static unsigned char split_dgamma[6002 * 8], split_dbeta[6002 * 8];

static bn_status run_split(const call* k) {
    int renorm = k->op == OP_BRN_SPLIT, t = k->desc.dtype;
    int64_t c = k->desc.c, parts = k->zero_part ? 3 : 2;
    void* const* p = k->p;
    bn_tensor_desc part[2] = { k->desc, k->desc };
    part[0].n = k->split_at;
    part[1].n = k->desc.n - k->split_at;
    size_t at[2] = { 0, (size_t)(k->split_at * c * k->desc.h * k->desc.w) * element_size(t) }, bytes = (size_t)(2 * c + 1) * 8;
    char *x = p[SLOT_X], *y = p[SLOT_Y], *dy = p[SLOT_DY], *dx = p[SLOT_DX], *partials = p[SLOT_PARTIALS];
    char* forward_partial[2] = { partials, partials + (size_t)(parts - 1) * bytes };
    bn_status s;
#define TRY(status) do { if ((s = (status)) != BN_STATUS_SUCCESS) return s; } while (0)
    for (int j = 0; j < 2; j++) TRY(bn_batch_norm_partial_statistics(&part[j], x + at[j], forward_partial[j]));
    if (k->zero_part) {
        put(partials + bytes, BN_DTYPE_F64, 0, 0.0);
        for (int64_t j = 1; j <= 2 * c; j++) put(partials + bytes, BN_DTYPE_F64, (size_t)j, NAN);
    }
    TRY(renorm ? bn_batch_renorm_merge_statistics(t, c, parts, partials, p[SLOT_RM], p[SLOT_RV], k->momentum, k->eps, k->rmax, k->dmax,
                                                  p[SLOT_MEAN], p[SLOT_INVSTD], p[SLOT_R], p[SLOT_D])
               : bn_batch_norm_merge_statistics(t, c, parts, partials, p[SLOT_RM], p[SLOT_RV], k->momentum, k->eps, p[SLOT_MEAN], p[SLOT_INVSTD]));
    for (int j = 0; j < 2; j++)
        TRY(renorm ? bn_batch_renorm_forward_with_statistics(&part[j], x + at[j], y + at[j], p[SLOT_GAMMA], p[SLOT_BETA], p[SLOT_MEAN],
                                                             p[SLOT_INVSTD], p[SLOT_R], p[SLOT_D])
                   : bn_batch_norm_forward_with_statistics(&part[j], x + at[j], y + at[j], p[SLOT_GAMMA], p[SLOT_BETA], p[SLOT_MEAN], p[SLOT_INVSTD]));
    for (int j = 0; j < 2; j++) TRY(bn_batch_norm_backward_partial_sums(&part[j], x + at[j], dy + at[j], p[SLOT_MEAN], partials + (size_t)j * bytes));
    for (int j = 0; j < 2; j++) {
        void* dgamma = j ? p[SLOT_DGAMMA] : p[SLOT_DGAMMA] ? (void*)split_dgamma : NULL;
        void* dbeta = j ? p[SLOT_DBETA] : p[SLOT_DBETA] ? (void*)split_dbeta : NULL;
        TRY(renorm ? bn_batch_renorm_backward_with_sums(&part[j], x + at[j], dy + at[j], dx + at[j], p[SLOT_GAMMA], p[SLOT_MEAN], p[SLOT_INVSTD],
                                                        p[SLOT_R], p[SLOT_D], 2, partials, dgamma, dbeta)
                   : bn_batch_norm_backward_with_sums(&part[j], x + at[j], dy + at[j], dx + at[j], p[SLOT_GAMMA], p[SLOT_MEAN], p[SLOT_INVSTD], 2,
                                                      partials, dgamma, dbeta));
    }
#undef TRY
    return BN_STATUS_SUCCESS;
}

/* The split batch judged as the fused calls on the whole batch are: its y, merged statistics, r, d and running
 * statistics as the training forward's, its dx, dgamma and dbeta as the backward's given those statistics. */
static void check_split(const call* k, inputs* in) {
    int pt = k->desc.dtype == BN_DTYPE_F64 ? BN_DTYPE_F64 : BN_DTYPE_F32, renorm = k->op == OP_BRN_SPLIT;
    size_t channels = (size_t)k->desc.c;
    call view = *k;
    view.split = 1;
    view.op = renorm ? OP_BRN_TRAIN : OP_BN_TRAIN;
    check_success(&view, in);
    in->mean = to_real(k->p[SLOT_MEAN], pt, channels);
    in->invstd = to_real(k->p[SLOT_INVSTD], pt, channels);
    if (renorm) { in->r = to_real(k->p[SLOT_R], pt, channels); in->d = to_real(k->p[SLOT_D], pt, channels); }
    view.op = renorm ? OP_BRN_BACKWARD : OP_BN_BACKWARD;
    check_success(&view, in);
    if ((k->p[SLOT_DGAMMA] && memcmp(split_dgamma, k->p[SLOT_DGAMMA], channels * parameter_size(pt)) != 0)
        || (k->p[SLOT_DBETA] && memcmp(split_dbeta, k->p[SLOT_DBETA], channels * parameter_size(pt)) != 0))
        fail("the two parts got different dgamma or dbeta from the same partials");
}

/* K for the merges and the backwards with sums: mostly 1 to 4; now and then < 1, or one whose K·(2·C + 1) doubles
 * pass int64 bytes (the first such, or any). A legal K is never more than the buffer holds: the library reads K partials.
 * (Here and below a spent input, whose bytes read 0, makes a legal call.) */
static int64_t take_parts(input* in, int64_t c, int* legal) {
    int64_t most = c >= 1 && c <= (INT64_MAX / 8 - 1) / 2 ? INT64_MAX / 8 / (2 * c + 1) : 0, k;
    uint8_t b = take8(in);
    switch (b % 16) {
    case 12: k = -(int64_t)(take8(in) % 3); break;
    case 13: k = INT64_MIN + take8(in); break;
    case 14: k = most + 1 + take8(in) % 3; break;
    case 15: k = most + 1 + (int64_t)(take64(in) % (uint64_t)(INT64_MAX - most)); break;
    default: k = 1 + b % 4; break;
    }
    *legal = k >= 1 && k <= most;
    return k;
}

/* Partials as a caller passes them to a merge or a backward: counts mostly small whole numbers (0: a part the merge
 * skips), now and then fractional or large; values from the palette (M2 not negative). */
static void fill_partials(input* in, void* partials, int64_t parts, int64_t c, int merge, const double* palette, int palette_size) {
    static const double counts[8] = { 2, 1, 0, 5, 3, 7, 2.5, 0x1p40 };
    for (int64_t j = 0; j < parts; j++) {
        double count = counts[take8(in) % 8];
        put(partials, BN_DTYPE_F64, (size_t)(j * (2 * c + 1)), count);
        for (int64_t e = 1; e <= 2 * c; e++) {
            double v = palette[take8(in) % palette_size];
            put(partials, BN_DTYPE_F64, (size_t)(j * (2 * c + 1) + e), merge && e > c ? fabs(v) : v);
        }
    }
}

/* Now and then counts the SPEC refuses: one negative or not finite, all 0, or (merges) 1 in all. */
static void corrupt_counts(input* in, void* partials, int64_t parts, int64_t c, int merge) {
    static const double bad[] = { -1.0, -0x1p-1074, -INFINITY, INFINITY, NAN, -1e300 };
    uint8_t b = take8(in);
    if (b % 8 == 7) put(partials, BN_DTYPE_F64, (size_t)(take8(in) % parts * (2 * c + 1)), bad[take8(in) % 6]);
    else if (b % 8 == 6 || (b % 8 == 5 && merge))
        for (int64_t j = 0; j < parts; j++) put(partials, BN_DTYPE_F64, (size_t)(j * (2 * c + 1)), b % 8 == 5 && j == 0 ? 1.0 : 0.0);
}

/* ---- one input ------------------------------------------------------------------------------------------ */

int LLVMFuzzerInitialize(int* argc, char*** argv) {
    (void)argc; (void)argv;
    map_slots();
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    /* Whether this build normalizes 16-bit tensors (before, the SPEC lets it answer UNSUPPORTED). */
    bn_tensor_desc d = { BN_LAYOUT_NC, BN_DTYPE_F16, 2, 1, 1, 1 };
    uint16_t x[2] = { 0x3C00, 0x4000 }, y[2];
    sixteen_bit_supported = bn_layer_norm_forward(&d, x, y, NULL, NULL, 1e-5, NULL, NULL) == BN_STATUS_SUCCESS;
    return 0;
}

static const double eps_choices[] = { 1e-5, 1e-3, 1.0, 1e-300, 1e-40, 1e30, 0.0, -1e-5, NAN, INFINITY };
static const double momentum_choices[] = { 0.1, 0.0, 1.0, 0.5, -0.1, 1.5, NAN };
static const double rmax_choices[] = { 3.0, 1.0, 1.5, INFINITY, 0.5, NAN };
static const double dmax_choices[] = { 5.0, 0.0, 0.25, INFINITY, -1.0, NAN };

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    input in = { data, size };
    call k;
    memset(&k, 0, sizeof k);
    uint8_t first = take8(&in); /* below 160: a fused operation, as before the split ones came */
    k.op = first < 160 ? first % FUSED_OPS : FUSED_OPS + (first - 160) % (OPS - FUSED_OPS);
    const signature* sig = &signatures[k.op];
    uint8_t types = take8(&in), shape_kind = take8(&in), flags = take8(&in), nulls = take8(&in), nulls2 = take8(&in);
    int dtype = types % 8 < 3 ? BN_DTYPE_F32 : types % 8 < 5 ? BN_DTYPE_F64 : types % 8 == 5 ? BN_DTYPE_F16 : types % 8 == 6 ? BN_DTYPE_BF16 : (int)(types >> 3) - 8;
    int layout = (types >> 3) % 8 < 7 ? (types >> 3) % 3 : (int)(take8(&in)) - 128;
    if (sig->pipeline) { /* a split batch is always a legal call: its outputs are what is judged */
        if (dtype < 0 || dtype > 3) dtype = BN_DTYPE_F32;
        if (layout < 0 || layout > 2) layout = BN_LAYOUT_NCHW;
        if (shape_kind % 16 < 3) shape_kind = 15;
    }
    k.desc.layout = layout;
    k.desc.dtype = dtype;

    /* The shape: mostly small and legal, now and then hostile (rejected as BAD_SHAPE when nothing earlier fails). */
    int64_t n = 1 + take8(&in) % 7, c = 1 + take8(&in) % 40, h = 1 + take8(&in) % 6, w = 1 + take8(&in) % 11;
    if (layout == BN_LAYOUT_NC) { n = 1 + take8(&in) % 70; h = w = 1; }
    k.legal_shape = 1;
    switch (shape_kind % 16) {
    case 0: { int which = take8(&in) % 4; int64_t bad = -(int64_t)(take8(&in) % 3); if (which == 0) n = bad; else if (which == 1) c = bad; else if (which == 2) h = bad; else w = bad;
              k.legal_shape = 0; break; }
    case 1: /* more elements than int64 holds, or more bytes: 2^62 elements of 2 bytes or more */
        if (take8(&in) & 1) { n = (int64_t)1 << (32 + take8(&in) % 30); c = (int64_t)1 << (32 + take8(&in) % 30); }
        else { n = (int64_t)1 << 31; c = (int64_t)1 << 31; h = w = 1; }
        k.legal_shape = 0;
        break;
    case 2: if (layout == BN_LAYOUT_NC) { h = 2 + take8(&in) % 3; k.legal_shape = 0; } break;
    case 3: c = 1 + take8(&in) % 140; break;               /* wide rows: vector tails at every width */
    case 4: /* one or two members: M < 2 is refused in training */
        if (layout == BN_LAYOUT_NC) n = 1 + take8(&in) % 2; else { n = 1; h = 1; w = 1 + take8(&in) % 2; }
        break;
    default: break;
    }
    if (sig->pipeline && n < 2) n = 2;
    if (k.legal_shape && n * c * h * w > 6000) c = 6000 / (n * h * w) + 1;
    if (sig->pipeline && 3 * (2 * c + 1) > REGION / 8) c = (REGION / 8 / 3 - 1) / 2; /* three partials in the slot */
    if (k.legal_shape && (layout < 0 || layout > 2 || dtype < 0 || dtype > 3)) { /* unsupported: keep the buffers small */ }
    k.desc.n = n; k.desc.c = c; k.desc.h = h; k.desc.w = w;
    k.desc_null = (nulls & 0x7F) == 0x7F;

    k.eps = eps_choices[take8(&in) % 10 < 6 ? 0 : take8(&in) % (sizeof eps_choices / sizeof eps_choices[0])];
    k.momentum = momentum_choices[take8(&in) % 3 ? 0 : take8(&in) % (sizeof momentum_choices / sizeof momentum_choices[0])];
    k.rmax = rmax_choices[take8(&in) % (sizeof rmax_choices / sizeof rmax_choices[0])];
    k.dmax = dmax_choices[take8(&in) % (sizeof dmax_choices / sizeof dmax_choices[0])];

    /* The split calls: K (hostile now and then; a legal one fits the slot), or the cut of a split batch. */
    if (sig->parts) {
        int parts_legal;
        k.parts = take_parts(&in, c, &parts_legal);
        if (parts_legal && c > 6001) { k.parts = INT64_MAX / 8 / (2 * c + 1) + 1; parts_legal = 0; } /* a C too wide to hold: K overflows */
        if (parts_legal && k.parts * (2 * c + 1) > REGION / 8) k.parts = REGION / 8 / (2 * c + 1);
        k.legal_shape = sig->merge ? c >= 1 && parts_legal : k.legal_shape && parts_legal;
        k.split = !sig->merge;
    }
    if (sig->pipeline) {
        k.split_at = 1 + take8(&in) % (n - 1);
        k.zero_part = take8(&in) & 1;
        k.desc_null = 0;
        if (!(k.eps > 0 && isfinite(k.eps))) k.eps = 1e-5;
        if (!(k.momentum >= 0 && k.momentum <= 1)) k.momentum = 0.1;
        if (!(k.rmax >= 1)) k.rmax = 3;
        if (!(k.dmax >= 0)) k.dmax = 5;
    }

    /* Buffers, exactly sized. Hostile shapes get one element each: the call must reject them before reading. */
    int legal_types = (sig->merge || (layout >= 0 && layout <= 2)) && dtype >= 0 && dtype <= 3;
    int t = legal_types ? dtype : BN_DTYPE_F32, pt = t == BN_DTYPE_F64 ? BN_DTYPE_F64 : BN_DTYPE_F32;
    size_t count = k.legal_shape && !sig->merge ? (size_t)(n * c * h * w) : 1;
    size_t channels = k.legal_shape ? (size_t)c : 1, positions = k.legal_shape && !sig->merge ? (size_t)(n * h * w) : 1;
    size_t vectors = sig->layer_norm ? positions : channels;
    size_t sizes[SLOTS];
    for (int i = 0; i < SLOTS; i++) sizes[i] = channels * parameter_size(t);
    sizes[SLOT_X] = sizes[SLOT_Y] = sizes[SLOT_DY] = sizes[SLOT_DX] = count * element_size(t);
    sizes[SLOT_MEAN] = sizes[SLOT_INVSTD] = vectors * parameter_size(t);
    sizes[SLOT_PARTIALS] = (size_t)(sig->pipeline ? 3 : sig->parts && k.legal_shape ? k.parts : 1) * (2 * channels + 1) * 8;
    int misaligned = (flags & 7) == 7;
    unsigned present = sig->required | sig->optional;
    for (int i = 0; i < SLOTS; i++) {
        if (!(present & B(i))) continue;
        int is_null = (i < 8 ? (nulls >> i) & 1 : (nulls2 >> (i - 8)) & 1) && take8(&in) % 4 == 0;
        if (is_null && !(sig->pipeline && (sig->required & B(i)))) continue;
        k.p[i] = place(i, sizes[i], (flags >> 3) & 1, misaligned ? 1 + take8(&in) % 3 : 0);
    }
    if (sig->pipeline && (!k.p[SLOT_RM] || !k.p[SLOT_RV])) k.p[SLOT_RM] = k.p[SLOT_RV] = NULL;
    k.in_place = (flags >> 4) & 1;
    /* (a split batch's forward may not overwrite x: its backward reads it) */
    if (k.in_place && !sig->backward && !sig->pipeline && k.p[SLOT_Y] && k.p[SLOT_X]) k.p[SLOT_Y] = k.p[SLOT_X];
    if (k.in_place && (sig->backward || sig->pipeline) && k.p[SLOT_DX] && k.p[SLOT_DY]) k.p[SLOT_DX] = k.p[SLOT_DY];

    /* Values: a palette per call (one entry: constant data); NaN and Inf in one call of four. */
    int allow_nonfinite = (flags >> 5) == 0 || (flags >> 5) == 7;
    double palette[8];
    int palette_size = 1 + take8(&in) % 8;
    for (int i = 0; i < palette_size; i++) palette[i] = take_value(&in, t, allow_nonfinite);
    double parameter_palette[4];
    for (int i = 0; i < 4; i++) parameter_palette[i] = take8(&in) % 4 ? ((int)take8(&in) - 128) / 32.0 : take_value(&in, pt, allow_nonfinite);
    for (int i = 0; i < SLOTS; i++) {
        if (!k.p[i] || (i == SLOT_Y && k.p[SLOT_Y] == k.p[SLOT_X]) || (i == SLOT_DX && k.p[SLOT_DX] == k.p[SLOT_DY])) continue;
        int tensor = i <= SLOT_DX;
        size_t elements = tensor ? count : (i == SLOT_MEAN || i == SLOT_INVSTD) ? vectors : channels;
        int et = tensor ? t : pt;
        /* outputs: NaN; partials a finite 2.26e6 each, so that a call adding into them instead of writing them shows (a NaN
         * there would send the sums to the float64 path, which writes) */
        if (sig->written & B(i) && !(i == SLOT_RM || i == SLOT_RV)) { memset(k.p[i], i == SLOT_PARTIALS ? 0x41 : 0xFF, sizes[i]); continue; }
        if (i == SLOT_PARTIALS) { fill_partials(&in, k.p[i], k.legal_shape ? k.parts : 1, (int64_t)channels, sig->merge, palette, palette_size); continue; }
        for (size_t e = 0; e < elements; e++) {
            double v = tensor ? palette[take8(&in) % palette_size] : parameter_palette[take8(&in) % 4];
            if (i == SLOT_RV || i == SLOT_INVSTD) v = fabs(v); /* variances and their inverses are not negative */
            if (i == SLOT_R) v = fabs(v) + 0.5;
            put(k.p[i], et, e, v);
        }
    }
    /* Saved statistics for the backward of a training forward: usually those the forward would have saved. */
    if (k.legal_shape && legal_types && (k.op == OP_BN_BACKWARD || k.op == OP_BRN_BACKWARD || k.op == OP_LN_BACKWARD || k.split)
        && k.p[SLOT_MEAN] && k.p[SLOT_INVSTD] && k.p[SLOT_X] && (flags >> 6) != 1) {
        int ln = sig->layer_norm;
        int64_t groups = ln ? n * h * w : c, members = ln ? c : n * h * w;
        double eps = k.eps > 0 && isfinite(k.eps) ? k.eps : 1e-5;
        real* x = to_real(k.p[SLOT_X], t, count);
        for (int64_t g = 0; g < groups; g++) {
            real mean, var;
            statistics(x, &k.desc, ln, g, members, &mean, &var);
            put(k.p[SLOT_MEAN], pt, (size_t)g, (double)mean);
            put(k.p[SLOT_INVSTD], pt, (size_t)g, (double)(1 / sqrtl(var + eps)));
        }
        if (k.split && k.p[SLOT_DY] && k.p[SLOT_PARTIALS]) { /* the sums of the data about that mean, its members cut into K parts */
            real* dyr = to_real(k.p[SLOT_DY], t, count);
            int64_t members = n * h * w, stride = 2 * c + 1;
            for (int64_t j = 0; j < k.parts; j++) {
                int64_t lo = j * members / k.parts, hi = (j + 1) * members / k.parts;
                put(k.p[SLOT_PARTIALS], BN_DTYPE_F64, (size_t)(j * stride), (double)(hi - lo));
                for (int64_t g = 0; g < c; g++) {
                    real mu = get(k.p[SLOT_MEAN], pt, (size_t)g), sum_dy = 0, sum_dyx = 0;
                    for (int64_t e = lo; e < hi; e++) {
                        size_t i = member_offset(&k.desc, 0, g, e);
                        sum_dy += dyr[i]; sum_dyx += dyr[i] * (x[i] - mu);
                    }
                    put(k.p[SLOT_PARTIALS], BN_DTYPE_F64, (size_t)(j * stride + 1 + g), (double)sum_dy);
                    put(k.p[SLOT_PARTIALS], BN_DTYPE_F64, (size_t)(j * stride + 1 + c + g), (double)sum_dyx);
                }
            }
            free(dyr);
        }
        free(x);
        k.consistent_statistics = 1;
    }
    if (sig->parts && k.legal_shape && k.p[SLOT_PARTIALS]) corrupt_counts(&in, k.p[SLOT_PARTIALS], k.parts, c, sig->merge);

    /* Snapshots of what the call may write, and the inputs as the library reads them. */
    void* before[SLOTS] = { 0 };
    for (int i = 0; i < SLOTS; i++)
        if (k.p[i] && (sig->written & B(i)) && !(i == SLOT_Y && k.p[i] == k.p[SLOT_X]) && !(i == SLOT_DX && k.p[i] == k.p[SLOT_DY])) {
            before[i] = malloc(sizes[i]);
            memcpy(before[i], k.p[i], sizes[i]);
        }
    void* x_before = k.p[SLOT_X] ? memcpy(malloc(sizes[SLOT_X]), k.p[SLOT_X], sizes[SLOT_X]) : NULL;
    void* dy_before = k.p[SLOT_DY] ? memcpy(malloc(sizes[SLOT_DY]), k.p[SLOT_DY], sizes[SLOT_DY]) : NULL;
    inputs values = { 0 };
    if (k.legal_shape && legal_types) {
        values.x = to_real(k.p[SLOT_X], t, count);
        values.dy = to_real(k.p[SLOT_DY], t, count);
        values.gamma = to_real(k.p[SLOT_GAMMA], pt, channels);
        values.beta = to_real(k.p[SLOT_BETA], pt, channels);
        values.rm = to_real(k.p[SLOT_RM], pt, channels);
        values.rv = to_real(k.p[SLOT_RV], pt, channels);
        if (!(sig->written & B(SLOT_MEAN))) { values.mean = to_real(k.p[SLOT_MEAN], pt, vectors); values.invstd = to_real(k.p[SLOT_INVSTD], pt, vectors); }
        if (!(sig->written & B(SLOT_R))) { values.r = to_real(k.p[SLOT_R], pt, channels); values.d = to_real(k.p[SLOT_D], pt, channels); }
    }

    current = &k;
    if (verbose) {
        describe(&k);
        for (int i = 0; i < palette_size; i++) fprintf(stderr, "  palette[%d] = %.17g\n", i, palette[i]);
        for (int i = 0; i < 4; i++) fprintf(stderr, "  parameter palette[%d] = %.17g\n", i, parameter_palette[i]);
        if (values.mean) fprintf(stderr, "  save_mean[0] = %.17Lg, save_invstd[0] = %.17Lg\n", values.mean[0], values.invstd[0]);
        for (size_t e = 0; values.gamma && e < channels && e < 16; e++)
            fprintf(stderr, "  gamma[%zu] = %.9Lg  beta = %.9Lg\n", e, values.gamma[e], values.beta ? values.beta[e] : 0.0L);
        int64_t members = sig->layer_norm ? c : n * h * w;
        const char* group_text = getenv("FUZZ_GROUP");
        int64_t group = group_text ? atoll(group_text) : 0;
        for (int64_t j = 0; values.x && k.legal_shape && j < members && j < 64; j++) {
            size_t e = member_offset(&k.desc, sig->layer_norm, group, j);
            fprintf(stderr, "  group %lld: x[%zu] = %.17Lg  dy = %.17Lg\n", (long long)group, e, values.x[e], values.dy ? values.dy[e] : 0.0L);
        }
        for (int64_t j = 0; sig->parts && k.legal_shape && k.p[SLOT_PARTIALS] && j < k.parts && j < 8; j++)
            fprintf(stderr, "  partial %lld: count %.17Lg, [1 + group] %.17Lg, [1 + C + group] %.17Lg\n", (long long)j,
                    partial_at(k.p[SLOT_PARTIALS], c, j, 0), partial_at(k.p[SLOT_PARTIALS], c, j, 1 + group), partial_at(k.p[SLOT_PARTIALS], c, j, 1 + c + group));
        for (int i = 0; i < SLOTS; i++) if (k.p[i]) fprintf(stderr, "  %s at %p, %zu bytes\n", slot_names[i], k.p[i], sizes[i]);
    }
    bn_status expected = expected_status(&k), got = invoke(&k);
    if (got < 0 || got > BN_STATUS_INTERNAL) fail("status %d is not a bn_status", got);
    if (got != expected) fail("status %d (%s: %s), the SPEC's order of checks gives %d", got, bn_status_string(got), bn_last_error_message(), expected);
    for (int i = 0; i < SLOTS; i++)
        if (k.p[i] && !canaries_intact(i)) fail("%s: bytes next to the buffer were written", slot_names[i]);
    if (x_before && memcmp(x_before, k.p[SLOT_X], sizes[SLOT_X]) != 0 && k.p[SLOT_Y] != k.p[SLOT_X]) fail("x was written");
    if (dy_before && memcmp(dy_before, k.p[SLOT_DY], sizes[SLOT_DY]) != 0 && k.p[SLOT_DX] != k.p[SLOT_DY]) fail("dy was written");
    if (got != BN_STATUS_SUCCESS) {
        if (strlen(bn_last_error_message()) == 0) fail("an error without a message");
        for (int i = 0; i < SLOTS; i++)
            if (before[i] && memcmp(before[i], k.p[i], sizes[i]) != 0) fail("%s was written by a call that failed", slot_names[i]);
        if (k.in_place && x_before && memcmp(x_before, k.p[SLOT_X], sizes[SLOT_X]) != 0) fail("x (= y) was written by a call that failed");
        if (k.in_place && dy_before && memcmp(dy_before, k.p[SLOT_DY], sizes[SLOT_DY]) != 0) fail("dy (= dx) was written by a call that failed");
    } else if (sig->pipeline) {
        check_split(&k, &values);
    } else if (k.op == OP_PARTIAL_STATISTICS) {
        check_partial_statistics(&k, &values);
    } else if (k.op == OP_PARTIAL_SUMS) {
        check_partial_sums(&k, &values);
    } else if (sig->merge) {
        check_merge(&k, &values);
    } else if (!(sig->backward && k.op != OP_BN_FROZEN && !k.consistent_statistics)) {
        /* Accuracy of a training backward is judged given the statistics of its x: with arbitrary ones, |x̂| can
         * pass √C by any factor and amplify the element type's rounding of intermediate products without bound. */
        check_success(&k, &values);
    }
    current = NULL;
    for (int i = 0; i < SLOTS; i++) free(before[i]);
    free(x_before); free(dy_before);
    free(values.x); free(values.dy); free(values.gamma); free(values.beta); free(values.rm); free(values.rv);
    free(values.mean); free(values.invstd); free(values.r); free(values.d);
    return 0;
}
