using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace BnGenerator
{
    /// <summary>
    /// The bindings' declarations of the C ABI, emitted from one <see cref="AbiModel"/> (tools/BnAbi writes them;
    /// the test command fails when a committed one differs): the C header, the Python ctypes table and the .NET
    /// function-pointer table. Nothing of the ABI is typed by hand in a binding.
    /// </summary>
    public static class AbiEmitters
    {
        private const int Width = 110;

        private static string Invariant(long value) => value.ToString(CultureInfo.InvariantCulture);

        /// <summary>Words of <paramref name="text"/> on lines of at most <see cref="Width"/> columns, each starting with <paramref name="prefix"/>.</summary>
        private static IEnumerable<string> Wrap(string text, string prefix, string firstPrefix)
        {
            var line = new StringBuilder(firstPrefix);
            bool empty = true;
            foreach (var word in text.Split(' '))
            {
                if (!empty && line.Length + 1 + word.Length > Width)
                {
                    yield return line.ToString();
                    line.Clear().Append(prefix);
                    empty = true;
                }
                if (!empty)
                    line.Append(' ');
                line.Append(word);
                empty = false;
            }
            yield return line.ToString();
        }

        // ---- C --------------------------------------------------------------------------------------------

        public static string CHeader(AbiModel abi)
        {
            var w = new CodeWriter();
            foreach (var line in new[]
            {
                "/*",
                " * bnnative.h — C ABI of BnNative: Batch Normalization, Batch Renormalization and Layer Normalization on",
                " * CPUs, forward and backward. C99 and C++ clean. The contract in full: docs/contract.md.",
                " *",
                " * Emitted by tools/BnAbi from the library's [CExport] methods (src/BnNative/Abi); do not edit.",
                " *",
                " * Link with -lbnnative (pkg-config bnnative, or CMake find_package(BnNative) and BnNative::bnnative).",
                " * libbnnative.so picks, at its first call, the best instruction-set image the CPU runs (libbnnative_avx512.so,",
                " * libbnnative_avx2.so beside the real file of libbnnative.so, or its own baseline kernels); bn_get_isa() says",
                " * which. Environment: BNNATIVE_ISA=avx2|vector128|scalar forces a lower image, BNNATIVE_NUM_THREADS sets the",
                " * default thread count, BNNATIVE_VERBOSE=1 prints the image choice to stderr.",
                " *",
                " * Every function is thread-safe and reentrant. A call that fails returns a status other than",
                " * BN_STATUS_SUCCESS and has written nothing (no output, no running statistic); bn_last_error_message()",
                " * then says why, for the calling thread. In-place is allowed (y may be x, dx may be dy); partial overlap is",
                " * undefined. No pointer needs any alignment. Results are bitwise the same for any thread count.",
                " */",
                "#ifndef BNNATIVE_H",
                "#define BNNATIVE_H",
                "",
                "#include <stdint.h>",
                "",
            })
                w.Line(line);
            w.Line($"#define BN_VERSION_MAJOR {abi.Major}");
            w.Line($"#define BN_VERSION_MINOR {abi.Minor}");
            w.Line($"#define BN_VERSION_PATCH {abi.Patch}");
            w.Line("/* MAJOR*10000 + MINOR*100 + PATCH; compare with bn_version_number() to detect a header/library mismatch */");
            w.Line($"#define BN_VERSION_NUMBER {Invariant(abi.VersionNumber)}");
            w.Line();
            w.Line("#if defined(_WIN32)");
            w.Line("#  define BN_API __declspec(dllimport)");
            w.Line("#else");
            w.Line("#  define BN_API __attribute__((visibility(\"default\")))");
            w.Line("#endif");
            w.Line();
            w.Line("#ifdef __cplusplus");
            w.Line("extern \"C\" {");
            w.Line("#endif");
            w.Line();
            Section(w, "tensors (docs/contract.md §1)");
            Comment(w, abi.LayoutDoc);
            Enum(w, "bn_layout", abi.Layouts);
            Comment(w, abi.DTypeDoc);
            Enum(w, "bn_dtype", abi.DTypes);
            Comment(w, abi.DescDoc);
            w.Line("typedef struct bn_tensor_desc {");
            foreach (var f in abi.DescFields)
                w.Line($"    {f.CType} {f.Name};{Pad(f.CType.Length + f.Name.Length, 20)}/* {f.Doc} */");
            w.Line("} bn_tensor_desc;");
            w.Line();
            Section(w, "status (docs/contract.md §3)");
            w.Line("typedef int32_t bn_status;");
            foreach (var s in abi.Statuses)
                w.Line($"#define {s.Name} {s.Value}{Pad(s.Name.Length, 24)}/* {s.Doc} */");
            foreach (var f in abi.Functions)
            {
                w.Line();
                w.Line("/**");
                foreach (var line in Wrap(f.Summary, " * ", " * "))
                    w.Line(line);
                if (f.Parameters.Count > 0 || f.Returns.Length > 0)
                    w.Line(" *");
                int nameWidth = f.Parameters.Count == 0 ? 0 : f.Parameters.Max(p => p.Name.Length);
                foreach (var p in f.Parameters)
                {
                    string head = $" * @param {p.Name.PadRight(nameWidth)} ";
                    foreach (var line in Wrap(p.Doc, new string(' ', head.Length - 1).Insert(1, "*"), head))
                        w.Line(line);
                }
                if (f.Returns.Length > 0)
                    foreach (var line in Wrap(f.Returns, " *         ", " * @return "))
                        w.Line(line);
                w.Line(" */");
                string parameters = f.Parameters.Count == 0 ? "void" : string.Join(", ", f.Parameters.Select(p => $"{p.CType} {p.Name}"));
                foreach (var line in Wrap($"BN_API {f.CReturnType} {f.Name}({parameters});", "    ", ""))
                    w.Line(line);
            }
            w.Line();
            w.Line("#ifdef __cplusplus");
            w.Line("}");
            w.Line("#endif");
            w.Line();
            w.Line("#endif /* BNNATIVE_H */");
            return w.ToString();
        }

        private static string Pad(int used, int column) => new string(' ', System.Math.Max(1, column - used));

        private static void Section(CodeWriter w, string title)
        {
            string head = $"/* ---- {title} ";
            w.Line(head + new string('-', System.Math.Max(4, Width - head.Length - 3)) + " */");
            w.Line();
        }

        private static void Comment(CodeWriter w, string text)
        {
            var lines = Wrap(text, " * ", "/* ").ToList();
            if (lines.Count == 1)
            {
                w.Line(lines[0] + " */");
                return;
            }
            foreach (var line in lines)
                w.Line(line);
            w.Line(" */");
        }

        private static void Enum(CodeWriter w, string name, IReadOnlyList<AbiConstant> values)
        {
            w.Line($"typedef enum {name} {{");
            for (int i = 0; i < values.Count; i++)
            {
                string entry = $"    {values[i].Name} = {values[i].Value}{(i + 1 < values.Count ? "," : "")}";
                w.Line($"{entry}{Pad(entry.Length, 25)}/* {values[i].Doc} */");
            }
            w.Line($"}} {name};");
            w.Line();
        }

        // ---- Python ---------------------------------------------------------------------------------------

        public static string Python(AbiModel abi)
        {
            var w = new CodeWriter();
            w.Line("\"\"\"The C ABI of libbnnative as data: emitted by tools/BnAbi from the library's [CExport] methods; do not edit.");
            w.Line();
            w.Line("FUNCTIONS maps each entry point to (return kind, [(parameter, kind), ...]); the kinds are \"status\", \"int32\", \"int64\",");
            w.Line("\"uint32\", \"text\" (const char*), \"desc\" (const bn_tensor_desc*), \"pointer\" and \"double\". bnnative._native gives");
            w.Line("ctypes their types from it.");
            w.Line("\"\"\"");
            w.Line();
            w.Line($"VERSION = ({abi.Major}, {abi.Minor}, {abi.Patch})");
            w.Line();
            w.Line("STATUS = {");
            foreach (var s in abi.Statuses)
                w.Line($"    {s.Value}: \"{s.Name}\",");
            w.Line("}");
            w.Line();
            w.Line("LAYOUTS = {");
            foreach (var l in abi.Layouts)
                w.Line($"    \"{l.Name.Substring("BN_LAYOUT_".Length)}\": {l.Value},");
            w.Line("}");
            w.Line();
            w.Line("DTYPES = {");
            foreach (var d in abi.DTypes)
                w.Line($"    \"{d.Name.Substring("BN_DTYPE_".Length)}\": {d.Value},");
            w.Line("}");
            w.Line();
            w.Line("DESC_FIELDS = [" + string.Join(", ", abi.DescFields.Select(f => $"(\"{f.Name}\", \"{(f.CType == "int64_t" ? "int64" : "int32")}\")")) + "]");
            w.Line();
            w.Line("FUNCTIONS = {");
            foreach (var f in abi.Functions)
            {
                string parameters = string.Join(", ", f.Parameters.Select(p => $"(\"{p.Name}\", \"{p.Kind}\")"));
                w.Line($"    \"{f.Name}\": (\"{f.ReturnKind}\", [{parameters}]),");
            }
            w.Line("}");
            return w.ToString();
        }

        // ---- .NET -----------------------------------------------------------------------------------------

        public static string Dotnet(AbiModel abi)
        {
            var w = new CodeWriter();
            w.Line("// <auto-generated/>");
            w.Line("// Emitted by tools/BnAbi from the library's [CExport] methods (src/BnNative/Abi). Do not edit.");
            w.Line("#nullable enable");
            w.Line("using System.Runtime.InteropServices;");
            w.Line();
            w.Line("namespace BnNative.Interop;");
            w.Line();
            DotnetEnum(w, "BnStatus", "<c>bn_status</c>: what a call returns.", abi.Statuses, "BN_STATUS_");
            DotnetEnum(w, "BnLayout", abi.LayoutDoc, abi.Layouts, "BN_LAYOUT_");
            DotnetEnum(w, "BnDType", abi.DTypeDoc, abi.DTypes, "BN_DTYPE_");
            Summary(w, "<c>bn_tensor_desc</c>: " + abi.DescDoc);
            w.Line("[StructLayout(LayoutKind.Sequential)]");
            w.Open("public partial struct BnTensorDesc");
            foreach (var f in abi.DescFields)
            {
                Summary(w, f.Doc);
                w.Line($"public {(f.CType == "int64_t" ? "long" : "int")} {f.ManagedName};");
            }
            w.Close();
            w.Line();
            Summary(w, "The entry points of one loaded image, as C declares them (raw pointers).");
            w.Open("public sealed unsafe partial class BnLibrary");
            foreach (var f in abi.Functions)
                w.Line($"private readonly delegate* unmanaged<{string.Join(", ", f.Parameters.Select(p => ManagedType(p.Kind)).Append(ManagedReturn(f.ReturnKind)))}> _{f.Name};");
            w.Line();
            w.Line("/// <summary>The C names of the entry points, in declaration order.</summary>");
            w.Line("public static readonly string[] EntryPoints =");
            w.Line("[");
            foreach (var f in abi.Functions)
                w.Line($"    \"{f.Name}\",");
            w.Line("];");
            w.Line();
            w.Open("private BnLibrary(nint handle, string path)");
            w.Line("Handle = handle;");
            w.Line("Path = path;");
            foreach (var f in abi.Functions)
                w.Line($"_{f.Name} = (delegate* unmanaged<{string.Join(", ", f.Parameters.Select(p => ManagedType(p.Kind)).Append(ManagedReturn(f.ReturnKind)))}>)NativeLibrary.GetExport(handle, \"{f.Name}\");");
            w.Close();
            foreach (var f in abi.Functions)
            {
                w.Line();
                Summary(w, f.Summary);
                foreach (var p in f.Parameters)
                    w.Line($"/// <param name=\"{Camel(p.Name)}\">{Escape(p.Doc)}</param>");
                if (f.Returns.Length > 0)
                    w.Line($"/// <returns>{Escape(f.Returns)}</returns>");
                string method = Pascal(f.Name.Substring("bn_".Length));
                string parameters = string.Join(", ", f.Parameters.Select(p => $"{PublicType(p)} {Camel(p.Name)}"));
                string arguments = string.Join(", ", f.Parameters.Select(p => p.CType == "bn_status" ? $"(int){Camel(p.Name)}" : Camel(p.Name)));
                string call = $"_{f.Name}({arguments})";
                string visibility = f.ReturnKind == "text" ? "internal" : "public";
                string name = f.ReturnKind == "text" ? method + "Text" : method;
                w.Line($"{visibility} {PublicReturn(f.ReturnKind)} {name}({parameters}) => {(f.ReturnKind == "status" ? $"(BnStatus){call}" : f.ReturnKind == "uint32" ? $"(uint){call}" : call)};");
            }
            w.Close();
            return w.ToString();
        }

        private static void DotnetEnum(CodeWriter w, string name, string doc, IReadOnlyList<AbiConstant> values, string prefix)
        {
            Summary(w, doc);
            w.Open($"public enum {name}");
            foreach (var v in values)
            {
                Summary(w, v.Doc);
                w.Line($"{Pascal(v.Name.Substring(prefix.Length).ToLowerInvariant(), keepDigits: true)} = {v.Value},");
            }
            w.Close();
            w.Line();
        }

        private static void Summary(CodeWriter w, string text) => w.Line($"/// <summary>{Escape(text)}</summary>");

        private static string Escape(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;")
            .Replace("&lt;c&gt;", "<c>").Replace("&lt;/c&gt;", "</c>");

        private static string ManagedType(string kind) => kind switch
        {
            "desc" => "BnTensorDesc*",
            "pointer" => "void*",
            "double" => "double",
            "int64" => "long",
            _ => "int",
        };

        private static string PublicType(AbiParameter p) => p.CType == "bn_status" ? "BnStatus" : p.Kind == "int32" ? "int" : ManagedType(p.Kind);

        private static string ManagedReturn(string kind) => kind == "text" ? "byte*" : "int";

        private static string PublicReturn(string kind) => kind switch
        {
            "status" => "BnStatus",
            "text" => "byte*",
            "uint32" => "uint",
            _ => "int",
        };

        /// <summary>batch_norm_forward → BatchNormForward; f16 → F16 (with <paramref name="keepDigits"/>, NC → Nc is avoided by callers).</summary>
        private static string Pascal(string snake, bool keepDigits = false)
        {
            if (keepDigits && snake.Length <= 4 && !snake.Contains('_'))
                return snake.ToUpperInvariant(); // NC, NCHW, F32, BF16: acronyms stay as the C names have them
            return string.Concat(snake.Split('_').Where(p => p.Length > 0).Select(p => char.ToUpperInvariant(p[0]) + p.Substring(1)));
        }

        private static string Camel(string snake)
        {
            string pascal = Pascal(snake);
            return char.ToLowerInvariant(pascal[0]) + pascal.Substring(1);
        }
    }
}
