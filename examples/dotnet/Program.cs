using System;
using BnNative.Interop;

// A linear model on features of wildly different scales, learned by SGD through a BatchNorm layer: the
// features are normalized with the batch statistics (the running ones are kept for inference), and the
// gradient flows back through BatchNormBackward. Spans in, spans out; lengths are checked by the package.
const int Features = 8, Batch = 64, Steps = 300;
var random = new Random(1);
double[] scale = [1e-3, 1, 50, 0.2, 1e3, 5, 0.01, 20];
double[] truth = [2, -1, 0.5, 3, -2, 1, 4, -0.5];
var shape = TensorShape.NC(Batch, Features);
float[] x = new float[Batch * Features], y = new float[Batch * Features], target = new float[Batch];
float[] gamma = new float[Features], beta = new float[Features], weights = new float[Features];
float[] runningMean = new float[Features], runningVar = new float[Features], mean = new float[Features], invstd = new float[Features];
float[] dy = new float[Batch * Features], dx = new float[Batch * Features], dgamma = new float[Features], dbeta = new float[Features];
double[] errors = new double[Batch];
Array.Fill(gamma, 1f);
Array.Fill(runningVar, 1f);

Console.WriteLine($"BnNative {Normalization.Library.Version}, kernels {Normalization.Library.Isa}");
for (int step = 0; step <= Steps; step++)
{
    for (int n = 0; n < Batch; n++)
    {
        double label = 0;
        for (int f = 0; f < Features; f++)
        {
            double z = random.NextDouble() * 2 - 1;
            x[n * Features + f] = (float)(z * scale[f] + 3 * scale[f]);
            label += truth[f] * z;
        }
        target[n] = (float)label;
    }
    Normalization.BatchNormForwardTraining<float>(shape, x, y, gamma, beta, runningMean, runningVar, momentum: 0.1, saveMean: mean, saveInvstd: invstd);
    double loss = 0;
    for (int n = 0; n < Batch; n++)
    {
        double prediction = 0;
        for (int f = 0; f < Features; f++)
            prediction += weights[f] * y[n * Features + f];
        double error = errors[n] = prediction - target[n];
        loss += error * error / Batch;
        for (int f = 0; f < Features; f++)
            dy[n * Features + f] = (float)(2 * error / Batch * weights[f]);
    }
    // Gradients of the weights, then through the normalization to gamma and beta.
    for (int f = 0; f < Features; f++)
    {
        double g = 0;
        for (int n = 0; n < Batch; n++)
            g += 2 * errors[n] / Batch * y[n * Features + f];
        weights[f] -= (float)(0.05 * g);
    }
    Normalization.BatchNormBackward<float>(shape, x, dy, dx, gamma, mean, invstd, dgamma, dbeta);
    for (int f = 0; f < Features; f++)
    {
        gamma[f] -= 0.05f * dgamma[f];
        beta[f] -= 0.05f * dbeta[f];
    }
    if (step % 50 == 0)
        Console.WriteLine($"step {step,3}: loss {loss:F5}");
}

// A wrong length is refused before the library is called, naming the argument.
try
{
    Normalization.BatchNormForwardTraining<float>(shape, x, y.AsSpan(1), gamma, beta);
}
catch (ArgumentException e)
{
    Console.WriteLine($"refused: {e.Message}");
}
