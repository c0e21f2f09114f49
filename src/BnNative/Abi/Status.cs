namespace BnNative.Abi;

/// <summary>The <c>bn_status</c> codes (SPEC §3), and their static text.</summary>
internal static unsafe class Status
{
    public const int Success = 0;
    public const int NullPointer = 1;
    public const int BadShape = 2;
    public const int BadArgument = 3;
    public const int Unsupported = 4;
    public const int Internal = 5;

    /// <summary>Static, NUL-terminated text for a code; the caller never frees it.</summary>
    public static byte* Text(int status) => status switch
    {
        Success => NativeText.Of("success\0"u8),
        NullPointer => NativeText.Of("a required pointer is NULL\0"u8),
        BadShape => NativeText.Of("bad shape\0"u8),
        BadArgument => NativeText.Of("bad argument\0"u8),
        Unsupported => NativeText.Of("unsupported layout or dtype\0"u8),
        Internal => NativeText.Of("internal error\0"u8),
        _ => NativeText.Of("unknown status\0"u8),
    };
}
