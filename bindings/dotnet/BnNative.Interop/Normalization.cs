using System;
using System.Runtime.InteropServices;

namespace BnNative.Interop;

/// <summary>A tensor's layout and dimensions (docs/contract.md §1). Ranks other than 4 fold into these: (N, C) is NC, (N, C, L) is NCHW with H = 1.</summary>
public readonly record struct TensorShape(BnLayout Layout, long N, long C, long H = 1, long W = 1)
{
    /// <summary>Elements, N·C·H·W: the length of x, y, dy and dx.</summary>
    public long Count => N * C * H * W;

    /// <summary>Positions, N·H·W: the length of LayerNorm's saved statistics.</summary>
    public long Positions => N * H * W;

    /// <summary>(N, C) rows.</summary>
    public static TensorShape NC(long n, long c) => new(BnLayout.NC, n, c);

    /// <summary>Channels first.</summary>
    public static TensorShape NCHW(long n, long c, long h, long w) => new(BnLayout.NCHW, n, c, h, w);

    /// <summary>Channels last (the dimensions still given as N, C, H, W).</summary>
    public static TensorShape NHWC(long n, long c, long h, long w) => new(BnLayout.NHWC, n, c, h, w);
}

/// <summary>A call of the library failed: <see cref="Status"/> and the library's message. It wrote nothing.</summary>
public sealed class BnException : Exception
{
    /// <summary>A failure with the status the call returned and the library's message.</summary>
    public BnException(BnStatus status, string message) : base(message) => Status = status;

    /// <summary>What the call returned.</summary>
    public BnStatus Status { get; }
}

/// <summary>
/// The operations on spans of float or double (docs/contract.md §2). Every span's length is checked against the
/// shape before the call (an <see cref="ArgumentException"/> naming it); an empty optional span is NULL (not
/// read or not written); the dtype follows the element type, so a descriptor can never disagree with the
/// buffers. y may be the same memory as x, and dx as dy (in place). A failing call throws
/// <see cref="BnException"/> and has written nothing. The library is <see cref="BnLibrary.Load()"/>'s unless
/// <see cref="Library"/> is set.
/// </summary>
public static unsafe class Normalization
{
    private static BnLibrary? _library;

    /// <summary>The library calls go to (default: the one shipped with this package).</summary>
    public static BnLibrary Library
    {
        get => _library ??= BnLibrary.Load();
        set => _library = value;
    }

    /// <summary>Batch Normalization forward in training mode; running statistics (both or neither) are updated in place.</summary>
    public static void BatchNormForwardTraining<T>(TensorShape shape, ReadOnlySpan<T> x, Span<T> y, ReadOnlySpan<T> gamma = default,
        ReadOnlySpan<T> beta = default, Span<T> runningMean = default, Span<T> runningVar = default, double momentum = 0.1,
        double eps = 1e-5, Span<T> saveMean = default, Span<T> saveInvstd = default) where T : unmanaged
    {
        var desc = Describe<T>(shape);
        Tensor(x, shape, nameof(x)); Tensor(y, shape, nameof(y));
        Channels(gamma, shape, nameof(gamma)); Channels(beta, shape, nameof(beta));
        Channels(runningMean, shape, nameof(runningMean)); Channels(runningVar, shape, nameof(runningVar));
        Channels(saveMean, shape, nameof(saveMean)); Channels(saveInvstd, shape, nameof(saveInvstd));
        fixed (T* px = x, py = y, pg = gamma, pb = beta, prm = runningMean, prv = runningVar, psm = saveMean, psi = saveInvstd)
            Check(Library.BatchNormForwardTraining(&desc, px, py, pg, pb, prm, prv, momentum, eps, psm, psi));
    }

    /// <summary>Batch Normalization forward in inference mode, with the running statistics.</summary>
    public static void BatchNormForwardInference<T>(TensorShape shape, ReadOnlySpan<T> x, Span<T> y, ReadOnlySpan<T> gamma,
        ReadOnlySpan<T> beta, ReadOnlySpan<T> runningMean, ReadOnlySpan<T> runningVar, double eps = 1e-5) where T : unmanaged
    {
        var desc = Describe<T>(shape);
        Tensor(x, shape, nameof(x)); Tensor(y, shape, nameof(y));
        Channels(gamma, shape, nameof(gamma)); Channels(beta, shape, nameof(beta));
        Channels(runningMean, shape, nameof(runningMean), required: true); Channels(runningVar, shape, nameof(runningVar), required: true);
        fixed (T* px = x, py = y, pg = gamma, pb = beta, prm = runningMean, prv = runningVar)
            Check(Library.BatchNormForwardInference(&desc, px, py, pg, pb, prm, prv, eps));
    }

    /// <summary>The gradient of the training forward from its saved statistics; dgamma and dbeta are overwritten.</summary>
    public static void BatchNormBackward<T>(TensorShape shape, ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx, ReadOnlySpan<T> gamma,
        ReadOnlySpan<T> saveMean, ReadOnlySpan<T> saveInvstd, Span<T> dgamma = default, Span<T> dbeta = default) where T : unmanaged
    {
        var desc = Describe<T>(shape);
        Tensor(x, shape, nameof(x)); Tensor(dy, shape, nameof(dy)); Tensor(dx, shape, nameof(dx), optional: true);
        Channels(gamma, shape, nameof(gamma));
        Channels(saveMean, shape, nameof(saveMean), required: true); Channels(saveInvstd, shape, nameof(saveInvstd), required: true);
        Channels(dgamma, shape, nameof(dgamma)); Channels(dbeta, shape, nameof(dbeta));
        fixed (T* px = x, pdy = dy, pdx = dx, pg = gamma, psm = saveMean, psi = saveInvstd, pdg = dgamma, pdb = dbeta)
            Check(Library.BatchNormBackward(&desc, px, pdy, pdx, pg, psm, psi, pdg, pdb));
    }

    /// <summary>The gradient of the inference forward (frozen statistics).</summary>
    public static void BatchNormBackwardInference<T>(TensorShape shape, ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx,
        ReadOnlySpan<T> gamma, ReadOnlySpan<T> runningMean, ReadOnlySpan<T> runningVar, double eps = 1e-5, Span<T> dgamma = default,
        Span<T> dbeta = default) where T : unmanaged
    {
        var desc = Describe<T>(shape);
        Tensor(x, shape, nameof(x)); Tensor(dy, shape, nameof(dy)); Tensor(dx, shape, nameof(dx), optional: true);
        Channels(gamma, shape, nameof(gamma));
        Channels(runningMean, shape, nameof(runningMean), required: true); Channels(runningVar, shape, nameof(runningVar), required: true);
        Channels(dgamma, shape, nameof(dgamma)); Channels(dbeta, shape, nameof(dbeta));
        fixed (T* px = x, pdy = dy, pdx = dx, pg = gamma, prm = runningMean, prv = runningVar, pdg = dgamma, pdb = dbeta)
            Check(Library.BatchNormBackwardInference(&desc, px, pdy, pdx, pg, prm, prv, eps, pdg, pdb));
    }

    /// <summary>Batch Renormalization forward in training mode; the running statistics (required) are updated in place.</summary>
    public static void BatchRenormForwardTraining<T>(TensorShape shape, ReadOnlySpan<T> x, Span<T> y, ReadOnlySpan<T> gamma,
        ReadOnlySpan<T> beta, Span<T> runningMean, Span<T> runningVar, double momentum = 0.1, double eps = 1e-5, double rmax = 3,
        double dmax = 5, Span<T> saveMean = default, Span<T> saveInvstd = default, Span<T> saveR = default, Span<T> saveD = default)
        where T : unmanaged
    {
        var desc = Describe<T>(shape);
        Tensor(x, shape, nameof(x)); Tensor(y, shape, nameof(y));
        Channels(gamma, shape, nameof(gamma)); Channels(beta, shape, nameof(beta));
        Channels(runningMean, shape, nameof(runningMean), required: true); Channels(runningVar, shape, nameof(runningVar), required: true);
        Channels(saveMean, shape, nameof(saveMean)); Channels(saveInvstd, shape, nameof(saveInvstd));
        Channels(saveR, shape, nameof(saveR)); Channels(saveD, shape, nameof(saveD));
        fixed (T* px = x, py = y, pg = gamma, pb = beta, prm = runningMean, prv = runningVar, psm = saveMean, psi = saveInvstd, pr = saveR, pd = saveD)
            Check(Library.BatchRenormForwardTraining(&desc, px, py, pg, pb, prm, prv, momentum, eps, rmax, dmax, psm, psi, pr, pd));
    }

    /// <summary>The gradient of the Batch Renormalization forward, r and d held constant.</summary>
    public static void BatchRenormBackward<T>(TensorShape shape, ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx, ReadOnlySpan<T> gamma,
        ReadOnlySpan<T> saveMean, ReadOnlySpan<T> saveInvstd, ReadOnlySpan<T> saveR, ReadOnlySpan<T> saveD, Span<T> dgamma = default,
        Span<T> dbeta = default) where T : unmanaged
    {
        var desc = Describe<T>(shape);
        Tensor(x, shape, nameof(x)); Tensor(dy, shape, nameof(dy)); Tensor(dx, shape, nameof(dx), optional: true);
        Channels(gamma, shape, nameof(gamma));
        Channels(saveMean, shape, nameof(saveMean), required: true); Channels(saveInvstd, shape, nameof(saveInvstd), required: true);
        Channels(saveR, shape, nameof(saveR), required: true); Channels(saveD, shape, nameof(saveD), required: true);
        Channels(dgamma, shape, nameof(dgamma)); Channels(dbeta, shape, nameof(dbeta));
        fixed (T* px = x, pdy = dy, pdx = dx, pg = gamma, psm = saveMean, psi = saveInvstd, pr = saveR, pd = saveD, pdg = dgamma, pdb = dbeta)
            Check(Library.BatchRenormBackward(&desc, px, pdy, pdx, pg, psm, psi, pr, pd, pdg, pdb));
    }

    /// <summary>Layer Normalization over the C channels at each position; saveMean/saveInvstd hold one value per position.</summary>
    public static void LayerNormForward<T>(TensorShape shape, ReadOnlySpan<T> x, Span<T> y, ReadOnlySpan<T> gamma = default,
        ReadOnlySpan<T> beta = default, double eps = 1e-5, Span<T> saveMean = default, Span<T> saveInvstd = default) where T : unmanaged
    {
        var desc = Describe<T>(shape);
        Tensor(x, shape, nameof(x)); Tensor(y, shape, nameof(y));
        Channels(gamma, shape, nameof(gamma)); Channels(beta, shape, nameof(beta));
        Positions(saveMean, shape, nameof(saveMean)); Positions(saveInvstd, shape, nameof(saveInvstd));
        fixed (T* px = x, py = y, pg = gamma, pb = beta, psm = saveMean, psi = saveInvstd)
            Check(Library.LayerNormForward(&desc, px, py, pg, pb, eps, psm, psi));
    }

    /// <summary>The gradient of Layer Normalization; dgamma and dbeta are overwritten.</summary>
    public static void LayerNormBackward<T>(TensorShape shape, ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx, ReadOnlySpan<T> gamma,
        ReadOnlySpan<T> saveMean, ReadOnlySpan<T> saveInvstd, Span<T> dgamma = default, Span<T> dbeta = default) where T : unmanaged
    {
        var desc = Describe<T>(shape);
        Tensor(x, shape, nameof(x)); Tensor(dy, shape, nameof(dy)); Tensor(dx, shape, nameof(dx), optional: true);
        Channels(gamma, shape, nameof(gamma));
        Positions(saveMean, shape, nameof(saveMean), required: true); Positions(saveInvstd, shape, nameof(saveInvstd), required: true);
        Channels(dgamma, shape, nameof(dgamma)); Channels(dbeta, shape, nameof(dbeta));
        fixed (T* px = x, pdy = dy, pdx = dx, pg = gamma, psm = saveMean, psi = saveInvstd, pdg = dgamma, pdb = dbeta)
            Check(Library.LayerNormBackward(&desc, px, pdy, pdx, pg, psm, psi, pdg, pdb));
    }

    private static BnTensorDesc Describe<T>(TensorShape shape) where T : unmanaged
    {
        var dtype = typeof(T) == typeof(float) ? BnDType.F32
            : typeof(T) == typeof(double) ? BnDType.F64
            : throw new NotSupportedException($"element type {typeof(T).Name}: spans of float or double");
        return new BnTensorDesc(shape.Layout, dtype, shape.N, shape.C, shape.H, shape.W);
    }

    private static void Length<T>(ReadOnlySpan<T> span, long expected, string name, string what, bool required)
    {
        if (span.IsEmpty && !required)
            return;
        if (span.Length != expected)
            throw new ArgumentException($"{name} has {span.Length} elements; the shape needs {expected} ({what})", name);
    }

    private static void Tensor<T>(ReadOnlySpan<T> span, TensorShape shape, string name, bool optional = false) =>
        Length(span, shape.Count, name, "N·C·H·W", required: !optional);

    private static void Tensor<T>(Span<T> span, TensorShape shape, string name, bool optional = false) =>
        Tensor((ReadOnlySpan<T>)span, shape, name, optional);

    private static void Channels<T>(ReadOnlySpan<T> span, TensorShape shape, string name, bool required = false) =>
        Length(span, shape.C, name, "C", required);

    private static void Channels<T>(Span<T> span, TensorShape shape, string name, bool required = false) =>
        Channels((ReadOnlySpan<T>)span, shape, name, required);

    private static void Positions<T>(ReadOnlySpan<T> span, TensorShape shape, string name, bool required = false) =>
        Length(span, shape.Positions, name, "N·H·W positions", required);

    private static void Positions<T>(Span<T> span, TensorShape shape, string name, bool required = false) =>
        Positions((ReadOnlySpan<T>)span, shape, name, required);

    private static void Check(BnStatus status)
    {
        if (status != BnStatus.Success)
            throw new BnException(status, Library.LastErrorMessage);
    }
}
