namespace BnNative.Abi;

/// <summary>The <c>bn_status</c> codes (SPEC §3), and their static text.</summary>
internal static unsafe class Status
{
    /// <summary>the call did what it says</summary>
    public const int Success = 0;
    /// <summary>a required pointer is NULL, or only one of running_mean/running_var</summary>
    public const int NullPointer = 1;
    /// <summary>a dimension &lt; 1, NC with h or w != 1, or element or byte counts that overflow int64</summary>
    public const int BadShape = 2;
    /// <summary>eps &lt;= 0 or not finite, momentum outside [0, 1] or NaN, rmax &lt; 1, dmax &lt; 0, NaN rmax/dmax, N·H·W &lt; 2 in training</summary>
    public const int BadArgument = 3;
    /// <summary>an unknown layout or dtype, or a dtype this build lacks</summary>
    public const int Unsupported = 4;
    /// <summary>anything unexpected (the process never aborts); nothing was written</summary>
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
