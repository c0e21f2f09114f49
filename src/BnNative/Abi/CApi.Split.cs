using System.Numerics;
using BnNative.Operations;

namespace BnNative.Abi;

/// <summary>
/// Batch Normalization and Batch Renormalization with the batch split across processes (synchronized BatchNorm,
/// docs/contract.md §2.4): each process computes partials of its part, the caller exchanges them (all-gather,
/// all-reduce), and each process finishes its part with the merged values. A partial is 2·C + 1 doubles: the
/// count of values per channel in the part, then C values, then C more. The fused single-process operations
/// are unchanged.
/// </summary>
internal static unsafe partial class CApi
{
    /// <summary>
    /// The partial statistics of one part of a batch, for a forward split across processes: per channel, over the part's
    /// M = N·H·W values, the mean and M2 = Σ(x − mean)² (never Σx²), in float64 whatever the dtype. Gather the partials of
    /// all parts (e.g. MPI_Allgather) and merge them with bn_batch_norm_merge_statistics.
    /// </summary>
    /// <param name="desc">this part of the batch: layout, dtype, N, C, H, W</param>
    /// <param name="x">input, N·C·H·W elements</param>
    /// <param name="partial">2·C + 1 doubles written: [0] = M, [1 .. C] = mean_c, [C + 1 .. 2·C] = M2_c</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x or partial NULL); UNSUPPORTED; BAD_SHAPE. On any error nothing was written.</returns>
    [CExport("bn_batch_norm_partial_statistics")]
    private static int BatchNormPartialStatistics(TensorDesc* desc, [CConst] void* x, void* partial)
    {
        var check = new ArgumentCheck();
        check.Require(desc, "desc");
        check.Require(x, "x");
        check.Require(partial, "partial");
        check.Tensor(desc);
        if (check.Failed)
            return check.Finish("bn_batch_norm_partial_statistics");
        var call = new PartialStatisticsCall { X = x, Partial = (double*)partial };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    private struct PartialStatisticsCall : IDTypeCall
    {
        public void* X;
        public double* Partial;

        public readonly void Run<TElement, T>(in Shape shape) where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>
        {
            var g = new Geometry<TElement>(shape);
            double* mean = Partial + 1, m2 = mean + g.C;
            BatchNorm<TElement, T>.Statistics(g, (TElement*)X, mean, m2, 0);
            Partial[0] = g.M;
            for (long c = 0; c < g.C; c++)
                m2[c] *= g.M; // the biased variance times M
        }
    }

    /// <summary>
    /// The batch statistics of a forward split across processes, from the partials of all its parts: merged in float64 in
    /// the order given (Chan et al.'s parallel formula: the mean about the largest part's, then M2 = Σ M2_k + Σ M_k·(mean_k − mean)²),
    /// so every process that passes the same partials in the same order gets bitwise the same result. Writes mean_c and invstd_c = 1/√(var_c + eps) for bn_batch_norm_forward_with_statistics and
    /// the backward, and updates the running statistics as bn_batch_norm_forward_training does, with the unbiased variance
    /// of the whole batch (M = the sum of the counts). Parts with count 0 are skipped.
    /// </summary>
    /// <param name="dtype">the tensor's bn_dtype: the parameters are double for F64, float otherwise</param>
    /// <param name="channels">C, the channels of every part</param>
    /// <param name="parts">K, the partials given</param>
    /// <param name="partials">K·(2·C + 1) doubles: the partials of bn_batch_norm_partial_statistics, one after another</param>
    /// <param name="runningMean">C values, read and updated; NULL together with running_var: not updated</param>
    /// <param name="runningVar">C values, read and updated; NULL together with running_mean</param>
    /// <param name="momentum">weight of this batch in the running statistics, in [0, 1]</param>
    /// <param name="eps">added to the variance; finite and &gt; 0</param>
    /// <param name="mean">C values written with the batch mean</param>
    /// <param name="invstd">C values written with the batch's 1/√(var + eps)</param>
    /// <returns>SUCCESS; NULL_POINTER (partials, mean or invstd NULL, or only one of running_mean/running_var); UNSUPPORTED
    /// (dtype); BAD_SHAPE (channels or parts &lt; 1, too large); BAD_ARGUMENT (eps, momentum, a count negative or not
    /// finite, fewer than 2 values per channel in all). On any error nothing was written.</returns>
    [CExport("bn_batch_norm_merge_statistics")]
    private static int BatchNormMergeStatistics(int dtype, long channels, long parts, [CConst] void* partials, void* runningMean, void* runningVar,
        double momentum, double eps, void* mean, void* invstd)
    {
        var check = new ArgumentCheck();
        check.Require(partials, "partials");
        check.RequireBothOrNeither(runningMean, runningVar, "running_mean", "running_var");
        check.Require(mean, "mean");
        check.Require(invstd, "invstd");
        check.DTypeKnown(dtype);
        check.Partials(channels, parts, (double*)partials, 2);
        check.Epsilon(eps);
        check.Momentum(momentum);
        if (check.Failed)
            return check.Finish("bn_batch_norm_merge_statistics");
        var call = new MergeStatisticsCall
        {
            Channels = channels, Parts = parts, Partials = (double*)partials, RunningMean = runningMean, RunningVar = runningVar,
            Momentum = momentum, Eps = eps, Mean = mean, Invstd = invstd,
        };
        DTypes.RunParameters(dtype, ref call);
        return Status.Success;
    }

    /// <summary>Batch Normalization's merge, or with <see cref="Renorm"/> Batch Renormalization's (r and d too).</summary>
    private struct MergeStatisticsCall : IParameterCall
    {
        public long Channels, Parts;
        public double* Partials;
        public void* RunningMean, RunningVar, Mean, Invstd, R, D;
        public double Momentum, Eps, RMax, DMax;
        public bool Renorm;

        public readonly void Run<T>() where T : unmanaged, IBinaryFloatingPointIeee754<T>
        {
            var affine = new BatchNorm<T, T>.TrainingAffine
            {
                RunningMean = (T*)RunningMean, RunningVar = (T*)RunningVar, Eps = Eps, Renorm = Renorm, RMax = RMax, DMax = DMax,
            };
            BatchNorm<T, T>.MergeStatistics(Channels, Parts, Partials, affine, Momentum, (T*)Mean, (T*)Invstd, (T*)R, (T*)D);
        }
    }

    /// <summary>
    /// Batch Renormalization's merge of the partials of all parts of a batch split across processes: the batch statistics as
    /// bn_batch_norm_merge_statistics merges them, then r_c = clamp(σ_B/σ_run, 1/rmax, rmax) and
    /// d_c = clamp((mean_c − running_mean_c)/σ_run, −dmax, dmax) from the running statistics before this call (σ_run =
    /// √(running_var + eps)), which are then updated.
    /// </summary>
    /// <param name="dtype">the tensor's bn_dtype: the parameters are double for F64, float otherwise</param>
    /// <param name="channels">C, the channels of every part</param>
    /// <param name="parts">K, the partials given</param>
    /// <param name="partials">K·(2·C + 1) doubles: the partials of bn_batch_norm_partial_statistics, one after another</param>
    /// <param name="runningMean">C values, read and updated; required</param>
    /// <param name="runningVar">C values, read and updated; required</param>
    /// <param name="momentum">weight of this batch in the running statistics, in [0, 1]</param>
    /// <param name="eps">added to the variances; finite and &gt; 0</param>
    /// <param name="rmax">limit of r, ≥ 1 (+∞: no clipping)</param>
    /// <param name="dmax">limit of |d|, ≥ 0 (+∞: no clipping)</param>
    /// <param name="mean">C values written with the batch mean</param>
    /// <param name="invstd">C values written with 1/σ_B</param>
    /// <param name="r">C values written with r_c</param>
    /// <param name="d">C values written with d_c</param>
    /// <returns>SUCCESS; NULL_POINTER (partials, running_mean, running_var, mean, invstd, r or d NULL); UNSUPPORTED (dtype);
    /// BAD_SHAPE (channels or parts &lt; 1, too large); BAD_ARGUMENT (eps, momentum, rmax, dmax, a count negative or not
    /// finite, fewer than 2 values per channel in all). On any error nothing was written.</returns>
    [CExport("bn_batch_renorm_merge_statistics")]
    private static int BatchRenormMergeStatistics(int dtype, long channels, long parts, [CConst] void* partials, void* runningMean, void* runningVar,
        double momentum, double eps, double rmax, double dmax, void* mean, void* invstd, void* r, void* d)
    {
        var check = new ArgumentCheck();
        check.Require(partials, "partials");
        check.Require(runningMean, "running_mean");
        check.Require(runningVar, "running_var");
        check.Require(mean, "mean");
        check.Require(invstd, "invstd");
        check.Require(r, "r");
        check.Require(d, "d");
        check.DTypeKnown(dtype);
        check.Partials(channels, parts, (double*)partials, 2);
        check.Epsilon(eps);
        check.Momentum(momentum);
        check.RenormLimits(rmax, dmax);
        if (check.Failed)
            return check.Finish("bn_batch_renorm_merge_statistics");
        var call = new MergeStatisticsCall
        {
            Channels = channels, Parts = parts, Partials = (double*)partials, RunningMean = runningMean, RunningVar = runningVar,
            Momentum = momentum, Eps = eps, Mean = mean, Invstd = invstd, Renorm = true, RMax = rmax, DMax = dmax, R = r, D = d,
        };
        DTypes.RunParameters(dtype, ref call);
        return Status.Success;
    }

    /// <summary>
    /// The forward of one part of a batch split across processes, with the merged statistics:
    /// y = γ_c·(x − mean_c)·invstd_c + β_c.
    /// </summary>
    /// <param name="desc">this part of the batch: layout, dtype, N, C, H, W</param>
    /// <param name="x">input, N·C·H·W elements</param>
    /// <param name="y">output, N·C·H·W elements; may be x (in place)</param>
    /// <param name="gamma">C parameters; NULL: γ = 1</param>
    /// <param name="beta">C parameters; NULL: β = 0</param>
    /// <param name="mean">C values (bn_batch_norm_merge_statistics's); required</param>
    /// <param name="invstd">C values (bn_batch_norm_merge_statistics's); required</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x, y, mean or invstd NULL); UNSUPPORTED; BAD_SHAPE. On any error nothing was written.</returns>
    [CExport("bn_batch_norm_forward_with_statistics")]
    private static int BatchNormForwardWithStatistics(TensorDesc* desc, [CConst] void* x, void* y, [CConst] void* gamma, [CConst] void* beta,
        [CConst] void* mean, [CConst] void* invstd)
    {
        var check = ArgumentCheck.Forward(desc, x, y);
        check.Require(mean, "mean");
        check.Require(invstd, "invstd");
        check.Tensor(desc);
        if (check.Failed)
            return check.Finish("bn_batch_norm_forward_with_statistics");
        var call = new ForwardWithStatisticsCall { X = x, Y = y, Gamma = gamma, Beta = beta, Mean = mean, Invstd = invstd };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    /// <summary>A forward with given statistics; with R and D, Batch Renormalization's.</summary>
    private struct ForwardWithStatisticsCall : IDTypeCall
    {
        public void* X, Y, Gamma, Beta, Mean, Invstd, R, D;

        public readonly void Run<TElement, T>(in Shape shape) where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>
        {
            using var invstd = new NativeBuffer<double>(shape.C);
            for (long c = 0; c < shape.C; c++)
                invstd.Pointer[c] = Element<T>.ToDouble(((T*)Invstd)[c]);
            BatchNorm<TElement, T>.ForwardWithStatistics(new Geometry<TElement>(shape), (TElement*)X, (TElement*)Y, (T*)Gamma, (T*)Beta,
                (T*)Mean, invstd, (T*)R, (T*)D);
        }
    }

    /// <summary>
    /// Batch Renormalization's forward of one part of a batch split across processes, with the merged statistics and r, d
    /// (bn_batch_renorm_merge_statistics's): y = γ_c·((x − mean_c)·invstd_c·r_c + d_c) + β_c.
    /// </summary>
    /// <param name="desc">this part of the batch: layout, dtype, N, C, H, W</param>
    /// <param name="x">input, N·C·H·W elements</param>
    /// <param name="y">output, N·C·H·W elements; may be x (in place)</param>
    /// <param name="gamma">C parameters; NULL: γ = 1</param>
    /// <param name="beta">C parameters; NULL: β = 0</param>
    /// <param name="mean">C values; required</param>
    /// <param name="invstd">C values (1/σ_B); required</param>
    /// <param name="r">C values; required</param>
    /// <param name="d">C values; required</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x, y, mean, invstd, r or d NULL); UNSUPPORTED; BAD_SHAPE. On any error nothing was written.</returns>
    [CExport("bn_batch_renorm_forward_with_statistics")]
    private static int BatchRenormForwardWithStatistics(TensorDesc* desc, [CConst] void* x, void* y, [CConst] void* gamma, [CConst] void* beta,
        [CConst] void* mean, [CConst] void* invstd, [CConst] void* r, [CConst] void* d)
    {
        var check = ArgumentCheck.Forward(desc, x, y);
        check.Require(mean, "mean");
        check.Require(invstd, "invstd");
        check.Require(r, "r");
        check.Require(d, "d");
        check.Tensor(desc);
        if (check.Failed)
            return check.Finish("bn_batch_renorm_forward_with_statistics");
        var call = new ForwardWithStatisticsCall { X = x, Y = y, Gamma = gamma, Beta = beta, Mean = mean, Invstd = invstd, R = r, D = d };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    /// <summary>
    /// The local reductions of the backward of one part of a batch split across processes: per channel, Σdy and
    /// Σdy·(x − mean_c) over the part, in float64. Sum them over all parts (or gather them) and finish with
    /// bn_batch_norm_backward_with_sums. Σdy and Σdy·(x − mean)·invstd are also this part's own dbeta and (Batch
    /// Normalization) dgamma, the parameter gradients a data-parallel trainer averages.
    /// </summary>
    /// <param name="desc">this part of the batch: layout, dtype, N, C, H, W</param>
    /// <param name="x">the forward's input, N·C·H·W elements</param>
    /// <param name="dy">gradient of the output, N·C·H·W elements</param>
    /// <param name="mean">C values: the merged batch mean the forward used; required</param>
    /// <param name="partial">2·C + 1 doubles written: [0] = M of this part, [1 .. C] = Σdy, [C + 1 .. 2·C] = Σdy·(x − mean)</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x, dy, mean or partial NULL); UNSUPPORTED; BAD_SHAPE. On any error nothing was written.</returns>
    [CExport("bn_batch_norm_backward_partial_sums")]
    private static int BatchNormBackwardPartialSums(TensorDesc* desc, [CConst] void* x, [CConst] void* dy, [CConst] void* mean, void* partial)
    {
        var check = ArgumentCheck.Backward(desc, x, dy);
        check.Require(mean, "mean");
        check.Require(partial, "partial");
        check.Tensor(desc);
        if (check.Failed)
            return check.Finish("bn_batch_norm_backward_partial_sums");
        var call = new BackwardPartialSumsCall { X = x, Dy = dy, Mean = mean, Partial = (double*)partial };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    private struct BackwardPartialSumsCall : IDTypeCall
    {
        public void* X, Dy, Mean;
        public double* Partial;

        public readonly void Run<TElement, T>(in Shape shape) where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>
        {
            var g = new Geometry<TElement>(shape);
            BatchNorm<TElement, T>.GradientSums(g, (TElement*)X, (TElement*)Dy, (T*)Mean, Partial + 1, Partial + 1 + g.C);
            Partial[0] = g.M;
        }
    }

    /// <summary>
    /// The backward of one part of a batch split across processes, from the sums of all parts: with M = Σ counts,
    /// Σdy and Σdy·x̂ = invstd_c·Σdy·(x − mean_c) added over the partials in the order given,
    /// dx = γ_c·invstd_c·(dy − Σdy/M − x̂·Σdy·x̂/M); dgamma_c = Σdy·x̂ and dbeta_c = Σdy of the partials given (of the
    /// whole batch when all are given; of this part when only its own partial is).
    /// </summary>
    /// <param name="desc">this part of the batch: layout, dtype, N, C, H, W</param>
    /// <param name="x">the forward's input, N·C·H·W elements</param>
    /// <param name="dy">gradient of the output, N·C·H·W elements</param>
    /// <param name="dx">gradient of the input, N·C·H·W elements; may be dy (in place); NULL: not computed</param>
    /// <param name="gamma">C parameters; NULL: γ = 1</param>
    /// <param name="mean">C values the forward used; required</param>
    /// <param name="invstd">C values the forward used; required</param>
    /// <param name="parts">K, the partials given</param>
    /// <param name="partials">K·(2·C + 1) doubles: bn_batch_norm_backward_partial_sums's partials, one after another (or one, already summed)</param>
    /// <param name="dgamma">C values written; may be NULL</param>
    /// <param name="dbeta">C values written; may be NULL</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x, dy, mean, invstd or partials NULL); UNSUPPORTED; BAD_SHAPE (also parts &lt; 1);
    /// BAD_ARGUMENT (a count negative or not finite, or all 0). On any error nothing was written.</returns>
    [CExport("bn_batch_norm_backward_with_sums")]
    private static int BatchNormBackwardWithSums(TensorDesc* desc, [CConst] void* x, [CConst] void* dy, void* dx, [CConst] void* gamma,
        [CConst] void* mean, [CConst] void* invstd, long parts, [CConst] void* partials, void* dgamma, void* dbeta)
    {
        var check = ArgumentCheck.Backward(desc, x, dy);
        check.Require(mean, "mean");
        check.Require(invstd, "invstd");
        check.Require(partials, "partials");
        check.Tensor(desc);
        check.GatheredSums(desc, parts, (double*)partials);
        if (check.Failed)
            return check.Finish("bn_batch_norm_backward_with_sums");
        var call = new BackwardWithSumsCall
        {
            X = x, Dy = dy, Dx = dx, Gamma = gamma, Mean = mean, Invstd = invstd, Parts = parts, Partials = (double*)partials, Dgamma = dgamma, Dbeta = dbeta,
        };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }

    /// <summary>A backward from gathered sums; with R and D, Batch Renormalization's.</summary>
    private struct BackwardWithSumsCall : IDTypeCall
    {
        public void* X, Dy, Dx, Gamma, Mean, Invstd, R, D, Dgamma, Dbeta;
        public long Parts;
        public double* Partials;

        public readonly void Run<TElement, T>(in Shape shape) where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>
        {
            long channels = shape.C, stride = 2 * channels + 1;
            using var sums = new NativeBuffer<double>(2 * channels);
            double count = 0;
            for (long part = 0; part < Parts; part++)
                count += Partials[part * stride];
            Sums.InOrder(Partials + 1, Parts, 2 * channels, stride, sums);
            BatchNorm<TElement, T>.BackwardWithSums(new Geometry<TElement>(shape), (TElement*)X, (TElement*)Dy, (TElement*)Dx, (T*)Gamma, (T*)Mean, (T*)Invstd,
                count, sums, sums.Pointer + channels, (T*)Dgamma, (T*)Dbeta, (T*)R, (T*)D);
        }
    }

    /// <summary>
    /// Batch Renormalization's backward of one part of a batch split across processes, r and d constants: with the sums of
    /// all parts as in bn_batch_norm_backward_with_sums, dx = γ_c·r_c·invstd_c·(dy − Σdy/M − x̂·Σdy·x̂/M),
    /// dgamma_c = r_c·Σdy·x̂ + d_c·Σdy, dbeta_c = Σdy (of the partials given).
    /// </summary>
    /// <param name="desc">this part of the batch: layout, dtype, N, C, H, W</param>
    /// <param name="x">the forward's input, N·C·H·W elements</param>
    /// <param name="dy">gradient of the output, N·C·H·W elements</param>
    /// <param name="dx">gradient of the input, N·C·H·W elements; may be dy (in place); NULL: not computed</param>
    /// <param name="gamma">C parameters; NULL: γ = 1</param>
    /// <param name="mean">C values the forward used; required</param>
    /// <param name="invstd">C values the forward used (1/σ_B); required</param>
    /// <param name="r">C values the forward used; required</param>
    /// <param name="d">C values the forward used; required</param>
    /// <param name="parts">K, the partials given</param>
    /// <param name="partials">K·(2·C + 1) doubles: bn_batch_norm_backward_partial_sums's partials, one after another</param>
    /// <param name="dgamma">C values written; may be NULL</param>
    /// <param name="dbeta">C values written; may be NULL</param>
    /// <returns>SUCCESS; NULL_POINTER (desc, x, dy, mean, invstd, r, d or partials NULL); UNSUPPORTED; BAD_SHAPE (also
    /// parts &lt; 1); BAD_ARGUMENT (a count negative or not finite, or all 0). On any error nothing was written.</returns>
    [CExport("bn_batch_renorm_backward_with_sums")]
    private static int BatchRenormBackwardWithSums(TensorDesc* desc, [CConst] void* x, [CConst] void* dy, void* dx, [CConst] void* gamma,
        [CConst] void* mean, [CConst] void* invstd, [CConst] void* r, [CConst] void* d, long parts, [CConst] void* partials, void* dgamma, void* dbeta)
    {
        var check = ArgumentCheck.Backward(desc, x, dy);
        check.Require(mean, "mean");
        check.Require(invstd, "invstd");
        check.Require(r, "r");
        check.Require(d, "d");
        check.Require(partials, "partials");
        check.Tensor(desc);
        check.GatheredSums(desc, parts, (double*)partials);
        if (check.Failed)
            return check.Finish("bn_batch_renorm_backward_with_sums");
        var call = new BackwardWithSumsCall
        {
            X = x, Dy = dy, Dx = dx, Gamma = gamma, Mean = mean, Invstd = invstd, R = r, D = d, Parts = parts, Partials = (double*)partials,
            Dgamma = dgamma, Dbeta = dbeta,
        };
        DTypes.Run(desc, ref call);
        return Status.Success;
    }
}
