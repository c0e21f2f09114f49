using System;

namespace BnNative.Abi;

/// <summary>
/// Checks the arguments of one call in the SPEC §3 order — NULL_POINTER, UNSUPPORTED, BAD_SHAPE,
/// BAD_ARGUMENT — keeping the first failure. Callers run every check of a kind before the next kind, and
/// nothing is written before <see cref="Finish"/> says the call may proceed.
/// </summary>
internal unsafe struct ArgumentCheck
{
    private int _status;
    private string _message;

    public readonly bool Failed => _status != Status.Success;

    /// <summary>The pointers every forward needs: desc, x, y.</summary>
    public static ArgumentCheck Forward(TensorDesc* desc, void* x, void* y)
    {
        var check = new ArgumentCheck();
        check.Require(desc, "desc");
        check.Require(x, "x");
        check.Require(y, "y");
        return check;
    }

    /// <summary>The pointers every backward needs: desc, x, dy.</summary>
    public static ArgumentCheck Backward(TensorDesc* desc, void* x, void* dy)
    {
        var check = new ArgumentCheck();
        check.Require(desc, "desc");
        check.Require(x, "x");
        check.Require(dy, "dy");
        return check;
    }

    /// <summary>The tensor description: <see cref="Supported"/>, then <see cref="Shape"/>.</summary>
    public void Tensor(TensorDesc* desc)
    {
        Supported(desc);
        Shape(desc);
    }

    public void Require(void* pointer, string name)
    {
        if (pointer == null)
            Fail(Status.NullPointer, $"{name} is NULL");
    }

    public void RequireBothOrNeither(void* first, void* second, string firstName, string secondName)
    {
        if ((first == null) != (second == null))
            Fail(Status.NullPointer, $"{firstName} and {secondName} must both be given or both be NULL");
    }

    /// <summary>The layout and dtype are known and this build implements the dtype.</summary>
    public void Supported(TensorDesc* desc)
    {
        if (Failed)
            return;
        if (desc->Layout is < (int)Layout.NC or > (int)Layout.NHWC)
            Fail(Status.Unsupported, $"unknown layout {desc->Layout}");
        else
            DTypeKnown(desc->DType);
    }

    /// <summary>A known dtype (for calls on per-channel vectors only, which have no tensor description).</summary>
    public void DTypeKnown(int dtype)
    {
        if (!Failed && dtype is < (int)DType.F32 or > (int)DType.BF16)
            Fail(Status.Unsupported, $"unknown dtype {dtype}");
    }

    /// <summary>
    /// An array of <paramref name="parts"/> partials of C channels (2·C + 1 doubles each, a count first): C ≥ 1, parts ≥ 1
    /// and its byte count fits in int64 (BAD_SHAPE); each count finite and ≥ 0, together at least
    /// <paramref name="minimum"/> values per channel (BAD_ARGUMENT).
    /// </summary>
    public void Partials(long channels, long parts, double* partials, double minimum)
    {
        if (Failed)
            return;
        if (channels < 1 || parts < 1)
        {
            Fail(Status.BadShape, $"channels and parts must be at least 1 (channels={channels} parts={parts})");
            return;
        }
        if (channels > (long.MaxValue / 8 / parts - 1) / 2) // parts·(2·channels + 1)·8 ≤ long.MaxValue
        {
            Fail(Status.BadShape, $"parts*(2*channels + 1) = {parts}*(2*{channels} + 1) doubles do not fit in int64 bytes");
            return;
        }
        double total = 0;
        for (long part = 0; part < parts; part++)
        {
            double count = partials[part * (2 * channels + 1)];
            if (!(count >= 0) || !double.IsFinite(count))
            {
                Fail(Status.BadArgument, $"partials[{part}] has count {count}; a count must be finite and >= 0");
                return;
            }
            total += count;
        }
        if (!(total >= minimum))
            Fail(Status.BadArgument, $"partials hold {total} values per channel in all; at least {minimum} are needed");
    }

    /// <summary>A backward's gathered sums: <see cref="Partials"/> of the tensor's C channels, at least one value per channel.</summary>
    public void GatheredSums(TensorDesc* desc, long parts, double* partials)
    {
        if (!Failed)
            Partials(desc->C, parts, partials, 1);
    }

    /// <summary>Every dimension ≥ 1, NC has h = w = 1, and the element and byte counts fit in int64.</summary>
    public void Shape(TensorDesc* desc)
    {
        if (Failed)
            return;
        long n = desc->N, c = desc->C, h = desc->H, w = desc->W;
        if (n < 1 || c < 1 || h < 1 || w < 1)
            Fail(Status.BadShape, $"every dimension must be at least 1 (n={n} c={c} h={h} w={w})");
        else if (desc->Layout == (int)Layout.NC && (h != 1 || w != 1))
            Fail(Status.BadShape, $"layout NC needs h = w = 1 (h={h} w={w})");
        else
        {
            long elementSize = DTypes.ElementSize(desc->DType);
            try
            {
                _ = checked(n * c * h * w * elementSize);
            }
            catch (OverflowException)
            {
                Fail(Status.BadShape, $"n*c*h*w = {n}*{c}*{h}*{w} elements do not fit in int64 bytes");
            }
        }
    }

    public void Epsilon(double eps)
    {
        if (!(eps > 0) || !double.IsFinite(eps))
            Fail(Status.BadArgument, $"eps must be finite and > 0 (got {eps})");
    }

    public void Momentum(double momentum)
    {
        if (!(momentum >= 0 && momentum <= 1))
            Fail(Status.BadArgument, $"momentum must be in [0, 1] (got {momentum})");
    }

    /// <summary>Batch Renormalization's clipping limits: rmax ≥ 1, dmax ≥ 0, not NaN (+∞: no clipping).</summary>
    public void RenormLimits(double rmax, double dmax)
    {
        if (!(rmax >= 1))
            Fail(Status.BadArgument, $"rmax must be >= 1 (got {rmax})");
        else if (!(dmax >= 0))
            Fail(Status.BadArgument, $"dmax must be >= 0 (got {dmax})");
    }

    /// <summary>Training statistics need at least two values per channel (as PyTorch).</summary>
    public void TrainingBatch(TensorDesc* desc)
    {
        if (!Failed && desc->N * desc->H * desc->W < 2)
            Fail(Status.BadArgument, $"training needs at least 2 values per channel (N*H*W = {desc->N * desc->H * desc->W})");
    }

    public void Fail(int status, string message)
    {
        if (Failed)
            return;
        _status = status;
        _message = message;
    }

    /// <summary>The status to return; on failure it records the message as this thread's last error.</summary>
    public readonly int Finish(string function)
    {
        if (Failed)
            NativeText.SetLastError($"{function}: {_message}");
        return _status;
    }
}
