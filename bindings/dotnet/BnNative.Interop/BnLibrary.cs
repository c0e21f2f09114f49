using System;
using System.IO;
using System.Runtime.InteropServices;

namespace BnNative.Interop;

public partial struct BnTensorDesc
{
    /// <summary>A descriptor of the given layout, dtype and dimensions (h = w = 1 for NC).</summary>
    public BnTensorDesc(BnLayout layout, BnDType dtype, long n, long c, long h = 1, long w = 1)
    {
        Layout = (int)layout;
        DType = (int)dtype;
        (N, C, H, W) = (n, c, h, w);
    }

    /// <summary>Elements of the tensor, N·C·H·W.</summary>
    public readonly long Count => N * C * H * W;
}

/// <summary>
/// One loaded libbnnative image and its entry points (declared in BnLibrary.Abi.g.cs, emitted from the
/// library's exports). <see cref="Load(string)"/> takes the path of libbnnative.so (which picks the best
/// image for the CPU) or of a specific image, so a process can hold several at once; <see cref="Load()"/>
/// finds the one this package ships. Pointers are raw, as in C; the checked, span-based API is
/// <see cref="Normalization"/>.
/// </summary>
public sealed unsafe partial class BnLibrary
{
    /// <summary>The handle <see cref="NativeLibrary"/> gave the library.</summary>
    public nint Handle { get; }

    /// <summary>The path the library was loaded from.</summary>
    public string Path { get; }

    /// <summary>Loads the library at <paramref name="path"/> (a file; a bare name is searched for as dlopen does).</summary>
    public static BnLibrary Load(string path) => new(NativeLibrary.Load(path), path);

    private static readonly Lazy<BnLibrary> Shipped = new(LoadShipped);

    /// <summary>
    /// The library shipped with this package: runtimes/&lt;rid&gt;/native/libbnnative.so as NuGet lays it out beside
    /// the application (found through its dependency manifest), else $BNNATIVE_LIBRARY. Loaded once per process.
    /// </summary>
    public static BnLibrary Load() => Shipped.Value;

    private static BnLibrary LoadShipped()
    {
        if (Environment.GetEnvironmentVariable("BNNATIVE_LIBRARY") is { Length: > 0 } overridden)
            return Load(overridden);
        var assembly = typeof(BnLibrary).Assembly;
        if (NativeLibrary.TryLoad("libbnnative", assembly, DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories, out nint handle))
            return new BnLibrary(handle, "libbnnative");
        string rid = RuntimeInformation.RuntimeIdentifier.StartsWith("linux-arm64", StringComparison.Ordinal) ? "linux-arm64" : "linux-x64";
        string beside = System.IO.Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", "libbnnative.so");
        if (File.Exists(beside))
            return Load(beside);
        throw new DllNotFoundException($"libbnnative.so not found beside the application (runtimes/{rid}/native) nor in BNNATIVE_LIBRARY");
    }

    private static string Text(byte* text) => Marshal.PtrToStringUTF8((nint)text) ?? "";

    /// <summary>"MAJOR.MINOR.PATCH" of the loaded library.</summary>
    public string Version => Text(VersionText());

    /// <summary>The kernels in use: "avx512", "avx2", "neon", "vector128" or "scalar".</summary>
    public string Isa => Text(GetIsaText());

    /// <summary>Why this thread's last failing call failed ("" if none has).</summary>
    public string LastErrorMessage => Text(LastErrorMessageText());

    /// <summary>The static text of a status.</summary>
    public string StatusString(BnStatus status) => Text(StatusStringText(status));

    /// <summary>The thread count calls use.</summary>
    public int NumThreads => GetNumThreads();
}
