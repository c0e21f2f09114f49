using System;
using BnNative.Interop;

namespace BnNative.Tests;

/// <summary>Float64 references of Batch Renormalization (SPEC §2.2) and Layer Normalization (SPEC §2.3).</summary>
public static class ReferenceNormalizations
{
    public sealed record Renorm(double[] Y, double[] Mean, double[] Invstd, double[] R, double[] D,
        double[] RunningMean, double[] RunningVar, double[] YScale);

    /// <summary>The paper's Algorithm 1; with <paramref name="frozenR"/>/<paramref name="frozenD"/> given, r and d are those constants.</summary>
    public static Renorm RenormForward(in BnTensorDesc d, double[] x, double[]? gamma, double[]? beta, double[] runningMean,
        double[] runningVar, double momentum, double eps, double rmax, double dmax, double[]? frozenR = null, double[]? frozenD = null)
    {
        var (mean, variance) = Reference.Statistics(d, x);
        double m = Reference.Members(d);
        var y = new double[x.Length];
        var scale = new double[x.Length];
        var invstd = new double[d.C];
        var r = new double[d.C];
        var dd = new double[d.C];
        var newMean = new double[d.C];
        var newVar = new double[d.C];
        for (long c = 0; c < d.C; c++)
        {
            double g = gamma?[c] ?? 1, b = beta?[c] ?? 0, sigma = Math.Sqrt(variance[c] + eps), runningSigma = Math.Sqrt(runningVar[c] + eps);
            invstd[c] = 1 / sigma;
            r[c] = frozenR?[c] ?? Math.Clamp(sigma / runningSigma, 1 / rmax, rmax);
            dd[c] = frozenD?[c] ?? Math.Clamp((mean[c] - runningMean[c]) / runningSigma, -dmax, dmax);
            long cc = c;
            Reference.ForChannel(d, c, i =>
            {
                y[i] = g * ((x[i] - mean[cc]) / sigma * r[cc] + dd[cc]) + b;
                scale[i] = Math.Abs(g) * ((Math.Abs(x[i]) + Math.Abs(mean[cc])) / sigma * r[cc] + Math.Abs(dd[cc])) + Math.Abs(b);
            });
            newMean[c] = (1 - momentum) * runningMean[c] + momentum * mean[c];
            newVar[c] = (1 - momentum) * runningVar[c] + momentum * variance[c] * m / (m - 1);
        }
        return new Renorm(y, mean, invstd, r, dd, newMean, newVar, scale);
    }

    /// <summary>r and d are constants: dgamma = r·Σdy·x̂ + d·Σdy, dx = γ·r·invstd·(dy − Σdy/M − x̂·Σdy·x̂/M).</summary>
    public static Reference.Gradient RenormBackward(in BnTensorDesc d, double[] x, double[] dy, double[]? gamma,
        double[] mean, double[] invstd, double[] r, double[] dd)
    {
        var gammaR = new double[d.C];
        for (int c = 0; c < d.C; c++)
            gammaR[c] = (gamma?[c] ?? 1) * r[c];
        var bn = Reference.Backward(d, x, dy, gammaR, mean, invstd);
        var dgamma = new double[d.C];
        var scale = new double[d.C];
        for (int c = 0; c < d.C; c++)
        {
            dgamma[c] = r[c] * bn.Dgamma[c] + dd[c] * bn.Dbeta[c];
            scale[c] = Math.Abs(r[c]) * bn.DgammaScale[c] + Math.Abs(dd[c]) * bn.DbetaScale[c];
        }
        return bn with { Dgamma = dgamma, DgammaScale = scale };
    }

    public static long Positions(in BnTensorDesc d) => d.N * d.H * d.W;

    /// <summary>Calls <paramref name="visit"/> with (channel, offset) of position p = n·S + s.</summary>
    public static void ForPosition(in BnTensorDesc d, long p, Action<long, long> visit)
    {
        long s = d.H * d.W, n = p / s, k = p % s;
        for (long c = 0; c < d.C; c++)
            visit(c, Reference.Offset(d, n, c, k));
    }

    public sealed record LayerNorm(double[] Y, double[] Mean, double[] Invstd, double[] YScale);

    public static LayerNorm LayerNormForward(BnTensorDesc d, double[] x, double[]? gamma, double[]? beta, double eps)
    {
        long positions = Positions(d);
        var y = new double[x.Length];
        var scale = new double[x.Length];
        var mean = new double[positions];
        var invstd = new double[positions];
        for (long p = 0; p < positions; p++)
        {
            double sum = 0, squares = 0;
            ForPosition(d, p, (_, i) => sum += x[i]);
            double mu = sum / d.C;
            ForPosition(d, p, (_, i) => squares += (x[i] - mu) * (x[i] - mu));
            double inv = 1 / Math.Sqrt(squares / d.C + eps);
            (mean[p], invstd[p]) = (mu, inv);
            ForPosition(d, p, (c, i) =>
            {
                double g = gamma?[c] ?? 1, b = beta?[c] ?? 0;
                y[i] = g * (x[i] - mu) * inv + b;
                scale[i] = Math.Abs(g) * (Math.Abs(x[i]) + Math.Abs(mu)) * inv + Math.Abs(b);
            });
        }
        return new LayerNorm(y, mean, invstd, scale);
    }

    public static Reference.Gradient LayerNormBackward(BnTensorDesc d, double[] x, double[] dy, double[]? gamma, double[] mean, double[] invstd)
    {
        long positions = Positions(d);
        var dx = new double[x.Length];
        var dxScale = new double[x.Length];
        var dgamma = new double[d.C];
        var dbeta = new double[d.C];
        var dgammaScale = new double[d.C];
        var dbetaScale = new double[d.C];
        for (long p = 0; p < positions; p++)
        {
            double mu = mean[p], inv = invstd[p], sumG = 0, sumGXhat = 0, absG = 0, absGXhat = 0;
            ForPosition(d, p, (c, i) =>
            {
                double xhat = (x[i] - mu) * inv, g = dy[i] * (gamma?[c] ?? 1);
                sumG += g;
                sumGXhat += g * xhat;
                absG += Math.Abs(g);
                absGXhat += Math.Abs(g * xhat);
                dgamma[c] += dy[i] * xhat;
                dbeta[c] += dy[i];
                dgammaScale[c] += Math.Abs(dy[i] * xhat);
                dbetaScale[c] += Math.Abs(dy[i]);
            });
            ForPosition(d, p, (c, i) =>
            {
                double xhat = (x[i] - mu) * inv, g = dy[i] * (gamma?[c] ?? 1);
                dx[i] = inv * (g - sumG / d.C - xhat * sumGXhat / d.C);
                dxScale[i] = inv * (Math.Abs(g) + absG / d.C + Math.Abs(xhat) * absGXhat / d.C);
            });
        }
        return new Reference.Gradient(dx, dgamma, dbeta, dxScale, dgammaScale, dbetaScale);
    }
}
