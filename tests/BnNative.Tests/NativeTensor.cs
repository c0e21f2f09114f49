using System;
using System.Runtime.InteropServices;
using BnNative.Interop;

namespace BnNative.Tests;

/// <summary>A buffer of F32 or F64 values in unmanaged memory (stable addresses for the C ABI), read and written as float64.</summary>
public sealed unsafe class NativeTensor : IDisposable
{
    public readonly BnDType DType;
    public readonly int Length;
    public void* Pointer { get; private set; }

    public NativeTensor(BnDType dtype, int length)
    {
        DType = dtype;
        Length = length;
        Pointer = NativeMemory.AllocZeroed((nuint)Math.Max(1, length), (nuint)(dtype == BnDType.F64 ? 8 : 4));
    }

    public static NativeTensor Of(BnDType dtype, double[] values)
    {
        var t = new NativeTensor(dtype, values.Length);
        t.Write(values);
        return t;
    }

    public static NativeTensor Filled(BnDType dtype, int length, double value)
    {
        var values = new double[length];
        Array.Fill(values, value);
        return Of(dtype, values);
    }

    public double this[int i]
    {
        get => DType == BnDType.F64 ? ((double*)Pointer)[i] : ((float*)Pointer)[i];
        set
        {
            if (DType == BnDType.F64) ((double*)Pointer)[i] = value;
            else ((float*)Pointer)[i] = (float)value;
        }
    }

    public void Write(double[] values)
    {
        for (int i = 0; i < values.Length; i++)
            this[i] = values[i];
    }

    /// <summary>The values as float64 (after rounding to the dtype, as the library sees them).</summary>
    public double[] Read()
    {
        var values = new double[Length];
        for (int i = 0; i < Length; i++)
            values[i] = this[i];
        return values;
    }

    /// <summary>The raw bytes, for bitwise comparisons.</summary>
    public byte[] Bytes() => new Span<byte>(Pointer, Length * (DType == BnDType.F64 ? 8 : 4)).ToArray();

    public void Dispose()
    {
        NativeMemory.Free(Pointer);
        Pointer = null;
    }

    public static void* Ptr(NativeTensor? t) => t == null ? null : t.Pointer;
}
