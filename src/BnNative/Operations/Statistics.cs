using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using BnNative.Kernels;
using K = BnNative.Kernels.Kernels;

namespace BnNative.Operations;

/// <summary>Moments of a group from its sums.</summary>
internal static class Moments
{
    /// <summary>
    /// The corrected two-pass moments of <paramref name="count"/> values from Σ(x − center) and Σ(x − center)²,
    /// where center is the first pass's mean rounded to the element type: exact to the rounding of those sums.
    /// </summary>
    public static (double Mean, double M2) Corrected(double count, double center, double deviations, double squares) =>
        (center + deviations / count, Math.Max(0, squares - deviations * deviations / count));
}

/// <summary>
/// Sums taken in the compute type over one chunk (at most Accumulation.AddsPerAccumulator values per accumulator,
/// so their rounding stays within SPEC §4), carried on in float64; and partial results merged in a fixed order.
/// </summary>
internal static unsafe class Sums
{
    /// <summary>
    /// Adds the chunk sums of <paramref name="count"/> groups of <paramref name="length"/> positions each (a span of short NCHW
    /// slabs, see Statistics.ShortRuns) into each group's total, <paramref name="total"/>[j · <paramref name="stride"/>], in
    /// order, and clears them for the next chunk.
    /// </summary>
    public static void CarryGroups<T>(T* chunk, double* total, long stride, long count, long length) where T : unmanaged
    {
        for (long j = 0; j < count; j++)
            for (long k = j * length; k < (j + 1) * length; k++)
            {
                total[j * stride] += Element<T>.ToDouble(chunk[k]);
                chunk[k] = default;
            }
    }

    /// <summary>Each of <paramref name="count"/> values repeated <paramref name="length"/> times into <paramref name="span"/>: per-group parameters over a span of groups.</summary>
    public static void Spread<T>(T* values, long count, long length, T* span) where T : unmanaged
    {
        for (long j = 0; j < count; j++)
            new Span<T>(span + j * length, (int)length).Fill(values[j]);
    }

    /// <summary>Adds the <paramref name="width"/> chunk sums at <paramref name="chunk"/> into <paramref name="total"/> and clears them for the next chunk.</summary>
    public static void Carry<T>(T* chunk, double* total, long width) where T : unmanaged
    {
        long k = 0;
        // Float sums widen exactly to float64: in vectors, the same additions as one by one (measured: the scalar loop
        // was a third of the channels-last statistics pass for C = 64).
        if (typeof(T) == typeof(float) && KernelIsa.UseVectors && Vector256.IsHardwareAccelerated)
        {
            float* sums = (float*)chunk;
            for (; k <= width - 8; k += 8)
            {
                var (lower, upper) = Vector256.Widen(Vector256.Load(sums + k));
                (Vector256.Load(total + k) + lower).Store(total + k);
                (Vector256.Load(total + k + 4) + upper).Store(total + k + 4);
                Vector256<float>.Zero.Store(sums + k);
            }
        }
        for (; k < width; k++)
        {
            total[k] += Element<T>.ToDouble(chunk[k]);
            chunk[k] = default;
        }
    }

    /// <summary>
    /// Carries the chunk sums of every member whose two sums (<paramref name="a"/>[k], <paramref name="b"/>[k]) are both finite
    /// into the totals and clears them; members with a non-finite sum are left as they are, for the caller to redo. Returns
    /// whether all were carried. One pass: a check of the chunk followed by its carry were 16% of a narrow-row LayerNorm
    /// backward in cache.
    /// </summary>
    public static bool CarryFinite<T>(T* a, T* b, double* totalA, double* totalB, long width) where T : unmanaged, IFloatingPointIeee754<T>
    {
        long k = 0;
        bool all = true;
        if (typeof(T) == typeof(float) && KernelIsa.UseVectors && Vector256.IsHardwareAccelerated)
        {
            float* sumsA = (float*)a, sumsB = (float*)b;
            for (; k <= width - 8; k += 8)
            {
                Vector256<float> valuesA = Vector256.Load(sumsA + k), valuesB = Vector256.Load(sumsB + k);
                // x − x is +0 for finite x, NaN for ±∞ and NaN.
                var finite = Vector256.Equals((valuesA - valuesA) | (valuesB - valuesB), Vector256<float>.Zero);
                all &= finite.ExtractMostSignificantBits() == 0xFF;
                var (lowerA, upperA) = Vector256.Widen(valuesA & finite);
                var (lowerB, upperB) = Vector256.Widen(valuesB & finite);
                (Vector256.Load(totalA + k) + lowerA).Store(totalA + k);
                (Vector256.Load(totalA + k + 4) + upperA).Store(totalA + k + 4);
                (Vector256.Load(totalB + k) + lowerB).Store(totalB + k);
                (Vector256.Load(totalB + k + 4) + upperB).Store(totalB + k + 4);
                Vector256.AndNot(valuesA, finite).Store(sumsA + k);
                Vector256.AndNot(valuesB, finite).Store(sumsB + k);
            }
        }
        for (; k < width; k++)
        {
            if (!T.IsFinite(a[k]) || !T.IsFinite(b[k]))
            {
                all = false;
                continue;
            }
            totalA[k] += Element<T>.ToDouble(a[k]);
            totalB[k] += Element<T>.ToDouble(b[k]);
            a[k] = b[k] = T.Zero;
        }
        return all;
    }

    /// <summary>
    /// The column sums of <paramref name="count"/> rows of <paramref name="width"/> partials, <paramref name="rowStride"/>
    /// apart, into <paramref name="total"/> (which may be the first row): each column from 0, its rows added in their
    /// order (the tasks' order, fixed by the shape), so results do not depend on which thread ran which task. Read along
    /// the rows: column by column, the strided reads were 3% of an llm LayerNorm backward.
    /// </summary>
    public static void InOrder(double* rows, long count, long width, long rowStride, double* total)
    {
        for (long k = 0; k < width; k++)
            total[k] = 0 + rows[k]; // as a sum from 0: a −0 partial gives +0
        for (long r = 1; r < count; r++)
        {
            double* row = rows + r * rowStride;
            for (long k = 0; k < width; k++)
                total[k] += row[k];
        }
    }
}

/// <summary>
/// Statistics in the element type. Sums run in the element type for at most Accumulation.AddsPerAccumulator
/// values per accumulator and are then carried on in float64. Two ways to take them:
/// <list type="bullet">
/// <item>the corrected two-pass: Σx, then Σ(x − c) and Σ(x − c)² about c = the mean so found. The terms whose
/// rounding reaches the mean are x and x − c, never larger than |x| + |mean|;</item>
/// <item>one pass shifted by a data value (<see cref="OnePassAccepts"/>): Σd, Σd² and Σ|x| with d = x − shift,
/// used only where its rounding bound is within half of SPEC §4, which depends on how far the shift lies from
/// the data; elsewhere the two-pass is taken.</item>
/// </list>
/// </summary>
internal static unsafe class Statistics<TElement, T> where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private static T E(double value) => Element<T>.FromDouble(value);
    private static double D(T value) => Element<T>.ToDouble(value);
    private static T Widen(TElement value) => E(Element<TElement>.ToDouble(value));

    /// <summary>The unit roundoff of the element type (2^-24 for float).</summary>
    private static readonly double Roundoff = D(T.BitIncrement(T.One) - T.One) / 2;

    /// <summary>SPEC §4 for saved statistics: tol·(a + s) with tol = 1e-12, a = 0 for F64 and tol = 1e-5, a = 1 otherwise.</summary>
    private static readonly (double Tolerance, double Absolute) Rule = typeof(T) == typeof(double) ? (1e-12, 0) : (1e-5, 1);

    /// <summary>
    /// Whether one-pass sums about a shift are exact enough: m = Σd/n and var = Σd²/n − m² over n values,
    /// <paramref name="meanMagnitude"/> = Σ|x|/n, at most <paramref name="adds"/> additions per accumulator.
    /// A sum of k terms per accumulator rounds by at most u·(k/2 + 8)·Σ|terms| (u: the unit roundoff, 8 for the
    /// final reduction across lanes), and Σ|d| ≤ n·√(var + m²). The mean is accepted when that stays within half of
    /// §4's bound tol·(a + Σ|x|/n); the variance when m² ≤ var, so the cancellation in Σd²/n − m² costs at most twice
    /// its rounding.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool OnePassAccepts(double adds, double m, double variance, double meanMagnitude)
    {
        if (!(m * m <= variance))
            return false;
        double errorFactor = Roundoff * (adds / 2 + 8), allowed = 0.5 * Rule.Tolerance * (Rule.Absolute + meanMagnitude);
        return errorFactor * errorFactor * (variance + m * m) <= allowed * allowed; // squared: no square root per group
    }

    /// <summary><see cref="OnePassAccepts(double, double, double, double)"/> for eight groups, lane by lane (the same decisions).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> OnePassAccepts(double adds, Vector512<double> m, Vector512<double> variance, Vector512<double> meanMagnitude)
    {
        double errorFactor = Roundoff * (adds / 2 + 8);
        var allowed = Vector512.Create(0.5 * Rule.Tolerance) * (Vector512.Create(Rule.Absolute) + meanMagnitude);
        var square = m * m;
        return Vector512.LessThanOrEqual(square, variance)
            & Vector512.LessThanOrEqual(Vector512.Create(errorFactor * errorFactor) * (variance + square), allowed * allowed);
    }

    /// <summary>The chunk of <see cref="OfRuns"/>: the shortest ChunkLength of the three kernels it calls, for the width this image runs.</summary>
    private static readonly long Chunk = Math.Min(K.ShiftedMoments.ChunkLength<T>(), Math.Min(K.Sum.ChunkLength<T>(), K.CenteredMoments.ChunkLength<T>()));

    /// <summary>Accumulators of one ShiftedMoments call (its ChunkLength over AddsPerAccumulator).</summary>
    private static readonly long OnePassAccumulators = K.ShiftedMoments.ChunkLength<T>() / Kernels.Accumulation.AddsPerAccumulator;

    /// <summary>
    /// Mean and biased variance of a group made of contiguous runs (an NCHW channel: N slabs of S; a LayerNorm
    /// row: one run of C): <see cref="OfAdjacentRuns"/> of the one group.
    /// </summary>
    public static (double Mean, double Variance) OfRuns(TElement* x, in Members group)
    {
        double mean, variance;
        OfAdjacentRuns(x, group, 1, &mean, &variance);
        return (mean, variance);
    }

    /// <summary>
    /// Mean and biased variance of <paramref name="count"/> ≤ <see cref="Geometry{T}.MostAdjacentChannels"/> groups made of
    /// contiguous runs, whose runs follow each other in memory (NCHW channels c, c + 1, …: in each sample their slabs are one
    /// contiguous span), into <paramref name="mean"/> and <paramref name="variance"/>. A group of one chunk: see
    /// <see cref="OneChunk"/>. Longer ones: the corrected mean of each group's first chunk becomes the shift of one pass over
    /// all of it (Σd, Σd², Σ|x|, chunk by chunk), the groups' runs of a sample taken in memory order, so the pass reads one
    /// long span per sample instead of a short run per group and sample (which restarts the prefetcher every run); each
    /// group's sums are the same additions in the same order whatever the count. Where <see cref="OnePassAccepts"/> refuses a
    /// group's pass (its first chunk was not like the rest), that group is taken again as a corrected two-pass about its
    /// mean. Every chunk of a group is reduced about the same value, so merging the chunks loses nothing to the size of the mean.
    /// Many short runs (<see cref="ShortRuns"/>) are reduced a span of the groups at a time instead (<see cref="ShortRunMoments"/>).
    /// </summary>
    [SkipLocalsInit]
    public static void OfAdjacentRuns(TElement* x, in Members first, long count, double* mean, double* variance)
    {
        long chunk = Chunk;
        if (first.Runs == 1 && first.RunLength <= chunk)
        {
            for (long j = 0; j < count; j++)
                (mean[j], variance[j]) = OneChunk(x + first.Start + j * first.RunLength, first.RunLength);
            return;
        }
        T* shifts = stackalloc T[Geometry<TElement>.MostAdjacentChannels];
        double* sums = stackalloc double[3 * Geometry<TElement>.MostAdjacentChannels];
        new Span<double>(sums, 3 * Geometry<TElement>.MostAdjacentChannels).Clear();
        for (long j = 0; j < count; j++)
            shifts[j] = E(TwoPass(x + first.Start + j * first.RunLength, Math.Min(chunk, first.RunLength)).Mean);
        if (ShortRuns(first))
            ShortRunMoments(x, first, count, shifts, sums);
        else
            for (long r = 0; r < first.Runs; r++)
                for (long j = 0; j < count; j++)
                {
                    TElement* run = x + first.Start + r * first.RunStride + j * first.RunLength;
                    for (long start = 0; start < first.RunLength; start += chunk)
                    {
                        T a = T.Zero, b = T.Zero, c = T.Zero;
                        K.ShiftedMoments.MembersContiguous(run + start, (nint)Math.Min(chunk, first.RunLength - start), shifts[j], ref a, ref b, ref c);
                        (sums[3 * j], sums[3 * j + 1], sums[3 * j + 2]) = (sums[3 * j] + D(a), sums[3 * j + 1] + D(b), sums[3 * j + 2] + D(c));
                    }
                }
        double n = first.Count;
        for (long j = 0; j < count; j++)
        {
            double m = sums[3 * j] / n, v = sums[3 * j + 1] / n - m * m;
            (mean[j], variance[j]) = OnePassAccepts(Kernels.Accumulation.AddsPerAccumulator, m, v, sums[3 * j + 2] / n)
                ? (D(shifts[j]) + m, Math.Max(0, v))
                : CorrectedTwoPass(x, first with { Start = first.Start + j * first.RunLength }, chunk);
        }
    }

    /// <summary>
    /// Whether a group's runs are reduced a span of adjacent groups at a time, the spans of all runs (samples) as rows of a
    /// channels-last tile (see <see cref="ShortRunMoments"/>; ChannelPasses.PlanarGradientSums does the same): runs of at
    /// most 256 bytes (NCHW slabs of up to 64 floats: 7², 8²), at least 32 of them. Measured against run by run (both
    /// images in one process, alternated, float32 NCHW forward): N 32 × C 512 × 7² 1.16–1.24 / 1.12–1.21 at 1 / 2 threads,
    /// N 128 × C 1024 × 7² 1.37–1.40, 32 × 64 × 8² 1.06–1.08, 32 × 256 × 2² 2.0, 64 × 2,048 × 1² 1.8–2.0; N 16 × 64 × 8²
    /// 0.78–0.83 (the span's bookkeeping is not spread over enough samples), slabs of 10² 0.97, 14² and 16² 0.69–0.79.
    /// </summary>
    public static bool ShortRuns(in Members group) => group.Runs >= 32 && group.RunLength * sizeof(TElement) <= 256;

    /// <summary>
    /// Σd, Σd², Σ|x| about <paramref name="shifts"/> of <paramref name="count"/> adjacent groups of short runs, added into
    /// <paramref name="sums"/> (three per group). Run by run, every run of 49 values paid for a kernel call and the
    /// reduction of its vectors to three scalars, which were most of a resnet-late NCHW forward's statistics (the loads
    /// the rest). Here the groups' runs of one sample are one span, and the spans of all samples are rows of it, walked as
    /// a channels-last tile is: each position of the span gets its sums over the samples (at most RowsPerChunk of them per
    /// kernel call, carried to float64 after each, so each accumulator adds as many values as in a channels-last pass),
    /// then each group adds its positions' sums in float64, in order. The same for every thread count.
    /// </summary>
    private static void ShortRunMoments(TElement* x, in Members first, long count, T* shifts, double* sums)
    {
        long length = first.RunLength, span = count * length, step = Geometry<TElement>.RowsPerChunk;
        using var chunks = new NativeBuffer<T>(4 * span);
        T* shift = chunks, chunkSum = shift + span, chunkSquares = chunkSum + span, chunkMagnitudes = chunkSquares + span;
        Sums.Spread(shifts, count, length, shift);
        for (long start = 0; start < first.Runs; start += step)
        {
            K.ShiftedMoments.GroupsContiguous(x + first.Start + start * first.RunStride, (nint)Math.Min(step, first.Runs - start), (nint)span,
                (nint)first.RunStride, shift, chunkSum, chunkSquares, chunkMagnitudes, inMemoryOrder: false);
            Sums.CarryGroups(chunkSum, sums, 3, count, length);
            Sums.CarryGroups(chunkSquares, sums + 1, 3, count, length);
            Sums.CarryGroups(chunkMagnitudes, sums + 2, 3, count, length);
        }
    }

    /// <summary>The corrected two-pass mean and biased variance of a group of runs, chunk by chunk (a refused one pass).</summary>
    private static (double Mean, double Variance) CorrectedTwoPass(TElement* x, in Members group, long chunk)
    {
        double n = group.Count, total = 0;
        for (long r = 0; r < group.Runs; r++)
            for (long start = 0; start < group.RunLength; start += chunk)
            {
                T part = T.Zero;
                K.Sum.MembersContiguous(x + group.Start + r * group.RunStride + start, (nint)Math.Min(chunk, group.RunLength - start), ref part);
                total += D(part);
            }
        T center = E(total / n);
        double deviations = 0, squares = 0;
        for (long r = 0; r < group.Runs; r++)
            for (long start = 0; start < group.RunLength; start += chunk)
            {
                T a = T.Zero, b = T.Zero;
                K.CenteredMoments.MembersContiguous(x + group.Start + r * group.RunStride + start, (nint)Math.Min(chunk, group.RunLength - start), center, ref a, ref b);
                (deviations, squares) = (deviations + D(a), squares + D(b));
            }
        var (mean, m2) = Moments.Corrected(n, D(center), deviations, squares);
        return (mean, m2 / n);
    }

    /// <summary>Mean and biased variance of one chunk (see <see cref="Rows"/>).</summary>
    private static (double Mean, double Variance) OneChunk(TElement* run, long length) => new Rows(length).Of(run);

    /// <summary>
    /// Mean and biased variance of rows of one chunk each (a LayerNorm row in L1): one pass shifted by the mean of a
    /// row's first values (its first value when they are equal, so a constant row is exact), or, for a row where
    /// that is refused, the corrected two-pass. What depends only on the length is worked out once, and the
    /// per-row arithmetic uses products with reciprocals, not divisions (a division per sum and row was a large
    /// part of a C = 96 LayerNorm's time).
    /// </summary>
    public readonly struct Rows
    {
        private readonly long _length, _firstValues;
        private readonly double _adds, _perValue, _perFirstValue;

        /// <summary>Whether rows of <paramref name="length"/> values are one chunk each.</summary>
        public static bool Fit(long length) => length <= Chunk;

        public Rows(long length)
        {
            _length = length;
            _firstValues = Math.Min(8, length);
            _adds = (length + OnePassAccumulators - 1) / OnePassAccumulators;
            _perValue = 1.0 / length;
            _perFirstValue = 1.0 / _firstValues;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public (double Mean, double Variance) Of(TElement* row)
        {
            T shift = FirstValuesMean(row, _firstValues, _perFirstValue), sum = T.Zero, squares = T.Zero, magnitudes = T.Zero;
            K.ShiftedMoments.MembersContiguous(row, (nint)_length, shift, ref sum, ref squares, ref magnitudes);
            double m = D(sum) * _perValue, variance = D(squares) * _perValue - m * m;
            if (OnePassAccepts(_adds, m, variance, D(magnitudes) * _perValue))
                return (D(shift) + m, Math.Max(0, variance));
            var (mean, m2) = TwoPass(row, _length);
            return (mean, m2 * _perValue);
        }

        /// <summary>
        /// Rows of a group of <see cref="OfGroup"/>: one float64 lane each of two Vector512 (halves of them where that is not
        /// native). A group's phases depend on each other (sums, centers, deviations, coefficients); sixteen rows give each
        /// phase twice the independent work of eight: 1,024 rows of C = 96 in cache 0.022 → 0.019 ms (medians of 5 alternating
        /// runs), the same out of cache, where memory bounds it.
        /// </summary>
        public const int Group = 16;

        /// <summary>
        /// The longest rows <see cref="OfGroup"/> takes: 16 vectors (a quarter of what one accumulator may add). A row's
        /// sum is one chain of dependent additions; longer rows wait on it (bert, C = 768: 1.34 → 1.67 ms) where the
        /// unrolled one-pass of <see cref="Of"/> keeps four chains.
        /// </summary>
        private static readonly long GroupLength = Math.Min(K.Sum.RowGroupLength<T>(), K.CenteredMoments.RowGroupLength<T>()) / 4;

        /// <summary>Whether rows of <paramref name="length"/> values can be taken a group at a time (<see cref="OfGroup"/>).</summary>
        public static bool FitGroup(long length) => length <= GroupLength;

        /// <summary>
        /// Mean and biased variance of <paramref name="count"/> ≤ <see cref="Group"/> consecutive rows from
        /// <paramref name="first"/>, into <paramref name="mean"/> and <paramref name="variance"/> (Group values each; those
        /// beyond <paramref name="count"/> are 0): the corrected two-pass, exact to the rounding of its sums (so no
        /// acceptance test), a phase at a time for the whole group — the rows' sums (RowGroup kernels: the rows' chains
        /// overlap), their centers, their deviations and squares, then the float64 arithmetic in one vector per quantity
        /// and eight rows.
        /// Row by row, each row's sum → mean → deviations → variance was one chain of dependent operations longer than the
        /// row's loads (C = 96).
        /// </summary>
        [SkipLocalsInit]
        public void OfGroup(TElement* first, int count, double* mean, double* variance)
        {
            T* sums = stackalloc T[4 * Group];
            T* centers = sums + Group, deviations = centers + Group, squares = deviations + Group;
            new Span<T>(sums, 4 * Group).Clear();
            var perValue = Vector512.Create(_perValue);
            K.Sum.RowGroup(first, count, (nint)_length, (nint)_length, sums);
            for (int r = 0; r < Group; r += Lanes<T>.Count)
                Lanes<T>.Store(Lanes<T>.Load(sums + r) * perValue, centers + r);
            K.CenteredMoments.RowGroup(first, count, (nint)_length, (nint)_length, centers, deviations, squares);
            // Moments.Corrected lane by lane: mean = c + Σd/n, M2 = max(0, Σd² − (Σd)²/n), variance = M2/n.
            for (int r = 0; r < Group; r += Lanes<T>.Count)
            {
                var sumDeviations = Lanes<T>.Load(deviations + r);
                (Lanes<T>.Load(centers + r) + sumDeviations * perValue).Store(mean + r);
                (Vector512.Max(Vector512<double>.Zero, Lanes<T>.Load(squares + r) - sumDeviations * sumDeviations * perValue) * perValue).Store(variance + r);
            }
        }
    }

    /// <summary>
    /// The mean of the first <paramref name="count"/> values in float64 (<paramref name="inverse"/> = 1/count), or the
    /// first value when they are all equal to it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T FirstValuesMean(TElement* values, long count, double inverse)
    {
        T first = Widen(values[0]);
        bool constant = true;
        double mean = 0; // each term at most max/count: the sum cannot overflow
        for (long i = 0; i < count; i++)
        {
            constant &= Widen(values[i]) == first;
            mean += Element<TElement>.ToDouble(values[i]) * inverse;
        }
        return constant ? first : E(mean);
    }

    /// <summary>
    /// The corrected two-pass means and M2 of <paramref name="width"/> columns of <paramref name="count"/> rows,
    /// <paramref name="rowStride"/> elements apart (channels-last channels; NCHW LayerNorm positions), chunk by chunk:
    /// the sums, then deviations and squares about the means. With <paramref name="shift"/>, the means are about it.
    /// </summary>
    public static void OfColumns(TElement* rows, long count, nint width, long rowStride, double* mean, double* m2, T* shift = null)
    {
        long step = Kernels.Accumulation.AddsPerAccumulator;
        using var totals = new NativeBuffer<double>(2 * width);
        using var chunk = new NativeBuffer<T>(3 * width);
        T* center = chunk, deviations = center + width, squares = deviations + width;
        double* sumDeviations = totals, sumSquares = totals.Pointer + width;
        new Span<double>(mean, (int)width).Clear();
        for (long start = 0; start < count; start += step)
        {
            K.Sum.GroupsContiguous(rows + start * rowStride, (nint)Math.Min(step, count - start), width, (nint)rowStride, deviations, inMemoryOrder: false);
            Sums.Carry(deviations, mean, width);
        }
        for (long k = 0; k < width; k++)
            center[k] = E(mean[k] / count);
        for (long start = 0; start < count; start += step)
        {
            K.CenteredMoments.GroupsContiguous(rows + start * rowStride, (nint)Math.Min(step, count - start), width, (nint)rowStride, center, deviations, squares, inMemoryOrder: false);
            Sums.Carry(deviations, sumDeviations, width);
            Sums.Carry(squares, sumSquares, width);
        }
        for (long k = 0; k < width; k++)
            (mean[k], m2[k]) = Moments.Corrected(count, D(center[k]) - (shift == null ? 0 : D(shift[k])), sumDeviations[k], sumSquares[k]);
    }

    /// <summary>The corrected two-pass mean and M2 of <paramref name="length"/> contiguous values (one chunk).</summary>
    private static (double Mean, double M2) TwoPass(TElement* run, long length)
    {
        T sum = T.Zero, deviations = T.Zero, squares = T.Zero;
        K.Sum.MembersContiguous(run, (nint)length, ref sum);
        T center = E(D(sum) / length);
        K.CenteredMoments.MembersContiguous(run, (nint)length, center, ref deviations, ref squares);
        return Moments.Corrected(length, D(center), D(deviations), D(squares));
    }
}
