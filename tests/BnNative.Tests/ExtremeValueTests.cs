using System;
using System.Linq;
using BnNative.Interop;
using Xunit;

namespace BnNative.Tests;

/// <summary>
/// SPEC §3 "Extremes": finite inputs whose float64 statistics are finite give results within §4 wherever
/// the exact result is representable — values near the ends of the range, spreads whose squares pass the
/// type's maximum, eps far below any variance. Each case once broke the fast path (NaN, zeros or ∞ where
/// a float64 reference is finite); every image, layout and dtype.
/// </summary>
public class ExtremeValueTests
{
    public static TheoryData<string, BnLayout, BnDType> Cases() => EdgeCaseTests.Cases();

    /// <summary>The cases in NC and NHWC (whose per-channel checks go eight channels at a time).</summary>
    public static TheoryData<string, BnLayout, BnDType> ChannelsLastCases() => CasesIn(BnLayout.NC, BnLayout.NHWC);

    /// <summary>The cases in NCHW.</summary>
    public static TheoryData<string, BnLayout, BnDType> PlanarCases() => CasesIn(BnLayout.NCHW);

    private static TheoryData<string, BnLayout, BnDType> CasesIn(params BnLayout[] layouts)
    {
        var cases = new TheoryData<string, BnLayout, BnDType>();
        foreach (var row in Cases())
            if (layouts.Contains((BnLayout)row[1]))
                cases.Add((string)row[0], (BnLayout)row[1], (BnDType)row[2]);
        return cases;
    }

    /// <summary>A (C = <paramref name="c"/>) tensor with <paramref name="members"/> values per channel in the layout.</summary>
    private static BnTensorDesc Shape(BnLayout layout, BnDType t, long members, long c) => layout == BnLayout.NC
        ? new BnTensorDesc(layout, t, members, c)
        : new BnTensorDesc(layout, t, 2, c, 1, members / 2);

    /// <summary>The same values seen by LayerNorm: each position's C channels.</summary>
    private static BnTensorDesc Positions(BnLayout layout, BnDType t, long positions, long c) => layout == BnLayout.NC
        ? new BnTensorDesc(layout, t, positions, c)
        : new BnTensorDesc(layout, t, 1, c, 1, positions);

    private static double Huge(BnDType t) => t == BnDType.F64 ? 1.7e308 : 3.4e38;

    [Theory, MemberData(nameof(Cases))]
    public void AConstantChannelOfHugeValuesGivesBetaExactly(string isa, BnLayout layout, BnDType t)
    {
        // 1e38 in F32 broke the channels-last shift (the sum of the first 8 rows overflowed before it was halved).
        var lib = Images.ByIsa[isa];
        var d = Shape(layout, t, 8, 3);
        double[] constants = [t == BnDType.F64 ? 1e308 : 1e38, -Huge(t), Huge(t)];
        var x = new double[d.Count];
        for (int c = 0; c < 3; c++)
            Reference.ForChannel(d, c, i => x[i] = constants[c]);
        double[] beta = [0.25, -1.5, 3], gamma = [2, 0.5, -1];
        using var xt = NativeTensor.Of(t, x);
        using var y = new NativeTensor(t, x.Length);
        using var g = NativeTensor.Of(t, gamma);
        using var b = NativeTensor.Of(t, beta);
        using var mean = new NativeTensor(t, 3);
        using var invstd = new NativeTensor(t, 3);
        using var runningMean = NativeTensor.Filled(t, 3, 0);
        using var runningVar = NativeTensor.Filled(t, 3, 1);
        Bn.Ok(lib, Bn.ForwardTraining(lib, d, xt, y, g, b, null, null, 0.1, 1e-5, mean, invstd));
        AssertBeta("BN", d, y.Read(), beta);
        Assert.Equal(xt.Read()[Reference.Offset(d, 0, 1, 0)], mean[1]);
        Accuracy.Relative("save_invstd", Accuracy.Forward(t), invstd.Read(), [1 / Math.Sqrt(1e-5), 1 / Math.Sqrt(1e-5), 1 / Math.Sqrt(1e-5)]);

        using var saveR = new NativeTensor(t, 3);
        using var saveD = new NativeTensor(t, 3);
        Bn.Ok(lib, Bn.RenormForwardTraining(lib, d, xt, y, g, b, runningMean, runningVar, 0.1, 1e-5, 1, 0, mean, invstd, saveR, saveD));
        AssertBeta("BRN", d, y.Read(), beta);

        // LayerNorm over the same values: every position holds the three constants, so pick one per position instead.
        var lnDesc = Positions(layout, t, 8, 3);
        var lnX = new double[lnDesc.Count];
        for (long p = 0; p < 8; p++)
            ReferenceNormalizations.ForPosition(lnDesc, p, (_, i) => lnX[i] = constants[p % 3]);
        using var lnXt = NativeTensor.Of(t, lnX);
        using var lnY = new NativeTensor(t, lnX.Length);
        Bn.Ok(lib, Bn.LayerNormForward(lib, lnDesc, lnXt, lnY, g, b, 1e-5, null, null));
        var got = lnY.Read();
        for (long p = 0; p < 8; p++)
            ReferenceNormalizations.ForPosition(lnDesc, p, (c, i) => Assert.True(got[i] == b[(int)c], $"LN position {p} channel {c}: y = {got[i]:R}, beta = {b[(int)c]:R}"));
    }

    private static void AssertBeta(string what, in BnTensorDesc d, double[] y, double[] beta)
    {
        for (int c = 0; c < d.C; c++)
        {
            int channel = c;
            Reference.ForChannel(d, c, i => Assert.True(y[i] == (double)(float)beta[channel] || y[i] == beta[channel],
                $"{what} channel {channel}: y = {y[i]:R}, beta = {beta[channel]:R}"));
        }
    }

    /// <summary>
    /// ±a with a = 1e20 (F32) or 1e153 (F64): the squares pass the type's maximum (F32) or come near it
    /// (F64, where the float64 reference is still finite), and each element normalizes to about ±1.
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void SpreadsWhoseSquaresOverflowNormalizeToUnits(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        double a = t == BnDType.F64 ? 1e153 : 1e20;
        var d = Shape(layout, t, 4, 2);
        var x = new double[d.Count];
        var dy = new double[d.Count];
        var random = new Random(3);
        for (int c = 0; c < 2; c++)
        {
            int k = 0;
            Reference.ForChannel(d, c, i => x[i] = (k++ % 2 == 0 ? a : -a) * (1 + 0.25 * c));
        }
        for (int i = 0; i < dy.Length; i++)
            dy[i] = random.NextDouble() - 0.5;
        CheckAllOperations(lib, d, x, dy, new[] { 1.5, -0.5 }, new[] { 0.25, 1 }, eps: 1e-5);
        var lnDesc = Positions(layout, t, 2, 4);
        CheckLayerNorm(lib, lnDesc, x, dy, new[] { 1.5, -0.5, 2, 1 }, new[] { 0.25, 1, 0, -1 }, eps: 1e-5);
    }

    /// <summary>
    /// LayerNorm rows taken a group at a time (NC/NHWC rows of up to 16 vectors; the forward's groups are 16 rows, two
    /// vectors of checks): rows whose squares overflow, one in each half of the first, full group and one in the last,
    /// partial group, are finished in float64 while the rows around them keep the fast path; every row is checked
    /// against the float64 reference.
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void OverflowingRowsAmongOrdinaryRowsOfAGroup(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        double a = t == BnDType.F64 ? 1e153 : 1e20;
        const int positions = 19, c = 40;
        var d = Positions(layout, t, positions, c);
        var x = new double[d.Count];
        var dy = new double[d.Count];
        var random = new Random(5);
        for (int i = 0; i < x.Length; i++)
            (x[i], dy[i]) = (random.NextDouble() * 4 - 1, random.NextDouble() - 0.5);
        foreach (int p in new[] { 3, 12, 17 })
            for (int k = 0; k < c; k++)
                x[layout == BnLayout.NCHW ? k * positions + p : p * c + k] = (k % 2 == 0 ? a : -a) * (1 + 0.01 * k);
        var gamma = Enumerable.Range(0, c).Select(k => 1 + 0.05 * k).ToArray();
        var beta = Enumerable.Range(0, c).Select(k => 0.1 * k - 1).ToArray();
        CheckLayerNorm(lib, d, x, dy, gamma, beta, eps: 1e-5);
    }

    /// <summary>
    /// The LayerNorm backward of rows taken a group of eight at a time (the backward's groups): rows of a huge constant dy, whose Σdy·γ overflows
    /// the element type (exactly, dx = 0), in the first, full group and in the last, partial one, are finished in float64
    /// while the rows around them keep the fast path; and the dgamma/dbeta sums of the first group, where +h, +h, −h down
    /// three rows of equal x overflow in the element type, are summed again in float64 (exactly, the h terms cancel). In
    /// F64 the float64 reference would overflow as well, so there h is only large.
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void HugeGradientRowsAmongOrdinaryRowsOfAGroup(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        double h = t == BnDType.F64 ? 1e300 : 3e38;
        const int positions = 11, c = 40;
        var d = Positions(layout, t, positions, c);
        int At(int p, int k) => layout == BnLayout.NCHW ? k * positions + p : p * c + k;
        var x = new double[d.Count];
        var dy = new double[d.Count];
        var random = new Random(7);
        for (int i = 0; i < x.Length; i++)
            (x[i], dy[i]) = (random.NextDouble() * 4 - 1, random.NextDouble() - 0.5);
        foreach (var (p, sign) in new[] { (2, 1.0), (3, 1.0), (4, -1.0), (9, -1.0) })
            for (int k = 0; k < c; k++)
                (x[At(p, k)], dy[At(p, k)]) = (x[At(2, k)], sign * h);
        CheckLayerNorm(lib, d, x, dy, null, null, eps: 1e-5);
    }

    /// <summary>
    /// Channels-last BatchNorm keeps its per-channel checks eight channels at a time in float64 vectors: among 11 channels
    /// (a vector of eight and three one by one), channel 1's squares overflow F32 (statistics redone in float64), channel 4's
    /// γ/σ passes the element type's range (its map redone in float64; dy = 0 there keeps dx finite), and channel 6 is
    /// 1000 in exactly the 8 rows the one-pass shift is sampled from and near 0 in the other 39992 (several row blocks, merged), so its one-pass sums,
    /// refused, are taken again down the column; channel 7's constant dy of 1e37 overflows its gradient sums (gradient means
    /// redone in float64). All against the float64 references. In F64 those references would overflow where the element
    /// type does, so there channels 1, 4 and 7 are only large, and channel 6's one-pass error is below what the comparison
    /// sees: F32 is the case that checks the decisions.
    /// </summary>
    [Theory, MemberData(nameof(ChannelsLastCases))]
    public void ExtremeChannelsAmongOrdinaryOnesOfAVector(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        const int members = 40000, c = 11;
        var d = Shape(layout, t, members, c);
        var x = new double[d.Count];
        var dy = new double[d.Count];
        var random = new Random(13);
        for (int i = 0; i < x.Length; i++)
            (x[i], dy[i]) = (random.NextDouble() * 4 - 1, random.NextDouble() - 0.5);
        double spread = t == BnDType.F64 ? 1e150 : 1e20; // F64: the float64 reference's own squares must not overflow
        var sampled = Enumerable.Range(0, 8).Select(i => i * (members - 1) / 7).ToHashSet(); // the rows ChannelPasses.SampleShift reads
        for (int row = 0; row < members; row++)
        {
            x[row * c + 1] = (row % 2 == 0 ? spread : -spread) * (1 + 0.01 * (row % 7));
            (x[row * c + 4], dy[row * c + 4]) = (1e-10 * (random.NextDouble() - 0.5), 0);
            x[row * c + 6] = sampled.Contains(row) ? 1000 + 0.37 * (row % 5) : 0.1 * random.NextDouble();
            dy[row * c + 7] = t == BnDType.F64 ? 1e300 : 1e37;
        }
        var gamma = Enumerable.Range(0, c).Select(k => k == 4 ? (t == BnDType.F64 ? 1e300 : 1e37) : 1 + 0.1 * k).ToArray(); // σ_B ≈ √eps
        var beta = Enumerable.Range(0, c).Select(k => 0.2 * k - 1).ToArray();
        CheckAllOperations(lib, d, x, dy, gamma, beta, eps: 1e-5);
    }

    /// <summary>
    /// NCHW training passes take groups of adjacent channels together (Geometry.AdjacentChannels: 34 channels of slabs of
    /// 1,030 values are 8 groups of 4 and one of 2; 70 channels of slabs of 49 values, 8 groups of 8 and one of 6), each
    /// channel's decisions still its own: channel 1's squares overflow F32 (statistics redone in float64), channel 5's γ/σ
    /// passes the element type's range (map redone in float64), channel 6's first slab, which holds the chunk its one-pass
    /// shift comes from at every width, is about 1000 and the other two near 0 (its one pass refused and taken again),
    /// channel 7 and the last channel (in the short last group) have a constant dy that overflows their gradient sums; with
    /// frozen statistics, channel 5's γ/σ passes the range again (its dx in float64). The channels beside them, in the
    /// same groups, stay ordinary; all against the float64 references.
    /// Mutations of the grouped code (a group's sums indexed as its first channel's, a map or dx decision taken as fitting,
    /// statistics not checked) fail here; accepting channel 6's refused one pass does not: at three samples its error stays
    /// within the tolerance, so only the refused path's plumbing is exercised. The same 70 channels with slabs of 25 values
    /// in 67 samples take the short-slab path (Statistics.ShortRuns: each group's slabs of a sample one span, the samples its
    /// rows, in two chunks of at most 64) for the statistics and every gradient sum (16-bit short slabs: SixteenBitTests'
    /// problems).
    /// </summary>
    [Theory, MemberData(nameof(PlanarCases))]
    public void ExtremeChannelsAmongOrdinaryOnesOfAGroupOfSlabs(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        foreach (var (c, s, n) in new[] { (34, 1030, 3), (70, 49, 3), (70, 25, 67) })
            CheckExtremeChannelsAmongOrdinaryOnes(lib, layout, t, c, s, n);
    }

    private static void CheckExtremeChannelsAmongOrdinaryOnes(BnLibrary lib, BnLayout layout, BnDType t, int c, int s, int n)
    {
        var d = new BnTensorDesc(layout, t, n, c, 1, s);
        var x = new double[d.Count];
        var dy = new double[d.Count];
        var random = new Random(17);
        for (int i = 0; i < x.Length; i++)
            (x[i], dy[i]) = (random.NextDouble() * 4 - 1, random.NextDouble() - 0.5);
        double spread = t == BnDType.F64 ? 1e150 : 1e20, huge = t == BnDType.F64 ? 1e300 : 1e37;
        for (int sample = 0; sample < n; sample++)
            for (int k = 0; k < s; k++)
            {
                int At(int channel) => (sample * c + channel) * s + k;
                x[At(1)] = (k % 2 == 0 ? spread : -spread) * (1 + 0.01 * (k % 7));
                (x[At(5)], dy[At(5)]) = (1e-10 * (random.NextDouble() - 0.5), 0);
                x[At(6)] = sample == 0 ? 1000 + 0.37 * (k % 5) : 0.1 * random.NextDouble();
                dy[At(7)] = huge;
                dy[At(c - 1)] = huge;
            }
        var gamma = Enumerable.Range(0, c).Select(k => k == 5 ? huge : 1 + 0.1 * k).ToArray(); // σ_B ≈ √eps
        var beta = Enumerable.Range(0, c).Select(k => 0.2 * k - 1).ToArray();
        CheckAllOperations(lib, d, x, dy, gamma, beta, eps: 1e-5);

        // Frozen statistics: channel 5's γ/σ (running variance 0, so σ = √eps) passes the element type's range, its
        // small dy keeps dx finite; its dx is then taken in float64 while the rest of its group takes the fast path.
        var frozenGamma = (double[])gamma.Clone();
        frozenGamma[5] = t == BnDType.F64 ? 1e306 : 1e37;
        var frozenDy = (double[])dy.Clone();
        for (int sample = 0; sample < n; sample++)
            for (int k = 0; k < s; k++)
                frozenDy[(sample * c + 5) * s + k] = 1e-10 * (1 + k % 3);
        var runningVar = Enumerable.Range(0, c).Select(k => k == 5 ? 0.0 : 1.0).ToArray();
        CheckFrozenBackward(lib, d, x, frozenDy, frozenGamma, new double[c], runningVar, eps: 1e-5);
    }

    /// <summary>
    /// The same beyond one reduction chunk (16384 values): NCHW slabs of 20,000 values and LayerNorm rows of
    /// 17,000, where per-chunk sums of squares in the element type overflowed from spreads of 1e18 (F32).
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void SpreadsWhoseChunkSumsOverflowNormalizeToUnits(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        double a = t == BnDType.F64 ? 1e151 : 1e18;
        var d = Shape(layout, t, 40000, 1);
        var x = new double[d.Count];
        for (int i = 0; i < x.Length; i++)
            x[i] = (i % 3 == 0 ? -a : a) * (1 + i % 7 * 0.01);
        var dy = new double[d.Count];
        for (int i = 0; i < dy.Length; i++)
            dy[i] = Math.Sin(i);
        CheckAllOperations(lib, d, x, dy, null, null, eps: 1e-5);
        var lnDesc = Positions(layout, t, 1, 17000);
        CheckLayerNorm(lib, lnDesc, x.AsSpan(0, 17000).ToArray(), dy.AsSpan(0, 17000).ToArray(), null, null, eps: 1e-5);
    }

    /// <summary>Constant data with eps = 1e-300: γ/σ = γ·1e150 rounds to ∞ in F32, and 0·∞ gave NaN where y = β.</summary>
    [Theory, MemberData(nameof(Images.Names), MemberType = typeof(Images))]
    public void ARenormGradientWhoseGammaTimesRUnderflowsIsStillComputed(string isa)
    {
        // γ = 5e-324 (the smallest F64 subnormal) and r = 0.5: γ·r rounds to 0, while dx = γ·r·invstd·(dy − …), with dy
        // near 1e182, is about 1e-143. Found by the fuzzer through the split backward, which shares this code.
        var lib = Images.ByIsa[isa];
        const BnDType t = BnDType.F64;
        var desc = new BnTensorDesc(BnLayout.NC, t, 4, 1);
        double[] x = [-4.9375, 4.5625, -4.9375, -4.9375], dy = [4.5625, -8, 5.80932e181, 4.5625];
        double[] gamma = [double.Epsilon], mean = [-2.5625], invstd = [0.243095], r = [0.5], d = [0];
        using var xs = NativeTensor.Of(t, x);
        using var dys = NativeTensor.Of(t, dy);
        using var dx = new NativeTensor(t, 4);
        using var g = NativeTensor.Of(t, gamma);
        using var m = NativeTensor.Of(t, mean);
        using var i = NativeTensor.Of(t, invstd);
        using var rs = NativeTensor.Of(t, r);
        using var ds = NativeTensor.Of(t, d);
        Bn.Ok(lib, Bn.RenormBackward(lib, desc, xs, dys, dx, g, m, i, rs, ds, null, null));
        // dx is linear in γ: the reference with γ·2^600 (no underflow in it), scaled back by 2^-600 exactly.
        var expected = ReferenceNormalizations.RenormBackward(desc, x, dy, [Math.ScaleB(gamma[0], 600)], mean, invstd, r, d);
        Accuracy.Near("dx", t, Accuracy.Gradient(t), dx.Read(), Array.ConvertAll(expected.Dx, v => Math.ScaleB(v, -600)),
            Array.ConvertAll(expected.DxScale, v => Math.ScaleB(v, -600)));
        Assert.NotEqual(0, dx[2]);
    }

    [Theory, MemberData(nameof(Cases))]
    public void TinyEpsWithConstantDataGivesBetaExactly(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        var d = Shape(layout, t, 6, 3);
        double[] beta = [0.25, -1.5, 3], gamma = [2, 0.5, -1];
        using var xt = NativeTensor.Filled(t, (int)d.Count, 0.5);
        using var y = new NativeTensor(t, (int)d.Count);
        using var g = NativeTensor.Of(t, gamma);
        using var b = NativeTensor.Of(t, beta);
        using var runningMean = NativeTensor.Filled(t, 3, 0.5);
        using var runningVar = NativeTensor.Filled(t, 3, 0);
        Bn.Ok(lib, Bn.ForwardTraining(lib, d, xt, y, g, b, null, null, 0.1, 1e-300, null, null));
        AssertBeta("BN", d, y.Read(), beta);
        Bn.Ok(lib, Bn.RenormForwardTraining(lib, d, xt, y, g, b, runningMean, runningVar, 0.1, 1e-300, 1, 0, null, null, null, null));
        AssertBeta("BRN", d, y.Read(), beta);
        using var frozenMean = NativeTensor.Filled(t, 3, 0.5);
        using var frozenVar = NativeTensor.Filled(t, 3, 0);
        Bn.Ok(lib, Bn.ForwardInference(lib, d, xt, y, g, b, frozenMean, frozenVar, 1e-300));
        AssertBeta("BN inference", d, y.Read(), beta);
        var lnDesc = Positions(layout, t, 2, 3);
        Bn.Ok(lib, Bn.LayerNormForward(lib, lnDesc, xt, y, g, b, 1e-300, null, null));
        var got = y.Read();
        ReferenceNormalizations.ForPosition(lnDesc, 1, (c, i) => Assert.True(got[i] == b[(int)c], $"LN channel {c}: y = {got[i]:R}"));
    }

    /// <summary>
    /// Gradients near the top of the range: a constant dy of 1e38 (F32) whose mean cancels it (dx = 0, not
    /// ∞ − ∞), and dy·(x − mean) products that pass the maximum while dgamma = Σdy·x̂ does not.
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void HugeGradientsCancelInsteadOfOverflowing(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        var d = Shape(layout, t, 8, 2);
        var random = new Random(11);
        var x = new double[d.Count];
        var dy = new double[d.Count];
        double huge = t == BnDType.F64 ? 1e307 : 1e37;
        for (int i = 0; i < x.Length; i++)
            x[i] = random.NextDouble() * 4 - 2;
        Reference.ForChannel(d, 0, i => dy[i] = huge);
        Reference.ForChannel(d, 1, i => dy[i] = huge * (random.NextDouble() - 0.5));
        CheckAllOperations(lib, d, x, dy, new[] { 3.0, -2 }, null, eps: 1e-5);

        // Frozen statistics: x − running_mean ≈ 1e20 and dy ≈ 1e20 multiply past FLT_MAX; running σ = 1e19 brings dgamma back.
        double big = t == BnDType.F64 ? 1e155 : 1e20;
        for (int i = 0; i < x.Length; i++)
            (x[i], dy[i]) = (big * (random.NextDouble() - 0.5), big * (random.NextDouble() - 0.5));
        double sigma = t == BnDType.F64 ? 1e154 : 1e19;
        CheckFrozenBackward(lib, d, x, dy, new[] { 1.0, 1.0 }, new[] { 0.0, 0.0 }, new[] { sigma * sigma, sigma * sigma }, eps: 1e-5);
    }

    /// <summary>BN and BRN forward training (and the backwards from the saved statistics) against the float64 references.</summary>
    private static void CheckAllOperations(BnLibrary lib, BnTensorDesc d, double[] x, double[] dy, double[]? gamma, double[]? beta, double eps)
    {
        var t = (BnDType)d.DType;
        int c = (int)d.C;
        using var xt = NativeTensor.Of(t, x);
        using var dyt = NativeTensor.Of(t, dy);
        x = xt.Read();
        dy = dyt.Read();
        using var g = gamma == null ? null : NativeTensor.Of(t, gamma);
        using var b = beta == null ? null : NativeTensor.Of(t, beta);
        gamma = g?.Read();
        beta = b?.Read();
        using var y = new NativeTensor(t, x.Length);
        using var mean = new NativeTensor(t, c);
        using var invstd = new NativeTensor(t, c);
        double tol = Accuracy.Forward(t), gradientTol = Accuracy.Gradient(t);

        var expected = Reference.ForwardTraining(d, x, gamma, beta, new double[c], new double[c], 0.1, eps);
        Bn.Ok(lib, Bn.ForwardTraining(lib, d, xt, y, g, b, null, null, 0.1, eps, mean, invstd));
        Accuracy.Near("BN y", t, tol, y.Read(), expected.Y, expected.YScale);
        Accuracy.Relative("BN save_invstd", tol, invstd.Read(), expected.Invstd);

        using var dx = new NativeTensor(t, x.Length);
        using var dgamma = new NativeTensor(t, c);
        using var dbeta = new NativeTensor(t, c);
        var gradient = Reference.Backward(d, x, dy, gamma, mean.Read(), invstd.Read());
        Bn.Ok(lib, Bn.Backward(lib, d, xt, dyt, dx, g, mean, invstd, dgamma, dbeta));
        Accuracy.Near("BN dx", t, gradientTol, dx.Read(), gradient.Dx, gradient.DxScale);
        Accuracy.Near("BN dgamma", t, gradientTol, dgamma.Read(), gradient.Dgamma, gradient.DgammaScale);
        AssertNearOrOverflow("BN dbeta", t, gradientTol, dbeta.Read(), gradient.Dbeta, gradient.DbetaScale);

        var runningMean = new double[c];
        var runningVar = new double[c];
        Array.Fill(runningVar, 1);
        using var rm = NativeTensor.Of(t, runningMean);
        using var rv = NativeTensor.Of(t, runningVar);
        using var saveR = new NativeTensor(t, c);
        using var saveD = new NativeTensor(t, c);
        var renorm = ReferenceNormalizations.RenormForward(d, x, gamma, beta, runningMean, runningVar, 0.1, eps, 3, 5);
        Bn.Ok(lib, Bn.RenormForwardTraining(lib, d, xt, y, g, b, rm, rv, 0.1, eps, 3, 5, mean, invstd, saveR, saveD));
        Accuracy.Near("BRN y", t, tol, y.Read(), renorm.Y, renorm.YScale);
        var renormGradient = ReferenceNormalizations.RenormBackward(d, x, dy, gamma, mean.Read(), invstd.Read(), saveR.Read(), saveD.Read());
        Bn.Ok(lib, Bn.RenormBackward(lib, d, xt, dyt, dx, g, mean, invstd, saveR, saveD, dgamma, dbeta));
        Accuracy.Near("BRN dx", t, gradientTol, dx.Read(), renormGradient.Dx, renormGradient.DxScale);
    }

    private static void CheckLayerNorm(BnLibrary lib, BnTensorDesc d, double[] x, double[] dy, double[]? gamma, double[]? beta, double eps)
    {
        var t = (BnDType)d.DType;
        long positions = ReferenceNormalizations.Positions(d);
        using var xt = NativeTensor.Of(t, x);
        using var dyt = NativeTensor.Of(t, dy);
        x = xt.Read();
        dy = dyt.Read();
        using var g = gamma == null ? null : NativeTensor.Of(t, gamma);
        using var b = beta == null ? null : NativeTensor.Of(t, beta);
        using var y = new NativeTensor(t, x.Length);
        using var mean = new NativeTensor(t, (int)positions);
        using var invstd = new NativeTensor(t, (int)positions);
        var expected = ReferenceNormalizations.LayerNormForward(d, x, g?.Read(), b?.Read(), eps);
        Bn.Ok(lib, Bn.LayerNormForward(lib, d, xt, y, g, b, eps, mean, invstd));
        Accuracy.Near("LN y", t, Accuracy.Forward(t), y.Read(), expected.Y, expected.YScale);
        Accuracy.Relative("LN save_invstd", Accuracy.Forward(t), invstd.Read(), expected.Invstd);
        using var dx = new NativeTensor(t, x.Length);
        using var dgamma = new NativeTensor(t, (int)d.C);
        using var dbeta = new NativeTensor(t, (int)d.C);
        var gradient = ReferenceNormalizations.LayerNormBackward(d, x, dy, g?.Read(), mean.Read(), invstd.Read());
        Bn.Ok(lib, Bn.LayerNormBackward(lib, d, xt, dyt, dx, g, mean, invstd, dgamma, dbeta));
        Accuracy.Near("LN dx", t, Accuracy.Gradient(t), dx.Read(), gradient.Dx, gradient.DxScale);
        Accuracy.Near("LN dgamma", t, Accuracy.Gradient(t), dgamma.Read(), gradient.Dgamma, gradient.DgammaScale);
        Accuracy.Near("LN dbeta", t, Accuracy.Gradient(t), dbeta.Read(), gradient.Dbeta, gradient.DbetaScale);
    }

    private static void CheckFrozenBackward(BnLibrary lib, BnTensorDesc d, double[] x, double[] dy, double[] gamma,
        double[] runningMean, double[] runningVar, double eps)
    {
        var t = (BnDType)d.DType;
        int c = (int)d.C;
        using var xt = NativeTensor.Of(t, x);
        using var dyt = NativeTensor.Of(t, dy);
        using var g = NativeTensor.Of(t, gamma);
        using var rm = NativeTensor.Of(t, runningMean);
        using var rv = NativeTensor.Of(t, runningVar);
        using var dx = new NativeTensor(t, x.Length);
        using var dgamma = new NativeTensor(t, c);
        using var dbeta = new NativeTensor(t, c);
        var expected = Reference.BackwardInference(d, xt.Read(), dyt.Read(), g.Read(), rm.Read(), rv.Read(), eps);
        Bn.Ok(lib, Bn.BackwardInference(lib, d, xt, dyt, dx, g, rm, rv, eps, dgamma, dbeta));
        double tol = Accuracy.Gradient(t);
        Accuracy.Near("frozen dx", t, tol, dx.Read(), expected.Dx, expected.DxScale);
        AssertNearOrOverflow("frozen dgamma", t, tol, dgamma.Read(), expected.Dgamma, expected.DgammaScale);
        AssertNearOrOverflow("frozen dbeta", t, tol, dbeta.Read(), expected.Dbeta, expected.DbetaScale);
    }

    /// <summary>SPEC §4 where the exact result is representable; beyond the type's range, ±∞ of the right sign.</summary>
    private static void AssertNearOrOverflow(string what, BnDType t, double tol, double[] got, double[] expected, double[] scale)
    {
        double max = t == BnDType.F64 ? double.MaxValue : float.MaxValue;
        for (int i = 0; i < expected.Length; i++)
        {
            if (Math.Abs(expected[i]) > max)
                Assert.True(double.IsInfinity(got[i]) && Math.Sign(got[i]) == Math.Sign(expected[i]), $"{what}[{i}] = {got[i]:R}, expected {expected[i]:R} (beyond the range)");
            else
                Accuracy.Near($"{what}[{i}]", t, tol, [got[i]], [expected[i]], [scale[i]]);
        }
    }
}
