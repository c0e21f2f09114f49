using System;
using System.Linq;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

namespace BnNative.Benchmarks;

/// <summary>
/// Runs <see cref="NormalizationBenchmarks"/> with BenchmarkDotNet's command line (--filter, --join, exporters ...).
/// --quick measures a subset of the cases (both layouts, BatchNorm, LayerNorm and Batch Renormalization) with
/// fewer iterations, for a run of a few minutes; without it, every SPEC §5 case. <c>alternate A.so B.so ...</c> runs
/// <see cref="Alternation"/> instead: two builds timed side by side in one process.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "alternate")
        {
            try
            {
                return Alternation.Run(args[1..]);
            }
            catch (Exception e) when (e is ArgumentException or FormatException or DllNotFoundException or InvalidOperationException)
            {
                Console.Error.WriteLine($"alternate: {e.Message}");
                return 2;
            }
        }
        bool quick = args.Contains("--quick");
        args = args.Where(a => a != "--quick").ToArray();
        var job = quick
            ? Job.ShortRun.WithWarmupCount(2).WithIterationCount(5)
            : Job.Default.WithWarmupCount(3).WithIterationCount(10);
        if (quick)
        {
            Environment.SetEnvironmentVariable(NormalizationBenchmarks.CasesVariable, "quick");
            job = job.WithEnvironmentVariables(new EnvironmentVariable(NormalizationBenchmarks.CasesVariable, "quick"));
        }
        var config = DefaultConfig.Instance.AddJob(job.AsDefault()).AddColumn(new GigabytesPerSecondColumn())
            .WithOptions(ConfigOptions.DisableOptimizationsValidator);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        return 0;
    }
}
