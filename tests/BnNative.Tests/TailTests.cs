using System;
using BnNative.Interop;
using Xunit;

namespace BnNative.Tests;

/// <summary>
/// Every run length from 1 to lanes × unroll + 1 of the widest image (16 floats × 4, 8 doubles × 4) along the vector in
/// both loop shapes — BatchNorm channels-last rows of C (groups along the vector; also rows one block wider, which
/// are walked four rows at a time, in tiles of 7 rows and of 11, more than reductions walk in blocks of groups) and NCHW slabs of H·W (members
/// along it), LayerNorm rows of C (members; 7 rows: reductions take four at a time, then one by one) and NCHW tiles of H·W (groups) — on every image, out of place and in place,
/// with every buffer one byte off its natural alignment, against the float64 references.
/// </summary>
public class TailTests
{
    public static TheoryData<string, BnDType> Cases()
    {
        var data = new TheoryData<string, BnDType>();
        foreach (var isa in Images.ByIsa.Keys)
            foreach (var t in new[] { BnDType.F32, BnDType.F64, BnDType.F16 })
                data.Add(isa, t);
        return data;
    }

    private static int LongestRun(BnDType dtype) => (dtype == BnDType.F64 ? 8 : 16) * 4 + 1;

    private static void Near(string what, BnDType dtype, double tol, double[] got, double[] expected, double[] scale)
    {
        if (dtype == BnDType.F16)
            Sixteen.Near(what, dtype, tol, got, expected, scale);
        else
            Accuracy.Near(what, dtype, tol, got, expected, scale);
    }

    [Theory, MemberData(nameof(Cases))]
    public void BatchNormRunsOfEveryLength(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        var parameters = NativeTensor.ParameterType(dtype);
        for (int length = 1; length <= LongestRun(dtype); length++)
            foreach (var p in new[] { Problem.Create(dtype, BnLayout.NC, 7, length, 1, 1, seed: length, affine: true),
                                      Problem.Create(dtype, BnLayout.NCHW, 2, 2, 1, length, seed: length, affine: true),
                                      // rows wider than one register block, walked four rows at a time (7: four, then three one by one)
                                      Problem.Create(dtype, BnLayout.NHWC, 7, LongestRun(dtype) - 1 + length, 1, 1, seed: length, affine: true),
                                      // more rows than sums walk in blocks of groups: their sums too go four rows at a time, then one by one
                                      Problem.Create(dtype, BnLayout.NHWC, 11, LongestRun(dtype) - 1 + length, 1, 1, seed: length, affine: true) })
                foreach (bool inPlace in new[] { false, true })
                {
                    string what = $"{isa} {p} in place={inPlace}";
                    double tolForward = Accuracy.Forward(parameters), tolGradient = Accuracy.Gradient(parameters);
                    var expected = Reference.ForwardTraining(p.Desc, p.X, p.Gamma, p.Beta, p.RunningMean, p.RunningVar, p.Momentum, p.Eps);
                    using var x = NativeTensor.Of(dtype, p.X, misaligned: true);
                    using var separate = new NativeTensor(dtype, p.Count, misaligned: true);
                    var y = inPlace ? x : separate;
                    using var gamma = NativeTensor.Of(parameters, p.Gamma!, misaligned: true);
                    using var beta = NativeTensor.Of(parameters, p.Beta!, misaligned: true);
                    using var mean = new NativeTensor(parameters, p.Channels, misaligned: true);
                    using var invstd = new NativeTensor(parameters, p.Channels, misaligned: true);
                    Bn.Ok(lib, Bn.ForwardTraining(lib, p.Desc, x, y, gamma, beta, null, null, p.Momentum, p.Eps, mean, invstd));
                    Near($"{what} y", dtype, tolForward, y.Read(), expected.Y, expected.YScale);

                    x.Write(p.X);
                    using var dy = NativeTensor.Of(dtype, p.Dy, misaligned: true);
                    var dx = inPlace ? dy : separate;
                    using var dgamma = new NativeTensor(parameters, p.Channels, misaligned: true);
                    using var dbeta = new NativeTensor(parameters, p.Channels, misaligned: true);
                    var gradient = Reference.Backward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
                    Bn.Ok(lib, Bn.Backward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, dgamma, dbeta));
                    Near($"{what} dx", dtype, tolGradient, dx.Read(), gradient.Dx, gradient.DxScale);
                    Accuracy.Near($"{what} dgamma", parameters, tolGradient, dgamma.Read(), gradient.Dgamma, gradient.DgammaScale);
                }
    }

    [Theory, MemberData(nameof(Cases))]
    public void LayerNormRunsOfEveryLength(string isa, BnDType dtype)
    {
        var lib = Images.ByIsa[isa];
        var parameters = NativeTensor.ParameterType(dtype);
        for (int length = 1; length <= LongestRun(dtype); length++)
            foreach (var p in new[] { Problem.Create(dtype, BnLayout.NC, 7, length, 1, 1, seed: length, affine: true),
                                      Problem.Create(dtype, BnLayout.NCHW, 2, 3, 1, length, seed: length, affine: true) })
                foreach (bool inPlace in new[] { false, true })
                {
                    string what = $"{isa} {p} in place={inPlace}";
                    int positions = (int)ReferenceNormalizations.Positions(p.Desc);
                    var expected = ReferenceNormalizations.LayerNormForward(p.Desc, p.X, p.Gamma, p.Beta, p.Eps);
                    using var x = NativeTensor.Of(dtype, p.X, misaligned: true);
                    using var separate = new NativeTensor(dtype, p.Count, misaligned: true);
                    var y = inPlace ? x : separate;
                    using var gamma = NativeTensor.Of(parameters, p.Gamma!, misaligned: true);
                    using var beta = NativeTensor.Of(parameters, p.Beta!, misaligned: true);
                    using var mean = new NativeTensor(parameters, positions, misaligned: true);
                    using var invstd = new NativeTensor(parameters, positions, misaligned: true);
                    Bn.Ok(lib, Bn.LayerNormForward(lib, p.Desc, x, y, gamma, beta, p.Eps, mean, invstd));
                    Near($"{what} y", dtype, Accuracy.Forward(parameters), y.Read(), expected.Y, expected.YScale);

                    x.Write(p.X);
                    using var dy = NativeTensor.Of(dtype, p.Dy, misaligned: true);
                    var dx = inPlace ? dy : separate;
                    using var dgamma = new NativeTensor(parameters, p.Channels, misaligned: true);
                    using var dbeta = new NativeTensor(parameters, p.Channels, misaligned: true);
                    var gradient = ReferenceNormalizations.LayerNormBackward(p.Desc, p.X, p.Dy, p.Gamma, mean.Read(), invstd.Read());
                    Bn.Ok(lib, Bn.LayerNormBackward(lib, p.Desc, x, dy, dx, gamma, mean, invstd, dgamma, dbeta));
                    Near($"{what} dx", dtype, Accuracy.Gradient(parameters), dx.Read(), gradient.Dx, gradient.DxScale);
                    Accuracy.Near($"{what} dgamma", parameters, Accuracy.Gradient(parameters), dgamma.Read(), gradient.Dgamma, gradient.DgammaScale);
                }
    }
}
