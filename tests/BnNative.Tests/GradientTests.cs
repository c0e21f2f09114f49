using System;
using BnNative.Interop;
using CsCheck;
using Xunit;

namespace BnNative.Tests;

/// <summary>
/// dx, dgamma and dbeta against central finite differences, in float64, of L = Σ w·y for a random w:
/// the gradient of L is what the backward computes with dy = w. The forward differentiated is the
/// library's own F64 forward, so this checks that the two calls are consistent calculus.
/// </summary>
public class GradientTests
{
    private const double Step = 1e-6;

    private static Gen<Problem> Small => Problem.Gen(BnDType.F64, maxChannels: 5).Where(p => p.Count <= 240);

    private static double Loss(Func<double[], double[], double[], double[]> forward, double[] x, double[] gamma, double[] beta, double[] w)
    {
        var y = forward(x, gamma, beta);
        double sum = 0;
        for (int i = 0; i < y.Length; i++) sum += w[i] * y[i];
        return sum;
    }

    /// <summary>Central differences of L with respect to every entry of <paramref name="v"/>.</summary>
    internal static double[] Numeric(Func<double> loss, double[] v)
    {
        var gradient = new double[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            double keep = v[i], h = Step * Math.Max(1, Math.Abs(keep));
            v[i] = keep + h;
            double up = loss();
            v[i] = keep - h;
            double down = loss();
            v[i] = keep;
            gradient[i] = (up - down) / (2 * h);
        }
        return gradient;
    }

    internal static void Close(string what, double[] analytic, double[] numeric)
    {
        for (int i = 0; i < analytic.Length; i++)
            Assert.True(Math.Abs(analytic[i] - numeric[i]) <= 1e-5 * (1 + Math.Abs(numeric[i])),
                $"{what}[{i}]: backward {analytic[i]:R}, finite difference {numeric[i]:R}");
    }

    [Fact]
    public void TrainingBackwardIsTheGradientOfTheTrainingForward()
    {
        var lib = Images.Best;
        Small.Sample(p =>
        {
            var d = p.Desc;
            double[] gamma = p.Gamma ?? new double[p.Channels], beta = p.Beta ?? new double[p.Channels];
            if (p.Gamma == null) Array.Fill(gamma, 1.0);
            double[] Forward(double[] xv, double[] g, double[] b, NativeTensor? mean = null, NativeTensor? invstd = null)
            {
                using var x = NativeTensor.Of(BnDType.F64, xv);
                using var y = new NativeTensor(BnDType.F64, xv.Length);
                using var gt = NativeTensor.Of(BnDType.F64, g);
                using var bt = NativeTensor.Of(BnDType.F64, b);
                Bn.Ok(lib, Bn.ForwardTraining(lib, d, x, y, gt, bt, null, null, 0.1, p.Eps, mean, invstd));
                return y.Read();
            }
            double[] x0 = (double[])p.X.Clone(), w = p.Dy;
            Func<double[], double[], double[], double[]> f = (xv, g, b) => Forward(xv, g, b);

            using var mean = new NativeTensor(BnDType.F64, p.Channels);
            using var invstd = new NativeTensor(BnDType.F64, p.Channels);
            Forward(x0, gamma, beta, mean, invstd);
            using var xt = NativeTensor.Of(BnDType.F64, x0);
            using var dyt = NativeTensor.Of(BnDType.F64, w);
            using var dx = new NativeTensor(BnDType.F64, p.Count);
            using var gt = NativeTensor.Of(BnDType.F64, gamma);
            using var dgamma = new NativeTensor(BnDType.F64, p.Channels);
            using var dbeta = new NativeTensor(BnDType.F64, p.Channels);
            Bn.Ok(lib, Bn.Backward(lib, d, xt, dyt, dx, gt, mean, invstd, dgamma, dbeta));

            Close("dx", dx.Read(), Numeric(() => Loss(f, x0, gamma, beta, w), x0));
            Close("dgamma", dgamma.Read(), Numeric(() => Loss(f, x0, gamma, beta, w), gamma));
            Close("dbeta", dbeta.Read(), Numeric(() => Loss(f, x0, gamma, beta, w), beta));
        }, iter: 25);
    }

    [Fact]
    public void FrozenBackwardIsTheGradientOfTheInferenceForward()
    {
        var lib = Images.Best;
        Small.Sample(p =>
        {
            var d = p.Desc;
            double[] gamma = p.Gamma ?? new double[p.Channels], beta = p.Beta ?? new double[p.Channels];
            if (p.Gamma == null) Array.Fill(gamma, 1.0);
            using var runningMean = NativeTensor.Of(BnDType.F64, p.RunningMean);
            using var runningVar = NativeTensor.Of(BnDType.F64, p.RunningVar);
            Func<double[], double[], double[], double[]> f = (xv, g, b) =>
            {
                using var x = NativeTensor.Of(BnDType.F64, xv);
                using var y = new NativeTensor(BnDType.F64, xv.Length);
                using var gt = NativeTensor.Of(BnDType.F64, g);
                using var bt = NativeTensor.Of(BnDType.F64, b);
                Bn.Ok(lib, Bn.ForwardInference(lib, d, x, y, gt, bt, runningMean, runningVar, p.Eps));
                return y.Read();
            };
            double[] x0 = (double[])p.X.Clone(), w = p.Dy;
            using var xt = NativeTensor.Of(BnDType.F64, x0);
            using var dyt = NativeTensor.Of(BnDType.F64, w);
            using var dx = new NativeTensor(BnDType.F64, p.Count);
            using var gt = NativeTensor.Of(BnDType.F64, gamma);
            using var dgamma = new NativeTensor(BnDType.F64, p.Channels);
            using var dbeta = new NativeTensor(BnDType.F64, p.Channels);
            Bn.Ok(lib, Bn.BackwardInference(lib, d, xt, dyt, dx, gt, runningMean, runningVar, p.Eps, dgamma, dbeta));

            Close("dx", dx.Read(), Numeric(() => Loss(f, x0, gamma, beta, w), x0));
            Close("dgamma", dgamma.Read(), Numeric(() => Loss(f, x0, gamma, beta, w), gamma));
            Close("dbeta", dbeta.Read(), Numeric(() => Loss(f, x0, gamma, beta, w), beta));
        }, iter: 25);
    }
}
