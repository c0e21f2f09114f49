using System.Runtime.InteropServices;
using BnNative.Interop;
using Xunit;

namespace BnNative.Tests;

/// <summary>
/// The bindings' declarations (emitted by tools/BnAbi from the library's exports) against what every image
/// really exports: each declared entry point resolves, and the versions agree.
/// </summary>
public class AbiTests
{
    [Theory, MemberData(nameof(Images.Names), MemberType = typeof(Images))]
    public void EveryDeclaredEntryPointIsExported(string isa)
    {
        var lib = Images.ByIsa[isa];
        foreach (string name in BnLibrary.EntryPoints)
            Assert.True(NativeLibrary.TryGetExport(lib.Handle, name, out _), $"{isa}: {name} is declared but not exported");
    }

    [Theory, MemberData(nameof(Images.Names), MemberType = typeof(Images))]
    public void TheVersionTextAndNumberAgree(string isa)
    {
        var lib = Images.ByIsa[isa];
        var parts = System.Array.ConvertAll(lib.Version.Split('.'), int.Parse);
        Assert.Equal(3, parts.Length);
        Assert.Equal((uint)(parts[0] * 10000 + parts[1] * 100 + parts[2]), lib.VersionNumber());
    }
}
