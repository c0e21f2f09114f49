using System;
using BnNative.Interop;
using CsCheck;

namespace BnNative.Tests;

/// <summary>A random BatchNorm problem: shape, layout, data (already rounded to the dtype) and parameters.</summary>
public sealed record Problem(BnTensorDesc Desc, double[] X, double[] Dy, double[]? Gamma, double[]? Beta,
    double[] RunningMean, double[] RunningVar, double Momentum, double Eps)
{
    public BnDType DType => (BnDType)Desc.DType;
    public int Count => (int)Desc.Count;
    public int Channels => (int)Desc.C;
    public override string ToString() =>
        $"{(BnLayout)Desc.Layout} {DType} n={Desc.N} c={Desc.C} h={Desc.H} w={Desc.W} gamma={(Gamma == null ? "NULL" : "given")} beta={(Beta == null ? "NULL" : "given")} momentum={Momentum} eps={Eps}";

    /// <summary>Values as the library will see them: rounded to the dtype.</summary>
    public static double[] Round(BnDType t, double[] v) => t switch
    {
        BnDType.F32 => Array.ConvertAll(v, a => (double)(float)a),
        BnDType.F16 or BnDType.BF16 => Array.ConvertAll(v, a => Sixteen.Round(t, a)),
        _ => v,
    };

    public static Problem Create(BnDType dtype, BnLayout layout, long n, long c, long h, long w, int seed, bool affine)
    {
        if (layout == BnLayout.NC)
            (n, h, w) = (n * h * w, 1, 1);
        var desc = new BnTensorDesc(layout, dtype, n, c, h, w);
        var random = new Random(seed);
        double Uniform(double lo, double hi) => lo + (hi - lo) * random.NextDouble();
        var offset = new double[c];
        var spread = new double[c];
        for (int k = 0; k < c; k++)
            (offset[k], spread[k]) = (Uniform(-5, 5), Uniform(0.1, 3));
        var x = new double[desc.Count];
        var dy = new double[desc.Count];
        for (long k = 0; k < c; k++)
            Reference.ForChannel(desc, k, i =>
            {
                x[i] = offset[k] + spread[k] * Uniform(-1, 1);
                dy[i] = Uniform(-1, 1);
            });
        double[] Vector(double lo, double hi)
        {
            var v = new double[c];
            for (int k = 0; k < c; k++) v[k] = Uniform(lo, hi);
            return Round(NativeTensor.ParameterType(dtype), v);
        }
        return new Problem(desc, Round(dtype, x), Round(dtype, dy),
            affine ? Vector(-2, 2) : null, affine ? Vector(-1, 1) : null,
            Vector(-1, 1), Vector(0.5, 2), Uniform(0, 1), Uniform(1e-5, 1e-2));
    }

    /// <summary>Shapes with every kind of vector tail; at least two members per channel (training needs M ≥ 2).</summary>
    /// <summary>
    /// NCHW problems of many short slabs (32–70 samples of at most 64 values), which BatchNorm reduces a group's span of
    /// each sample at a time (Statistics.ShortRuns), in one or two chunks of samples.
    /// </summary>
    public static Gen<Problem> ManyShortSlabs(BnDType dtype) =>
        from n in CsCheck.Gen.Int[32, 70]
        from c in CsCheck.Gen.Int[1, 24]
        from h in CsCheck.Gen.Int[1, 8]
        from w in CsCheck.Gen.Int[1, 8]
        from seed in CsCheck.Gen.Int
        from affine in CsCheck.Gen.Bool
        select Create(dtype, BnLayout.NCHW, n, c, h, w, seed, affine);

    public static Gen<Problem> Gen(BnDType dtype, int maxChannels = 40) =>
        from layout in CsCheck.Gen.Int[0, 2]
        from n in CsCheck.Gen.Int[1, 4]
        from c in CsCheck.Gen.Int[1, maxChannels]
        from h in CsCheck.Gen.Int[1, 5]
        from w in CsCheck.Gen.Int[2, 9]
        from seed in CsCheck.Gen.Int
        from affine in CsCheck.Gen.Bool
        select Create(dtype, (BnLayout)layout, n, c, h, w, seed, affine);
}
