using System;
using System.Collections.Generic;
using BnNative.Interop;
using Xunit;

namespace BnNative.Tests;

/// <summary>
/// SPEC §3: every bad input returns its code, in the order NULL_POINTER, UNSUPPORTED, BAD_SHAPE,
/// BAD_ARGUMENT, leaves a message for the thread, and changes no output and no running statistic.
/// </summary>
public class ArgumentTests
{
    private const double Sentinel = -123.25;

    /// <summary>Arguments of one call; a test changes one or more, then calls.</summary>
    private sealed class Call : IDisposable
    {
        public BnTensorDesc Desc = new(BnLayout.NCHW, BnDType.F32, 2, 3, 2, 2);
        public NativeTensor? X, Dy, Y, Dx, Gamma, Beta, RunningMean, RunningVar, SaveMean, SaveInvstd, SaveR, SaveD, Dgamma, Dbeta;
        public double Momentum = 0.1, Eps = 1e-5, RMax = 2, DMax = 1;

        public Call()
        {
            var t = BnDType.F32;
            X = NativeTensor.Filled(t, 24, 1.5);
            X[0] = 3;
            Dy = NativeTensor.Filled(t, 24, 0.5);
            Y = NativeTensor.Filled(t, 24, Sentinel);
            Dx = NativeTensor.Filled(t, 24, Sentinel);
            Gamma = NativeTensor.Filled(t, 3, 1);
            Beta = NativeTensor.Filled(t, 3, 0);
            RunningMean = NativeTensor.Filled(t, 3, 0.25);
            RunningVar = NativeTensor.Filled(t, 3, 2);
            // Saved statistics have 8 entries: 3 channels for the batch norms, 8 positions for LayerNorm.
            SaveMean = NativeTensor.Filled(t, 8, 1);
            SaveInvstd = NativeTensor.Filled(t, 8, 1);
            SaveR = NativeTensor.Filled(t, 3, 1);
            SaveD = NativeTensor.Filled(t, 3, 0);
            Dgamma = NativeTensor.Filled(t, 3, Sentinel);
            Dbeta = NativeTensor.Filled(t, 3, Sentinel);
        }

        private IEnumerable<NativeTensor> Outputs()
        {
            foreach (var t in new[] { Y, Dx, RunningMean, RunningVar, SaveMean, SaveInvstd, SaveR, SaveD, Dgamma, Dbeta })
                if (t != null) yield return t;
        }

        public List<byte[]> Snapshot()
        {
            var list = new List<byte[]>();
            foreach (var t in Outputs()) list.Add(t.Bytes());
            return list;
        }

        public void Dispose()
        {
            foreach (var t in new[] { X, Dy, Y, Dx, Gamma, Beta, RunningMean, RunningVar, SaveMean, SaveInvstd, SaveR, SaveD, Dgamma, Dbeta })
                t?.Dispose();
        }
    }

    private static readonly Dictionary<string, Func<BnLibrary, Call, BnStatus>> Operations = new()
    {
        ["forward_training"] = (l, c) => Bn.ForwardTraining(l, c.Desc, c.X, c.Y, c.Gamma, c.Beta, c.RunningMean, c.RunningVar, c.Momentum, c.Eps, c.SaveMean, c.SaveInvstd),
        ["forward_inference"] = (l, c) => Bn.ForwardInference(l, c.Desc, c.X, c.Y, c.Gamma, c.Beta, c.RunningMean, c.RunningVar, c.Eps),
        ["backward"] = (l, c) => Bn.Backward(l, c.Desc, c.X, c.Dy, c.Dx, c.Gamma, c.SaveMean, c.SaveInvstd, c.Dgamma, c.Dbeta),
        ["backward_inference"] = (l, c) => Bn.BackwardInference(l, c.Desc, c.X, c.Dy, c.Dx, c.Gamma, c.RunningMean, c.RunningVar, c.Eps, c.Dgamma, c.Dbeta),
        ["renorm_forward_training"] = (l, c) => Bn.RenormForwardTraining(l, c.Desc, c.X, c.Y, c.Gamma, c.Beta, c.RunningMean, c.RunningVar,
            c.Momentum, c.Eps, c.RMax, c.DMax, c.SaveMean, c.SaveInvstd, c.SaveR, c.SaveD),
        ["renorm_backward"] = (l, c) => Bn.RenormBackward(l, c.Desc, c.X, c.Dy, c.Dx, c.Gamma, c.SaveMean, c.SaveInvstd, c.SaveR, c.SaveD, c.Dgamma, c.Dbeta),
        ["layer_norm_forward"] = (l, c) => Bn.LayerNormForward(l, c.Desc, c.X, c.Y, c.Gamma, c.Beta, c.Eps, c.SaveMean, c.SaveInvstd),
        ["layer_norm_backward"] = (l, c) => Bn.LayerNormBackward(l, c.Desc, c.X, c.Dy, c.Dx, c.Gamma, c.SaveMean, c.SaveInvstd, c.Dgamma, c.Dbeta),
    };

    /// <summary>What each operation reads, per SPEC §2–3.</summary>
    private sealed record Reads(bool Y, bool Dy, bool Running, bool Saved, bool Renorm, bool Eps, bool Momentum, bool NeedsTwo);

    private static readonly Dictionary<string, Reads> ReadsOf = new()
    {
        ["forward_training"] = new(Y: true, Dy: false, Running: false, Saved: false, Renorm: false, Eps: true, Momentum: true, NeedsTwo: true),
        ["forward_inference"] = new(Y: true, Dy: false, Running: true, Saved: false, Renorm: false, Eps: true, Momentum: false, NeedsTwo: false),
        ["backward"] = new(Y: false, Dy: true, Running: false, Saved: true, Renorm: false, Eps: false, Momentum: false, NeedsTwo: false),
        ["backward_inference"] = new(Y: false, Dy: true, Running: true, Saved: false, Renorm: false, Eps: true, Momentum: false, NeedsTwo: false),
        ["renorm_forward_training"] = new(Y: true, Dy: false, Running: true, Saved: false, Renorm: true, Eps: true, Momentum: true, NeedsTwo: true),
        ["renorm_backward"] = new(Y: false, Dy: true, Running: false, Saved: true, Renorm: false, Eps: false, Momentum: false, NeedsTwo: false),
        ["layer_norm_forward"] = new(Y: true, Dy: false, Running: false, Saved: false, Renorm: false, Eps: true, Momentum: false, NeedsTwo: false),
        ["layer_norm_backward"] = new(Y: false, Dy: true, Running: false, Saved: true, Renorm: false, Eps: false, Momentum: false, NeedsTwo: false),
    };

    /// <summary>(operation, what is wrong, the change, expected status). Operations that do not read an argument are absent.</summary>
    public static TheoryData<string, string, BnStatus> BadCalls()
    {
        var data = new TheoryData<string, string, BnStatus>();
        foreach (var op in Operations.Keys)
        {
            foreach (var (name, _) in Changes)
            {
                var expected = Expected(op, name);
                if (expected != null)
                    data.Add(op, name, expected.Value);
            }
        }
        return data;
    }

    private static readonly (string Name, Action<Call> Change)[] Changes =
    [
        ("null desc", _ => { }), // the test passes a NULL desc itself
        ("null x", c => c.X = null),
        ("null y", c => c.Y = null),
        ("null dy", c => c.Dy = null),
        ("null running_mean only", c => c.RunningMean = null),
        ("null running_var only", c => c.RunningVar = null),
        ("null save_mean", c => c.SaveMean = null),
        ("null save_invstd", c => c.SaveInvstd = null),
        ("null save_r", c => c.SaveR = null),
        ("null save_d", c => c.SaveD = null),
        ("rmax < 1", c => c.RMax = 0.5),
        ("rmax NaN", c => c.RMax = double.NaN),
        ("dmax < 0", c => c.DMax = -1),
        ("dmax NaN", c => c.DMax = double.NaN),
        ("unknown layout", c => c.Desc.Layout = 3),
        ("negative layout", c => c.Desc.Layout = -1),
        ("unknown dtype", c => c.Desc.DType = 9),
        ("n = 0", c => c.Desc.N = 0),
        ("c = -1", c => c.Desc.C = -1),
        ("w = 0", c => c.Desc.W = 0),
        ("NC with h = 2", c => c.Desc = new BnTensorDesc(BnLayout.NC, BnDType.F32, 2, 3, 2, 1)),
        ("elements overflow", c => c.Desc = new BnTensorDesc(BnLayout.NCHW, BnDType.F32, 1L << 40, 1L << 30, 1, 1)),
        ("bytes overflow", c => c.Desc = new BnTensorDesc(BnLayout.NCHW, BnDType.F64, 1L << 31, 1L << 30, 1, 1)),
        ("eps = 0", c => c.Eps = 0),
        ("eps < 0", c => c.Eps = -1e-5),
        ("eps NaN", c => c.Eps = double.NaN),
        ("eps infinite", c => c.Eps = double.PositiveInfinity),
        ("momentum > 1", c => c.Momentum = 1.5),
        ("momentum < 0", c => c.Momentum = -0.1),
        ("momentum NaN", c => c.Momentum = double.NaN),
        ("M = 1", c => c.Desc = new BnTensorDesc(BnLayout.NCHW, BnDType.F32, 1, 3, 1, 1)),
        ("several wrong: NULL x, bad layout, n = 0, eps = 0", c => { c.X = null; c.Desc.Layout = 7; c.Desc.N = 0; c.Eps = 0; }),
        ("several wrong: bad dtype, n = 0, eps = 0", c => { c.Desc.DType = 8; c.Desc.N = 0; c.Eps = 0; }),
        ("several wrong: n = 0, momentum 2", c => { c.Desc.N = 0; c.Momentum = 2; }),
    ];

    private static BnStatus? Expected(string op, string change)
    {
        var reads = ReadsOf[op];
        bool training = op == "forward_training";
        bool renormBackward = op == "renorm_backward";
        return change switch
        {
            "null desc" or "null x" => BnStatus.NullPointer,
            "null y" => reads.Y ? BnStatus.NullPointer : null,
            "null dy" => reads.Dy ? BnStatus.NullPointer : null,
            // BatchNorm training takes both running statistics or neither; the others that read them need both.
            "null running_mean only" or "null running_var only" => reads.Running || training ? BnStatus.NullPointer : null,
            "null save_mean" or "null save_invstd" => reads.Saved ? BnStatus.NullPointer : null,
            "null save_r" or "null save_d" => renormBackward ? BnStatus.NullPointer : null,
            "unknown layout" or "negative layout" or "unknown dtype" => BnStatus.Unsupported,
            "n = 0" or "c = -1" or "w = 0" or "NC with h = 2" or "elements overflow" or "bytes overflow" => BnStatus.BadShape,
            "eps = 0" or "eps < 0" or "eps NaN" or "eps infinite" => reads.Eps ? BnStatus.BadArgument : null,
            "momentum > 1" or "momentum < 0" or "momentum NaN" => reads.Momentum ? BnStatus.BadArgument : null,
            "rmax < 1" or "rmax NaN" or "dmax < 0" or "dmax NaN" => reads.Renorm ? BnStatus.BadArgument : null,
            "M = 1" => reads.NeedsTwo ? BnStatus.BadArgument : null,
            "several wrong: NULL x, bad layout, n = 0, eps = 0" => BnStatus.NullPointer,
            "several wrong: bad dtype, n = 0, eps = 0" => BnStatus.Unsupported,
            "several wrong: n = 0, momentum 2" => BnStatus.BadShape,
            _ => throw new ArgumentException(change),
        };
    }

    [Theory, MemberData(nameof(BadCalls))]
    public unsafe void BadInputReturnsItsCodeAndWritesNothing(string op, string change, BnStatus expected)
    {
        foreach (var (isa, lib) in Images.ByIsa)
        {
            using var call = new Call();
            foreach (var (name, apply) in Changes)
                if (name == change) apply(call);
            var before = call.Snapshot();
            BnStatus status;
            if (change == "null desc")
            {
                // The same call with a NULL desc: the delegate receives a copy, so the pointer is passed here.
                status = op switch
                {
                    "forward_training" => lib.BatchNormForwardTraining(null, call.X!.Pointer, call.Y!.Pointer, null, null, null, null, 0.1, 1e-5, null, null),
                    "forward_inference" => lib.BatchNormForwardInference(null, call.X!.Pointer, call.Y!.Pointer, null, null, call.RunningMean!.Pointer, call.RunningVar!.Pointer, 1e-5),
                    "backward" => lib.BatchNormBackward(null, call.X!.Pointer, call.Dy!.Pointer, call.Dx!.Pointer, null, call.SaveMean!.Pointer, call.SaveInvstd!.Pointer, null, null),
                    "backward_inference" => lib.BatchNormBackwardInference(null, call.X!.Pointer, call.Dy!.Pointer, call.Dx!.Pointer, null, call.RunningMean!.Pointer, call.RunningVar!.Pointer, 1e-5, null, null),
                    "renorm_forward_training" => lib.BatchRenormForwardTraining(null, call.X!.Pointer, call.Y!.Pointer, null, null, call.RunningMean!.Pointer, call.RunningVar!.Pointer, 0.1, 1e-5, 2, 1, null, null, null, null),
                    "renorm_backward" => lib.BatchRenormBackward(null, call.X!.Pointer, call.Dy!.Pointer, call.Dx!.Pointer, null, call.SaveMean!.Pointer, call.SaveInvstd!.Pointer, call.SaveR!.Pointer, call.SaveD!.Pointer, null, null),
                    "layer_norm_forward" => lib.LayerNormForward(null, call.X!.Pointer, call.Y!.Pointer, null, null, 1e-5, null, null),
                    _ => lib.LayerNormBackward(null, call.X!.Pointer, call.Dy!.Pointer, call.Dx!.Pointer, null, call.SaveMean!.Pointer, call.SaveInvstd!.Pointer, null, null),
                };
            }
            else
            {
                status = Operations[op](lib, call);
            }
            Assert.True(expected == status, $"{isa} {op} with {change}: {status}, expected {expected}");
            Assert.NotEqual("", lib.LastErrorMessage);
            var after = call.Snapshot();
            for (int i = 0; i < before.Count; i++)
                Assert.True(before[i].AsSpan().SequenceEqual(after[i]), $"{isa} {op} with {change}: an output changed");
        }
    }

    [Fact]
    public void TheSameCallsSucceedWhenNothingIsWrong()
    {
        foreach (var (isa, lib) in Images.ByIsa)
            foreach (var (op, run) in Operations)
            {
                using var call = new Call();
                Assert.True(run(lib, call) == BnStatus.Success, $"{isa} {op}: {lib.LastErrorMessage}");
            }
    }

    [Fact]
    public void MessagesArePerThreadAndStatusStringsAreStatic()
    {
        var lib = Images.Best;
        using var call = new Call();
        call.Eps = -1;
        Assert.Equal(BnStatus.BadArgument, Operations["forward_inference"](lib, call));
        Assert.Contains("eps", lib.LastErrorMessage);
        string other = "";
        var thread = new System.Threading.Thread(() => other = lib.LastErrorMessage);
        thread.Start();
        thread.Join();
        Assert.Equal("", other);
        Assert.Equal("success", lib.StatusString(BnStatus.Success));
        foreach (BnStatus s in Enum.GetValues<BnStatus>())
            Assert.False(string.IsNullOrEmpty(lib.StatusString(s)));
        Assert.Equal("unknown status", lib.StatusString((BnStatus)77));
    }
}
