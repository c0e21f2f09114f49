using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
internal static unsafe class Exact<TElement, T> where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private static T E(double value) => Element<T>.FromDouble(value);
    private static double D(T value) => Element<T>.ToDouble(value);
    /// <summary>A tensor element as float64 (exact).</summary>
    private static double X(TElement value) => Element<TElement>.ToDouble(value);
    /// <summary>A float64 result as a tensor element.</summary>
    private static TElement Y(double value) => Element<TElement>.FromDouble(value);

    /// <summary>The element type's largest finite value, as float64.</summary>
    public static readonly double MaxValue = D(T.BitDecrement(T.PositiveInfinity));

    /// <summary>
    /// Below this, var + eps is too small for the fast path: its sums of squares in the element type lose up
    /// to half a subnormal step per value (2^-150 in F32), which must stay far below var + eps.
    /// </summary>
    private static readonly double TinyVariance = Math.ScaleB(D(T.Epsilon), 60);

    /// <summary>Whether fast-path statistics can be used: finite, and var + eps well above the subnormal range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Trustworthy(double mean, double variance, double eps) =>
        double.IsFinite(mean) && double.IsFinite(variance) && variance + eps >= TinyVariance;

    /// <summary><see cref="Trustworthy"/> for eight groups, lane by lane (the same decisions).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Trustworthy(Vector512<double> mean, Vector512<double> variance, double eps)
    {
        return Finite(mean) & Finite(variance) & Vector512.GreaterThanOrEqual(variance + Vector512.Create(eps), Vector512.Create(TinyVariance));
    }

    /// <summary>
    /// Whether a coefficient keeps its relative precision in the element type: a normal number of it, or 0 when
    /// <paramref name="zeroIsExact"/> (a factor of it is 0). A product that underflowed to 0 in float64 does not fit:
    /// the terms it multiplies can be huge.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Fits(double value, bool zeroIsExact) => value == 0 ? zeroIsExact : T.IsNormal(E(value));

    /// <summary>
    /// Below this a center c can be subtracted from any finite x of the element type without overflow: |x − c| ≤
    /// MAX + |c| rounds back to MAX while |c| is under half an ulp of MAX (a quarter, for margin).
    /// </summary>
    private static readonly double SafeCenter = (MaxValue - D(T.BitDecrement(T.BitDecrement(T.PositiveInfinity)))) / 4;

    /// <summary>Whether x − <paramref name="center"/> in the element type cannot overflow for any finite x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool CenterFits(double center) => Math.Abs(center) < SafeCenter;

    /// <summary>
    /// Whether the element-wise map (x − mean)·scale + shift in the element type is exact to §4 for a group of
    /// <paramref name="count"/> members with this mean and variance: the coefficients fit, and no x − mean can
    /// overflow (|x − mean| ≤ √(count·var); a count·var past float64's range does not fit).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool MapFits(double variance, long count, double scale, bool scaleIsExactlyZero, double shift) =>
        Fits(scale, scaleIsExactlyZero) && T.IsFinite(E(shift)) && Math.Sqrt(count * variance) <= MaxValue / 4;

    /// <summary>Lanes that are finite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Finite(Vector512<double> value) => Vector512.LessThanOrEqual(Vector512.Abs(value), Vector512.Create(double.MaxValue));

    /// <summary>Lanes that are normal float64 numbers (what <see cref="Product"/> multiplies on without scaling).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> NormalFloat64(Vector512<double> value) =>
        Vector512.GreaterThanOrEqual(Vector512.Abs(value), Vector512.Create(Float64MinNormal)) & Finite(value);

    /// <summary><see cref="Fits(double, bool)"/> for eight values, lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Fits(Vector512<double> value, Vector512<double> zeroIsExact) =>
        NormalInElementType(value) | (Vector512.Equals(value, Vector512<double>.Zero) & zeroIsExact);

    /// <summary><see cref="CenterFits(double)"/> for eight values, lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> CenterFits(Vector512<double> center) => Vector512.LessThan(Vector512.Abs(center), Vector512.Create(SafeCenter));

    /// <summary><see cref="MapFits"/> for eight groups, lane by lane (the same decisions).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> MapFits(Vector512<double> variance, long count, Vector512<double> scale, Vector512<double> scaleIsExactlyZero, Vector512<double> shift)
    {
        var fits = Fits(scale, scaleIsExactlyZero);
        var shiftFinite = Vector512.LessThanOrEqual(Vector512.Abs(Lanes<T>.Rounded(shift)), Vector512.Create(MaxValue));
        var noOverflow = Vector512.LessThanOrEqual(Vector512.Sqrt(Vector512.Create((double)count) * variance), Vector512.Create(MaxValue / 4));
        return fits & shiftFinite & noOverflow;
    }

    /// <summary>The element type's smallest normal value, as float64 (its smallest subnormal over its machine epsilon, both powers of two).</summary>
    private static readonly double MinNormal = D(T.Epsilon) / D(T.BitIncrement(T.One) - T.One);

    /// <summary>
    /// For a group of 8 rows of <paramref name="count"/> members: <paramref name="invstd"/> = 1/√(variance + eps), and the
    /// bits of the rows where <see cref="Trustworthy"/> and <see cref="MapFits"/>(variance, count, invstd, false, 0) both
    /// hold — the same decisions, in one float64 vector per quantity (see Statistics.Rows.OfGroup).
    /// </summary>
    public static ulong RowCoefficients(double* mean, double* variance, double eps, long count, double* invstd)
    {
        var rowVariance = Vector512.Load(variance);
        var varianceEps = rowVariance + Vector512.Create(eps);
        var scale = Vector512<double>.One / Vector512.Sqrt(varianceEps);
        scale.Store(invstd);
        var zero = Vector512<double>.Zero;
        return (Trustworthy(Vector512.Load(mean), rowVariance, eps) & MapFits(rowVariance, count, scale, zero, zero)).ExtractMostSignificantBits();
    }

    /// <summary>
    /// For a group of 8 rows of a LayerNorm backward, from each row's saved mean and invstd and its sums Σg and Σg·(x − mean):
    /// <paramref name="meanG"/> = Σg/C and <paramref name="xScale"/> = −invstd·invstd·(invstd·Σg·(x − mean)/C), and the bits of
    /// the rows whose coefficients the row-by-row path (LayerNorm.BackwardJob.Coefficients) would take in the element type —
    /// the same values and decisions, in one float64 vector per quantity. A row whose −invstd² is not a normal number
    /// (<see cref="Product"/> would form it from mantissas and exponents) is left to that path.
    /// </summary>
    public static ulong RowGradientCoefficients(double* mean, double* invstd, double* sumG, double* sumGCentered, double perChannel, double* meanG, double* xScale)
    {
        var s = Vector512.Load(invstd);
        var centered = Vector512.Load(sumGCentered);
        var perValue = Vector512.Create(perChannel);
        var m = Vector512.Load(sumG) * perValue;
        var square = -s * s;
        var scale = square * (s * centered * perValue);
        m.Store(meanG);
        scale.Store(xScale);
        var zero = Vector512<double>.Zero;
        var product = NormalFloat64(square) | Vector512.Equals(s, zero);
        var finite = Finite(m) & Finite(scale);
        var coefficientsFit = Fits(s, zero) & Fits(scale, Vector512.Equals(centered, zero));
        var centersFit = CenterFits(m) & CenterFits(Vector512.Load(mean));
        return (product & finite & coefficientsFit & centersFit).ExtractMostSignificantBits();
    }

    private static readonly double Float64MinNormal = Math.ScaleB(1.0, -1022);

    /// <summary>Lanes whose value, rounded to the element type, is a normal number of it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<double> NormalInElementType(Vector512<double> value)
    {
        var rounded = Vector512.Abs(Lanes<T>.Rounded(value));
        return Vector512.GreaterThanOrEqual(rounded, Vector512.Create(MinNormal)) & Vector512.LessThanOrEqual(rounded, Vector512.Create(MaxValue));
    }

    /// <summary>The power of two that brings <paramref name="magnitude"/> into [1, 2); 0 for 0 and non-finite values.</summary>
    private static int Exponent(double magnitude) => magnitude > 0 && double.IsFinite(magnitude) ? Math.ILogB(magnitude) : 0;

    /// <summary>Mean and biased variance of a group, in three float64 passes: the largest magnitude, the mean, the squares.</summary>
    public static (double Mean, double Variance) Statistics(TElement* x, in Members members)
    {
        double largest = 0, first = X(x[members.Start]);
        bool constant = true;
        foreach (var (_, at) in members)
        {
            largest = Math.Max(largest, Math.Abs(X(x[at])));
            constant &= X(x[at]) == first;
        }
        if (constant && double.IsFinite(first))
            return (first, 0); // y = β exactly; no sum of equal values is exact in general (3x rounds)
        int e = Exponent(largest);
        // The mean by compensated (Neumaier) summation, so values far larger than the mean may cancel: there
        // the deviations d below each round the mean away, and the usual correction Σd/n would add their
        // roundings rather than remove the sum's.
        double n = members.Count, sum = 0, compensation = 0;
        foreach (var (_, at) in members)
        {
            double v = Math.ScaleB(X(x[at]), -e), t = sum + v;
            compensation += Math.Abs(sum) >= Math.Abs(v) ? sum - t + v : v - t + sum;
            sum = t;
        }
        double mean = (sum + compensation) / n, correction = 0, squares = 0;
        foreach (var (_, at) in members)
        {
            double d = Math.ScaleB(X(x[at]), -e) - mean;
            correction += d;
            squares += d * d;
        }
        return (Math.ScaleB(mean, e), Math.ScaleB(Math.Max(0, (squares - correction * correction / n) / n), 2 * e));
    }

    /// <summary>
    /// y = γ·((x − center)·invstd·r + d) + β over a group, in float64 and in the SPEC's order, with the product
    /// and the sum formed from mantissas and exponents (<see cref="Scaled"/>), so no huge γ, invstd or x − center
    /// overflows where y does not; <paramref name="source"/> is x (or y holding x).
    /// </summary>
    public static void Affine(TElement* source, TElement* y, in Members members, double center, double invstd, double r, double d, double gamma, double beta)
    {
        var factor = Scaled.Of(invstd) * Scaled.Of(r);
        foreach (var (_, at) in members)
        {
            var normalized = Scaled.Sum(Deviation(X(source[at]), center) * factor, Scaled.Of(d));
            y[at] = Y(Scaled.Sum(normalized * Scaled.Of(gamma), Scaled.Of(beta)).Value);
        }
    }

    /// <summary>x − center as a <see cref="Scaled"/>, both halved first where their difference passes float64's range.</summary>
    private static Scaled Deviation(double x, double center)
    {
        double deviation = x - center;
        if (double.IsFinite(deviation) || !double.IsFinite(x) || !double.IsFinite(center))
            return Scaled.Of(deviation);
        var half = Scaled.Of(x * 0.5 - center * 0.5);
        return new Scaled(half.Mantissa, half.Exponent + 1);
    }

    /// <summary>mean(dy) and mean(dy·(x − center))·xScale over a group, in float64, as sums of scaled products.</summary>
    public static (double MeanDy, double MeanDyXhat) GradientMeans(TElement* x, TElement* dy, in Members members, double center, double xScale)
    {
        var sumDy = new ScaledSum();
        var sumDyX = new ScaledSum();
        for (int pass = 0; pass < 2; pass++)
        {
            foreach (var (_, at) in members)
            {
                var g = Scaled.Of(X(dy[at]));
                sumDy.Add(g, pass);
                sumDyX.Add(g * Deviation(X(x[at]), center), pass);
            }
        }
        double n = members.Count;
        return (sumDy.Mean(n).Value, (sumDyX.Mean(n) * Scaled.Of(xScale)).Value);
    }

    /// <summary>
    /// dx = γ·r·invstd·(dy − meanDy − x̂·meanDyXhat) with x̂ = (x − center)·invstd over a group, in float64, as
    /// scaled products; <paramref name="dySource"/> is dy (or dx holding dy).
    /// </summary>
    public static void GradientApply(TElement* x, TElement* dySource, TElement* dx, in Members members, double center, double invstd, double gamma, double r,
        double meanDy, double meanDyXhat)
    {
        var xFactor = Scaled.Of(invstd) * Scaled.Of(meanDyXhat);
        var dxFactor = Scaled.Of(invstd) * Scaled.Of(gamma) * Scaled.Of(r);
        foreach (var (_, at) in members)
        {
            var difference = Scaled.Sum(Deviation(X(dySource[at]), meanDy), (Deviation(X(x[at]), center) * xFactor).Negated);
            dx[at] = Y((difference * dxFactor).Value);
        }
    }

    /// <summary>LayerNorm's y = γ_k·(x − mean)·invstd + β_k over a position (member k is channel k), in float64.</summary>
    public static void LayerNormMap(TElement* source, TElement* y, in Members members, double mean, double invstd, T* gamma, T* beta)
    {
        var scale = Scaled.Of(invstd);
        foreach (var (k, at) in members)
        {
            var normalized = Deviation(X(source[at]), mean) * scale * Scaled.Of(Parameter(gamma, k, 1));
            y[at] = Y(Scaled.Sum(normalized, Scaled.Of(Parameter(beta, k, 0))).Value);
        }
    }

    /// <summary>
    /// LayerNorm's dx = invstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ over a position, in float64, as scaled
    /// products; <paramref name="dySource"/> is dy (or dx holding dy).
    /// </summary>
    public static void LayerNormGradient(TElement* x, TElement* dySource, TElement* dx, in Members members, double mean, double invstd, T* gamma)
    {
        var sumG = new ScaledSum();
        var sumGX = new ScaledSum();
        for (int pass = 0; pass < 2; pass++)
        {
            foreach (var (k, at) in members)
            {
                var g = Scaled.Of(X(dySource[at])) * Scaled.Of(Parameter(gamma, k, 1));
                sumG.Add(g, pass);
                sumGX.Add(g * Deviation(X(x[at]), mean), pass);
            }
        }
        double n = members.Count;
        var scale = Scaled.Of(invstd);
        var meanG = sumG.Mean(n).Negated;
        var xFactor = (sumGX.Mean(n) * scale * scale).Negated; // x̂·mean(g·x̂) = (x − mean)·invstd²·mean(g·(x − mean))
        foreach (var (k, at) in members)
        {
            var g = Scaled.Of(X(dySource[at])) * Scaled.Of(Parameter(gamma, k, 1));
            var difference = Scaled.Sum(Scaled.Sum(g, meanG), Deviation(X(x[at]), mean) * xFactor);
            dx[at] = Y((difference * scale).Value);
        }
    }

    /// <summary>
    /// Σdy and Σdy·(x − mean_p)·invstd_p over a group of LayerNorm positions (a channel's members; position p =
    /// <paramref name="firstPosition"/> + index), in float64, as sums of scaled products.
    /// </summary>
    public static (double SumDy, double SumDyXhat) ParameterGradients(TElement* x, TElement* dy, in Members members, T* mean, T* invstd, long firstPosition)
    {
        var sumDy = new ScaledSum();
        var sumDyX = new ScaledSum();
        for (int pass = 0; pass < 2; pass++)
        {
            foreach (var (k, at) in members)
            {
                long p = firstPosition + k;
                var g = Scaled.Of(X(dy[at]));
                sumDy.Add(g, pass);
                sumDyX.Add(g * Deviation(X(x[at]), D(mean[p])) * Scaled.Of(D(invstd[p])), pass);
            }
        }
        return (sumDy.Total.Value, sumDyX.Total.Value);
    }

    /// <summary>(x − center)·scale without overflow of the difference (x and center of opposite signs near the ends of float64's range).</summary>
    public static double ScaledDeviation(double x, double center, double scale) => (Deviation(x, center) * Scaled.Of(scale)).Value;

    /// <summary>
    /// γ·clamp((mean − runningMean)·inverseSigma, −dmax, dmax) + β (Batch Renormalization's constant term), with d
    /// kept as mantissa and exponent: d itself may pass float64's range (dmax = ∞) where γ·d does not.
    /// </summary>
    public static double RenormShift(double gamma, double beta, double mean, double runningMean, double inverseSigma, double dmax)
    {
        var d = Deviation(mean, runningMean) * Scaled.Of(inverseSigma);
        double value = d.Value; // ±∞ where d passes float64's range
        if (double.IsNaN(value))
            return double.NaN;
        if (double.IsFinite(value))
            d = Scaled.Of(Math.Clamp(value, -dmax, dmax));
        else if (double.IsFinite(dmax))
            d = Scaled.Of(value > 0 ? dmax : -dmax);
        return Scaled.Sum(Scaled.Of(gamma) * d, Scaled.Of(beta)).Value;
    }

    /// <summary>
    /// a·b·c, left to right where a·b is a normal number or a factor is 0 (exactly as a * b * c), otherwise as mantissas
    /// and exponents, so that an intermediate below the normal range (or past it) costs no precision the result has.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Product(double a, double b, double c)
    {
        double ab = a * b;
        return double.IsNormal(ab) || a == 0 || b == 0 ? ab * c : (Scaled.Of(a) * Scaled.Of(b) * Scaled.Of(c)).Value;
    }

    /// <summary>count·(r·a + d·b) without overflow where the result does not (Batch Renormalization's dgamma).</summary>
    public static double Combination(double count, double r, double a, double d, double b) =>
        (Scaled.Of(count) * Scaled.Sum(Scaled.Of(r) * Scaled.Of(a), Scaled.Of(d) * Scaled.Of(b))).Value;

    /// <summary>
    /// A float64 as Mantissa·2^Exponent with |Mantissa| in [1, 2) (zeros and non-finite values: Exponent 0), so
    /// products and sums of values near the ends of float64's range can be formed without overflow.
    /// </summary>
    private readonly record struct Scaled(double Mantissa, int Exponent)
    {
        public static Scaled Of(double value) =>
            value != 0 && double.IsFinite(value) ? new(Math.ScaleB(value, -Math.ILogB(value)), Math.ILogB(value)) : new(value, 0);

        public double Value => Math.ScaleB(Mantissa, Exponent);

        public Scaled Negated => new(-Mantissa, Exponent);

        /// <summary>The value divided by 2^<paramref name="exponent"/>.</summary>
        public double At(int exponent) => Math.ScaleB(Mantissa, Exponent - exponent);

        public static Scaled operator *(Scaled a, Scaled b)
        {
            var product = Of(a.Mantissa * b.Mantissa);
            return new(product.Mantissa, product.Exponent + a.Exponent + b.Exponent);
        }

        public static Scaled Sum(Scaled a, Scaled b)
        {
            if (a.Mantissa == 0 || b.Mantissa == 0)
                return a.Mantissa == 0 ? b : a; // a zero's exponent must not decide the other's scale
            int exponent = Math.Max(a.Exponent, b.Exponent);
            var sum = Of(a.At(exponent) + b.At(exponent));
            return new(sum.Mantissa, sum.Exponent + exponent);
        }
    }

    /// <summary>A sum of <see cref="Scaled"/> terms in two passes: the largest exponent, then the terms divided by it.</summary>
    private struct ScaledSum
    {
        private int _exponent;
        private double _sum;
        private bool _seen;

        public void Add(Scaled term, int pass)
        {
            if (pass == 0)
            {
                if (term.Mantissa == 0)
                    return; // zeros add nothing, and their exponent must not decide the scale
                _exponent = _seen ? Math.Max(_exponent, term.Exponent) : term.Exponent;
                _seen = true;
            }
            else
            {
                _sum += term.At(_exponent);
            }
        }

        public readonly Scaled Total => new(_sum, _exponent);

        public readonly Scaled Mean(double count) => new(_sum / count, _exponent);
    }

    private static double Parameter(T* values, long k, double fallback) => values == null ? fallback : D(values[k]);
}
