using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace BnGenerator
{
    /// <summary>Reads <c>[NormKernel]</c> attributes into <see cref="KernelSpec"/>s and checks the body language.</summary>
    internal static class KernelParser
    {
        public const string AttributeName = "BnNative.Kernels.NormKernelAttribute";

        /// <summary>
        /// The functions a body may call, with their arity and the static method of the vector and element types
        /// that implements them: a multiply-add (fused where the instruction set has it) and the magnitude.
        /// </summary>
        public static readonly Dictionary<string, (int Arity, string Method)> Functions = new()
        {
            ["Fma"] = (3, "MultiplyAddEstimate"),
            ["Abs"] = (1, "Abs"),
        };

        public static (KernelSpec? Spec, DiagnosticInfo? Error) Parse(AttributeData attribute, INamedTypeSymbol owner)
        {
            // The attribute for errors of its arguments; its body argument for errors of the body.
            var syntax = attribute.ApplicationSyntaxReference?.GetSyntax() as AttributeSyntax;
            var location = syntax?.GetLocation() ?? Location.None;
            var bodyLocation = syntax?.ArgumentList is { Arguments.Count: >= 2 } arguments ? arguments.Arguments[1].GetLocation() : location;
            DiagnosticInfo Fail(string id, string message) =>
                DiagnosticInfo.At(id, message, id is "BN000" or "BN001" ? location : bodyLocation);

            if (attribute.ConstructorArguments.Length != 2
                || attribute.ConstructorArguments[0].Value is not string name
                || attribute.ConstructorArguments[1].Value is not string body)
                return (null, Fail("BN000", "[NormKernel] needs a name and a body"));

            string Named(string key) => attribute.NamedArguments.FirstOrDefault(a => a.Key == key).Value.Value as string ?? "";
            var inputs = SplitNames(Named("Inputs"));
            var outputs = SplitNames(Named("Outputs"));
            var groupParams = SplitNames(Named("GroupParams"));
            var memberParams = SplitNames(Named("MemberParams"));
            var sums = SplitNames(Named("Sums"));

            var declared = inputs.Concat(outputs).Concat(groupParams).Concat(memberParams).Concat(sums).ToList();
            var duplicate = declared.GroupBy(n => n).FirstOrDefault(g => g.Count() > 1);
            if (duplicate != null)
                return (null, Fail("BN001", $"kernel '{name}': '{duplicate.Key}' is declared twice"));
            if (inputs.Count == 0)
                return (null, Fail("BN001", $"kernel '{name}': it reads no input stream"));

            var readable = new HashSet<string>(inputs.Concat(groupParams).Concat(memberParams));
            var statements = new List<KernelStatement>();
            var stored = new HashSet<string>();
            var accumulated = new HashSet<string>();

            foreach (string text in body.Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries))
            {
                if (string.IsNullOrWhiteSpace(text))
                    continue;
                var statement = SyntaxFactory.ParseStatement(text.Trim() + ";");
                if (statement.ContainsDiagnostics)
                    return (null, Fail("BN002", $"kernel '{name}': cannot parse '{text.Trim()}'"));

                KernelStatement? parsed = statement switch
                {
                    LocalDeclarationStatementSyntax { Declaration: { Type.IsVar: true, Variables.Count: 1 } d }
                        when d.Variables[0].Initializer is { } init
                        => new KernelStatement(StatementKind.Local, d.Variables[0].Identifier.Text, init.Value.ToString()),
                    ExpressionStatementSyntax { Expression: AssignmentExpressionSyntax { Left: IdentifierNameSyntax target } a }
                        when a.IsKind(SyntaxKind.SimpleAssignmentExpression)
                        => new KernelStatement(StatementKind.Store, target.Identifier.Text, a.Right.ToString()),
                    ExpressionStatementSyntax { Expression: AssignmentExpressionSyntax { Left: IdentifierNameSyntax target } a }
                        when a.IsKind(SyntaxKind.AddAssignmentExpression)
                        => new KernelStatement(StatementKind.Accumulate, target.Identifier.Text, a.Right.ToString()),
                    _ => null,
                };
                if (parsed == null)
                    return (null, Fail("BN003", $"kernel '{name}': '{text.Trim()}' is not 'var t = e', 'output = e' or 'sum += e'"));

                string? exprError = CheckExpression(SyntaxFactory.ParseExpression(parsed.Expression), readable);
                if (exprError != null)
                    return (null, Fail("BN004", $"kernel '{name}': {exprError}"));

                switch (parsed.Kind)
                {
                    case StatementKind.Local when declared.Contains(parsed.Target) || !readable.Add(parsed.Target):
                        return (null, Fail("BN005", $"kernel '{name}': temporary '{parsed.Target}' hides another name"));
                    case StatementKind.Store when !outputs.Contains(parsed.Target) || !stored.Add(parsed.Target):
                        return (null, Fail("BN005", $"kernel '{name}': '{parsed.Target}' is not an output, or is written twice"));
                    case StatementKind.Accumulate when !sums.Contains(parsed.Target) || !accumulated.Add(parsed.Target):
                        return (null, Fail("BN005", $"kernel '{name}': '{parsed.Target}' is not a sum, or is accumulated twice"));
                }
                statements.Add(parsed);
            }

            var missing = outputs.Where(o => !stored.Contains(o)).Concat(sums.Where(s => !accumulated.Contains(s))).FirstOrDefault();
            if (missing != null)
                return (null, Fail("BN006", $"kernel '{name}': '{missing}' is never written"));

            string ns = owner.ContainingNamespace.IsGlobalNamespace ? "" : owner.ContainingNamespace.ToDisplayString();
            return (new KernelSpec(ns, owner.Name, name, body.Trim(),
                new(inputs), new(outputs), new(groupParams), new(memberParams), new(sums), new(statements)), null);
        }

        /// <summary>
        /// The body language is arithmetic on names: + - * /, unary minus, parentheses, Fma(a, b, c) and Abs(a).
        /// No literals: a constant is a parameter, so it has the kernel's element type at every width.
        /// </summary>
        private static string? CheckExpression(ExpressionSyntax expression, HashSet<string> readable)
        {
            foreach (var node in expression.DescendantNodesAndSelf())
            {
                switch (node)
                {
                    case InvocationExpressionSyntax inv:
                        if (inv.Expression is not IdentifierNameSyntax callee || !Functions.TryGetValue(callee.Identifier.Text, out var function)
                            || inv.ArgumentList.Arguments.Count != function.Arity)
                            return $"'{inv}' calls something other than Fma(a, b, c) or Abs(a)";
                        break;
                    case IdentifierNameSyntax id when id.Parent is InvocationExpressionSyntax inv && inv.Expression == id:
                        break;
                    case IdentifierNameSyntax id when !readable.Contains(id.Identifier.Text):
                        return $"'{id.Identifier.Text}' is not an input, parameter or earlier temporary";
                    case IdentifierNameSyntax:
                    case ArgumentListSyntax:
                    case ArgumentSyntax:
                    case ParenthesizedExpressionSyntax:
                    case PrefixUnaryExpressionSyntax p when p.IsKind(SyntaxKind.UnaryMinusExpression):
                        break;
                    case BinaryExpressionSyntax b when b.IsKind(SyntaxKind.AddExpression) || b.IsKind(SyntaxKind.SubtractExpression)
                                                     || b.IsKind(SyntaxKind.MultiplyExpression) || b.IsKind(SyntaxKind.DivideExpression):
                        break;
                    case LiteralExpressionSyntax literal:
                        return $"literal '{literal}': pass constants as parameters";
                    default:
                        return $"'{node}' is not allowed in a kernel body";
                }
            }
            return null;
        }

        private static List<string> SplitNames(string list) =>
            list.Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()).Where(s => s.Length > 0).ToList();
    }
}
