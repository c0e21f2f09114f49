using System;
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

    private static int StatusFromException(Exception e)
    {
        NativeText.SetLastError($"internal error: {e.GetType().Name}: {e.Message}");
        return Status.Internal;
    }

    private static byte* TextFromException(Exception e) => NativeText.Of("\0"u8);

    // ---- utilities ------------------------------------------------------------------------------------

    [CExport("bn_status_string")]
    private static byte* StatusString(int status) => Status.Text(status);

    [CExport("bn_last_error_message")]
    private static byte* LastErrorMessage() => NativeText.LastError;

    /// <summary>Kept equal to BN_VERSION_MAJOR/MINOR/PATCH in bnnative.h (a test compares them).</summary>
    [CExport("bn_version")]
    private static byte* VersionString() => NativeText.Of("0.1.0\0"u8);

    [CExport("bn_get_isa")]
    private static byte* GetIsa() => KernelIsa.Name switch
    {
        "avx512" => NativeText.Of("avx512\0"u8),
        "avx2" => NativeText.Of("avx2\0"u8),
        "neon" => NativeText.Of("neon\0"u8),
        "vector128" => NativeText.Of("vector128\0"u8),
        _ => NativeText.Of("scalar\0"u8),
    };

    [CExport("bn_set_num_threads")]
    private static int SetNumThreads(int n) => WorkerPool.SetThreads(n);

    [CExport("bn_get_num_threads")]
    private static int GetNumThreads() => WorkerPool.Threads;

    // ---- Batch Normalization ----------------------------------------------------------------------------

    [CExport("bn_batch_norm_forward_training")]
    private static int BatchNormForwardTraining(TensorDesc* desc, void* x, void* y, void* gamma, void* beta,
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
        if (desc->DType == (int)DType.F32)
            BatchNormTraining<float>(desc, x, y, gamma, beta, runningMean, runningVar, momentum, eps, saveMean, saveInvstd);
        else
            BatchNormTraining<double>(desc, x, y, gamma, beta, runningMean, runningVar, momentum, eps, saveMean, saveInvstd);
        return Status.Success;
    }

    /// <summary>BatchNorm forward training, or with <paramref name="renorm"/> Batch Renormalization's.</summary>
    private static void BatchNormTraining<T>(TensorDesc* desc, void* x, void* y, void* gamma, void* beta,
        void* runningMean, void* runningVar, double momentum, double eps, void* saveMean, void* saveInvstd,
        bool renorm = false, double rmax = 1, double dmax = 0, void* saveR = null, void* saveD = null)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        var affine = new BatchNorm<T>.TrainingAffine
        {
            Gamma = (T*)gamma, Beta = (T*)beta, RunningMean = (T*)runningMean, RunningVar = (T*)runningVar,
            Eps = eps, Renorm = renorm, RMax = rmax, DMax = dmax,
        };
        BatchNorm<T>.ForwardTraining(new Geometry<T>(desc), (T*)x, (T*)y, affine, momentum, (T*)saveMean, (T*)saveInvstd, (T*)saveR, (T*)saveD);
    }

    [CExport("bn_batch_norm_forward_inference")]
    private static int BatchNormForwardInference(TensorDesc* desc, void* x, void* y, void* gamma, void* beta,
        void* runningMean, void* runningVar, double eps)
    {
        var check = ArgumentCheck.Forward(desc, x, y);
        check.Require(runningMean, "running_mean");
        check.Require(runningVar, "running_var");
        check.Tensor(desc);
        check.Epsilon(eps);
        if (check.Failed)
            return check.Finish("bn_batch_norm_forward_inference");
        if (desc->DType == (int)DType.F32)
            BatchNorm<float>.ForwardInference(new Geometry<float>(desc), (float*)x, (float*)y, (float*)gamma, (float*)beta,
                (float*)runningMean, (float*)runningVar, eps);
        else
            BatchNorm<double>.ForwardInference(new Geometry<double>(desc), (double*)x, (double*)y, (double*)gamma, (double*)beta,
                (double*)runningMean, (double*)runningVar, eps);
        return Status.Success;
    }

    [CExport("bn_batch_norm_backward")]
    private static int BatchNormBackward(TensorDesc* desc, void* x, void* dy, void* dx, void* gamma,
        void* saveMean, void* saveInvstd, void* dgamma, void* dbeta)
    {
        var check = ArgumentCheck.Backward(desc, x, dy);
        check.Require(saveMean, "save_mean");
        check.Require(saveInvstd, "save_invstd");
        check.Tensor(desc);
        if (check.Failed)
            return check.Finish("bn_batch_norm_backward");
        if (desc->DType == (int)DType.F32)
            BatchNorm<float>.Backward(new Geometry<float>(desc), (float*)x, (float*)dy, (float*)dx, (float*)gamma,
                (float*)saveMean, (float*)saveInvstd, (float*)dgamma, (float*)dbeta);
        else
            BatchNorm<double>.Backward(new Geometry<double>(desc), (double*)x, (double*)dy, (double*)dx, (double*)gamma,
                (double*)saveMean, (double*)saveInvstd, (double*)dgamma, (double*)dbeta);
        return Status.Success;
    }

    [CExport("bn_batch_norm_backward_inference")]
    private static int BatchNormBackwardInference(TensorDesc* desc, void* x, void* dy, void* dx, void* gamma,
        void* runningMean, void* runningVar, double eps, void* dgamma, void* dbeta)
    {
        var check = ArgumentCheck.Backward(desc, x, dy);
        check.Require(runningMean, "running_mean");
        check.Require(runningVar, "running_var");
        check.Tensor(desc);
        check.Epsilon(eps);
        if (check.Failed)
            return check.Finish("bn_batch_norm_backward_inference");
        if (desc->DType == (int)DType.F32)
            BatchNorm<float>.BackwardInference(new Geometry<float>(desc), (float*)x, (float*)dy, (float*)dx, (float*)gamma,
                (float*)runningMean, (float*)runningVar, eps, (float*)dgamma, (float*)dbeta);
        else
            BatchNorm<double>.BackwardInference(new Geometry<double>(desc), (double*)x, (double*)dy, (double*)dx, (double*)gamma,
                (double*)runningMean, (double*)runningVar, eps, (double*)dgamma, (double*)dbeta);
        return Status.Success;
    }

    // ---- Batch Renormalization ----------------------------------------------------------------------------

    [CExport("bn_batch_renorm_forward_training")]
    private static int BatchRenormForwardTraining(TensorDesc* desc, void* x, void* y, void* gamma, void* beta,
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
        if (desc->DType == (int)DType.F32)
            BatchNormTraining<float>(desc, x, y, gamma, beta, runningMean, runningVar, momentum, eps, saveMean, saveInvstd, true, rmax, dmax, saveR, saveD);
        else
            BatchNormTraining<double>(desc, x, y, gamma, beta, runningMean, runningVar, momentum, eps, saveMean, saveInvstd, true, rmax, dmax, saveR, saveD);
        return Status.Success;
    }

    [CExport("bn_batch_renorm_backward")]
    private static int BatchRenormBackward(TensorDesc* desc, void* x, void* dy, void* dx, void* gamma,
        void* saveMean, void* saveInvstd, void* saveR, void* saveD, void* dgamma, void* dbeta)
    {
        var check = ArgumentCheck.Backward(desc, x, dy);
        check.Require(saveMean, "save_mean");
        check.Require(saveInvstd, "save_invstd");
        check.Require(saveR, "save_r");
        check.Require(saveD, "save_d");
        check.Tensor(desc);
        if (check.Failed)
            return check.Finish("bn_batch_renorm_backward");
        if (desc->DType == (int)DType.F32)
            BatchNorm<float>.Backward(new Geometry<float>(desc), (float*)x, (float*)dy, (float*)dx, (float*)gamma,
                (float*)saveMean, (float*)saveInvstd, (float*)dgamma, (float*)dbeta, (float*)saveR, (float*)saveD);
        else
            BatchNorm<double>.Backward(new Geometry<double>(desc), (double*)x, (double*)dy, (double*)dx, (double*)gamma,
                (double*)saveMean, (double*)saveInvstd, (double*)dgamma, (double*)dbeta, (double*)saveR, (double*)saveD);
        return Status.Success;
    }

    // ---- Layer Normalization ------------------------------------------------------------------------------

    [CExport("bn_layer_norm_forward")]
    private static int LayerNormForward(TensorDesc* desc, void* x, void* y, void* gamma, void* beta, double eps,
        void* saveMean, void* saveInvstd)
    {
        var check = ArgumentCheck.Forward(desc, x, y);
        check.Tensor(desc);
        check.Epsilon(eps);
        if (check.Failed)
            return check.Finish("bn_layer_norm_forward");
        if (desc->DType == (int)DType.F32)
            LayerNorm<float>.Forward(desc, (float*)x, (float*)y, (float*)gamma, (float*)beta, eps, (float*)saveMean, (float*)saveInvstd);
        else
            LayerNorm<double>.Forward(desc, (double*)x, (double*)y, (double*)gamma, (double*)beta, eps, (double*)saveMean, (double*)saveInvstd);
        return Status.Success;
    }

    [CExport("bn_layer_norm_backward")]
    private static int LayerNormBackward(TensorDesc* desc, void* x, void* dy, void* dx, void* gamma,
        void* saveMean, void* saveInvstd, void* dgamma, void* dbeta)
    {
        var check = ArgumentCheck.Backward(desc, x, dy);
        check.Require(saveMean, "save_mean");
        check.Require(saveInvstd, "save_invstd");
        check.Tensor(desc);
        if (check.Failed)
            return check.Finish("bn_layer_norm_backward");
        if (desc->DType == (int)DType.F32)
            LayerNorm<float>.Backward(desc, (float*)x, (float*)dy, (float*)dx, (float*)gamma, (float*)saveMean, (float*)saveInvstd, (float*)dgamma, (float*)dbeta);
        else
            LayerNorm<double>.Backward(desc, (double*)x, (double*)dy, (double*)dx, (double*)gamma, (double*)saveMean, (double*)saveInvstd, (double*)dgamma, (double*)dbeta);
        return Status.Success;
    }
}
