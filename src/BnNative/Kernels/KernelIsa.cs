using System;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace BnNative.Kernels;

/// <summary>Which kernels this image runs: its widest vectors, or scalar when BNNATIVE_ISA=scalar.</summary>
internal static class KernelIsa
{
    /// <summary>False when BNNATIVE_ISA=scalar: every generated ladder then takes its scalar rung.</summary>
    public static readonly bool UseVectors =
        !string.Equals(Environment.GetEnvironmentVariable("BNNATIVE_ISA")?.Trim(), "scalar", StringComparison.OrdinalIgnoreCase);

    /// <summary>The name bn_get_isa reports for the kernels in use.</summary>
    public static string Name =>
        !UseVectors ? "scalar"
        : Vector512.IsHardwareAccelerated ? "avx512"
        : Vector256.IsHardwareAccelerated && Avx2.IsSupported ? "avx2"
        : AdvSimd.IsSupported ? "neon"
        : Vector128.IsHardwareAccelerated ? "vector128"
        : "scalar";
}
