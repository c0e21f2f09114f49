using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
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

/// <summary>
/// Eight values of a compute type (float, or double) as the lanes of a float64 vector, and back: per-channel and per-row
/// bookkeeping runs eight groups at a time in float64 as the scalar code runs one (the same roundings:
/// <see cref="Element{T}"/>'s conversions lane by lane).
/// </summary>
internal static unsafe class Lanes<T> where T : unmanaged
{
    public const int Count = 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Load(T* values)
    {
        if (typeof(T) == typeof(double))
            return Vector512.Load((double*)values);
        var (lower, upper) = Vector256.Widen(Vector256.Load((float*)values));
        return Vector512.Create(lower, upper);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<double> lanes, T* destination)
    {
        if (typeof(T) == typeof(double))
            lanes.Store((double*)destination);
        else
            Vector256.Narrow(lanes.GetLower(), lanes.GetUpper()).Store((float*)destination);
    }

    /// <summary>Each lane rounded to T (to nearest, ties to even) and back: what Element.FromDouble then ToDouble give.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Rounded(Vector512<double> lanes) =>
        typeof(T) == typeof(double) ? lanes : Vector512.WidenLower(Vector512.Narrow(lanes, lanes));
}
