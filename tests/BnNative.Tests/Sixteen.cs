using System;
using BnNative.Interop;
using Xunit;

namespace BnNative.Tests;

/// <summary>The 16-bit formats on the test side, written apart from the library's conversions: rounding and ulps.</summary>
public static class Sixteen
{
    /// <summary>The bfloat16 pattern nearest <paramref name="value"/> (through float; ties to even; NaN quiet).</summary>
    public static ushort BFloat16Bits(double value)
    {
        float f = (float)value;
        if (float.IsNaN(f))
            return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(f);
        uint dropped = bits & 0xFFFF, kept = bits >> 16;
        if (dropped > 0x8000 || (dropped == 0x8000 && (kept & 1) == 1))
            kept++;
        return (ushort)kept;
    }

    public static double Round(BnDType t, double value) => t switch
    {
        BnDType.F16 => (double)(Half)value,
        BnDType.BF16 => BitConverter.UInt32BitsToSingle((uint)BFloat16Bits(value) << 16),
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>The spacing of the format at <paramref name="value"/>: 2^(e − 10) for F16, 2^(e − 7) for BF16; the subnormal step below the normal range.</summary>
    public static double Ulp(BnDType t, double value)
    {
        var (smallestNormal, fractionBits, subnormalStep) = t == BnDType.F16 ? (Math.ScaleB(1, -14), 10, Math.ScaleB(1, -24)) : (Math.ScaleB(1, -126), 7, Math.ScaleB(1, -133));
        double a = Math.Abs(value);
        return a < smallestNormal ? subnormalStep : Math.ScaleB(1, Math.ILogB(a) - fractionBits);
    }

    /// <summary>SPEC §4's F16/BF16 row for a tensor output: within 2.5 ulps of the format plus the F32 rule.</summary>
    public static void Near(string what, BnDType t, double tol, double[] got, double[] expected, double[]? scale = null)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            double bound = 2.5 * Ulp(t, expected[i]) + tol * (1 + Math.Max(Math.Abs(expected[i]), scale?[i] ?? 0));
            double error = Math.Abs(got[i] - expected[i]);
            if (!(error <= bound)) // the message only for a failure (see Accuracy.Near)
                Assert.Fail($"{what}[{i}] = {got[i]:R}, expected {expected[i]:R} (error {error:E2} > {bound:E2})");
        }
    }
}
