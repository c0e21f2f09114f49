using System.Globalization;
using System.Linq;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace BnNative.Benchmarks;

/// <summary>
/// Effective bandwidth, SPEC §5's figure: the minimum bytes the case must move (<see cref="Case.MinimumBytes"/>) over
/// the mean time of a call, in GB/s (1e9 bytes).
/// </summary>
public sealed class GigabytesPerSecondColumn : IColumn
{
    public string Id => nameof(GigabytesPerSecondColumn);
    public string ColumnName => "GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Effective bandwidth: minimum bytes moved (forward x + y, backward x + dy + dx) / mean time, 1e9 B/s";

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var statistics = summary[benchmarkCase]?.ResultStatistics;
        var parameter = benchmarkCase.Parameters.Items.FirstOrDefault(p => p.Value is Case);
        if (statistics == null || parameter?.Value is not Case c)
            return "-";
        return (c.MinimumBytes / statistics.Mean).ToString("F1", CultureInfo.InvariantCulture); // bytes per ns = GB/s
    }
}
