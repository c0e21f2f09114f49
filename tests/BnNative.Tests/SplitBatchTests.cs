using System;
using System.Collections.Generic;
using System.Linq;
using BnNative.Interop;
using CsCheck;
using Xunit;

namespace BnNative.Tests;

/// <summary>
/// Batch Normalization and Batch Renormalization split across parts of a batch (docs/contract.md §2.4): partial
/// statistics of every part, merged; each part's forward with the merged statistics; partial gradient sums, and each
/// part's backward with all of them — against the float64 reference over the whole batch, on every image.
/// </summary>
public unsafe class SplitBatchTests
{
    public static TheoryData<string, BnDType> Cases() => ReferenceTests.Cases();

    /// <summary>A problem and cut points along N: part k holds samples [Cuts[k], Cuts[k + 1]).</summary>
    private static Gen<(Problem P, int[] Cuts)> SplitProblems(BnDType t) =>
        from p in Problem.Gen(t)
        from parts in Gen.Int[1, (int)Math.Min(p.Desc.N, 4)]
        from seed in Gen.Int
        select (p, Cuts(p.Desc.N, parts, seed));

    private static int[] Cuts(long n, int parts, int seed)
    {
        var random = new Random(seed);
        var inner = Enumerable.Range(1, (int)n - 1).OrderBy(_ => random.Next()).Take(parts - 1);
        return new[] { 0 }.Concat(inner).Append((int)n).Order().ToArray();
    }

    /// <summary>The parts of a tensor as separate buffers (a cut along N is a contiguous slice in every layout).</summary>
    private sealed class Parts : IDisposable
    {
        public readonly BnTensorDesc[] Descs;
        public readonly NativeTensor[] X, Dy;
        private readonly int[] _offsets;

        public Parts(Problem p, int[] cuts)
        {
            long perSample = p.Count / p.Desc.N;
            int k = cuts.Length - 1;
            Descs = new BnTensorDesc[k];
            X = new NativeTensor[k];
            Dy = new NativeTensor[k];
            _offsets = new int[k + 1];
            for (int i = 0; i < k; i++)
            {
                var d = p.Desc;
                Descs[i] = new BnTensorDesc((BnLayout)d.Layout, (BnDType)d.DType, cuts[i + 1] - cuts[i], d.C, d.H, d.W);
                _offsets[i] = (int)(cuts[i] * perSample);
                _offsets[i + 1] = (int)(cuts[i + 1] * perSample);
                X[i] = NativeTensor.Of(p.DType, p.X[_offsets[i].._offsets[i + 1]]);
                Dy[i] = NativeTensor.Of(p.DType, p.Dy[_offsets[i].._offsets[i + 1]]);
            }
        }

        public int Count => Descs.Length;

        /// <summary>Fresh outputs, one per part, read back as one tensor.</summary>
        public NativeTensor[] Outputs(BnDType t) => Descs.Select(d => new NativeTensor(t, (int)d.Count)).ToArray();

        public static double[] Joined(NativeTensor[] parts) => parts.SelectMany(part => part.Read()).ToArray();

        public void Dispose()
        {
            foreach (var t in X.Concat(Dy)) t.Dispose();
        }
    }

    private static void Dispose(IEnumerable<NativeTensor?> tensors)
    {
        foreach (var t in tensors) t?.Dispose();
    }

    /// <summary>Every part's partial (bn_batch_norm_partial_statistics), one after another.</summary>
    private static NativeTensor PartialStatistics(BnLibrary lib, Parts parts, int channels)
    {
        var all = new List<double>();
        foreach (var (desc, x) in parts.Descs.Zip(parts.X))
        {
            using var partial = NativeTensor.Filled(BnDType.F64, 2 * channels + 1, 1e3); // the call must write, not add to, every value
            Bn.Ok(lib, lib.BatchNormPartialStatistics(&desc, x.Pointer, partial.Pointer));
            all.AddRange(partial.Read());
        }
        return NativeTensor.Of(BnDType.F64, all.ToArray());
    }

    /// <summary>Every part's partial gradient sums about <paramref name="mean"/>, one after another.</summary>
    private static NativeTensor PartialSums(BnLibrary lib, Parts parts, int channels, NativeTensor mean)
    {
        var all = new List<double>();
        for (int i = 0; i < parts.Count; i++)
        {
            var desc = parts.Descs[i];
            using var partial = NativeTensor.Filled(BnDType.F64, 2 * channels + 1, 1e3); // the call must write, not add to, every value
            Bn.Ok(lib, lib.BatchNormBackwardPartialSums(&desc, parts.X[i].Pointer, parts.Dy[i].Pointer, mean.Pointer, partial.Pointer));
            all.AddRange(partial.Read());
        }
        return NativeTensor.Of(BnDType.F64, all.ToArray());
    }

    [Theory, MemberData(nameof(Cases))]
    public void SplitBatchNormEqualsTheReferenceOverTheWholeBatch(string isa, BnDType dtype) =>
        SplitProblems(dtype).Sample(sample => CheckSplitBatchNorm(Images.ByIsa[isa], dtype, sample.P, sample.Cuts), iter: 30);

    /// <summary>
    /// NCHW parts whose slabs are long enough for the partial statistics, partial sums and dx to take groups of adjacent
    /// channels (Geometry.AdjacentChannels: 18 channels of 1,100 values are groups of two), which the generated shapes are
    /// too small for.
    /// </summary>
    [Theory, MemberData(nameof(Cases))]
    public void SplitBatchNormOfGroupedChannelsEqualsTheReference(string isa, BnDType dtype)
    {
        var desc = new BnTensorDesc(BnLayout.NCHW, dtype, 5, 18, 1, 1100);
        var random = new Random(5);
        double[] Values(double scale, double offset) => Enumerable.Range(0, (int)desc.Count).Select(_ => offset + scale * (random.NextDouble() - 0.5)).ToArray();
        var gamma = Enumerable.Range(0, 18).Select(k => 0.5 + 0.1 * k).ToArray();
        var beta = Enumerable.Range(0, 18).Select(k => 0.05 * k - 0.3).ToArray();
        var p = new Problem(desc, Values(4, 1.5), Values(1, 0), gamma, beta, new double[18], Enumerable.Repeat(1.0, 18).ToArray(), 0.1, 1e-5);
        CheckSplitBatchNorm(Images.ByIsa[isa], dtype, p, new[] { 0, 2, 5 });
    }

    /// <summary>
    /// The split path on parts of <paramref name="p"/> cut at <paramref name="cuts"/> — partial statistics, their merge, the
    /// forward with them, partial sums, the backward with them — against the reference over the whole batch.
    /// </summary>
    private static void CheckSplitBatchNorm(BnLibrary lib, BnDType dtype, Problem p, int[] cuts)
    {
        var pt = NativeTensor.ParameterType(dtype);
        using var parts = new Parts(p, cuts);
        using var gamma = p.Gamma == null ? null : NativeTensor.Of(pt, p.Gamma);
        using var beta = p.Beta == null ? null : NativeTensor.Of(pt, p.Beta);
        using var runningMean = NativeTensor.Of(pt, p.RunningMean);
        using var runningVar = NativeTensor.Of(pt, p.RunningVar);
        using var mean = new NativeTensor(pt, p.Channels);
        using var invstd = new NativeTensor(pt, p.Channels);
        using var partials = PartialStatistics(lib, parts, p.Channels);
        Bn.Ok(lib, lib.BatchNormMergeStatistics((int)dtype, p.Channels, parts.Count, partials.Pointer, runningMean.Pointer, runningVar.Pointer,
            p.Momentum, p.Eps, mean.Pointer, invstd.Pointer));
        var y = parts.Outputs(dtype);
        for (int i = 0; i < parts.Count; i++)
        {
            var desc = parts.Descs[i];
            Bn.Ok(lib, lib.BatchNormForwardWithStatistics(&desc, parts.X[i].Pointer, y[i].Pointer, NativeTensor.Ptr(gamma), NativeTensor.Ptr(beta),
                mean.Pointer, invstd.Pointer));
        }
        var expected = Reference.ForwardTraining(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps);
        double tol = Accuracy.Forward(dtype);
        Accuracy.Near("y", dtype, tol, Parts.Joined(y), expected.Y, expected.YScale);
        Accuracy.Near("mean", dtype, tol, mean.Read(), expected.Mean, expected.MeanScale);
        Accuracy.Relative("invstd", tol, invstd.Read(), expected.Invstd);
        Accuracy.Near("running_mean", dtype, tol, runningMean.Read(), expected.RunningMean, expected.RunningMeanScale);
        Accuracy.Relative("running_var", tol, runningVar.Read(), expected.RunningVar);

        using var sums = PartialSums(lib, parts, p.Channels, mean);
        var dx = parts.Outputs(dtype);
        var dgamma = Enumerable.Range(0, parts.Count).Select(_ => new NativeTensor(pt, p.Channels)).ToArray();
        var dbeta = Enumerable.Range(0, parts.Count).Select(_ => new NativeTensor(pt, p.Channels)).ToArray();
        for (int i = 0; i < parts.Count; i++)
        {
            var desc = parts.Descs[i];
            Bn.Ok(lib, lib.BatchNormBackwardWithSums(&desc, parts.X[i].Pointer, parts.Dy[i].Pointer, dx[i].Pointer, NativeTensor.Ptr(gamma),
                mean.Pointer, invstd.Pointer, parts.Count, sums.Pointer, dgamma[i].Pointer, dbeta[i].Pointer));
        }
        var gradient = Reference.Backward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
        tol = Accuracy.Gradient(dtype);
        Accuracy.Near("dx", dtype, tol, Parts.Joined(dx), gradient.Dx, gradient.DxScale);
        Accuracy.Near("dgamma", dtype, tol, dgamma[0].Read(), gradient.Dgamma, gradient.DgammaScale);
        Accuracy.Near("dbeta", dtype, tol, dbeta[0].Read(), gradient.Dbeta, gradient.DbetaScale);
        // Every part computes the whole batch's parameter gradients from the same sums: bitwise the same.
        foreach (var other in dgamma.Skip(1).Zip(dbeta.Skip(1)))
        {
            Assert.Equal(dgamma[0].Bytes(), other.First.Bytes());
            Assert.Equal(dbeta[0].Bytes(), other.Second.Bytes());
        }
        Dispose(y.Concat(dx).Concat(dgamma).Concat(dbeta));
    }

    [Theory, MemberData(nameof(Cases))]
    public void SplitBatchRenormEqualsTheReferenceOverTheWholeBatch(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        var pt = NativeTensor.ParameterType(dtype);
        var problems = from s in SplitProblems(dtype) from rmax in Gen.Double[1, 3] from dmax in Gen.Double[0, 5] select (s.P, s.Cuts, rmax, dmax);
        problems.Sample(sample =>
        {
            var (p, cuts, rmax, dmax) = sample;
            using var parts = new Parts(p, cuts);
            using var gamma = p.Gamma == null ? null : NativeTensor.Of(pt, p.Gamma);
            using var beta = p.Beta == null ? null : NativeTensor.Of(pt, p.Beta);
            using var runningMean = NativeTensor.Of(pt, p.RunningMean);
            using var runningVar = NativeTensor.Of(pt, p.RunningVar);
            using var mean = new NativeTensor(pt, p.Channels);
            using var invstd = new NativeTensor(pt, p.Channels);
            using var r = new NativeTensor(pt, p.Channels);
            using var d = new NativeTensor(pt, p.Channels);
            using var partials = PartialStatistics(lib, parts, p.Channels);
            Bn.Ok(lib, lib.BatchRenormMergeStatistics((int)dtype, p.Channels, parts.Count, partials.Pointer, runningMean.Pointer, runningVar.Pointer,
                p.Momentum, p.Eps, rmax, dmax, mean.Pointer, invstd.Pointer, r.Pointer, d.Pointer));
            var y = parts.Outputs(dtype);
            for (int i = 0; i < parts.Count; i++)
            {
                var desc = parts.Descs[i];
                Bn.Ok(lib, lib.BatchRenormForwardWithStatistics(&desc, parts.X[i].Pointer, y[i].Pointer, NativeTensor.Ptr(gamma), NativeTensor.Ptr(beta),
                    mean.Pointer, invstd.Pointer, r.Pointer, d.Pointer));
            }
            var expected = ReferenceNormalizations.RenormForward(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps, rmax, dmax);
            double tol = Accuracy.Forward(dtype);
            // r and d are given to the forward rounded to the parameter type: y is judged with their rounding counted in s.
            Accuracy.Near("y", dtype, tol, Parts.Joined(y), expected.Y, expected.YScale);
            Accuracy.Relative("invstd", tol, invstd.Read(), expected.Invstd);
            Accuracy.Near("r", dtype, tol, r.Read(), expected.R);
            Accuracy.Near("d", dtype, 10 * tol, d.Read(), expected.D, Array.ConvertAll(expected.D, v => Math.Abs(v) + 1));
            Accuracy.Relative("running_var", tol, runningVar.Read(), expected.RunningVar);

            using var sums = PartialSums(lib, parts, p.Channels, mean);
            var dx = parts.Outputs(dtype);
            using var dgamma = new NativeTensor(pt, p.Channels);
            using var dbeta = new NativeTensor(pt, p.Channels);
            for (int i = 0; i < parts.Count; i++)
            {
                var desc = parts.Descs[i];
                Bn.Ok(lib, lib.BatchRenormBackwardWithSums(&desc, parts.X[i].Pointer, parts.Dy[i].Pointer, dx[i].Pointer, NativeTensor.Ptr(gamma),
                    mean.Pointer, invstd.Pointer, r.Pointer, d.Pointer, parts.Count, sums.Pointer, dgamma.Pointer, dbeta.Pointer));
            }
            var gradient = ReferenceNormalizations.RenormBackward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read(), r.Read(), d.Read());
            tol = Accuracy.Gradient(dtype);
            Accuracy.Near("dx", dtype, tol, Parts.Joined(dx), gradient.Dx, gradient.DxScale);
            Accuracy.Near("dgamma", dtype, tol, dgamma.Read(), gradient.Dgamma, gradient.DgammaScale);
            Accuracy.Near("dbeta", dtype, tol, dbeta.Read(), gradient.Dbeta, gradient.DbetaScale);
            Dispose(y.Concat(dx));
        }, iter: 30);
    }

    [Theory, MemberData(nameof(Images.Names), MemberType = typeof(Images))]
    public void OnePartIsTheFusedCallAndEmptyPartsAreSkipped(string isa)
    {
        var lib = Images.ByIsa[isa];
        const BnDType t = BnDType.F64;
        Problem.Gen(t).Sample(p =>
        {
            var desc = p.Desc;
            using var x = NativeTensor.Of(t, p.X);
            using var fusedY = new NativeTensor(t, p.Count);
            using var fusedMean = new NativeTensor(t, p.Channels);
            using var fusedInvstd = new NativeTensor(t, p.Channels);
            using var fusedRunningMean = NativeTensor.Of(t, p.RunningMean);
            using var fusedRunningVar = NativeTensor.Of(t, p.RunningVar);
            Bn.Ok(lib, Bn.ForwardTraining(lib, desc, x, fusedY, null, null, fusedRunningMean, fusedRunningVar, p.Momentum, p.Eps, fusedMean, fusedInvstd));

            // The part's partial between two empty parts whose mean and M2 are NaN: skipped, not merged.
            using var partial = new NativeTensor(t, 2 * p.Channels + 1);
            Bn.Ok(lib, lib.BatchNormPartialStatistics(&desc, x.Pointer, partial.Pointer));
            var empty = Enumerable.Repeat(double.NaN, 2 * p.Channels + 1).ToArray();
            empty[0] = 0;
            using var partials = NativeTensor.Of(t, empty.Concat(partial.Read()).Concat(empty).ToArray());
            using var mean = new NativeTensor(t, p.Channels);
            using var invstd = new NativeTensor(t, p.Channels);
            using var runningMean = NativeTensor.Of(t, p.RunningMean);
            using var runningVar = NativeTensor.Of(t, p.RunningVar);
            Bn.Ok(lib, lib.BatchNormMergeStatistics((int)t, p.Channels, 3, partials.Pointer, runningMean.Pointer, runningVar.Pointer, p.Momentum, p.Eps,
                mean.Pointer, invstd.Pointer));
            // The partial holds M2 = var·M, which the merge divides by M again: within an ulp or two of the fused call's.
            var expected = Reference.ForwardTraining(desc, p.X, null, null, p.RunningMean, p.RunningVar, p.Momentum, p.Eps);
            Accuracy.Near("mean", t, 1e-14, mean.Read(), fusedMean.Read(), expected.MeanScale);
            Accuracy.Relative("invstd", 1e-14, invstd.Read(), fusedInvstd.Read());
            Accuracy.Near("running_mean", t, 1e-14, runningMean.Read(), fusedRunningMean.Read(), expected.RunningMeanScale);
            Accuracy.Relative("running_var", 1e-14, runningVar.Read(), fusedRunningVar.Read());
            using var y = new NativeTensor(t, p.Count);
            Bn.Ok(lib, lib.BatchNormForwardWithStatistics(&desc, x.Pointer, y.Pointer, null, null, mean.Pointer, invstd.Pointer));
            Accuracy.Near("y", t, 1e-14, y.Read(), fusedY.Read(), expected.YScale);
        }, iter: 20);
    }

    [Fact]
    public void VeryUnequalPartsKeepTheMeanExact()
    {
        // One 1.0 and 10⁵ zeros cut 1 | 10⁵: the mean is 1/(10⁵ + 1). A pairwise merge, mean_a + (mean_b − mean_a)·n_b/n,
        // cancels to 5e-12 relative here; SPEC §4 allows 1e-12 of mean(|x|), which is the mean itself.
        var lib = Images.Best;
        const BnDType t = BnDType.F64;
        const int zeros = 100_000;
        var one = new BnTensorDesc(BnLayout.NC, t, 1, 1);
        var rest = new BnTensorDesc(BnLayout.NC, t, zeros, 1);
        using var x1 = NativeTensor.Of(t, new[] { 1.0 });
        using var x2 = new NativeTensor(t, zeros);
        x2.Write(new double[zeros]);
        using var partials = new NativeTensor(t, 6);
        Bn.Ok(lib, lib.BatchNormPartialStatistics(&one, x1.Pointer, partials.Pointer));
        Bn.Ok(lib, lib.BatchNormPartialStatistics(&rest, x2.Pointer, (double*)partials.Pointer + 3));
        using var mean = new NativeTensor(t, 1);
        using var invstd = new NativeTensor(t, 1);
        Bn.Ok(lib, lib.BatchNormMergeStatistics((int)t, 1, 2, partials.Pointer, null, null, 0.1, 1e-5, mean.Pointer, invstd.Pointer));
        const double n = zeros + 1;
        Accuracy.Relative("mean", 1e-15, mean.Read(), new[] { 1 / n });
        Accuracy.Relative("invstd", 1e-14, invstd.Read(), new[] { 1 / Math.Sqrt((1 - 1 / n) / n + 1e-5) });
    }

    [Fact]
    public void A_LargeOffsetInF64MeetsTheDocumentedBound()
    {
        // Values 1e16 + (0 or 272) in steps of 2: the parts' means (1e16 + 17 and 1e16 + 0 here) are known to half an ulp
        // (1) each, so the between-part term of the variance is off by up to 2⁻⁵²·|mean|/σ relative (contract §2.4).
        var lib = Images.Best;
        const BnDType t = BnDType.F64;
        const double offset = 10843961446891520;
        var values = new double[20];
        Array.Fill(values, offset);
        values[0] = offset + 272;
        var p = new Problem(new BnTensorDesc(BnLayout.NC, t, 20, 1), values, new double[20], null, null, new[] { 0.0 }, new[] { 1.0 }, 0.1, 1e-5);
        using var parts = new Parts(p, new[] { 0, 16, 20 });
        using var partials = PartialStatistics(lib, parts, 1);
        using var mean = new NativeTensor(t, 1);
        using var invstd = new NativeTensor(t, 1);
        Bn.Ok(lib, lib.BatchNormMergeStatistics((int)t, 1, 2, partials.Pointer, null, null, 0.1, 1e-5, mean.Pointer, invstd.Pointer));
        var expected = Reference.ForwardTraining(p.Desc, values, null, null, p.RunningMean, p.RunningVar, 0.1, 1e-5);
        double sigma = 1 / expected.Invstd[0], bound = Math.ScaleB(1, -53) * (offset + 272) / sigma;
        Accuracy.Relative("invstd", bound, invstd.Read(), expected.Invstd);
        Accuracy.Near("mean", t, 1e-15, mean.Read(), expected.Mean, expected.MeanScale);
    }

    [Fact]
    public void ResultsAreBitwiseTheSameForAnyThreadCount()
    {
        var lib = Images.Best;
        const BnDType t = BnDType.F32;
        var p = Problem.Create(t, BnLayout.NHWC, 12, 67, 9, 31, seed: 5, affine: true);
        using var parts = new Parts(p, new[] { 0, 5, 12 });
        byte[] Run(int threads)
        {
            lib.SetNumThreads(threads);
            using var partials = PartialStatistics(lib, parts, p.Channels);
            using var mean = new NativeTensor(t, p.Channels);
            using var invstd = new NativeTensor(t, p.Channels);
            Bn.Ok(lib, lib.BatchNormMergeStatistics((int)t, p.Channels, 2, partials.Pointer, null, null, 0.1, 1e-5, mean.Pointer, invstd.Pointer));
            using var sums = PartialSums(lib, parts, p.Channels, mean);
            var desc = parts.Descs[1];
            using var y = new NativeTensor(t, (int)desc.Count);
            using var dx = new NativeTensor(t, (int)desc.Count);
            Bn.Ok(lib, lib.BatchNormForwardWithStatistics(&desc, parts.X[1].Pointer, y.Pointer, null, null, mean.Pointer, invstd.Pointer));
            Bn.Ok(lib, lib.BatchNormBackwardWithSums(&desc, parts.X[1].Pointer, parts.Dy[1].Pointer, dx.Pointer, null, mean.Pointer, invstd.Pointer,
                2, sums.Pointer, null, null));
            return partials.Bytes().Concat(sums.Bytes()).Concat(y.Bytes()).Concat(dx.Bytes()).ToArray();
        }
        int before = lib.GetNumThreads();
        try
        {
            var one = Run(1);
            foreach (int threads in new[] { 2, 3, 7 })
                Assert.Equal(one, Run(threads));
        }
        finally
        {
            lib.SetNumThreads(before);
        }
    }

    [Fact]
    public void BadArgumentsAreReportedInOrderAndNothingIsWritten()
    {
        var lib = Images.Best;
        const BnDType t = BnDType.F32;
        const int c = 3;
        var desc = new BnTensorDesc(BnLayout.NC, t, 4, c);
        using var x = NativeTensor.Filled(t, 12, 1.5);
        using var partial = NativeTensor.Filled(BnDType.F64, 2 * c + 1, 7);
        using var mean = NativeTensor.Filled(t, c, 7);
        using var invstd = NativeTensor.Filled(t, c, 7);
        using var y = NativeTensor.Filled(t, 12, 7);
        var untouched = new[] { partial.Bytes(), mean.Bytes(), invstd.Bytes(), y.Bytes() };
        void Expect(BnStatus expected, BnStatus got, string mentions)
        {
            Assert.Equal(expected, got);
            Assert.Contains(mentions, lib.LastErrorMessage);
            Assert.Equal(untouched, new[] { partial.Bytes(), mean.Bytes(), invstd.Bytes(), y.Bytes() });
        }

        Expect(BnStatus.NullPointer, lib.BatchNormPartialStatistics(&desc, x.Pointer, null), "partial is NULL");
        var badDesc = desc with { DType = 9 };
        Expect(BnStatus.Unsupported, lib.BatchNormPartialStatistics(&badDesc, x.Pointer, partial.Pointer), "dtype 9");

        // partial holds 7 as its count: three parts of 7 values each, read as partials of one channel (stride 3).
        Expect(BnStatus.NullPointer, lib.BatchNormMergeStatistics((int)t, c, 1, partial.Pointer, null, null, 0.1, 1e-5, null, invstd.Pointer), "mean is NULL");
        Expect(BnStatus.NullPointer, lib.BatchNormMergeStatistics((int)t, c, 1, partial.Pointer, mean.Pointer, null, 0.1, 1e-5, mean.Pointer, invstd.Pointer),
            "running_mean and running_var");
        Expect(BnStatus.Unsupported, lib.BatchNormMergeStatistics(4, c, 1, partial.Pointer, null, null, 0.1, 1e-5, mean.Pointer, invstd.Pointer), "dtype 4");
        Expect(BnStatus.BadShape, lib.BatchNormMergeStatistics((int)t, c, 0, partial.Pointer, null, null, 0.1, 1e-5, mean.Pointer, invstd.Pointer), "parts=0");
        Expect(BnStatus.BadShape, lib.BatchNormMergeStatistics((int)t, long.MaxValue / 4, 2, partial.Pointer, null, null, 0.1, 1e-5, mean.Pointer, invstd.Pointer),
            "do not fit");
        // The largest K whose K·(2·C + 1) doubles fit in int64 bytes, plus one (C = 1: 3 doubles a partial).
        Expect(BnStatus.BadShape, lib.BatchNormMergeStatistics((int)t, 1, long.MaxValue / 24 + 1, partial.Pointer, null, null, 0.1, 1e-5, mean.Pointer,
            invstd.Pointer), "do not fit");
        Expect(BnStatus.BadArgument, lib.BatchNormMergeStatistics((int)t, c, 1, partial.Pointer, null, null, 0.1, 0, mean.Pointer, invstd.Pointer), "eps");
        using (var running = NativeTensor.Filled(t, c, 1))
            Expect(BnStatus.BadArgument, lib.BatchRenormMergeStatistics((int)t, c, 1, partial.Pointer, running.Pointer, running.Pointer, 0.1, 1e-5, 0.5, 1,
                mean.Pointer, invstd.Pointer, mean.Pointer, invstd.Pointer), "rmax");
        using var negative = NativeTensor.Of(BnDType.F64, new double[] { 3, 0, 0, -1, 0, 0 });
        Expect(BnStatus.BadArgument, lib.BatchNormMergeStatistics((int)t, 1, 2, negative.Pointer, null, null, 0.1, 1e-5, mean.Pointer, invstd.Pointer),
            "partials[1] has count -1");
        using var single = NativeTensor.Of(BnDType.F64, new double[] { 1, 0, 0, 0, 0, 0 });
        Expect(BnStatus.BadArgument, lib.BatchNormMergeStatistics((int)t, 1, 2, single.Pointer, null, null, 0.1, 1e-5, mean.Pointer, invstd.Pointer),
            "at least 2");

        Expect(BnStatus.NullPointer, lib.BatchNormForwardWithStatistics(&desc, x.Pointer, y.Pointer, null, null, mean.Pointer, null), "invstd is NULL");
        Expect(BnStatus.NullPointer, lib.BatchNormBackwardPartialSums(&desc, x.Pointer, x.Pointer, null, partial.Pointer), "mean is NULL");
        using var empty = NativeTensor.Of(BnDType.F64, new double[2 * c + 1]);
        Expect(BnStatus.BadArgument, lib.BatchNormBackwardWithSums(&desc, x.Pointer, x.Pointer, y.Pointer, null, mean.Pointer, invstd.Pointer, 1, empty.Pointer,
            null, null), "at least 1");
        Expect(BnStatus.BadShape, lib.BatchNormBackwardWithSums(&desc, x.Pointer, x.Pointer, y.Pointer, null, mean.Pointer, invstd.Pointer, 0, partial.Pointer,
            null, null), "parts=0");
    }
}
