using System;
using System.Runtime.InteropServices;
using BnNative.Interop;
using Xunit;

namespace BnNative.Tests;

/// <summary>
/// SPEC §3 "Extremes": a legal shape never returns BN_STATUS_INTERNAL, however large C or H·W. Counts past
/// 2^31 once overflowed an int where default γ/β were filled. One image (the widest): the tensor is 8.6 GB.
/// </summary>
public unsafe class LargeShapeTests
{
    [Fact]
    public void ALayerNormRowOfMoreThanTwoBillionChannelsInPlace()
    {
        var lib = Images.Best;
        long c = (1L << 31) + 64;
        // Fresh anonymous pages read as zero; transparent huge pages cut the page faults of writing 8.6 GB by 512.
        nuint bytes = (nuint)c * sizeof(float);
        var x = (float*)Mmap(null, bytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
        Assert.True(x != (float*)-1, "mmap of 8.6 GB failed");
        Madvise(x, bytes, MadvHugePage);
        try
        {
            x[0] = 1;
            x[c - 1] = -1;
            var d = new BnTensorDesc(BnLayout.NC, BnDType.F32, 1, c);
            float mean, invstd;
            var status = lib.LayerNormForward(&d, x, x, null, null, 1e-5, &mean, &invstd);
            Assert.True(status == BnStatus.Success, $"{status}: {lib.LastErrorMessage}");
            double expectedInvstd = 1 / Math.Sqrt(2.0 / c + 1e-5);
            Accuracy.Relative("save_invstd", 1e-5, [invstd], [expectedInvstd]);
            Assert.Equal(0.0, mean, 1e-12);
            Accuracy.Near("y", BnDType.F32, 1e-5, [x[0], x[c / 2], x[c - 1]], [expectedInvstd, 0, -expectedInvstd], [expectedInvstd, 0, expectedInvstd]);
        }
        finally
        {
            Munmap(x, bytes);
        }
    }

    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20, MapNoReserve = 0x4000, MadvHugePage = 14;

    [DllImport("libc.so.6", EntryPoint = "mmap")]
    private static extern void* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [DllImport("libc.so.6", EntryPoint = "madvise")]
    private static extern int Madvise(void* address, nuint length, int advice);

    [DllImport("libc.so.6", EntryPoint = "munmap")]
    private static extern int Munmap(void* address, nuint length);
}
