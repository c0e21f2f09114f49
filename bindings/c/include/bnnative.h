/*
 * bnnative.h — C ABI of BnNative: Batch Normalization, Batch Renormalization and Layer Normalization
 * on CPUs. The contract is SPEC.md; this header is C99 and C++ clean.
 *
 * Link with -lbnnative (artifacts/lib/libbnnative.so). That library picks, at its first call, the best
 * instruction-set image the CPU can run (libbnnative_avx512.so, libbnnative_avx2.so beside it, or its
 * own baseline kernels); bn_get_isa() says which. BNNATIVE_ISA=avx2|vector128|scalar forces a lower one,
 * BNNATIVE_NUM_THREADS sets the default thread count.
 *
 * Every function is thread-safe. A call that fails returns a status other than BN_STATUS_SUCCESS and has
 * written nothing; bn_last_error_message() then tells why, for the calling thread.
 */
#ifndef BNNATIVE_H
#define BNNATIVE_H

#include <stdint.h>

#define BN_VERSION_MAJOR 0
#define BN_VERSION_MINOR 1
#define BN_VERSION_PATCH 0

#if defined(_WIN32)
#  define BN_API __declspec(dllimport)
#else
#  define BN_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tensors (SPEC §1) ------------------------------------------------------------------------------ */

typedef enum bn_layout { BN_LAYOUT_NC = 0, BN_LAYOUT_NCHW = 1, BN_LAYOUT_NHWC = 2 } bn_layout;
typedef enum bn_dtype  { BN_DTYPE_F32 = 0, BN_DTYPE_F64 = 1, BN_DTYPE_F16 = 2, BN_DTYPE_BF16 = 3 } bn_dtype;

/* Dense, row-major. NC needs h = w = 1. Per-channel vectors (gamma, beta, running and saved statistics,
 * dgamma, dbeta) are double for F64 and float otherwise. This build implements F32 and F64; F16 and
 * BF16 return BN_STATUS_UNSUPPORTED. */
typedef struct bn_tensor_desc {
    int32_t layout; /* bn_layout */
    int32_t dtype;  /* bn_dtype  */
    int64_t n, c, h, w;
} bn_tensor_desc;

/* ---- status (SPEC §3) -------------------------------------------------------------------------------- */

typedef int32_t bn_status;
#define BN_STATUS_SUCCESS       0
#define BN_STATUS_NULL_POINTER  1 /* a required pointer is NULL, or only one of running_mean/var */
#define BN_STATUS_BAD_SHAPE     2 /* a dimension < 1, NC with h or w != 1, sizes that overflow */
#define BN_STATUS_BAD_ARGUMENT  3 /* eps <= 0 or not finite, momentum outside [0,1] or NaN, M < 2 in training, ... */
#define BN_STATUS_UNSUPPORTED   4 /* unknown layout or dtype, or a dtype this build lacks */
#define BN_STATUS_INTERNAL      5 /* anything unexpected; the process never aborts */

BN_API const char* bn_status_string(bn_status s);   /* static text for a code */
BN_API const char* bn_last_error_message(void);     /* this thread's detail of its last failure ("" if none) */
BN_API const char* bn_version(void);                /* "MAJOR.MINOR.PATCH", equal to the macros above */
BN_API const char* bn_get_isa(void);                /* "avx512", "avx2", "neon", "vector128" or "scalar" */
BN_API int32_t     bn_set_num_threads(int32_t n);   /* n <= 0: one per processor; returns the count now in use */
BN_API int32_t     bn_get_num_threads(void);

/* ---- Batch Normalization (SPEC §2.1) ----------------------------------------------------------------- */

/* y = gamma*(x - mean)/sqrt(var + eps) + beta with batch statistics over (n, h, w). Updates running_mean/var
 * (both or neither; var unbiased) with momentum; save_mean/save_invstd may be NULL. Needs N*H*W >= 2. */
BN_API bn_status bn_batch_norm_forward_training(const bn_tensor_desc* desc, const void* x, void* y,
    const void* gamma, const void* beta, void* running_mean, void* running_var,
    double momentum, double eps, void* save_mean, void* save_invstd);

/* y = gamma*(x - running_mean)/sqrt(running_var + eps) + beta. */
BN_API bn_status bn_batch_norm_forward_inference(const bn_tensor_desc* desc, const void* x, void* y,
    const void* gamma, const void* beta, const void* running_mean, const void* running_var, double eps);

/* Gradient of the training forward from its saved statistics; dx, dgamma, dbeta may each be NULL. */
BN_API bn_status bn_batch_norm_backward(const bn_tensor_desc* desc, const void* x, const void* dy,
    void* dx, const void* gamma, const void* save_mean, const void* save_invstd,
    void* dgamma, void* dbeta);

/* Gradient of the inference forward (frozen statistics). */
BN_API bn_status bn_batch_norm_backward_inference(const bn_tensor_desc* desc, const void* x,
    const void* dy, void* dx, const void* gamma, const void* running_mean,
    const void* running_var, double eps, void* dgamma, void* dbeta);

/* ---- Batch Renormalization (SPEC §2.2) -------------------------------------------------------------- */

/* r = clamp(sigma_B/sigma_run, 1/rmax, rmax), d = clamp((mean - running_mean)/sigma_run, -dmax, dmax) from the
 * running statistics before the call; y = gamma*(xhat*r + d) + beta. running_mean/var are required and updated
 * as in BatchNorm. Needs rmax >= 1, dmax >= 0 (+inf: no clipping). save_* may each be NULL. Inference: bn_batch_norm_forward_inference. */
BN_API bn_status bn_batch_renorm_forward_training(const bn_tensor_desc* desc, const void* x, void* y,
    const void* gamma, const void* beta, void* running_mean, void* running_var,
    double momentum, double eps, double rmax, double dmax,
    void* save_mean, void* save_invstd, void* save_r, void* save_d);

/* Gradient with r and d as constants (stop-gradient, as in the paper). */
BN_API bn_status bn_batch_renorm_backward(const bn_tensor_desc* desc, const void* x, const void* dy,
    void* dx, const void* gamma, const void* save_mean, const void* save_invstd,
    const void* save_r, const void* save_d, void* dgamma, void* dbeta);

/* ---- Layer Normalization (SPEC §2.3) ------------------------------------------------------------------ */

/* Statistics over the C channels at each of the P = N*H*W positions (NC: rows of C; NHWC/NCHW: channels-last
 * and channels-first LayerNorm); per-channel gamma, beta. save_mean/save_invstd have P entries (may be NULL). */
BN_API bn_status bn_layer_norm_forward(const bn_tensor_desc* desc, const void* x, void* y,
    const void* gamma, const void* beta, double eps, void* save_mean, void* save_invstd);

BN_API bn_status bn_layer_norm_backward(const bn_tensor_desc* desc, const void* x, const void* dy,
    void* dx, const void* gamma, const void* save_mean, const void* save_invstd,
    void* dgamma, void* dbeta);

#ifdef __cplusplus
}
#endif

#endif /* BNNATIVE_H */
