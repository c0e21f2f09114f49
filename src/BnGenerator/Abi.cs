using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Microsoft.CodeAnalysis;

namespace BnGenerator
{
    /// <summary>A named integer constant of the C ABI (a status code, a layout, a dtype), with its documentation.</summary>
    public sealed record AbiConstant(string Name, long Value, string Doc);

    /// <summary>A field of <c>bn_tensor_desc</c>: its C name, its name in the library's TensorDesc (and the .NET binding), C type, documentation.</summary>
    public sealed record AbiField(string Name, string ManagedName, string CType, string Doc);

    /// <summary>
    /// A parameter of an entry point: its C name (snake_case), C type, kind for the bindings ("desc",
    /// "pointer", "double", "int32") and documentation.
    /// </summary>
    public sealed record AbiParameter(string Name, string CType, string Kind, string Doc);

    /// <summary>An entry point: C name, C return type, the kind it returns ("status", "int32", "uint32", "text") and documentation.</summary>
    public sealed record AbiFunction(string Name, string CReturnType, string ReturnKind, string Summary, string Returns, IReadOnlyList<AbiParameter> Parameters);

    /// <summary>The whole C ABI, read from the library's sources: the one declaration every binding is emitted from.</summary>
    public sealed record AbiModel(
        int Major, int Minor, int Patch,
        IReadOnlyList<AbiConstant> Statuses, IReadOnlyList<AbiConstant> Layouts, IReadOnlyList<AbiConstant> DTypes,
        IReadOnlyList<AbiField> DescFields, string DescDoc, string LayoutDoc, string DTypeDoc,
        IReadOnlyList<AbiFunction> Functions)
    {
        public string Version => $"{Major}.{Minor}.{Patch}";
        public int VersionNumber => Major * 10000 + Minor * 100 + Patch;
    }

    /// <summary>
    /// Reads the <see cref="AbiModel"/> from a compilation of the library's ABI sources: the <c>[CExport]</c> methods
    /// (with their XML documentation and <c>[CConst]</c> markers), the status codes (<c>BnNative.Abi.Status</c>), the
    /// <c>Layout</c> and <c>DType</c> enums, the <c>TensorDesc</c> struct and the <c>Version</c> constants.
    /// </summary>
    public static class AbiReader
    {
        public static AbiModel Read(Compilation compilation)
        {
            INamedTypeSymbol Type(string name) => compilation.GetTypeByMetadataName("BnNative.Abi." + name)
                ?? throw new InvalidOperationException($"BnNative.Abi.{name} not found");
            var version = Type("Version");
            int Const(string name) => Convert.ToInt32(version.GetMembers(name).OfType<IFieldSymbol>().Single().ConstantValue, CultureInfo.InvariantCulture);

            var statuses = Type("Status").GetMembers().OfType<IFieldSymbol>().Where(f => f.IsConst)
                .Select(f => new AbiConstant("BN_STATUS_" + Snake(f.Name).ToUpperInvariant(), Convert.ToInt64(f.ConstantValue, CultureInfo.InvariantCulture), Summary(f)))
                .ToList();
            List<AbiConstant> EnumValues(string type, string prefix) => Type(type).GetMembers().OfType<IFieldSymbol>().Where(f => f.HasConstantValue)
                .Select(f => new AbiConstant(prefix + f.Name.ToUpperInvariant(), Convert.ToInt64(f.ConstantValue, CultureInfo.InvariantCulture), Summary(f)))
                .ToList();
            var desc = Type("TensorDesc");
            var fields = desc.GetMembers().OfType<IFieldSymbol>().Where(f => !f.IsStatic)
                .Select(f => new AbiField(f.Name.ToLowerInvariant(), f.Name, f.Type.SpecialType == SpecialType.System_Int64 ? "int64_t" : "int32_t", Summary(f)))
                .ToList();

            var functions = new List<AbiFunction>();
            foreach (var tree in compilation.SyntaxTrees)
            {
                var model = compilation.GetSemanticModel(tree);
                foreach (var node in tree.GetRoot().DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.MethodDeclarationSyntax>())
                {
                    if (model.GetDeclaredSymbol(node) is not IMethodSymbol method)
                        continue;
                    var export = method.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == ExportSpec.AttributeName);
                    if (export != null)
                        functions.Add(Function(method, export));
                }
            }
            return new AbiModel(Const("Major"), Const("Minor"), Const("Patch"), statuses,
                EnumValues("Layout", "BN_LAYOUT_"), EnumValues("DType", "BN_DTYPE_"), fields,
                Summary(desc), Summary(Type("Layout")), Summary(Type("DType")), functions);
        }

        private static AbiFunction Function(IMethodSymbol method, AttributeData export)
        {
            string name = (string)export.ConstructorArguments[0].Value!;
            string returns = export.NamedArguments.FirstOrDefault(a => a.Key == "Returns").Value.Value as string ?? "";
            var xml = Parse(method.GetDocumentationCommentXml());
            string returnType = method.ReturnType.ToDisplayString();
            var (cReturn, returnKind) = returnType switch
            {
                "byte*" => ("const char*", "text"),
                "int" when returns == "" => ("bn_status", "status"),
                "int" when returns == "uint32_t" => ("uint32_t", "uint32"),
                "int" => (returns, "int32"),
                _ => throw new InvalidOperationException($"{name}: return type {returnType}"),
            };
            var parameters = method.Parameters.Select(p =>
            {
                bool isConst = p.GetAttributes().Any(a => a.AttributeClass?.Name == "CConstAttribute");
                string type = p.Type.ToDisplayString();
                var (cType, kind) = type switch
                {
                    "BnNative.Abi.TensorDesc*" => ("const bn_tensor_desc*", "desc"),
                    "void*" => (isConst ? "const void*" : "void*", "pointer"),
                    "double" => ("double", "double"),
                    "long" => ("int64_t", "int64"),
                    // bn_status_string's argument is a status; other int parameters are counts.
                    "int" => (p.Name == "status" ? "bn_status" : "int32_t", "int32"),
                    _ => throw new InvalidOperationException($"{name}: parameter {p.Name} of type {type}"),
                };
                string doc = xml?.Elements("param").FirstOrDefault(e => (string?)e.Attribute("name") == p.Name) is { } element ? Text(element) : "";
                return new AbiParameter(Snake(p.Name), cType, kind, doc);
            }).ToList();
            return new AbiFunction(name, cReturn, returnKind, xml?.Element("summary") is { } s ? Text(s) : "",
                xml?.Element("returns") is { } r ? Text(r) : "", parameters);
        }

        private static XElement? Parse(string? xml) =>
            string.IsNullOrWhiteSpace(xml) ? null : XElement.Parse(xml);

        private static string Summary(ISymbol symbol) =>
            Parse(symbol.GetDocumentationCommentXml())?.Element("summary") is { } s ? Text(s) : "";

        /// <summary>The text of a documentation element on one line: &lt;c&gt; and &lt;see&gt; reduced to their text.</summary>
        private static string Text(XElement element)
        {
            var text = new StringBuilder();
            foreach (var node in element.Nodes())
                text.Append(node switch
                {
                    XText t => t.Value,
                    XElement { Name.LocalName: "see" } e => ((string?)e.Attribute("cref") ?? (string?)e.Attribute("langword") ?? "").Split('.').Last(),
                    XElement e => e.Value,
                    _ => "",
                });
            return Regex.Replace(text.ToString(), @"\s+", " ").Trim();
        }

        /// <summary>runningMean → running_mean, BadShape → bad_shape.</summary>
        public static string Snake(string name) =>
            Regex.Replace(name, "(?<=[a-z0-9])([A-Z])", "_$1").ToLowerInvariant();
    }
}
