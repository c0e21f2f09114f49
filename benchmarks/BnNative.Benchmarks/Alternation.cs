using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using BnNative.Interop;

namespace BnNative.Benchmarks;

/// <summary>
/// Two builds of the library in one process, A and B, timed on the same buffers in alternating blocks of calls (A then
/// B, then B then A, ...), so that both see the same moments of a shared, noisy machine. Comparing a change with the
/// build before it this way gave the measurements quoted in the library's comments; ratios from separate runs
/// (BenchmarkDotNet's processes, two runs of the peer harness) swing by tens of percent on a 2-vCPU VM.
/// <code>
/// alternate A.so B.so [--case "convnext ln-fwd NHWC"] [--threads 1] [--rounds 20] [--block 8] [--offset 0] [--offset-b 16] [--samples]
/// </code>
/// A and B are paths of libbnnative.so or of an image (libbnnative_avx512.so ...); the case is one of SPEC §5's, as
/// <see cref="Case.ToString"/> prints it. The first round warms up and is not counted. Prints, for each build, the median,
/// minimum and mean time of a call and the GB/s of the median, then A's median over B's (above 1: B is faster), and the
/// same ratio round by round (the medians of the two blocks of a round), whose spread shows how far the machine moved.
/// The buffers start on 64-byte boundaries, as PyTorch's do, or <c>--offset</c> bytes past them (16: malloc, NumPy);
/// <c>--offset-b</c> gives B buffers of its own at another offset, so that one build (A and B the same path) is compared
/// with itself on aligned and unaligned tensors.
/// Two copies of one image (two paths, so two loads) compared at 0.996–1.007× on mlp forward at 1 and 2 threads. Beside
/// another busy thread (a busy loop, another library's spinning OpenMP workers) two builds' ratio at 2 threads varied
/// from 0.66 to 1.98 between runs, so repeat runs there.
/// </summary>
public static class Alternation
{
    public static int Run(string[] args)
    {
        var paths = new List<string>();
        string caseName = "convnext ln-fwd NHWC";
        int threads = 1, rounds = 20, block = 8, offset = 0, offsetB = -1;
        bool samples = false;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--case": caseName = Value(); break;
                case "--threads": threads = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--block": block = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--offset": offset = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--offset-b": offsetB = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--samples": samples = true; break;
                default:
                    if (args[i].StartsWith("--", StringComparison.Ordinal))
                        throw new ArgumentException($"unknown option {args[i]}");
                    paths.Add(args[i]);
                    break;
            }
        }
        if (offsetB < 0)
            offsetB = offset;
        if (paths.Count != 2 || rounds < 2 || block < 1 || threads < 1 || !new[] { offset, offsetB }.All(o => o >= 0 && o < 64 && o % 4 == 0))
            throw new ArgumentException("usage: alternate A.so B.so [--case NAME] [--threads N] [--rounds R ≥ 2] [--block K] [--offset 0|4|…|60] [--offset-b 0|4|…|60] [--samples]");
        var @case = Case.Spec.FirstOrDefault(c => c.ToString() == caseName)
            ?? throw new ArgumentException($"no case \"{caseName}\"; SPEC §5's: {string.Join(", ", Case.Spec.Select(c => $"\"{c}\""))}");

        // dlopen gives one handle for one file, so A and B are the same library when their paths are.
        var libraries = paths.Select(p => BnLibrary.Load(Path.GetFullPath(p))).ToArray();
        using var buffersA = new CaseBuffers(@case, libraries[0], offset);
        using var ownBuffersB = offsetB != offset ? new CaseBuffers(@case, libraries[1], offsetB) : null;
        var buffers = new[] { buffersA, ownBuffersB ?? buffersA };
        for (int k = 0; k < 2; k++)
            CaseBuffers.Check(libraries[k], buffers[k].Call(libraries[k]));

        var times = new[] { new List<double>(), new List<double>() };
        var roundRatios = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            var blockMedians = new double[2];
            foreach (int k in round % 2 == 0 ? new[] { 0, 1 } : new[] { 1, 0 })
            {
                var library = libraries[k];
                library.SetNumThreads(threads);
                var blockTimes = new double[block];
                for (int i = 0; i < block; i++)
                {
                    long start = Stopwatch.GetTimestamp();
                    var status = buffers[k].Call(library);
                    blockTimes[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    CaseBuffers.Check(library, status);
                }
                blockMedians[k] = Median(blockTimes);
                if (round == 0)
                    continue; // warm-up
                times[k].AddRange(blockTimes);
                if (samples)
                    Console.WriteLine($"round {round,3} {"AB"[k]}: {string.Join(" ", blockTimes.Select(Ms))}");
            }
            if (round > 0)
                roundRatios.Add(blockMedians[0] / blockMedians[1]);
        }

        Console.WriteLine($"{@case}, {threads} thread(s), {rounds - 1} round(s) of {block} calls per build, alternated; buffers {offset} bytes past 64-byte boundaries{(offsetB != offset ? $" (B's {offsetB})" : "")}");
        for (int k = 0; k < 2; k++)
        {
            var t = times[k];
            double median = Median(t);
            Console.WriteLine($"{"AB"[k]} {libraries[k].Path} ({libraries[k].Isa}): median {Ms(median)} ms, min {Ms(t.Min())}, " +
                $"mean {Ms(t.Average())}; {(@case.MinimumBytes / (median * 1e-3) / 1e9).ToString("F1", CultureInfo.InvariantCulture)} GB/s");
        }
        roundRatios.Sort();
        Console.WriteLine($"A/B of the medians {Ratio(Median(times[0]) / Median(times[1]))} (above 1: B is faster); round by round " +
            $"{Ratio(roundRatios[0])} … {Ratio(Median(roundRatios))} … {Ratio(roundRatios[^1])} (min, median, max)");
        return 0;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static string Ms(double value) => value.ToString("F3", CultureInfo.InvariantCulture);

    private static string Ratio(double value) => value.ToString("F3", CultureInfo.InvariantCulture);
}
