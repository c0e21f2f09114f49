using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace BnNative.Abi;

/// <summary>C strings handed to callers: static literals, and one buffer per thread for the last error.</summary>
internal static unsafe class NativeText
{
    private const int MessageCapacity = 512;

    [ThreadStatic]
    private static byte* _lastError;

    /// <summary>
    /// The address of a UTF-8 literal that ends in NUL. "..."u8 literals live in the image's read-only
    /// data, so the address stays valid for the life of the library.
    /// </summary>
    public static byte* Of(ReadOnlySpan<byte> literal) =>
        (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(literal));

    /// <summary>This thread's last error message ("" if none yet); valid until its next failing call.</summary>
    public static byte* LastError => _lastError != null ? _lastError : Of("\0"u8);

    public static void SetLastError(string message)
    {
        if (_lastError == null)
            _lastError = (byte*)NativeMemory.Alloc(MessageCapacity);
        byte[] bytes = Encoding.UTF8.GetBytes(message);
        int length = Math.Min(bytes.Length, MessageCapacity - 1);
        bytes.AsSpan(0, length).CopyTo(new Span<byte>(_lastError, length));
        _lastError[length] = 0;
    }
}
