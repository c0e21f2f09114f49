using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using BnNative.Runtime;
using K = BnNative.Kernels.Kernels;

namespace BnNative.Operations;

/// <summary>
/// Layer Normalization (SPEC §2.3) on validated arguments: statistics over the C channels of each of
/// the P = N·S positions. NC and NHWC: a position's channels are contiguous (MembersContiguous, one row per
/// position); tasks are blocks of rows. NCHW: a sample is C rows of S positions, so a task is a tile of
/// positions across all C rows (GroupsContiguous), read in runs of the tile's width, or several whole
/// samples when S is small. Each task finishes its positions (statistics, then the map, from cache);
/// dgamma and dbeta are per-task partial sums merged in task order, so results are bitwise the same for
/// any thread count. A position whose fast-path statistics or coefficients fail the checks of
/// <see cref="Exact{T}"/> is done in float64 (an NCHW tile holding one: the whole tile).
/// </summary>
internal static unsafe class LayerNorm<TElement, T> where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private const long TaskBytes = Geometry<TElement>.TaskBytes;

    /// <summary>Rows one reducing GroupsContiguous call adds in the element type before the sums go on in float64.</summary>
    private const long RowsPerChunk = Geometry<TElement>.RowsPerChunk;

    /// <summary>The widest NCHW tile: positions whose sums one task keeps.</summary>
    private const long MaxTileWidth = 16384;

    /// <summary>
    /// Rows wider than this are backpropagated in two phases — the row sums, then tiles of rows × channel
    /// ranges — so that the dgamma/dbeta partials stay bounded while wide rows still spread over threads.
    /// </summary>
    private const long WideRowBytes = 64 * 1024;

    /// <summary>
    /// Positions a backward task covers at least: its dgamma/dbeta partials (2·C doubles) are then at most
    /// 1/32 of the x and dy it reads (SPEC §3 "Resources").
    /// </summary>
    private static long MinPositionsPerTask => 512 / sizeof(TElement);

    private static T E(double value) => Element<T>.FromDouble(value);
    private static double D(T value) => Element<T>.ToDouble(value);

    /// <summary>The tasks of a Layer Normalization over a tensor.</summary>
    internal readonly struct Plan
    {
        public readonly long N, C, S;
        public readonly bool ChannelsLast;
        /// <summary>Whether rows of y or dx (NC/NHWC) are written with non-temporal stores (see Geometry.Streams).</summary>
        public readonly bool StreamRuns;

        /// <summary>1/C: per-position means are products with it (a division per position and mean was a large part of narrow rows' time).</summary>
        public readonly double PerChannel;

        /// <summary>NC/NHWC: rows a forward task covers, about TaskBytes of x.</summary>
        public readonly long BlockRows;
        /// <summary>NC/NHWC with narrow rows: rows a backward task covers, a whole number of blocks.</summary>
        public readonly long BackwardRows;
        /// <summary>
        /// NC/NHWC with narrow rows: rows a backward sub-block covers (its dgamma/dbeta sums, then its rows' dx, from
        /// cache). A backward reads x and dy, so a sub-block is half a block: together they fill TaskBytes, as a
        /// forward block does (bert, C = 768: 3.9 → 2.9 ms at 1 thread, medians of four alternating runs). Rows under 1 KB
        /// keep whole blocks, which measured faster there (convnext, C = 96: about 7 against 9 ms with half blocks).
        /// </summary>
        public readonly long BackwardBlockRows;
        /// <summary>NC/NHWC with wide rows: backward tiles of TileRows rows × TileChannels channels.</summary>
        public readonly long TileRows, TileChannels;

        /// <summary>NCHW: positions of a tile (one sample), tiles per sample, and whole samples per task when S is small.</summary>
        public readonly long Width, TilesPerSample, SamplesPerTask;
        /// <summary>Whether NCHW tiles write y or dx with non-temporal stores: each channel's row of Width positions is a run.</summary>
        public readonly bool StreamTileRows;

        public Plan(in Shape shape)
        {
            N = shape.N;
            C = shape.C;
            S = shape.S;
            ChannelsLast = shape.ChannelsLast;
            PerChannel = 1.0 / C;
            // Rows taken a group at a time are written at least eight rows (the backward's group; the forward's is 16) of C
            // contiguous elements at once: streamed when each row is whole cache lines (convnext, C = 96, eight-row groups,
            // medians of 8 alternating runs against ordinary stores: forward 1 thread 4.01 → 3.29 ms, 2 threads 3.56 → 2.56;
            // the backward's dx, 2 threads 4.44 → 4.38, minima 4.25 → 3.92; checked again with 16-row groups on 64-byte-aligned
            // buffers, one process alternating: ordinary stores 5.9–6.6 against 4.3 ms at 1 thread, 3.2–3.5 against 2.1–2.2
            // at 2).
            bool groups = NarrowRows && Statistics<TElement, T>.Rows.FitGroup(C) && C * sizeof(TElement) % 64 == 0;
            StreamRuns = Geometry<TElement>.Streams(N * C * S, groups ? Lanes<T>.Count * C : C);
            long perTask = Math.Max(1, TaskBytes / (C * sizeof(TElement)));
            BlockRows = perTask;
            BackwardRows = (MinPositionsPerTask + perTask - 1) / perTask * perTask;
            BackwardBlockRows = C * sizeof(TElement) < 1024 ? perTask : Math.Max(1, perTask / 2);
            TileRows = MinPositionsPerTask;
            TileChannels = Math.Min(C, Math.Max(64, TaskBytes / (TileRows * sizeof(TElement)) / 64 * 64));
            // Tiles are whole vectors wide and short enough to reduce in one chunk.
            Width = Math.Min(S, Math.Min(MaxTileWidth, Math.Max(MinPositionsPerTask, perTask / 64 * 64)));
            TilesPerSample = (S + Width - 1) / Width;
            SamplesPerTask = S < MinPositionsPerTask ? (MinPositionsPerTask + S - 1) / S : 1;
            StreamTileRows = !ChannelsLast && Geometry<TElement>.Streams(N * C * S, Width);
        }

        public long Positions => N * S;

        /// <summary>
        /// Whether groups of <paramref name="groupRows"/> narrow rows written from <paramref name="output"/> on are staged in
        /// L1 and copied out (see Geometry.StreamAligned): they stream, but not from where the output starts. convnext
        /// NHWC (C = 96), buffers 16 bytes past a 64-byte boundary, against the RowGroup kernel's ordinary stores (one
        /// process, alternated): forward 1.28× / 1.32× at 1 / 2 threads, backward 1.14× / 1.19×. Aligned buffers stream
        /// directly and still run about 1.2× faster than staged ones (the unaligned loads remain). A row at a time, each
        /// streamed after its own head (no stage), was 0.86–0.91× the ordinary stores.
        /// </summary>
        public bool StagedRows(TElement* output, int groupRows) =>
            StreamRuns && !Geometry<TElement>.StreamAligned(output) && groupRows * C * sizeof(TElement) <= Geometry<TElement>.StageBytes - 64;

        public bool WideRows => C * sizeof(TElement) > WideRowBytes;

        /// <summary>NC/NHWC rows short enough to be reduced as one chunk and mapped as one piece (see NarrowRows).</summary>
        public bool NarrowRows => ChannelsLast && Statistics<TElement, T>.Rows.Fit(C) && C <= Defaults.Piece;

        public long RowBlocks => (Positions + TileRows - 1) / TileRows;

        public long ChannelBlocks => (C + TileChannels - 1) / TileChannels;

        /// <summary>NCHW tasks: tiles of one sample, or groups of whole samples.</summary>
        public long PlanarTasks => SamplesPerTask > 1 ? (N + SamplesPerTask - 1) / SamplesPerTask : N * TilesPerSample;

        public long ForwardTasks => ChannelsLast ? (Positions + BlockRows - 1) / BlockRows : PlanarTasks;

        /// <summary>Backward tasks; each owns one slot of dgamma/dbeta partials, except wide-row tiles (one per row block).</summary>
        public long BackwardTasks => !ChannelsLast ? PlanarTasks : WideRows ? RowBlocks * ChannelBlocks : (Positions + BackwardRows - 1) / BackwardRows;

        public long PartialSlots => ChannelsLast && WideRows ? RowBlocks : BackwardTasks;

        /// <summary>Rows [first, first + count) of NC/NHWC task <paramref name="task"/> of <paramref name="rowsPerTask"/>.</summary>
        public (long First, long Count) Rows(long task, long rowsPerTask)
        {
            long first = task * rowsPerTask;
            return (first, Math.Min(rowsPerTask, Positions - first));
        }

        /// <summary>NCHW task → samples [first, end), and the positions [s0, s0 + width) of each.</summary>
        public (long FirstSample, long EndSample, long S0, long Width) Tiles(long task)
        {
            if (SamplesPerTask > 1)
            {
                long first = task * SamplesPerTask;
                return (first, Math.Min(N, first + SamplesPerTask), 0, S);
            }
            long n = task / TilesPerSample, s0 = task % TilesPerSample * Width;
            return (n, n + 1, s0, Math.Min(Width, S - s0));
        }

        /// <summary>The C members of position p = n·S + s.</summary>
        public Members Position(long p) => ChannelsLast ? Members.Strided(p * C, C, 1) : Members.Strided(p / S * C * S + p % S, C, S);
    }

    /// <summary>
    /// γ = 1 and β = 0 for calls that pass NULL, a piece at a time: kernels over more channels than
    /// <see cref="Piece"/> are called piece by piece, so no buffer of C values is ever made for them.
    /// </summary>
    private static class Defaults
    {
        public const long Piece = 16384;
        public static readonly T* Ones = Filled(T.One), Zeros = Filled(T.Zero);

        private static T* Filled(T value)
        {
            var values = (T*)NativeMemory.Alloc((nuint)Piece, (nuint)sizeof(T));
            new Span<T>(values, (int)Piece).Fill(value);
            return values;
        }
    }

    private static T* Piece(T* parameters, long start, T* fallback) => parameters != null ? parameters + start : fallback;

    // ---- forward ----------------------------------------------------------------------------------------

    public static void Forward(in Shape shape, TElement* x, TElement* y, T* gamma, T* beta, double eps, T* saveMean, T* saveInvstd)
    {
        var plan = new Plan(shape);
        var job = new ForwardJob { Plan = plan, X = x, Y = y, Gamma = gamma, Beta = beta, Eps = eps, SaveMean = saveMean, SaveInvstd = saveInvstd };
        WorkerPool.For(plan.ForwardTasks, ref job);
    }

    private struct ForwardJob : IParallelJob
    {
        public Plan Plan;
        public TElement* X, Y;
        public T* Gamma, Beta, SaveMean, SaveInvstd;
        public double Eps;

        public void Run(long task)
        {
            if (Plan.ChannelsLast)
            {
                var (first, count) = Plan.Rows(task, Plan.BlockRows);
                if (Plan.NarrowRows && Statistics<TElement, T>.Rows.FitGroup(Plan.C))
                    NarrowRowGroups(first, count);
                else if (Plan.NarrowRows)
                    NarrowRows(first, count);
                else
                    for (long p = first; p < first + count; p++)
                        Row(p);
                return;
            }
            var (firstSample, endSample, s0, width) = Plan.Tiles(task);
            for (long n = firstSample; n < endSample; n++)
                Tile(n * Plan.S + s0, width);
        }

        /// <summary>
        /// Rows [first, first + count), each one chunk and too long for <see cref="NarrowRowGroups"/>: statistics,
        /// checks and map row by row, everything that depends only on C worked out once.
        /// </summary>
        private readonly void NarrowRows(long first, long count)
        {
            long c = Plan.C;
            var statistics = new Statistics<TElement, T>.Rows(c);
            T* gamma = Gamma != null ? Gamma : Defaults.Ones, beta = Beta != null ? Beta : Defaults.Zeros;
            for (long p = first; p < first + count; p++)
            {
                var (mean, variance) = statistics.Of(X + p * c);
                double invstd = 1 / Math.Sqrt(variance + Eps);
                if (!Exact<TElement, T>.Trustworthy(mean, variance, Eps) || !Exact<TElement, T>.MapFits(variance, c, invstd, false, 0))
                {
                    Finish(p, mean, variance);
                    continue;
                }
                Save(p, mean, invstd);
                K.LayerNormApply.MembersContiguous(X + p * c, Y + p * c, (nint)c, E(mean), E(invstd), gamma, beta, Plan.StreamRuns);
            }
        }

        /// <summary>
        /// Rows [first, first + count), each short enough for a group of rows at a time (see
        /// <see cref="Statistics{TElement, T}.Rows.OfGroup"/>): the group's statistics, its coefficients and checks in
        /// float64 vectors, then the rows' map from L1, in one call when every row passed its checks (a call per row cost
        /// about as long as the row's map: convnext, C = 96, 2,048 rows in cache 0.054 → 0.046 ms). A row that fails a
        /// check is finished by <see cref="Finish"/>.
        /// </summary>
        [SkipLocalsInit]
        private readonly void NarrowRowGroups(long first, long count)
        {
            const int Group = Statistics<TElement, T>.Rows.Group;
            long c = Plan.C, end = first + count;
            var statistics = new Statistics<TElement, T>.Rows(c);
            T* gamma = Gamma != null ? Gamma : Defaults.Ones, beta = Beta != null ? Beta : Defaults.Zeros;
            double* means = stackalloc double[3 * Group];
            double* variances = means + Group, invstds = variances + Group;
            T* centers = stackalloc T[2 * Group], scales = centers + Group;
            byte* stageBytes = stackalloc byte[Geometry<TElement>.StageBytes];
            TElement* stage = Plan.StagedRows(Y, Group) ? Geometry<TElement>.Stage(stageBytes) : null;
            for (long p = first; p < end; p += Group)
            {
                int rows = (int)Math.Min(Group, end - p);
                statistics.OfGroup(X + p * c, rows, means, variances);
                ulong fast = 0;
                for (int r = 0; r < Group; r += Lanes<T>.Count)
                    fast |= Exact<TElement, T>.RowCoefficients(means + r, variances + r, Eps, c, invstds + r) << r;
                ulong groupRows = (1UL << rows) - 1;
                if ((fast & groupRows) == groupRows)
                {
                    // Rounded to T lane by lane as E rounds them one by one.
                    for (int r = 0; r < Group; r += Lanes<T>.Count)
                    {
                        Lanes<T>.Store(Vector512.Load(means + r), centers + r);
                        Lanes<T>.Store(Vector512.Load(invstds + r), scales + r);
                    }
                    if (SaveMean != null)
                        new Span<T>(centers, rows).CopyTo(new Span<T>(SaveMean + p, rows));
                    if (SaveInvstd != null)
                        new Span<T>(scales, rows).CopyTo(new Span<T>(SaveInvstd + p, rows));
                    if (stage != null)
                    {
                        K.LayerNormApply.RowGroup(X + p * c, stage, rows, (nint)c, (nint)c, centers, scales, gamma, beta, false);
                        K.Copy.MembersContiguous<TElement, T>(stage, Y + p * c, rows * (nint)c, true);
                    }
                    else
                        K.LayerNormApply.RowGroup(X + p * c, Y + p * c, rows, (nint)c, (nint)c, centers, scales, gamma, beta, Plan.StreamRuns);
                    continue;
                }
                for (int r = 0; r < rows; r++)
                {
                    double mean = means[r], invstd = invstds[r];
                    if ((fast & (1UL << r)) == 0)
                    {
                        Finish(p + r, mean, variances[r]);
                        continue;
                    }
                    Save(p + r, mean, invstd);
                    K.LayerNormApply.MembersContiguous(X + (p + r) * c, Y + (p + r) * c, (nint)c, E(mean), E(invstd), gamma, beta, Plan.StreamRuns);
                }
            }
        }

        private readonly void Row(long p)
        {
            var (mean, variance) = RowStatistics(X + p * Plan.C, Plan.C);
            Finish(p, mean, variance);
        }

        /// <summary>
        /// Row <paramref name="p"/> from its fast-path statistics: taken again in float64 where they cannot be trusted,
        /// saved, and the row mapped in the element type where its coefficients fit, else in float64.
        /// </summary>
        private readonly void Finish(long p, double mean, double variance)
        {
            long c = Plan.C, at = p * c;
            if (!Exact<TElement, T>.Trustworthy(mean, variance, Eps))
                (mean, variance) = Exact<TElement, T>.Statistics(X, Plan.Position(p));
            double invstd = 1 / Math.Sqrt(variance + Eps);
            Save(p, mean, invstd);
            if (!Exact<TElement, T>.MapFits(variance, c, invstd, false, 0))
            {
                Exact<TElement, T>.LayerNormMap(X, Y, Plan.Position(p), mean, invstd, Gamma, Beta);
                return;
            }
            T center = E(mean), scale = E(invstd);
            for (long start = 0; start < c; start += Defaults.Piece)
                K.LayerNormApply.MembersContiguous(X + at + start, Y + at + start, (nint)Math.Min(Defaults.Piece, c - start), center, scale,
                    Piece(Gamma, start, Defaults.Ones), Piece(Beta, start, Defaults.Zeros), Plan.StreamRuns);
        }

        /// <summary>Positions [first, first + width) of one NCHW sample.</summary>
        private readonly void Tile(long first, long width)
        {
            using var center = new NativeBuffer<T>(width);
            using var scale = new NativeBuffer<T>(width);
            using var moments = new NativeBuffer<double>(2 * width);
            double* mean = moments, variance = moments.Pointer + width;
            long at = first / Plan.S * Plan.C * Plan.S + first % Plan.S;
            TileStatistics(Plan, X + at, width, mean, variance);
            bool fast = true;
            for (long k = 0; k < width; k++)
            {
                if (!Exact<TElement, T>.Trustworthy(mean[k], variance[k], Eps))
                    (mean[k], variance[k]) = Exact<TElement, T>.Statistics(X, Plan.Position(first + k));
                double invstd = 1 / Math.Sqrt(variance[k] + Eps);
                Save(first + k, mean[k], invstd);
                fast &= Exact<TElement, T>.MapFits(variance[k], Plan.C, invstd, false, 0);
                (center.Pointer[k], scale.Pointer[k]) = (E(mean[k]), E(invstd));
            }
            if (!fast)
            {
                for (long k = 0; k < width; k++)
                    Exact<TElement, T>.LayerNormMap(X, Y, Plan.Position(first + k), mean[k], 1 / Math.Sqrt(variance[k] + Eps), Gamma, Beta);
                return;
            }
            for (long start = 0; start < Plan.C; start += Defaults.Piece)
            {
                long rows = start * Plan.S;
                K.LayerNormApply.GroupsContiguous(X + at + rows, Y + at + rows, (nint)Math.Min(Defaults.Piece, Plan.C - start), (nint)width, (nint)Plan.S,
                    center, scale, Piece(Gamma, start, Defaults.Ones), Piece(Beta, start, Defaults.Zeros), Plan.StreamTileRows);
            }
        }

        private readonly void Save(long p, double mean, double invstd)
        {
            if (SaveMean != null)
                SaveMean[p] = E(mean);
            if (SaveInvstd != null)
                SaveInvstd[p] = E(invstd);
        }
    }

    /// <summary>Mean and biased variance of a row of <paramref name="length"/> values (see <see cref="Statistics{T}.OfRuns"/>).</summary>
    private static (double Mean, double Variance) RowStatistics(TElement* row, long length) => Statistics<TElement, T>.OfRuns(row, Members.Strided(0, length, 1));

    /// <summary>Mean and biased variance of each of <paramref name="width"/> NCHW positions (columns of C rows, S apart).</summary>
    private static void TileStatistics(in Plan plan, TElement* tile, long width, double* mean, double* variance)
    {
        Statistics<TElement, T>.OfColumns(tile, plan.C, (nint)width, plan.S, mean, variance);
        for (long k = 0; k < width; k++)
            variance[k] /= plan.C;
    }

    // ---- backward ---------------------------------------------------------------------------------------

    /// <summary>
    /// g = dy·γ; dx = invstd·(g − mean_c(g) − x̂·mean_c(g·x̂)) folded to dx = (g − mean(g))·invstd + (x − mean)·xScale
    /// per position; dgamma_c = Σ_p dy·x̂ and dbeta_c = Σ_p dy. Per block of rows: its rows' sums, its dgamma/dbeta
    /// partials (both before dx is written, so dx may be dy), then each row's dx, from cache. Wide rows: the row
    /// sums of every row first, then tiles of rows × channels (partials, then dx), then any row done in float64.
    /// </summary>
    public static void Backward(in Shape shape, TElement* x, TElement* dy, TElement* dx, T* gamma, T* saveMean, T* saveInvstd, T* dgamma, T* dbeta)
    {
        var plan = new Plan(shape);
        bool parameterGradients = dgamma != null || dbeta != null;
        using var partial = new NativeBuffer<double>(parameterGradients ? 2 * plan.PartialSlots * plan.C : 0);
        var job = new BackwardJob
        {
            Plan = plan, X = x, Dy = dy, Dx = dx, Gamma = gamma, Mean = saveMean, Invstd = saveInvstd,
            Partial = parameterGradients ? partial.Pointer : null,
        };
        if (plan.ChannelsLast && plan.WideRows)
            WideRowBackward(ref job);
        else
            WorkerPool.For(plan.BackwardTasks, ref job);
        if (!parameterGradients)
            return;
        Sums.InOrder(partial, plan.PartialSlots, 2 * plan.C, 2 * plan.C, partial); // into the first slot
        for (long c = 0; c < plan.C; c++)
        {
            if (dgamma != null)
                dgamma[c] = E(partial.Pointer[plan.C + c]);
            if (dbeta != null)
                dbeta[c] = E(partial.Pointer[c]);
        }
    }

    /// <summary>Wide rows: per-row coefficients (phase 1), tiles (phase 2), rows that need float64 (phase 3).</summary>
    private static void WideRowBackward(ref BackwardJob job)
    {
        var plan = job.Plan;
        bool dxWanted = job.Dx != null;
        using var coefficients = new NativeBuffer<T>(dxWanted ? 2 * plan.Positions : 0);
        using var exact = new NativeBuffer<byte>(dxWanted ? plan.Positions : 0);
        if (dxWanted)
        {
            job.RowMeanG = coefficients;
            job.RowXScale = coefficients.Pointer + plan.Positions;
            job.RowExact = exact;
            var rows = new RowCoefficientsJob { Job = job };
            WorkerPool.For(plan.Positions, ref rows);
        }
        job.WidePhase = true;
        WorkerPool.For(plan.BackwardTasks, ref job);
        for (long p = 0; dxWanted && p < plan.Positions; p++)
            if (exact.Pointer[p] != 0)
                Exact<TElement, T>.LayerNormGradient(job.X, job.Dy, job.Dx, plan.Position(p), D(job.Mean[p]), D(job.Invstd[p]), job.Gamma);
    }

    private struct RowCoefficientsJob : IParallelJob
    {
        public BackwardJob Job;

        public void Run(long p)
        {
            var (meanG, xScale, fits) = Job.RowCoefficients(p);
            (Job.RowMeanG[p], Job.RowXScale[p], Job.RowExact[p]) = fits ? (E(meanG), E(xScale), (byte)0) : (T.Zero, T.Zero, (byte)1);
        }
    }

    private struct BackwardJob : IParallelJob
    {
        public Plan Plan;
        public TElement* X, Dy, Dx;
        public T* Gamma, Mean, Invstd;
        public double* Partial;
        /// <summary>Wide rows, phase 2: tasks are tiles, and dx uses the per-row coefficients of phase 1.</summary>
        public bool WidePhase;
        public T* RowMeanG, RowXScale;
        public byte* RowExact;

        public void Run(long task)
        {
            if (WidePhase)
                WideTile(task);
            else if (Plan.ChannelsLast && Statistics<TElement, T>.Rows.FitGroup(Plan.C))
                NarrowRowGroups(task);
            else if (Plan.ChannelsLast)
                NarrowRows(task);
            else
                PlanarTiles(task);
        }

        /// <summary>
        /// The rows of a task, a sub-block at a time (one chunk each, too long for <see cref="NarrowRowGroups"/>): every row's
        /// sums Σg and Σg·(x − mean) (the first read, each row in order from memory), then the sub-block's dgamma/dbeta
        /// chunk from L2, walked a block of channels down a few rows at a time with its sums in registers, then each row's
        /// dx; both before dx is written, so dx may be dy. With the chunk first, as the first read, its sums were loaded and
        /// stored for every row (more than half of an llm backward): llm (2,048 × 4,096), 1 thread, 8.3–9.5 → 7.0–7.4 ms,
        /// 2 threads 5.0–5.4 → 4.2–4.5; bert (8,192 × 768) 1.04 at 1 thread, 0.95–1.10 at 2 (same process, alternated).
        /// </summary>
        private readonly void NarrowRows(long task)
        {
            var (first, count) = Plan.Rows(task, Plan.BackwardRows);
            using var chunk = new NativeBuffer<T>(Partial != null ? 2 * Plan.C : 0); // once per task, not per sub-block
            using var rowSums = new NativeBuffer<double>(Dx != null ? 2 * Plan.BackwardBlockRows : 0);
            double* sumsG = rowSums, sumsGCentered = rowSums.Pointer + (Dx != null ? Plan.BackwardBlockRows : 0);
            for (long start = 0; start < count; start += Plan.BackwardBlockRows)
            {
                long rows = Math.Min(Plan.BackwardBlockRows, count - start), p0 = first + start;
                for (long r = 0; Dx != null && r < rows; r++)
                    (sumsG[r], sumsGCentered[r]) = RowSums(p0 + r);
                if (Partial != null)
                    RowParameterGradients(task, p0, rows, 0, Plan.C, chunk, inCache: Dx != null);
                for (long r = 0; Dx != null && r < rows; r++)
                    Gradient(p0 + r, sumsG[r], sumsGCentered[r]);
            }
        }

        /// <summary>
        /// The rows of a task whose rows are short enough to be taken a group at a time (see
        /// <see cref="Statistics{TElement, T}.Rows.FitGroup"/>), eight at a time in one pass over memory: each group's row
        /// sums (a RowGroup kernel, the first read of its x and dy), its dgamma/dbeta chunk and its rows' dx, from L1 (one
        /// RowGroup call when every row's coefficients passed their checks). Blocks of rows read three times — sums of the
        /// block, then each row's sums and dx — left the core waiting on memory in the first pass and on nothing but L2 in
        /// the others (convnext NHWC, 1 thread: 6.85 → 3.40 ms).
        /// </summary>
        [SkipLocalsInit]
        private readonly void NarrowRowGroups(long task)
        {
            const int Group = Lanes<T>.Count;
            var (first, count) = Plan.Rows(task, Plan.BackwardRows);
            long c = Plan.C, end = first + count;
            T* gamma = Gamma != null ? Gamma : Defaults.Ones;
            T* sumG = stackalloc T[4 * Group], sumGCentered = sumG + Group, rowMeanG = sumGCentered + Group, rowXScale = rowMeanG + Group;
            // The group's float64 inputs and coefficients (cleared once; lanes past a partial group's rows keep earlier rows'
            // values, and their bits are not read).
            double* means = stackalloc double[6 * Group];
            double* invstds = means + Group, sumsG = invstds + Group, sumsGCentered = sumsG + Group, meanG = sumsGCentered + Group, xScale = meanG + Group;
            new Span<double>(means, 4 * Group).Clear();
            using var chunk = new NativeBuffer<T>(Partial != null ? 2 * c : 0);
            byte* stageBytes = stackalloc byte[Geometry<TElement>.StageBytes];
            TElement* stage = Dx != null && Plan.StagedRows(Dx, Group) ? Geometry<TElement>.Stage(stageBytes) : null;
            for (long p = first; p < end; p += Group)
            {
                int rows = (int)Math.Min(Group, end - p);
                // The row sums read the group in order (the first read, from memory), the dgamma/dbeta chunk walks it in
                // blocks of channels from L1, both before dx is written: dx may be dy.
                if (Dx != null)
                {
                    new Span<T>(sumG, 2 * Group).Clear();
                    K.LayerNormGradientSums.RowGroup(X + p * c, Dy + p * c, rows, (nint)c, (nint)c, Mean + p, gamma, sumG, sumGCentered);
                }
                if (Partial != null)
                    RowParameterGradients(task, p, rows, 0, c, chunk, inCache: true);
                if (Dx == null)
                    continue;
                for (int r = 0; r < rows; r++)
                    (means[r], invstds[r], sumsG[r], sumsGCentered[r]) = (D(Mean[p + r]), D(Invstd[p + r]), D(sumG[r]), D(sumGCentered[r]));
                ulong fast = Exact<TElement, T>.RowGradientCoefficients(means, invstds, sumsG, sumsGCentered, Plan.PerChannel, meanG, xScale);
                ulong groupRows = (1UL << rows) - 1;
                if ((fast & groupRows) == groupRows)
                {
                    Lanes<T>.Store(Vector512.Load(meanG), rowMeanG);
                    Lanes<T>.Store(Vector512.Load(xScale), rowXScale);
                    if (stage != null)
                    {
                        // The group's dy is read whole before the copy writes dx over it (dx may be dy).
                        K.LayerNormGradientApply.RowGroup(X + p * c, Dy + p * c, stage, rows, (nint)c, (nint)c, Mean + p, rowMeanG, Invstd + p, rowXScale, gamma, false);
                        K.Copy.MembersContiguous<TElement, T>(stage, Dx + p * c, rows * (nint)c, true);
                    }
                    else
                        K.LayerNormGradientApply.RowGroup(X + p * c, Dy + p * c, Dx + p * c, rows, (nint)c, (nint)c, Mean + p, rowMeanG, Invstd + p, rowXScale, gamma, Plan.StreamRuns);
                    continue;
                }
                for (int r = 0; r < rows; r++)
                {
                    long at = (p + r) * c;
                    if ((fast & (1UL << r)) != 0)
                        K.LayerNormGradientApply.MembersContiguous(X + at, Dy + at, Dx + at, (nint)c, Mean[p + r], E(meanG[r]), Invstd[p + r], E(xScale[r]), gamma, Plan.StreamRuns);
                    else
                        Gradient(p + r, sumsG[r], sumsGCentered[r]);
                }
            }
        }

        /// <summary>dx of row p from its sums Σg and Σg·(x − mean): in the element type where its coefficients fit, else in float64.</summary>
        private readonly void Gradient(long p, double sumG, double sumGCentered)
        {
            var (meanG, xScale, fits) = Coefficients(p, sumG, sumGCentered);
            if (fits)
                ApplyRow(p, 0, Plan.C, E(meanG), E(xScale));
            else
                Exact<TElement, T>.LayerNormGradient(X, Dy, Dx, Plan.Position(p), D(Mean[p]), D(Invstd[p]), Gamma);
        }

        private readonly void WideTile(long task)
        {
            long rowBlock = task / Plan.ChannelBlocks, c0 = task % Plan.ChannelBlocks * Plan.TileChannels;
            var (first, count) = Plan.Rows(rowBlock, Plan.TileRows);
            long channels = Math.Min(Plan.TileChannels, Plan.C - c0);
            if (Partial != null)
            {
                using var chunk = new NativeBuffer<T>(2 * channels);
                RowParameterGradients(rowBlock, first, count, c0, channels, chunk, inCache: false);
            }
            for (long p = first; Dx != null && p < first + count; p++)
                if (RowExact[p] == 0)
                    ApplyRow(p, c0, channels, RowMeanG[p], RowXScale[p]);
        }

        /// <summary>
        /// mean(g) and xScale = −invstd²·mean(g·x̂) of row p (invstd² formed without rounding to a subnormal: invstd = 2.6e-158
        /// lost 8 bits of dx), and whether the fast dx map fits the element
        /// type; sums that overflowed, or coefficients that do not fit, send the row to float64.
        /// </summary>
        public readonly (double MeanG, double XScale, bool Fits) RowCoefficients(long p)
        {
            var (sumG, sumGCentered) = RowSums(p);
            return Coefficients(p, sumG, sumGCentered);
        }

        /// <summary>Σg and Σg·(x − mean) of row p, g = dy·γ, piece by piece.</summary>
        private readonly (double SumG, double SumGCentered) RowSums(long p)
        {
            long c = Plan.C, at = p * c, piece = Math.Min(Defaults.Piece, K.LayerNormGradientSums.ChunkLength<T>());
            double sumG = 0, sumGCentered = 0;
            for (long start = 0; start < c; start += piece)
            {
                T a = T.Zero, b = T.Zero;
                K.LayerNormGradientSums.MembersContiguous(X + at + start, Dy + at + start, (nint)Math.Min(piece, c - start), Mean[p],
                    Piece(Gamma, start, Defaults.Ones), ref a, ref b);
                sumG += D(a);
                sumGCentered += D(b);
            }
            return (sumG, sumGCentered);
        }

        /// <summary>The dx coefficients of row p from its sums (see <see cref="RowCoefficients"/>).</summary>
        private readonly (double MeanG, double XScale, bool Fits) Coefficients(long p, double sumG, double sumGCentered)
        {
            double invstd = D(Invstd[p]), meanG = sumG * Plan.PerChannel, xScale = Exact<TElement, T>.Product(-invstd, invstd, invstd * sumGCentered * Plan.PerChannel);
            return (meanG, xScale, double.IsFinite(meanG) && double.IsFinite(xScale) && GradientFits(invstd, meanG, xScale, sumGCentered == 0, D(Mean[p])));
        }

        /// <summary>The dx coefficients of a position fit the element type, and neither g − mean(g) nor x − mean can overflow.</summary>
        private readonly bool GradientFits(double invstd, double meanG, double xScale, bool xScaleIsExactlyZero, double mean) =>
            Exact<TElement, T>.Fits(invstd, false) && Exact<TElement, T>.Fits(xScale, xScaleIsExactlyZero) && Exact<TElement, T>.CenterFits(meanG) && Exact<TElement, T>.CenterFits(mean);

        /// <summary>dx of row p over channels [c0, c0 + channels), piece by piece.</summary>
        private readonly void ApplyRow(long p, long c0, long channels, T meanG, T xScale)
        {
            long at = p * Plan.C;
            for (long start = c0; start < c0 + channels; start += Defaults.Piece)
            {
                long o = at + start;
                K.LayerNormGradientApply.MembersContiguous(X + o, Dy + o, Dx + o, (nint)Math.Min(Defaults.Piece, c0 + channels - start),
                    Mean[p], meanG, Invstd[p], xScale, Piece(Gamma, start, Defaults.Ones), Plan.StreamRuns);
            }
        }

        /// <summary>
        /// Σdy and Σdy·x̂ of rows [first, first + count) over channels [c0, c0 + channels), added to slot <paramref name="slot"/>;
        /// <paramref name="chunk"/>: scratch for 2·channels chunk sums, zero on entry and left zero (a group of LayerNorm rows calls
        /// this for each eight rows). Rows <paramref name="inCache"/> (read by the caller already) go to the kernel
        /// <see cref="Kernels.GroupWalk.FewRows"/> at a time, so that it walks blocks of channels down them with the sums in
        /// registers; rows read here first go all at once, row by row in memory order (a block walk over rows coming from
        /// memory measured slower: the prefetcher follows the rows' two streams better than a block's strided ones).
        /// </summary>
        private readonly void RowParameterGradients(long slot, long first, long count, long c0, long channels, T* chunk, bool inCache)
        {
            long c = Plan.C;
            double* sumDy = Partial + 2 * slot * c + c0, sumDyNormalized = sumDy + c;
            T* a = chunk, b = chunk + channels;
            for (long start = 0; start < count; start += RowsPerChunk)
            {
                long rows = Math.Min(RowsPerChunk, count - start), p0 = first + start, offset = p0 * c + c0;
                long step = inCache ? Kernels.GroupWalk.FewRows : rows;
                for (long k = 0; k < rows; k += step)
                    K.LayerNormParameterGradients.GroupsContiguous(X + offset + k * c, Dy + offset + k * c, (nint)Math.Min(step, rows - k), (nint)channels,
                        (nint)c, Mean + p0 + k, Invstd + p0 + k, a, b);
                // The usual case in vectors (channel by channel was 8% of an llm backward); channels left with a sum
                // that overflowed are summed again in float64 (the carried ones are 0 now and add nothing).
                if (Sums.CarryFinite(a, b, sumDy, sumDyNormalized, channels))
                    continue;
                for (long k = 0; k < channels; k++)
                    AddParameterGradients(sumDy + k, sumDyNormalized + k, a[k], b[k], Members.Strided(offset + k, rows, c), p0);
                new Span<T>(a, (int)(2 * channels)).Clear();
            }
        }

        /// <summary>
        /// Adds a chunk's Σdy and Σdy·x̂ of one channel (members: the chunk's positions, from p0 on); a chunk whose
        /// sums overflowed in the element type is summed again in float64.
        /// </summary>
        private readonly void AddParameterGradients(double* sumDy, double* sumDyNormalized, T a, T b, in Members members, long p0)
        {
            if (T.IsFinite(a) && T.IsFinite(b))
            {
                *sumDy += D(a);
                *sumDyNormalized += D(b);
                return;
            }
            var (exactA, exactB) = Exact<TElement, T>.ParameterGradients(X, Dy, members, Mean, Invstd, p0);
            *sumDy += exactA;
            *sumDyNormalized += exactB;
        }

        private readonly void PlanarTiles(long task)
        {
            var (firstSample, endSample, s0, width) = Plan.Tiles(task);
            for (long n = firstSample; n < endSample; n++)
            {
                long first = n * Plan.S + s0, at = n * Plan.C * Plan.S + s0;
                if (Partial != null)
                    PlanarParameterGradients(task, first, at, width);
                if (Dx != null)
                    PlanarGradient(first, at, width);
            }
        }

        /// <summary>This tile's Σdy and Σdy·x̂ per channel, added to slot <paramref name="slot"/>.</summary>
        private readonly void PlanarParameterGradients(long slot, long first, long at, long width)
        {
            long c = Plan.C, chunkLength = K.LayerNormParameterGradients.ChunkLength<T>();
            double* sumDy = Partial + 2 * slot * c, sumDyNormalized = sumDy + c;
            for (long k = 0; k < c; k++)
            {
                for (long start = 0; start < width; start += chunkLength)
                {
                    T a = T.Zero, b = T.Zero;
                    long offset = at + k * Plan.S + start, length = Math.Min(chunkLength, width - start);
                    K.LayerNormParameterGradients.MembersContiguous(X + offset, Dy + offset, (nint)length, Mean + first + start, Invstd + first + start, ref a, ref b);
                    AddParameterGradients(sumDy + k, sumDyNormalized + k, a, b, Members.Strided(offset, length, 1), first + start);
                }
            }
        }

        /// <summary>dx of an NCHW tile: the position sums over C rows (chunk by chunk), then the map, or float64 for the whole tile.</summary>
        private readonly void PlanarGradient(long first, long at, long width)
        {
            long c = Plan.C, stride = Plan.S;
            using var sums = new NativeBuffer<double>(2 * width);
            using var chunk = new NativeBuffer<T>(2 * width);
            using var coefficients = new NativeBuffer<T>(2 * width);
            double* sumG = sums, sumGCentered = sums.Pointer + width;
            T* a = chunk, b = chunk.Pointer + width, meanG = coefficients, xScale = coefficients.Pointer + width;
            for (long start = 0; start < c; start += RowsPerChunk)
            {
                K.LayerNormGradientSums.GroupsContiguous(X + at + start * stride, Dy + at + start * stride, (nint)Math.Min(RowsPerChunk, c - start),
                    (nint)width, (nint)stride, Mean + first, Piece(Gamma, start, Defaults.Ones), a, b);
                Sums.Carry(a, sumG, width);
                Sums.Carry(b, sumGCentered, width);
            }
            bool fast = true;
            for (long k = 0; k < width; k++)
            {
                double invstd = D(Invstd[first + k]), m = sumG[k] * Plan.PerChannel, s = Exact<TElement, T>.Product(-invstd, invstd, invstd * sumGCentered[k] * Plan.PerChannel);
                fast &= double.IsFinite(m) && double.IsFinite(s) && GradientFits(invstd, m, s, sumGCentered[k] == 0, D(Mean[first + k]));
                (meanG[k], xScale[k]) = (E(m), E(s));
            }
            if (!fast)
            {
                for (long k = 0; k < width; k++)
                    Exact<TElement, T>.LayerNormGradient(X, Dy, Dx, Plan.Position(first + k), D(Mean[first + k]), D(Invstd[first + k]), Gamma);
                return;
            }
            for (long start = 0; start < c; start += Defaults.Piece)
            {
                long rows = start * stride;
                K.LayerNormGradientApply.GroupsContiguous(X + at + rows, Dy + at + rows, Dx + at + rows, (nint)Math.Min(Defaults.Piece, c - start),
                    (nint)width, (nint)stride, Mean + first, meanG, Invstd + first, xScale, Piece(Gamma, start, Defaults.Ones), Plan.StreamTileRows);
            }
        }
    }
}
