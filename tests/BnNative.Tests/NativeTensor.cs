using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BnNative.Interop;

namespace BnNative.Tests;

/// <summary>A buffer of F32, F64, F16 or BF16 values in unmanaged memory (stable addresses for the C ABI), read and written as float64.</summary>
public sealed unsafe class NativeTensor : IDisposable
{
    public readonly BnDType DType;
    public readonly int Length;
    public void* Pointer { get; private set; }

    private void* _allocation;

    /// <summary>
    /// A zeroed buffer at a 64-byte boundary (as PyTorch allocates; the library streams aligned outputs);
    /// <paramref name="misaligned"/>: its elements start one byte past it; else <paramref name="offset"/> bytes past it
    /// (16: where malloc and NumPy start large arrays).
    /// </summary>
    public NativeTensor(BnDType dtype, int length, bool misaligned = false, int offset = 0)
    {
        DType = dtype;
        Length = length;
        nuint bytes = (nuint)Math.Max(1, length) * (nuint)ElementSize(dtype) + 64;
        _allocation = NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(_allocation, bytes);
        Pointer = (byte*)_allocation + (misaligned ? 1 : offset);
    }

    public static NativeTensor Of(BnDType dtype, double[] values, bool misaligned = false, int offset = 0)
    {
        var t = new NativeTensor(dtype, values.Length, misaligned, offset);
        t.Write(values);
        return t;
    }

    public static NativeTensor Filled(BnDType dtype, int length, double value)
    {
        var values = new double[length];
        Array.Fill(values, value);
        return Of(dtype, values);
    }

    public static int ElementSize(BnDType dtype) => dtype switch { BnDType.F64 => 8, BnDType.F16 or BnDType.BF16 => 2, _ => 4 };

    /// <summary>The type of parameters, statistics and their gradients beside a tensor of <paramref name="dtype"/> (SPEC §1).</summary>
    public static BnDType ParameterType(BnDType dtype) => dtype == BnDType.F64 ? BnDType.F64 : BnDType.F32;

    public double this[int i]
    {
        // Unaligned reads and writes: a misaligned buffer's elements straddle their natural boundaries.
        get => DType switch
        {
            BnDType.F64 => Unsafe.ReadUnaligned<double>(At(i)),
            BnDType.F16 => (double)Unsafe.ReadUnaligned<Half>(At(i)),
            BnDType.BF16 => BitConverter.UInt32BitsToSingle((uint)Unsafe.ReadUnaligned<ushort>(At(i)) << 16),
            _ => Unsafe.ReadUnaligned<float>(At(i)),
        };
        set
        {
            switch (DType)
            {
                case BnDType.F64: Unsafe.WriteUnaligned(At(i), value); break;
                case BnDType.F16: Unsafe.WriteUnaligned(At(i), (Half)value); break;
                case BnDType.BF16: Unsafe.WriteUnaligned(At(i), Sixteen.BFloat16Bits(value)); break;
                default: Unsafe.WriteUnaligned(At(i), (float)value); break;
            }
        }
    }

    public void Write(double[] values)
    {
        for (int i = 0; i < values.Length; i++)
            this[i] = values[i];
    }

    /// <summary>The values as float64 (after rounding to the dtype, as the library sees them).</summary>
    private byte* At(int i) => (byte*)Pointer + (long)i * ElementSize(DType);

    public double[] Read()
    {
        var values = new double[Length];
        for (int i = 0; i < Length; i++)
            values[i] = this[i];
        return values;
    }

    /// <summary>The raw bytes, for bitwise comparisons.</summary>
    public byte[] Bytes() => new Span<byte>(Pointer, Length * ElementSize(DType)).ToArray();

    public void Dispose()
    {
        NativeMemory.AlignedFree(_allocation);
        _allocation = Pointer = null;
    }

    public static void* Ptr(NativeTensor? t) => t == null ? null : t.Pointer;
}
