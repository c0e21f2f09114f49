using System;
using BnNative.Interop;
using CsCheck;
using Xunit;

namespace BnNative.Tests;

/// <summary>Every image, every dtype and layout, against the float64 reference with SPEC §4's tolerances.</summary>
public class ReferenceTests
{
    private const int Iterations = 60;

    public static TheoryData<string, BnDType> Cases()
    {
        var data = new TheoryData<string, BnDType>();
        foreach (var isa in Images.ByIsa.Keys)
            foreach (var t in new[] { BnDType.F32, BnDType.F64 })
                data.Add(isa, t);
        return data;
    }

    /// <summary>The random small problems, and NCHW ones of many short slabs (Problem.ManyShortSlabs).</summary>
    private static Gen<Problem> WithShortSlabs(BnDType dtype) => Gen.Frequency((3, Problem.Gen(dtype)), (1, Problem.ManyShortSlabs(dtype)));

    [Theory, MemberData(nameof(Cases))]
    public void ForwardTraining(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        WithShortSlabs(dtype).Sample(p =>
        {
            var expected = Reference.ForwardTraining(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps);
            using var x = NativeTensor.Of(dtype, p.X);
            using var y = new NativeTensor(dtype, p.Count);
            using var gamma = p.Gamma == null ? null : NativeTensor.Of(dtype, p.Gamma);
            using var beta = p.Beta == null ? null : NativeTensor.Of(dtype, p.Beta);
            using var runningMean = NativeTensor.Of(dtype, p.RunningMean);
            using var runningVar = NativeTensor.Of(dtype, p.RunningVar);
            using var mean = new NativeTensor(dtype, p.Channels);
            using var invstd = new NativeTensor(dtype, p.Channels);
            Bn.Ok(lib, Bn.ForwardTraining(lib, p.Desc, x, y, gamma, beta, runningMean, runningVar, p.Momentum, p.Eps, mean, invstd));

            double tol = Accuracy.Forward(dtype);
            Accuracy.Near("y", dtype, tol, y.Read(), expected.Y, expected.YScale);
            Accuracy.Near("save_mean", dtype, tol, mean.Read(), expected.Mean, expected.MeanScale);
            Accuracy.Relative("save_invstd", tol, invstd.Read(), expected.Invstd);
            Accuracy.Near("running_mean", dtype, tol, runningMean.Read(), expected.RunningMean, expected.RunningMeanScale);
            Accuracy.Relative("running_var", tol, runningVar.Read(), expected.RunningVar);
        }, iter: Iterations);
    }

    [Theory, MemberData(nameof(Cases))]
    public void ForwardInference(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        Problem.Gen(dtype).Sample(p =>
        {
            var (expected, scale) = Reference.ForwardInference(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Eps);
            using var x = NativeTensor.Of(dtype, p.X);
            using var y = new NativeTensor(dtype, p.Count);
            using var gamma = p.Gamma == null ? null : NativeTensor.Of(dtype, p.Gamma);
            using var beta = p.Beta == null ? null : NativeTensor.Of(dtype, p.Beta);
            using var runningMean = NativeTensor.Of(dtype, p.RunningMean);
            using var runningVar = NativeTensor.Of(dtype, p.RunningVar);
            Bn.Ok(lib, Bn.ForwardInference(lib, p.Desc, x, y, gamma, beta, runningMean, runningVar, p.Eps));
            Accuracy.Near("y", dtype, Accuracy.Forward(dtype), y.Read(), expected, scale);
        }, iter: Iterations);
    }

    [Theory, MemberData(nameof(Cases))]
    public void Backward(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        WithShortSlabs(dtype).Sample(p =>
        {
            // The saved statistics as a forward would have saved them, rounded to the dtype.
            var (m, v) = Reference.Statistics(p.Desc, p.X);
            using var mean = NativeTensor.Of(dtype, m);
            using var invstd = NativeTensor.Of(dtype, System.Array.ConvertAll(v, a => 1 / System.Math.Sqrt(a + p.Eps)));
            var expected = Reference.Backward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
            using var x = NativeTensor.Of(dtype, p.X);
            using var dy = NativeTensor.Of(dtype, p.Dy);
            using var dx = new NativeTensor(dtype, p.Count);
            using var gamma = p.Gamma == null ? null : NativeTensor.Of(dtype, p.Gamma);
            using var dgamma = new NativeTensor(dtype, p.Channels);
            using var dbeta = new NativeTensor(dtype, p.Channels);
            Bn.Ok(lib, Bn.Backward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, dgamma, dbeta));

            double tol = Accuracy.Gradient(dtype);
            Accuracy.Near("dx", dtype, tol, dx.Read(), expected.Dx, expected.DxScale);
            Accuracy.Near("dgamma", dtype, tol, dgamma.Read(), expected.Dgamma, expected.DgammaScale);
            Accuracy.Near("dbeta", dtype, tol, dbeta.Read(), expected.Dbeta, expected.DbetaScale);
        }, iter: Iterations);
    }

    [Theory, MemberData(nameof(Cases))]
    public void BackwardInference(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        WithShortSlabs(dtype).Sample(p =>
        {
            var expected = Reference.BackwardInference(p.Desc, p.X, p.Dy, p.Gamma, p.RunningMean, p.RunningVar, p.Eps);
            using var x = NativeTensor.Of(dtype, p.X);
            using var dy = NativeTensor.Of(dtype, p.Dy);
            using var dx = new NativeTensor(dtype, p.Count);
            using var gamma = p.Gamma == null ? null : NativeTensor.Of(dtype, p.Gamma);
            using var runningMean = NativeTensor.Of(dtype, p.RunningMean);
            using var runningVar = NativeTensor.Of(dtype, p.RunningVar);
            using var dgamma = new NativeTensor(dtype, p.Channels);
            using var dbeta = new NativeTensor(dtype, p.Channels);
            Bn.Ok(lib, Bn.BackwardInference(lib, p.Desc, x, dy, dx, gamma, runningMean, runningVar, p.Eps, dgamma, dbeta));

            double tol = Accuracy.Gradient(dtype);
            Accuracy.Near("dx", dtype, tol, dx.Read(), expected.Dx, expected.DxScale);
            Accuracy.Near("dgamma", dtype, tol, dgamma.Read(), expected.Dgamma, expected.DgammaScale);
            Accuracy.Near("dbeta", dtype, tol, dbeta.Read(), expected.Dbeta, expected.DbetaScale);
        }, iter: Iterations);
    }

    /// <summary>
    /// Rows wide enough that channels-last work is cut into channel ranges, and long enough for several
    /// row blocks and reduction chunks: the paths small random shapes do not reach.
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void WideAndLongChannelsLastTensors(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        foreach (var p in new[]
        {
            Problem.Create(dtype, BnLayout.NC, 300, 1500, 1, 1, seed: 21, affine: true),
            Problem.Create(dtype, BnLayout.NHWC, 9, 70, 29, 31, seed: 22, affine: true),
        })
        {
            var expected = Reference.ForwardTraining(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps);
            using var x = NativeTensor.Of(dtype, p.X);
            using var y = new NativeTensor(dtype, p.Count);
            using var gamma = NativeTensor.Of(dtype, p.Gamma!);
            using var beta = NativeTensor.Of(dtype, p.Beta!);
            using var runningMean = NativeTensor.Of(dtype, p.RunningMean);
            using var runningVar = NativeTensor.Of(dtype, p.RunningVar);
            using var mean = new NativeTensor(dtype, p.Channels);
            using var invstd = new NativeTensor(dtype, p.Channels);
            Bn.Ok(lib, Bn.ForwardTraining(lib, p.Desc, x, y, gamma, beta, runningMean, runningVar, p.Momentum, p.Eps, mean, invstd));
            double tol = Accuracy.Forward(dtype);
            Accuracy.Near($"{p} y", dtype, tol, y.Read(), expected.Y, expected.YScale);
            Accuracy.Relative($"{p} save_invstd", tol, invstd.Read(), expected.Invstd);

            using var dy = NativeTensor.Of(dtype, p.Dy);
            using var dx = new NativeTensor(dtype, p.Count);
            using var dgamma = new NativeTensor(dtype, p.Channels);
            using var dbeta = new NativeTensor(dtype, p.Channels);
            var gradient = Reference.Backward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
            Bn.Ok(lib, Bn.Backward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, dgamma, dbeta));
            tol = Accuracy.Gradient(dtype);
            Accuracy.Near($"{p} dx", dtype, tol, dx.Read(), gradient.Dx, gradient.DxScale);
            Accuracy.Near($"{p} dgamma", dtype, tol, dgamma.Read(), gradient.Dgamma, gradient.DgammaScale);

            var frozen = Reference.BackwardInference(p.Desc, p.X, p.Dy, p.Gamma, p.RunningMean, p.RunningVar, p.Eps);
            runningMean.Write(p.RunningMean);
            runningVar.Write(p.RunningVar);
            Bn.Ok(lib, Bn.BackwardInference(lib, p.Desc, x, dy, dx, gamma, runningMean, runningVar, p.Eps, dgamma, dbeta));
            Accuracy.Near($"{p} frozen dx", dtype, tol, dx.Read(), frozen.Dx, frozen.DxScale);
            Accuracy.Near($"{p} frozen dbeta", dtype, tol, dbeta.Read(), frozen.Dbeta, frozen.DbetaScale);
        }
    }

    /// <summary>
    /// Outputs large enough (≥ 8 MiB, slabs ≥ 512) to be written with non-temporal stores, which need
    /// aligned addresses: the scalar head, the streamed body and the tail against the reference.
    /// </summary>
    [Theory, MemberData(nameof(Images.Names), MemberType = typeof(Images))]
    public void StreamedOutputs(string isa)
    {
        var lib = Images.ByIsa[isa];
        const BnDType t = BnDType.F32;
        var p = Problem.Create(t, BnLayout.NCHW, 2, 3, 701, 1000, seed: 61, affine: true);
        var expected = Reference.ForwardTraining(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps);
        using var x = NativeTensor.Of(t, p.X);
        using var y = new NativeTensor(t, p.Count);
        using var gamma = NativeTensor.Of(t, p.Gamma!);
        using var beta = NativeTensor.Of(t, p.Beta!);
        using var mean = new NativeTensor(t, p.Channels);
        using var invstd = new NativeTensor(t, p.Channels);
        Bn.Ok(lib, Bn.ForwardTraining(lib, p.Desc, x, y, gamma, beta, null, null, p.Momentum, p.Eps, mean, invstd));
        Accuracy.Near("y", t, Accuracy.Forward(t), y.Read(), expected.Y, expected.YScale);

        using var dy = NativeTensor.Of(t, p.Dy);
        using var dx = new NativeTensor(t, p.Count);
        Bn.Ok(lib, Bn.Backward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, null, null));
        var gradient = Reference.Backward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
        Accuracy.Near("dx", t, Accuracy.Gradient(t), dx.Read(), gradient.Dx, gradient.DxScale);

        using var runningMean = NativeTensor.Of(t, p.RunningMean);
        using var runningVar = NativeTensor.Of(t, p.RunningVar);
        Bn.Ok(lib, Bn.ForwardInference(lib, p.Desc, x, x, gamma, beta, runningMean, runningVar, p.Eps));
        var (inference, scale) = Reference.ForwardInference(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Eps);
        Accuracy.Near("in-place inference y", t, Accuracy.Forward(t), x.Read(), inference, scale);
    }

    /// <summary>
    /// Channels-last outputs of at least 8 MiB whose rows are exactly one unrolled block (C = 64 floats for ScaleShift
    /// at AVX-512) are written with non-temporal stores when aligned: forward, backward and in-place inference against the
    /// reference, aligned and one byte off (which must fall back to ordinary stores), and C = 32 at AVX-512 (a row
    /// held in registers; rows of whole vectors narrower than a block stream one row at a time). Rows of C = 208, wider than
    /// a block and whole vectors, are walked one at a time and streamed; rows of C = 200 (800 bytes, every other row 32
    /// bytes off a 64-byte boundary, a last vector that overlaps the one before it) one at a time with ordinary stores.
    /// Rows of 96 and 120 (at AVX-512, statistics walked down the tile as one block of up to eight vectors). Tensors 16
    /// bytes past a 64-byte boundary: tiles of rows that are whole boundaries (C = 64, 32, 208) start at the boundary,
    /// with the coefficients rotated; rows of 200 cannot and keep ordinary stores.
    /// </summary>
    [Theory, MemberData(nameof(Images.Names), MemberType = typeof(Images))]
    public void StreamedChannelsLastOutputs(string isa)
    {
        var lib = Images.ByIsa[isa];
        const BnDType t = BnDType.F32;
        foreach (var (channels, width, misaligned, offset) in new[] { (64, 140, false, 0), (32, 280, false, 0), (64, 140, true, 0), (208, 19, false, 0),
            (200, 20, false, 0), (208, 19, true, 0), (96, 94, false, 0), (120, 75, true, 0), (64, 140, false, 16), (32, 280, false, 16), (208, 19, false, 16), (200, 20, false, 16) })
        {
            var p = Problem.Create(t, BnLayout.NHWC, 9, channels, 60, width, seed: channels, affine: true);
            string what = $"{isa} {p} misaligned={misaligned} offset={offset}";
            var expected = Reference.ForwardTraining(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps);
            using var x = NativeTensor.Of(t, p.X, misaligned, offset);
            using var y = new NativeTensor(t, p.Count, misaligned, offset);
            using var gamma = NativeTensor.Of(t, p.Gamma!);
            using var beta = NativeTensor.Of(t, p.Beta!);
            using var mean = new NativeTensor(t, p.Channels);
            using var invstd = new NativeTensor(t, p.Channels);
            Bn.Ok(lib, Bn.ForwardTraining(lib, p.Desc, x, y, gamma, beta, null, null, p.Momentum, p.Eps, mean, invstd));
            Accuracy.Near($"{what} y", t, Accuracy.Forward(t), y.Read(), expected.Y, expected.YScale);

            using var dy = NativeTensor.Of(t, p.Dy, misaligned, offset);
            Bn.Ok(lib, Bn.Backward(lib, p.Desc, x, dy, y, gamma, mean, invstd, null, null));
            var gradient = Reference.Backward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
            Accuracy.Near($"{what} dx", t, Accuracy.Gradient(t), y.Read(), gradient.Dx, gradient.DxScale);

            using var runningMean = NativeTensor.Of(t, p.RunningMean);
            using var runningVar = NativeTensor.Of(t, p.RunningVar);
            Bn.Ok(lib, Bn.ForwardInference(lib, p.Desc, x, x, gamma, beta, runningMean, runningVar, p.Eps));
            var (inference, scale) = Reference.ForwardInference(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Eps);
            Accuracy.Near($"{what} in-place inference y", t, Accuracy.Forward(t), x.Read(), inference, scale);
        }
    }

    /// <summary>
    /// The same call on the same values gives the same bits wherever the tensors start (docs/contract.md): on a 64-byte
    /// boundary (streamed directly), 16 bytes past one (BatchNorm tiles rotated onto the boundary, LayerNorm row groups
    /// staged in L1, runs ending one by one) and one byte past one (nothing streamed). Channels-last BatchNorm (C = 64)
    /// and LayerNorm (C = 96), forward and backward, outputs of at least 8 MiB.
    /// </summary>
    [Theory, MemberData(nameof(Images.Names), MemberType = typeof(Images))]
    public void OutputsAreTheSameBitsAtAnyAddress(string isa)
    {
        var lib = Images.ByIsa[isa];
        const BnDType t = BnDType.F32;
        var bn = Problem.Create(t, BnLayout.NHWC, 9, 64, 60, 70, seed: 91, affine: true);
        var ln = Problem.Create(t, BnLayout.NHWC, 9, 96, 60, 70, seed: 92, affine: true);
        long[]? bnAligned = null, lnAligned = null;
        foreach (var (misaligned, offset) in new[] { (false, 0), (false, 16), (true, 0) })
        {
            long[] bnBits = Bits(BatchNormOutputs(lib, bn, misaligned, offset)), lnBits = Bits(LayerNormOutputs(lib, ln, misaligned, offset));
            bnAligned ??= bnBits;
            lnAligned ??= lnBits;
            Assert.True(bnAligned.AsSpan().SequenceEqual(bnBits), $"{isa} BatchNorm y and dx, misaligned={misaligned} offset={offset}");
            Assert.True(lnAligned.AsSpan().SequenceEqual(lnBits), $"{isa} LayerNorm y and dx, misaligned={misaligned} offset={offset}");
        }

        static long[] Bits(double[] values) => Array.ConvertAll(values, BitConverter.DoubleToInt64Bits);

        static double[] BatchNormOutputs(BnLibrary lib, Problem p, bool misaligned, int offset)
        {
            using var x = NativeTensor.Of(t, p.X, misaligned, offset);
            using var y = new NativeTensor(t, p.Count, misaligned, offset);
            using var dy = NativeTensor.Of(t, p.Dy, misaligned, offset);
            using var dx = new NativeTensor(t, p.Count, misaligned, offset);
            using var gamma = NativeTensor.Of(t, p.Gamma!);
            using var beta = NativeTensor.Of(t, p.Beta!);
            using var mean = new NativeTensor(t, p.Channels);
            using var invstd = new NativeTensor(t, p.Channels);
            Bn.Ok(lib, Bn.ForwardTraining(lib, p.Desc, x, y, gamma, beta, null, null, p.Momentum, p.Eps, mean, invstd));
            Bn.Ok(lib, Bn.Backward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, null, null));
            return [.. y.Read(), .. dx.Read()];
        }

        static double[] LayerNormOutputs(BnLibrary lib, Problem p, bool misaligned, int offset)
        {
            int positions = (int)ReferenceNormalizations.Positions(p.Desc);
            using var x = NativeTensor.Of(t, p.X, misaligned, offset);
            using var y = new NativeTensor(t, p.Count, misaligned, offset);
            using var dy = NativeTensor.Of(t, p.Dy, misaligned, offset);
            using var dx = new NativeTensor(t, p.Count, misaligned, offset);
            using var gamma = NativeTensor.Of(t, p.Gamma!);
            using var beta = NativeTensor.Of(t, p.Beta!);
            using var mean = new NativeTensor(t, positions);
            using var invstd = new NativeTensor(t, positions);
            Bn.Ok(lib, Bn.LayerNormForward(lib, p.Desc, x, y, gamma, beta, p.Eps, mean, invstd));
            Bn.Ok(lib, Bn.LayerNormBackward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, null, null));
            return [.. y.Read(), .. dx.Read()];
        }
    }

    [Fact]
    public void EveryImageThisCpuRunsIsTestedAndNamesItself()
    {
        Assert.Contains("vector128", Images.ByIsa.Keys);
        Assert.Contains("scalar", Images.ByIsa.Keys);
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported)
            Assert.Contains("avx512", Images.ByIsa.Keys);
        string header = System.IO.File.ReadAllText(System.IO.Path.Combine(Images.RepositoryRoot, "bindings", "c", "include", "bnnative.h"));
        string Macro(string name) => System.Text.RegularExpressions.Regex.Match(header, $@"#define {name} (\d+)").Groups[1].Value;
        string version = $"{Macro("BN_VERSION_MAJOR")}.{Macro("BN_VERSION_MINOR")}.{Macro("BN_VERSION_PATCH")}";
        foreach (var (isa, lib) in Images.ByIsa)
        {
            Assert.Equal(isa, lib.Isa);
            Assert.Equal(version, lib.Version);
        }
    }
}
