using System.Linq;
using Microsoft.CodeAnalysis;

namespace BnGenerator
{
    internal sealed record ExportParameter(string Type, string Name);

    /// <summary>One <c>[CExport("bn_...")]</c> method: a C entry point implemented by a static method.</summary>
    internal sealed record ExportSpec(
        string Namespace,
        string ContainingType,
        string EntryPoint,
        string Method,
        string ReturnType,
        EquatableArray<ExportParameter> Parameters)
    {
        public const string AttributeName = "BnNative.Abi.CExportAttribute";

        /// <summary>Return types an export may have, and what the generated wrapper returns when the body throws.</summary>
        public static string? ExceptionFallback(string returnType) => returnType switch
        {
            "int" => "StatusFromException",
            "byte*" => "TextFromException",
            _ => null,
        };

        public static (ExportSpec? Spec, DiagnosticInfo? Error) Parse(AttributeData attribute, IMethodSymbol method)
        {
            var location = method.Locations.FirstOrDefault() ?? Location.None;
            DiagnosticInfo Fail(string message) => DiagnosticInfo.At("BN010", message, location);

            if (attribute.ConstructorArguments.Length != 1 || attribute.ConstructorArguments[0].Value is not string entryPoint)
                return (null, Fail("[CExport] needs the C name of the entry point"));
            if (!method.IsStatic)
                return (null, Fail($"[CExport] method '{method.Name}' must be static"));
            var format = SymbolDisplayFormat.FullyQualifiedFormat;
            string returnType = method.ReturnType.ToDisplayString(format);
            if (ExceptionFallback(returnType) == null)
                return (null, Fail($"[CExport] method '{method.Name}' returns {returnType}; an export returns int (a status or count) or byte* (static text)"));
            var parameters = method.Parameters.Select(p => new ExportParameter(p.Type.ToDisplayString(format), p.Name));
            var owner = method.ContainingType;
            string ns = owner.ContainingNamespace.IsGlobalNamespace ? "" : owner.ContainingNamespace.ToDisplayString();
            return (new ExportSpec(ns, owner.Name, entryPoint, method.Name, returnType, new(parameters)), null);
        }
    }
}
