/*
 * bnnative.h — C ABI of BnNative: Batch Normalization, Batch Renormalization and Layer Normalization on
 * CPUs, forward and backward. C99 and C++ clean. The contract in full: docs/contract.md.
 *
 * Emitted by tools/BnAbi from the library's [CExport] methods (src/BnNative/Abi); do not edit.
 *
 * Link with -lbnnative (pkg-config bnnative, or CMake find_package(BnNative) and BnNative::bnnative).
 * libbnnative.so picks, at its first call, the best instruction-set image the CPU runs (libbnnative_avx512.so,
 * libbnnative_avx2.so beside the real file of libbnnative.so, or its own baseline kernels); bn_get_isa() says
 * which. Environment: BNNATIVE_ISA=avx2|vector128|scalar forces a lower image, BNNATIVE_NUM_THREADS sets the
 * default thread count, BNNATIVE_VERBOSE=1 prints the image choice to stderr.
 *
 * Every function is thread-safe and reentrant. A call that fails returns a status other than
 * BN_STATUS_SUCCESS and has written nothing (no output, no running statistic); bn_last_error_message()
 * then says why, for the calling thread. In-place is allowed (y may be x, dx may be dy); partial overlap is
 * undefined. No pointer needs any alignment. Results are bitwise the same for any thread count.
 */
#ifndef BNNATIVE_H
#define BNNATIVE_H

#include <stdint.h>

#define BN_VERSION_MAJOR 0
#define BN_VERSION_MINOR 3
#define BN_VERSION_PATCH 0
/* MAJOR*10000 + MINOR*100 + PATCH; compare with bn_version_number() to detect a header/library mismatch */
#define BN_VERSION_NUMBER 300

#if defined(_WIN32)
#  define BN_API __declspec(dllimport)
#else
#  define BN_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tensors (docs/contract.md §1) --------------------------------------------------------------------- */

/* Where element (n, c, h, w) lives: NC n·C + c (h = w = 1); NCHW ((n·C + c)·H + h)·W + w; NHWC ((n·H + h)·W +
 * w)·C + c.
 */
typedef enum bn_layout {
    BN_LAYOUT_NC = 0,    /* rows of C: BatchNorm1d on (N, C), LayerNorm over the last axis */
    BN_LAYOUT_NCHW = 1,  /* channels first */
    BN_LAYOUT_NHWC = 2   /* channels last */
} bn_layout;

/* The element type of x, y, dy and dx. Per-channel parameters, statistics and their gradients are double for
 * F64 and float for every other dtype.
 */
typedef enum bn_dtype {
    BN_DTYPE_F32 = 0,    /* float */
    BN_DTYPE_F64 = 1,    /* double */
    BN_DTYPE_F16 = 2,    /* IEEE half precision */
    BN_DTYPE_BF16 = 3    /* bfloat16 (the top 16 bits of a float) */
} bn_dtype;

/* A tensor: dense and row-major in its layout (docs/contract.md §1). No alignment is required of any pointer. */
typedef struct bn_tensor_desc {
    int32_t layout;       /* a bn_layout */
    int32_t dtype;        /* a bn_dtype */
    int64_t n;            /* batch */
    int64_t c;            /* channels */
    int64_t h;            /* height (1 for NC; BatchNorm1d (N, C, L): 1, with w = L) */
    int64_t w;            /* width (1 for NC) */
} bn_tensor_desc;

/* ---- status (docs/contract.md §3) ---------------------------------------------------------------------- */

typedef int32_t bn_status;
#define BN_STATUS_SUCCESS 0       /* the call did what it says */
#define BN_STATUS_NULL_POINTER 1  /* a required pointer is NULL, or only one of running_mean/running_var */
#define BN_STATUS_BAD_SHAPE 2     /* a dimension < 1, NC with h or w != 1, or element or byte counts that overflow int64 */
#define BN_STATUS_BAD_ARGUMENT 3  /* eps <= 0 or not finite, momentum outside [0, 1] or NaN, rmax < 1, dmax < 0, NaN rmax/dmax, N·H·W < 2 in training */
#define BN_STATUS_UNSUPPORTED 4   /* an unknown layout or dtype, or a dtype this build lacks */
#define BN_STATUS_INTERNAL 5      /* anything unexpected (the process never aborts); nothing was written */

/**
 * Static text for a status code ("success", "bad shape", ...); the caller never frees it.
 *
 * @param status a bn_status; an unknown value gives "unknown status"
 * @return a NUL-terminated string that lives as long as the library
 */
BN_API const char* bn_status_string(bn_status status);

/**
 * Why the calling thread's last failing call failed: the function, the argument and the rule it broke (e.g.
 * "bn_batch_norm_forward_training: eps must be finite and > 0 (got 0)"). Kept per thread.
 *
 * @return "" until a call on this thread has failed; valid until this thread's next failing call
 */
BN_API const char* bn_last_error_message(void);

/**
 * The library's version as "MAJOR.MINOR.PATCH", equal to the BN_VERSION_* macros it was built with.
 *
 * @return a static NUL-terminated string
 */
BN_API const char* bn_version(void);

/**
 * The library's version as one number, MAJOR·10000 + MINOR·100 + PATCH (BN_VERSION_NUMBER at build time).
 *
 * @return e.g. 300 for 0.3.0; compare with BN_VERSION_NUMBER to detect a header/library mismatch
 */
BN_API uint32_t bn_version_number(void);

/**
 * The kernels in use: "avx512", "avx2", "neon", "vector128" or "scalar". The library picks the best image the
 * CPU and OS support (CPUID and XCR0), or a lower one that BNNATIVE_ISA names; BNNATIVE_VERBOSE=1 prints why.
 *
 * @return a static NUL-terminated string
 */
BN_API const char* bn_get_isa(void);

/**
 * Sets the threads every later call uses: the calling thread and n − 1 workers. Results are bitwise the same
 * for any count. The default is BNNATIVE_NUM_THREADS or one per processor. A worker the OS refuses (a process
 * limit) makes calls run with the workers that exist.
 *
 * @param n threads; n ≤ 0: one per processor; at most max(256, 4 × processors)
 * @return the count now in use (n, or the cap)
 */
BN_API int32_t bn_set_num_threads(int32_t n);

/**
 * The thread count calls use (see bn_set_num_threads).
 *
 * @return at least 1
 */
BN_API int32_t bn_get_num_threads(void);

/**
 * Batch Normalization forward in training mode (docs/contract.md §2.1). Per channel c, over its M = N·H·W
 * values: mean_c, var_c (biased), invstd_c = 1/√(var_c + eps), y = γ_c·(x − mean_c)·invstd_c + β_c. With
 * running statistics: running_mean ← (1 − momentum)·running_mean + momentum·mean_c and running_var ← (1 −
 * momentum)·running_var + momentum·var_c·M/(M − 1) (unbiased, as PyTorch); a cumulative average is momentum =
 * 1/(k + 1) at step k. A constant channel gives y = β exactly.
 *
 * @param desc         the tensor: layout, dtype, N, C, H, W (docs/contract.md §1)
 * @param x            input, N·C·H·W elements of desc's dtype in desc's layout
 * @param y            output, N·C·H·W elements; may be x (in place); partial overlap is undefined
 * @param gamma        C parameters (double for F64, float otherwise); NULL: γ = 1
 * @param beta         C parameters; NULL: β = 0
 * @param running_mean C values, read and updated; NULL together with running_var: not updated
 * @param running_var  C values, read and updated; NULL together with running_mean
 * @param momentum     weight of this batch in the running statistics, in [0, 1]
 * @param eps          added to the variance; finite and > 0
 * @param save_mean    C values written with mean_c, for the backward; may be NULL
 * @param save_invstd  C values written with invstd_c; may be NULL
 * @return SUCCESS; NULL_POINTER (desc, x or y NULL, or only one of running_mean/running_var); UNSUPPORTED;
 *         BAD_SHAPE; BAD_ARGUMENT (eps, momentum, N·H·W < 2). On any error nothing was written.
 */
BN_API bn_status bn_batch_norm_forward_training(const bn_tensor_desc* desc, const void* x, void* y, const
    void* gamma, const void* beta, void* running_mean, void* running_var, double momentum, double eps, void*
    save_mean, void* save_invstd);

/**
 * Batch Normalization forward in inference mode (docs/contract.md §2.1): y = γ_c·(x −
 * running_mean_c)/√(running_var_c + eps) + β_c.
 *
 * @param desc         the tensor: layout, dtype, N, C, H, W
 * @param x            input, N·C·H·W elements
 * @param y            output, N·C·H·W elements; may be x (in place)
 * @param gamma        C parameters; NULL: γ = 1
 * @param beta         C parameters; NULL: β = 0
 * @param running_mean C values; required
 * @param running_var  C values; required
 * @param eps          added to the variance; finite and > 0
 * @return SUCCESS; NULL_POINTER (desc, x, y, running_mean or running_var NULL); UNSUPPORTED; BAD_SHAPE;
 *         BAD_ARGUMENT (eps). On any error nothing was written.
 */
BN_API bn_status bn_batch_norm_forward_inference(const bn_tensor_desc* desc, const void* x, void* y, const
    void* gamma, const void* beta, const void* running_mean, const void* running_var, double eps);

/**
 * The gradient of the training forward (docs/contract.md §2.1) from the statistics it saved: dbeta_c = Σdy,
 * dgamma_c = Σdy·x̂ with x̂ = (x − save_mean_c)·save_invstd_c, dx = γ_c·invstd_c·(dy − dbeta_c/M −
 * x̂·dgamma_c/M). dgamma and dbeta are overwritten, not accumulated.
 *
 * @param desc        the tensor: layout, dtype, N, C, H, W
 * @param x           the forward's input, N·C·H·W elements
 * @param dy          gradient of the output, N·C·H·W elements
 * @param dx          gradient of the input, N·C·H·W elements, written; may be dy (in place); NULL: not
 *                    computed
 * @param gamma       C parameters; NULL: γ = 1
 * @param save_mean   C values saved by the forward; required
 * @param save_invstd C values saved by the forward; required
 * @param dgamma      C values written; may be NULL
 * @param dbeta       C values written; may be NULL
 * @return SUCCESS; NULL_POINTER (desc, x, dy, save_mean or save_invstd NULL); UNSUPPORTED; BAD_SHAPE. On any
 *         error nothing was written.
 */
BN_API bn_status bn_batch_norm_backward(const bn_tensor_desc* desc, const void* x, const void* dy, void* dx,
    const void* gamma, const void* save_mean, const void* save_invstd, void* dgamma, void* dbeta);

/**
 * The gradient of the inference forward, with frozen statistics (fine-tuning, docs/contract.md §2.1): dx =
 * dy·γ_c/√(running_var_c + eps), dbeta_c = Σdy, dgamma_c = Σdy·(x − running_mean_c)/√(running_var_c + eps).
 * dgamma and dbeta are overwritten.
 *
 * @param desc         the tensor: layout, dtype, N, C, H, W
 * @param x            the forward's input, N·C·H·W elements
 * @param dy           gradient of the output, N·C·H·W elements
 * @param dx           gradient of the input, N·C·H·W elements; may be dy (in place); NULL: not computed
 * @param gamma        C parameters; NULL: γ = 1
 * @param running_mean C values; required
 * @param running_var  C values; required
 * @param eps          added to the variance; finite and > 0
 * @param dgamma       C values written; may be NULL
 * @param dbeta        C values written; may be NULL
 * @return SUCCESS; NULL_POINTER (desc, x, dy, running_mean or running_var NULL); UNSUPPORTED; BAD_SHAPE;
 *         BAD_ARGUMENT (eps). On any error nothing was written.
 */
BN_API bn_status bn_batch_norm_backward_inference(const bn_tensor_desc* desc, const void* x, const void* dy,
    void* dx, const void* gamma, const void* running_mean, const void* running_var, double eps, void* dgamma,
    void* dbeta);

/**
 * Batch Renormalization forward in training mode (Ioffe 2017, docs/contract.md §2.2). With σ_B = √(var_c +
 * eps) and σ_run = √(running_var_c + eps) from the running statistics before this call: r_c =
 * clamp(σ_B/σ_run, 1/rmax, rmax), d_c = clamp((mean_c − running_mean_c)/σ_run, −dmax, dmax), y = γ_c·(x̂·r_c
 * + d_c) + β_c. The running statistics are then updated as in bn_batch_norm_forward_training. rmax = 1, dmax
 * = 0 gives Batch Normalization; inference after it is bn_batch_norm_forward_inference.
 *
 * @param desc         the tensor: layout, dtype, N, C, H, W
 * @param x            input, N·C·H·W elements
 * @param y            output, N·C·H·W elements; may be x (in place)
 * @param gamma        C parameters; NULL: γ = 1
 * @param beta         C parameters; NULL: β = 0
 * @param running_mean C values, read and updated; required
 * @param running_var  C values, read and updated; required
 * @param momentum     weight of this batch in the running statistics, in [0, 1]
 * @param eps          added to the variances; finite and > 0
 * @param rmax         limit of r, ≥ 1 (+∞: no clipping)
 * @param dmax         limit of |d|, ≥ 0 (+∞: no clipping)
 * @param save_mean    C values written with mean_c; may be NULL
 * @param save_invstd  C values written with 1/σ_B; may be NULL
 * @param save_r       C values written with r_c; may be NULL
 * @param save_d       C values written with d_c; may be NULL
 * @return SUCCESS; NULL_POINTER (desc, x, y, running_mean or running_var NULL); UNSUPPORTED; BAD_SHAPE;
 *         BAD_ARGUMENT (eps, momentum, rmax < 1, dmax < 0, NaN rmax/dmax, N·H·W < 2). On any error nothing
 *         was written.
 */
BN_API bn_status bn_batch_renorm_forward_training(const bn_tensor_desc* desc, const void* x, void* y, const
    void* gamma, const void* beta, void* running_mean, void* running_var, double momentum, double eps, double
    rmax, double dmax, void* save_mean, void* save_invstd, void* save_r, void* save_d);

/**
 * The gradient of the Batch Renormalization forward, with r and d constants (stop-gradient, as in the paper):
 * dbeta_c = Σdy, dgamma_c = r_c·Σdy·x̂ + d_c·Σdy, dx = γ_c·r_c·invstd_c·(dy − Σdy/M − x̂·Σdy·x̂/M).
 *
 * @param desc        the tensor: layout, dtype, N, C, H, W
 * @param x           the forward's input, N·C·H·W elements
 * @param dy          gradient of the output, N·C·H·W elements
 * @param dx          gradient of the input, N·C·H·W elements; may be dy (in place); NULL: not computed
 * @param gamma       C parameters; NULL: γ = 1
 * @param save_mean   C values saved by the forward; required
 * @param save_invstd C values saved by the forward (1/σ_B); required
 * @param save_r      C values of r saved by the forward; required
 * @param save_d      C values of d saved by the forward; required
 * @param dgamma      C values written; may be NULL
 * @param dbeta       C values written; may be NULL
 * @return SUCCESS; NULL_POINTER (desc, x, dy, save_mean, save_invstd, save_r or save_d NULL); UNSUPPORTED;
 *         BAD_SHAPE. On any error nothing was written.
 */
BN_API bn_status bn_batch_renorm_backward(const bn_tensor_desc* desc, const void* x, const void* dy, void* dx,
    const void* gamma, const void* save_mean, const void* save_invstd, const void* save_r, const void* save_d,
    void* dgamma, void* dbeta);

/**
 * Layer Normalization (docs/contract.md §2.3) over the C channels at each of the P = N·H·W positions (NC: the
 * transformer LayerNorm over rows of C; NHWC, NCHW: channels-last and channels-first LayerNorm): y = γ_c·(x −
 * mean_p)·invstd_p + β_c. A constant position gives y = β exactly.
 *
 * @param desc        the tensor: layout, dtype, N, C, H, W
 * @param x           input, N·C·H·W elements
 * @param y           output, N·C·H·W elements; may be x (in place)
 * @param gamma       C parameters (one per channel); NULL: γ = 1
 * @param beta        C parameters; NULL: β = 0
 * @param eps         added to the variance; finite and > 0
 * @param save_mean   P values (one per position p = n·H·W + h·W + w) written with mean_p; may be NULL
 * @param save_invstd P values written with invstd_p; may be NULL
 * @return SUCCESS; NULL_POINTER (desc, x or y NULL); UNSUPPORTED; BAD_SHAPE; BAD_ARGUMENT (eps). On any error
 *         nothing was written.
 */
BN_API bn_status bn_layer_norm_forward(const bn_tensor_desc* desc, const void* x, void* y, const void* gamma,
    const void* beta, double eps, void* save_mean, void* save_invstd);

/**
 * The gradient of Layer Normalization: with g = dy·γ_c, dx = invstd_p·(g − mean_c(g) − x̂·mean_c(g·x̂)),
 * dgamma_c = Σ_p dy·x̂, dbeta_c = Σ_p dy. dgamma and dbeta are overwritten.
 *
 * @param desc        the tensor: layout, dtype, N, C, H, W
 * @param x           the forward's input, N·C·H·W elements
 * @param dy          gradient of the output, N·C·H·W elements
 * @param dx          gradient of the input, N·C·H·W elements; may be dy (in place); NULL: not computed
 * @param gamma       C parameters; NULL: γ = 1
 * @param save_mean   P values saved by the forward; required
 * @param save_invstd P values saved by the forward; required
 * @param dgamma      C values written; may be NULL
 * @param dbeta       C values written; may be NULL
 * @return SUCCESS; NULL_POINTER (desc, x, dy, save_mean or save_invstd NULL); UNSUPPORTED; BAD_SHAPE. On any
 *         error nothing was written.
 */
BN_API bn_status bn_layer_norm_backward(const bn_tensor_desc* desc, const void* x, const void* dy, void* dx,
    const void* gamma, const void* save_mean, const void* save_invstd, void* dgamma, void* dbeta);

/**
 * The partial statistics of one part of a batch, for a forward split across processes: per channel, over the
 * part's M = N·H·W values, the mean and M2 = Σ(x − mean)² (never Σx²), in float64 whatever the dtype. Gather
 * the partials of all parts (e.g. MPI_Allgather) and merge them with bn_batch_norm_merge_statistics.
 *
 * @param desc    this part of the batch: layout, dtype, N, C, H, W
 * @param x       input, N·C·H·W elements
 * @param partial 2·C + 1 doubles written: [0] = M, [1 .. C] = mean_c, [C + 1 .. 2·C] = M2_c
 * @return SUCCESS; NULL_POINTER (desc, x or partial NULL); UNSUPPORTED; BAD_SHAPE. On any error nothing was
 *         written.
 */
BN_API bn_status bn_batch_norm_partial_statistics(const bn_tensor_desc* desc, const void* x, void* partial);

/**
 * The batch statistics of a forward split across processes, from the partials of all its parts: merged in
 * float64 in the order given (Chan et al.'s parallel formula: the mean about the largest part's, then M2 = Σ
 * M2_k + Σ M_k·(mean_k − mean)²), so every process that passes the same partials in the same order gets
 * bitwise the same result. Writes mean_c and invstd_c = 1/√(var_c + eps) for
 * bn_batch_norm_forward_with_statistics and the backward, and updates the running statistics as
 * bn_batch_norm_forward_training does, with the unbiased variance of the whole batch (M = the sum of the
 * counts). Parts with count 0 are skipped.
 *
 * @param dtype        the tensor's bn_dtype: the parameters are double for F64, float otherwise
 * @param channels     C, the channels of every part
 * @param parts        K, the partials given
 * @param partials     K·(2·C + 1) doubles: the partials of bn_batch_norm_partial_statistics, one after
 *                     another
 * @param running_mean C values, read and updated; NULL together with running_var: not updated
 * @param running_var  C values, read and updated; NULL together with running_mean
 * @param momentum     weight of this batch in the running statistics, in [0, 1]
 * @param eps          added to the variance; finite and > 0
 * @param mean         C values written with the batch mean
 * @param invstd       C values written with the batch's 1/√(var + eps)
 * @return SUCCESS; NULL_POINTER (partials, mean or invstd NULL, or only one of running_mean/running_var);
 *         UNSUPPORTED (dtype); BAD_SHAPE (channels or parts < 1, too large); BAD_ARGUMENT (eps, momentum, a
 *         count negative or not finite, fewer than 2 values per channel in all). On any error nothing was
 *         written.
 */
BN_API bn_status bn_batch_norm_merge_statistics(int32_t dtype, int64_t channels, int64_t parts, const void*
    partials, void* running_mean, void* running_var, double momentum, double eps, void* mean, void* invstd);

/**
 * Batch Renormalization's merge of the partials of all parts of a batch split across processes: the batch
 * statistics as bn_batch_norm_merge_statistics merges them, then r_c = clamp(σ_B/σ_run, 1/rmax, rmax) and d_c
 * = clamp((mean_c − running_mean_c)/σ_run, −dmax, dmax) from the running statistics before this call (σ_run =
 * √(running_var + eps)), which are then updated.
 *
 * @param dtype        the tensor's bn_dtype: the parameters are double for F64, float otherwise
 * @param channels     C, the channels of every part
 * @param parts        K, the partials given
 * @param partials     K·(2·C + 1) doubles: the partials of bn_batch_norm_partial_statistics, one after
 *                     another
 * @param running_mean C values, read and updated; required
 * @param running_var  C values, read and updated; required
 * @param momentum     weight of this batch in the running statistics, in [0, 1]
 * @param eps          added to the variances; finite and > 0
 * @param rmax         limit of r, ≥ 1 (+∞: no clipping)
 * @param dmax         limit of |d|, ≥ 0 (+∞: no clipping)
 * @param mean         C values written with the batch mean
 * @param invstd       C values written with 1/σ_B
 * @param r            C values written with r_c
 * @param d            C values written with d_c
 * @return SUCCESS; NULL_POINTER (partials, running_mean, running_var, mean, invstd, r or d NULL); UNSUPPORTED
 *         (dtype); BAD_SHAPE (channels or parts < 1, too large); BAD_ARGUMENT (eps, momentum, rmax, dmax, a
 *         count negative or not finite, fewer than 2 values per channel in all). On any error nothing was
 *         written.
 */
BN_API bn_status bn_batch_renorm_merge_statistics(int32_t dtype, int64_t channels, int64_t parts, const void*
    partials, void* running_mean, void* running_var, double momentum, double eps, double rmax, double dmax,
    void* mean, void* invstd, void* r, void* d);

/**
 * The forward of one part of a batch split across processes, with the merged statistics: y = γ_c·(x −
 * mean_c)·invstd_c + β_c.
 *
 * @param desc   this part of the batch: layout, dtype, N, C, H, W
 * @param x      input, N·C·H·W elements
 * @param y      output, N·C·H·W elements; may be x (in place)
 * @param gamma  C parameters; NULL: γ = 1
 * @param beta   C parameters; NULL: β = 0
 * @param mean   C values (bn_batch_norm_merge_statistics's); required
 * @param invstd C values (bn_batch_norm_merge_statistics's); required
 * @return SUCCESS; NULL_POINTER (desc, x, y, mean or invstd NULL); UNSUPPORTED; BAD_SHAPE. On any error
 *         nothing was written.
 */
BN_API bn_status bn_batch_norm_forward_with_statistics(const bn_tensor_desc* desc, const void* x, void* y,
    const void* gamma, const void* beta, const void* mean, const void* invstd);

/**
 * Batch Renormalization's forward of one part of a batch split across processes, with the merged statistics
 * and r, d (bn_batch_renorm_merge_statistics's): y = γ_c·((x − mean_c)·invstd_c·r_c + d_c) + β_c.
 *
 * @param desc   this part of the batch: layout, dtype, N, C, H, W
 * @param x      input, N·C·H·W elements
 * @param y      output, N·C·H·W elements; may be x (in place)
 * @param gamma  C parameters; NULL: γ = 1
 * @param beta   C parameters; NULL: β = 0
 * @param mean   C values; required
 * @param invstd C values (1/σ_B); required
 * @param r      C values; required
 * @param d      C values; required
 * @return SUCCESS; NULL_POINTER (desc, x, y, mean, invstd, r or d NULL); UNSUPPORTED; BAD_SHAPE. On any error
 *         nothing was written.
 */
BN_API bn_status bn_batch_renorm_forward_with_statistics(const bn_tensor_desc* desc, const void* x, void* y,
    const void* gamma, const void* beta, const void* mean, const void* invstd, const void* r, const void* d);

/**
 * The local reductions of the backward of one part of a batch split across processes: per channel, Σdy and
 * Σdy·(x − mean_c) over the part, in float64. Sum them over all parts (or gather them) and finish with
 * bn_batch_norm_backward_with_sums. Σdy and Σdy·(x − mean)·invstd are also this part's own dbeta and (Batch
 * Normalization) dgamma, the parameter gradients a data-parallel trainer averages.
 *
 * @param desc    this part of the batch: layout, dtype, N, C, H, W
 * @param x       the forward's input, N·C·H·W elements
 * @param dy      gradient of the output, N·C·H·W elements
 * @param mean    C values: the merged batch mean the forward used; required
 * @param partial 2·C + 1 doubles written: [0] = M of this part, [1 .. C] = Σdy, [C + 1 .. 2·C] = Σdy·(x −
 *                mean)
 * @return SUCCESS; NULL_POINTER (desc, x, dy, mean or partial NULL); UNSUPPORTED; BAD_SHAPE. On any error
 *         nothing was written.
 */
BN_API bn_status bn_batch_norm_backward_partial_sums(const bn_tensor_desc* desc, const void* x, const void*
    dy, const void* mean, void* partial);

/**
 * The backward of one part of a batch split across processes, from the sums of all parts: with M = Σ counts,
 * Σdy and Σdy·x̂ = invstd_c·Σdy·(x − mean_c) added over the partials in the order given, dx =
 * γ_c·invstd_c·(dy − Σdy/M − x̂·Σdy·x̂/M); dgamma_c = Σdy·x̂ and dbeta_c = Σdy of the partials given (of the
 * whole batch when all are given; of this part when only its own partial is).
 *
 * @param desc     this part of the batch: layout, dtype, N, C, H, W
 * @param x        the forward's input, N·C·H·W elements
 * @param dy       gradient of the output, N·C·H·W elements
 * @param dx       gradient of the input, N·C·H·W elements; may be dy (in place); NULL: not computed
 * @param gamma    C parameters; NULL: γ = 1
 * @param mean     C values the forward used; required
 * @param invstd   C values the forward used; required
 * @param parts    K, the partials given
 * @param partials K·(2·C + 1) doubles: bn_batch_norm_backward_partial_sums's partials, one after another (or
 *                 one, already summed)
 * @param dgamma   C values written; may be NULL
 * @param dbeta    C values written; may be NULL
 * @return SUCCESS; NULL_POINTER (desc, x, dy, mean, invstd or partials NULL); UNSUPPORTED; BAD_SHAPE (also
 *         parts < 1); BAD_ARGUMENT (a count negative or not finite, or all 0). On any error nothing was
 *         written.
 */
BN_API bn_status bn_batch_norm_backward_with_sums(const bn_tensor_desc* desc, const void* x, const void* dy,
    void* dx, const void* gamma, const void* mean, const void* invstd, int64_t parts, const void* partials,
    void* dgamma, void* dbeta);

/**
 * Batch Renormalization's backward of one part of a batch split across processes, r and d constants: with the
 * sums of all parts as in bn_batch_norm_backward_with_sums, dx = γ_c·r_c·invstd_c·(dy − Σdy/M − x̂·Σdy·x̂/M),
 * dgamma_c = r_c·Σdy·x̂ + d_c·Σdy, dbeta_c = Σdy (of the partials given).
 *
 * @param desc     this part of the batch: layout, dtype, N, C, H, W
 * @param x        the forward's input, N·C·H·W elements
 * @param dy       gradient of the output, N·C·H·W elements
 * @param dx       gradient of the input, N·C·H·W elements; may be dy (in place); NULL: not computed
 * @param gamma    C parameters; NULL: γ = 1
 * @param mean     C values the forward used; required
 * @param invstd   C values the forward used (1/σ_B); required
 * @param r        C values the forward used; required
 * @param d        C values the forward used; required
 * @param parts    K, the partials given
 * @param partials K·(2·C + 1) doubles: bn_batch_norm_backward_partial_sums's partials, one after another
 * @param dgamma   C values written; may be NULL
 * @param dbeta    C values written; may be NULL
 * @return SUCCESS; NULL_POINTER (desc, x, dy, mean, invstd, r, d or partials NULL); UNSUPPORTED; BAD_SHAPE
 *         (also parts < 1); BAD_ARGUMENT (a count negative or not finite, or all 0). On any error nothing was
 *         written.
 */
BN_API bn_status bn_batch_renorm_backward_with_sums(const bn_tensor_desc* desc, const void* x, const void* dy,
    void* dx, const void* gamma, const void* mean, const void* invstd, const void* r, const void* d, int64_t
    parts, const void* partials, void* dgamma, void* dbeta);

#ifdef __cplusplus
}
#endif

#endif /* BNNATIVE_H */
