using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;
using BnNative.Runtime;
using K = BnNative.Kernels.Kernels;

namespace BnNative.Operations;

/// <summary>
/// The passes over a tensor that BatchNorm-style operations are built from, for both layouts, each split
/// into tasks fixed by the shape (so results do not depend on the thread count):
/// <list type="bullet">
/// <item>statistics: per-channel mean and biased variance, about the channel's first value and merged
/// block by block, never Σx² − (Σx)²/M;</item>
/// <item>gradient sums: per-channel Σdy and Σdy·(x − center);</item>
/// <item>affine maps: y = (x − center)·scale + shift and dx = (dy − dyCenter)·dyScale + (x − center)·xScale.</item>
/// </list>
/// Per-channel coefficients are arrays of T with C entries. In NCHW a task is one channel, so a channel's
/// slice is read from memory once by a fused operation and revisited from cache (see BatchNorm).
/// </summary>
internal static unsafe class ChannelPasses<TElement, T> where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private static T E(double value) => Element<T>.FromDouble(value);
    private static double D(T value) => Element<T>.ToDouble(value);
    private static double X(TElement value) => Element<TElement>.ToDouble(value);

    // ---- statistics ---------------------------------------------------------------------------------

    /// <summary>
    /// Mean and biased variance of every channel of a channels-last tensor, in float64. Each task sums, for its
    /// tile, d = x − shift, d² and |x| in one pass over its rows, about a shift common to all tasks (see
    /// <see cref="SampleShift"/>). Where those one-pass sums fail <see cref="Statistics{T}.OnePassAccepts"/> for a
    /// channel (the shift lay far from that channel's rows in this tile), the task takes that channel again as a
    /// float64 two-pass down its column; where they fail for many, it takes the tile once more in one pass about the
    /// means just found, an excellent shift, and in the rare case that is refused too (a spread of magnitudes the
    /// element type cannot sum in one pass), as a corrected two-pass; all of these read the tile from cache. Sums
    /// that overflowed come out non-finite, which the caller checks.
    /// </summary>
    public static void RowStatistics(in Geometry<TElement> g, TElement* x, double* mean, double* variance)
    {
        using var shift = new NativeBuffer<T>(g.C);
        if (g.RowBlocks == 1)
        {
            var columns = new ColumnStatisticsJob { G = g, X = x, Shift = shift, Mean = mean, Variance = variance };
            WorkerPool.For(g.TaskCount, ref columns);
            return;
        }
        // Per row block: the mean (about the channel's shift, common to all blocks, so merging loses nothing to the
        // size of the mean) and M2 of every channel over the block's rows ([RowBlocks × C] each).
        long blocks = g.RowBlocks;
        using var partial = new NativeBuffer<double>(2 * blocks * g.C);
        double* partialMean = partial, partialM2 = partial.Pointer + blocks * g.C;
        SampleShift(x, g.M, g.C, g.C, shift);
        var job = new RowStatisticsJob { G = g, X = x, Shift = shift, Mean = partialMean, M2 = partialM2 };
        WorkerPool.For(g.TaskCount, ref job);
        MergeRowBlocks(g, partialMean, partialM2, mean, variance);
        for (long c = 0; c < g.C; c++)
            mean[c] += D(shift.Pointer[c]);
    }

    /// <summary>
    /// <see cref="RowStatistics"/> of the channels of one task where a task holds every row (<see cref="Geometry{T}.RowBlocks"/>
    /// = 1): their sample shift (into <paramref name="shift"/>, scratch of C), the task's one-pass statistics straight into the
    /// outputs, then the variance and the mean about 0: per channel the arithmetic of a single row block, with nothing on
    /// the calling thread alone. The shift only decides how fast: a wrong one is refused and the channels are taken again
    /// in float64, the same results (tests cannot see it; the shift taken from the first range for every range passed them
    /// all and made mlp forward 0.44 → 0.57 ms). (A task that went on from there to the map of its channels, reading them
    /// again from its cache with no wait between, measured slower than the separate passes: mlp forward 0.345 → 0.44 ms
    /// at 1 thread.)
    /// </summary>
    private static void ColumnStatistics(in Geometry<TElement> g, TElement* x, long task, T* shift, double* mean, double* variance)
    {
        var tile = g.TaskTile(task);
        long first = tile.FirstChannel, end = first + tile.Channels;
        SampleShift(x + first, g.M, tile.Channels, g.C, shift + first);
        new RowStatisticsJob { G = g, X = x, Shift = shift, Mean = mean, M2 = variance }.Run(task);
        double perRow = 1.0 / g.M;
        for (long c = first; c < end; c++)
        {
            variance[c] *= perRow;
            mean[c] += D(shift[c]);
        }
    }

    private struct ColumnStatisticsJob : IParallelJob
    {
        public Geometry<TElement> G;
        public TElement* X;
        public T* Shift;
        public double* Mean, Variance;

        public readonly void Run(long task) => ColumnStatistics(G, X, task, Shift, Mean, Variance);
    }

    /// <summary>
    /// The mean (about the shift) and biased variance of every channel from its row blocks' means and M2, in the
    /// blocks' order (two blocks or more): mean = mean_0 + Σ (n_k/M)·(mean_k − mean_0) (about the first, a full block's mean, so blocks
    /// with equal means give that mean exactly, which a plain Σ (n_k/M)·mean_k does not; weights ≤ 1, so no term
    /// overflows where the mean does not), then var = Σ (M2_k + n_k·(mean_k − mean)²)/M. Block by block along the
    /// channels, with no division (Chan's pairwise update took two per block and channel: a tenth of a 2-thread call
    /// with C = 512 and 7 blocks, on one thread).
    /// </summary>
    private static void MergeRowBlocks(in Geometry<TElement> g, double* partialMean, double* partialM2, double* mean, double* variance)
    {
        long blocks = g.RowBlocks, c = g.C;
        double perRow = 1.0 / g.M;
        // Channels eight at a time in float64 vectors, the rest one by one: the same arithmetic, lane by lane (this runs on
        // the calling thread alone; one by one it was 3.5% of an mlp forward's profile; mlp forward 1 thread 0.216 → 0.211 ms,
        // 2 threads 0.141 → 0.135).
        long vectors = c - c % Lanes<T>.Count;
        NativeMemory.Clear(mean, (nuint)c * sizeof(double)); // C may pass int's range
        NativeMemory.Clear(variance, (nuint)c * sizeof(double));
        for (long block = 1; block < blocks; block++)
        {
            double weight = g.RowsIn(block) * perRow;
            double* blockMean = partialMean + block * c;
            long k = 0;
            for (; k < vectors; k += Lanes<T>.Count)
                (Vector512.Load(mean + k) + Vector512.Create(weight) * (Vector512.Load(blockMean + k) - Vector512.Load(partialMean + k))).Store(mean + k);
            for (; k < c; k++)
                mean[k] += weight * (blockMean[k] - partialMean[k]);
        }
        for (long k = 0; k < c; k++)
            mean[k] += partialMean[k];
        for (long block = 0; block < blocks; block++)
        {
            double rows = g.RowsIn(block);
            double* blockMean = partialMean + block * c, blockM2 = partialM2 + block * c;
            long k = 0;
            for (; k < vectors; k += Lanes<T>.Count)
            {
                var deviation = Vector512.Load(blockMean + k) - Vector512.Load(mean + k);
                (Vector512.Load(variance + k) + (Vector512.Load(blockM2 + k) + Vector512.Create(rows) * deviation * deviation)).Store(variance + k);
            }
            for (; k < c; k++)
            {
                double deviation = blockMean[k] - mean[k];
                variance[k] += blockM2[k] + rows * deviation * deviation;
            }
        }
        for (long k = 0; k < c; k++)
            variance[k] *= perRow;
    }

    /// <summary>
    /// A shift for every channel's one-pass statistics: the mean of up to 8 rows spread evenly over the tensor (in
    /// NHWC, from different samples, which the first rows are not), taken as the first row plus the mean deviation
    /// from it, so that a channel equal in those rows is shifted by its value exactly (its d are then all 0 where
    /// it is constant). A channel whose deviations overflowed is shifted by its first value. A channel whose shift
    /// lies more than a standard deviation from its mean is refused by every row block (see RowStatisticsJob): one
    /// channel in about 200 of uniform data, and resnet-early NHWC (C = 64, 49 blocks of 2048 rows) then spends a
    /// third of its forward taking such columns again. 16 rows measured 2.70 → 1.72 ms there, but moved the main
    /// job's training off PyTorch's within 13 steps (rounding-level differences in the statistics, amplified by SGD
    /// past its tracking check), so the shift stays as it was.
    /// </summary>
    private static void SampleShift(TElement* x, long rows, long channels, long rowStride, T* shift)
    {
        long samples = Math.Min(8, rows);
        using var sums = new NativeBuffer<T>(3 * channels);
        T* first = sums, deviations = first + channels, squares = deviations + channels;
        for (long c = 0; c < channels; c++)
            first[c] = E(X(x[c]));
        for (long i = 1; i < samples; i++)
        {
            long row = i * (rows - 1) / (samples - 1);
            K.CenteredMoments.GroupsContiguous(x + row * rowStride, 1, (nint)channels, (nint)rowStride, first, deviations, squares, inMemoryOrder: false);
        }
        double perSample = 1.0 / samples;
        for (long c = 0; c < channels; c++)
        {
            T candidate = E(D(first[c]) + D(deviations[c]) * perSample);
            shift[c] = T.IsFinite(candidate) ? candidate : first[c];
        }
    }

    /// <summary>One task of channels-last statistics: the mean and M2 of its tile's channels (see RowStatistics).</summary>
    private struct RowStatisticsJob : IParallelJob
    {
        public Geometry<TElement> G;
        public TElement* X;
        public T* Shift;
        public double* Mean, M2;

        public void Run(long task)
        {
            var tile = G.TaskTile(task);
            long c = G.C, first = tile.RowBlock * c + tile.FirstChannel;
            nint width = (nint)tile.Channels;
            double* mean = Mean + first, m2 = M2 + first;
            T* shift = Shift + tile.FirstChannel;
            TElement* rows = X + tile.Offset(c);
            long count = tile.Rows;
            using var refused = new NativeBuffer<bool>(width);
            long refusals = OnePass(rows, count, width, shift, mean, m2, refused);
            if (refusals == 0)
                return;
            // A few channels the sample shift missed (with a shift from 8 samples, about one in 200 of normal data):
            // each on its own, in float64, down its column of the tile. Many: the whole tile again, row by row.
            if (refusals * 16 <= width)
            {
                for (long k = 0; k < width; k++)
                    if (refused.Pointer[k])
                        (mean[k], m2[k]) = Column(rows + k, count, D(shift[k]));
                return;
            }
            using var closer = new NativeBuffer<T>(width);
            for (long k = 0; k < width; k++)
            {
                T candidate = E(D(shift[k]) + mean[k]);
                closer.Pointer[k] = T.IsFinite(candidate) ? candidate : shift[k];
            }
            if (OnePass(rows, count, width, closer, mean, m2, refused) == 0)
            {
                for (long k = 0; k < width; k++)
                    mean[k] += D(closer.Pointer[k]) - D(shift[k]); // about the common shift again
                return;
            }
            Statistics<TElement, T>.OfColumns(rows, count, width, G.C, mean, m2, shift); // (two more reads, from cache)
        }

        /// <summary>
        /// The tile's mean (about <paramref name="shift"/>) and M2 per channel from one pass of Σd, Σd², Σ|x|;
        /// returns how many channels <see cref="Statistics{T}.OnePassAccepts"/> refused, marked in <paramref name="refused"/>.
        /// </summary>
        private readonly long OnePass(TElement* rows, long count, nint width, T* shift, double* mean, double* m2, bool* refused)
        {
            long c = G.C, step = Geometry<TElement>.RowsPerChunk;
            using var magnitudes = new NativeBuffer<double>(width);
            using var chunk = new NativeBuffer<T>(3 * width);
            T* chunkSum = chunk, chunkSquares = chunkSum + width, chunkMagnitudes = chunkSquares + width;
            new Span<double>(mean, (int)width).Clear();
            new Span<double>(m2, (int)width).Clear();
            for (long start = 0; start < count; start += step)
            {
                K.ShiftedMoments.GroupsContiguous(rows + start * c, (nint)Math.Min(step, count - start), width, (nint)c, shift,
                    chunkSum, chunkSquares, chunkMagnitudes, inMemoryOrder: false);
                Sums.Carry(chunkSum, mean, width);
                Sums.Carry(chunkSquares, m2, width);
                Sums.Carry(chunkMagnitudes, magnitudes, width);
            }
            long refusals = 0, adds = Math.Min(step, count), k = 0;
            double perRow = 1.0 / count; // products, not a division per sum and channel
            // Eight channels at a time in float64 vectors, the arithmetic and decisions of the loop below lane by lane (one by
            // one, this loop was 8% of an mlp forward's profile).
            for (; k <= width - Lanes<T>.Count; k += Lanes<T>.Count)
            {
                var each = Vector512.Create(perRow);
                var m = Vector512.Load(mean + k) * each;
                var v = Vector512.Load(m2 + k) * each - m * m;
                ulong accepted = Statistics<TElement, T>.OnePassAccepts(adds, m, v, Vector512.Load(magnitudes.Pointer + k) * each).ExtractMostSignificantBits();
                m.Store(mean + k);
                (Vector512.Max(Vector512<double>.Zero, v) * Vector512.Create((double)count)).Store(m2 + k);
                refusals += Lanes<T>.Count - BitOperations.PopCount(accepted);
                for (int lane = 0; lane < Lanes<T>.Count; lane++)
                    refused[k + lane] = (accepted & (1UL << lane)) == 0;
            }
            for (; k < width; k++)
            {
                double m = mean[k] * perRow, v = m2[k] * perRow - m * m;
                refused[k] = !Statistics<TElement, T>.OnePassAccepts(adds, m, v, magnitudes.Pointer[k] * perRow);
                refusals += refused[k] ? 1 : 0;
                (mean[k], m2[k]) = (m, Math.Max(0, v) * count);
            }
            return refusals;
        }

        /// <summary>
        /// One channel's mean (about <paramref name="shift"/>) and M2 over the tile's rows, as a corrected two-pass in
        /// float64 summed in blocks of 64 rows (so its rounding is that of a few float64 additions per value), each block
        /// in four chains of every fourth row: one chain of dependent additions waited four cycles a row, and a channel
        /// refused in every row block (see <see cref="SampleShift"/>) cost a quarter of a resnet-big NHWC forward.
        /// </summary>
        private readonly (double Mean, double M2) Column(TElement* column, long count, double shift)
        {
            long stride = G.C;
            double total = 0;
            for (long start = 0; start < count; start += 64)
            {
                long r = start, end = Math.Min(count, start + 64);
                double a = 0, b = 0, c = 0, d = 0;
                for (; r + 4 <= end; r += 4)
                {
                    TElement* at = column + r * stride;
                    a += X(at[0]);
                    b += X(at[stride]);
                    c += X(at[2 * stride]);
                    d += X(at[3 * stride]);
                }
                for (; r < end; r++)
                    a += X(column[r * stride]);
                total += (a + b) + (c + d);
            }
            double center = total / count, deviations = 0, squares = 0;
            for (long start = 0; start < count; start += 64)
            {
                long r = start, end = Math.Min(count, start + 64);
                double a = 0, b = 0, c = 0, d = 0, a2 = 0, b2 = 0, c2 = 0, d2 = 0;
                for (; r + 4 <= end; r += 4)
                {
                    TElement* at = column + r * stride;
                    double da = X(at[0]) - center, db = X(at[stride]) - center, dc = X(at[2 * stride]) - center, dd = X(at[3 * stride]) - center;
                    (a, b, c, d) = (a + da, b + db, c + dc, d + dd);
                    (a2, b2, c2, d2) = (a2 + da * da, b2 + db * db, c2 + dc * dc, d2 + dd * dd);
                }
                for (; r < end; r++)
                {
                    double deviation = X(column[r * stride]) - center;
                    a += deviation;
                    a2 += deviation * deviation;
                }
                deviations += (a + b) + (c + d);
                squares += (a2 + b2) + (c2 + d2);
            }
            var (mean, m2) = Moments.Corrected(count, center, deviations, squares);
            return (mean - shift, m2);
        }
    }

    // ---- gradient sums ------------------------------------------------------------------------------

    /// <summary>Σdy and Σdy·(x − center) of every channel of a channels-last tensor, in float64.</summary>
    public static void RowGradientSums(in Geometry<TElement> g, TElement* x, TElement* dy, T* center, double* sumDy, double* sumDyCentered)
    {
        // Per row block: both sums of every channel over the block's rows ([RowBlocks × C] each); with a
        // single block, straight into the outputs.
        long blocks = g.RowBlocks;
        using var partial = new NativeBuffer<double>(blocks > 1 ? 2 * blocks * g.C : 0);
        double* partialDy = blocks > 1 ? partial : sumDy, partialDyCentered = blocks > 1 ? partial.Pointer + blocks * g.C : sumDyCentered;
        if (blocks == 1) // the tasks add into their row block's sums: they start at 0 (the caller's buffers may hold anything)
        {
            NativeMemory.Clear(sumDy, (nuint)g.C * sizeof(double));
            NativeMemory.Clear(sumDyCentered, (nuint)g.C * sizeof(double));
        }
        var job = new RowGradientSumsJob { G = g, X = x, Dy = dy, Center = center, SumDy = partialDy, SumDyCentered = partialDyCentered };
        WorkerPool.For(g.TaskCount, ref job);
        if (blocks == 1)
            return;
        Sums.InOrder(partialDy, blocks, g.C, g.C, sumDy);
        Sums.InOrder(partialDyCentered, blocks, g.C, g.C, sumDyCentered);
    }

    /// <summary>
    /// Σdy and Σdy·(x − center) of the <paramref name="count"/> NCHW channels from <paramref name="first"/> (one center and
    /// one of each sum per channel), their slabs of each sample taken in memory order (see Statistics.OfAdjacentRuns): each
    /// channel's sums are the same additions in the same order as the channel's alone. Many short slabs: see
    /// <see cref="ShortSlabGradientSums"/>.
    /// </summary>
    public static void PlanarGradientSums(in Geometry<TElement> g, TElement* x, TElement* dy, long first, long count, T* centers, double* sumDy, double* sumDyCentered)
    {
        for (long j = 0; j < count; j++)
            (sumDy[j], sumDyCentered[j]) = (0, 0);
        if (Statistics<TElement, T>.ShortRuns(g.Channel(first)))
        {
            ShortSlabGradientSums(g, x, dy, first, count, centers, sumDy, sumDyCentered);
            return;
        }
        long chunkLength = K.GradientSums.ChunkLength<T>();
        for (long n = 0; n < g.N; n++)
            for (long j = 0; j < count; j++)
            {
                long slab = g.Slab(n, first + j);
                for (long start = 0; start < g.S; start += chunkLength)
                {
                    nint length = (nint)Math.Min(chunkLength, g.S - start);
                    long at = slab + start;
                    T a = T.Zero, b = T.Zero;
                    K.GradientSums.MembersContiguous(x + at, dy + at, length, centers[j], ref a, ref b);
                    sumDy[j] += D(a);
                    sumDyCentered[j] += D(b);
                }
            }
    }

    private struct RowGradientSumsJob : IParallelJob
    {
        public Geometry<TElement> G;
        public TElement* X, Dy;
        public T* Center;
        public double* SumDy, SumDyCentered;

        public void Run(long task)
        {
            var tile = G.TaskTile(task);
            long c = G.C, step = Geometry<TElement>.RowsPerChunk, f = tile.FirstChannel;
            nint width = (nint)tile.Channels;
            double* sumDy = SumDy + tile.RowBlock * c + f, sumDyCentered = SumDyCentered + tile.RowBlock * c + f;
            using var chunk = new NativeBuffer<T>(2 * width);
            T* a = chunk, b = a + width;
            for (long start = 0; start < tile.Rows; start += step)
            {
                long at = (tile.FirstRow + start) * c + f;
                nint rows = (nint)Math.Min(step, tile.Rows - start);
                K.GradientSums.GroupsContiguous(X + at, Dy + at, rows, width, (nint)c, Center + f, a, b, G.GradientSumsInMemoryOrder);
                Sums.Carry(a, sumDy, width);
                Sums.Carry(b, sumDyCentered, width);
            }
        }
    }

    /// <summary>
    /// <see cref="PlanarGradientSums"/> of many short slabs (Statistics.ShortRuns), as Statistics.ShortRunMoments takes their
    /// statistics: the group's slabs of a sample are one span, the samples its rows, each position's sums over at most
    /// RowsPerChunk samples carried to float64, then each channel's positions added in order.
    /// </summary>
    private static void ShortSlabGradientSums(in Geometry<TElement> g, TElement* x, TElement* dy, long first, long count, T* centers, double* sumDy, double* sumDyCentered)
    {
        long span = count * g.S, step = Geometry<TElement>.RowsPerChunk;
        using var chunks = new NativeBuffer<T>(3 * span);
        T* center = chunks, a = center + span, b = a + span;
        Sums.Spread(centers, count, g.S, center);
        for (long n = 0; n < g.N; n += step)
        {
            long at = g.Slab(n, first);
            K.GradientSums.GroupsContiguous(x + at, dy + at, (nint)Math.Min(step, g.N - n), (nint)span, (nint)(g.C * g.S), center, a, b, inMemoryOrder: false);
            Sums.CarryGroups(a, sumDy, 1, count, g.S);
            Sums.CarryGroups(b, sumDyCentered, 1, count, g.S);
        }
    }

    // ---- affine maps --------------------------------------------------------------------------------

    /// <summary>y = (x − center)·scale + shift per channel, over the whole tensor.</summary>
    public static void ScaleShift(in Geometry<TElement> g, TElement* x, TElement* y, T* center, T* scale, T* shift) =>
        Map(g, new ScaleShiftMap { X = x, Y = y, Center = center, Scale = scale, Shift = shift });

    /// <summary>dx = (dy − dyCenter)·dyScale + (x − center)·xScale per channel, over the whole tensor.</summary>
    public static void GradientApply(in Geometry<TElement> g, TElement* x, TElement* dy, TElement* dx, T* center, T* dyCenter, T* dyScale, T* xScale) =>
        Map(g, new GradientApplyMap { X = x, Dy = dy, Dx = dx, Center = center, DyCenter = dyCenter, DyScale = dyScale, XScale = xScale });

    /// <summary>
    /// An element-wise map with per-channel coefficients, as the two loop shapes call it: a tile of rows × channels
    /// (channels-last) or a slab of one channel's contiguous values (NCHW). <paramref name="at"/> is the offset of
    /// the first element, <paramref name="channel"/> the first (tile) or only (slab) channel.
    /// </summary>
    private interface IChannelMap
    {
        /// <summary>The output tensor (y or dx).</summary>
        TElement* Output { get; }

        void Tile(long at, long channel, nint rows, nint channels, nint rowStride, bool nonTemporal);

        void Slab(long at, long channel, nint length, bool nonTemporal);

        /// <summary>
        /// Points the coefficients at copies in <paramref name="scratch"/> (room for <see cref="MaxCoefficients"/> arrays of
        /// <paramref name="c"/>) that start at channel <paramref name="head"/> and wrap around: rows that start there.
        /// </summary>
        void Rotate(long head, long c, T* scratch);
    }

    /// <summary>The most coefficient arrays a map has (GradientApply's four).</summary>
    private const int MaxCoefficients = 4;

    /// <summary><paramref name="c"/> values of <paramref name="values"/> from <paramref name="head"/> on, wrapping around, into <paramref name="rotated"/>.</summary>
    private static T* Rotated(T* values, long head, long c, T* rotated)
    {
        new Span<T>(values + head, (int)(c - head)).CopyTo(new Span<T>(rotated, (int)(c - head)));
        new Span<T>(values, (int)head).CopyTo(new Span<T>(rotated + c - head, (int)head));
        return rotated;
    }

    private struct ScaleShiftMap : IChannelMap
    {
        public TElement* X, Y;
        public T* Center, Scale, Shift;

        public readonly TElement* Output => Y;

        public readonly void Tile(long at, long f, nint rows, nint channels, nint rowStride, bool nonTemporal) =>
            K.ScaleShift.GroupsContiguous(X + at, Y + at, rows, channels, rowStride, Center + f, Scale + f, Shift + f, nonTemporal);

        public readonly void Slab(long at, long c, nint length, bool nonTemporal) =>
            K.ScaleShift.MembersContiguous(X + at, Y + at, length, Center[c], Scale[c], Shift[c], nonTemporal);

        public void Rotate(long head, long c, T* scratch)
        {
            Center = Rotated(Center, head, c, scratch);
            Scale = Rotated(Scale, head, c, scratch + c);
            Shift = Rotated(Shift, head, c, scratch + 2 * c);
        }
    }

    private struct GradientApplyMap : IChannelMap
    {
        public TElement* X, Dy, Dx;
        public T* Center, DyCenter, DyScale, XScale;

        public readonly TElement* Output => Dx;

        public readonly void Tile(long at, long f, nint rows, nint channels, nint rowStride, bool nonTemporal) =>
            K.GradientApply.GroupsContiguous(X + at, Dy + at, Dx + at, rows, channels, rowStride, Center + f, DyCenter + f, DyScale + f, XScale + f, nonTemporal);

        public readonly void Slab(long at, long c, nint length, bool nonTemporal) =>
            K.GradientApply.MembersContiguous(X + at, Dy + at, Dx + at, length, Center[c], DyCenter[c], DyScale[c], XScale[c], nonTemporal);

        public void Rotate(long head, long c, T* scratch)
        {
            Center = Rotated(Center, head, c, scratch);
            DyCenter = Rotated(DyCenter, head, c, scratch + c);
            DyScale = Rotated(DyScale, head, c, scratch + 2 * c);
            XScale = Rotated(XScale, head, c, scratch + 3 * c);
        }
    }

    /// <summary>Runs <paramref name="map"/> over the tensor in the layout's tasks: tiles (channels-last) or runs of slabs (NCHW).</summary>
    private static void Map<TMap>(in Geometry<TElement> g, TMap map) where TMap : unmanaged, IChannelMap
    {
        var job = new MapJob<TMap> { G = g, Map = map };
        WorkerPool.For(g.ChannelsLast ? g.TaskCount : g.PlanarTaskCount, ref job);
    }

    /// <summary>Widest rows whose coefficients are rotated on the stack (four arrays of 1,024 floats: 16 KiB).</summary>
    private const long MaxRotatedChannels = 1024;

    private struct MapJob<TMap> : IParallelJob where TMap : unmanaged, IChannelMap
    {
        public Geometry<TElement> G;
        public TMap Map;

        [SkipLocalsInit]
        public readonly void Run(long task)
        {
            if (G.ChannelsLast)
            {
                var tile = G.TaskTile(task);
                long at = tile.Offset(G.C), c = G.C;
                long head = G.StreamTiles && tile.Rows >= 2 && c <= MaxRotatedChannels ? Geometry<TElement>.HeadToStreamBoundary(Map.Output + at, c) : 0;
                if (head == 0)
                {
                    Map.Tile(at, tile.FirstChannel, (nint)tile.Rows, (nint)tile.Channels, (nint)c, G.StreamTiles);
                    return;
                }
                // A tile of whole rows that starts off the boundary the kernels stream from (malloc's and NumPy's 16 bytes
                // past one): the first row's first channels, then rows that start at channel head — on the boundary, so
                // streamed, and x too where it has y's offset — with the coefficients rotated to match, then the last row's
                // rest. The same arithmetic on every element as the aligned walk.
                T* scratch = stackalloc T[MaxCoefficients * (int)c];
                Map.Tile(at, 0, 1, (nint)head, (nint)c, false);
                var rotated = Map;
                rotated.Rotate(head, c, scratch);
                rotated.Tile(at + head, 0, (nint)(tile.Rows - 1), (nint)c, (nint)c, true);
                Map.Tile(at + (tile.Rows - 1) * c + head, head, 1, (nint)(c - head), (nint)c, false);
                return;
            }
            var (slab, end) = G.PlanarTaskSlabs(task);
            for (; slab < end; slab++)
                Map.Slab(slab * G.S, slab % G.C, (nint)G.S, G.StreamSlabs);
        }
    }
}
