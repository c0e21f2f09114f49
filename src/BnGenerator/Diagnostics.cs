using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace BnGenerator
{
    /// <summary>Every diagnostic the generator reports: one descriptor per ID, with its title and what to do about it.</summary>
    internal static class Diagnostics
    {
        private static DiagnosticDescriptor Error(string id, string title, string description) =>
            new(id, title, "{0}", "BnGenerator", DiagnosticSeverity.Error, isEnabledByDefault: true, description: description);

        public static readonly IReadOnlyDictionary<string, DiagnosticDescriptor> ById = new[]
        {
            Error("BN000", "Kernel description without a name or body",
                "[NormKernel(name, body)] takes the kernel's name and its body as two string constants."),
            Error("BN001", "Kernel declares a name twice or reads no input",
                "Each name of Inputs, Outputs, GroupParams, MemberParams and Sums is declared once, and a kernel reads at least one input stream."),
            Error("BN002", "Kernel statement does not parse",
                "A body is C# statements separated by ';': fix the syntax of the statement the message quotes."),
            Error("BN003", "Not a kernel statement",
                "A statement of a body is 'var t = e;' (a temporary), 'output = e;' (a store) or 'sum += e;' (a reduction per group)."),
            Error("BN004", "Expression outside the kernel language",
                "Expressions use + - * /, unary minus, parentheses, Fma(a, b, c) and Abs(a) on declared names; constants are passed as parameters, so they take the kernel's element type at every width."),
            Error("BN005", "Bad assignment target",
                "A temporary may not reuse a declared name; only Outputs are stored, each once, and only Sums are accumulated, each once."),
            Error("BN006", "Output or sum never written",
                "Every declared output must be stored and every declared sum accumulated by the body."),
            Error("BN010", "Bad [CExport] method",
                "A [CExport(\"c_name\")] method is static and returns int (a status or a count) or byte* (static text), so its export can turn any exception into a value."),
        }.ToDictionary(d => d.Id);
    }

    /// <summary>
    /// A diagnostic as plain data (ID, message, file, span and lines), so the pipeline stays equatable and reports
    /// it apart from source, at the line and column where the problem is.
    /// </summary>
    internal sealed record DiagnosticInfo(string Id, string Message, string FilePath, TextSpan Span, LinePositionSpan Lines)
    {
        public static DiagnosticInfo At(string id, string message, Location location) =>
            new(id, message, location.SourceTree?.FilePath ?? "", location.SourceSpan, location.GetLineSpan().Span);

        public Diagnostic ToDiagnostic() =>
            Diagnostic.Create(Diagnostics.ById[Id], Location.Create(FilePath, Span, Lines), Message);
    }
}
