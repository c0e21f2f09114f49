using System.Runtime.InteropServices;

namespace BnNative.Abi;

/// <summary>The C struct <c>bn_tensor_desc</c> (SPEC §1).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct TensorDesc
{
    public int Layout;
    public int DType;
    public long N, C, H, W;
}

/// <summary><c>bn_layout</c>.</summary>
internal enum Layout
{
    NC = 0,
    NCHW = 1,
    NHWC = 2,
}

/// <summary><c>bn_dtype</c>.</summary>
internal enum DType
{
    F32 = 0,
    F64 = 1,
    F16 = 2,
    BF16 = 3,
}
