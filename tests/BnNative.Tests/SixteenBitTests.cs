using System;
using BnNative.Interop;
using CsCheck;
using Xunit;

namespace BnNative.Tests;

/// <summary>
/// F16 and BF16 tensors (parameters and statistics in float, SPEC §1) for all eight operations on every image, against
/// the float64 references on the same rounded inputs, judged by SPEC §4's F16/BF16 row: tensor outputs (y, dx) within
/// 2.5 ulps of the format plus the F32 rule; float outputs (statistics, dgamma, dbeta) by the F32 rule.
/// </summary>
public unsafe class SixteenBitTests
{
    private const int Iterations = 25;

    public static TheoryData<string, BnDType> Cases()
    {
        var data = new TheoryData<string, BnDType>();
        foreach (var isa in Images.ByIsa.Keys)
            foreach (var t in new[] { BnDType.F16, BnDType.BF16 })
                data.Add(isa, t);
        return data;
    }

    /// <summary>
    /// The random shapes of the F32 suites, shapes whose rows or slabs run through the unrolled vector loops and their
    /// tails, NCHW slabs long enough (4 KB of 16-bit values) for BatchNorm's groups of adjacent channels (Geometry.AdjacentChannels),
    /// and many short ones (Problem.ManyShortSlabs).
    /// </summary>
    private static Gen<Problem> Problems(BnDType dtype) => Gen.OneOf(
        Problem.Gen(dtype),
        from layout in Gen.Int[0, 2]
        from c in Gen.Int[60, 140]
        from w in Gen.Int[60, 140]
        from seed in Gen.Int
        select Problem.Create(dtype, (BnLayout)layout, 2, c, 1, w, seed, affine: true),
        from c in Gen.Int[16, 37]
        from w in Gen.Int[2048, 2100]
        from seed in Gen.Int
        select Problem.Create(dtype, BnLayout.NCHW, 2, c, 1, w, seed, affine: true),
        Problem.ManyShortSlabs(dtype));

    private static NativeTensor Parameters(BnDType dtype, double[] values) => NativeTensor.Of(NativeTensor.ParameterType(dtype), values);

    private static NativeTensor? Optional(BnDType dtype, double[]? values) => values == null ? null : Parameters(dtype, values);

    private static NativeTensor Statistics(BnDType dtype, int count) => new(NativeTensor.ParameterType(dtype), count);

    /// <summary>A backward's outputs against the reference: dx by the 16-bit rule, dgamma and dbeta (float) by F32's.</summary>
    private static void GradientsNear(string what, BnDType dtype, NativeTensor dx, NativeTensor dgamma, NativeTensor dbeta, Reference.Gradient expected)
    {
        double tol = Accuracy.Gradient(BnDType.F32);
        Sixteen.Near($"dx{what}", dtype, tol, dx.Read(), expected.Dx, expected.DxScale);
        Accuracy.Near($"dgamma{what}", BnDType.F32, tol, dgamma.Read(), expected.Dgamma, expected.DgammaScale);
        Accuracy.Near($"dbeta{what}", BnDType.F32, tol, dbeta.Read(), expected.Dbeta, expected.DbetaScale);
    }

    [Theory, MemberData(nameof(Cases))]
    public void BatchNormForwardTrainingAndInference(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        Problems(dtype).Sample(p =>
        {
            var expected = Reference.ForwardTraining(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps);
            using var x = NativeTensor.Of(dtype, p.X);
            using var y = new NativeTensor(dtype, p.Count);
            using var gamma = Optional(dtype, p.Gamma);
            using var beta = Optional(dtype, p.Beta);
            using var runningMean = Parameters(dtype, p.RunningMean);
            using var runningVar = Parameters(dtype, p.RunningVar);
            using var mean = Statistics(dtype, p.Channels);
            using var invstd = Statistics(dtype, p.Channels);
            Bn.Ok(lib, Bn.ForwardTraining(lib, p.Desc, x, y, gamma, beta, runningMean, runningVar, p.Momentum, p.Eps, mean, invstd));
            double tol = Accuracy.Forward(BnDType.F32);
            Sixteen.Near("y", dtype, tol, y.Read(), expected.Y, expected.YScale);
            Accuracy.Near("save_mean", BnDType.F32, tol, mean.Read(), expected.Mean, expected.MeanScale);
            Accuracy.Relative("save_invstd", tol, invstd.Read(), expected.Invstd);
            Accuracy.Near("running_mean", BnDType.F32, tol, runningMean.Read(), expected.RunningMean, expected.RunningMeanScale);
            Accuracy.Relative("running_var", tol, runningVar.Read(), expected.RunningVar);

            // Inference with the statistics just updated, in place.
            var (inferred, scale) = Reference.ForwardInference(p.Desc, p.X, p.Gamma, p.Beta, runningMean.Read(), runningVar.Read(), p.Eps);
            x.Write(p.X);
            Bn.Ok(lib, Bn.ForwardInference(lib, p.Desc, x, x, gamma, beta, runningMean, runningVar, p.Eps));
            Sixteen.Near("y (inference, in place)", dtype, tol, x.Read(), inferred, scale);
        }, iter: Iterations);
    }

    [Theory, MemberData(nameof(Cases))]
    public void BatchNormBackwards(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        Problems(dtype).Sample(p =>
        {
            var (m, v) = Reference.Statistics(p.Desc, p.X);
            using var mean = Parameters(dtype, m);
            using var invstd = Parameters(dtype, Array.ConvertAll(v, a => 1 / Math.Sqrt(a + p.Eps)));
            var expected = Reference.Backward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
            using var x = NativeTensor.Of(dtype, p.X);
            using var dy = NativeTensor.Of(dtype, p.Dy);
            using var dx = new NativeTensor(dtype, p.Count);
            using var gamma = Optional(dtype, p.Gamma);
            using var dgamma = Statistics(dtype, p.Channels);
            using var dbeta = Statistics(dtype, p.Channels);
            Bn.Ok(lib, Bn.Backward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, dgamma, dbeta));
            GradientsNear("", dtype, dx, dgamma, dbeta, expected);

            var frozen = Reference.BackwardInference(p.Desc, p.X, p.Dy, p.Gamma, p.RunningMean, p.RunningVar, p.Eps);
            using var runningMean = Parameters(dtype, p.RunningMean);
            using var runningVar = Parameters(dtype, p.RunningVar);
            Bn.Ok(lib, Bn.BackwardInference(lib, p.Desc, x, dy, dy, gamma, runningMean, runningVar, p.Eps, dgamma, dbeta));
            GradientsNear(" (frozen, in place)", dtype, dy, dgamma, dbeta, frozen);
        }, iter: Iterations);
    }

    [Theory, MemberData(nameof(Cases))]
    public void BatchRenormalization(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        Problems(dtype).Sample(p =>
        {
            const double rmax = 1.5, dmax = 0.5;
            var expected = ReferenceNormalizations.RenormForward(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps, rmax, dmax);
            using var x = NativeTensor.Of(dtype, p.X);
            using var y = new NativeTensor(dtype, p.Count);
            using var gamma = Optional(dtype, p.Gamma);
            using var beta = Optional(dtype, p.Beta);
            using var runningMean = Parameters(dtype, p.RunningMean);
            using var runningVar = Parameters(dtype, p.RunningVar);
            using var mean = Statistics(dtype, p.Channels);
            using var invstd = Statistics(dtype, p.Channels);
            using var r = Statistics(dtype, p.Channels);
            using var d = Statistics(dtype, p.Channels);
            Bn.Ok(lib, Bn.RenormForwardTraining(lib, p.Desc, x, y, gamma, beta, runningMean, runningVar, p.Momentum, p.Eps, rmax, dmax, mean, invstd, r, d));
            double tol = Accuracy.Forward(BnDType.F32);
            Sixteen.Near("y", dtype, tol, y.Read(), expected.Y, expected.YScale);
            Accuracy.Relative("save_invstd", tol, invstd.Read(), expected.Invstd);
            Accuracy.Near("save_r", BnDType.F32, tol, r.Read(), expected.R);
            Accuracy.Near("save_d", BnDType.F32, tol, d.Read(), expected.D);
            Accuracy.Relative("running_var", tol, runningVar.Read(), expected.RunningVar);

            var gradient = ReferenceNormalizations.RenormBackward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read(), r.Read(), d.Read());
            using var dy = NativeTensor.Of(dtype, p.Dy);
            using var dx = new NativeTensor(dtype, p.Count);
            using var dgamma = Statistics(dtype, p.Channels);
            using var dbeta = Statistics(dtype, p.Channels);
            Bn.Ok(lib, Bn.RenormBackward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, r, d, dgamma, dbeta));
            GradientsNear("", dtype, dx, dgamma, dbeta, gradient);
        }, iter: Iterations);
    }

    [Theory, MemberData(nameof(Cases))]
    public void LayerNormalization(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        Problems(dtype).Sample(p =>
        {
            long positions = ReferenceNormalizations.Positions(p.Desc);
            var expected = ReferenceNormalizations.LayerNormForward(p.Desc, p.X, p.Gamma, p.Beta, p.Eps);
            using var x = NativeTensor.Of(dtype, p.X);
            using var y = new NativeTensor(dtype, p.Count);
            using var gamma = Optional(dtype, p.Gamma);
            using var beta = Optional(dtype, p.Beta);
            using var mean = Statistics(dtype, (int)positions);
            using var invstd = Statistics(dtype, (int)positions);
            Bn.Ok(lib, Bn.LayerNormForward(lib, p.Desc, x, y, gamma, beta, p.Eps, mean, invstd));
            double tol = Accuracy.Forward(BnDType.F32);
            Sixteen.Near("y", dtype, tol, y.Read(), expected.Y, expected.YScale);
            Accuracy.Relative("save_invstd", tol, invstd.Read(), expected.Invstd);

            var gradient = ReferenceNormalizations.LayerNormBackward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
            using var dy = NativeTensor.Of(dtype, p.Dy);
            using var dgamma = Statistics(dtype, p.Channels);
            using var dbeta = Statistics(dtype, p.Channels);
            Bn.Ok(lib, Bn.LayerNormBackward(lib, p.Desc, x, dy, dy, gamma, mean, invstd, dgamma, dbeta));
            GradientsNear(" (in place)", dtype, dy, dgamma, dbeta, gradient);
        }, iter: Iterations);
    }

    /// <summary>
    /// Outputs of 8 MiB or more (Geometry.StreamingBytes), which the AVX-512 and AVX2 images write with non-temporal
    /// stores of half vectors (32 and 16 bytes): NCHW slabs of 701,000 values, whose starts fall 16 bytes off a 32-byte
    /// boundary every other slab (so the scalar head runs), channels-last rows of 64 channels (one unrolled block, held
    /// in registers) and of 208 (whole vectors, streamed one row at a time), and LayerNorm rows of 1,901 values, of 96 and
    /// 128 (narrow rows mapped a group at a time) and NCHW tiles of 4,096 positions (every channel's row of a tile its own
    /// run, 66,000 bytes after the previous), forward, backward and in-place inference, against the references.
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void StreamedOutputs(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        double forward = Accuracy.Forward(BnDType.F32), gradient = Accuracy.Gradient(BnDType.F32);
        foreach (var p in new[] { Problem.Create(dtype, BnLayout.NCHW, 2, 3, 701, 1000, seed: 71, affine: true),
                                  Problem.Create(dtype, BnLayout.NHWC, 18, 64, 60, 70, seed: 72, affine: true),
                                  Problem.Create(dtype, BnLayout.NHWC, 18, 208, 60, 19, seed: 75, affine: true) })
        {
            string what = $"{p}";
            var expected = Reference.ForwardTraining(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps);
            using var x = NativeTensor.Of(dtype, p.X);
            using var y = new NativeTensor(dtype, p.Count);
            using var gamma = Parameters(dtype, p.Gamma!);
            using var beta = Parameters(dtype, p.Beta!);
            using var mean = Statistics(dtype, p.Channels);
            using var invstd = Statistics(dtype, p.Channels);
            Bn.Ok(lib, Bn.ForwardTraining(lib, p.Desc, x, y, gamma, beta, null, null, p.Momentum, p.Eps, mean, invstd));
            Sixteen.Near($"{what} y", dtype, forward, y.Read(), expected.Y, expected.YScale);

            using var dy = NativeTensor.Of(dtype, p.Dy);
            Bn.Ok(lib, Bn.Backward(lib, p.Desc, x, dy, y, gamma, mean, invstd, null, null));
            var backward = Reference.Backward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
            Sixteen.Near($"{what} dx", dtype, gradient, y.Read(), backward.Dx, backward.DxScale);

            using var runningMean = Parameters(dtype, p.RunningMean);
            using var runningVar = Parameters(dtype, p.RunningVar);
            Bn.Ok(lib, Bn.ForwardInference(lib, p.Desc, x, x, gamma, beta, runningMean, runningVar, p.Eps));
            var (inferred, scale) = Reference.ForwardInference(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Eps);
            Sixteen.Near($"{what} y (inference, in place)", dtype, forward, x.Read(), inferred, scale);
        }

        foreach (var rows in new[] { Problem.Create(dtype, BnLayout.NC, 2210, 1901, 1, 1, seed: 73, affine: true),
                                     Problem.Create(dtype, BnLayout.NCHW, 2, 64, 1, 33000, seed: 74, affine: true),
                                     // narrow rows of 6 and 8 whole vectors (AVX-512), γ and β held in registers, streamed by group
                                     Problem.Create(dtype, BnLayout.NHWC, 1, 96, 216, 216, seed: 76, affine: true),
                                     Problem.Create(dtype, BnLayout.NHWC, 1, 128, 187, 187, seed: 77, affine: true) })
            CheckStreamedLayerNorm(lib, dtype, rows);
        // The same rows in cache, 1 to 9 vectors of 16 (up to 8 held in registers), in groups of 16 rows and a partial one.
        for (int vectors = 1; vectors <= 9; vectors++)
            CheckStreamedLayerNorm(lib, dtype, Problem.Create(dtype, BnLayout.NC, 37, 16 * vectors, 1, 1, seed: 90 + vectors, affine: true));
    }

    /// <summary>LayerNorm forward and backward (dx written over y) of <paramref name="p"/> against the references.</summary>
    private static void CheckStreamedLayerNorm(BnLibrary lib, BnDType dtype, Problem p)
    {
        double forward = Accuracy.Forward(BnDType.F32);
        int positions = (int)ReferenceNormalizations.Positions(p.Desc);
        var normalized = ReferenceNormalizations.LayerNormForward(p.Desc, p.X, p.Gamma, p.Beta, p.Eps);
        using var x = NativeTensor.Of(dtype, p.X);
        using var y = new NativeTensor(dtype, p.Count);
        using var gamma = Parameters(dtype, p.Gamma!);
        using var beta = Parameters(dtype, p.Beta!);
        using var mean = Statistics(dtype, positions);
        using var invstd = Statistics(dtype, positions);
        Bn.Ok(lib, Bn.LayerNormForward(lib, p.Desc, x, y, gamma, beta, p.Eps, mean, invstd));
        Sixteen.Near($"{p} y", dtype, forward, y.Read(), normalized.Y, normalized.YScale);
        var gradient = ReferenceNormalizations.LayerNormBackward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
        using var dy = NativeTensor.Of(dtype, p.Dy);
        using var dgamma = Statistics(dtype, p.Channels);
        using var dbeta = Statistics(dtype, p.Channels);
        Bn.Ok(lib, Bn.LayerNormBackward(lib, p.Desc, x, dy, y, gamma, mean, invstd, dgamma, dbeta));
        GradientsNear($" {p}", dtype, y, dgamma, dbeta, gradient);
    }

    /// <summary>
    /// Every one of the 65,536 bit patterns through the vector and scalar loads and stores: an inference forward with
    /// σ = 1 is y = x·γ in float, so γ = 1 must give back every pattern (subnormals, ±0, ±Inf; NaN stays NaN) and
    /// γ = 1.5 (exact in float) the pattern nearest x·1.5, ties to even, as the test's own rounding says.
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void EveryBitPatternWidensAndNarrowsExactly(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        const int patterns = 65536 + 7; // a tail past the last full vector: the scalar loop too
        var x = new double[patterns];
        using var tensor = new NativeTensor(dtype, patterns);
        for (int i = 0; i < patterns; i++)
        {
            ((ushort*)tensor.Pointer)[i] = (ushort)(i % 65536);
            x[i] = tensor[i];
        }
        var desc = new BnTensorDesc(BnLayout.NC, dtype, patterns, 1, 1, 1);
        using var mean = Parameters(dtype, new[] { 0.0 });
        using var variance = Parameters(dtype, new[] { 1.0 });
        foreach (double gamma in new[] { 1.0, 1.5 })
        {
            using var y = new NativeTensor(dtype, patterns);
            using var g = Parameters(dtype, new[] { gamma });
            Bn.Ok(lib, Bn.ForwardInference(lib, desc, tensor, y, g, null, mean, variance, 1e-30));
            for (int i = 0; i < patterns; i++)
            {
                if (double.IsNaN(x[i]))
                {
                    Assert.True(double.IsNaN(y[i]), $"pattern {i % 65536:X4}: NaN gave {y[i]}");
                    continue;
                }
                double expected = Sixteen.Round(dtype, x[i] * gamma);
                Assert.True(expected.Equals(y[i]), $"{isa} pattern {i % 65536:X4} ({x[i]:R}) · {gamma}: {y[i]:R}, expected {expected:R}");
            }
        }
    }

    /// <summary>A constant channel (BatchNorm) or position (LayerNorm) gives y = β exactly, rounded to the format.</summary>
    [Theory, MemberData(nameof(Cases))]
    public void ConstantGroupsGiveBeta(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        foreach (var layout in new[] { BnLayout.NC, BnLayout.NCHW, BnLayout.NHWC })
        {
            var desc = layout == BnLayout.NC ? new BnTensorDesc(layout, dtype, 70, 3, 1, 1) : new BnTensorDesc(layout, dtype, 2, 3, 5, 7);
            using var x = NativeTensor.Filled(dtype, (int)desc.Count, 1234.5);
            using var y = new NativeTensor(dtype, (int)desc.Count);
            using var beta = Parameters(dtype, new[] { 0.25, -3.0, 7.5 });
            Bn.Ok(lib, Bn.ForwardTraining(lib, desc, x, y, null, beta, null, null, 0.1, 1e-5, null, null));
            for (long c = 0; c < 3; c++)
                Reference.ForChannel(desc, c, i => Assert.Equal(Sixteen.Round(dtype, beta[(int)c]), y[(int)i]));
            using var yLayer = new NativeTensor(dtype, (int)desc.Count);
            using var gamma = Parameters(dtype, new[] { 2.0, 2.0, 2.0 });
            Bn.Ok(lib, Bn.LayerNormForward(lib, desc, x, yLayer, gamma, beta, 1e-5, null, null));
            for (long p = 0; p < ReferenceNormalizations.Positions(desc); p++)
                ReferenceNormalizations.ForPosition(desc, p, (c, i) => Assert.Equal(Sixteen.Round(dtype, beta[(int)c]), yLayer[(int)i]));
        }
    }

    /// <summary>Values past the format's range saturate to ±Inf as the format does; NaN stays in its channel.</summary>
    [Theory, MemberData(nameof(Cases))]
    public void SaturatesAndKeepsNaNInItsChannel(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        var desc = new BnTensorDesc(BnLayout.NC, dtype, 4, 2, 1, 1);
        using var x = NativeTensor.Of(dtype, new[] { 1.0, double.NaN, -1.0, 0.0, 1.0, 0.0, -1.0, 0.0 }); // channel 1 holds the NaN
        using var y = new NativeTensor(dtype, 8);
        // y = γ·x̂ = ±γ·0.999995 on channel 0: a float, but past the format's largest value (65504; 3.3895e38).
        double huge = dtype == BnDType.F16 ? 1e6 : 3.4e38;
        using var gamma = Parameters(dtype, new[] { huge, 1.0 });
        Bn.Ok(lib, Bn.ForwardTraining(lib, desc, x, y, gamma, null, null, null, 0.1, 1e-5, null, null));
        for (int i = 0; i < 8; i += 2)
            Assert.Equal(i % 4 == 0 ? double.PositiveInfinity : double.NegativeInfinity, y[i]);
        for (int i = 1; i < 8; i += 2)
            Assert.True(double.IsNaN(y[i]), $"y[{i}] = {y[i]}: the NaN channel");
    }
}
