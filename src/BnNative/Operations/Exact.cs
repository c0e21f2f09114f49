using System;
using System.Numerics;

namespace BnNative.Operations;

/// <summary>
/// The members of one group — a BatchNorm channel or a LayerNorm position — as element offsets:
/// <see cref="Runs"/> runs of <see cref="RunLength"/> elements <see cref="Stride"/> apart, the runs
/// <see cref="RunStride"/> apart. A member's index (0 .. Count−1, in that order) is its channel for a
/// LayerNorm position.
/// </summary>
internal readonly record struct Members(long Start, long Runs, long RunStride, long RunLength, long Stride)
{
    public long Count => Runs * RunLength;

    /// <summary><paramref name="count"/> members <paramref name="stride"/> apart from <paramref name="start"/>.</summary>
    public static Members Strided(long start, long count, long stride) => new(start, 1, 0, count, stride);

    public Enumerator GetEnumerator() => new(this);

    /// <summary>Yields (index, offset) of every member, in index order.</summary>
    public struct Enumerator
    {
        private readonly Members _members;
        private long _run, _i, _index;

        public Enumerator(Members members)
        {
            _members = members;
            _run = 0;
            _i = -1;
            _index = -1;
        }

        public readonly (long Index, long Offset) Current =>
            (_index, _members.Start + _run * _members.RunStride + _i * _members.Stride);

        public bool MoveNext()
        {
            _index++;
            if (++_i < _members.RunLength)
                return _run < _members.Runs;
            _i = 0;
            return ++_run < _members.Runs;
        }
    }
}

/// <summary>
/// The float64 path for groups the fast path cannot be trusted with (SPEC §3 "Extremes"). The fast path
/// reduces chunks in the element type and applies per-group coefficients rounded to it, which is exact to
/// §4 except where a chunk sum overflows or underflows, or a coefficient rounds to infinity, to a
/// subnormal or to nothing: huge spreads (±1e20 in F32, whose squares pass FLT_MAX), tiny eps with
/// constant data (γ/σ = 1e150), data near the ends of the range. The operations check every group's
/// results (<see cref="Trustworthy"/>, <see cref="Fits"/>) and send the few that fail here, where every
/// value is read as float64 and scaled by a power of two before it is squared or multiplied, so no
/// intermediate overflows where the result does not. Slow (scalar, three passes), and only for such groups.
/// </summary>
internal static unsafe class Exact<T> where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private static T E(double value) => T.CreateTruncating(value);
    private static double D(T value) => double.CreateTruncating(value);

    /// <summary>The element type's largest finite value, as float64.</summary>
    public static readonly double MaxValue = D(T.BitDecrement(T.PositiveInfinity));

    /// <summary>
    /// Below this, var + eps is too small for the fast path: its sums of squares in the element type lose up
    /// to half a subnormal step per value (2^-150 in F32), which must stay far below var + eps.
    /// </summary>
    private static readonly double TinyVariance = Math.ScaleB(D(T.Epsilon), 60);

    /// <summary>Whether fast-path statistics can be used: finite, and var + eps well above the subnormal range.</summary>
    public static bool Trustworthy(double mean, double variance, double eps) =>
        double.IsFinite(mean) && double.IsFinite(variance) && variance + eps >= TinyVariance;

    /// <summary>Whether a coefficient keeps its relative precision in the element type: 0, or a normal number of it.</summary>
    public static bool Fits(double value) => value == 0 || T.IsNormal(E(value));

    /// <summary>
    /// Whether the element-wise map (x − mean)·scale + shift in the element type is exact to §4 for a group of
    /// <paramref name="count"/> members with this mean and variance: the coefficients fit, and no x − mean can
    /// overflow (|x − mean| ≤ √(count·var)).
    /// </summary>
    public static bool MapFits(double variance, long count, double scale, double shift) =>
        Fits(scale) && T.IsFinite(E(shift)) && Math.Sqrt(count) * Math.Sqrt(variance) <= MaxValue / 4;

    /// <summary>The power of two that brings <paramref name="magnitude"/> into [1, 2); 0 for 0 and non-finite values.</summary>
    private static int Exponent(double magnitude) => magnitude > 0 && double.IsFinite(magnitude) ? Math.ILogB(magnitude) : 0;

    /// <summary>Mean and biased variance of a group, in three float64 passes: the largest magnitude, the mean, the squares.</summary>
    public static (double Mean, double Variance) Statistics(T* x, in Members members)
    {
        double largest = 0;
        foreach (var (_, at) in members)
            largest = Math.Max(largest, Math.Abs(D(x[at])));
        int e = Exponent(largest);
        double n = members.Count, sum = 0;
        foreach (var (_, at) in members)
            sum += Math.ScaleB(D(x[at]), -e);
        double mean = sum / n, correction = 0, squares = 0;
        foreach (var (_, at) in members)
        {
            double d = Math.ScaleB(D(x[at]), -e) - mean;
            correction += d;
            squares += d * d;
        }
        // The corrected two-pass formula: the second pass also repairs the rounding of the mean.
        return (Math.ScaleB(mean + correction / n, e), Math.ScaleB((squares - correction * correction / n) / n, 2 * e));
    }

    /// <summary>y = (x − center)·scale + shift over a group, in float64; <paramref name="source"/> is x (or y holding x).</summary>
    public static void ScaleShift(T* source, T* y, in Members members, double center, double scale, double shift)
    {
        foreach (var (_, at) in members)
            y[at] = E((D(source[at]) - center) * scale + shift);
    }

    /// <summary>
    /// Mean of dy and mean of dy·(x − center)·xScale over a group, in float64, dy and x − center each scaled
    /// by a power of two so their product cannot overflow.
    /// </summary>
    public static (double MeanDy, double MeanDyXhat) GradientMeans(T* x, T* dy, in Members members, double center, double xScale)
    {
        double largestDy = 0, largestDeviation = 0;
        foreach (var (_, at) in members)
        {
            largestDy = Math.Max(largestDy, Math.Abs(D(dy[at])));
            largestDeviation = Math.Max(largestDeviation, Math.Abs(D(x[at]) - center));
        }
        int eDy = Exponent(largestDy), eX = Exponent(largestDeviation);
        double n = members.Count, sumDy = 0, sumDyX = 0;
        foreach (var (_, at) in members)
        {
            double g = Math.ScaleB(D(dy[at]), -eDy);
            sumDy += g;
            sumDyX += g * Math.ScaleB(D(x[at]) - center, -eX);
        }
        return (Math.ScaleB(sumDy / n, eDy), Math.ScaleB(sumDyX / n * xScale, eDy + eX));
    }

    /// <summary>
    /// dx = a·(dy − meanDy − x̂·meanDyXhat) with x̂ = (x − center)·invstd over a group, in float64;
    /// <paramref name="dySource"/> is dy (or dx holding dy).
    /// </summary>
    public static void GradientApply(T* x, T* dySource, T* dx, in Members members, double center, double invstd, double a,
        double meanDy, double meanDyXhat)
    {
        foreach (var (_, at) in members)
            dx[at] = E(a * (D(dySource[at]) - meanDy - (D(x[at]) - center) * invstd * meanDyXhat));
    }

    /// <summary>LayerNorm's y = γ_k·(x − mean)·invstd + β_k over a position (member k is channel k), in float64.</summary>
    public static void LayerNormMap(T* source, T* y, in Members members, double mean, double invstd, T* gamma, T* beta)
    {
        foreach (var (k, at) in members)
            y[at] = E((D(source[at]) - mean) * invstd * Parameter(gamma, k, 1) + Parameter(beta, k, 0));
    }

    /// <summary>
    /// LayerNorm's dx = invstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ over a position, in float64, dy scaled
    /// by a power of two so the sums cannot overflow; <paramref name="dySource"/> is dy (or dx holding dy).
    /// </summary>
    public static void LayerNormGradient(T* x, T* dySource, T* dx, in Members members, double mean, double invstd, T* gamma)
    {
        double largest = 0;
        foreach (var (_, at) in members)
            largest = Math.Max(largest, Math.Abs(D(dySource[at])));
        int e = Exponent(largest);
        double n = members.Count, sumG = 0, sumGXhat = 0;
        foreach (var (k, at) in members)
        {
            double g = Math.ScaleB(D(dySource[at]), -e) * Parameter(gamma, k, 1);
            sumG += g;
            sumGXhat += g * (D(x[at]) - mean) * invstd;
        }
        double meanG = sumG / n, meanGXhat = sumGXhat / n;
        foreach (var (k, at) in members)
        {
            double g = Math.ScaleB(D(dySource[at]), -e) * Parameter(gamma, k, 1);
            dx[at] = E(Math.ScaleB(invstd * (g - meanG - (D(x[at]) - mean) * invstd * meanGXhat), e));
        }
    }

    private static double Parameter(T* values, long k, double fallback) => values == null ? fallback : D(values[k]);
}
