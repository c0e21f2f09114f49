using System;
using System.Numerics;
using BnNative.Runtime;
using K = BnNative.Kernels.Kernels;

namespace BnNative.Operations;

/// <summary>
/// Layer Normalization (SPEC §2.3) on validated arguments: statistics over the C channels of each of
/// the P = N·S positions. NC and NHWC: a position's channels are contiguous (MembersContiguous, one row per
/// position); tasks are blocks of rows. NCHW: a sample is C rows of S positions, so a task is a tile of
/// positions across all C rows (GroupsContiguous), read in runs of the tile's width. Each task finishes its
/// positions (statistics, then the map, from cache); dgamma and dbeta are per-task partial sums merged in
/// task order, so results are bitwise the same for any thread count.
/// </summary>
internal static unsafe class LayerNorm<T> where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private const long TaskBytes = 512 * 1024;

    /// <summary>Rows one reducing kernel call adds in the element type before the sum goes on in float64.</summary>
    private const long RowsPerChunk = 256;

    private static T E(double value) => T.CreateTruncating(value);
    private static double D(T value) => double.CreateTruncating(value);

    /// <summary>The tasks of a Layer Normalization over a tensor.</summary>
    internal readonly struct Plan
    {
        public readonly long N, C, S;
        public readonly bool ChannelsLast;
        /// <summary>NC/NHWC: positions (rows) per task. NCHW: positions of one sample per task (the tile width).</summary>
        public readonly long PositionsPerTask;
        public readonly int TasksPerSample, TaskCount;
        /// <summary>Whether rows of y or dx (NC/NHWC) are written with non-temporal stores (see Geometry.Streams).</summary>
        public readonly bool StreamRuns;

        public Plan(Abi.TensorDesc* desc)
        {
            N = desc->N;
            C = desc->C;
            S = desc->H * desc->W;
            ChannelsLast = desc->Layout != (int)Abi.Layout.NCHW;
            StreamRuns = Geometry<T>.Streams(N * C * S, C);
            long perTask = Math.Max(1, TaskBytes / (C * sizeof(T)));
            if (ChannelsLast)
            {
                PositionsPerTask = perTask;
                TasksPerSample = 1;
                TaskCount = checked((int)((N * S + perTask - 1) / perTask));
            }
            else
            {
                // Tiles are whole vectors wide (at least 64 positions) and short enough to reduce in one chunk.
                PositionsPerTask = Math.Min(S, Math.Min(Geometry<T>.ChunkLength, Math.Max(64, perTask / 64 * 64)));
                TasksPerSample = checked((int)((S + PositionsPerTask - 1) / PositionsPerTask));
                TaskCount = checked((int)(N * TasksPerSample));
            }
        }

        /// <summary>Task → (first position p = n·S + s, positions). An NCHW task lies within one sample.</summary>
        public (long First, long Count) Positions(int task)
        {
            if (ChannelsLast)
            {
                long first = task * PositionsPerTask;
                return (first, Math.Min(PositionsPerTask, N * S - first));
            }
            long n = task / TasksPerSample, s = task % TasksPerSample * PositionsPerTask;
            return (n * S + s, Math.Min(PositionsPerTask, S - s));
        }

        /// <summary>Offset of (position p, channel 0).</summary>
        public long Offset(long p) => ChannelsLast ? p * C : p / S * C * S + p % S;

        /// <summary>Elements between consecutive channels of a position.</summary>
        public long ChannelStride => ChannelsLast ? 1 : S;
    }

    // ---- forward ----------------------------------------------------------------------------------------

    public static void Forward(Abi.TensorDesc* desc, T* x, T* y, T* gamma, T* beta, double eps, T* saveMean, T* saveInvstd)
    {
        var plan = new Plan(desc);
        using var ones = Filled(gamma == null ? plan.C : 0, T.One);
        using var zeros = Filled(beta == null ? plan.C : 0, T.Zero);
        var job = new ForwardJob
        {
            Plan = plan, X = x, Y = y, Gamma = gamma != null ? gamma : ones, Beta = beta != null ? beta : zeros,
            Eps = eps, SaveMean = saveMean, SaveInvstd = saveInvstd,
        };
        WorkerPool.For(plan.TaskCount, ref job);
    }

    private static NativeBuffer<T> Filled(long count, T value)
    {
        var buffer = new NativeBuffer<T>(count);
        new Span<T>(buffer.Pointer, checked((int)count)).Fill(value);
        return buffer;
    }

    private struct ForwardJob : IParallelJob
    {
        public Plan Plan;
        public T* X, Y, Gamma, Beta, SaveMean, SaveInvstd;
        public double Eps;

        public void Run(int task)
        {
            var (first, count) = Plan.Positions(task);
            if (Plan.ChannelsLast)
            {
                for (long p = first; p < first + count; p++)
                {
                    T* row = X + p * Plan.C;
                    var (mean, variance) = RowStatistics(row, Plan.C);
                    double invstd = 1 / Math.Sqrt(variance + Eps);
                    Save(p, mean, invstd);
                    K.LayerNormApply.MembersContiguous(row, Y + p * Plan.C, (nint)Plan.C, E(mean), E(invstd), Gamma, Beta, Plan.StreamRuns);
                }
                return;
            }
            using var center = new NativeBuffer<T>(count);
            using var scale = new NativeBuffer<T>(count);
            using var moments = new NativeBuffer<double>(2 * count);
            long at = Plan.Offset(first);
            TileStatistics(Plan, X + at, count, moments, moments.Pointer + count);
            for (long k = 0; k < count; k++)
            {
                double mean = moments.Pointer[k], invstd = 1 / Math.Sqrt(moments.Pointer[count + k] + Eps);
                Save(first + k, mean, invstd);
                (center.Pointer[k], scale.Pointer[k]) = (E(mean), E(invstd));
            }
            K.LayerNormApply.GroupsContiguous(X + at, Y + at, (nint)Plan.C, (nint)count, (nint)Plan.S, center, scale, Gamma, Beta);
        }

        private readonly void Save(long p, double mean, double invstd)
        {
            if (SaveMean != null)
                SaveMean[p] = E(mean);
            if (SaveInvstd != null)
                SaveInvstd[p] = E(invstd);
        }
    }

    /// <summary>
    /// Mean and biased variance of a row in one pass when that is exact enough: shifted by the row's first
    /// value d = x − x₀, var = Σd²/C − m² with m = Σd/C loses (1 + m²/var) times the rounding of the sums,
    /// so when the shift was poor (m² > 4·var: the first value lies more than two standard deviations from
    /// the mean, about one row in twenty of normal data) the row is done again in two passes. A row of one
    /// value gives d = 0, so mean = x₀ and var = 0 exactly.
    /// </summary>
    private static (double Mean, double Variance) RowStatistics(T* row, long length)
    {
        if (length > Geometry<T>.ChunkLength)
            return ContiguousStatistics(row, length);
        T shift = row[0], sum = T.Zero, squares = T.Zero;
        K.ShiftedMoments.MembersContiguous(row, (nint)length, shift, ref sum, ref squares);
        double m = D(sum) / length, variance = D(squares) / length - m * m;
        if (!(m * m <= 4 * variance))
            return ContiguousStatistics(row, length);
        return (D(shift) + m, Math.Max(0, variance));
    }

    /// <summary>Mean and biased variance of <paramref name="length"/> contiguous values, about the first, chunk by chunk.</summary>
    private static (double Mean, double Variance) ContiguousStatistics(T* run, long length)
    {
        var moments = new Moments();
        ChannelPasses<T>.AddRun(ref moments, run, length, run[0]);
        return (D(run[0]) + moments.Mean, moments.M2 / moments.Count);
    }

    /// <summary>
    /// Mean and biased variance of each of <paramref name="width"/> NCHW positions (columns of C rows, S apart),
    /// about the position's channel-0 value: sums over the rows, then squares about the rounded mean.
    /// </summary>
    private static void TileStatistics(in Plan plan, T* tile, long width, double* mean, double* variance)
    {
        using var chunk = new NativeBuffer<T>(2 * width);
        T* chunkSum = chunk, roundedMean = chunk.Pointer + width;
        T* shift = tile; // channel 0 of every position of the tile
        new Span<double>(mean, (int)width).Clear();
        new Span<double>(variance, (int)width).Clear();
        for (long start = 0; start < plan.C; start += RowsPerChunk)
        {
            new Span<T>(chunkSum, (int)width).Clear();
            K.ShiftedSum.GroupsContiguous(tile + start * plan.S, (nint)Math.Min(RowsPerChunk, plan.C - start), (nint)width, (nint)plan.S, shift, chunkSum);
            for (long k = 0; k < width; k++)
                mean[k] += D(chunkSum[k]);
        }
        for (long k = 0; k < width; k++)
            roundedMean[k] = E(mean[k] / plan.C);
        for (long start = 0; start < plan.C; start += RowsPerChunk)
        {
            new Span<T>(chunkSum, (int)width).Clear();
            K.CenteredSquares.GroupsContiguous(tile + start * plan.S, (nint)Math.Min(RowsPerChunk, plan.C - start), (nint)width, (nint)plan.S, shift, roundedMean, chunkSum);
            for (long k = 0; k < width; k++)
                variance[k] += D(chunkSum[k]);
        }
        for (long k = 0; k < width; k++)
        {
            var (m, m2) = Moments.OfChunk(plan.C, mean[k], D(roundedMean[k]), variance[k]);
            mean[k] = D(shift[k]) + m;
            variance[k] = m2 / plan.C;
        }
    }

    // ---- backward ---------------------------------------------------------------------------------------

    /// <summary>
    /// g = dy·γ; dx = invstd·(g − mean_c(g) − x̂·mean_c(g·x̂)) folded to dx = g·invstd + (x − mean)·xScale + bias
    /// per position; dgamma_c = Σ_p dy·x̂ and dbeta_c = Σ_p dy. Per task: the position sums, then the task's
    /// dgamma/dbeta partials (before dx is written, so dx may be dy), then dx, all from cache.
    /// </summary>
    public static void Backward(Abi.TensorDesc* desc, T* x, T* dy, T* dx, T* gamma, T* saveMean, T* saveInvstd, T* dgamma, T* dbeta)
    {
        var plan = new Plan(desc);
        bool parameterGradients = dgamma != null || dbeta != null;
        using var ones = Filled(gamma == null ? plan.C : 0, T.One);
        using var partial = new NativeBuffer<double>(parameterGradients ? 2L * plan.TaskCount * plan.C : 0);
        var job = new BackwardJob
        {
            Plan = plan, X = x, Dy = dy, Dx = dx, Gamma = gamma != null ? gamma : ones, Mean = saveMean, Invstd = saveInvstd,
            Partial = parameterGradients ? partial.Pointer : null,
        };
        WorkerPool.For(plan.TaskCount, ref job);
        if (!parameterGradients)
            return;
        for (long c = 0; c < plan.C; c++)
        {
            double sumDy = 0, sumDyNormalized = 0;
            for (long task = 0; task < plan.TaskCount; task++)
            {
                sumDy += partial.Pointer[2 * task * plan.C + c];
                sumDyNormalized += partial.Pointer[(2 * task + 1) * plan.C + c];
            }
            if (dgamma != null)
                dgamma[c] = E(sumDyNormalized);
            if (dbeta != null)
                dbeta[c] = E(sumDy);
        }
    }

    private struct BackwardJob : IParallelJob
    {
        public Plan Plan;
        public T* X, Dy, Dx, Gamma, Mean, Invstd;
        public double* Partial;

        public void Run(int task)
        {
            var (first, count) = Plan.Positions(task);
            long c = Plan.C, at = Plan.Offset(first);
            if (Partial != null)
                ParameterGradients(task, first, count, at);
            if (Dx == null)
                return;
            if (Plan.ChannelsLast)
            {
                for (long p = first; p < first + count; p++)
                {
                    long row = p * c;
                    T rowSumG = T.Zero, rowSumGCentered = T.Zero;
                    K.LayerNormGradientSums.MembersContiguous(X + row, Dy + row, (nint)c, Mean[p], Gamma, ref rowSumG, ref rowSumGCentered);
                    var (rowXScale, rowBias) = Coefficients(D(Invstd[p]), D(rowSumG), D(rowSumGCentered));
                    K.LayerNormGradientApply.MembersContiguous(X + row, Dy + row, Dx + row, (nint)c, Mean[p], Invstd[p], rowXScale, rowBias, Gamma, Plan.StreamRuns);
                }
                return;
            }
            using var sums = new NativeBuffer<T>(2 * count);
            using var coefficients = new NativeBuffer<T>(2 * count);
            T* sumG = sums, sumGCentered = sums.Pointer + count, xScale = coefficients, bias = coefficients.Pointer + count;
            K.LayerNormGradientSums.GroupsContiguous(X + at, Dy + at, (nint)c, (nint)count, (nint)Plan.S, Mean + first, Gamma, sumG, sumGCentered);
            for (long k = 0; k < count; k++)
                (xScale[k], bias[k]) = Coefficients(D(Invstd[first + k]), D(sumG[k]), D(sumGCentered[k]));
            K.LayerNormGradientApply.GroupsContiguous(X + at, Dy + at, Dx + at, (nint)c, (nint)count, (nint)Plan.S,
                Mean + first, Invstd + first, xScale, bias, Gamma);
        }

        /// <summary>dx = g·invstd − (x − mean)·invstd³·Σg(x − mean)/C − invstd·Σg/C.</summary>
        private readonly (T XScale, T Bias) Coefficients(double invstd, double sumG, double sumGCentered) =>
            (E(-invstd * invstd * invstd * sumGCentered / Plan.C), E(-invstd * sumG / Plan.C));

        /// <summary>This task's Σdy and Σdy·x̂ per channel, into its slot of the partials.</summary>
        private readonly void ParameterGradients(int task, long first, long count, long at)
        {
            long c = Plan.C;
            double* sumDy = Partial + 2 * task * c, sumDyNormalized = sumDy + c;
            if (Plan.ChannelsLast)
            {
                using var chunk = new NativeBuffer<T>(2 * c);
                T* a = chunk, b = chunk.Pointer + c;
                for (long start = 0; start < count; start += RowsPerChunk)
                {
                    long rows = Math.Min(RowsPerChunk, count - start), offset = at + start * c;
                    new Span<T>(a, (int)(2 * c)).Clear();
                    K.LayerNormParameterGradients.GroupsContiguous(X + offset, Dy + offset, (nint)rows, (nint)c, (nint)c,
                        Mean + first + start, Invstd + first + start, a, b);
                    for (long k = 0; k < c; k++)
                    {
                        sumDy[k] += D(a[k]);
                        sumDyNormalized[k] += D(b[k]);
                    }
                }
                return;
            }
            for (long k = 0; k < c; k++)
            {
                T a = T.Zero, b = T.Zero;
                long offset = at + k * Plan.S;
                K.LayerNormParameterGradients.MembersContiguous(X + offset, Dy + offset, (nint)count, Mean + first, Invstd + first, ref a, ref b);
                sumDy[k] = D(a);
                sumDyNormalized[k] = D(b);
            }
        }
    }
}
