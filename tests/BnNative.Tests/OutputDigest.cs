using System.Collections.Generic;
using System.Security.Cryptography;

namespace BnNative.Tests;

/// <summary>The bytes of a sequence of outputs, hashed: two runs agree bitwise exactly when their digests do.</summary>
public sealed class OutputDigest
{
    private readonly List<byte> _bytes = new();

    public void Add(params NativeTensor[] outputs)
    {
        foreach (var o in outputs)
            _bytes.AddRange(o.Bytes());
    }

    public override string ToString() => System.Convert.ToHexString(SHA256.HashData(_bytes.ToArray()));
}
