using System;
using BnNative.Interop;
using CsCheck;
using Xunit;

namespace BnNative.Tests;

/// <summary>Properties that hold whatever the data: they need no reference implementation.</summary>
public class InvarianceTests
{
    private static double[] TrainingY(BnLibrary lib, BnTensorDesc d, double[] xv, double[]? gammaV, double[]? betaV, double eps)
    {
        var t = (BnDType)d.DType;
        using var x = NativeTensor.Of(t, xv);
        using var y = new NativeTensor(t, xv.Length);
        using var gamma = gammaV == null ? null : NativeTensor.Of(t, gammaV);
        using var beta = betaV == null ? null : NativeTensor.Of(t, betaV);
        Bn.Ok(lib, Bn.ForwardTraining(lib, d, x, y, gamma, beta, null, null, 0.1, eps, null, null));
        return y.Read();
    }

    [Fact]
    public void BatchNormIgnoresAPositiveScaleAndAnOffsetOfTheInput()
    {
        var lib = Images.Best;
        var gen = from p in Problem.Gen(BnDType.F64)
                  from a in Gen.Double[0.01, 100]
                  from b in Gen.Double[-1000, 1000]
                  select (p, a, b);
        gen.Sample(c =>
        {
            var (p, a, b) = c;
            // eps scales with a² so that the normalization is exactly invariant: BN_eps(x) = BN_{a²eps}(a·x + b).
            var y = TrainingY(lib, p.Desc, p.X, p.Gamma, p.Beta, p.Eps);
            var moved = TrainingY(lib, p.Desc, Array.ConvertAll(p.X, v => a * v + b), p.Gamma, p.Beta, p.Eps * a * a);
            var scale = Reference.ForwardTraining(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, 0.1, p.Eps).YScale;
            Accuracy.Near("BN(a·x + b)", BnDType.F64, 1e-9, moved, y, scale);
        }, iter: 100);
    }

    [Fact]
    public void NchwAndNhwcGiveTheSameNumbersAfterTransposing()
    {
        foreach (var (isa, lib) in Images.ByIsa)
            foreach (var t in new[] { BnDType.F32, BnDType.F64 })
                Problem.Gen(t).Where(p => p.Desc.Layout == (int)BnLayout.NCHW).Sample(p =>
                {
                    var nchw = p.Desc;
                    var nhwc = nchw with { Layout = (int)BnLayout.NHWC };
                    var xt = new double[p.Count];
                    for (long c = 0; c < nchw.C; c++)
                        for (long n = 0; n < nchw.N; n++)
                            for (long s = 0; s < nchw.H * nchw.W; s++)
                                xt[Reference.Offset(nhwc, n, c, s)] = p.X[Reference.Offset(nchw, n, c, s)];
                    var y = TrainingY(lib, nchw, p.X, p.Gamma, p.Beta, p.Eps);
                    var yt = TrainingY(lib, nhwc, xt, p.Gamma, p.Beta, p.Eps);
                    var back = new double[p.Count];
                    for (long c = 0; c < nchw.C; c++)
                        for (long n = 0; n < nchw.N; n++)
                            for (long s = 0; s < nchw.H * nchw.W; s++)
                                back[Reference.Offset(nchw, n, c, s)] = yt[Reference.Offset(nhwc, n, c, s)];
                    var scale = Reference.ForwardTraining(nchw, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, 0.1, p.Eps).YScale;
                    Accuracy.Near($"{isa} NHWC vs NCHW", t, Accuracy.Forward(t), back, y, scale);
                }, iter: 20);
    }
}
