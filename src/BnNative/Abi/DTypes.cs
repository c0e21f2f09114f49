using System;
using System.Numerics;
using BnNative.Kernels;

namespace BnNative.Abi;

/// <summary>
/// An operation on validated arguments, run for the element type of its tensor: <c>TElement</c> is how x, y,
/// dy and dx are stored, <c>T</c> the type of the per-channel parameters and statistics and of the arithmetic
/// (SPEC §1: double for F64, float for every other dtype).
/// </summary>
internal interface IDTypeCall
{
    void Run<TElement, T>() where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>;
}

/// <summary>The one dtype dispatch every export uses: a new dtype is one more case here.</summary>
internal static class DTypes
{
    public static void Run<TCall>(int dtype, ref TCall call) where TCall : struct, IDTypeCall
    {
        switch ((DType)dtype)
        {
            case DType.F32: call.Run<float, float>(); break;
            case DType.F64: call.Run<double, double>(); break;
            case DType.F16: call.Run<Half, float>(); break;
            case DType.BF16: call.Run<BFloat16, float>(); break;
            default: throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "checked by ArgumentCheck.Supported");
        }
    }

    /// <summary>Bytes of one tensor element.</summary>
    public static int ElementSize(int dtype) => (DType)dtype switch { DType.F64 => 8, DType.F16 or DType.BF16 => 2, _ => 4 };
}
