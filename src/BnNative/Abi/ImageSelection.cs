using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace BnNative.Abi;

/// <summary>
/// The front library's choice of image. libbnnative.so (x86-64 baseline) checks CPUID and XCR0 before it
/// calls into anything, loads the best sibling image the CPU can run — libbnnative_avx512.so (x86-64-v4)
/// or libbnnative_avx2.so (x86-64-v3) — and forwards every export to it. An image whose level the CPU
/// lacks aborts the process at its first call, so an image is loaded only after the check passes.
/// BNNATIVE_ISA names a lower level to use (or "scalar"); an unknown name is ignored. Other images (and
/// the arm64 library) never forward: in them <see cref="Load"/> returns null.
/// </summary>
internal static unsafe class ImageSelection
{
    private enum Level { Scalar = 0, Vector128 = 1, Avx2 = 3, Avx512 = 4 }

    /// <summary>Addresses of <paramref name="entryPoints"/> in the chosen image, or null to run in this one.</summary>
    public static nint* Load(string[] entryPoints)
    {
#if BN_FRONT
        bool verbose = Environment.GetEnvironmentVariable("BNNATIVE_VERBOSE") is "1";
        try
        {
            Level detected = Detect(), requested = Requested(Environment.GetEnvironmentVariable("BNNATIVE_ISA"));
            Level target = Min(requested, detected);
            // The images lie beside the real file of this library: a symlinked libbnnative.so (.so → .so.0 →
            // .so.0.3.0, or a link from elsewhere) still finds them.
            string? own = OwnPath();
            string? directory = own == null ? null : Path.GetDirectoryName(RealPath(own));
            if (verbose)
                Say($"CPU and OS support {Name(detected)}{(requested < Level.Avx512 ? $", BNNATIVE_ISA asks for {Name(requested)}" : "")}; images looked for in {directory ?? "(unknown)"}");
            if (directory == null)
                return null;
            foreach (var (level, file) in new[] { (Level.Avx512, "libbnnative_avx512.so"), (Level.Avx2, "libbnnative_avx2.so") })
            {
                if (level > target)
                    continue;
                string path = Path.Combine(directory, file);
                if (!NativeLibrary.TryLoad(path, out nint image))
                {
                    if (verbose)
                        Say($"{path}: {(File.Exists(path) ? "cannot be loaded" : "missing")}");
                    continue;
                }
                var table = (nint*)NativeMemory.Alloc((nuint)entryPoints.Length, (nuint)sizeof(nint));
                bool complete = true;
                for (int i = 0; i < entryPoints.Length && complete; i++)
                    complete = NativeLibrary.TryGetExport(image, entryPoints[i], out table[i]);
                if (complete)
                {
                    if (verbose)
                        Say($"using {path}");
                    return table;
                }
                if (verbose)
                    Say($"{path}: lacks entry points of this version");
                NativeMemory.Free(table);
            }
            if (verbose)
                Say($"using the baseline kernels of {own} ({(target >= Level.Vector128 ? "vector128" : "scalar")})");
        }
        catch (Exception e)
        {
            // Any failure to choose leaves the baseline kernels of this library in use.
            if (verbose)
                Say($"image choice failed ({e.GetType().Name}): using the baseline kernels");
        }
#endif
        return null;
    }

    private static void Say(string message) => Console.Error.WriteLine("bnnative: " + message);

    private static string Name(Level level) => level switch
    {
        Level.Avx512 => "avx512",
        Level.Avx2 => "avx2",
        Level.Vector128 => "vector128",
        _ => "scalar",
    };

    private static string RealPath(string path)
    {
        byte* resolved = Realpath(path, null);
        if (resolved == null)
            return path;
        string real = Marshal.PtrToStringUTF8((nint)resolved) ?? path;
        NativeMemory.Free(resolved); // realpath(…, NULL) returns malloc'd memory
        return real;
    }

    private static Level Min(Level a, Level b) => a < b ? a : b;

    private static Level Requested(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        "scalar" => Level.Scalar,
        "vector128" or "neon" => Level.Vector128,
        "avx2" => Level.Avx2,
        _ => Level.Avx512,
    };

    /// <summary>The best level this CPU and OS support: the whole psABI level, and the OS saving its registers.</summary>
    private static Level Detect()
    {
        if (!X86Base.IsSupported)
            return Level.Vector128;
        static bool Bit(int value, int bit) => (value & (1 << bit)) != 0;
        var (maxLeaf, _, _, _) = X86Base.CpuId(0, 0);
        var (_, _, ecx1, _) = X86Base.CpuId(1, 0);
        if (maxLeaf < 7 || !Bit(ecx1, 27))  // OSXSAVE: without it XGETBV faults and AVX state is not saved
            return Level.Vector128;
        var (_, ebx7, _, _) = X86Base.CpuId(7, 0);
        var (_, _, ecxExt, _) = X86Base.CpuId(unchecked((int)0x80000001), 0);
        ulong xcr0 = ReadXcr0();

        bool v2 = Bit(ecx1, 0) && Bit(ecx1, 9) && Bit(ecx1, 13) && Bit(ecx1, 19) && Bit(ecx1, 20) && Bit(ecx1, 23);
        bool v3 = v2 && (xcr0 & 0x6) == 0x6
            && Bit(ecx1, 28) && Bit(ecx1, 12) && Bit(ecx1, 22) && Bit(ecx1, 29)      // AVX, FMA, MOVBE, F16C
            && Bit(ebx7, 5) && Bit(ebx7, 3) && Bit(ebx7, 8) && Bit(ecxExt, 5);        // AVX2, BMI1, BMI2, LZCNT
        bool v4 = v3 && (xcr0 & 0xE6) == 0xE6
            && Bit(ebx7, 16) && Bit(ebx7, 17) && Bit(ebx7, 28) && Bit(ebx7, 30) && Bit(ebx7, 31); // AVX-512 F, DQ, CD, BW, VL
        return v4 ? Level.Avx512 : v3 ? Level.Avx2 : Level.Vector128;
    }

    // XGETBV has no .NET intrinsic. These bytes are `xor ecx, ecx; xgetbv; shl rdx, 32; or rax, rdx; ret`,
    // placed in a page that is made executable, and run only when CPUID reports OSXSAVE.
    private static ReadOnlySpan<byte> XgetbvCode => [0x31, 0xC9, 0x0F, 0x01, 0xD0, 0x48, 0xC1, 0xE2, 0x20, 0x48, 0x09, 0xD0, 0xC3];

    private static ulong ReadXcr0()
    {
        const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;
        const nuint PageSize = 4096;
        void* page = Mmap(null, PageSize, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (page == (void*)-1)
            return 0;
        try
        {
            XgetbvCode.CopyTo(new Span<byte>(page, XgetbvCode.Length));
            if (Mprotect(page, PageSize, ProtRead | ProtExec) != 0)
                return 0;
            return ((delegate* unmanaged<ulong>)page)();
        }
        finally
        {
            Munmap(page, PageSize);
        }
    }

    private static string? OwnPath()
    {
        DlInfo info;
        void* inThisImage = (delegate*<string[], nint*>)&Load;
        return Dladdr(inThisImage, &info) != 0 && info.FileName != null ? Marshal.PtrToStringUTF8((nint)info.FileName) : null;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct DlInfo
    {
        public byte* FileName;
        public void* Base;
        public byte* SymbolName;
        public void* SymbolAddress;
    }

    [DllImport("libc.so.6", EntryPoint = "dladdr")]
    private static extern int Dladdr(void* address, DlInfo* info);

    [DllImport("libc.so.6", EntryPoint = "realpath")]
    private static extern byte* Realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* resolved);

    [DllImport("libc.so.6", EntryPoint = "mmap")]
    private static extern void* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [DllImport("libc.so.6", EntryPoint = "mprotect")]
    private static extern int Mprotect(void* address, nuint length, int protection);

    [DllImport("libc.so.6", EntryPoint = "munmap")]
    private static extern int Munmap(void* address, nuint length);
}
