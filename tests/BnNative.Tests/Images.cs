using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using BnNative.Interop;

namespace BnNative.Tests;

/// <summary>
/// Every instruction-set image this CPU can run, loaded side by side from artifacts/lib:
/// the front library's own baseline kernels (BNNATIVE_ISA=vector128), its scalar kernels (a copy of it
/// loaded with BNNATIVE_ISA=scalar), and the AVX2 and AVX-512 images when the CPU has them. An image
/// reads BNNATIVE_ISA once, at its first call, so each is called once while the variable is set for it.
/// </summary>
public static class Images
{
    public static readonly string RepositoryRoot = FindRoot();
    public static readonly string LibraryDirectory = Path.Combine(RepositoryRoot, "artifacts", "lib");

    /// <summary>Name (what bn_get_isa must say) → image.</summary>
    public static readonly IReadOnlyDictionary<string, BnLibrary> ByIsa = LoadAll();

    public static IEnumerable<object[]> Names()
    {
        foreach (var name in ByIsa.Keys)
            yield return [name];
    }

    /// <summary>The widest image this CPU runs: what most property tests exercise.</summary>
    public static BnLibrary Best =>
        ByIsa.TryGetValue("avx512", out var a) ? a : ByIsa.TryGetValue("avx2", out var b) ? b : ByIsa["vector128"];

    private static Dictionary<string, BnLibrary> LoadAll()
    {
        string front = Path.Combine(LibraryDirectory, "libbnnative.so");
        if (!File.Exists(front))
            throw new FileNotFoundException("run ./build.sh first: the tests load the built library", front);
        var images = new Dictionary<string, BnLibrary>();
        BnLibrary Init(string isa, string path, string? env)
        {
            if (env == null) UnsetEnv("BNNATIVE_ISA"); else SetEnv("BNNATIVE_ISA", env, 1);
            var library = BnLibrary.Load(path);
            _ = library.Isa; // the image reads BNNATIVE_ISA now
            images[isa] = library;
            return library;
        }

        Init("vector128", front, "vector128");
        string copy = Path.Combine(Path.GetTempPath(), $"bnnative-scalar-{Environment.ProcessId}.so");
        File.Copy(front, copy, overwrite: true);
        Init("scalar", copy, "scalar");
        if (Avx2.IsSupported && Fma.IsSupported && Bmi1.IsSupported && Bmi2.IsSupported && Lzcnt.IsSupported)
            Init("avx2", Path.Combine(LibraryDirectory, "libbnnative_avx2.so"), null);
        if (Avx512F.IsSupported && Avx512BW.IsSupported && Avx512CD.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported)
            Init("avx512", Path.Combine(LibraryDirectory, "libbnnative_avx512.so"), null);
        UnsetEnv("BNNATIVE_ISA");
        return images;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "BnNative.sln")))
                return dir.FullName;
        throw new DirectoryNotFoundException("BnNative.sln not found above " + AppContext.BaseDirectory);
    }

    // The images read the process environment through libc, which Environment.SetEnvironmentVariable does not change.
    [DllImport("libc.so.6", EntryPoint = "setenv")]
    private static extern int SetEnv(string name, string value, int overwrite);

    [DllImport("libc.so.6", EntryPoint = "unsetenv")]
    private static extern int UnsetEnv(string name);
}
