using System;
using System.Numerics;
using BnNative.Kernels;
using BnNative.Operations;

namespace BnNative.Abi;

/// <summary>
/// An operation on validated arguments, run for the element type and shape of its tensor: <c>TElement</c> is how x, y,
/// dy and dx are stored, <c>T</c> the type of the per-channel parameters and statistics and of the arithmetic
/// (SPEC §1: double for F64, float for every other dtype).
/// </summary>
internal interface IDTypeCall
{
    void Run<TElement, T>(in Shape shape) where TElement : unmanaged where T : unmanaged, IBinaryFloatingPointIeee754<T>;
}

/// <summary>An operation on per-channel vectors only (no tensor), run for the parameter type of a dtype.</summary>
internal interface IParameterCall
{
    void Run<T>() where T : unmanaged, IBinaryFloatingPointIeee754<T>;
}

/// <summary>The one dtype dispatch every export uses: a new dtype is one more case here.</summary>
internal static unsafe class DTypes
{
    /// <summary>Runs <paramref name="call"/> for the tensor <paramref name="desc"/> describes (its arguments checked).</summary>
    public static void Run<TCall>(TensorDesc* desc, ref TCall call) where TCall : struct, IDTypeCall
    {
        var shape = new Shape(desc->Layout != (int)Layout.NCHW, desc->N, desc->C, desc->H, desc->W);
        switch ((DType)desc->DType)
        {
            case DType.F32: call.Run<float, float>(shape); break;
            case DType.F64: call.Run<double, double>(shape); break;
            case DType.F16: call.Run<Half, float>(shape); break;
            case DType.BF16: call.Run<BFloat16, float>(shape); break;
            default: throw new ArgumentOutOfRangeException(nameof(desc), desc->DType, "dtype: checked by ArgumentCheck.Supported");
        }
    }

    /// <summary>Runs <paramref name="call"/> for the parameter type of <paramref name="dtype"/> (checked): double for F64, float otherwise.</summary>
    public static void RunParameters<TCall>(int dtype, ref TCall call) where TCall : struct, IParameterCall
    {
        if ((DType)dtype == DType.F64)
            call.Run<double>();
        else
            call.Run<float>();
    }

    /// <summary>Bytes of one tensor element.</summary>
    public static int ElementSize(int dtype) => (DType)dtype switch { DType.F64 => 8, DType.F16 or DType.BF16 => 2, _ => 4 };
}
