using System;
using System.Numerics;
using BnNative.Kernels;
using BnNative.Operations;
using BnNative.Runtime;

namespace BnNative.Abi;

/// <summary>
/// The C ABI (SPEC §2, §3). Each [CExport] method checks every argument in the SPEC's order before it
/// writes anything, then runs the operation for the dtype. BnGenerator wraps each in an
/// [UnmanagedCallersOnly] export that catches every exception (one escaping would abort the host) and,
/// in the front library, forwards to the image that <see cref="ImageSelection"/> chose.
/// </summary>
internal static unsafe partial class CApi
{
    /// <summary>Addresses of the chosen image's exports, in <c>EntryPoints</c> order; null: run here.</summary>
    internal static nint* ImageTable => Forwarding.Table;

    // A nested holder: its initializer runs on first use, after CApi's own (generated) EntryPoints exists.
    private static class Forwarding
    {
        public static readonly nint* Table = ImageSelection.Load(EntryPoints);
    }

    // Every call that runs library code is counted, so that fork() waits until none is inside (CallGate).
    private static void EnterCall() => CallGate.Enter();

    private static void ExitCall() => CallGate.Exit();

    private static int StatusFromException(Exception e)
    {
        NativeText.SetLastError($"internal error: {e.GetType().Name}: {e.Message}");
        return Status.Internal;
    }

    private static byte* TextFromException(Exception e) => NativeText.Of("\0"u8);

    // ---- utilities ------------------------------------------------------------------------------------

    /// <summary>Static text for a status code ("success", "bad shape", ...); the caller never frees it.</summary>
    /// <param name="status">a bn_status; an unknown value gives "unknown status"</param>
    /// <returns>a NUL-terminated string that lives as long as the library</returns>
    [CExport("bn_status_string")]
    private static byte* StatusString(int status) => Status.Text(status);

    /// <summary>
    /// Why the calling thread's last failing call failed: the function, the argument and the rule it broke
    /// (e.g. "bn_batch_norm_forward_training: eps must be finite and > 0 (got 0)"). Kept per thread.
    /// </summary>
    /// <returns>"" until a call on this thread has failed; valid until this thread's next failing call</returns>
    [CExport("bn_last_error_message")]
    private static byte* LastErrorMessage() => NativeText.LastError;

    /// <summary>The library's version as "MAJOR.MINOR.PATCH", equal to the BN_VERSION_* macros it was built with.</summary>
    /// <returns>a static NUL-terminated string</returns>
    [CExport("bn_version")]
    private static byte* VersionString() => NativeText.Of(Version.Text);

    /// <summary>The library's version as one number, MAJOR·10000 + MINOR·100 + PATCH (BN_VERSION_NUMBER at build time).</summary>
    /// <returns>e.g. 300 for 0.3.0; compare with BN_VERSION_NUMBER to detect a header/library mismatch</returns>
    [CExport("bn_version_number", Returns = "uint32_t")]
    private static int VersionNumber() => Version.Number;

    /// <summary>
    /// The kernels in use: "avx512", "avx2", "neon", "vector128" or "scalar". The library picks the best image the
    /// CPU and OS support (CPUID and XCR0), or a lower one that BNNATIVE_ISA names; BNNATIVE_VERBOSE=1 prints why.
    /// </summary>
    /// <returns>a static NUL-terminated string</returns>
    [CExport("bn_get_isa")]
    private static byte* GetIsa() => KernelIsa.Name switch
    {
        "avx512" => NativeText.Of("avx512\0"u8),
        "avx2" => NativeText.Of("avx2\0"u8),
        "neon" => NativeText.Of("neon\0"u8),
        "vector128" => NativeText.Of("vector128\0"u8),
        _ => NativeText.Of("scalar\0"u8),
    };

    /// <summary>
    /// Sets the threads every later call uses: the calling thread and n − 1 workers. Results are bitwise the same
    /// for any count. The default is BNNATIVE_NUM_THREADS or one per processor. A worker the OS refuses (a process
    /// limit) makes calls run with the workers that exist.
    /// </summary>
    /// <param name="n">threads; n ≤ 0: one per processor; at most max(256, 4 × processors)</param>
    /// <returns>the count now in use (n, or the cap)</returns>
    [CExport("bn_set_num_threads", Returns = "int32_t")]
    private static int SetNumThreads(int n) => WorkerPool.SetThreads(n);

    /// <summary>The thread count calls use (see bn_set_num_threads).</summary>
    /// <returns>at least 1</returns>
    [CExport("bn_get_num_threads", Returns = "int32_t")]
    private static int GetNumThreads() => WorkerPool.Threads;

    // ---- Batch Normalization ----------------------------------------------------------------------------

    /// <summary>
    /// Batch Normalization forward in training mode (docs/contract.md §2.1). Per channel c, over its M = N·H·W values:
    /// mean_c, var_c (biased), invstd_c = 1/√(var_c + eps), y = γ_c·(x − mean_c)·invstd_c + β_c.
    /// With running statistics: running_mean ← (1 − momentum)·running_mean + momentum·mean_c and
    /// running_var ← (1 − momentum)·running_var + momentum·var_c·M/(M − 1) (unbiased, as PyTorch); a cumulative
    /// average is momentum = 1/(k + 1) at step k. A constant channel gives y = β exactly.
    /// </summary>
    /// <param name="desc">the tensor: layout, dtype, N, C, H, W (docs/contract.md §1)</param>
    /// <param name="x">input, N·C·H·W elements of desc's dtype in desc's layout</param>
    /// <param name="y">output, N·C·H·W elements; may be x (in place); partial overlap is undefined</param>
    /// <param name="gamma">C parameters (double for F64, float otherwise); NULL: γ = 1</param>
    /// <param name="beta">C parameters; NULL: β = 0</param>
    /// <param name="runningMean">C values, read and updated; NULL together with running_var: not updated</param>
    /// <param name="runningVar">C values, read and updated; NULL together with running_mean</param>
    /// <param name="momentum">weight of this batch in the running statistics, in [0, 1]</param>
    /// <param name="eps">added to the variance; finite and &gt; 0</param>
    /// <param name="saveMean">C values written with mean_c, for the backward; may be NULL</param>
    /// <param name="saveInvstd">C values written with invstd_c; may be NULL</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x or y NULL, or only one of running_mean/running_var); UNSUPPORTED;
    /// BAD_SHAPE; BAD_ARGUMENT (eps, momentum, N·H·W &lt; 2). On any error nothing was written.</returns>
    [CExport("bn_batch_norm_forward_training")]
    private static int BatchNormForwardTraining(TensorDesc* desc, [CConst] void* x, void* y, [CConst] void* gamma, [CConst] void* beta,
        void* runningMean, void* runningVar, double momentum, double eps, void* saveMean, void* saveInvstd)
    {
        var check = ArgumentCheck.Forward(desc, x, y);
        check.RequireBothOrNeither(runningMean, runningVar, "running_mean", "running_var");
        check.Tensor(desc);
        check.Epsilon(eps);
        check.Momentum(momentum);
        check.TrainingBatch(desc);
        if (check.Failed)
            return check.Finish("bn_batch_norm_forward_training");
        var call = new ForwardTrainingCall
        {
            X = x, Y = y, Gamma = gamma, Beta = beta, RunningMean = runningMean, RunningVar = runningVar,
            Momentum = momentum, Eps = eps, SaveMean = saveMean, SaveInvstd = saveInvstd,
        };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    /// <summary>BatchNorm forward training, or with <see cref="Renorm"/> Batch Renormalization's.</summary>
    private struct ForwardTrainingCall : IDTypeCall
    {
        public void* X, Y, Gamma, Beta, RunningMean, RunningVar, SaveMean, SaveInvstd, SaveR, SaveD;
        public double Momentum, Eps, RMax, DMax;
        public bool Renorm;

        public readonly void Run<TElement, T>(in Shape shape) where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>
        {
            var affine = new BatchNorm<TElement, T>.TrainingAffine
            {
                Gamma = (T*)Gamma, Beta = (T*)Beta, RunningMean = (T*)RunningMean, RunningVar = (T*)RunningVar,
                Eps = Eps, Renorm = Renorm, RMax = RMax, DMax = DMax, // RMax and DMax are read only with Renorm
            };
            BatchNorm<TElement, T>.ForwardTraining(new Geometry<TElement>(shape), (TElement*)X, (TElement*)Y, affine, Momentum,
                (T*)SaveMean, (T*)SaveInvstd, (T*)SaveR, (T*)SaveD);
        }
    }

    /// <summary>
    /// Batch Normalization forward in inference mode (docs/contract.md §2.1): y = γ_c·(x − running_mean_c)/√(running_var_c + eps) + β_c.
    /// </summary>
    /// <param name="desc">the tensor: layout, dtype, N, C, H, W</param>
    /// <param name="x">input, N·C·H·W elements</param>
    /// <param name="y">output, N·C·H·W elements; may be x (in place)</param>
    /// <param name="gamma">C parameters; NULL: γ = 1</param>
    /// <param name="beta">C parameters; NULL: β = 0</param>
    /// <param name="runningMean">C values; required</param>
    /// <param name="runningVar">C values; required</param>
    /// <param name="eps">added to the variance; finite and &gt; 0</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x, y, running_mean or running_var NULL); UNSUPPORTED; BAD_SHAPE;
    /// BAD_ARGUMENT (eps). On any error nothing was written.</returns>
    [CExport("bn_batch_norm_forward_inference")]
    private static int BatchNormForwardInference(TensorDesc* desc, [CConst] void* x, void* y, [CConst] void* gamma, [CConst] void* beta,
        [CConst] void* runningMean, [CConst] void* runningVar, double eps)
    {
        var check = ArgumentCheck.Forward(desc, x, y);
        check.Require(runningMean, "running_mean");
        check.Require(runningVar, "running_var");
        check.Tensor(desc);
        check.Epsilon(eps);
        if (check.Failed)
            return check.Finish("bn_batch_norm_forward_inference");
        var call = new ForwardInferenceCall { X = x, Y = y, Gamma = gamma, Beta = beta, RunningMean = runningMean, RunningVar = runningVar, Eps = eps };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    private struct ForwardInferenceCall : IDTypeCall
    {
        public void* X, Y, Gamma, Beta, RunningMean, RunningVar;
        public double Eps;

        public readonly void Run<TElement, T>(in Shape shape) where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
            BatchNorm<TElement, T>.ForwardInference(new Geometry<TElement>(shape), (TElement*)X, (TElement*)Y, (T*)Gamma, (T*)Beta,
                (T*)RunningMean, (T*)RunningVar, Eps);
    }

    /// <summary>
    /// The gradient of the training forward (docs/contract.md §2.1) from the statistics it saved: dbeta_c = Σdy,
    /// dgamma_c = Σdy·x̂ with x̂ = (x − save_mean_c)·save_invstd_c, dx = γ_c·invstd_c·(dy − dbeta_c/M − x̂·dgamma_c/M).
    /// dgamma and dbeta are overwritten, not accumulated.
    /// </summary>
    /// <param name="desc">the tensor: layout, dtype, N, C, H, W</param>
    /// <param name="x">the forward's input, N·C·H·W elements</param>
    /// <param name="dy">gradient of the output, N·C·H·W elements</param>
    /// <param name="dx">gradient of the input, N·C·H·W elements, written; may be dy (in place); NULL: not computed</param>
    /// <param name="gamma">C parameters; NULL: γ = 1</param>
    /// <param name="saveMean">C values saved by the forward; required</param>
    /// <param name="saveInvstd">C values saved by the forward; required</param>
    /// <param name="dgamma">C values written; may be NULL</param>
    /// <param name="dbeta">C values written; may be NULL</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x, dy, save_mean or save_invstd NULL); UNSUPPORTED; BAD_SHAPE.
    /// On any error nothing was written.</returns>
    [CExport("bn_batch_norm_backward")]
    private static int BatchNormBackward(TensorDesc* desc, [CConst] void* x, [CConst] void* dy, void* dx, [CConst] void* gamma,
        [CConst] void* saveMean, [CConst] void* saveInvstd, void* dgamma, void* dbeta)
    {
        var check = ArgumentCheck.Backward(desc, x, dy);
        check.Require(saveMean, "save_mean");
        check.Require(saveInvstd, "save_invstd");
        check.Tensor(desc);
        if (check.Failed)
            return check.Finish("bn_batch_norm_backward");
        var call = new BackwardCall { X = x, Dy = dy, Dx = dx, Gamma = gamma, SaveMean = saveMean, SaveInvstd = saveInvstd, Dgamma = dgamma, Dbeta = dbeta };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    /// <summary>BatchNorm's backward, or with save_r and save_d Batch Renormalization's.</summary>
    private struct BackwardCall : IDTypeCall
    {
        public void* X, Dy, Dx, Gamma, SaveMean, SaveInvstd, Dgamma, Dbeta, SaveR, SaveD;

        public readonly void Run<TElement, T>(in Shape shape) where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
            BatchNorm<TElement, T>.Backward(new Geometry<TElement>(shape), (TElement*)X, (TElement*)Dy, (TElement*)Dx, (T*)Gamma,
                (T*)SaveMean, (T*)SaveInvstd, (T*)Dgamma, (T*)Dbeta, (T*)SaveR, (T*)SaveD);
    }

    /// <summary>
    /// The gradient of the inference forward, with frozen statistics (fine-tuning, docs/contract.md §2.1):
    /// dx = dy·γ_c/√(running_var_c + eps), dbeta_c = Σdy, dgamma_c = Σdy·(x − running_mean_c)/√(running_var_c + eps).
    /// dgamma and dbeta are overwritten.
    /// </summary>
    /// <param name="desc">the tensor: layout, dtype, N, C, H, W</param>
    /// <param name="x">the forward's input, N·C·H·W elements</param>
    /// <param name="dy">gradient of the output, N·C·H·W elements</param>
    /// <param name="dx">gradient of the input, N·C·H·W elements; may be dy (in place); NULL: not computed</param>
    /// <param name="gamma">C parameters; NULL: γ = 1</param>
    /// <param name="runningMean">C values; required</param>
    /// <param name="runningVar">C values; required</param>
    /// <param name="eps">added to the variance; finite and &gt; 0</param>
    /// <param name="dgamma">C values written; may be NULL</param>
    /// <param name="dbeta">C values written; may be NULL</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x, dy, running_mean or running_var NULL); UNSUPPORTED; BAD_SHAPE;
    /// BAD_ARGUMENT (eps). On any error nothing was written.</returns>
    [CExport("bn_batch_norm_backward_inference")]
    private static int BatchNormBackwardInference(TensorDesc* desc, [CConst] void* x, [CConst] void* dy, void* dx, [CConst] void* gamma,
        [CConst] void* runningMean, [CConst] void* runningVar, double eps, void* dgamma, void* dbeta)
    {
        var check = ArgumentCheck.Backward(desc, x, dy);
        check.Require(runningMean, "running_mean");
        check.Require(runningVar, "running_var");
        check.Tensor(desc);
        check.Epsilon(eps);
        if (check.Failed)
            return check.Finish("bn_batch_norm_backward_inference");
        var call = new BackwardInferenceCall
        {
            X = x, Dy = dy, Dx = dx, Gamma = gamma, RunningMean = runningMean, RunningVar = runningVar, Eps = eps, Dgamma = dgamma, Dbeta = dbeta,
        };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    private struct BackwardInferenceCall : IDTypeCall
    {
        public void* X, Dy, Dx, Gamma, RunningMean, RunningVar, Dgamma, Dbeta;
        public double Eps;

        public readonly void Run<TElement, T>(in Shape shape) where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
            BatchNorm<TElement, T>.BackwardInference(new Geometry<TElement>(shape), (TElement*)X, (TElement*)Dy, (TElement*)Dx, (T*)Gamma,
                (T*)RunningMean, (T*)RunningVar, Eps, (T*)Dgamma, (T*)Dbeta);
    }

    // ---- Batch Renormalization ----------------------------------------------------------------------------

    /// <summary>
    /// Batch Renormalization forward in training mode (Ioffe 2017, docs/contract.md §2.2). With σ_B = √(var_c + eps) and
    /// σ_run = √(running_var_c + eps) from the running statistics before this call: r_c = clamp(σ_B/σ_run, 1/rmax, rmax),
    /// d_c = clamp((mean_c − running_mean_c)/σ_run, −dmax, dmax), y = γ_c·(x̂·r_c + d_c) + β_c. The running statistics
    /// are then updated as in bn_batch_norm_forward_training. rmax = 1, dmax = 0 gives Batch Normalization; inference
    /// after it is bn_batch_norm_forward_inference.
    /// </summary>
    /// <param name="desc">the tensor: layout, dtype, N, C, H, W</param>
    /// <param name="x">input, N·C·H·W elements</param>
    /// <param name="y">output, N·C·H·W elements; may be x (in place)</param>
    /// <param name="gamma">C parameters; NULL: γ = 1</param>
    /// <param name="beta">C parameters; NULL: β = 0</param>
    /// <param name="runningMean">C values, read and updated; required</param>
    /// <param name="runningVar">C values, read and updated; required</param>
    /// <param name="momentum">weight of this batch in the running statistics, in [0, 1]</param>
    /// <param name="eps">added to the variances; finite and &gt; 0</param>
    /// <param name="rmax">limit of r, ≥ 1 (+∞: no clipping)</param>
    /// <param name="dmax">limit of |d|, ≥ 0 (+∞: no clipping)</param>
    /// <param name="saveMean">C values written with mean_c; may be NULL</param>
    /// <param name="saveInvstd">C values written with 1/σ_B; may be NULL</param>
    /// <param name="saveR">C values written with r_c; may be NULL</param>
    /// <param name="saveD">C values written with d_c; may be NULL</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x, y, running_mean or running_var NULL); UNSUPPORTED; BAD_SHAPE;
    /// BAD_ARGUMENT (eps, momentum, rmax &lt; 1, dmax &lt; 0, NaN rmax/dmax, N·H·W &lt; 2). On any error nothing was written.</returns>
    [CExport("bn_batch_renorm_forward_training")]
    private static int BatchRenormForwardTraining(TensorDesc* desc, [CConst] void* x, void* y, [CConst] void* gamma, [CConst] void* beta,
        void* runningMean, void* runningVar, double momentum, double eps, double rmax, double dmax,
        void* saveMean, void* saveInvstd, void* saveR, void* saveD)
    {
        var check = ArgumentCheck.Forward(desc, x, y);
        check.Require(runningMean, "running_mean");
        check.Require(runningVar, "running_var");
        check.Tensor(desc);
        check.Epsilon(eps);
        check.Momentum(momentum);
        check.RenormLimits(rmax, dmax);
        check.TrainingBatch(desc);
        if (check.Failed)
            return check.Finish("bn_batch_renorm_forward_training");
        var call = new ForwardTrainingCall
        {
            X = x, Y = y, Gamma = gamma, Beta = beta, RunningMean = runningMean, RunningVar = runningVar,
            Momentum = momentum, Eps = eps, SaveMean = saveMean, SaveInvstd = saveInvstd,
            Renorm = true, RMax = rmax, DMax = dmax, SaveR = saveR, SaveD = saveD,
        };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    /// <summary>
    /// The gradient of the Batch Renormalization forward, with r and d constants (stop-gradient, as in the paper):
    /// dbeta_c = Σdy, dgamma_c = r_c·Σdy·x̂ + d_c·Σdy, dx = γ_c·r_c·invstd_c·(dy − Σdy/M − x̂·Σdy·x̂/M).
    /// </summary>
    /// <param name="desc">the tensor: layout, dtype, N, C, H, W</param>
    /// <param name="x">the forward's input, N·C·H·W elements</param>
    /// <param name="dy">gradient of the output, N·C·H·W elements</param>
    /// <param name="dx">gradient of the input, N·C·H·W elements; may be dy (in place); NULL: not computed</param>
    /// <param name="gamma">C parameters; NULL: γ = 1</param>
    /// <param name="saveMean">C values saved by the forward; required</param>
    /// <param name="saveInvstd">C values saved by the forward (1/σ_B); required</param>
    /// <param name="saveR">C values of r saved by the forward; required</param>
    /// <param name="saveD">C values of d saved by the forward; required</param>
    /// <param name="dgamma">C values written; may be NULL</param>
    /// <param name="dbeta">C values written; may be NULL</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x, dy, save_mean, save_invstd, save_r or save_d NULL); UNSUPPORTED;
    /// BAD_SHAPE. On any error nothing was written.</returns>
    [CExport("bn_batch_renorm_backward")]
    private static int BatchRenormBackward(TensorDesc* desc, [CConst] void* x, [CConst] void* dy, void* dx, [CConst] void* gamma,
        [CConst] void* saveMean, [CConst] void* saveInvstd, [CConst] void* saveR, [CConst] void* saveD, void* dgamma, void* dbeta)
    {
        var check = ArgumentCheck.Backward(desc, x, dy);
        check.Require(saveMean, "save_mean");
        check.Require(saveInvstd, "save_invstd");
        check.Require(saveR, "save_r");
        check.Require(saveD, "save_d");
        check.Tensor(desc);
        if (check.Failed)
            return check.Finish("bn_batch_renorm_backward");
        var call = new BackwardCall
        {
            X = x, Dy = dy, Dx = dx, Gamma = gamma, SaveMean = saveMean, SaveInvstd = saveInvstd, Dgamma = dgamma, Dbeta = dbeta,
            SaveR = saveR, SaveD = saveD,
        };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    // ---- Layer Normalization ------------------------------------------------------------------------------

    /// <summary>
    /// Layer Normalization (docs/contract.md §2.3) over the C channels at each of the P = N·H·W positions (NC: the transformer
    /// LayerNorm over rows of C; NHWC, NCHW: channels-last and channels-first LayerNorm):
    /// y = γ_c·(x − mean_p)·invstd_p + β_c. A constant position gives y = β exactly.
    /// </summary>
    /// <param name="desc">the tensor: layout, dtype, N, C, H, W</param>
    /// <param name="x">input, N·C·H·W elements</param>
    /// <param name="y">output, N·C·H·W elements; may be x (in place)</param>
    /// <param name="gamma">C parameters (one per channel); NULL: γ = 1</param>
    /// <param name="beta">C parameters; NULL: β = 0</param>
    /// <param name="eps">added to the variance; finite and &gt; 0</param>
    /// <param name="saveMean">P values (one per position p = n·H·W + h·W + w) written with mean_p; may be NULL</param>
    /// <param name="saveInvstd">P values written with invstd_p; may be NULL</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x or y NULL); UNSUPPORTED; BAD_SHAPE; BAD_ARGUMENT (eps).
    /// On any error nothing was written.</returns>
    [CExport("bn_layer_norm_forward")]
    private static int LayerNormForward(TensorDesc* desc, [CConst] void* x, void* y, [CConst] void* gamma, [CConst] void* beta, double eps,
        void* saveMean, void* saveInvstd)
    {
        var check = ArgumentCheck.Forward(desc, x, y);
        check.Tensor(desc);
        check.Epsilon(eps);
        if (check.Failed)
            return check.Finish("bn_layer_norm_forward");
        var call = new LayerNormForwardCall { X = x, Y = y, Gamma = gamma, Beta = beta, Eps = eps, SaveMean = saveMean, SaveInvstd = saveInvstd };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    private struct LayerNormForwardCall : IDTypeCall
    {
        public void* X, Y, Gamma, Beta, SaveMean, SaveInvstd;
        public double Eps;

        public readonly void Run<TElement, T>(in Shape shape) where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
            LayerNorm<TElement, T>.Forward(shape, (TElement*)X, (TElement*)Y, (T*)Gamma, (T*)Beta, Eps, (T*)SaveMean, (T*)SaveInvstd);
    }

    /// <summary>
    /// The gradient of Layer Normalization: with g = dy·γ_c, dx = invstd_p·(g − mean_c(g) − x̂·mean_c(g·x̂)),
    /// dgamma_c = Σ_p dy·x̂, dbeta_c = Σ_p dy. dgamma and dbeta are overwritten.
    /// </summary>
    /// <param name="desc">the tensor: layout, dtype, N, C, H, W</param>
    /// <param name="x">the forward's input, N·C·H·W elements</param>
    /// <param name="dy">gradient of the output, N·C·H·W elements</param>
    /// <param name="dx">gradient of the input, N·C·H·W elements; may be dy (in place); NULL: not computed</param>
    /// <param name="gamma">C parameters; NULL: γ = 1</param>
    /// <param name="saveMean">P values saved by the forward; required</param>
    /// <param name="saveInvstd">P values saved by the forward; required</param>
    /// <param name="dgamma">C values written; may be NULL</param>
    /// <param name="dbeta">C values written; may be NULL</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x, dy, save_mean or save_invstd NULL); UNSUPPORTED; BAD_SHAPE.
    /// On any error nothing was written.</returns>
    [CExport("bn_layer_norm_backward")]
    private static int LayerNormBackward(TensorDesc* desc, [CConst] void* x, [CConst] void* dy, void* dx, [CConst] void* gamma,
        [CConst] void* saveMean, [CConst] void* saveInvstd, void* dgamma, void* dbeta)
    {
        var check = ArgumentCheck.Backward(desc, x, dy);
        check.Require(saveMean, "save_mean");
        check.Require(saveInvstd, "save_invstd");
        check.Tensor(desc);
        if (check.Failed)
            return check.Finish("bn_layer_norm_backward");
        var call = new LayerNormBackwardCall { X = x, Dy = dy, Dx = dx, Gamma = gamma, SaveMean = saveMean, SaveInvstd = saveInvstd, Dgamma = dgamma, Dbeta = dbeta };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    private struct LayerNormBackwardCall : IDTypeCall
    {
        public void* X, Dy, Dx, Gamma, SaveMean, SaveInvstd, Dgamma, Dbeta;

        public readonly void Run<TElement, T>(in Shape shape) where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
            LayerNorm<TElement, T>.Backward(shape, (TElement*)X, (TElement*)Dy, (TElement*)Dx, (T*)Gamma, (T*)SaveMean, (T*)SaveInvstd, (T*)Dgamma, (T*)Dbeta);
    }
}
