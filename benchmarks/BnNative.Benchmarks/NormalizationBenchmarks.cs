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
    private BnTensorDesc _desc;
    private readonly List<nint> _buffers = [];
    private float* _x, _y, _dy, _dx, _gamma, _beta, _runningMean, _runningVar, _mean, _invstd, _r, _d, _dgamma, _dbeta;

    [GlobalSetup]
    public void Setup()
    {
        _library = Load(Isa);
        if (_library.Isa != Isa)
            throw new InvalidOperationException($"asked for {Isa}, the image runs {_library.Isa} (does this CPU have it?)");
        _library.SetNumThreads(Threads);
        _desc = Case.Descriptor;
        long elements = Case.Elements, channels = Case.C, positions = Case.N * Case.H * Case.W;
        var random = new Random(1);
        _x = Filled(elements, () => (float)(random.NextDouble() * 4 - 1));
        _dy = Filled(elements, () => (float)(random.NextDouble() - 0.5));
        _y = Filled(elements, () => 0);
        _dx = Filled(elements, () => 0);
        _gamma = Filled(channels, () => 1);
        _beta = Filled(channels, () => 0);
        _runningMean = Filled(channels, () => 0);
        _runningVar = Filled(channels, () => 1);
        _mean = Filled(Case.IsLayerNorm ? positions : channels, () => 0);
        _invstd = Filled(Case.IsLayerNorm ? positions : channels, () => 1);
        _r = Filled(channels, () => 1);
        _d = Filled(channels, () => 0);
        _dgamma = Filled(channels, () => 0);
        _dbeta = Filled(channels, () => 0);
        // The saved statistics of x, as a forward leaves them for the backward.
        fixed (BnTensorDesc* desc = &_desc)
            Check(Case.IsLayerNorm
                ? _library.LayerNormForward(desc, _x, _y, _gamma, _beta, 1e-5, _mean, _invstd)
                : _library.BatchNormForwardTraining(desc, _x, _y, _gamma, _beta, null, null, 0.1, 1e-5, _mean, _invstd));
        Check(Call()); // a refused call would be timed as a fast one
    }

    [Benchmark]
    public BnStatus Call()
    {
        fixed (BnTensorDesc* desc = &_desc)
            return Case.Operation switch
            {
                Operation.BatchNormForwardTraining => _library.BatchNormForwardTraining(desc, _x, _y, _gamma, _beta, _runningMean, _runningVar, 0.1, 1e-5, _mean, _invstd),
                Operation.BatchNormBackward => _library.BatchNormBackward(desc, _x, _dy, _dx, _gamma, _mean, _invstd, _dgamma, _dbeta),
                Operation.BatchNormForwardInference => _library.BatchNormForwardInference(desc, _x, _y, _gamma, _beta, _runningMean, _runningVar, 1e-5),
                Operation.LayerNormForward => _library.LayerNormForward(desc, _x, _y, _gamma, _beta, 1e-5, _mean, _invstd),
                Operation.LayerNormBackward => _library.LayerNormBackward(desc, _x, _dy, _dx, _gamma, _mean, _invstd, _dgamma, _dbeta),
                // SPEC §5's BRN case runs with rmax = 3, dmax = 5 (as ../shared/bench times it).
                Operation.BatchRenormForwardTraining => _library.BatchRenormForwardTraining(desc, _x, _y, _gamma, _beta, _runningMean, _runningVar, 0.1, 1e-5, 3, 5, _mean, _invstd, _r, _d),
                _ => _library.BatchRenormBackward(desc, _x, _dy, _dx, _gamma, _mean, _invstd, _r, _d, _dgamma, _dbeta),
            };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var buffer in _buffers)
            NativeMemory.Free((void*)buffer);
        _buffers.Clear();
    }

    private float* Filled(long count, Func<float> value)
    {
        var buffer = (float*)NativeMemory.Alloc((nuint)count, sizeof(float));
        for (long i = 0; i < count; i++)
            buffer[i] = value();
        _buffers.Add((nint)buffer);
        return buffer;
    }

    private void Check(BnStatus status)
    {
        if (status != BnStatus.Success)
            throw new InvalidOperationException($"{status}: {_library.LastErrorMessage}");
    }

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
