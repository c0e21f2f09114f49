using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace BnNative.Abi;

/// <summary>C strings handed to callers: static literals, and one buffer per thread for the last error.</summary>
internal static unsafe class NativeText
{
    private const int MessageCapacity = 512;

    // A pinned managed array, not native memory: it is freed with the thread's statics when the thread
    // ends (a malloc'd buffer here leaked for every host thread that ever saw an error).
    [ThreadStatic]
    private static byte[]? _lastError;

    /// <summary>
    /// The address of a UTF-8 literal that ends in NUL. "..."u8 literals live in the image's read-only
    /// data, so the address stays valid for the life of the library.
    /// </summary>
    public static byte* Of(ReadOnlySpan<byte> literal) =>
        (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(literal));

    /// <summary>This thread's last error message ("" if none yet); valid until its next failing call.</summary>
    public static byte* LastError => _lastError != null
        ? (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_lastError))
        : Of("\0"u8);

    public static void SetLastError(string message)
    {
        _lastError ??= GC.AllocateArray<byte>(MessageCapacity, pinned: true);
        byte[] bytes = Encoding.UTF8.GetBytes(message);
        int length = Math.Min(bytes.Length, MessageCapacity - 1);
        bytes.AsSpan(0, length).CopyTo(_lastError);
        _lastError[length] = 0;
    }
}
