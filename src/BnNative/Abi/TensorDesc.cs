using System.Runtime.InteropServices;

namespace BnNative.Abi;

/// <summary>A tensor: dense and row-major in its layout (docs/contract.md §1). No alignment is required of any pointer.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct TensorDesc
{
    /// <summary>a bn_layout</summary>
    public int Layout;
    /// <summary>a bn_dtype</summary>
    public int DType;
    /// <summary>batch</summary>
    public long N;
    /// <summary>channels</summary>
    public long C;
    /// <summary>height (1 for NC; BatchNorm1d (N, C, L): 1, with w = L)</summary>
    public long H;
    /// <summary>width (1 for NC)</summary>
    public long W;
}

/// <summary>
/// Where element (n, c, h, w) lives: NC n·C + c (h = w = 1); NCHW ((n·C + c)·H + h)·W + w; NHWC ((n·H + h)·W + w)·C + c.
/// </summary>
internal enum Layout
{
    /// <summary>rows of C: BatchNorm1d on (N, C), LayerNorm over the last axis</summary>
    NC = 0,
    /// <summary>channels first</summary>
    NCHW = 1,
    /// <summary>channels last</summary>
    NHWC = 2,
}

/// <summary>
/// The element type of x, y, dy and dx. Per-channel parameters, statistics and their gradients are double for
/// F64 and float for every other dtype.
/// </summary>
internal enum DType
{
    /// <summary>float</summary>
    F32 = 0,
    /// <summary>double</summary>
    F64 = 1,
    /// <summary>IEEE half precision</summary>
    F16 = 2,
    /// <summary>bfloat16 (the top 16 bits of a float)</summary>
    BF16 = 3,
}
