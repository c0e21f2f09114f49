using BnNative.Interop;
using Xunit;

namespace BnNative.Tests;

/// <summary>The four BatchNorm calls on <see cref="NativeTensor"/>s (null = NULL pointer).</summary>
public static unsafe class Bn
{
    public static BnStatus ForwardTraining(BnLibrary lib, BnTensorDesc d, NativeTensor? x, NativeTensor? y, NativeTensor? gamma, NativeTensor? beta,
        NativeTensor? runningMean, NativeTensor? runningVar, double momentum, double eps, NativeTensor? saveMean, NativeTensor? saveInvstd) =>
        lib.BatchNormForwardTraining(&d, NativeTensor.Ptr(x), NativeTensor.Ptr(y), NativeTensor.Ptr(gamma), NativeTensor.Ptr(beta),
            NativeTensor.Ptr(runningMean), NativeTensor.Ptr(runningVar), momentum, eps, NativeTensor.Ptr(saveMean), NativeTensor.Ptr(saveInvstd));

    public static BnStatus ForwardInference(BnLibrary lib, BnTensorDesc d, NativeTensor? x, NativeTensor? y, NativeTensor? gamma, NativeTensor? beta,
        NativeTensor? runningMean, NativeTensor? runningVar, double eps) =>
        lib.BatchNormForwardInference(&d, NativeTensor.Ptr(x), NativeTensor.Ptr(y), NativeTensor.Ptr(gamma), NativeTensor.Ptr(beta),
            NativeTensor.Ptr(runningMean), NativeTensor.Ptr(runningVar), eps);

    public static BnStatus Backward(BnLibrary lib, BnTensorDesc d, NativeTensor? x, NativeTensor? dy, NativeTensor? dx, NativeTensor? gamma,
        NativeTensor? saveMean, NativeTensor? saveInvstd, NativeTensor? dgamma, NativeTensor? dbeta) =>
        lib.BatchNormBackward(&d, NativeTensor.Ptr(x), NativeTensor.Ptr(dy), NativeTensor.Ptr(dx), NativeTensor.Ptr(gamma),
            NativeTensor.Ptr(saveMean), NativeTensor.Ptr(saveInvstd), NativeTensor.Ptr(dgamma), NativeTensor.Ptr(dbeta));

    public static BnStatus BackwardInference(BnLibrary lib, BnTensorDesc d, NativeTensor? x, NativeTensor? dy, NativeTensor? dx, NativeTensor? gamma,
        NativeTensor? runningMean, NativeTensor? runningVar, double eps, NativeTensor? dgamma, NativeTensor? dbeta) =>
        lib.BatchNormBackwardInference(&d, NativeTensor.Ptr(x), NativeTensor.Ptr(dy), NativeTensor.Ptr(dx), NativeTensor.Ptr(gamma),
            NativeTensor.Ptr(runningMean), NativeTensor.Ptr(runningVar), eps, NativeTensor.Ptr(dgamma), NativeTensor.Ptr(dbeta));

    public static BnStatus RenormForwardTraining(BnLibrary lib, BnTensorDesc d, NativeTensor? x, NativeTensor? y, NativeTensor? gamma, NativeTensor? beta,
        NativeTensor? runningMean, NativeTensor? runningVar, double momentum, double eps, double rmax, double dmax,
        NativeTensor? saveMean, NativeTensor? saveInvstd, NativeTensor? saveR, NativeTensor? saveD) =>
        lib.BatchRenormForwardTraining(&d, NativeTensor.Ptr(x), NativeTensor.Ptr(y), NativeTensor.Ptr(gamma), NativeTensor.Ptr(beta),
            NativeTensor.Ptr(runningMean), NativeTensor.Ptr(runningVar), momentum, eps, rmax, dmax,
            NativeTensor.Ptr(saveMean), NativeTensor.Ptr(saveInvstd), NativeTensor.Ptr(saveR), NativeTensor.Ptr(saveD));

    public static BnStatus RenormBackward(BnLibrary lib, BnTensorDesc d, NativeTensor? x, NativeTensor? dy, NativeTensor? dx, NativeTensor? gamma,
        NativeTensor? saveMean, NativeTensor? saveInvstd, NativeTensor? saveR, NativeTensor? saveD, NativeTensor? dgamma, NativeTensor? dbeta) =>
        lib.BatchRenormBackward(&d, NativeTensor.Ptr(x), NativeTensor.Ptr(dy), NativeTensor.Ptr(dx), NativeTensor.Ptr(gamma),
            NativeTensor.Ptr(saveMean), NativeTensor.Ptr(saveInvstd), NativeTensor.Ptr(saveR), NativeTensor.Ptr(saveD), NativeTensor.Ptr(dgamma), NativeTensor.Ptr(dbeta));

    public static BnStatus LayerNormForward(BnLibrary lib, BnTensorDesc d, NativeTensor? x, NativeTensor? y, NativeTensor? gamma, NativeTensor? beta,
        double eps, NativeTensor? saveMean, NativeTensor? saveInvstd) =>
        lib.LayerNormForward(&d, NativeTensor.Ptr(x), NativeTensor.Ptr(y), NativeTensor.Ptr(gamma), NativeTensor.Ptr(beta), eps,
            NativeTensor.Ptr(saveMean), NativeTensor.Ptr(saveInvstd));

    public static BnStatus LayerNormBackward(BnLibrary lib, BnTensorDesc d, NativeTensor? x, NativeTensor? dy, NativeTensor? dx, NativeTensor? gamma,
        NativeTensor? saveMean, NativeTensor? saveInvstd, NativeTensor? dgamma, NativeTensor? dbeta) =>
        lib.LayerNormBackward(&d, NativeTensor.Ptr(x), NativeTensor.Ptr(dy), NativeTensor.Ptr(dx), NativeTensor.Ptr(gamma),
            NativeTensor.Ptr(saveMean), NativeTensor.Ptr(saveInvstd), NativeTensor.Ptr(dgamma), NativeTensor.Ptr(dbeta));

    public static void Ok(BnLibrary lib, BnStatus status) =>
        Assert.True(status == BnStatus.Success, $"{lib.Isa}: {status}: {lib.LastErrorMessage}");
}

/// <summary>SPEC §4: |got − ref| ≤ tol·(a + max(|ref|, s)), a = 1 for F32 and 0 for F64.</summary>
public static class Accuracy
{
    public static double Forward(BnDType t) => t == BnDType.F64 ? 1e-12 : 1e-5;
    public static double Gradient(BnDType t) => t == BnDType.F64 ? 1e-10 : 1e-4;

    public static void Near(string what, BnDType t, double tol, double[] got, double[] expected, double[]? scale = null)
    {
        double a = t == BnDType.F64 ? 0 : 1;
        for (int i = 0; i < expected.Length; i++)
        {
            double bound = tol * (a + System.Math.Max(System.Math.Abs(expected[i]), scale?[i] ?? 0));
            double error = System.Math.Abs(got[i] - expected[i]);
            if (!(error <= bound)) // the message only for a failure: formatting it per element was most of a large tensor's check
                Assert.Fail($"{what}[{i}] = {got[i]:R}, expected {expected[i]:R} (error {error:E2} > {bound:E2})");
        }
    }

    /// <summary>Purely relative (saved invstd, running_var).</summary>
    public static void Relative(string what, double tol, double[] got, double[] expected)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            double error = System.Math.Abs(got[i] - expected[i]);
            if (!(error <= tol * System.Math.Abs(expected[i])))
                Assert.Fail($"{what}[{i}] = {got[i]:R}, expected {expected[i]:R} (relative {error / System.Math.Abs(expected[i]):E2})");
        }
    }
}
