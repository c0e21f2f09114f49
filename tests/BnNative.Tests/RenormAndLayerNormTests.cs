using System;
using BnNative.Interop;
using CsCheck;
using Xunit;

namespace BnNative.Tests;

/// <summary>Batch Renormalization and Layer Normalization: references, gradients, invariances, determinism.</summary>
public class RenormAndLayerNormTests
{
    private const int Iterations = 40;

    public static TheoryData<string, BnDType> Cases() => ReferenceTests.Cases();

    private static Gen<(Problem P, double RMax, double DMax)> RenormProblems(BnDType t) =>
        from p in Problem.Gen(t)
        from rmax in Gen.Double[1, 3]
        from dmax in Gen.Double[0, 5]
        select (p, rmax, dmax);

    private sealed class RenormOutputs : IDisposable
    {
        public NativeTensor Y, Mean, Invstd, R, D, RunningMean, RunningVar;

        public RenormOutputs(BnLibrary lib, Problem p, double rmax, double dmax, NativeTensor x, NativeTensor? gamma, NativeTensor? beta)
        {
            var t = p.DType;
            (Y, Mean, Invstd, R, D) = (new(t, p.Count), new(t, p.Channels), new(t, p.Channels), new(t, p.Channels), new(t, p.Channels));
            (RunningMean, RunningVar) = (NativeTensor.Of(t, p.RunningMean), NativeTensor.Of(t, p.RunningVar));
            Bn.Ok(lib, Bn.RenormForwardTraining(lib, p.Desc, x, Y, gamma, beta, RunningMean, RunningVar, p.Momentum, p.Eps, rmax, dmax, Mean, Invstd, R, D));
        }

        public void Dispose()
        {
            foreach (var t in new[] { Y, Mean, Invstd, R, D, RunningMean, RunningVar }) t.Dispose();
        }
    }

    [Theory, MemberData(nameof(Cases))]
    public void RenormForwardAndBackwardMatchTheReference(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        RenormProblems(dtype).Sample(c =>
        {
            var (p, rmax, dmax) = c;
            using var x = NativeTensor.Of(dtype, p.X);
            using var gamma = p.Gamma == null ? null : NativeTensor.Of(dtype, p.Gamma);
            using var beta = p.Beta == null ? null : NativeTensor.Of(dtype, p.Beta);
            using var o = new RenormOutputs(lib, p, rmax, dmax, x, gamma, beta);
            var expected = ReferenceNormalizations.RenormForward(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps, rmax, dmax);
            double tol = Accuracy.Forward(dtype);
            Accuracy.Near("y", dtype, tol, o.Y.Read(), expected.Y, expected.YScale);
            Accuracy.Relative("save_invstd", tol, o.Invstd.Read(), expected.Invstd);
            Accuracy.Near("save_r", dtype, tol, o.R.Read(), expected.R);
            Accuracy.Near("save_d", dtype, 10 * tol, o.D.Read(), expected.D, Array.ConvertAll(expected.D, v => Math.Abs(v) + 1));
            Accuracy.Relative("running_var", tol, o.RunningVar.Read(), expected.RunningVar);

            using var dy = NativeTensor.Of(dtype, p.Dy);
            using var dx = new NativeTensor(dtype, p.Count);
            using var dgamma = new NativeTensor(dtype, p.Channels);
            using var dbeta = new NativeTensor(dtype, p.Channels);
            Bn.Ok(lib, Bn.RenormBackward(lib, p.Desc, x, dy, dx, gamma, o.Mean, o.Invstd, o.R, o.D, dgamma, dbeta));
            var gradient = ReferenceNormalizations.RenormBackward(p.Desc, p.X, p.Dy, p.Gamma, o.Mean.Read(), o.Invstd.Read(), o.R.Read(), o.D.Read());
            tol = Accuracy.Gradient(dtype);
            Accuracy.Near("dx", dtype, tol, dx.Read(), gradient.Dx, gradient.DxScale);
            Accuracy.Near("dgamma", dtype, tol, dgamma.Read(), gradient.Dgamma, gradient.DgammaScale);
            Accuracy.Near("dbeta", dtype, tol, dbeta.Read(), gradient.Dbeta, gradient.DbetaScale);
        }, iter: Iterations);
    }

    [Theory, MemberData(nameof(Images.Names), MemberType = typeof(Images))]
    public void RenormWithRmax1Dmax0IsBatchNormBitwise(string isa)
    {
        var lib = Images.ByIsa[isa];
        foreach (var t in new[] { BnDType.F32, BnDType.F64 })
            Problem.Gen(t).Sample(p =>
            {
                using var x = NativeTensor.Of(t, p.X);
                using var gamma = p.Gamma == null ? null : NativeTensor.Of(t, p.Gamma);
                using var beta = p.Beta == null ? null : NativeTensor.Of(t, p.Beta);
                using var o = new RenormOutputs(lib, p, 1, 0, x, gamma, beta);
                using var y = new NativeTensor(t, p.Count);
                using var runningMean = NativeTensor.Of(t, p.RunningMean);
                using var runningVar = NativeTensor.Of(t, p.RunningVar);
                using var mean = new NativeTensor(t, p.Channels);
                using var invstd = new NativeTensor(t, p.Channels);
                Bn.Ok(lib, Bn.ForwardTraining(lib, p.Desc, x, y, gamma, beta, runningMean, runningVar, p.Momentum, p.Eps, mean, invstd));
                Assert.Equal(y.Bytes(), o.Y.Bytes());
                Assert.Equal(runningVar.Bytes(), o.RunningVar.Bytes());
                Assert.Equal(invstd.Bytes(), o.Invstd.Bytes());
            }, iter: 20);
    }

    [Fact]
    public void RenormWithoutClippingIsTheInferenceForwardWithTheOldStatistics()
    {
        var lib = Images.Best;
        Problem.Gen(BnDType.F64).Sample(p =>
        {
            const BnDType t = BnDType.F64;
            using var x = NativeTensor.Of(t, p.X);
            using var gamma = p.Gamma == null ? null : NativeTensor.Of(t, p.Gamma);
            using var beta = p.Beta == null ? null : NativeTensor.Of(t, p.Beta);
            using var y = new NativeTensor(t, p.Count);
            using var runningMean = NativeTensor.Of(t, p.RunningMean);
            using var runningVar = NativeTensor.Of(t, p.RunningVar);
            Bn.Ok(lib, Bn.ForwardInference(lib, p.Desc, x, y, gamma, beta, runningMean, runningVar, p.Eps));
            // Limits that never clip here, and +∞ (SPEC §2.2 asks only rmax ≥ 1, dmax ≥ 0): no clipping at all.
            foreach (double limit in new[] { 1e6, double.PositiveInfinity })
            {
                using var o = new RenormOutputs(lib, p, limit, limit, x, gamma, beta);
                var scale = ReferenceNormalizations.RenormForward(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps, 1e6, 1e6).YScale;
                Accuracy.Near($"renorm (rmax = dmax = {limit}) vs inference", t, 1e-11, o.Y.Read(), y.Read(), scale);
            }
        }, iter: 50);
    }

    [Fact]
    public void RenormBackwardIsTheGradientWithRAndDFrozen()
    {
        var lib = Images.Best;
        Problem.Gen(BnDType.F64, maxChannels: 4).Where(q => q.Count <= 200).Sample(p =>
        {
            const BnDType t = BnDType.F64;
            double[] gamma = p.Gamma ?? new double[p.Channels], beta = p.Beta ?? new double[p.Channels];
            if (p.Gamma == null) Array.Fill(gamma, 1.0);
            using var x = NativeTensor.Of(t, p.X);
            using var gt = NativeTensor.Of(t, gamma);
            using var bt = NativeTensor.Of(t, beta);
            using var o = new RenormOutputs(lib, p, 1.5, 0.5, x, gt, bt);
            double[] r = o.R.Read(), d = o.D.Read(), x0 = (double[])p.X.Clone(), w = p.Dy;
            double Loss()
            {
                var y = ReferenceNormalizations.RenormForward(p.Desc, x0, gamma, beta, p.RunningMean, p.RunningVar, 0, p.Eps, 1.5, 0.5, r, d).Y;
                double s = 0;
                for (int i = 0; i < y.Length; i++) s += w[i] * y[i];
                return s;
            }
            using var dy = NativeTensor.Of(t, w);
            using var dx = new NativeTensor(t, p.Count);
            using var dgamma = new NativeTensor(t, p.Channels);
            using var dbeta = new NativeTensor(t, p.Channels);
            Bn.Ok(lib, Bn.RenormBackward(lib, p.Desc, x, dy, dx, gt, o.Mean, o.Invstd, o.R, o.D, dgamma, dbeta));
            GradientTests.Close("dx", dx.Read(), GradientTests.Numeric(Loss, x0));
            GradientTests.Close("dgamma", dgamma.Read(), GradientTests.Numeric(Loss, gamma));
            GradientTests.Close("dbeta", dbeta.Read(), GradientTests.Numeric(Loss, beta));
        }, iter: 25);
    }

    // ---- Layer Normalization ----------------------------------------------------------------------------

    private static (double[] Y, double[] Mean, double[] Invstd) LayerNorm(BnLibrary lib, BnTensorDesc d, double[] xv, double[]? gammaV, double[]? betaV, double eps)
    {
        var t = (BnDType)d.DType;
        int positions = (int)ReferenceNormalizations.Positions(d);
        using var x = NativeTensor.Of(t, xv);
        using var y = new NativeTensor(t, xv.Length);
        using var gamma = gammaV == null ? null : NativeTensor.Of(t, gammaV);
        using var beta = betaV == null ? null : NativeTensor.Of(t, betaV);
        using var mean = new NativeTensor(t, positions);
        using var invstd = new NativeTensor(t, positions);
        Bn.Ok(lib, Bn.LayerNormForward(lib, d, x, y, gamma, beta, eps, mean, invstd));
        return (y.Read(), mean.Read(), invstd.Read());
    }

    [Theory, MemberData(nameof(Cases))]
    public void LayerNormForwardAndBackwardMatchTheReference(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        Problem.Gen(dtype).Sample(p => CheckLayerNorm(lib, p), iter: Iterations);
    }

    [Theory, MemberData(nameof(Cases))]
    public void LayerNormOnWideAndLongTensors(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        CheckLayerNorm(lib, Problem.Create(dtype, BnLayout.NC, 40, 3000, 1, 1, seed: 31, affine: true));
        CheckLayerNorm(lib, Problem.Create(dtype, BnLayout.NCHW, 3, 300, 17, 29, seed: 32, affine: true));
        CheckLayerNorm(lib, Problem.Create(dtype, BnLayout.NHWC, 5, 7, 61, 59, seed: 33, affine: false));
        // ≥ 8 MiB in rows of ≥ 512: y and dx are written with non-temporal stores.
        CheckLayerNorm(lib, Problem.Create(dtype, BnLayout.NC, 1100, 1901, 1, 1, seed: 34, affine: true));
        // The same over NCHW, where each channel's row of a tile is a run (F32: tiles of 2,048 positions, the last of each
        // sample 116; rows 66,000 bytes apart, so most start off a vector boundary and their scalar heads run).
        CheckLayerNorm(lib, Problem.Create(dtype, BnLayout.NCHW, 2, 64, 1, 16500, seed: 35, affine: true));
        // Rows of whole vectors 16 bytes off a 64-byte boundary (where malloc and NumPy start large arrays), ≥ 8 MiB: each
        // row streams after its scalar head and ends one by one, in place and out of place.
        foreach (bool inPlace in new[] { false, true })
            CheckLayerNorm(lib, Problem.Create(dtype, BnLayout.NC, 2800, 768, 1, 1, seed: 36, affine: true), inPlace, offset: 16);
    }

    /// <summary>
    /// Rows of 1 to 9 whole vectors of the widest image (16 floats, 8 doubles): up to 8 keep their γ and β (the backward: γ)
    /// in registers for a group's rows (RowGroup), 9 take the general loop; 37 rows are two forward groups of 16 and a
    /// partial one, in place and out of place, one byte off alignment. Then outputs of at least 8 MiB in rows of 6 and 8
    /// vectors: streamed when aligned; staged in L1 and copied out otherwise, with ordinary stores one byte off and
    /// streamed after a scalar head 16 bytes off (in place too: dx over dy).
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void LayerNormRowsOfWholeVectors(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        int lanes = dtype == BnDType.F64 ? 8 : 16, size = dtype == BnDType.F64 ? 8 : 4;
        for (int vectors = 1; vectors <= 9; vectors++)
            foreach (bool inPlace in new[] { false, true })
                CheckLayerNorm(lib, Problem.Create(dtype, BnLayout.NC, 37, vectors * lanes, 1, 1, seed: 70 + vectors, affine: true), inPlace, misaligned: true);
        foreach (int vectors in new[] { 6, 8 })
            foreach (var (misaligned, offset, inPlace) in new[] { (false, 0, false), (true, 0, false), (false, 16, false), (false, 16, true) })
            {
                int channels = vectors * lanes, side = (int)Math.Ceiling(Math.Sqrt(8.5 * (1 << 20) / (channels * size)));
                CheckLayerNorm(lib, Problem.Create(dtype, BnLayout.NHWC, 1, channels, side, side, seed: 80 + vectors, affine: true), inPlace, misaligned, offset);
            }
    }

    private static void CheckLayerNorm(BnLibrary lib, Problem p, bool inPlace = false, bool misaligned = false, int offset = 0)
    {
        var t = p.DType;
        int positions = (int)ReferenceNormalizations.Positions(p.Desc);
        using var x = NativeTensor.Of(t, p.X, misaligned, offset);
        using var separate = new NativeTensor(t, p.Count, misaligned, offset);
        var y = inPlace ? x : separate;
        using var gamma = p.Gamma == null ? null : NativeTensor.Of(t, p.Gamma);
        using var beta = p.Beta == null ? null : NativeTensor.Of(t, p.Beta);
        using var mean = new NativeTensor(t, positions);
        using var invstd = new NativeTensor(t, positions);
        Bn.Ok(lib, Bn.LayerNormForward(lib, p.Desc, x, y, gamma, beta, p.Eps, mean, invstd));
        var expected = ReferenceNormalizations.LayerNormForward(p.Desc, p.X, p.Gamma, p.Beta, p.Eps);
        double tol = Accuracy.Forward(t);
        Accuracy.Near($"{p} in place={inPlace} misaligned={misaligned} offset={offset} y", t, tol, y.Read(), expected.Y, expected.YScale);
        Accuracy.Relative($"{p} save_invstd", tol, invstd.Read(), expected.Invstd);

        x.Write(p.X);
        using var dy = NativeTensor.Of(t, p.Dy, misaligned, offset);
        var dx = inPlace ? dy : separate;
        using var dgamma = new NativeTensor(t, p.Channels);
        using var dbeta = new NativeTensor(t, p.Channels);
        Bn.Ok(lib, Bn.LayerNormBackward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, dgamma, dbeta));
        var gradient = ReferenceNormalizations.LayerNormBackward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
        tol = Accuracy.Gradient(t);
        Accuracy.Near($"{p} in place={inPlace} misaligned={misaligned} offset={offset} dx", t, tol, dx.Read(), gradient.Dx, gradient.DxScale);
        Accuracy.Near($"{p} dgamma", t, tol, dgamma.Read(), gradient.Dgamma, gradient.DgammaScale);
        Accuracy.Near($"{p} dbeta", t, tol, dbeta.Read(), gradient.Dbeta, gradient.DbetaScale);
    }

    [Fact]
    public void LayerNormBackwardIsTheGradientOfTheForward()
    {
        var lib = Images.Best;
        Problem.Gen(BnDType.F64, maxChannels: 6).Where(q => q.Count <= 200).Sample(p =>
        {
            const BnDType t = BnDType.F64;
            double[] gamma = p.Gamma ?? new double[p.Channels], beta = p.Beta ?? new double[p.Channels];
            if (p.Gamma == null) Array.Fill(gamma, 1.0);
            double[] x0 = (double[])p.X.Clone(), w = p.Dy;
            double Loss()
            {
                var y = LayerNorm(lib, p.Desc, x0, gamma, beta, p.Eps).Y;
                double s = 0;
                for (int i = 0; i < y.Length; i++) s += w[i] * y[i];
                return s;
            }
            var (_, meanV, invstdV) = LayerNorm(lib, p.Desc, x0, gamma, beta, p.Eps);
            using var x = NativeTensor.Of(t, x0);
            using var dy = NativeTensor.Of(t, w);
            using var dx = new NativeTensor(t, p.Count);
            using var gt = NativeTensor.Of(t, gamma);
            using var mean = NativeTensor.Of(t, meanV);
            using var invstd = NativeTensor.Of(t, invstdV);
            using var dgamma = new NativeTensor(t, p.Channels);
            using var dbeta = new NativeTensor(t, p.Channels);
            Bn.Ok(lib, Bn.LayerNormBackward(lib, p.Desc, x, dy, dx, gt, mean, invstd, dgamma, dbeta));
            GradientTests.Close("dx", dx.Read(), GradientTests.Numeric(Loss, x0));
            GradientTests.Close("dgamma", dgamma.Read(), GradientTests.Numeric(Loss, gamma));
            GradientTests.Close("dbeta", dbeta.Read(), GradientTests.Numeric(Loss, beta));
        }, iter: 25);
    }

    [Fact]
    public void LayerNormIgnoresAPerPositionShiftAndAPositiveScale()
    {
        var lib = Images.Best;
        var gen = from p in Problem.Gen(BnDType.F64)
                  from a in Gen.Double[0.01, 100]
                  from seed in Gen.Int
                  select (p, a, seed);
        gen.Sample(c =>
        {
            var (p, a, seed) = c;
            var random = new Random(seed);
            var moved = new double[p.Count];
            for (long q = 0; q < ReferenceNormalizations.Positions(p.Desc); q++)
            {
                double b = 1000 * (2 * random.NextDouble() - 1);
                ReferenceNormalizations.ForPosition(p.Desc, q, (_, i) => moved[i] = a * p.X[i] + b);
            }
            var y = LayerNorm(lib, p.Desc, p.X, p.Gamma, p.Beta, p.Eps).Y;
            var y2 = LayerNorm(lib, p.Desc, moved, p.Gamma, p.Beta, p.Eps * a * a).Y;
            var scale = ReferenceNormalizations.LayerNormForward(p.Desc, p.X, p.Gamma, p.Beta, p.Eps).YScale;
            Accuracy.Near("LN(a·x + b_p)", BnDType.F64, 1e-9, y2, y, scale);
        }, iter: 100);
    }

    [Fact]
    public void NcOverCHWIsAPerSampleLayerNorm()
    {
        var lib = Images.Best;
        Problem.Gen(BnDType.F64).Where(q => q.Desc.Layout == (int)BnLayout.NCHW).Sample(p =>
        {
            var d = p.Desc;
            long features = d.C * d.H * d.W;
            var flat = new BnTensorDesc(BnLayout.NC, BnDType.F64, d.N, features);
            var y = LayerNorm(lib, flat, p.X, null, null, p.Eps).Y;
            for (long n = 0; n < d.N; n++)
            {
                double sum = 0, squares = 0;
                for (long i = 0; i < features; i++) sum += p.X[n * features + i];
                double mean = sum / features;
                for (long i = 0; i < features; i++) squares += Math.Pow(p.X[n * features + i] - mean, 2);
                double invstd = 1 / Math.Sqrt(squares / features + p.Eps);
                for (long i = 0; i < features; i++)
                {
                    double expected = (p.X[n * features + i] - mean) * invstd;
                    double got = y[n * features + i];
                    Assert.True(Math.Abs(got - expected) <= 1e-12 * (Math.Abs(p.X[n * features + i]) + Math.Abs(mean)) * invstd + 1e-14, $"sample {n} feature {i}: {got} vs {expected}");
                }
            }
        }, iter: 40);
    }

    [Theory, MemberData(nameof(EdgeCaseTests.Cases), MemberType = typeof(EdgeCaseTests))]
    public void AConstantPositionGivesBetaExactly(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        var p = layout == BnLayout.NC ? Problem.Create(t, layout, 37, 45, 1, 1, 41, true) : Problem.Create(t, layout, 3, 45, 5, 7, 41, true);
        var x = (double[])p.X.Clone();
        for (long q = 0; q < ReferenceNormalizations.Positions(p.Desc); q += 3)
        {
            double v = t == BnDType.F32 ? (float)(0.1 * q - 7.3) : 0.1 * q - 7.3;
            ReferenceNormalizations.ForPosition(p.Desc, q, (_, i) => x[i] = v);
        }
        var y = LayerNorm(lib, p.Desc, x, p.Gamma, p.Beta, p.Eps).Y;
        for (long q = 0; q < ReferenceNormalizations.Positions(p.Desc); q += 3)
            ReferenceNormalizations.ForPosition(p.Desc, q, (c, i) => Assert.True(y[i] == p.Beta![c], $"position {q} channel {c}: {y[i]:R} != {p.Beta![c]:R}"));
    }

    [Theory, MemberData(nameof(EdgeCaseTests.Cases), MemberType = typeof(EdgeCaseTests))]
    public void InPlaceGivesTheSameResults(string isa, BnLayout layout, BnDType t)
    {
        var lib = Images.ByIsa[isa];
        var p = layout == BnLayout.NC ? Problem.Create(t, layout, 301, 19, 1, 1, 81, true) : Problem.Create(t, layout, 3, 19, 7, 13, 81, true);
        int positions = (int)ReferenceNormalizations.Positions(p.Desc);
        using var x = NativeTensor.Of(t, p.X);
        using var dy = NativeTensor.Of(t, p.Dy);
        using var y = new NativeTensor(t, p.Count);
        using var dx = new NativeTensor(t, p.Count);
        using var gamma = NativeTensor.Of(t, p.Gamma!);
        using var beta = NativeTensor.Of(t, p.Beta!);
        using var mean = new NativeTensor(t, positions);
        using var invstd = new NativeTensor(t, positions);
        using var inPlace = NativeTensor.Of(t, p.X);
        using var inPlaceDy = NativeTensor.Of(t, p.Dy);
        using var dgamma = new NativeTensor(t, p.Channels);
        using var dgammaInPlace = new NativeTensor(t, p.Channels);

        Bn.Ok(lib, Bn.LayerNormForward(lib, p.Desc, x, y, gamma, beta, p.Eps, mean, invstd));
        Bn.Ok(lib, Bn.LayerNormForward(lib, p.Desc, inPlace, inPlace, gamma, beta, p.Eps, null, null));
        Assert.Equal(y.Bytes(), inPlace.Bytes());
        Bn.Ok(lib, Bn.LayerNormBackward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, dgamma, null));
        Bn.Ok(lib, Bn.LayerNormBackward(lib, p.Desc, x, inPlaceDy, inPlaceDy, gamma, mean, invstd, dgammaInPlace, null));
        Assert.Equal(dx.Bytes(), inPlaceDy.Bytes());
        Assert.Equal(dgamma.Bytes(), dgammaInPlace.Bytes());

        if (p.Desc.N * p.Desc.H * p.Desc.W < 2)
            return;
        inPlace.Write(p.X);
        using var o = new RenormOutputs(lib, p, 2, 1, x, gamma, beta);
        using var runningMean = NativeTensor.Of(t, p.RunningMean);
        using var runningVar = NativeTensor.Of(t, p.RunningVar);
        Bn.Ok(lib, Bn.RenormForwardTraining(lib, p.Desc, inPlace, inPlace, gamma, beta, runningMean, runningVar, p.Momentum, p.Eps, 2, 1, null, null, null, null));
        Assert.Equal(o.Y.Bytes(), inPlace.Bytes());
        inPlaceDy.Write(p.Dy);
        Bn.Ok(lib, Bn.RenormBackward(lib, p.Desc, x, dy, dx, gamma, o.Mean, o.Invstd, o.R, o.D, null, null));
        Bn.Ok(lib, Bn.RenormBackward(lib, p.Desc, x, inPlaceDy, inPlaceDy, gamma, o.Mean, o.Invstd, o.R, o.D, null, null));
        Assert.Equal(dx.Bytes(), inPlaceDy.Bytes());
    }

    [Theory, MemberData(nameof(Images.Names), MemberType = typeof(Images))]
    public void RenormAndLayerNormAreBitwiseTheSameForAnyThreadCount(string isa)
    {
        var lib = Images.ByIsa[isa];
        var problems = new[]
        {
            Problem.Create(BnDType.F32, BnLayout.NHWC, 16, 37, 31, 29, seed: 51, affine: true),
            Problem.Create(BnDType.F32, BnLayout.NCHW, 6, 37, 31, 29, seed: 52, affine: true),
            Problem.Create(BnDType.F64, BnLayout.NC, 700, 300, 1, 1, seed: 53, affine: false),
        };
        DeterminismTests.SameForAnyThreadCount(lib, isa, problems, Digest);
    }

    private static string Digest(BnLibrary lib, Problem p)
    {
        var t = p.DType;
        int positions = (int)ReferenceNormalizations.Positions(p.Desc);
        using var x = NativeTensor.Of(t, p.X);
        using var dy = NativeTensor.Of(t, p.Dy);
        using var dx = new NativeTensor(t, p.Count);
        using var gamma = p.Gamma == null ? null : NativeTensor.Of(t, p.Gamma);
        using var beta = p.Beta == null ? null : NativeTensor.Of(t, p.Beta);
        using var o = new RenormOutputs(lib, p, 2, 1, x, gamma, beta);
        using var dgamma = new NativeTensor(t, p.Channels);
        using var dbeta = new NativeTensor(t, p.Channels);
        var digest = new OutputDigest();
        digest.Add(o.Y, o.Mean, o.Invstd, o.R, o.D, o.RunningMean, o.RunningVar);
        Bn.Ok(lib, Bn.RenormBackward(lib, p.Desc, x, dy, dx, gamma, o.Mean, o.Invstd, o.R, o.D, dgamma, dbeta));
        digest.Add(dx, dgamma, dbeta);
        using var y = new NativeTensor(t, p.Count);
        using var mean = new NativeTensor(t, positions);
        using var invstd = new NativeTensor(t, positions);
        Bn.Ok(lib, Bn.LayerNormForward(lib, p.Desc, x, y, gamma, beta, p.Eps, mean, invstd));
        Bn.Ok(lib, Bn.LayerNormBackward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, dgamma, dbeta));
        digest.Add(y, mean, invstd, dx, dgamma, dbeta);
        return digest.ToString();
    }
}
