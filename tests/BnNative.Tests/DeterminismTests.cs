using BnNative.Interop;
using Xunit;

namespace BnNative.Tests;

/// <summary>SPEC §3: for one image, results are bitwise identical whatever the thread count.</summary>
public class DeterminismTests
{
    [Theory, MemberData(nameof(Images.Names), MemberType = typeof(Images))]
    public void EveryOperationIsBitwiseTheSameForAnyThreadCount(string isa)
    {
        var lib = Images.ByIsa[isa];
        // Shapes large enough to be split into many tasks, with tails in every direction.
        var problems = new[]
        {
            Problem.Create(BnDType.F32, BnLayout.NHWC, 16, 37, 31, 29, seed: 1, affine: true),
            Problem.Create(BnDType.F32, BnLayout.NCHW, 6, 37, 31, 29, seed: 2, affine: true),
            Problem.Create(BnDType.F32, BnLayout.NCHW, 70, 19, 7, 7, seed: 5, affine: true), // short slabs: a group's spans as rows
            Problem.Create(BnDType.F64, BnLayout.NC, 3000, 45, 1, 1, seed: 3, affine: false),
            Problem.Create(BnDType.F32, BnLayout.NC, 300, 2500, 1, 1, seed: 4, affine: true),
        };
        SameForAnyThreadCount(lib, isa, problems, Run);
    }

    /// <summary>Runs <paramref name="run"/> on each problem with 1, 2, 3 and 7 threads and asserts the digests agree.</summary>
    internal static void SameForAnyThreadCount(BnLibrary lib, string isa, Problem[] problems, System.Func<BnLibrary, Problem, string> run)
    {
        int saved = lib.NumThreads;
        try
        {
            foreach (var p in problems)
            {
                string? first = null;
                foreach (int threads in new[] { 1, 2, 3, 7 })
                {
                    Assert.Equal(threads, lib.SetNumThreads(threads));
                    string digest = run(lib, p);
                    first ??= digest;
                    Assert.True(first == digest, $"{isa} {p}: {threads} threads differ from 1 thread");
                }
            }
        }
        finally
        {
            lib.SetNumThreads(saved);
        }
    }

    /// <summary>All outputs of the four operations, as bytes.</summary>
    private static string Run(BnLibrary lib, Problem p)
    {
        var t = p.DType;
        using var x = NativeTensor.Of(t, p.X);
        using var dy = NativeTensor.Of(t, p.Dy);
        using var y = new NativeTensor(t, p.Count);
        using var dx = new NativeTensor(t, p.Count);
        using var gamma = p.Gamma == null ? null : NativeTensor.Of(t, p.Gamma);
        using var beta = p.Beta == null ? null : NativeTensor.Of(t, p.Beta);
        using var runningMean = NativeTensor.Of(t, p.RunningMean);
        using var runningVar = NativeTensor.Of(t, p.RunningVar);
        using var mean = new NativeTensor(t, p.Channels);
        using var invstd = new NativeTensor(t, p.Channels);
        using var dgamma = new NativeTensor(t, p.Channels);
        using var dbeta = new NativeTensor(t, p.Channels);
        var digest = new OutputDigest();

        Bn.Ok(lib, Bn.ForwardTraining(lib, p.Desc, x, y, gamma, beta, runningMean, runningVar, p.Momentum, p.Eps, mean, invstd));
        digest.Add(y, mean, invstd, runningMean, runningVar);
        Bn.Ok(lib, Bn.Backward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, dgamma, dbeta));
        digest.Add(dx, dgamma, dbeta);
        Bn.Ok(lib, Bn.ForwardInference(lib, p.Desc, x, y, gamma, beta, runningMean, runningVar, p.Eps));
        digest.Add(y);
        Bn.Ok(lib, Bn.BackwardInference(lib, p.Desc, x, dy, dx, gamma, runningMean, runningVar, p.Eps, dgamma, dbeta));
        digest.Add(dx, dgamma, dbeta);
        return digest.ToString();
    }
}
