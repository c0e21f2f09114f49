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

    /// <summary>Mean and biased variance of every channel of a channels-last tensor, in float64.</summary>
    public static void RowStatistics(in Geometry<T> g, T* x, double* mean, double* variance)
    {
        int tasks = g.TaskCount;
        using var shift = new NativeBuffer<T>(g.C);
        using var partialMean = new NativeBuffer<double>(tasks * g.C);
        using var partialM2 = new NativeBuffer<double>(tasks * g.C);
        using var scratch = new NativeBuffer<T>(2 * tasks * g.C);
        new Span<T>(x, checked((int)g.C)).CopyTo(new Span<T>(shift, (int)g.C));
        var job = new RowStatisticsJob { G = g, X = x, Shift = shift, Mean = partialMean, M2 = partialM2, Scratch = scratch };
        WorkerPool.For(tasks, ref job);
        for (long c = 0; c < g.C; c++)
        {
            var moments = new Moments();
            for (int task = 0; task < tasks; task++)
                moments.Add(g.TaskRows(task).Count, partialMean.Pointer[task * g.C + c], partialM2.Pointer[task * g.C + c]);
            mean[c] = D(shift.Pointer[c]) + moments.Mean;
            variance[c] = moments.M2 / moments.Count;
        }
    }

    /// <summary>Mean and biased variance of NCHW channel <paramref name="c"/>, chunk by chunk, about its first value.</summary>
    public static (double Mean, double Variance) PlanarStatistics(in Geometry<T> g, T* x, long c)
    {
        T shift = x[g.Slab(0, c)];
        var moments = new Moments();
        for (long n = 0; n < g.N; n++)
        {
            T* slab = x + g.Slab(n, c);
            for (long start = 0; start < g.S; start += Geometry<T>.ChunkLength)
            {
                long length = Math.Min(Geometry<T>.ChunkLength, g.S - start);
                T sum = T.Zero, squares = T.Zero;
                K.ShiftedSum.MembersContiguous(slab + start, (nint)length, shift, ref sum);
                T roundedMean = sum / E(length);
                K.CenteredSquares.MembersContiguous(slab + start, (nint)length, shift, roundedMean, ref squares);
                var (chunkMean, chunkM2) = Moments.OfChunk(length, D(sum), D(roundedMean), D(squares));
                moments.Add(length, chunkMean, chunkM2);
            }
        }
        return (D(shift) + moments.Mean, moments.M2 / moments.Count);
    }

    /// <summary>
    /// One task of channels-last statistics: two passes over its rows (the second from cache) — sums about
    /// the channel's first value, then squares about the task's own mean — giving the task's moments.
    /// </summary>
    private struct RowStatisticsJob : IParallelJob
    {
        public Geometry<T> G;
        public T* X, Shift, Scratch;
        public double* Mean, M2;

        public void Run(int task)
        {
            long c = G.C, step = G.RowsPerChunk;
            var (first, count) = G.TaskRows(task);
            double* sum = Mean + task * c, squares = M2 + task * c;
            T* chunkSum = Scratch + 2 * task * c, roundedMean = chunkSum + c;
            T* rows = X + first * c;

            for (long start = 0; start < count; start += step)
            {
                new Span<T>(chunkSum, (int)c).Clear();
                K.ShiftedSum.GroupsContiguous(rows + start * c, (nint)Math.Min(step, count - start), (nint)c, (nint)c, Shift, chunkSum);
                for (long k = 0; k < c; k++)
                    sum[k] += D(chunkSum[k]);
            }
            for (long k = 0; k < c; k++)
                roundedMean[k] = E(sum[k] / count);
            for (long start = 0; start < count; start += step)
            {
                new Span<T>(chunkSum, (int)c).Clear();
                K.CenteredSquares.GroupsContiguous(rows + start * c, (nint)Math.Min(step, count - start), (nint)c, (nint)c, Shift, roundedMean, chunkSum);
                for (long k = 0; k < c; k++)
                    squares[k] += D(chunkSum[k]);
            }
            for (long k = 0; k < c; k++)
                (sum[k], squares[k]) = Moments.OfChunk(count, sum[k], D(roundedMean[k]), squares[k]);
        }
    }

    // ---- gradient sums ------------------------------------------------------------------------------

    /// <summary>
    /// Σdy and Σdy·(x − center) of every channel of a channels-last tensor, in float64; when
    /// <paramref name="dx"/> is given, also writes dx = dy·dyScale (the frozen-statistics gradient).
    /// </summary>
    public static void RowGradientSums(in Geometry<T> g, T* x, T* dy, T* center, T* dx, T* dyScale, double* sumDy, double* sumDyCentered)
    {
        int tasks = g.TaskCount;
        using var partial = new NativeBuffer<double>(2 * tasks * g.C);
        using var scratch = new NativeBuffer<T>(2 * tasks * g.C);
        var job = new RowGradientSumsJob
        {
            G = g, X = x, Dy = dy, Dx = dx, Center = center, DyScale = dyScale, Partial = partial, Scratch = scratch,
        };
        WorkerPool.For(tasks, ref job);
        for (long c = 0; c < g.C; c++)
        {
            double a = 0, b = 0;
            for (int task = 0; task < tasks; task++)
            {
                a += partial.Pointer[2 * task * g.C + c];
                b += partial.Pointer[(2 * task + 1) * g.C + c];
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
            long c = G.C, step = G.RowsPerChunk;
            var (first, count) = G.TaskRows(task);
            double* sumDy = Partial + 2 * task * c, sumDyCentered = sumDy + c;
            T* a = Scratch + 2 * task * c, b = a + c;
            for (long start = 0; start < count; start += step)
            {
                long at = (first + start) * c;
                nint rows = (nint)Math.Min(step, count - start);
                new Span<T>(a, (int)(2 * c)).Clear();
                if (Dx != null)
                    K.FrozenGradient.GroupsContiguous(X + at, Dy + at, Dx + at, rows, (nint)c, (nint)c, Center, DyScale, a, b);
                else
                    K.GradientSums.GroupsContiguous(X + at, Dy + at, rows, (nint)c, (nint)c, Center, a, b);
                for (long k = 0; k < c; k++)
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
                var (first, count) = G.TaskRows(task);
                long at = first * G.C;
                K.ScaleShift.GroupsContiguous(X + at, Y + at, (nint)count, (nint)G.C, (nint)G.C, Center, Scale, Shift);
                return;
            }
            var (slab, end) = G.PlanarTaskSlabs(task);
            for (; slab < end; slab++)
            {
                long c = slab % G.C, at = slab * G.S;
                K.ScaleShift.MembersContiguous(X + at, Y + at, (nint)G.S, Center[c], Scale[c], Shift[c]);
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
                var (first, count) = G.TaskRows(task);
                long at = first * G.C;
                K.GradientApply.GroupsContiguous(X + at, Dy + at, Dx + at, (nint)count, (nint)G.C, (nint)G.C, Center, DyScale, XScale, Bias);
                return;
            }
            var (slab, end) = G.PlanarTaskSlabs(task);
            for (; slab < end; slab++)
            {
                long c = slab % G.C, at = slab * G.S;
                K.GradientApply.MembersContiguous(X + at, Dy + at, Dx + at, (nint)G.S, Center[c], DyScale[c], XScale[c], Bias[c]);
            }
        }
    }
}
