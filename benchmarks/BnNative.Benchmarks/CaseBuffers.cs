using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using BnNative.Interop;

namespace BnNative.Benchmarks;

/// <summary>
/// The buffers of one SPEC §5 case, filled once and kept between calls as in a training loop (x uniform in [−1, 3),
/// dy in [−0.5, 0.5), γ = 1, β = 0, the saved statistics those of x), and the case's call on them through any loaded
/// image. Every image called on the same buffers reads the same inputs and writes the same outputs.
/// <para>
/// Each buffer starts <see cref="Offset"/> bytes past a 64-byte boundary: 0 by default, as PyTorch and the peer harness
/// allocate (the library streams some outputs only from a 64-byte boundary, see README's "Streaming stores"); another
/// offset measures what a caller with malloc's or NumPy's 16-byte alignment gets.
/// </para>
/// </summary>
public sealed unsafe class CaseBuffers : IDisposable
{
    private readonly List<nint> _allocations = [];
    private BnTensorDesc _desc;
    private readonly float* _x, _y, _dy, _dx, _gamma, _beta, _runningMean, _runningVar, _mean, _invstd, _r, _d, _dgamma, _dbeta;

    public Case Case { get; }

    /// <summary>Bytes past a 64-byte boundary at which every buffer starts (a multiple of 4, below 64).</summary>
    public int Offset { get; }

    /// <summary>Fills the buffers; <paramref name="library"/> computes the saved statistics of x, as a forward leaves them for the backward.</summary>
    public CaseBuffers(Case @case, BnLibrary library, int offset = 0)
    {
        if (offset < 0 || offset >= 64 || offset % sizeof(float) != 0)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "the offset is a multiple of 4 bytes below 64");
        Case = @case;
        Offset = offset;
        _desc = @case.Descriptor;
        long elements = @case.Elements, channels = @case.C, positions = @case.N * @case.H * @case.W;
        var random = new Random(1);
        _x = Filled(elements, () => (float)(random.NextDouble() * 4 - 1));
        _dy = Filled(elements, () => (float)(random.NextDouble() - 0.5));
        _y = Filled(elements, () => 0);
        _dx = Filled(elements, () => 0);
        _gamma = Filled(channels, () => 1);
        _beta = Filled(channels, () => 0);
        _runningMean = Filled(channels, () => 0);
        _runningVar = Filled(channels, () => 1);
        _mean = Filled(@case.IsLayerNorm ? positions : channels, () => 0);
        _invstd = Filled(@case.IsLayerNorm ? positions : channels, () => 1);
        _r = Filled(channels, () => 1);
        _d = Filled(channels, () => 0);
        _dgamma = Filled(channels, () => 0);
        _dbeta = Filled(channels, () => 0);
        fixed (BnTensorDesc* desc = &_desc)
            Check(library, @case.IsLayerNorm
                ? library.LayerNormForward(desc, _x, _y, _gamma, _beta, 1e-5, _mean, _invstd)
                : library.BatchNormForwardTraining(desc, _x, _y, _gamma, _beta, null, null, 0.1, 1e-5, _mean, _invstd));
    }

    /// <summary>One call of the case through <paramref name="library"/>.</summary>
    public BnStatus Call(BnLibrary library)
    {
        fixed (BnTensorDesc* desc = &_desc)
            return Case.Operation switch
            {
                Operation.BatchNormForwardTraining => library.BatchNormForwardTraining(desc, _x, _y, _gamma, _beta, _runningMean, _runningVar, 0.1, 1e-5, _mean, _invstd),
                Operation.BatchNormBackward => library.BatchNormBackward(desc, _x, _dy, _dx, _gamma, _mean, _invstd, _dgamma, _dbeta),
                Operation.BatchNormForwardInference => library.BatchNormForwardInference(desc, _x, _y, _gamma, _beta, _runningMean, _runningVar, 1e-5),
                Operation.LayerNormForward => library.LayerNormForward(desc, _x, _y, _gamma, _beta, 1e-5, _mean, _invstd),
                Operation.LayerNormBackward => library.LayerNormBackward(desc, _x, _dy, _dx, _gamma, _mean, _invstd, _dgamma, _dbeta),
                // SPEC §5's BRN case runs with rmax = 3, dmax = 5 (as ../shared/bench times it).
                Operation.BatchRenormForwardTraining => library.BatchRenormForwardTraining(desc, _x, _y, _gamma, _beta, _runningMean, _runningVar, 0.1, 1e-5, 3, 5, _mean, _invstd, _r, _d),
                _ => library.BatchRenormBackward(desc, _x, _dy, _dx, _gamma, _mean, _invstd, _r, _d, _dgamma, _dbeta),
            };
    }

    /// <summary>Throws unless <paramref name="status"/> is success: a refused call would be timed as a fast one.</summary>
    public static void Check(BnLibrary library, BnStatus status)
    {
        if (status != BnStatus.Success)
            throw new InvalidOperationException($"{status}: {library.LastErrorMessage}");
    }

    public void Dispose()
    {
        foreach (var allocation in _allocations)
            NativeMemory.AlignedFree((void*)allocation);
        _allocations.Clear();
    }

    private float* Filled(long count, Func<float> value)
    {
        var allocation = (byte*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float) + Offset), 64);
        _allocations.Add((nint)allocation);
        var buffer = (float*)(allocation + Offset);
        for (long i = 0; i < count; i++)
            buffer[i] = value();
        return buffer;
    }
}
