using System;
using System.Runtime.CompilerServices;
using BnNative.Kernels;

namespace BnNative.Operations;

/// <summary>
/// Conversions between float64 and the types the operations handle: tensor elements (float, double, Half,
/// BFloat16) and compute types (float, double). One place for them, so a new element type is one more branch
/// here. Each test on typeof is a constant in a specialized method: the others are removed by the compiler.
/// </summary>
internal static class Element<T> where T : unmanaged
{
    /// <summary>The value, exactly (every element type is a subset of float64).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double ToDouble(T value)
    {
        if (typeof(T) == typeof(float))
            return Unsafe.As<T, float>(ref value);
        if (typeof(T) == typeof(double))
            return Unsafe.As<T, double>(ref value);
        if (typeof(T) == typeof(Half))
            return (double)Unsafe.As<T, Half>(ref value);
        if (typeof(T) == typeof(BFloat16))
            return (float)Unsafe.As<T, BFloat16>(ref value);
        throw new NotSupportedException(typeof(T).Name);
    }

    /// <summary>
    /// The nearest value of the type (ties to even; ±Inf past its range). BFloat16 rounds through float: a float64
    /// within 2^-25 relative of a bfloat16 tie can round the other way, one ulp of bfloat16 at most.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T FromDouble(double value)
    {
        if (typeof(T) == typeof(float))
        {
            float result = (float)value;
            return Unsafe.As<float, T>(ref result);
        }
        if (typeof(T) == typeof(double))
            return Unsafe.As<double, T>(ref value);
        if (typeof(T) == typeof(Half))
        {
            Half result = (Half)value;
            return Unsafe.As<Half, T>(ref result);
        }
        if (typeof(T) == typeof(BFloat16))
        {
            BFloat16 result = (BFloat16)(float)value;
            return Unsafe.As<BFloat16, T>(ref result);
        }
        throw new NotSupportedException(typeof(T).Name);
    }
}
