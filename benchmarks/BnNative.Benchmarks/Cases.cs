using BnNative.Interop;

namespace BnNative.Benchmarks;

/// <summary>The operations SPEC §5 times.</summary>
public enum Operation { BatchNormForwardTraining, BatchNormBackward, BatchNormForwardInference, LayerNormForward, LayerNormBackward, BatchRenormForwardTraining, BatchRenormBackward }

/// <summary>
/// One SPEC §5 case: an operation on a shape in a layout (f32), and the bytes it must move at the least (forward:
/// read x, write y; backward: read x and dy, write dx), from which the GB/s column is computed.
/// </summary>
public sealed record Case(string Name, Operation Operation, BnLayout Layout, long N, long C, long H, long W)
{
    public long Elements => N * C * H * W;

    public long MinimumBytes => Elements * sizeof(float) * (IsBackward ? 3 : 2);

    public bool IsBackward => Operation is Operation.BatchNormBackward or Operation.LayerNormBackward or Operation.BatchRenormBackward;

    public bool IsLayerNorm => Operation is Operation.LayerNormForward or Operation.LayerNormBackward;

    public BnTensorDesc Descriptor => new(Layout, BnDType.F32, N, C, H, W);

    // BenchmarkDotNet prints parameters with ToString: the name the SPEC and ../shared/bench use.
    public override string ToString() => $"{Name} {Short(Operation)} {Layout}";

    private static string Short(Operation operation) => operation switch
    {
        Operation.BatchNormForwardTraining => "bn-fwd-train",
        Operation.BatchNormBackward => "bn-bwd",
        Operation.BatchNormForwardInference => "bn-fwd-infer",
        Operation.LayerNormForward => "ln-fwd",
        Operation.LayerNormBackward => "ln-bwd",
        Operation.BatchRenormForwardTraining => "brn-fwd-train",
        _ => "brn-bwd",
    };

    /// <summary>SPEC §5's table (the --big cases beyond any cache are left to ../shared/bench's --big).</summary>
    public static readonly Case[] Spec =
    [
        new("resnet-early", Operation.BatchNormForwardTraining, BnLayout.NCHW, 32, 64, 56, 56),
        new("resnet-early", Operation.BatchNormBackward, BnLayout.NCHW, 32, 64, 56, 56),
        new("resnet-early", Operation.BatchNormForwardTraining, BnLayout.NHWC, 32, 64, 56, 56),
        new("resnet-early", Operation.BatchNormBackward, BnLayout.NHWC, 32, 64, 56, 56),
        new("resnet-late", Operation.BatchNormForwardTraining, BnLayout.NCHW, 32, 512, 7, 7),
        new("resnet-late", Operation.BatchNormBackward, BnLayout.NCHW, 32, 512, 7, 7),
        new("resnet-late", Operation.BatchNormForwardTraining, BnLayout.NHWC, 32, 512, 7, 7),
        new("resnet-late", Operation.BatchNormBackward, BnLayout.NHWC, 32, 512, 7, 7),
        new("mlp", Operation.BatchNormForwardTraining, BnLayout.NC, 256, 4096, 1, 1),
        new("mlp", Operation.BatchNormBackward, BnLayout.NC, 256, 4096, 1, 1),
        new("inference", Operation.BatchNormForwardInference, BnLayout.NCHW, 1, 256, 56, 56),
        new("inference", Operation.BatchNormForwardInference, BnLayout.NHWC, 1, 256, 56, 56),
        new("bert", Operation.LayerNormForward, BnLayout.NC, 8192, 768, 1, 1),
        new("bert", Operation.LayerNormBackward, BnLayout.NC, 8192, 768, 1, 1),
        new("llm", Operation.LayerNormForward, BnLayout.NC, 2048, 4096, 1, 1),
        new("llm", Operation.LayerNormBackward, BnLayout.NC, 2048, 4096, 1, 1),
        new("convnext", Operation.LayerNormForward, BnLayout.NHWC, 32, 96, 56, 56),
        new("convnext", Operation.LayerNormBackward, BnLayout.NHWC, 32, 96, 56, 56),
        new("convnext", Operation.LayerNormForward, BnLayout.NCHW, 32, 96, 56, 56),
        new("convnext", Operation.LayerNormBackward, BnLayout.NCHW, 32, 96, 56, 56),
        new("renorm", Operation.BatchRenormForwardTraining, BnLayout.NHWC, 8, 256, 28, 28),
        new("renorm", Operation.BatchRenormBackward, BnLayout.NHWC, 8, 256, 28, 28),
    ];

    /// <summary>A few cases that cover both layouts and both families, for a run of a few minutes.</summary>
    public static readonly Case[] Quick = [Spec[0], Spec[3], Spec[8], Spec[13], Spec[16], Spec[20]];
}
