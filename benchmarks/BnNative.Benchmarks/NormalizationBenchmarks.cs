using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BnNative.Interop;

namespace BnNative.Benchmarks;

/// <summary>
/// One call of a SPEC §5 case through the C ABI of one image, on buffers prepared once (as in a training loop, the
/// data stays allocated between calls). Each case × image × thread count runs in its own process (BenchmarkDotNet's
/// default), so the image reads its BNNATIVE_ISA at its first call in that process.
/// </summary>
public unsafe class NormalizationBenchmarks
{
    /// <summary>
    /// The variable that selects the quick subset. BenchmarkDotNet finds a parameter by its index in this source again
    /// in each benchmark process, so the choice travels as the job's environment, not as state of this process.
    /// </summary>
    public const string CasesVariable = "BNNATIVE_BENCH_CASES";

    public static IEnumerable<Case> CaseValues() => Environment.GetEnvironmentVariable(CasesVariable) == "quick" ? Case.Quick : Case.Spec;

    [ParamsSource(nameof(CaseValues))]
    public Case Case { get; set; } = Case.Spec[0];

    [Params("avx512", "avx2", "vector128")]
    public string Isa { get; set; } = "avx512";

    [Params(1, 2)]
    public int Threads { get; set; }

    private BnLibrary _library = null!;
    private CaseBuffers _buffers = null!;

    [GlobalSetup]
    public void Setup()
    {
        _library = Load(Isa);
        if (_library.Isa != Isa)
            throw new InvalidOperationException($"asked for {Isa}, the image runs {_library.Isa} (does this CPU have it?)");
        _library.SetNumThreads(Threads);
        _buffers = new CaseBuffers(Case, _library);
        CaseBuffers.Check(_library, Call());
    }

    [Benchmark]
    public BnStatus Call() => _buffers.Call(_library);

    [GlobalCleanup]
    public void Cleanup() => _buffers.Dispose();

    /// <summary>
    /// The image of <paramref name="isa"/> from artifacts/lib ($BNNATIVE_ARTIFACTS overrides): the AVX-512 and AVX2
    /// images by their files, the front's own Vector128 kernels through BNNATIVE_ISA.
    /// </summary>
    private static BnLibrary Load(string isa)
    {
        string directory = Path.Combine(Environment.GetEnvironmentVariable("BNNATIVE_ARTIFACTS") ?? Path.Combine(FindRoot(), "artifacts"), "lib");
        string file = isa switch { "avx512" => "libbnnative_avx512.so", "avx2" => "libbnnative_avx2.so", _ => "libbnnative.so" };
        if (isa == "vector128")
            SetEnv("BNNATIVE_ISA", "vector128", 1);
        var library = BnLibrary.Load(Path.Combine(directory, file));
        _ = library.Isa; // the image reads BNNATIVE_ISA at its first call
        return library;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "BnNative.sln")))
                return dir.FullName;
        // BenchmarkDotNet builds each benchmark process in its own folder: the working directory is the repository's then.
        return Directory.GetCurrentDirectory();
    }

    // The images read the process environment through libc, which Environment.SetEnvironmentVariable does not change.
    [DllImport("libc.so.6", EntryPoint = "setenv")]
    private static extern int SetEnv(string name, string value, int overwrite);
}
