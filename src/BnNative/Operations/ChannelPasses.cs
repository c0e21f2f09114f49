using System;
using System.Numerics;
using BnNative.Runtime;
using K = BnNative.Kernels.Kernels;

namespace BnNative.Operations;

/// <summary>
/// The passes over a tensor that BatchNorm-style operations are built from, for both layouts, each split
/// into tasks fixed by the shape (so results do not depend on the thread count):
/// <list type="bullet">
/// <item>statistics: per-channel mean and biased variance, about the channel's first value and merged
/// chunk by chunk (<see cref="Moments"/>), never Σx² − (Σx)²/M;</item>
/// <item>gradient sums: per-channel Σdy and Σdy·(x − center), optionally writing dx = dy·dyScale on the way;</item>
/// <item>affine maps: y = (x − center)·scale + shift and dx = dy·dyScale + (x − center)·xScale + bias.</item>
/// </list>
/// Per-channel coefficients are arrays of T with C entries. In NCHW a task is one channel, so a channel's
/// slice is read from memory once by a fused operation and revisited from cache (see BatchNorm).
/// </summary>
internal static unsafe class ChannelPasses<T> where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public static T E(double value) => T.CreateTruncating(value);
    public static double D(T value) => double.CreateTruncating(value);

    // ---- statistics ---------------------------------------------------------------------------------

    /// <summary>
    /// Mean and biased variance of every channel of a channels-last tensor, in float64. One pass per task
    /// over its rows sums d = x − shift and d², where the shift is the mean of the channel's first rows
    /// (a power of two of them, summed pairwise, so a constant channel's shift is its value exactly and
    /// every d is 0). var = Σd²/n − m² with m = Σd/n then loses at most (1 + m²/var) times the rounding
    /// of the sums; where m² > var in a task (the shift was poor for that channel), that channel's rows of
    /// the task are done again in two float64 passes.
    /// </summary>
    public static void RowStatistics(in Geometry<T> g, T* x, double* mean, double* variance)
    {
        // Per row block: the moments of every channel over the block's rows ([RowBlocks × C] each).
        long blocks = g.RowBlocks;
        using var shift = new NativeBuffer<T>(g.C);
        using var partialMean = new NativeBuffer<double>(blocks * g.C);
        using var partialM2 = new NativeBuffer<double>(blocks * g.C);
        using var scratch = new NativeBuffer<T>(2 * blocks * g.C);
        long shiftRows = g.M >= 8 ? 8 : g.M >= 4 ? 4 : g.M >= 2 ? 2 : 1;
        for (long c = 0; c < g.C; c++)
            shift.Pointer[c] = PairwiseSum(x + c, shiftRows, g.C) / E(shiftRows);
        var job = new RowStatisticsJob { G = g, X = x, Shift = shift, Mean = partialMean, M2 = partialM2, Scratch = scratch };
        WorkerPool.For(g.TaskCount, ref job);
        for (long c = 0; c < g.C; c++)
        {
            var moments = new Moments();
            for (int block = 0; block < blocks; block++)
                moments.Add(g.RowsIn(block), partialMean.Pointer[block * g.C + c], partialM2.Pointer[block * g.C + c]);
            mean[c] = D(shift.Pointer[c]) + moments.Mean;
            variance[c] = moments.M2 / moments.Count;
        }
    }

    /// <summary>Σ of <paramref name="count"/> (a power of two) values <paramref name="stride"/> apart, pairwise.</summary>
    private static T PairwiseSum(T* values, long count, long stride) => count == 1
        ? values[0]
        : PairwiseSum(values, count / 2, stride) + PairwiseSum(values + count / 2 * stride, count / 2, stride);

    /// <summary>Mean and biased variance of NCHW channel <paramref name="c"/>, chunk by chunk, about its first value.</summary>
    public static (double Mean, double Variance) PlanarStatistics(in Geometry<T> g, T* x, long c)
    {
        T shift = x[g.Slab(0, c)];
        var moments = new Moments();
        for (long n = 0; n < g.N; n++)
            AddRun(ref moments, x + g.Slab(n, c), g.S, shift);
        return (D(shift) + moments.Mean, moments.M2 / moments.Count);
    }

    /// <summary>
    /// Adds the moments (about <paramref name="shift"/>) of <paramref name="length"/> contiguous values, chunk
    /// by chunk: each chunk is two passes in L1 — the sum, then the squares about the chunk's rounded mean.
    /// </summary>
    public static void AddRun(ref Moments moments, T* run, long length, T shift)
    {
        for (long start = 0; start < length; start += Geometry<T>.ChunkLength)
        {
            long chunk = Math.Min(Geometry<T>.ChunkLength, length - start);
            T sum = T.Zero, squares = T.Zero;
            K.ShiftedSum.MembersContiguous(run + start, (nint)chunk, shift, ref sum);
            T roundedMean = sum / E(chunk);
            K.CenteredSquares.MembersContiguous(run + start, (nint)chunk, shift, roundedMean, ref squares);
            var (chunkMean, chunkM2) = Moments.OfChunk(chunk, D(sum), D(roundedMean), D(squares));
            moments.Add(chunk, chunkMean, chunkM2);
        }
    }

    /// <summary>One task of channels-last statistics: the moments of its tile's channels about their shifts (see RowStatistics).</summary>
    private struct RowStatisticsJob : IParallelJob
    {
        public Geometry<T> G;
        public T* X, Shift, Scratch;
        public double* Mean, M2;

        public void Run(int task)
        {
            var tile = G.TaskTile(task);
            long c = G.C, step = G.RowsPerChunk, first = tile.RowBlock * c + tile.FirstChannel;
            nint width = (nint)tile.Channels;
            double* sum = Mean + first, squares = M2 + first;
            T* chunkSum = Scratch + 2 * first, chunkSquares = chunkSum + tile.Channels, shift = Shift + tile.FirstChannel;
            T* rows = X + tile.Offset(c);
            long count = tile.Rows;

            for (long start = 0; start < count; start += step)
            {
                new Span<T>(chunkSum, (int)(2 * width)).Clear();
                K.ShiftedMoments.GroupsContiguous(rows + start * c, (nint)Math.Min(step, count - start), width, (nint)c, shift, chunkSum, chunkSquares);
                for (long k = 0; k < width; k++)
                {
                    sum[k] += D(chunkSum[k]);
                    squares[k] += D(chunkSquares[k]);
                }
            }
            for (long k = 0; k < width; k++)
            {
                double m = sum[k] / count, v = squares[k] / count - m * m;
                (sum[k], squares[k]) = m * m <= v ? (m, v * count) : TwoPass(rows + k, count, c, D(shift[k]));
            }
        }

        /// <summary>Mean about <paramref name="shift"/> and M2 of one channel's rows, in two float64 passes.</summary>
        private static (double Mean, double M2) TwoPass(T* channel, long count, long stride, double shift)
        {
            double sum = 0, squares = 0;
            for (long r = 0; r < count; r++)
                sum += D(channel[r * stride]) - shift;
            double mean = sum / count;
            for (long r = 0; r < count; r++)
            {
                double d = D(channel[r * stride]) - shift - mean;
                squares += d * d;
            }
            return (mean, squares);
        }
    }

    // ---- gradient sums ------------------------------------------------------------------------------

    /// <summary>
    /// Σdy and Σdy·(x − center) of every channel of a channels-last tensor, in float64; when
    /// <paramref name="dx"/> is given, also writes dx = dy·dyScale (the frozen-statistics gradient).
    /// </summary>
    public static void RowGradientSums(in Geometry<T> g, T* x, T* dy, T* center, T* dx, T* dyScale, double* sumDy, double* sumDyCentered)
    {
        // Per row block: both sums of every channel over the block's rows ([RowBlocks × 2 × C]).
        long blocks = g.RowBlocks;
        using var partial = new NativeBuffer<double>(2 * blocks * g.C);
        using var scratch = new NativeBuffer<T>(2 * blocks * g.C);
        var job = new RowGradientSumsJob
        {
            G = g, X = x, Dy = dy, Dx = dx, Center = center, DyScale = dyScale, Partial = partial, Scratch = scratch,
        };
        WorkerPool.For(g.TaskCount, ref job);
        for (long c = 0; c < g.C; c++)
        {
            double a = 0, b = 0;
            for (int block = 0; block < blocks; block++)
            {
                a += partial.Pointer[2 * block * g.C + c];
                b += partial.Pointer[(2 * block + 1) * g.C + c];
            }
            sumDy[c] = a;
            sumDyCentered[c] = b;
        }
    }

    /// <summary>Σdy and Σdy·(x − center) of NCHW channel <paramref name="c"/>; with <paramref name="dx"/>, also dx = dy·dyScale.</summary>
    public static (double SumDy, double SumDyCentered) PlanarGradientSums(in Geometry<T> g, T* x, T* dy, long c, T center, T* dx, T dyScale)
    {
        double sumDy = 0, sumDyCentered = 0;
        for (long n = 0; n < g.N; n++)
        {
            long slab = g.Slab(n, c);
            for (long start = 0; start < g.S; start += Geometry<T>.ChunkLength)
            {
                nint length = (nint)Math.Min(Geometry<T>.ChunkLength, g.S - start);
                long at = slab + start;
                T a = T.Zero, b = T.Zero;
                if (dx != null)
                    K.FrozenGradient.MembersContiguous(x + at, dy + at, dx + at, length, center, dyScale, ref a, ref b);
                else
                    K.GradientSums.MembersContiguous(x + at, dy + at, length, center, ref a, ref b);
                sumDy += D(a);
                sumDyCentered += D(b);
            }
        }
        return (sumDy, sumDyCentered);
    }

    private struct RowGradientSumsJob : IParallelJob
    {
        public Geometry<T> G;
        public T* X, Dy, Dx, Center, DyScale, Scratch;
        public double* Partial;

        public void Run(int task)
        {
            var tile = G.TaskTile(task);
            long c = G.C, step = G.RowsPerChunk, f = tile.FirstChannel;
            nint width = (nint)tile.Channels;
            double* sumDy = Partial + 2 * tile.RowBlock * c + f, sumDyCentered = sumDy + c;
            T* a = Scratch + 2 * tile.RowBlock * c + f, b = a + c;
            for (long start = 0; start < tile.Rows; start += step)
            {
                long at = (tile.FirstRow + start) * c + f;
                nint rows = (nint)Math.Min(step, tile.Rows - start);
                new Span<T>(a, (int)width).Clear();
                new Span<T>(b, (int)width).Clear();
                if (Dx != null)
                    K.FrozenGradient.GroupsContiguous(X + at, Dy + at, Dx + at, rows, width, (nint)c, Center + f, DyScale + f, a, b);
                else
                    K.GradientSums.GroupsContiguous(X + at, Dy + at, rows, width, (nint)c, Center + f, a, b);
                for (long k = 0; k < width; k++)
                {
                    sumDy[k] += D(a[k]);
                    sumDyCentered[k] += D(b[k]);
                }
            }
        }
    }

    // ---- affine maps --------------------------------------------------------------------------------

    /// <summary>y = (x − center)·scale + shift per channel, over the whole tensor.</summary>
    public static void ScaleShift(in Geometry<T> g, T* x, T* y, T* center, T* scale, T* shift)
    {
        var job = new ScaleShiftJob { G = g, X = x, Y = y, Center = center, Scale = scale, Shift = shift };
        WorkerPool.For(g.ChannelsLast ? g.TaskCount : g.PlanarTaskCount, ref job);
    }

    /// <summary>dx = dy·dyScale + (x − center)·xScale + bias per channel, over the whole tensor.</summary>
    public static void GradientApply(in Geometry<T> g, T* x, T* dy, T* dx, T* center, T* dyScale, T* xScale, T* bias)
    {
        var job = new GradientApplyJob { G = g, X = x, Dy = dy, Dx = dx, Center = center, DyScale = dyScale, XScale = xScale, Bias = bias };
        WorkerPool.For(g.ChannelsLast ? g.TaskCount : g.PlanarTaskCount, ref job);
    }

    private struct ScaleShiftJob : IParallelJob
    {
        public Geometry<T> G;
        public T* X, Y, Center, Scale, Shift;

        public void Run(int task)
        {
            if (G.ChannelsLast)
            {
                var tile = G.TaskTile(task);
                long at = tile.Offset(G.C), f = tile.FirstChannel;
                K.ScaleShift.GroupsContiguous(X + at, Y + at, (nint)tile.Rows, (nint)tile.Channels, (nint)G.C, Center + f, Scale + f, Shift + f);
                return;
            }
            var (slab, end) = G.PlanarTaskSlabs(task);
            for (; slab < end; slab++)
            {
                long c = slab % G.C, at = slab * G.S;
                K.ScaleShift.MembersContiguous(X + at, Y + at, (nint)G.S, Center[c], Scale[c], Shift[c], G.StreamSlabs);
            }
        }
    }

    private struct GradientApplyJob : IParallelJob
    {
        public Geometry<T> G;
        public T* X, Dy, Dx, Center, DyScale, XScale, Bias;

        public void Run(int task)
        {
            if (G.ChannelsLast)
            {
                var tile = G.TaskTile(task);
                long at = tile.Offset(G.C), f = tile.FirstChannel;
                K.GradientApply.GroupsContiguous(X + at, Dy + at, Dx + at, (nint)tile.Rows, (nint)tile.Channels, (nint)G.C, Center + f, DyScale + f, XScale + f, Bias + f);
                return;
            }
            var (slab, end) = G.PlanarTaskSlabs(task);
            for (; slab < end; slab++)
            {
                long c = slab % G.C, at = slab * G.S;
                K.GradientApply.MembersContiguous(X + at, Dy + at, Dx + at, (nint)G.S, Center[c], DyScale[c], XScale[c], Bias[c], G.StreamSlabs);
            }
        }
    }
}
