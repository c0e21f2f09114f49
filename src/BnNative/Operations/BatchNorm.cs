using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Threading;
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
            WorkerPool.For(g.ChannelGroups, ref job);
        }
        else
        {
            RowStatistics(g, x, mean, variance, affine.Eps);
            using var center = new NativeBuffer<T>(g.C);
            using var scale = new NativeBuffer<T>(g.C);
            using var shift = new NativeBuffer<T>(g.C);
            long misfits = 0;
            // BatchNorm's saved and running statistics go with the coefficients, in one parallel pass (one wait for the
            // workers fewer). Batch Renormalization's float64 map reads the running statistics as they were before the
            // call, so there they are updated after it.
            var saved = Saved(g.M, mean, variance, affine, momentum, saveMean, saveInvstd, saveR, saveD);
            var coefficients = new MapCoefficients
            {
                Affine = affine, Members = g.M, Mean = mean, Variance = variance, Center = center, Scale = scale, Shift = shift, Misfits = &misfits,
                Saved = affine.Renorm ? null : &saved,
            };
            ForEachChannel(g.C, coefficients);
            ChannelPasses<TElement, T>.ScaleShift(g, x, y, center, scale, shift);
            for (long c = 0; misfits > 0 && c < g.C; c++)
                if (!coefficients.Of(c).Fits)
                {
                    affine.ExactMap(y, y, g.Channel(c), c, mean.Pointer[c], variance.Pointer[c]);
                    misfits--;
                }
            if (affine.Renorm)
                ForEachChannel(g.C, saved);
            return;
        }
        SaveStatistics(g.C, g.M, mean, variance, affine, momentum, saveMean, saveInvstd, saveR, saveD);
    }

    /// <summary>
    /// What a training forward saves from its batch statistics (mean, invstd; with affine.Renorm also r and d, from
    /// the running statistics before they change), and the running statistics' update with the unbiased variance of
    /// <paramref name="count"/> members.
    /// </summary>
    private static void SaveStatistics(long channels, double count, double* mean, double* variance, in TrainingAffine affine, double momentum,
        T* saveMean, T* saveInvstd, T* saveR, T* saveD) =>
        ForEachChannel(channels, Saved(count, mean, variance, affine, momentum, saveMean, saveInvstd, saveR, saveD));

    private static SavedStatistics Saved(double count, double* mean, double* variance, in TrainingAffine affine, double momentum,
        T* saveMean, T* saveInvstd, T* saveR, T* saveD) => new()
        {
            Affine = affine, Mean = mean, Variance = variance, Momentum = momentum, Unbiased = count / (count - 1), // M/(M − 1) first: v·M may overflow
            SaveMean = saveMean, SaveInvstd = saveInvstd, SaveR = saveR, SaveD = saveD,
        };

    /// <summary>Per-channel work of <see cref="ForEachChannel"/>: each channel on its own.</summary>
    private interface IChannelWork
    {
        /// <summary>
        /// Channels c … c + 7 in float64 vectors, the arithmetic and decisions of <see cref="One"/> lane by lane (one by
        /// one, a square root and a division per channel were a tenth of an mlp forward); false, with nothing written,
        /// where they must go one by one.
        /// </summary>
        bool Eight(long c);

        void One(long c);
    }

    /// <summary>
    /// Runs <paramref name="work"/> for every channel, blocks of channels in parallel (each channel's outputs are its
    /// own, so the thread count changes nothing): with C in the thousands, a loop of square roots and divisions per
    /// channel on the calling thread was a quarter of a 2-thread channels-last forward.
    /// </summary>
    private static void ForEachChannel<TWork>(long channels, TWork work) where TWork : unmanaged, IChannelWork
    {
        var job = new ChannelBlocksJob<TWork> { Work = work, Channels = channels };
        WorkerPool.For((channels + ChannelBlocksJob<TWork>.BlockChannels - 1) / ChannelBlocksJob<TWork>.BlockChannels, ref job);
    }

    private struct ChannelBlocksJob<TWork> : IParallelJob where TWork : unmanaged, IChannelWork
    {
        /// <summary>Channels a task covers: enough that waking a thread for it pays.</summary>
        public const long BlockChannels = 512;

        public TWork Work;
        public long Channels;

        public void Run(long block)
        {
            long c = block * BlockChannels, end = Math.Min(Channels, c + BlockChannels);
            for (; c <= end - Lanes<T>.Count; c += Lanes<T>.Count)
                if (!Work.Eight(c))
                    for (long k = c; k < c + Lanes<T>.Count; k++)
                        Work.One(k);
            for (; c < end; c++)
                Work.One(c);
        }
    }

    /// <summary>
    /// A channels-last training forward's map coefficients: center, scale, shift of channel c, or the identity where
    /// they do not fit the element type; such channels are counted (rare: a flag per channel would be a byte more per
    /// channel of scratch, past SPEC §3's bound when N = 2) and found again after the map, to be rewritten in float64.
    /// </summary>
    private struct MapCoefficients : IChannelWork
    {
        public TrainingAffine Affine;
        public long Members;
        public double* Mean, Variance;
        public T* Center, Scale, Shift;
        public long* Misfits;
        /// <summary>When not null, the same channels' saved and running statistics are written as well.</summary>
        public SavedStatistics* Saved;

        public readonly (double Scale, double Shift, bool Fits) Of(long c)
        {
            var (a, b, _, _) = Affine.For(c, Mean[c], Variance[c]);
            return (a, b, Exact<TElement, T>.MapFits(Variance[c], Members, a, ZeroGamma(Affine.Gamma, c), b));
        }

        /// <summary>BatchNorm's channels in vectors; Batch Renormalization's one by one.</summary>
        public readonly bool Eight(long c)
        {
            if (Affine.Renorm)
                return false;
            var variance = Vector512.Load(Variance + c);
            var gamma = Affine.Gamma == null ? Vector512<double>.One : Lanes<T>.Load(Affine.Gamma + c);
            var beta = Affine.Beta == null ? Vector512<double>.Zero : Lanes<T>.Load(Affine.Beta + c);
            var scale = gamma / Vector512.Sqrt(variance + Vector512.Create(Affine.Eps));
            var fits = Exact<TElement, T>.MapFits(variance, Members, scale, Vector512.Equals(gamma, Vector512<double>.Zero), beta);
            Lanes<T>.Store(Vector512.ConditionalSelect(fits, Vector512.Load(Mean + c), Vector512<double>.Zero), Center + c);
            Lanes<T>.Store(Vector512.ConditionalSelect(fits, scale, Vector512<double>.One), Scale + c);
            Lanes<T>.Store(Vector512.ConditionalSelect(fits, beta, Vector512<double>.Zero), Shift + c);
            int misfits = Lanes<T>.Count - BitOperations.PopCount(fits.ExtractMostSignificantBits());
            if (misfits != 0)
                Interlocked.Add(ref *Misfits, misfits);
            if (Saved != null)
                Saved->Eight(c);
            return true;
        }

        public readonly void One(long c)
        {
            var (a, b, fits) = Of(c);
            (Center[c], Scale[c], Shift[c]) = fits ? (E(Mean[c]), E(a), E(b)) : (T.Zero, T.One, T.Zero);
            if (!fits)
                Interlocked.Increment(ref *Misfits);
            if (Saved != null)
                Saved->One(c);
        }
    }

    /// <summary>Channel c's saved statistics (mean, invstd; renorm: r and d from the running statistics before the update) and running statistics.</summary>
    private struct SavedStatistics : IChannelWork
    {
        public TrainingAffine Affine;
        public double* Mean, Variance;
        public double Momentum, Unbiased;
        public T* SaveMean, SaveInvstd, SaveR, SaveD;

        /// <summary>BatchNorm's channels in vectors; Batch Renormalization's one by one.</summary>
        public readonly bool Eight(long c)
        {
            if (Affine.Renorm)
                return false;
            var m = Vector512.Load(Mean + c);
            var v = Vector512.Load(Variance + c);
            if (SaveMean != null)
                Lanes<T>.Store(m, SaveMean + c);
            if (SaveInvstd != null)
                Lanes<T>.Store(Vector512<double>.One / Vector512.Sqrt(v + Vector512.Create(Affine.Eps)), SaveInvstd + c);
            if (SaveR != null)
                Lanes<T>.Store(Vector512<double>.One, SaveR + c);
            if (SaveD != null)
                Lanes<T>.Store(Vector512<double>.Zero, SaveD + c);
            if (Affine.RunningMean != null)
            {
                var keep = Vector512.Create(1 - Momentum);
                var momentum = Vector512.Create(Momentum);
                Lanes<T>.Store(keep * Lanes<T>.Load(Affine.RunningMean + c) + momentum * m, Affine.RunningMean + c);
                Lanes<T>.Store(keep * Lanes<T>.Load(Affine.RunningVar + c) + momentum * v * Vector512.Create(Unbiased), Affine.RunningVar + c);
            }
            return true;
        }

        public readonly void One(long c)
        {
            double m = Mean[c], v = Variance[c];
            // r and d read the running statistics as they were before this call: before they are updated below.
            var (_, _, r, d) = Affine.Renorm ? Affine.For(c, m, v) : (0, 0, 1.0, 0.0);
            if (SaveMean != null)
                SaveMean[c] = E(m);
            if (SaveInvstd != null)
                SaveInvstd[c] = E(1.0 / Math.Sqrt(v + Affine.Eps));
            if (SaveR != null)
                SaveR[c] = E(r);
            if (SaveD != null)
                SaveD[c] = E(d);
            if (Affine.RunningMean != null)
            {
                Affine.RunningMean[c] = E((1 - Momentum) * D(Affine.RunningMean[c]) + Momentum * m);
                Affine.RunningVar[c] = E((1 - Momentum) * D(Affine.RunningVar[c]) + Momentum * v * Unbiased);
            }
        }
    }

    /// <summary>
    /// The statistics of a batch split into parts, from each part's partial statistics (count, then C means, then C
    /// M2 = Σ(x − mean)², as <see cref="Statistics"/> gives them), then saved and folded into the running statistics
    /// as the fused forward does. Chan et al.'s parallel formula M2 = Σ M2_k + Σ n_k·(mean_k − mean)², evaluated in
    /// float64 in the order given as var = Σ (M2_k/n + (n_k/n)·(mean_k − mean)²), with the mean found first (a pass over
    /// the K partials each) as shift + Σ (n_k/n)·(mean_k − shift) about the mean of the largest part: the pairwise update
    /// mean_a + (mean_b − mean_a)·n_b/n cancels when counts are very unequal (one 1.0 and 10⁵ zeros cut 1 | 10⁵: 5e-12
    /// relative), a plain Σ (n_k/n)·mean_k is not exact when every part has the same mean (its rounding, squared and
    /// weighted by n, then swamps a small variance); this is exact in both cases and within K ulps of mean(|x|) in
    /// general. The count factors are divided first: no term overflows where the variance does not. Parts of count 0
    /// are skipped. Only parameters are read and written: call it as BatchNorm&lt;T, T&gt;.
    /// </summary>
    public static void MergeStatistics(long channels, long parts, double* partials, in TrainingAffine affine, double momentum,
        T* saveMean, T* saveInvstd, T* saveR, T* saveD)
    {
        long stride = 2 * channels + 1;
        using var mean = new NativeBuffer<double>(channels);
        using var variance = new NativeBuffer<double>(channels);
        double count = 0;
        long largest = 0;
        for (long part = 0; part < parts; part++)
        {
            count += partials[part * stride];
            largest = partials[part * stride] > partials[largest * stride] ? part : largest;
        }
        for (long c = 0; c < channels; c++)
        {
            double shift = partials[largest * stride + 1 + c], m = 0, v = 0;
            for (long part = 0; part < parts; part++)
            {
                double* partial = partials + part * stride;
                if (partial[0] > 0)
                    m += partial[0] / count * (partial[1 + c] - shift);
            }
            m += shift;
            for (long part = 0; part < parts; part++)
            {
                double* partial = partials + part * stride;
                double deviation = partial[1 + c] - m;
                if (partial[0] > 0) // M2/n term by term: the count factors never overflow where the variance does not
                    v += partial[1 + channels + c] / count + partial[0] / count * deviation * deviation;
            }
            (mean.Pointer[c], variance.Pointer[c]) = (m, v);
        }
        SaveStatistics(channels, count, mean, variance, affine, momentum, saveMean, saveInvstd, saveR, saveD);
    }

    /// <summary>
    /// Mean and biased variance of every channel in float64 (the local part of statistics split across processes);
    /// <paramref name="eps"/> only decides where the fast path's statistics are trusted (0: the strictest).
    /// </summary>
    public static void Statistics(in Geometry<TElement> g, TElement* x, double* mean, double* variance, double eps)
    {
        if (g.ChannelsLast)
        {
            RowStatistics(g, x, mean, variance, eps);
            return;
        }
        var job = new PlanarStatisticsJob { G = g, X = x, Eps = eps, Mean = mean, Variance = variance };
        WorkerPool.For(g.ChannelGroups, ref job);
    }

    private static void RowStatistics(in Geometry<TElement> g, TElement* x, double* mean, double* variance, double eps)
    {
        ChannelPasses<TElement, T>.RowStatistics(g, x, mean, variance);
        long c = 0;
        // Eight channels' checks at a time; only those that fail are looked at one by one.
        for (; c <= g.C - Lanes<T>.Count; c += Lanes<T>.Count)
            if (Exact<TElement, T>.Trustworthy(Vector512.Load(mean + c), Vector512.Load(variance + c), eps).ExtractMostSignificantBits() != 0xFF)
                for (long k = c; k < c + Lanes<T>.Count; k++)
                    (mean[k], variance[k]) = Checked(g, x, k, (mean[k], variance[k]), eps);
        for (; c < g.C; c++)
            (mean[c], variance[c]) = Checked(g, x, c, (mean[c], variance[c]), eps);
    }

    private struct PlanarStatisticsJob : IParallelJob
    {
        public Geometry<TElement> G;
        public TElement* X;
        public double Eps;
        public double* Mean, Variance;

        public void Run(long task)
        {
            var (first, count) = G.ChannelGroup(task);
            Statistics<TElement, T>.OfAdjacentRuns(X, G.Channel(first), count, Mean + first, Variance + first);
            for (long c = first; c < first + count; c++)
                (Mean[c], Variance[c]) = Checked(G, X, c, (Mean[c], Variance[c]), Eps);
        }
    }

    private struct PlanarForwardTrainingJob : IParallelJob
    {
        public Geometry<TElement> G;
        public TElement* X, Y;
        public TrainingAffine Affine;
        public double* Mean, Variance;

        /// <summary>A group of adjacent channels: their statistics, checks and coefficients, then their map, each sample's slabs in memory order.</summary>
        [SkipLocalsInit]
        public void Run(long task)
        {
            const int Most = Geometry<TElement>.MostAdjacentChannels;
            var (first, count) = G.ChannelGroup(task);
            double* mean = stackalloc double[2 * Most];
            double* variance = mean + Most;
            T* coefficients = stackalloc T[3 * Most];
            bool* fits = stackalloc bool[Most];
            Statistics<TElement, T>.OfAdjacentRuns(X, G.Channel(first), count, mean, variance);
            for (long j = 0; j < count; j++)
            {
                long c = first + j;
                (mean[j], variance[j]) = Checked(G, X, c, (mean[j], variance[j]), Affine.Eps);
                var (scale, shift, _, _) = Affine.For(c, mean[j], variance[j]);
                (Mean[c], Variance[c]) = (mean[j], variance[j]);
                fits[j] = Exact<TElement, T>.MapFits(variance[j], G.M, scale, ZeroGamma(Affine.Gamma, c), shift);
                if (!fits[j])
                    Affine.ExactMap(X, Y, G.Channel(c), c, mean[j], variance[j]);
                (coefficients[3 * j], coefficients[3 * j + 1], coefficients[3 * j + 2]) = (E(mean[j]), E(scale), E(shift));
            }
            for (long n = 0; n < G.N; n++)
                for (long j = 0; j < count; j++)
                {
                    if (!fits[j])
                        continue;
                    long at = G.Slab(n, first + j);
                    K.ScaleShift.MembersContiguous(X + at, Y + at, (nint)G.S, coefficients[3 * j], coefficients[3 * j + 1], coefficients[3 * j + 2], G.StreamSlabs);
                }
        }
    }

    public static void ForwardInference(in Geometry<TElement> g, TElement* x, TElement* y, T* gamma, T* beta, T* runningMean, T* runningVar, double eps)
    {
        using var invstd = new NativeBuffer<double>(g.C);
        for (long c = 0; c < g.C; c++)
            invstd.Pointer[c] = InverseSigma(runningVar, eps, c);
        ForwardWithStatistics(g, x, y, gamma, beta, runningMean, invstd, null, null);
    }

    /// <summary>
    /// y = γ·((x − mean)·invstd·r + d) + β per channel with statistics given (inference: the running ones; a forward
    /// split across processes: the merged batch statistics); <paramref name="r"/>, <paramref name="d"/> null: 1 and 0.
    /// </summary>
    public static void ForwardWithStatistics(in Geometry<TElement> g, TElement* x, TElement* y, T* gamma, T* beta, T* mean, double* invstd, T* r, T* d)
    {
        using var center = new NativeBuffer<T>(g.C);
        using var scale = new NativeBuffer<T>(g.C);
        using var shift = new NativeBuffer<T>(g.C);
        for (long c = 0; c < g.C; c++)
        {
            var (a, b) = GivenAffine(gamma, beta, invstd, r, d, c);
            (center.Pointer[c], scale.Pointer[c], shift.Pointer[c]) = GivenFits(a, b, gamma, r, c, mean[c])
                ? (mean[c], E(a), E(b))
                : (T.Zero, T.One, T.Zero);
        }
        ChannelPasses<TElement, T>.ScaleShift(g, x, y, center, scale, shift);
        for (long c = 0; c < g.C; c++)
        {
            var (a, b) = GivenAffine(gamma, beta, invstd, r, d, c);
            if (!GivenFits(a, b, gamma, r, c, mean[c]))
                Exact<TElement, T>.Affine(y, y, g.Channel(c), D(mean[c]), invstd[c], R(r, c), d == null ? 0 : D(d[c]), Gamma(gamma, c), Beta(beta, c));
        }
    }

    /// <summary>
    /// The folded coefficients of <see cref="ForwardWithStatistics"/>: scale = γ·invstd·r, shift = β + γ·d. The three-way
    /// product is formed without intermediate rounding to the subnormal range (γ = 1e-300 with invstd = 1e-14 and r = 4e16
    /// lost 15 bits when multiplied left to right).
    /// </summary>
    private static (double Scale, double Shift) GivenAffine(T* gamma, T* beta, double* invstd, T* r, T* d, long c) =>
        (r == null ? Gamma(gamma, c) * invstd[c] : Exact<TElement, T>.Product(Gamma(gamma, c), invstd[c], D(r[c])),
         d == null ? Beta(beta, c) : Beta(beta, c) + Gamma(gamma, c) * D(d[c]));

    /// <summary>The coefficients of a map with given statistics fit the element type, and x − mean cannot overflow.</summary>
    private static bool GivenFits(double scale, double shift, T* gamma, T* r, long c, T mean) =>
        Exact<TElement, T>.Fits(scale, ZeroGamma(gamma, c) || (r != null && r[c] == T.Zero)) && T.IsFinite(E(shift)) && Exact<TElement, T>.CenterFits(D(mean));

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
            WorkerPool.For(g.ChannelGroups, ref job);
        }
        else
        {
            ChannelPasses<TElement, T>.RowGradientSums(g, x, dy, saveMean, meanDy, meanDyXhat);
            ForEachChannel(g.C, new RowGradientMeans { G = g, X = x, Dy = dy, Mean = saveMean, Invstd = saveInvstd, MeanDy = meanDy, MeanDyXhat = meanDyXhat });
            if (dx != null)
                RowGradientApply(g, x, dy, dx, gamma, r, saveMean, saveInvstd, meanDy, meanDyXhat);
        }
        ParameterGradients(g.C, g.M, r, d, meanDy, meanDyXhat, dgamma, dbeta);
    }

    /// <summary>
    /// Σdy and Σdy·(x − mean) of every channel in float64: the local part of a backward split across processes.
    /// Sums that overflowed in the fast path are taken in float64.
    /// </summary>
    public static void GradientSums(in Geometry<TElement> g, TElement* x, TElement* dy, T* mean, double* sumDy, double* sumDyCentered)
    {
        if (g.ChannelsLast)
            ChannelPasses<TElement, T>.RowGradientSums(g, x, dy, mean, sumDy, sumDyCentered);
        else
        {
            var job = new PlanarGradientSumsJob { G = g, X = x, Dy = dy, Mean = mean, SumDy = sumDy, SumDyCentered = sumDyCentered };
            WorkerPool.For(g.ChannelGroups, ref job);
        }
        for (long c = 0; c < g.C; c++)
        {
            if (double.IsFinite(sumDy[c]) && double.IsFinite(sumDyCentered[c]))
                continue;
            var (meanDy, meanDyCentered) = Exact<TElement, T>.GradientMeans(x, dy, g.Channel(c), D(mean[c]), 1);
            (sumDy[c], sumDyCentered[c]) = (meanDy * g.M, meanDyCentered * g.M);
        }
    }

    private struct PlanarGradientSumsJob : IParallelJob
    {
        public Geometry<TElement> G;
        public TElement* X, Dy;
        public T* Mean;
        public double* SumDy, SumDyCentered;

        public void Run(long task)
        {
            var (first, count) = G.ChannelGroup(task);
            ChannelPasses<TElement, T>.PlanarGradientSums(G, X, Dy, first, count, Mean + first, SumDy + first, SumDyCentered + first);
        }
    }

    /// <summary>
    /// The training gradient from sums over the whole batch (<paramref name="count"/> members per channel, Σdy and
    /// Σdy·(x − mean) gathered from every part of it): the element-wise step of a backward split across processes.
    /// </summary>
    public static void BackwardWithSums(in Geometry<TElement> g, TElement* x, TElement* dy, TElement* dx, T* gamma, T* mean, T* invstd,
        double count, double* sumDy, double* sumDyCentered, T* dgamma, T* dbeta, T* r, T* d)
    {
        using var meanDy = new NativeBuffer<double>(g.C);
        using var meanDyXhat = new NativeBuffer<double>(g.C);
        for (long c = 0; c < g.C; c++)
            (meanDy.Pointer[c], meanDyXhat.Pointer[c]) = (sumDy[c] / count, sumDyCentered[c] * D(invstd[c]) / count);
        if (dx != null)
        {
            if (g.ChannelsLast)
                RowGradientApply(g, x, dy, dx, gamma, r, mean, invstd, meanDy, meanDyXhat);
            else
            {
                var job = new PlanarGradientApplyJob
                {
                    G = g, X = x, Dy = dy, Dx = dx, Gamma = gamma, R = r, Mean = mean, Invstd = invstd, MeanDy = meanDy, MeanDyXhat = meanDyXhat,
                };
                WorkerPool.For(g.ChannelGroups, ref job);
            }
        }
        ParameterGradients(g.C, count, r, d, meanDy, meanDyXhat, dgamma, dbeta);
    }

    private struct PlanarGradientApplyJob : IParallelJob
    {
        public Geometry<TElement> G;
        public TElement* X, Dy, Dx;
        public T* Gamma, R, Mean, Invstd;
        public double* MeanDy, MeanDyXhat;

        public void Run(long task)
        {
            var (first, count) = G.ChannelGroup(task);
            PlanarGradientApply(G, X, Dy, Dx, Gamma, R, Mean, Invstd, first, count, MeanDy + first, MeanDyXhat + first);
        }
    }

    /// <summary>dgamma = count·mean(dy·x̂) (Batch Renormalization: count·(r·mean(dy·x̂) + d·mean(dy))), dbeta = count·mean(dy).</summary>
    private static void ParameterGradients(long channels, double count, T* r, T* d, double* meanDy, double* meanDyXhat, T* dgamma, T* dbeta)
    {
        for (long c = 0; c < channels; c++)
        {
            if (dgamma != null)
                dgamma[c] = E(r == null ? meanDyXhat[c] * count : Exact<TElement, T>.Combination(count, D(r[c]), meanDyXhat[c], D(d[c]), meanDy[c]));
            if (dbeta != null)
                dbeta[c] = E(meanDy[c] * count);
        }
    }

    /// <summary>dx of a channels-last tensor from the per-channel gradient means: one vector pass, then float64 for channels whose coefficients do not fit.</summary>
    private static void RowGradientApply(in Geometry<TElement> g, TElement* x, TElement* dy, TElement* dx, T* gamma, T* r, T* mean, T* invstd,
        double* meanDy, double* meanDyXhat)
    {
        using var center = new NativeBuffer<T>(g.C);
        using var dyCenter = new NativeBuffer<T>(g.C);
        using var dyScale = new NativeBuffer<T>(g.C);
        using var xScale = new NativeBuffer<T>(g.C);
        long misfits = 0;
        var coefficients = new RowGradientCoefficients
        {
            Gamma = gamma, R = r, Mean = mean, Invstd = invstd, MeanDy = meanDy, MeanDyXhat = meanDyXhat,
            Center = center, DyCenter = dyCenter, DyScale = dyScale, XScale = xScale, Misfits = &misfits,
        };
        ForEachChannel(g.C, coefficients);
        ChannelPasses<TElement, T>.GradientApply(g, x, dy, dx, center, dyCenter, dyScale, xScale);
        for (long c = 0; misfits > 0 && c < g.C; c++)
            if (!coefficients.Of(c).Fits)
            {
                Exact<TElement, T>.GradientApply(x, dx, dx, g.Channel(c), D(mean[c]), D(invstd[c]), Gamma(gamma, c), R(r, c), meanDy[c], meanDyXhat[c]);
                misfits--;
            }
    }

    /// <summary>mean(dy) and mean(dy·x̂) of channel c of a channels-last tensor from its sums (see <see cref="GradientMeans"/>), in place.</summary>
    private struct RowGradientMeans : IChannelWork
    {
        public Geometry<TElement> G;
        public TElement* X, Dy;
        public T* Mean, Invstd;
        public double* MeanDy, MeanDyXhat;

        /// <summary>In vectors where all eight channels' sums are finite (else the float64 redo of <see cref="GradientMeans"/>, one by one).</summary>
        public readonly bool Eight(long c)
        {
            var members = Vector512.Create((double)G.M);
            var meanDy = Vector512.Load(MeanDy + c) / members;
            var meanDyXhat = Vector512.Load(MeanDyXhat + c) * Lanes<T>.Load(Invstd + c) / members;
            if ((Exact<TElement, T>.Finite(meanDy) & Exact<TElement, T>.Finite(meanDyXhat)).ExtractMostSignificantBits() != 0xFF)
                return false;
            meanDy.Store(MeanDy + c);
            meanDyXhat.Store(MeanDyXhat + c);
            return true;
        }

        public readonly void One(long c) => (MeanDy[c], MeanDyXhat[c]) = GradientMeans(G, X, Dy, c, D(Mean[c]), D(Invstd[c]), (MeanDy[c], MeanDyXhat[c]));
    }

    /// <summary>
    /// Channel c's dx coefficients for the channels-last map, or the identity (dx = dy + x·0) where they do not fit the
    /// element type; such channels are counted and found again after the map (see <see cref="MapCoefficients"/>), to be
    /// rewritten in float64.
    /// </summary>
    private struct RowGradientCoefficients : IChannelWork
    {
        public T* Gamma, R, Mean, Invstd;
        public double* MeanDy, MeanDyXhat;
        public T* Center, DyCenter, DyScale, XScale;
        public long* Misfits;

        public readonly (double A, double B, bool Fits) Of(long c)
        {
            var (a, b) = GradientCoefficients(BatchNorm<TElement, T>.Gamma(Gamma, c), BatchNorm<TElement, T>.R(R, c), D(Invstd[c]), MeanDyXhat[c]);
            return (a, b, GradientFits(a, b, ZeroGamma(Gamma, R, c), MeanDy[c], MeanDyXhat[c], D(Mean[c])));
        }

        /// <summary>In vectors where <see cref="Of"/>'s products need no scaling (γ·r and a·invstd normal numbers, or a factor 0).</summary>
        public readonly bool Eight(long c)
        {
            var zero = Vector512<double>.Zero;
            var gamma = Gamma == null ? Vector512<double>.One : Lanes<T>.Load(Gamma + c);
            var r = R == null ? Vector512<double>.One : Lanes<T>.Load(R + c);
            var invstd = Lanes<T>.Load(Invstd + c);
            var meanDyXhat = Vector512.Load(MeanDyXhat + c);
            var gammaR = gamma * r;
            var a = gammaR * invstd;
            var aInvstd = a * invstd;
            var zeroGamma = Vector512.Equals(gamma, zero) | Vector512.Equals(r, zero);
            var plain = (Exact<TElement, T>.NormalFloat64(gammaR) | zeroGamma) & (Exact<TElement, T>.NormalFloat64(aInvstd) | Vector512.Equals(a, zero) | Vector512.Equals(invstd, zero));
            if (plain.ExtractMostSignificantBits() != 0xFF)
                return false;
            var b = -(aInvstd * meanDyXhat);
            var meanDy = Vector512.Load(MeanDy + c);
            var mean = Lanes<T>.Load(Mean + c);
            var fits = Exact<TElement, T>.Fits(a, zeroGamma) & Exact<TElement, T>.Fits(b, zeroGamma | Vector512.Equals(meanDyXhat, zero))
                & Exact<TElement, T>.CenterFits(meanDy) & Exact<TElement, T>.CenterFits(mean);
            Lanes<T>.Store(Vector512.ConditionalSelect(fits, mean, zero), Center + c);
            Lanes<T>.Store(Vector512.ConditionalSelect(fits, meanDy, zero), DyCenter + c);
            Lanes<T>.Store(Vector512.ConditionalSelect(fits, a, Vector512<double>.One), DyScale + c);
            Lanes<T>.Store(Vector512.ConditionalSelect(fits, b, zero), XScale + c);
            int misfits = Lanes<T>.Count - BitOperations.PopCount(fits.ExtractMostSignificantBits());
            if (misfits != 0)
                Interlocked.Add(ref *Misfits, misfits);
            return true;
        }

        public readonly void One(long c)
        {
            var (a, b, fits) = Of(c);
            (Center[c], DyCenter[c], DyScale[c], XScale[c]) = fits ? (Mean[c], E(MeanDy[c]), E(a), E(b)) : (T.Zero, T.Zero, T.One, T.Zero);
            if (!fits)
                Interlocked.Increment(ref *Misfits);
        }
    }

    /// <summary>dx of NCHW channel <paramref name="c"/> from its gradient means, slab by slab (or in float64 where the coefficients do not fit).</summary>
    /// <summary>
    /// dx of the <paramref name="count"/> NCHW channels from <paramref name="first"/> (one gradient mean of each kind per
    /// channel): in float64 for a channel whose coefficients do not fit, the others' slabs of each sample in memory order.
    /// </summary>
    [SkipLocalsInit]
    private static void PlanarGradientApply(in Geometry<TElement> g, TElement* x, TElement* dy, TElement* dx, T* gamma, T* r, T* mean, T* invstd, long first,
        long count, double* meanDy, double* meanDyXhat)
    {
        const int Most = Geometry<TElement>.MostAdjacentChannels;
        T* coefficients = stackalloc T[3 * Most];
        bool* fits = stackalloc bool[Most];
        for (long j = 0; j < count; j++)
        {
            long c = first + j;
            double inverse = D(invstd[c]);
            var (a, b) = GradientCoefficients(Gamma(gamma, c), R(r, c), inverse, meanDyXhat[j]);
            fits[j] = GradientFits(a, b, ZeroGamma(gamma, r, c), meanDy[j], meanDyXhat[j], D(mean[c]));
            if (!fits[j])
                Exact<TElement, T>.GradientApply(x, dy, dx, g.Channel(c), D(mean[c]), inverse, Gamma(gamma, c), R(r, c), meanDy[j], meanDyXhat[j]);
            (coefficients[3 * j], coefficients[3 * j + 1], coefficients[3 * j + 2]) = (E(meanDy[j]), E(a), E(b));
        }
        for (long n = 0; n < g.N; n++)
            for (long j = 0; j < count; j++)
            {
                if (!fits[j])
                    continue;
                long at = g.Slab(n, first + j);
                K.GradientApply.MembersContiguous(x + at, dy + at, dx + at, (nint)g.S, mean[first + j], coefficients[3 * j], coefficients[3 * j + 1],
                    coefficients[3 * j + 2], g.StreamSlabs);
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
    /// <summary>
    /// γ·r is exactly 0: γ or r is 0. (Not their product: γ = 5e-324 with r = 0.5 rounds to 0, while dx, scaled by huge
    /// dy, is not.)
    /// </summary>
    private static bool ZeroGamma(T* gamma, T* r, long c) => ZeroGamma(gamma, c) || (r != null && r[c] == T.Zero);

    /// <summary>
    /// dx = a·(dy − mean(dy)) + (x − mean)·b with a = γ·r·invstd, b = −a·invstd·mean(dy·x̂) (r = 1 for Batch
    /// Normalization), each product formed without an intermediate subnormal (a·invstd alone can be one when γ is tiny
    /// and the data huge: 1e-220 with |x| = 1e48 lost 20 bits of dx).
    /// </summary>
    private static (double A, double B) GradientCoefficients(double gamma, double r, double invstd, double meanDyXhat)
    {
        double a = Exact<TElement, T>.Product(gamma, r, invstd);
        return (a, -Exact<TElement, T>.Product(a, invstd, meanDyXhat));
    }

    /// <summary>The gradient coefficients fit the element type, and neither dy − mean(dy) nor x − mean can overflow.</summary>
    private static bool GradientFits(double a, double b, bool zeroGamma, double meanDy, double meanDyXhat, double mean) =>
        Exact<TElement, T>.Fits(a, zeroGamma) && Exact<TElement, T>.Fits(b, zeroGamma || meanDyXhat == 0) && Exact<TElement, T>.CenterFits(meanDy) && Exact<TElement, T>.CenterFits(mean);

    private struct PlanarBackwardJob : IParallelJob
    {
        public Geometry<TElement> G;
        public TElement* X, Dy, Dx;
        public T* Gamma, R, Mean, Invstd;
        public double* MeanDy, MeanDyXhat;

        /// <summary>
        /// A group of adjacent channels: their sums (before any dx is written: dx may be dy), their means, then their dx,
        /// each sample's slabs in memory order.
        /// </summary>
        public void Run(long task)
        {
            var (first, count) = G.ChannelGroup(task);
            ChannelPasses<TElement, T>.PlanarGradientSums(G, X, Dy, first, count, Mean + first, MeanDy + first, MeanDyXhat + first);
            for (long c = first; c < first + count; c++)
                (MeanDy[c], MeanDyXhat[c]) = GradientMeans(G, X, Dy, c, D(Mean[c]), D(Invstd[c]), (MeanDy[c], MeanDyXhat[c]));
            if (Dx != null)
                PlanarGradientApply(G, X, Dy, Dx, Gamma, R, Mean, Invstd, first, count, MeanDy + first, MeanDyXhat + first);
        }
    }

    /// <summary>
    /// The gradient of the inference forward (frozen statistics): dx = dy·γ/σ, dbeta = Σdy,
    /// dgamma = Σdy·(x − running_mean)/σ. The sums are taken before dx is written (dx may be dy), per
    /// group of adjacent channels in NCHW (Geometry.AdjacentChannels) so its slices are read again from cache.
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
            WorkerPool.For(g.ChannelGroups, ref job);
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

        /// <summary>A group of adjacent channels: their gradient sums about the running means, then their dx, each sample's slabs in memory order.</summary>
        [SkipLocalsInit]
        public void Run(long task)
        {
            const int Most = Geometry<TElement>.MostAdjacentChannels;
            var (first, count) = G.ChannelGroup(task);
            double* sumDy = stackalloc double[2 * Most];
            double* sumDyCentered = sumDy + Most;
            T* scales = stackalloc T[Most];
            bool* fits = stackalloc bool[Most];
            ChannelPasses<TElement, T>.PlanarGradientSums(G, X, Dy, first, count, RunningMean + first, sumDy, sumDyCentered);
            for (long j = 0; j < count; j++)
            {
                long c = first + j;
                double inverseSigma = InverseSigma(RunningVar, Eps, c), a = Gamma(Gamma, c) * inverseSigma;
                (MeanDy[c], MeanDyXhat[c]) = GradientMeans(G, X, Dy, c, D(RunningMean[c]), inverseSigma, (sumDy[j], sumDyCentered[j]));
                fits[j] = Exact<TElement, T>.Fits(a, ZeroGamma(Gamma, c));
                scales[j] = fits[j] ? E(a) : T.Zero;
            }
            if (Dx == null)
                return;
            for (long j = 0; j < count; j++)
                if (!fits[j])
                    Exact<TElement, T>.Affine(Dy, Dx, G.Channel(first + j), 0, InverseSigma(RunningVar, Eps, first + j), 1, 0, Gamma(Gamma, first + j), 0);
            for (long n = 0; n < G.N; n++)
                for (long j = 0; j < count; j++)
                {
                    if (!fits[j])
                        continue;
                    long at = G.Slab(n, first + j);
                    K.ScaleShift.MembersContiguous(Dy + at, Dx + at, (nint)G.S, T.Zero, scales[j], T.Zero, G.StreamSlabs);
                }
        }
    }
}
