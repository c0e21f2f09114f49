using System;
using BnNative.Interop;

namespace BnNative.Tests;

/// <summary>
/// Float64 reference implementations of SPEC §2.1, written from the formulas with plain loops (two-pass
/// statistics), independent of the library's kernels. Every array is in the layout of <c>desc</c>.
/// </summary>
public static class Reference
{
    public static long Members(in BnTensorDesc d) => d.N * d.H * d.W;

    /// <summary>Offset of element (n, c, h·W + w) in the layout.</summary>
    public static long Offset(in BnTensorDesc d, long n, long c, long s) =>
        d.Layout == (int)BnLayout.NCHW ? (n * d.C + c) * d.H * d.W + s : (n * d.H * d.W + s) * d.C + c;

    /// <summary>Calls <paramref name="visit"/> with the offsets of channel <paramref name="c"/>'s members.</summary>
    public static void ForChannel(in BnTensorDesc d, long c, Action<long> visit)
    {
        for (long n = 0; n < d.N; n++)
            for (long s = 0; s < d.H * d.W; s++)
                visit(Offset(d, n, c, s));
    }

    public static (double[] Mean, double[] Var) Statistics(in BnTensorDesc d, double[] x)
    {
        var mean = new double[d.C];
        var variance = new double[d.C];
        double m = Members(d);
        for (long c = 0; c < d.C; c++)
        {
            double sum = 0, squares = 0;
            ForChannel(d, c, i => sum += x[i]);
            double mu = sum / m;
            ForChannel(d, c, i => squares += (x[i] - mu) * (x[i] - mu));
            mean[c] = mu;
            variance[c] = squares / m;
        }
        return (mean, variance);
    }

    public sealed record Forward(double[] Y, double[] Mean, double[] Invstd, double[] RunningMean, double[] RunningVar,
        double[] YScale, double[] MeanScale, double[] RunningMeanScale);

    /// <summary>Training forward; the *Scale arrays are SPEC §4's s (the magnitudes of the terms that meet) per element.</summary>
    public static Forward ForwardTraining(in BnTensorDesc d, double[] x, double[]? gamma, double[]? beta,
        double[] runningMean, double[] runningVar, double momentum, double eps)
    {
        var (mean, variance) = Statistics(d, x);
        double m = Members(d);
        var y = new double[x.Length];
        var scale = new double[x.Length];
        var invstd = new double[d.C];
        var newMean = new double[d.C];
        var newVar = new double[d.C];
        var meanScale = new double[d.C];
        var runningMeanScale = new double[d.C];
        for (long c = 0; c < d.C; c++)
        {
            double g = gamma?[c] ?? 1, b = beta?[c] ?? 0;
            invstd[c] = 1 / Math.Sqrt(variance[c] + eps);
            long cc = c;
            ForChannel(d, c, i =>
            {
                y[i] = g * (x[i] - mean[cc]) * invstd[cc] + b;
                scale[i] = Math.Abs(g) * (Math.Abs(x[i]) + Math.Abs(mean[cc])) * invstd[cc] + Math.Abs(b);
            });
            double absSum = 0;
            ForChannel(d, c, i => absSum += Math.Abs(x[i]));
            meanScale[c] = absSum / m;
            newMean[c] = (1 - momentum) * runningMean[c] + momentum * mean[c];
            runningMeanScale[c] = Math.Abs((1 - momentum) * runningMean[c]) + Math.Abs(momentum) * meanScale[c];
            newVar[c] = (1 - momentum) * runningVar[c] + momentum * variance[c] * m / (m - 1);
        }
        return new Forward(y, mean, invstd, newMean, newVar, scale, meanScale, runningMeanScale);
    }

    public static (double[] Y, double[] YScale) ForwardInference(in BnTensorDesc d, double[] x, double[]? gamma, double[]? beta,
        double[] runningMean, double[] runningVar, double eps)
    {
        var y = new double[x.Length];
        var scale = new double[x.Length];
        for (long c = 0; c < d.C; c++)
        {
            double g = gamma?[c] ?? 1, b = beta?[c] ?? 0, inv = 1 / Math.Sqrt(runningVar[c] + eps), mu = runningMean[c];
            ForChannel(d, c, i =>
            {
                y[i] = g * (x[i] - mu) * inv + b;
                scale[i] = Math.Abs(g) * (Math.Abs(x[i]) + Math.Abs(mu)) * inv + Math.Abs(b);
            });
        }
        return (y, scale);
    }

    public sealed record Gradient(double[] Dx, double[] Dgamma, double[] Dbeta, double[] DxScale, double[] DgammaScale, double[] DbetaScale);

    /// <summary>Training backward from the given saved statistics.</summary>
    public static Gradient Backward(in BnTensorDesc d, double[] x, double[] dy, double[]? gamma, double[] mean, double[] invstd)
    {
        double m = Members(d);
        var dx = new double[x.Length];
        var dxScale = new double[x.Length];
        var dgamma = new double[d.C];
        var dbeta = new double[d.C];
        var dgammaScale = new double[d.C];
        var dbetaScale = new double[d.C];
        for (long c = 0; c < d.C; c++)
        {
            double g = gamma?[c] ?? 1, mu = mean[c], inv = invstd[c];
            double sumDy = 0, sumDyXhat = 0, absDy = 0, absDyXhat = 0;
            ForChannel(d, c, i =>
            {
                double xhat = (x[i] - mu) * inv;
                sumDy += dy[i];
                sumDyXhat += dy[i] * xhat;
                absDy += Math.Abs(dy[i]);
                absDyXhat += Math.Abs(dy[i] * xhat);
            });
            ForChannel(d, c, i =>
            {
                double xhat = (x[i] - mu) * inv;
                dx[i] = g * inv * (dy[i] - sumDy / m - xhat * sumDyXhat / m);
                dxScale[i] = Math.Abs(g) * inv * (Math.Abs(dy[i]) + absDy / m + Math.Abs(xhat) * absDyXhat / m);
            });
            (dgamma[c], dbeta[c], dgammaScale[c], dbetaScale[c]) = (sumDyXhat, sumDy, absDyXhat, absDy);
        }
        return new Gradient(dx, dgamma, dbeta, dxScale, dgammaScale, dbetaScale);
    }

    /// <summary>Backward of the inference forward (frozen statistics).</summary>
    public static Gradient BackwardInference(in BnTensorDesc d, double[] x, double[] dy, double[]? gamma,
        double[] runningMean, double[] runningVar, double eps)
    {
        var dx = new double[x.Length];
        var dxScale = new double[x.Length];
        var dgamma = new double[d.C];
        var dbeta = new double[d.C];
        var dgammaScale = new double[d.C];
        var dbetaScale = new double[d.C];
        for (long c = 0; c < d.C; c++)
        {
            double g = gamma?[c] ?? 1, mu = runningMean[c], inv = 1 / Math.Sqrt(runningVar[c] + eps);
            double sumDy = 0, sumDyXhat = 0, absDy = 0, absDyXhat = 0;
            ForChannel(d, c, i =>
            {
                double xhat = (x[i] - mu) * inv;
                dx[i] = dy[i] * g * inv;
                dxScale[i] = Math.Abs(dx[i]);
                sumDy += dy[i];
                sumDyXhat += dy[i] * xhat;
                absDy += Math.Abs(dy[i]);
                absDyXhat += Math.Abs(dy[i] * xhat);
            });
            (dgamma[c], dbeta[c], dgammaScale[c], dbetaScale[c]) = (sumDyXhat, sumDy, absDyXhat, absDy);
        }
        return new Gradient(dx, dgamma, dbeta, dxScale, dgammaScale, dbetaScale);
    }
}
