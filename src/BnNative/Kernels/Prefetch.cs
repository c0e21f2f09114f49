using System.Runtime.Intrinsics.X86;

namespace BnNative.Kernels;

/// <summary>
/// Software prefetch, for the few walks the hardware prefetcher does not keep ahead of (measured, where used). A
/// prefetch never faults, so it may name any address; where the image has no prefetch instruction (arm64 in .NET)
/// it does nothing.
/// </summary>
internal static unsafe class Prefetch
{
    private const int LineBytes = 64;

    /// <summary>Asks for the cache lines of [<paramref name="start"/>, <paramref name="start"/> + <paramref name="bytes"/>) to be read into L1.</summary>
    public static void Read(void* start, long bytes)
    {
        if (!Sse.IsSupported)
            return;
        for (long offset = 0; offset < bytes; offset += LineBytes)
            Sse.Prefetch0((byte*)start + offset);
    }
}
