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
/// A channel whose fast-path statistics or coefficients fail the checks of <see cref="Exact{T}"/> (values
/// near the ends of the range, tiny eps) is done in float64 instead; in channels-last passes it rides
/// through the vector pass with identity coefficients (y = x) and is then rewritten from y.
/// </summary>
internal static unsafe class BatchNorm<TElement, T> where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private static T E(double value) => Element<T>.FromDouble(value);
    private static double D(T value) => Element<T>.ToDouble(value);
    private static double Gamma(T* gamma, long c) => gamma == null ? 1.0 : D(gamma[c]);
    private static double Beta(T* beta, long c) => beta == null ? 0.0 : D(beta[c]);
    private static bool ZeroGamma(T* gamma, long c) => gamma != null && gamma[c] == T.Zero;

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
            double sigma = Math.Sqrt(variance + Eps), gamma = BatchNorm<TElement, T>.Gamma(Gamma, c), beta = BatchNorm<TElement, T>.Beta(Beta, c);
            if (!Renorm)
                return (gamma / sigma, beta, 1, 0);
            double runningSigma = Math.Sqrt(D(RunningVar[c]) + Eps);
            double r = Math.Clamp(sigma / runningSigma, 1 / RMax, RMax);
            double d = Math.Clamp(Exact<TElement, T>.ScaledDeviation(mean, D(RunningMean[c]), 1 / runningSigma), -DMax, DMax);
            return (gamma * r / sigma, beta + gamma * d, r, d);
        }

        /// <summary>The map of channel <paramref name="c"/> in float64, for channels whose coefficients do not fit the element type.</summary>
        public readonly void ExactMap(TElement* source, TElement* y, in Members members, long c, double mean, double variance)
        {
            var (_, _, r, _) = For(c, mean, variance);
            double gamma = BatchNorm<TElement, T>.Gamma(Gamma, c), beta = BatchNorm<TElement, T>.Beta(Beta, c);
            if (Renorm)
                beta = Exact<TElement, T>.RenormShift(gamma, beta, mean, D(RunningMean[c]), 1 / Math.Sqrt(D(RunningVar[c]) + Eps), DMax);
            Exact<TElement, T>.Affine(source, y, members, mean, 1 / Math.Sqrt(variance + Eps), r, 0, gamma, beta);
        }
    }

    /// <summary>The fast-path statistics of a channel, or the float64 ones where those cannot be trusted.</summary>
    private static (double Mean, double Variance) Checked(in Geometry<TElement> g, TElement* x, long c, (double Mean, double Variance) fast, double eps) =>
        Exact<TElement, T>.Trustworthy(fast.Mean, fast.Variance, eps) ? fast : Exact<TElement, T>.Statistics(x, g.Channel(c));

    /// <summary>
    /// Batch Normalization or, with <paramref name="affine"/>.Renorm, Batch Renormalization forward training;
    /// <paramref name="saveR"/> and <paramref name="saveD"/> receive r and d (renorm only; may be null).
    /// </summary>
    public static void ForwardTraining(in Geometry<TElement> g, TElement* x, TElement* y, in TrainingAffine affine, double momentum,
        T* saveMean, T* saveInvstd, T* saveR = null, T* saveD = null)
    {
        using var mean = new NativeBuffer<double>(g.C);
        using var variance = new NativeBuffer<double>(g.C);
        if (!g.ChannelsLast)
        {
            var job = new PlanarForwardTrainingJob { G = g, X = x, Y = y, Affine = affine, Mean = mean, Variance = variance };
            WorkerPool.For(g.C, ref job);
        }
        else
        {
            ChannelPasses<TElement, T>.RowStatistics(g, x, mean, variance);
            using var center = new NativeBuffer<T>(g.C);
            using var scale = new NativeBuffer<T>(g.C);
            using var shift = new NativeBuffer<T>(g.C);
            long misfits = 0;
            for (long c = 0; c < g.C; c++)
            {
                (mean.Pointer[c], variance.Pointer[c]) = Checked(g, x, c, (mean.Pointer[c], variance.Pointer[c]), affine.Eps);
                var (a, b, _, _) = affine.For(c, mean.Pointer[c], variance.Pointer[c]);
                bool fits = Exact<TElement, T>.MapFits(variance.Pointer[c], g.M, a, ZeroGamma(affine.Gamma, c), b);
                (center.Pointer[c], scale.Pointer[c], shift.Pointer[c]) = fits ? (E(mean.Pointer[c]), E(a), E(b)) : (T.Zero, T.One, T.Zero);
                misfits += fits ? 0 : 1;
            }
            ChannelPasses<TElement, T>.ScaleShift(g, x, y, center, scale, shift);
            for (long c = 0; misfits > 0 && c < g.C; c++)
            {
                var (a, b, _, _) = affine.For(c, mean.Pointer[c], variance.Pointer[c]);
                if (!Exact<TElement, T>.MapFits(variance.Pointer[c], g.M, a, ZeroGamma(affine.Gamma, c), b))
                {
                    affine.ExactMap(y, y, g.Channel(c), c, mean.Pointer[c], variance.Pointer[c]);
                    misfits--;
                }
            }
        }
        T* runningMean = affine.RunningMean, runningVar = affine.RunningVar;
        for (long c = 0; c < g.C; c++)
        {
            double m = mean.Pointer[c], v = variance.Pointer[c];
            // r and d read the running statistics as they were before this call: before they are updated below.
            var (_, _, r, d) = affine.Renorm ? affine.For(c, m, v) : (0, 0, 1.0, 0.0);
            if (saveMean != null)
                saveMean[c] = E(m);
            if (saveInvstd != null)
                saveInvstd[c] = E(1.0 / Math.Sqrt(v + affine.Eps));
            if (saveR != null)
                saveR[c] = E(r);
            if (saveD != null)
                saveD[c] = E(d);
            if (runningMean != null)
            {
                runningMean[c] = E((1 - momentum) * D(runningMean[c]) + momentum * m);
                runningVar[c] = E((1 - momentum) * D(runningVar[c]) + momentum * v * ((double)g.M / (g.M - 1))); // M/(M − 1) first: v·M may overflow
            }
        }
    }

    private struct PlanarForwardTrainingJob : IParallelJob
    {
        public Geometry<TElement> G;
        public TElement* X, Y;
        public TrainingAffine Affine;
        public double* Mean, Variance;

        public void Run(long c)
        {
            var (mean, variance) = Checked(G, X, c, ChannelPasses<TElement, T>.PlanarStatistics(G, X, c), Affine.Eps);
            var (scale, shift, _, _) = Affine.For(c, mean, variance);
            (Mean[c], Variance[c]) = (mean, variance);
            if (!Exact<TElement, T>.MapFits(variance, G.M, scale, ZeroGamma(Affine.Gamma, c), shift))
            {
                Affine.ExactMap(X, Y, G.Channel(c), c, mean, variance);
                return;
            }
            T center = E(mean), scaleT = E(scale), shiftT = E(shift);
            for (long n = 0; n < G.N; n++)
            {
                long at = G.Slab(n, c);
                K.ScaleShift.MembersContiguous(X + at, Y + at, (nint)G.S, center, scaleT, shiftT, G.StreamSlabs);
            }
        }
    }

    public static void ForwardInference(in Geometry<TElement> g, TElement* x, TElement* y, T* gamma, T* beta, T* runningMean, T* runningVar, double eps)
    {
        using var center = new NativeBuffer<T>(g.C);
        using var scale = new NativeBuffer<T>(g.C);
        using var shift = new NativeBuffer<T>(g.C);
        for (long c = 0; c < g.C; c++)
        {
            var (a, b) = InferenceAffine(gamma, beta, runningVar, eps, c);
            (center.Pointer[c], scale.Pointer[c], shift.Pointer[c]) = InferenceFits(a, b, ZeroGamma(gamma, c), runningMean[c])
                ? (runningMean[c], E(a), E(b))
                : (T.Zero, T.One, T.Zero);
        }
        ChannelPasses<TElement, T>.ScaleShift(g, x, y, center, scale, shift);
        for (long c = 0; c < g.C; c++)
        {
            var (a, b) = InferenceAffine(gamma, beta, runningVar, eps, c);
            if (!InferenceFits(a, b, ZeroGamma(gamma, c), runningMean[c]))
                Exact<TElement, T>.Affine(y, y, g.Channel(c), D(runningMean[c]), InverseSigma(runningVar, eps, c), 1, 0, Gamma(gamma, c), Beta(beta, c));
        }
    }

    private static (double Scale, double Shift) InferenceAffine(T* gamma, T* beta, T* runningVar, double eps, long c) =>
        (Gamma(gamma, c) * InverseSigma(runningVar, eps, c), Beta(beta, c));

    /// <summary>The inference coefficients fit the element type, and x − running_mean cannot overflow.</summary>
    private static bool InferenceFits(double scale, double shift, bool zeroGamma, T runningMean) =>
        Exact<TElement, T>.Fits(scale, zeroGamma) && T.IsFinite(E(shift)) && Exact<TElement, T>.CenterFits(D(runningMean));

    /// <summary>
    /// The training gradient: dbeta = Σdy, dgamma = Σdy·x̂, and dx = γ·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)),
    /// folded to dx = (dy − mean(dy))·a + (x − mean)·b per channel. With <paramref name="r"/> and
    /// <paramref name="d"/> (Batch Renormalization, constants of the backward): γ becomes γ·r in dx, and
    /// dgamma = r·Σdy·x̂ + d·Σdy.
    /// </summary>
    public static void Backward(in Geometry<TElement> g, TElement* x, TElement* dy, TElement* dx, T* gamma, T* saveMean, T* saveInvstd, T* dgamma, T* dbeta,
        T* r = null, T* d = null)
    {
        using var meanDy = new NativeBuffer<double>(g.C);
        using var meanDyXhat = new NativeBuffer<double>(g.C);
        if (!g.ChannelsLast)
        {
            var job = new PlanarBackwardJob
            {
                G = g, X = x, Dy = dy, Dx = dx, Gamma = gamma, R = r, Mean = saveMean, Invstd = saveInvstd, MeanDy = meanDy, MeanDyXhat = meanDyXhat,
            };
            WorkerPool.For(g.C, ref job);
        }
        else
        {
            ChannelPasses<TElement, T>.RowGradientSums(g, x, dy, saveMean, meanDy, meanDyXhat);
            for (long c = 0; c < g.C; c++)
                (meanDy.Pointer[c], meanDyXhat.Pointer[c]) = GradientMeans(g, x, dy, c, D(saveMean[c]), D(saveInvstd[c]),
                    (meanDy.Pointer[c], meanDyXhat.Pointer[c]));
            if (dx != null)
            {
                using var center = new NativeBuffer<T>(g.C);
                using var dyCenter = new NativeBuffer<T>(g.C);
                using var dyScale = new NativeBuffer<T>(g.C);
                using var xScale = new NativeBuffer<T>(g.C);
                for (long c = 0; c < g.C; c++)
                {
                    var (a, b) = GradientCoefficients(EffectiveGamma(gamma, r, c), D(saveInvstd[c]), meanDyXhat.Pointer[c]);
                    (center.Pointer[c], dyCenter.Pointer[c], dyScale.Pointer[c], xScale.Pointer[c]) = GradientFits(a, b, EffectiveGamma(gamma, r, c), meanDy.Pointer[c], meanDyXhat.Pointer[c], D(saveMean[c]))
                        ? (saveMean[c], E(meanDy.Pointer[c]), E(a), E(b))
                        : (T.Zero, T.Zero, T.One, T.Zero); // identity: dx = dy + x·0, rewritten below
                }
                ChannelPasses<TElement, T>.GradientApply(g, x, dy, dx, center, dyCenter, dyScale, xScale);
                for (long c = 0; c < g.C; c++)
                {
                    double invstd = D(saveInvstd[c]);
                    var (a, b) = GradientCoefficients(EffectiveGamma(gamma, r, c), invstd, meanDyXhat.Pointer[c]);
                    if (!GradientFits(a, b, EffectiveGamma(gamma, r, c), meanDy.Pointer[c], meanDyXhat.Pointer[c], D(saveMean[c])))
                        Exact<TElement, T>.GradientApply(x, dx, dx, g.Channel(c), D(saveMean[c]), invstd, Gamma(gamma, c), R(r, c), meanDy.Pointer[c], meanDyXhat.Pointer[c]);
                }
            }
        }
        for (long c = 0; c < g.C; c++)
        {
            if (dgamma != null)
                dgamma[c] = E(r == null ? meanDyXhat.Pointer[c] * g.M : Exact<TElement, T>.Combination(g.M, D(r[c]), meanDyXhat.Pointer[c], D(d[c]), meanDy.Pointer[c]));
            if (dbeta != null)
                dbeta[c] = E(meanDy.Pointer[c] * g.M);
        }
    }

    /// <summary>
    /// mean(dy) and mean(dy·(x − center)·xScale) of channel <paramref name="c"/> from its fast-path sums
    /// (Σdy, Σdy·(x − center)), or in float64 where those overflowed.
    /// </summary>
    private static (double MeanDy, double MeanDyXhat) GradientMeans(in Geometry<TElement> g, TElement* x, TElement* dy, long c, double center, double xScale,
        (double SumDy, double SumDyCentered) sums)
    {
        double meanDy = sums.SumDy / g.M, meanDyXhat = sums.SumDyCentered * xScale / g.M;
        return double.IsFinite(meanDy) && double.IsFinite(meanDyXhat)
            ? (meanDy, meanDyXhat)
            : Exact<TElement, T>.GradientMeans(x, dy, g.Channel(c), center, xScale);
    }

    private static double R(T* r, long c) => r == null ? 1.0 : D(r[c]);
    private static double EffectiveGamma(T* gamma, T* r, long c) => Gamma(gamma, c) * R(r, c);

    /// <summary>dx = a·(dy − mean(dy)) + (x − mean)·b with a = γ·invstd, b = −a·invstd·mean(dy·x̂).</summary>
    private static (double A, double B) GradientCoefficients(double gamma, double invstd, double meanDyXhat)
    {
        double a = gamma * invstd;
        return (a, -a * invstd * meanDyXhat);
    }

    /// <summary>The gradient coefficients fit the element type, and neither dy − mean(dy) nor x − mean can overflow.</summary>
    private static bool GradientFits(double a, double b, double gamma, double meanDy, double meanDyXhat, double mean) =>
        Exact<TElement, T>.Fits(a, gamma == 0) && Exact<TElement, T>.Fits(b, gamma == 0 || meanDyXhat == 0) && Exact<TElement, T>.CenterFits(meanDy) && Exact<TElement, T>.CenterFits(mean);

    private struct PlanarBackwardJob : IParallelJob
    {
        public Geometry<TElement> G;
        public TElement* X, Dy, Dx;
        public T* Gamma, R, Mean, Invstd;
        public double* MeanDy, MeanDyXhat;

        public void Run(long c)
        {
            double invstd = D(Invstd[c]);
            var (meanDy, meanDyXhat) = GradientMeans(G, X, Dy, c, D(Mean[c]), invstd, ChannelPasses<TElement, T>.PlanarGradientSums(G, X, Dy, c, Mean[c]));
            (MeanDy[c], MeanDyXhat[c]) = (meanDy, meanDyXhat);
            if (Dx == null)
                return;
            var (a, b) = GradientCoefficients(EffectiveGamma(Gamma, R, c), invstd, meanDyXhat);
            if (!GradientFits(a, b, EffectiveGamma(Gamma, R, c), meanDy, meanDyXhat, D(Mean[c])))
            {
                Exact<TElement, T>.GradientApply(X, Dy, Dx, G.Channel(c), D(Mean[c]), invstd, BatchNorm<TElement, T>.Gamma(Gamma, c), BatchNorm<TElement, T>.R(R, c), meanDy, meanDyXhat);
                return;
            }
            T dyCenter = E(meanDy), dyScale = E(a), xScale = E(b);
            for (long n = 0; n < G.N; n++)
            {
                long at = G.Slab(n, c);
                K.GradientApply.MembersContiguous(X + at, Dy + at, Dx + at, (nint)G.S, Mean[c], dyCenter, dyScale, xScale, G.StreamSlabs);
            }
        }
    }

    /// <summary>
    /// The gradient of the inference forward (frozen statistics): dx = dy·γ/σ, dbeta = Σdy,
    /// dgamma = Σdy·(x − running_mean)/σ. The sums are taken before dx is written (dx may be dy), per
    /// channel in NCHW so its slice is read again from cache.
    /// </summary>
    public static void BackwardInference(in Geometry<TElement> g, TElement* x, TElement* dy, TElement* dx, T* gamma, T* runningMean, T* runningVar, double eps,
        T* dgamma, T* dbeta)
    {
        using var meanDy = new NativeBuffer<double>(g.C);
        using var meanDyXhat = new NativeBuffer<double>(g.C);
        if (!g.ChannelsLast)
        {
            var job = new PlanarFrozenJob
            {
                G = g, X = x, Dy = dy, Dx = dx, Gamma = gamma, RunningMean = runningMean, RunningVar = runningVar, Eps = eps,
                MeanDy = meanDy, MeanDyXhat = meanDyXhat,
            };
            WorkerPool.For(g.C, ref job);
        }
        else
        {
            ChannelPasses<TElement, T>.RowGradientSums(g, x, dy, runningMean, meanDy, meanDyXhat);
            for (long c = 0; c < g.C; c++)
                (meanDy.Pointer[c], meanDyXhat.Pointer[c]) = GradientMeans(g, x, dy, c, D(runningMean[c]), InverseSigma(runningVar, eps, c),
                    (meanDy.Pointer[c], meanDyXhat.Pointer[c]));
            if (dx != null)
            {
                using var zero = new NativeBuffer<T>(g.C);
                using var dyScale = new NativeBuffer<T>(g.C);
                for (long c = 0; c < g.C; c++)
                {
                    double a = Gamma(gamma, c) * InverseSigma(runningVar, eps, c);
                    dyScale.Pointer[c] = Exact<TElement, T>.Fits(a, ZeroGamma(gamma, c)) ? E(a) : T.One; // identity: dx = dy, rewritten below
                }
                ChannelPasses<TElement, T>.ScaleShift(g, dy, dx, zero, dyScale, zero);
                for (long c = 0; c < g.C; c++)
                {
                    double a = Gamma(gamma, c) * InverseSigma(runningVar, eps, c);
                    if (!Exact<TElement, T>.Fits(a, ZeroGamma(gamma, c)))
                        Exact<TElement, T>.Affine(dx, dx, g.Channel(c), 0, InverseSigma(runningVar, eps, c), 1, 0, Gamma(gamma, c), 0);
                }
            }
        }
        for (long c = 0; c < g.C; c++)
        {
            if (dgamma != null)
                dgamma[c] = E(meanDyXhat.Pointer[c] * g.M);
            if (dbeta != null)
                dbeta[c] = E(meanDy.Pointer[c] * g.M);
        }
    }

    private static double InverseSigma(T* runningVar, double eps, long c) => 1 / Math.Sqrt(D(runningVar[c]) + eps);

    private struct PlanarFrozenJob : IParallelJob
    {
        public Geometry<TElement> G;
        public TElement* X, Dy, Dx;
        public T* Gamma, RunningMean, RunningVar;
        public double Eps;
        public double* MeanDy, MeanDyXhat;

        public void Run(long c)
        {
            double inverseSigma = InverseSigma(RunningVar, Eps, c);
            (MeanDy[c], MeanDyXhat[c]) = GradientMeans(G, X, Dy, c, D(RunningMean[c]), inverseSigma,
                ChannelPasses<TElement, T>.PlanarGradientSums(G, X, Dy, c, RunningMean[c]));
            if (Dx == null)
                return;
            double a = Gamma(Gamma, c) * inverseSigma;
            if (!Exact<TElement, T>.Fits(a, ZeroGamma(Gamma, c)))
            {
                Exact<TElement, T>.Affine(Dy, Dx, G.Channel(c), 0, inverseSigma, 1, 0, Gamma(Gamma, c), 0);
                return;
            }
            T scale = E(a);
            for (long n = 0; n < G.N; n++)
            {
                long at = G.Slab(n, c);
                K.ScaleShift.MembersContiguous(Dy + at, Dx + at, (nint)G.S, T.Zero, scale, T.Zero, G.StreamSlabs);
            }
        }
    }
}
