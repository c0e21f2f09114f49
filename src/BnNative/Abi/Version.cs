namespace BnNative.Abi;

/// <summary>
/// The library's version. The C header's BN_VERSION_MAJOR/MINOR/PATCH/NUMBER, the shared object's SONAME
/// (libbnnative.so.MAJOR), the Python and .NET packages' versions all come from here (tools/BnAbi, build.sh).
/// </summary>
internal static class Version
{
    public const int Major = 0, Minor = 3, Patch = 0;

    /// <summary>MAJOR·10000 + MINOR·100 + PATCH.</summary>
    public const int Number = Major * 10000 + Minor * 100 + Patch;

    /// <summary>"MAJOR.MINOR.PATCH", NUL-terminated, in the image's read-only data.</summary>
    public static System.ReadOnlySpan<byte> Text => "0.3.0\0"u8;
}
