using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using BnGenerator;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace BnGenerator.Tests;

public class GeneratorTests
{
    // What the generated code needs from the library besides the BCL.
    private const string Support = """
        namespace BnNative.Kernels { internal static class KernelIsa { public static readonly bool UseVectors = true; } }
        """;

    private const string TwoKernels = """
        namespace BnNative.Kernels;
        [NormKernel("Axpy", "y = Fma(x, a, b);", Inputs = "x", Outputs = "y", GroupParams = "a, b")]
        [NormKernel("Moments", "var d = x - shift; s += d; q += d * d;", Inputs = "x", GroupParams = "shift", Sums = "s, q")]
        internal static partial class Kernels { }
        """;

    private static (GeneratorDriver Driver, Compilation Output, ImmutableArray<Diagnostic> Diagnostics, Compilation Input) Run(params string[] sources)
    {
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create("Test",
            sources.Append(Support).Select(s => CSharpSyntaxTree.ParseText(s, new CSharpParseOptions(LanguageVersion.Preview))),
            references, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true));
        GeneratorDriver driver = CSharpGeneratorDriver.Create(new[] { new BnSourceGenerator().AsSourceGenerator() },
            parseOptions: new CSharpParseOptions(LanguageVersion.Preview),
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));
        driver = driver.RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        return (driver, output, diagnostics, compilation);
    }

    private static string Generated(GeneratorDriver driver, string hintName) =>
        driver.GetRunResult().Results.Single().GeneratedSources.Single(s => s.HintName == hintName).SourceText.ToString();

    /// <summary>
    /// The text of the first method of <paramref name="file"/> declared <c>private static void {signature}…</c>, up to the next
    /// method, so that asserts about one vector width or element type see only its code.
    /// </summary>
    private static string Method(string file, string signature)
    {
        int start = file.IndexOf($"private static void {signature}", StringComparison.Ordinal);
        Assert.True(start >= 0, signature);
        int end = file.IndexOf("private static void", start + 1, StringComparison.Ordinal);
        return file.Substring(start, (end < 0 ? file.Length : end) - start);
    }

    /// <summary>Runs the generator on <paramref name="source"/>, which must give no diagnostic and code that compiles.</summary>
    private static GeneratorDriver RunWithoutErrors(string source)
    {
        var (driver, output, diagnostics, _) = Run(source);
        Assert.Empty(diagnostics);
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        return driver;
    }

    [Fact]
    public void EmitsOneFilePerKernelAndTheAttributes()
    {
        var (driver, _, diagnostics, _) = Run(TwoKernels);
        Assert.Empty(diagnostics);
        var names = driver.GetRunResult().Results.Single().GeneratedSources.Select(s => s.HintName).OrderBy(n => n);
        Assert.Equal(new[] { "BnGeneratorAttributes.g.cs", "BnGeneratorElementTypes.g.cs", "Kernels.Axpy.g.cs", "Kernels.Moments.g.cs" }, names);
    }

    [Fact]
    public void GeneratedCodeCompiles()
    {
        var (_, output, _, _) = Run(TwoKernels);
        var errors = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public void EveryShapeTypeAndWidthHasAMethod()
    {
        var (driver, _, _, _) = Run(TwoKernels);
        string code = Generated(driver, "Kernels.Moments.g.cs");
        foreach (var shape in new[] { "MembersContiguous", "GroupsContiguous" })
        {
            Assert.Contains($"public static void {shape}<TElement, T>(", code);
            foreach (var width in new[] { "Vector512", "Vector256", "Vector128", "Scalar" })
            {
                Assert.Contains($"private static void {shape}{width}(float* x,", code);
                Assert.Contains($"private static void {shape}{width}(double* x,", code);
                // 16-bit elements: streams of the element type, parameters and sums in float.
                Assert.Contains($"private static void {shape}{width}(global::System.Half* x,", code);
                Assert.Contains($"private static void {shape}{width}(global::BnNative.Kernels.BFloat16* x,", code);
            }
        }
    }

    [Fact]
    public void RowGroupIsEmittedForReductionsWithTheirMemberParameters()
    {
        const string source = """
            namespace BnNative.Kernels;
            [NormKernel("Axpy", "y = Fma(x, a, b);", Inputs = "x", Outputs = "y", GroupParams = "a, b")]
            [NormKernel("WeightedSums", "var v = x * w; s += v; q += v * (x - c);", Inputs = "x", GroupParams = "c", MemberParams = "w", Sums = "s, q")]
            internal static partial class Kernels { }
            """;
        var driver = RunWithoutErrors(source);
        Assert.DoesNotContain("RowGroup", Generated(driver, "Kernels.Axpy.g.cs"));
        string sums = Generated(driver, "Kernels.WeightedSums.g.cs");
        // Group parameters and sums: one value per row; member parameters: one per member, shared by the rows.
        Assert.Contains("private static void RowGroupVector512(float* x, nint rows, nint count, nint rowStride, float* c, float* w, float* s, float* q)", sums);
        Assert.Contains("var w_0 = Vector512.Load(w + i);", sums);
        Assert.Contains("float w_s = w[i];", sums);
        Assert.Contains("var v_0 = x_0 * w_0;", sums);
        Assert.Contains("s[r] += sTotal;", sums);
    }

    [Fact]
    public void RowGroupMapsRowsForElementWiseKernelsWithMemberParameters()
    {
        const string source = """
            namespace BnNative.Kernels;
            [NormKernel("Affine", "y = Fma((x - c) * s, w, b);", Inputs = "x", Outputs = "y", GroupParams = "c, s", MemberParams = "w, b")]
            internal static partial class Kernels { }
            """;
        var driver = RunWithoutErrors(source);
        string affine = Generated(driver, "Kernels.Affine.g.cs");
        Assert.Contains("private static void RowGroupVector512(float* x, float* y, nint rows, nint count, nint rowStride, float* c, float* s, float* w, float* b, bool nonTemporal)", affine);
        string wide = Method(affine, "RowGroupVector512(float* x");
        // Rows stream only when every row is whole vectors and aligned; otherwise ordinary stores, the last vector out of place.
        Assert.Contains("bool streamRows = nonTemporal && count % 16 == 0 && rowStride % 16 == 0 && (nuint)y % 64 == 0;", wide);
        Assert.Contains("Vector512.StoreAlignedNonTemporal(Vector512.MultiplyAddEstimate((x_0 - cV) * sV, w_0, b_0), y + i);", wide);
        Assert.Contains("if (count - i >= 4 && count >= 16 && (nuint)y != (nuint)x)", wide);
        // Each row's group parameters broadcast; its scalar tail reads them as the row's values; the pointers move a row on.
        Assert.Contains("var cV = Vector512.Create(cR);", wide);
        Assert.Contains("y[i] = float.MultiplyAddEstimate((x_s - cR) * sR, w_s, b_s);", wide);
        Assert.Contains("x += rowStride;", wide);
        Assert.Contains("y += rowStride;", wide);
        // Rows of at most eight whole vectors keep the member parameters in registers for all rows (two per vector here:
        // 16 of AVX-512's 32 registers); vector u of a row is taken when the row has more than u.
        Assert.Contains("if (count % 16 == 0 && vectors > 0 && vectors <= 8)", wide);
        Assert.Contains("var w_7 = vectors > 7 ? Vector512.Load(w + 112) : default;", wide);
        Assert.Contains("if (vectors > 7)", wide);
        Assert.Contains("Vector512.StoreAlignedNonTemporal(Vector512.MultiplyAddEstimate((x_7 - cV) * sV, w_7, b_7), y + 112);", wide);
        // AVX2 has 16 registers: rows of at most four vectors.
        Assert.Contains("if (count % 8 == 0 && vectors > 0 && vectors <= 4)", affine);
    }

    [Fact]
    public void RunsEndInTheirLastWholeVectorWhereThatIsCheaperThanOneByOne()
    {
        const string source = """
            namespace BnNative.Kernels;
            [NormKernel("Axpy", "y = Fma(x, a, b);", Inputs = "x", Outputs = "y", GroupParams = "a, b")]
            [NormKernel("WeightedSums", "var v = x * w; s += v; q += v * (x - c);", Inputs = "x", GroupParams = "c", MemberParams = "w", Sums = "s, q")]
            internal static partial class Kernels { }
            """;
        var (driver, _, _, _) = Run(source);
        string axpy = Generated(driver, "Kernels.Axpy.g.cs"), sums = Generated(driver, "Kernels.WeightedSums.g.cs");
        // Element-wise: the last vector computed and stored again, out of place only (in place, its first lanes hold outputs).
        Assert.Contains("if (count - i >= 4 && count >= 16 && (nuint)y != (nuint)x)", axpy);
        Assert.Contains("Vector512.Store(Vector512.MultiplyAddEstimate(x_t, aV, bV), y + last);", axpy);
        // Reductions over a row group: the lanes the loop took are masked out of the last vector's sums.
        Assert.Contains("var x_t = Vector512.Load(xRow + last);", sums);
        Assert.Contains("var fresh = Vector512.GreaterThanOrEqual(Vector512<float>.Indices, Vector512.Create((float)(i - last)));", sums);
        Assert.Contains("sV += Vector512.ConditionalSelect(fresh, s_t, Vector512<float>.Zero);", sums);
        // Rows of groups: the last vector of groups, its sums masked to the groups the loops left, row after row or down a block.
        Assert.Contains("if (groups - g >= 4 && groups >= 16 && (nuint)y != (nuint)x)", axpy);
        Assert.Contains("var fresh = Vector512.GreaterThanOrEqual(Vector512<float>.Indices, Vector512.Create((float)(g - last)));", sums);
        Assert.Contains("s_t += Vector512.ConditionalSelect(fresh, s_row, Vector512<float>.Zero);", sums);
        Assert.Contains("Vector512.Store(Vector512.Load(s + last) + Vector512.ConditionalSelect(fresh, s_t, Vector512<float>.Zero), s + last);", sums);
        // MembersContiguous reductions keep their scalar tail: the extra code kept them from being inlined into their callers.
        Assert.DoesNotContain("fresh", Method(sums, "MembersContiguousVector512(float* x"));
    }

    [Fact]
    public void RowGroupsTakeRowsThatEndInWholeVectorsFourAtATime()
    {
        const string source = """
            namespace BnNative.Kernels;
            [NormKernel("WeightedSums", "var v = x * w; s += v; q += v * (x - c);", Inputs = "x", GroupParams = "c", MemberParams = "w", Sums = "s, q")]
            internal static partial class Kernels { }
            """;
        var driver = RunWithoutErrors(source);
        string sums = Generated(driver, "Kernels.WeightedSums.g.cs");
        // Only rows without a scalar tail (whole vectors, or a last vector of at least four members); the rest one by one.
        string wide = Method(sums, "RowGroupVector512(");
        Assert.Contains("if (count % 16 == 0 || (count >= 16 && count % 16 >= 4))", wide);
        Assert.Contains("for (; r <= rows - 4; r += 4)", wide);
        Assert.Contains("for (; r < rows; r++)", wide);
        // Each row in memory order into its own accumulators (row r + 3's last vector too), then one reduction for the four.
        Assert.Contains("float* xRow3 = x + (r + 3) * rowStride;", wide);
        Assert.Contains("var v_3 = x_3 * w_3;", wide);
        Assert.Contains("sV3 += Vector512.ConditionalSelect(fresh, s_t3, Vector512<float>.Zero);", wide);
        Assert.Contains("var qTotals = global::BnNative.Kernels.LaneSums.OfFour(qV0, qV1, qV2, qV3);", wide);
        Assert.Contains("(Vector128.Load(q + r) + qTotals).Store(q + r);", wide);
        // Four lanes, no last vector: only whole vectors; doubles' four sums are a Vector256.
        Assert.Contains("if (count % 4 == 0)", Method(sums, "RowGroupVector128("));
        Assert.Contains("(Vector256.Load(s + r) + sTotals).Store(s + r);", sums.Substring(sums.IndexOf("RowGroup(double* x", StringComparison.Ordinal)));
        // Two doubles in a vector: no four-row block.
        Assert.DoesNotContain("OfFour", Method(sums, "RowGroupVector128(double* x"));
    }

    [Fact]
    public void SixteenBitStreamsAreWidenedOnLoadAndNarrowedOnStore()
    {
        var (driver, _, _, _) = Run(TwoKernels);
        string axpy = Generated(driver, "Kernels.Axpy.g.cs");
        Assert.Contains("var x_0 = global::BnNative.Kernels.Float16Conversions.Load512(x + i);", axpy);
        Assert.Contains("global::BnNative.Kernels.BFloat16Conversions.Store256(", axpy);
        Assert.Contains("y[i] = global::BnNative.Kernels.Float16Conversions.Narrow(", axpy);
        Assert.Contains("float x_s = global::BnNative.Kernels.BFloat16Conversions.Widen(x[i]);", axpy);
        string moments = Generated(driver, "Kernels.Moments.g.cs");
        Assert.Contains("private static void MembersContiguousVector512(global::System.Half* x, nint count, float shift, ref float s, ref float q)", moments);
    }

    [Fact]
    public void SixteenBitOutputsStreamOnlyWhereTheirHalfVectorIsAWholeSseStore()
    {
        var (driver, _, _, _) = Run(TwoKernels);
        string axpy = Generated(driver, "Kernels.Axpy.g.cs");
        // Sixteen floats narrow to 32 bytes, eight to 16: the head aligns the output to that, then the stores stream.
        string wide = Method(axpy, "MembersContiguousVector512(global::System.Half* x");
        Assert.Contains("(nint)((32 - (nuint)y % 32) % 32 / 2)", wide);
        Assert.Contains("global::BnNative.Kernels.Float16Conversions.StoreAlignedNonTemporal512(", wide);
        string half = Method(axpy, "MembersContiguousVector256(global::BnNative.Kernels.BFloat16* x");
        Assert.Contains("(nint)((16 - (nuint)y % 16) % 16 / 2)", half);
        Assert.Contains("global::BnNative.Kernels.BFloat16Conversions.StoreAlignedNonTemporal256(", half);
        // Four floats narrow to 8 bytes: no non-temporal store that size, so nothing streams (nonTemporal is ignored).
        Assert.DoesNotContain("NonTemporal", Method(axpy, "MembersContiguousVector128(global::System.Half* x"));
        Assert.DoesNotContain("NonTemporal", Method(axpy, "GroupsContiguousVector128(global::BnNative.Kernels.BFloat16* x"));
        // Rows held in registers (one unrolled block per row) stream when the output is aligned to the half vector.
        Assert.Contains("% 32 == 0)", Method(axpy, "GroupsContiguousVector512(global::BnNative.Kernels.BFloat16* x"));
        string types = Generated(driver, ConversionEmitter.HintName);
        Assert.Contains(".StoreAlignedNonTemporal((ushort*)destination);", types);
        Assert.DoesNotContain("StoreAlignedNonTemporal128", types);
    }

    [Fact]
    public void WholeRowsGoInMemoryOrderElementWiseAndWhereReductionsAreAsked()
    {
        var (driver, _, _, _) = Run(TwoKernels);
        string axpy = Generated(driver, "Kernels.Axpy.g.cs"), moments = Generated(driver, "Kernels.Moments.g.cs");
        // An element-wise kernel walks a tile of whole rows (rowStride = groups) one row at a time, each row streamed
        // when it is whole vectors and aligned (no head, no overlapping last vector); segments of wider rows still go
        // four rows at a time. Narrow rows of whole vectors leave the registers for that walk only when they stream.
        Assert.Contains("nint tiledRows = rowStride == groups ? 0 : rows - rows % 4;", axpy);
        Assert.Contains("if (nonTemporal && groups % 16 == 0 && (nuint)(y + row) % 64 == 0)", axpy);
        Assert.Contains("if (!nonTemporal || rowStride != groups || groups % 16 != 0 || (nuint)y % 64 != 0)", axpy);
        Assert.DoesNotContain("nint head", Method(axpy, "GroupsContiguousVector512(float* x"));
        // Sums are loaded and stored once per block of four rows, unless the caller asks for memory order (and the rows
        // are whole); the parameter exists only where that walk does.
        Assert.Contains("nint tiledRows = inMemoryOrder && rowStride == groups ? 0 : rows - rows % 4;", moments);
        Assert.Contains("bool inMemoryOrder)", moments);
        Assert.DoesNotContain("inMemoryOrder", axpy);
    }

    [Fact]
    public void StreamedRunsEndOneByOneNotInAnOverlappingLastVector()
    {
        var (driver, _, _, _) = Run(TwoKernels);
        string axpy = Generated(driver, "Kernels.Axpy.g.cs");
        // A run that streams: scalar head to the boundary, aligned non-temporal vectors, then the rest one by one inside
        // the same block; the overlapping last vector (an ordinary store into the line just streamed) only follows
        // ordinary stores.
        string run = Method(axpy, "MembersContiguousVector512(float* x");
        int stream = run.IndexOf("if (nonTemporal && (nuint)y % 4 == 0)", StringComparison.Ordinal);
        int streamed = run.LastIndexOf("Vector512.StoreAlignedNonTemporal(", StringComparison.Ordinal);
        int rest = run.IndexOf("for (; i < count; i++)", streamed, StringComparison.Ordinal);
        int ordinary = run.IndexOf("Vector512.Store(", streamed, StringComparison.Ordinal);
        Assert.True(stream >= 0 && stream < streamed && streamed < rest && rest < ordinary, run);
        // The same for a row that streams after its own head (kernels with member parameters take rows one at a time).
        var (rowDriver, _, _, _) = Run("""
            namespace BnNative.Kernels;
            [NormKernel("Affine", "y = Fma(x - c, s, b);", Inputs = "x", Outputs = "y", GroupParams = "c, s", MemberParams = "b")]
            internal static partial class Kernels { }
            """);
        string rows = Method(Generated(rowDriver, "Kernels.Affine.g.cs"), "GroupsContiguousVector512(float* x");
        int head = rows.IndexOf("nint head = ", StringComparison.Ordinal);
        int rowStreamed = rows.IndexOf("StoreAlignedNonTemporal(", head, StringComparison.Ordinal);
        int rowRest = rows.IndexOf("for (; g < groups; g++)", rowStreamed, StringComparison.Ordinal);
        int rowOrdinary = rows.IndexOf("Vector512.Store(", rowStreamed, StringComparison.Ordinal);
        Assert.True(head >= 0 && head < rowStreamed && rowStreamed < rowRest && rowRest < rowOrdinary, rows);
    }

    [Fact]
    public void RowsOfUpToTwoBlocksAreWalkedAsOneBlockApartWithThirtyTwoRegisters()
    {
        var (driver, _, _, _) = Run(TwoKernels);
        string moments = Generated(driver, "Kernels.Moments.g.cs");
        // AVX-512: rows of 65–128 floats go down the tile as one block of up to eight vectors, in a method of its own, unless
        // the caller asks for memory order; the parameters of the widest copies are read every row.
        string main = Method(moments, "GroupsContiguousVector512(float* x");
        Assert.Contains("if (groups > 64 && groups <= 128 && !inMemoryOrder)", main);
        Assert.Contains("GroupsContiguousVector512Wide(x, rows, groups, rowStride, shift, s, q);", main);
        string wide = Method(moments, "GroupsContiguousVector512Wide(float* x");
        Assert.Contains("for (; g <= groups - 128; g += 128)", wide);
        Assert.Contains("var shift_7 = Vector512.Load(shift + g + 112);", wide);
        Assert.Contains("[MethodImpl(MethodImplOptions.NoInlining)]\n        private static void GroupsContiguousVector512Wide(float* x", moments.Replace("\r\n", "\n"));
        // Sixteen registers: no wide walk.
        Assert.DoesNotContain("Vector256Wide", moments);
    }

    [Fact]
    public void UnrollFactorFollowsTheRegisterBudget()
    {
        var (driver, _, _, _) = Run(TwoKernels);
        string axpy = Generated(driver, "Kernels.Axpy.g.cs");
        // Axpy keeps its two parameters broadcast: four copies fit everywhere.
        Assert.Contains("/// <summary>Vector256: 8 lanes, unrolled 4×.</summary>", axpy);
        string moments = Generated(driver, "Kernels.Moments.g.cs");
        // Moments keeps a load, a temporary, two accumulators and a spare per copy: 16 registers hold two copies, 32 hold four.
        Assert.Contains("/// <summary>Vector256: 8 lanes, unrolled 2×.</summary>", moments);
        Assert.Contains("/// <summary>Vector512: 16 lanes, unrolled 4×.</summary>", moments);
    }

    [Fact]
    public void MatchesTheGoldenFile()
    {
        var (driver, _, _, _) = Run(TwoKernels);
        string code = Generated(driver, "Kernels.Moments.g.cs").Replace("\r\n", "\n");
        string golden = Path.Combine(AppContext.BaseDirectory, "Golden", "Kernels.Moments.g.cs");
        if (Environment.GetEnvironmentVariable("BNGEN_UPDATE_GOLDEN") is { } dir)
            File.WriteAllText(Path.Combine(dir, "Kernels.Moments.g.cs"), code);
        Assert.Equal(File.ReadAllText(golden).Replace("\r\n", "\n"), code);
    }

    private const string Declared = "Inputs = \"x\", Outputs = \"y\", GroupParams = \"a\"";

    [Theory]
    [InlineData("null, \"y = x;\", " + Declared, "BN000", "needs a name and a body")]
    [InlineData("\"Bad\", \"y = x;\", Inputs = \"x, a\", Outputs = \"y\", GroupParams = \"a\"", "BN001", "'a' is declared twice")]
    [InlineData("\"Bad\", \"y = x;\", Outputs = \"y\"", "BN001", "reads no input stream")]
    [InlineData("\"Bad\", \"y = (x;\", " + Declared, "BN002", "cannot parse")]
    [InlineData("\"Bad\", \"if (x) y = x;\", " + Declared, "BN003", "is not 'var t = e'")]
    [InlineData("\"Bad\", \"y = x * 2;\", " + Declared, "BN004", "literal")]
    [InlineData("\"Bad\", \"y = x * z;\", " + Declared, "BN004", "'z' is not an input")]
    [InlineData("\"Bad\", \"y = Math.Sqrt(x);\", " + Declared, "BN004", "calls something other than Fma")]
    [InlineData("\"Bad\", \"y = Abs(x, x);\", " + Declared, "BN004", "calls something other than Fma")]
    [InlineData("\"Bad\", \"y = x; y = x;\", " + Declared, "BN005", "written twice")]
    [InlineData("\"Bad\", \"x = x;\", " + Declared, "BN005", "is not an output")]
    [InlineData("\"Bad\", \"var a = x;\", " + Declared, "BN005", "hides another name")]
    [InlineData("\"Bad\", \"var t = x;\", " + Declared, "BN006", "'y' is never written")]
    public void ReportsBadDescriptionsWhereTheyAre(string arguments, string id, string message)
    {
        string source = $$"""
            namespace BnNative.Kernels;

            [NormKernel({{arguments}})]
            internal static partial class Kernels { }
            """;
        var (driver, _, diagnostics, _) = Run(source);
        var diagnostic = Assert.Single(diagnostics);
        Assert.Equal(id, diagnostic.Id);
        Assert.Contains(message, diagnostic.GetMessage());
        // Reported on the attribute's own line (the third of the file), with the ID's own title and description.
        Assert.Equal(2, diagnostic.Location.GetLineSpan().StartLinePosition.Line);
        Assert.Equal(diagnostic.Descriptor.Title.ToString(), Diagnostics.ById[id].Title.ToString());
        Assert.NotEqual("", diagnostic.Descriptor.Description.ToString());
        Assert.DoesNotContain(driver.GetRunResult().Results.Single().GeneratedSources, s => s.HintName.Contains("Bad"));
    }

    [Fact]
    public void EveryDiagnosticIdHasItsOwnTitleAndATest()
    {
        var titles = Diagnostics.ById.Values.Select(d => d.Title.ToString()).ToList();
        Assert.Equal(titles.Count, titles.Distinct().Count());
        var tested = typeof(GeneratorTests).GetMethod(nameof(ReportsBadDescriptionsWhereTheyAre))!
            .GetCustomAttributes(typeof(InlineDataAttribute), false).Cast<InlineDataAttribute>()
            .Select(a => (string)a.GetData(null!).Single()[1]).Append("BN010"); // BN010: ExportsWrapEveryMethodAndRejectOtherReturnTypes
        Assert.Equal(Diagnostics.ById.Keys.OrderBy(k => k), tested.Distinct().OrderBy(k => k));
    }

    [Fact]
    public void ExportsWrapEveryMethodAndRejectOtherReturnTypes()
    {
        const string source = """
            using System;
            namespace BnNative.Abi;
            internal static unsafe partial class Api
            {
                internal static nint* ImageTable => null;
                private static void EnterCall() { }
                private static void ExitCall() { }
                private static int StatusFromException(Exception e) => 5;
                private static byte* TextFromException(Exception e) => null;
                [CExport("lib_add")] private static int Add(int a, double* b) => a;
                [CExport("lib_name")] private static byte* Name() => null;
                [CExport("lib_bad")] private static long Bad() => 0;
            }
            """;
        var (driver, output, diagnostics, _) = Run(source);
        Assert.Equal("BN010", Assert.Single(diagnostics).Id);
        string code = Generated(driver, "Api.Exports.g.cs");
        Assert.Contains("[UnmanagedCallersOnly(EntryPoint = \"lib_add\")]", code);
        Assert.Contains("return ((delegate* unmanaged<int, double*, int>)image[0])(a, b);", code);
        Assert.Contains("return StatusFromException(e);", code);
        Assert.Contains("return TextFromException(e);", code);
        // The call runs here between EnterCall and ExitCall (in a finally, so a failing call is counted out too).
        Assert.Matches(@"EnterCall\(\);\s*try\s*\{\s*return Add\(a, b\);\s*\}\s*catch \(global::System.Exception e\)\s*\{\s*return StatusFromException\(e\);\s*\}\s*finally\s*\{\s*ExitCall\(\);", code);
        Assert.Contains("\"lib_name\",", code);
        Assert.DoesNotContain("lib_bad", code);
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
    }

    [Fact]
    public void AnUnrelatedEditReusesTheCachedKernels()
    {
        var (driver, _, _, input) = Run(TwoKernels);
        var edited = input.AddSyntaxTrees(CSharpSyntaxTree.ParseText("class Unrelated { }", new CSharpParseOptions(LanguageVersion.Preview)));
        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();
        var reasons = result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs).Select(o => o.Reason).ToList();
        Assert.NotEmpty(reasons);
        Assert.All(reasons, r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));
    }
}
