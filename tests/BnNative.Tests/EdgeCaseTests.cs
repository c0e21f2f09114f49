using System;
using BnNative.Interop;
using Xunit;

namespace BnNative.Tests;

/// <summary>SPEC §3 and §4 corner cases, on every image.</summary>
public class EdgeCaseTests
{
    public static TheoryData<string, BnLayout, BnDType> Cases()
    {
        var data = new TheoryData<string, BnLayout, BnDType>();
        foreach (var isa in Images.ByIsa.Keys)
            foreach (var layout in new[] { BnLayout.NC, BnLayout.NCHW, BnLayout.NHWC })
                foreach (var t in new[] { BnDType.F32, BnDType.F64 })
                    data.Add(isa, layout, t);
        return data;
    }

    private static BnTensorDesc Shape(BnLayout layout, BnDType t) => layout == BnLayout.NC
        ? new BnTensorDesc(layout, t, 301, 19)
        : new BnTensorDesc(layout, t, 3, 19, 7, 13);

    [Theory, MemberData(nameof(Cases))]
    public void AConstantChannelGivesBetaExactly(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        var d = Shape(layout, t);
        var p = Problem.Create(t, layout, d.N, d.C, d.H, d.W, seed: 5, affine: true);
        var x = (double[])p.X.Clone();
        double[] constants = [0.1, -3.7, 1e4 + 0.3, 0, 1e-3];
        for (int c = 0; c < constants.Length; c++)
            Reference.ForChannel(d, c, i => x[i] = constants[c]);
        using var xt = NativeTensor.Of(t, x);
        using var y = new NativeTensor(t, p.Count);
        using var gamma = NativeTensor.Of(t, p.Gamma!);
        using var beta = NativeTensor.Of(t, p.Beta!);
        Bn.Ok(lib, Bn.ForwardTraining(lib, d, xt, y, gamma, beta, null, null, 0.1, 1e-5, null, null));
        var got = y.Read();
        for (int c = 0; c < constants.Length; c++)
            Reference.ForChannel(d, c, i => Assert.True(got[i] == beta[c], $"channel {c} (x = {constants[c]}): y = {got[i]:R}, beta = {beta[c]:R}"));
    }

    [Theory, MemberData(nameof(Cases))]
    public void LargeOffsetsKeepTheVarianceAccurate(string isa, BnLayout layout, BnDType t)
    {
        // SPEC §4: data with mean/std = 1e4; a naive Σx² − (Σx)²/M loses every digit of the variance here.
        var lib = Images.ByIsa[isa];
        var d = Shape(layout, t);
        var random = new Random(7);
        var x = new double[d.Count];
        for (int c = 0; c < d.C; c++)
        {
            double center = (c + 1) * 1e4, std = c + 1;
            Reference.ForChannel(d, c, i => x[i] = t == BnDType.F32 ? (float)(center + std * (2 * random.NextDouble() - 1)) : center + std * (2 * random.NextDouble() - 1));
        }
        using var xt = NativeTensor.Of(t, x);
        using var y = new NativeTensor(t, x.Length);
        using var mean = new NativeTensor(t, (int)d.C);
        using var invstd = new NativeTensor(t, (int)d.C);
        Bn.Ok(lib, Bn.ForwardTraining(lib, d, xt, y, null, null, null, null, 0.1, 1e-5, mean, invstd));
        var expected = Reference.ForwardTraining(d, x, null, null, new double[d.C], new double[d.C], 0.1, 1e-5);
        Accuracy.Relative("save_invstd", t == BnDType.F64 ? 1e-12 : 1e-4, invstd.Read(), expected.Invstd);
    }

    /// <summary>
    /// The one-pass statistics (BN channels-last: shifted by the mean of rows sampled across the tensor, the first
    /// among them; LN rows: by the mean of the row's first values) redo a channel or row when the shift lies far
    /// from the mean: first values a thousand standard deviations away must not cost accuracy.
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void FarOffFirstValuesKeepTheStatisticsAccurate(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        var d = Shape(layout, t);
        var p = Problem.Create(t, layout, d.N, d.C, d.H, d.W, seed: 17, affine: true);
        var x = (double[])p.X.Clone();
        long rows = d.N * d.H * d.W;
        for (long r = 0; r < Math.Min(8, rows); r++)
            for (long c = 0; c < 3; c++)
                x[Reference.Offset(d, r / (d.H * d.W), c, r % (d.H * d.W))] = 1000 + r;
        for (long q = 0; q < rows; q += 5)
            ReferenceNormalizations.ForPosition(d, q, (c, i) => { if (c == 0) x[i] = -3000; });
        using var xt = NativeTensor.Of(t, x);
        using var y = new NativeTensor(t, x.Length);
        using var mean = new NativeTensor(t, (int)d.C);
        using var invstd = new NativeTensor(t, (int)d.C);
        Bn.Ok(lib, Bn.ForwardTraining(lib, d, xt, y, null, null, null, null, 0.1, 1e-5, mean, invstd));
        var expected = Reference.ForwardTraining(d, x, null, null, new double[d.C], new double[d.C], 0.1, 1e-5);
        double tol = Accuracy.Forward(t);
        Accuracy.Relative("BN save_invstd", tol, invstd.Read(), expected.Invstd);
        Accuracy.Near("BN y", t, tol, y.Read(), expected.Y, expected.YScale);

        using var lnMean = new NativeTensor(t, (int)rows);
        using var lnInvstd = new NativeTensor(t, (int)rows);
        Bn.Ok(lib, Bn.LayerNormForward(lib, d, xt, y, null, null, 1e-5, lnMean, lnInvstd));
        var ln = ReferenceNormalizations.LayerNormForward(d, x, null, null, 1e-5);
        Accuracy.Relative("LN save_invstd", tol, lnInvstd.Read(), ln.Invstd);
        Accuracy.Near("LN y", t, tol, y.Read(), ln.Y, ln.YScale);
    }

    public static TheoryData<string, BnLayout, BnDType, int> ChannelsLastFarOff()
    {
        var data = new TheoryData<string, BnLayout, BnDType, int>();
        foreach (var isa in Images.ByIsa.Keys)
            foreach (var layout in new[] { BnLayout.NC, BnLayout.NHWC })
                foreach (var t in new[] { BnDType.F32, BnDType.F64 })
                    foreach (int far in new[] { 3, 80 })
                        data.Add(isa, layout, t, far);
        return data;
    }

    /// <summary>
    /// Channels-last BatchNorm takes again, each down its column, the few channels whose shift missed (3 of 80
    /// here), and the whole tile in one more pass when many did (80 of 80): both must keep SPEC §4.
    /// </summary>
    [Theory, MemberData(nameof(ChannelsLastFarOff))]
    public void ChannelsWhoseShiftMissedAreTakenAgain(string isa, BnLayout layout, BnDType t, int far)
    {
        var lib = Images.ByIsa[isa];
        var d = layout == BnLayout.NC ? new BnTensorDesc(layout, t, 300, 80) : new BnTensorDesc(layout, t, 4, 80, 5, 15);
        var p = Problem.Create(t, layout, d.N, d.C, d.H, d.W, seed: 23, affine: true);
        var x = (double[])p.X.Clone();
        for (long c = 0; c < far; c++)
            x[Reference.Offset(d, 0, c, 0)] = 5000; // the first row is always one of the samples of the shift
        using var xt = NativeTensor.Of(t, x);
        using var y = new NativeTensor(t, x.Length);
        using var mean = new NativeTensor(t, (int)d.C);
        using var invstd = new NativeTensor(t, (int)d.C);
        Bn.Ok(lib, Bn.ForwardTraining(lib, d, xt, y, null, null, null, null, 0.1, 1e-5, mean, invstd));
        var expected = Reference.ForwardTraining(d, x, null, null, new double[d.C], new double[d.C], 0.1, 1e-5);
        double tol = Accuracy.Forward(t);
        Accuracy.Relative("save_invstd", tol, invstd.Read(), expected.Invstd);
        Accuracy.Near("y", t, tol, y.Read(), expected.Y, expected.YScale);
    }

    [Theory, MemberData(nameof(Cases))]
    public void NanInOneChannelStaysInThatChannel(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        var d = Shape(layout, t);
        var p = Problem.Create(t, layout, d.N, d.C, d.H, d.W, seed: 9, affine: true);
        var x = (double[])p.X.Clone();
        const int poisoned = 4;
        x[Reference.Offset(d, d.N - 1, poisoned, d.H * d.W - 1)] = double.NaN;
        using var xt = NativeTensor.Of(t, x);
        using var y = new NativeTensor(t, p.Count);
        using var dy = NativeTensor.Of(t, p.Dy);
        using var dx = new NativeTensor(t, p.Count);
        using var mean = new NativeTensor(t, p.Channels);
        using var invstd = new NativeTensor(t, p.Channels);
        using var dgamma = new NativeTensor(t, p.Channels);
        using var dbeta = new NativeTensor(t, p.Channels);
        Bn.Ok(lib, Bn.ForwardTraining(lib, d, xt, y, null, null, null, null, 0.1, 1e-5, mean, invstd));
        Bn.Ok(lib, Bn.Backward(lib, d, xt, dy, dx, null, mean, invstd, dgamma, dbeta));
        var expected = Reference.ForwardTraining(d, p.X, null, null, new double[d.C], new double[d.C], 0.1, 1e-5);
        var gotY = y.Read();
        var gotDx = dx.Read();
        for (int c = 0; c < d.C; c++)
            Reference.ForChannel(d, c, i =>
            {
                if (c == poisoned)
                    Assert.True(double.IsNaN(gotY[i]) && double.IsNaN(gotDx[i]), $"channel {c}: NaN must propagate");
                else
                    Assert.True(Math.Abs(gotY[i] - expected.Y[i]) <= 1e-4 * (1 + Math.Abs(expected.Y[i])) && !double.IsNaN(gotDx[i]), $"channel {c} was affected");
            });
        Assert.True(double.IsNaN(mean[poisoned]) && !double.IsNaN(mean[0]) && !double.IsNaN(dgamma[0]));
    }

    [Theory, MemberData(nameof(Cases))]
    public void InPlaceGivesTheSameResults(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        var d = Shape(layout, t);
        var p = Problem.Create(t, layout, d.N, d.C, d.H, d.W, seed: 11, affine: true);
        using var x = NativeTensor.Of(t, p.X);
        using var y = new NativeTensor(t, p.Count);
        using var dy = NativeTensor.Of(t, p.Dy);
        using var dx = new NativeTensor(t, p.Count);
        using var gamma = NativeTensor.Of(t, p.Gamma!);
        using var beta = NativeTensor.Of(t, p.Beta!);
        using var runningMean = NativeTensor.Of(t, p.RunningMean);
        using var runningVar = NativeTensor.Of(t, p.RunningVar);
        using var mean = new NativeTensor(t, p.Channels);
        using var invstd = new NativeTensor(t, p.Channels);
        using var inPlace = NativeTensor.Of(t, p.X);
        using var inPlaceDy = NativeTensor.Of(t, p.Dy);

        Bn.Ok(lib, Bn.ForwardTraining(lib, d, x, y, gamma, beta, null, null, 0.1, p.Eps, mean, invstd));
        Bn.Ok(lib, Bn.ForwardTraining(lib, d, inPlace, inPlace, gamma, beta, null, null, 0.1, p.Eps, null, null));
        Assert.Equal(y.Bytes(), inPlace.Bytes());

        Bn.Ok(lib, Bn.Backward(lib, d, x, dy, dx, gamma, mean, invstd, null, null));
        Bn.Ok(lib, Bn.Backward(lib, d, x, inPlaceDy, inPlaceDy, gamma, mean, invstd, null, null));
        Assert.Equal(dx.Bytes(), inPlaceDy.Bytes());

        inPlace.Write(p.X);
        Bn.Ok(lib, Bn.ForwardInference(lib, d, x, y, gamma, beta, runningMean, runningVar, p.Eps));
        Bn.Ok(lib, Bn.ForwardInference(lib, d, inPlace, inPlace, gamma, beta, runningMean, runningVar, p.Eps));
        Assert.Equal(y.Bytes(), inPlace.Bytes());

        inPlaceDy.Write(p.Dy);
        Bn.Ok(lib, Bn.BackwardInference(lib, d, x, dy, dx, gamma, runningMean, runningVar, p.Eps, null, null));
        Bn.Ok(lib, Bn.BackwardInference(lib, d, x, inPlaceDy, inPlaceDy, gamma, runningMean, runningVar, p.Eps, null, null));
        Assert.Equal(dx.Bytes(), inPlaceDy.Bytes());
    }

    [Fact]
    public void OptionalOutputsMayBeNullAndNullAffineIsTheIdentity()
    {
        foreach (var (isa, lib) in Images.ByIsa)
        {
            var t = BnDType.F64;
            var d = new BnTensorDesc(BnLayout.NHWC, t, 2, 5, 3, 3);
            var p = Problem.Create(t, BnLayout.NHWC, 2, 5, 3, 3, seed: 13, affine: false);
            using var x = NativeTensor.Of(t, p.X);
            using var dy = NativeTensor.Of(t, p.Dy);
            using var y1 = new NativeTensor(t, p.Count);
            using var y2 = new NativeTensor(t, p.Count);
            using var ones = NativeTensor.Filled(t, 5, 1);
            using var zeros = NativeTensor.Filled(t, 5, 0);
            using var mean = new NativeTensor(t, 5);
            using var invstd = new NativeTensor(t, 5);
            Bn.Ok(lib, Bn.ForwardTraining(lib, d, x, y1, null, null, null, null, 0.1, 1e-5, mean, invstd));
            Bn.Ok(lib, Bn.ForwardTraining(lib, d, x, y2, ones, zeros, null, null, 0.1, 1e-5, null, null));
            Assert.True(y1.Bytes().AsSpan().SequenceEqual(y2.Bytes()), isa);
            using var dgamma = new NativeTensor(t, 5);
            Bn.Ok(lib, Bn.Backward(lib, d, x, dy, null, null, mean, invstd, dgamma, null));
            var expected = Reference.Backward(d, p.X, p.Dy, null, mean.Read(), invstd.Read());
            Accuracy.Near("dgamma alone", t, 1e-10, dgamma.Read(), expected.Dgamma, expected.DgammaScale);
        }
    }
}
