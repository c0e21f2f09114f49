using System;
using System.Numerics;
using BnNative.Runtime;
using K = BnNative.Kernels.Kernels;

namespace BnNative.Operations;

/// <summary>
/// Batch Normalization (SPEC §2.1) and Batch Renormalization (§2.2, the same passes with another per-channel
/// affine and gradient coefficients) on validated arguments. Every output except y/dx is computed into
/// float64 scratch first and written at the end. In NCHW one task owns one channel: its statistics and
/// its normalization run back to back, so the channel's slice comes from memory once when it fits in L2.
/// The affine is folded per channel: y = (x − mean)·(γ·invstd) + β, one multiply-add per element, and a
/// constant channel (x = mean exactly, found by shifting by its first value) gives y = β exactly.
/// </summary>
internal static unsafe class BatchNorm<T> where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private static T E(double value) => T.CreateTruncating(value);
    private static double D(T value) => double.CreateTruncating(value);
    private static double Gamma(T* gamma, long c) => gamma == null ? 1.0 : D(gamma[c]);
    private static double Beta(T* beta, long c) => beta == null ? 0.0 : D(beta[c]);

    /// <summary>
    /// The per-channel affine of a training forward. Batch Normalization: y = (x − mean)·γ/σ_B + β.
    /// Batch Renormalization (Ioffe 2017) with the running statistics as they were before the call:
    /// r = clamp(σ_B/σ_run, 1/rmax, rmax), d = clamp((mean − running_mean)/σ_run, −dmax, dmax),
    /// y = γ·(x̂·r + d) + β = (x − mean)·γ·r/σ_B + (β + γ·d).
    /// </summary>
    internal struct TrainingAffine
    {
        public T* Gamma, Beta, RunningMean, RunningVar;
        public double Eps;
        public bool Renorm;
        public double RMax, DMax;

        public readonly (double Scale, double Shift, double R, double D) For(long c, double mean, double variance)
        {
            double sigma = Math.Sqrt(variance + Eps), gamma = BatchNorm<T>.Gamma(Gamma, c), beta = BatchNorm<T>.Beta(Beta, c);
            if (!Renorm)
                return (gamma / sigma, beta, 1, 0);
            double runningSigma = Math.Sqrt(D(RunningVar[c]) + Eps);
            double r = Math.Clamp(sigma / runningSigma, 1 / RMax, RMax);
            double d = Math.Clamp((mean - D(RunningMean[c])) / runningSigma, -DMax, DMax);
            return (gamma * r / sigma, beta + gamma * d, r, d);
        }
    }

    /// <summary>
    /// Batch Normalization or, with <paramref name="affine"/>.Renorm, Batch Renormalization forward training;
    /// <paramref name="saveR"/> and <paramref name="saveD"/> receive r and d (renorm only; may be null).
    /// </summary>
    public static void ForwardTraining(in Geometry<T> g, T* x, T* y, in TrainingAffine affine, double momentum,
        T* saveMean, T* saveInvstd, T* saveR = null, T* saveD = null)
    {
        using var mean = new NativeBuffer<double>(g.C);
        using var variance = new NativeBuffer<double>(g.C);
        using var r = new NativeBuffer<double>(g.C);
        using var d = new NativeBuffer<double>(g.C);
        if (!g.ChannelsLast)
        {
            var job = new PlanarForwardTrainingJob { G = g, X = x, Y = y, Affine = affine, Mean = mean, Variance = variance, R = r, D = d };
            WorkerPool.For(checked((int)g.C), ref job);
        }
        else
        {
            ChannelPasses<T>.RowStatistics(g, x, mean, variance);
            using var center = new NativeBuffer<T>(g.C);
            using var scale = new NativeBuffer<T>(g.C);
            using var shift = new NativeBuffer<T>(g.C);
            for (long c = 0; c < g.C; c++)
            {
                var (a, b, rc, dc) = affine.For(c, mean.Pointer[c], variance.Pointer[c]);
                (center.Pointer[c], scale.Pointer[c], shift.Pointer[c]) = (E(mean.Pointer[c]), E(a), E(b));
                (r.Pointer[c], d.Pointer[c]) = (rc, dc);
            }
            ChannelPasses<T>.ScaleShift(g, x, y, center, scale, shift);
        }
        T* runningMean = affine.RunningMean, runningVar = affine.RunningVar;
        for (long c = 0; c < g.C; c++)
        {
            double m = mean.Pointer[c], v = variance.Pointer[c];
            if (saveMean != null)
                saveMean[c] = E(m);
            if (saveInvstd != null)
                saveInvstd[c] = E(1.0 / Math.Sqrt(v + affine.Eps));
            if (saveR != null)
                saveR[c] = E(r.Pointer[c]);
            if (saveD != null)
                saveD[c] = E(d.Pointer[c]);
            if (runningMean != null)
            {
                runningMean[c] = E((1 - momentum) * D(runningMean[c]) + momentum * m);
                runningVar[c] = E((1 - momentum) * D(runningVar[c]) + momentum * v * g.M / (g.M - 1));
            }
        }
    }

    private struct PlanarForwardTrainingJob : IParallelJob
    {
        public Geometry<T> G;
        public T* X, Y;
        public TrainingAffine Affine;
        public double* Mean, Variance, R, D;

        public void Run(int c)
        {
            var (mean, variance) = ChannelPasses<T>.PlanarStatistics(G, X, c);
            var (scale, shift, r, d) = Affine.For(c, mean, variance);
            (Mean[c], Variance[c], R[c], D[c]) = (mean, variance, r, d);
            T center = E(mean), scaleT = E(scale), shiftT = E(shift);
            for (long n = 0; n < G.N; n++)
            {
                long at = G.Slab(n, c);
                K.ScaleShift.MembersContiguous(X + at, Y + at, (nint)G.S, center, scaleT, shiftT, G.StreamSlabs);
            }
        }
    }

    public static void ForwardInference(in Geometry<T> g, T* x, T* y, T* gamma, T* beta, T* runningMean, T* runningVar, double eps)
    {
        using var center = new NativeBuffer<T>(g.C);
        using var scale = new NativeBuffer<T>(g.C);
        using var shift = new NativeBuffer<T>(g.C);
        for (long c = 0; c < g.C; c++)
        {
            center.Pointer[c] = runningMean[c];
            scale.Pointer[c] = E(Gamma(gamma, c) / Math.Sqrt(D(runningVar[c]) + eps));
            shift.Pointer[c] = E(Beta(beta, c));
        }
        ChannelPasses<T>.ScaleShift(g, x, y, center, scale, shift);
    }

    /// <summary>
    /// The training gradient: dbeta = Σdy, dgamma = invstd·Σdy·(x − mean), and
    /// dx = γ·invstd·(dy − dbeta/M − x̂·dgamma/M), folded to dx = dy·a + (x − mean)·b + c per channel.
    /// With <paramref name="r"/> and <paramref name="d"/> (Batch Renormalization, constants of the backward):
    /// γ becomes γ·r in dx, and dgamma = r·Σdy·x̂ + d·Σdy.
    /// </summary>
    public static void Backward(in Geometry<T> g, T* x, T* dy, T* dx, T* gamma, T* saveMean, T* saveInvstd, T* dgamma, T* dbeta,
        T* r = null, T* d = null)
    {
        using var sumDy = new NativeBuffer<double>(g.C);
        using var sumDyCentered = new NativeBuffer<double>(g.C);
        if (!g.ChannelsLast)
        {
            var job = new PlanarBackwardJob
            {
                G = g, X = x, Dy = dy, Dx = dx, Gamma = gamma, R = r, Mean = saveMean, Invstd = saveInvstd, SumDy = sumDy, SumDyCentered = sumDyCentered,
            };
            WorkerPool.For(checked((int)g.C), ref job);
        }
        else
        {
            ChannelPasses<T>.RowGradientSums(g, x, dy, saveMean, null, null, sumDy, sumDyCentered);
            if (dx != null)
            {
                using var dyScale = new NativeBuffer<T>(g.C);
                using var xScale = new NativeBuffer<T>(g.C);
                using var bias = new NativeBuffer<T>(g.C);
                for (long c = 0; c < g.C; c++)
                    (dyScale.Pointer[c], xScale.Pointer[c], bias.Pointer[c]) =
                        GradientCoefficients(g, EffectiveGamma(gamma, r, c), D(saveInvstd[c]), sumDy.Pointer[c], sumDyCentered.Pointer[c]);
                ChannelPasses<T>.GradientApply(g, x, dy, dx, saveMean, dyScale, xScale, bias);
            }
        }
        for (long c = 0; c < g.C; c++)
        {
            double dgammaBn = D(saveInvstd[c]) * sumDyCentered.Pointer[c];
            if (dgamma != null)
                dgamma[c] = E(r == null ? dgammaBn : D(r[c]) * dgammaBn + D(d[c]) * sumDy.Pointer[c]);
            if (dbeta != null)
                dbeta[c] = E(sumDy.Pointer[c]);
        }
    }

    private static double EffectiveGamma(T* gamma, T* r, long c) => Gamma(gamma, c) * (r == null ? 1.0 : D(r[c]));

    private static (T DyScale, T XScale, T Bias) GradientCoefficients(in Geometry<T> g, double gamma, double invstd, double sumDy, double sumDyCentered)
    {
        double a = gamma * invstd;
        double dgammaOverM = invstd * sumDyCentered / g.M;
        return (E(a), E(-a * invstd * dgammaOverM), E(-a * sumDy / g.M));
    }

    private struct PlanarBackwardJob : IParallelJob
    {
        public Geometry<T> G;
        public T* X, Dy, Dx, Gamma, R, Mean, Invstd;
        public double* SumDy, SumDyCentered;

        public void Run(int c)
        {
            var (sumDy, sumDyCentered) = ChannelPasses<T>.PlanarGradientSums(G, X, Dy, c, Mean[c], null, T.Zero);
            SumDy[c] = sumDy;
            SumDyCentered[c] = sumDyCentered;
            if (Dx == null)
                return;
            var (dyScale, xScale, bias) = GradientCoefficients(G, EffectiveGamma(Gamma, R, c), D(Invstd[c]), sumDy, sumDyCentered);
            for (long n = 0; n < G.N; n++)
            {
                long at = G.Slab(n, c);
                K.GradientApply.MembersContiguous(X + at, Dy + at, Dx + at, (nint)G.S, Mean[c], dyScale, xScale, bias, G.StreamSlabs);
            }
        }
    }

    /// <summary>
    /// The gradient of the inference forward (frozen statistics): dx = dy·γ/σ, dbeta = Σdy,
    /// dgamma = Σdy·(x − running_mean)/σ, in one pass that reads x and dy once.
    /// </summary>
    public static void BackwardInference(in Geometry<T> g, T* x, T* dy, T* dx, T* gamma, T* runningMean, T* runningVar, double eps,
        T* dgamma, T* dbeta)
    {
        using var sumDy = new NativeBuffer<double>(g.C);
        using var sumDyCentered = new NativeBuffer<double>(g.C);
        using var dyScale = new NativeBuffer<T>(g.C);
        for (long c = 0; c < g.C; c++)
            dyScale.Pointer[c] = E(Gamma(gamma, c) / Math.Sqrt(D(runningVar[c]) + eps));
        if (!g.ChannelsLast)
        {
            var job = new PlanarFrozenJob { G = g, X = x, Dy = dy, Dx = dx, Center = runningMean, DyScale = dyScale, SumDy = sumDy, SumDyCentered = sumDyCentered };
            WorkerPool.For(checked((int)g.C), ref job);
        }
        else
        {
            ChannelPasses<T>.RowGradientSums(g, x, dy, runningMean, dx, dyScale, sumDy, sumDyCentered);
        }
        for (long c = 0; c < g.C; c++)
        {
            if (dgamma != null)
                dgamma[c] = E(sumDyCentered.Pointer[c] / Math.Sqrt(D(runningVar[c]) + eps));
            if (dbeta != null)
                dbeta[c] = E(sumDy.Pointer[c]);
        }
    }

    private struct PlanarFrozenJob : IParallelJob
    {
        public Geometry<T> G;
        public T* X, Dy, Dx, Center, DyScale;
        public double* SumDy, SumDyCentered;

        public void Run(int c) =>
            (SumDy[c], SumDyCentered[c]) = ChannelPasses<T>.PlanarGradientSums(G, X, Dy, c, Center[c], Dx, DyScale[c]);
    }
}
