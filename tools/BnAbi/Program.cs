using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using BnGenerator;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

// The one declaration of the C ABI is the library's [CExport] methods with their XML documentation
// (src/BnNative/Abi). This tool reads them (with the status codes, enums, descriptor and version beside
// them) and emits what the bindings declare, so no binding types the ABI by hand:
//   bindings/c/include/bnnative.h                      the C header, with per-parameter documentation
//   bindings/python/bnnative/_abi.py                   the Python ctypes table
//   bindings/dotnet/BnNative.Interop/BnLibrary.Abi.g.cs   the .NET enums, descriptor and function pointers
// Usage: dotnet run --project tools/BnAbi [-- --check]   (--check: fail, naming the file, if one is not current)

bool check = args.Contains("--check");
string root = Root();
var abiDirectory = Path.Combine(root, "src", "BnNative", "Abi");
var parse = new CSharpParseOptions(LanguageVersion.Preview, DocumentationMode.Parse);
var trees = Directory.GetFiles(abiDirectory, "*.cs").Order()
    .Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f), parse, f))
    .Append(CSharpSyntaxTree.ParseText(BnSourceGenerator.AttributeSource, parse, "BnGeneratorAttributes.g.cs"));
var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
    .Select(p => MetadataReference.CreateFromFile(p));
// The ABI files reference the rest of the library in method bodies; only declarations are read, so those
// references stay unresolved and do not matter.
var compilation = CSharpCompilation.Create("BnNativeAbi", trees, references,
    new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true));
var abi = AbiReader.Read(compilation);

// Version.Text is a UTF-8 literal (it has to be, to live in the image's read-only data): it must say the same.
string versionSource = File.ReadAllText(Path.Combine(abiDirectory, "Version.cs"));
var literal = Regex.Match(versionSource, "\"([0-9.]+)\\\\0\"u8");
if (!literal.Success || literal.Groups[1].Value != abi.Version)
{
    Console.Error.WriteLine($"tools/BnAbi: Version.Text says \"{literal.Groups[1].Value}\" but Major/Minor/Patch say {abi.Version}");
    return 1;
}

var outputs = new (string Path, string Text)[]
{
    ("bindings/c/include/bnnative.h", AbiEmitters.CHeader(abi)),
    ("bindings/python/bnnative/_abi.py", AbiEmitters.Python(abi)),
    ("bindings/dotnet/BnNative.Interop/BnLibrary.Abi.g.cs", AbiEmitters.Dotnet(abi)),
};
int stale = 0;
foreach (var (relative, text) in outputs)
{
    string path = Path.Combine(root, relative);
    bool current = File.Exists(path) && File.ReadAllText(path) == text;
    if (current)
        continue;
    if (check)
    {
        Console.Error.WriteLine($"tools/BnAbi: {relative} disagrees with the [CExport] methods of src/BnNative/Abi (./build.sh regenerates it)");
        stale++;
    }
    else
    {
        File.WriteAllText(path, text);
        Console.WriteLine($"tools/BnAbi: wrote {relative}");
    }
}
Console.WriteLine($"tools/BnAbi: {abi.Functions.Count} entry points, version {abi.Version}{(check && stale == 0 ? ", every binding current" : "")}");
return stale == 0 ? 0 : 1;

static string Root()
{
    for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir != null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "BnNative.sln")))
            return dir.FullName;
    throw new DirectoryNotFoundException("BnNative.sln not found above the current directory");
}
