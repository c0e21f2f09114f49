using System.Linq;
using System.Threading.Tasks;
using BnNative.Interop;
using Xunit;

namespace BnNative.Tests;

/// <summary>SPEC §3: every function is thread-safe; calls on distinct buffers may run concurrently.</summary>
public class ConcurrencyTests
{
    [Theory, MemberData(nameof(Images.Names), MemberType = typeof(Images))]
    public void ConcurrentCallsGiveTheSameResultsAsSerialOnes(string isa)
    {
        var lib = Images.ByIsa[isa];
        var problems = Enumerable.Range(0, 8).Select(i => Problem.Create(i % 2 == 0 ? BnDType.F32 : BnDType.F64,
            (BnLayout)(i % 3), 4 + i, 17 + 3 * i, 9, 11, seed: 70 + i, affine: true)).ToArray();
        string[] serial = problems.Select(p => Run(lib, p)).ToArray();
        for (int round = 0; round < 3; round++)
        {
            var concurrent = new string[problems.Length];
            Parallel.For(0, problems.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => concurrent[i] = Run(lib, problems[i]));
            Assert.Equal(serial, concurrent);
        }
    }

    /// <summary>Forward training then backward, LayerNorm forward then backward: every output, hashed.</summary>
    private static string Run(BnLibrary lib, Problem p)
    {
        var t = p.DType;
        int positions = (int)ReferenceNormalizations.Positions(p.Desc);
        using var x = NativeTensor.Of(t, p.X);
        using var dy = NativeTensor.Of(t, p.Dy);
        using var y = new NativeTensor(t, p.Count);
        using var dx = new NativeTensor(t, p.Count);
        using var gamma = NativeTensor.Of(t, p.Gamma!);
        using var beta = NativeTensor.Of(t, p.Beta!);
        using var runningMean = NativeTensor.Of(t, p.RunningMean);
        using var runningVar = NativeTensor.Of(t, p.RunningVar);
        using var mean = new NativeTensor(t, p.Channels);
        using var invstd = new NativeTensor(t, p.Channels);
        using var dgamma = new NativeTensor(t, p.Channels);
        using var dbeta = new NativeTensor(t, p.Channels);
        using var lnMean = new NativeTensor(t, positions);
        using var lnInvstd = new NativeTensor(t, positions);
        var digest = new OutputDigest();
        Bn.Ok(lib, Bn.ForwardTraining(lib, p.Desc, x, y, gamma, beta, runningMean, runningVar, p.Momentum, p.Eps, mean, invstd));
        Bn.Ok(lib, Bn.Backward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, dgamma, dbeta));
        digest.Add(y, runningMean, runningVar, dx, dgamma, dbeta);
        Bn.Ok(lib, Bn.LayerNormForward(lib, p.Desc, x, y, gamma, beta, p.Eps, lnMean, lnInvstd));
        Bn.Ok(lib, Bn.LayerNormBackward(lib, p.Desc, x, dy, dx, gamma, lnMean, lnInvstd, dgamma, dbeta));
        digest.Add(y, lnMean, lnInvstd, dx, dgamma, dbeta);
        return digest.ToString();
    }
}
