using System;
using System.Runtime.InteropServices;

namespace BnNative.Interop;

/// <summary><c>bn_status</c>.</summary>
public enum BnStatus
{
    Success = 0,
    NullPointer = 1,
    BadShape = 2,
    BadArgument = 3,
    Unsupported = 4,
    Internal = 5,
}

/// <summary><c>bn_layout</c>.</summary>
public enum BnLayout
{
    NC = 0,
    NCHW = 1,
    NHWC = 2,
}

/// <summary><c>bn_dtype</c>.</summary>
public enum BnDType
{
    F32 = 0,
    F64 = 1,
    F16 = 2,
    BF16 = 3,
}

/// <summary><c>bn_tensor_desc</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct BnTensorDesc
{
    public int Layout;
    public int DType;
    public long N, C, H, W;

    public BnTensorDesc(BnLayout layout, BnDType dtype, long n, long c, long h = 1, long w = 1)
    {
        Layout = (int)layout;
        DType = (int)dtype;
        (N, C, H, W) = (n, c, h, w);
    }

    public readonly long Count => N * C * H * W;
}

/// <summary>
/// One loaded libbnnative image and its entry points. <see cref="Load"/> takes the path of
/// libbnnative.so (which picks the best image for the CPU) or of a specific image. Pointers are raw,
/// as in C: pin arrays with <c>fixed</c>; a null array pins to a null pointer.
/// </summary>
public sealed unsafe class BnLibrary
{
    private readonly delegate* unmanaged<int, byte*> _statusString;
    private readonly delegate* unmanaged<byte*> _lastErrorMessage, _version, _getIsa;
    private readonly delegate* unmanaged<int, int> _setNumThreads;
    private readonly delegate* unmanaged<int> _getNumThreads;
    private readonly delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, double, double, void*, void*, int> _bnForwardTraining;
    private readonly delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, double, int> _bnForwardInference;
    private readonly delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, void*, void*, int> _bnBackward;
    private readonly delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, double, void*, void*, int> _bnBackwardInference;

    private readonly delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, double, double, double, double, void*, void*, void*, void*, int> _brnForwardTraining;
    private readonly delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, void*, void*, void*, void*, int> _brnBackward;
    private readonly delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, double, void*, void*, int> _lnForward;
    private readonly delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, void*, void*, int> _lnBackward;

    private BnLibrary(string path)
    {
        Path = path;
        nint handle = NativeLibrary.Load(path);
        void* Export(string name) => (void*)NativeLibrary.GetExport(handle, name);
        _statusString = (delegate* unmanaged<int, byte*>)Export("bn_status_string");
        _lastErrorMessage = (delegate* unmanaged<byte*>)Export("bn_last_error_message");
        _version = (delegate* unmanaged<byte*>)Export("bn_version");
        _getIsa = (delegate* unmanaged<byte*>)Export("bn_get_isa");
        _setNumThreads = (delegate* unmanaged<int, int>)Export("bn_set_num_threads");
        _getNumThreads = (delegate* unmanaged<int>)Export("bn_get_num_threads");
        _bnForwardTraining = (delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, double, double, void*, void*, int>)Export("bn_batch_norm_forward_training");
        _bnForwardInference = (delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, double, int>)Export("bn_batch_norm_forward_inference");
        _bnBackward = (delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, void*, void*, int>)Export("bn_batch_norm_backward");
        _bnBackwardInference = (delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, double, void*, void*, int>)Export("bn_batch_norm_backward_inference");
        _brnForwardTraining = (delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, double, double, double, double, void*, void*, void*, void*, int>)Export("bn_batch_renorm_forward_training");
        _brnBackward = (delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, void*, void*, void*, void*, int>)Export("bn_batch_renorm_backward");
        _lnForward = (delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, double, void*, void*, int>)Export("bn_layer_norm_forward");
        _lnBackward = (delegate* unmanaged<BnTensorDesc*, void*, void*, void*, void*, void*, void*, void*, void*, int>)Export("bn_layer_norm_backward");
    }

    public static BnLibrary Load(string path) => new(path);

    public string Path { get; }

    private static string Text(byte* text) => Marshal.PtrToStringUTF8((nint)text) ?? "";

    public string Version => Text(_version());
    public string Isa => Text(_getIsa());
    public string LastErrorMessage => Text(_lastErrorMessage());
    public string StatusString(BnStatus status) => Text(_statusString((int)status));
    public int SetNumThreads(int n) => _setNumThreads(n);
    public int NumThreads => _getNumThreads();

    public BnStatus BatchNormForwardTraining(BnTensorDesc* desc, void* x, void* y, void* gamma, void* beta,
        void* runningMean, void* runningVar, double momentum, double eps, void* saveMean, void* saveInvstd) =>
        (BnStatus)_bnForwardTraining(desc, x, y, gamma, beta, runningMean, runningVar, momentum, eps, saveMean, saveInvstd);

    public BnStatus BatchNormForwardInference(BnTensorDesc* desc, void* x, void* y, void* gamma, void* beta,
        void* runningMean, void* runningVar, double eps) =>
        (BnStatus)_bnForwardInference(desc, x, y, gamma, beta, runningMean, runningVar, eps);

    public BnStatus BatchNormBackward(BnTensorDesc* desc, void* x, void* dy, void* dx, void* gamma,
        void* saveMean, void* saveInvstd, void* dgamma, void* dbeta) =>
        (BnStatus)_bnBackward(desc, x, dy, dx, gamma, saveMean, saveInvstd, dgamma, dbeta);

    public BnStatus BatchNormBackwardInference(BnTensorDesc* desc, void* x, void* dy, void* dx, void* gamma,
        void* runningMean, void* runningVar, double eps, void* dgamma, void* dbeta) =>
        (BnStatus)_bnBackwardInference(desc, x, dy, dx, gamma, runningMean, runningVar, eps, dgamma, dbeta);

    public BnStatus BatchRenormForwardTraining(BnTensorDesc* desc, void* x, void* y, void* gamma, void* beta,
        void* runningMean, void* runningVar, double momentum, double eps, double rmax, double dmax,
        void* saveMean, void* saveInvstd, void* saveR, void* saveD) =>
        (BnStatus)_brnForwardTraining(desc, x, y, gamma, beta, runningMean, runningVar, momentum, eps, rmax, dmax, saveMean, saveInvstd, saveR, saveD);

    public BnStatus BatchRenormBackward(BnTensorDesc* desc, void* x, void* dy, void* dx, void* gamma,
        void* saveMean, void* saveInvstd, void* saveR, void* saveD, void* dgamma, void* dbeta) =>
        (BnStatus)_brnBackward(desc, x, dy, dx, gamma, saveMean, saveInvstd, saveR, saveD, dgamma, dbeta);

    public BnStatus LayerNormForward(BnTensorDesc* desc, void* x, void* y, void* gamma, void* beta, double eps,
        void* saveMean, void* saveInvstd) =>
        (BnStatus)_lnForward(desc, x, y, gamma, beta, eps, saveMean, saveInvstd);

    public BnStatus LayerNormBackward(BnTensorDesc* desc, void* x, void* dy, void* dx, void* gamma,
        void* saveMean, void* saveInvstd, void* dgamma, void* dbeta) =>
        (BnStatus)_lnBackward(desc, x, dy, dx, gamma, saveMean, saveInvstd, dgamma, dbeta);
}
