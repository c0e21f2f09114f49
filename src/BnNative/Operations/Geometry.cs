using System;
using System.Runtime.InteropServices;

namespace BnNative.Operations;

/// <summary>
/// A validated tensor seen as BatchNorm sees it: C channels, each with M = N·S members. NC and NHWC
/// are the same to a kernel — rows of C contiguous channels (GroupsContiguous); NCHW has N slabs of S
/// contiguous values per channel (MembersContiguous).
/// </summary>
internal readonly unsafe struct Geometry<T> where T : unmanaged
{
    /// <summary>About half of a core's L2: the data one task works on, so its second pass hits cache (every operation's tasks).</summary>
    public const long TaskBytes = 512 * 1024;

    /// <summary>
    /// Rows one reducing GroupsContiguous call adds (each lane of a sum holds one group and adds one value per
    /// row): Accumulation.AddsPerAccumulator, so the sums in the element type stay within SPEC §4 whatever the data.
    /// </summary>
    public const long RowsPerChunk = Kernels.Accumulation.AddsPerAccumulator;

    /// <summary>
    /// Rows a channels-last task has at least (when C allows), so that the per-channel bookkeeping of a
    /// task (carrying sums to float64, merging moments) is spread over many rows of vector work.
    /// </summary>
    private const long MinRowsPerTask = 128;

    /// <summary>Channels are cut into ranges of multiples of 64: a whole number of vectors at every width.</summary>
    private const long ChannelRange = 64;

    /// <summary>
    /// The narrowest range of channels a task takes down every row of the tensor (see the constructor). Narrower ones
    /// measured slower than tiles of whole rows: resnet-late NHWC (1,568 rows × 512 channels) in 8 ranges of 64 channels,
    /// forward 0.18 → 0.21 ms and backward 0.22 → 0.28 ms at 1 thread, against 7 tiles of 256 rows.
    /// </summary>
    private const long MinColumnChannels = 256;

    /// <summary>
    /// Outputs at least this large are written with non-temporal stores: they would not stay in a core's
    /// cache anyway, and streaming them skips reading each line before it is overwritten (on the 2-vCPU VM,
    /// copy with non-temporal stores ran at 20 GB/s against 11 GB/s for ordinary stores).
    /// </summary>
    public const long StreamingBytes = 8 << 20;

    /// <summary>Shortest contiguous run written with non-temporal stores (LayerNorm rows of 96 were slower with them, of 768 faster).</summary>
    public const long MinStreamingRun = 512;

    public readonly long N, C, S;
    public readonly bool ChannelsLast;

    /// <summary>Channels-last tasks are tiles of RowsPerTask rows × ChannelsPerTask channels.</summary>
    public readonly long RowsPerTask, ChannelsPerTask;
    public readonly long RowBlocks, ChannelBlocks;

    public Geometry(in Shape shape)
    {
        N = shape.N;
        C = shape.C;
        S = shape.S;
        ChannelsLast = shape.ChannelsLast;
        long rowBytes = C * sizeof(T), columnBytes = M * sizeof(T);
        if (columnBytes * MinColumnChannels <= TaskBytes)
        {
            // Every row of a wide range of channels fits in a task: tasks are ranges of channels down all rows, so there is
            // one row block and nothing to merge (mlp, 256 × 4,096: forward 0.40 → 0.30 ms at 1 thread, 0.216 → 0.195 at 2,
            // against tiles of 128 rows × 1,024 channels; backward unchanged).
            ChannelsPerTask = Math.Min(C, TaskBytes / columnBytes / ChannelRange * ChannelRange);
            RowsPerTask = M;
        }
        else
        {
            // Wide rows are cut into channel ranges.
            ChannelsPerTask = rowBytes * MinRowsPerTask <= TaskBytes ? C : Math.Max(ChannelRange, TaskBytes / (MinRowsPerTask * sizeof(T)) / ChannelRange * ChannelRange);
            RowsPerTask = Math.Max(1, TaskBytes / (ChannelsPerTask * sizeof(T)));
        }
        RowBlocks = (M + RowsPerTask - 1) / RowsPerTask;
        ChannelBlocks = (C + ChannelsPerTask - 1) / ChannelsPerTask;
    }

    /// <summary>Members per channel.</summary>
    public long M => N * S;

    /// <summary>The most adjacent NCHW channels a task takes together (see <see cref="AdjacentChannels"/>).</summary>
    public const int MostAdjacentChannels = 32;

    /// <summary>
    /// NCHW training passes (forward, backward, and the split path's) take groups of adjacent channels per task, so that
    /// each sample's slabs of the group are read (and written) as one span: channel by channel, every slab was a run on its
    /// own, a sample's C·S values apart, and the prefetcher started again at each. At most C/8 channels, so there are at
    /// least 8 tasks, and at most 4 where slabs are 4 KB or more, 32 where they are shorter. Measured against channel by
    /// channel (both images in one process, alternated; 1 / 2 threads): long slabs in groups of up to 4, resnet-early (N
    /// 32, C 64, 56²) forward 1.14 / 1.12–1.14, backward 1.10 / 0.99–1.02, N 512 forward 1.14 / 1.10, backward 1.35 / 1.12.
    /// Short slabs, where channel by channel a slab of 49 values cost a miss of its own for every few lines (the map's
    /// stores and the statistics' loads were the hot instructions): in groups of 32, resnet-late (N 32, C 512, 7²) forward
    /// 1.18–1.21 / 1.15–1.32, backward 1.26–1.30 / 1.25–1.28; C 256, 14² forward 1.44–1.52 / 1.23–1.32, backward 1.53–1.67
    /// / 1.59–1.79; C 128 (groups of 16), 28² forward 1.41–1.42 / 1.13–1.20, backward 1.05–1.15 / 1.03–1.14; N 256, C 512,
    /// 7² forward 1.35 / 1.34, backward 1.55 / 1.41. Groups of 4 there measured 0.93–1.0 (resnet-late), of 8 1.09–1.20, of
    /// 64 about as 32; for long slabs, groups of 8 against 4 measured 0.92–1.00 on resnet-early, 1.00–1.11 on slabs of 32².
    /// Every channel's sums are the same additions in the same order whatever the group, so results do not change.
    /// </summary>
    public long AdjacentChannels => Math.Clamp(C / 8, 1, S * sizeof(T) >= 4096 ? 4 : MostAdjacentChannels);

    /// <summary>NCHW training tasks: groups of <see cref="AdjacentChannels"/> channels (the last may have fewer).</summary>
    public long ChannelGroups => (C + AdjacentChannels - 1) / AdjacentChannels;

    /// <summary>The channels [First, First + Count) of NCHW training task <paramref name="task"/> (see <see cref="ChannelGroups"/>).</summary>
    public (long First, long Count) ChannelGroup(long task)
    {
        long first = task * AdjacentChannels;
        return (first, Math.Min(AdjacentChannels, C - first));
    }

    /// <summary>Whether element-wise passes over NCHW slabs write with non-temporal stores.</summary>
    public bool StreamSlabs => Streams(N * C * S, S);

    /// <summary>
    /// Whether element-wise passes over channels-last tiles write with non-temporal stores: tiles of whole rows
    /// are contiguous runs of RowsPerTask·C elements (the kernels stream those rows that are whole vectors, aligned).
    /// </summary>
    public bool StreamTiles => ChannelsPerTask == C && Streams(N * C * S, RowsPerTask * C);

    /// <summary>
    /// Non-temporal stores for an output of <paramref name="elements"/> written in contiguous runs of
    /// <paramref name="runLength"/>: only for large outputs and long runs (short runs measured slower).
    /// </summary>
    public static bool Streams(long elements, long runLength) => elements * sizeof(T) >= StreamingBytes && runLength >= MinStreamingRun;

    /// <summary>
    /// The boundary the kernels' non-temporal stores start from: one vector of the widest width this image runs, as
    /// stored (64 bytes of floats at AVX-512, 32 of 16-bit values); 1 where nothing streams (scalar kernels, 16-bit
    /// values at 128 bits, whose 8-byte half vectors have no non-temporal store).
    /// </summary>
    private static readonly nuint StreamBoundary = StoredVectorBytes() is var bytes && bytes >= 16 ? (nuint)bytes : 1;

    private static int StoredVectorBytes()
    {
        int vectorBytes = !Kernels.KernelIsa.UseVectors ? 0
            : System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? 64
            : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? 32
            : System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated ? 16 : 0;
        return vectorBytes / (sizeof(T) == 8 ? 8 : 4) * sizeof(T); // lanes of the compute type (float, or double for F64)
    }

    /// <summary>
    /// Whether a RowGroup kernel can stream rows written from <paramref name="output"/> on: it streams whole rows only
    /// from a vector boundary. Elsewhere (malloc and NumPy start large arrays 16 bytes past a 64-byte one) a group's
    /// rows go to <see cref="StageBytes"/> on the stack first and a copy streams them out after a scalar head.
    /// </summary>
    public static bool StreamAligned(void* output) => (nuint)output % StreamBoundary == 0;

    /// <summary>
    /// Elements from <paramref name="output"/> to the next boundary the kernels stream from, where rows of
    /// <paramref name="rowLength"/> elements are whole multiples of it (so every row after them starts on one); 0 where
    /// the output is on one already, or cannot get there (not element-aligned, rows not whole boundaries).
    /// </summary>
    public static long HeadToStreamBoundary(T* output, long rowLength)
    {
        nuint offset = (nuint)output % StreamBoundary;
        if (offset == 0 || offset % (nuint)sizeof(T) != 0 || (nuint)(rowLength * sizeof(T)) % StreamBoundary != 0)
            return 0;
        return (long)((StreamBoundary - offset) / (nuint)sizeof(T));
    }

    /// <summary>Room for the rows of a group staged in L1 (see <see cref="StreamAligned"/>), and a boundary to align them to.</summary>
    public const int StageBytes = 16 * 1024 + 64;

    /// <summary>The first vector boundary in a stage of <see cref="StageBytes"/>.</summary>
    public static T* Stage(byte* stage) => (T*)(stage + (64 - (nuint)stage % 64) % 64);

    /// <summary>
    /// Whether channels-last gradient sums walk tiles of whole rows in memory order, their sums loaded and stored for every
    /// row, rather than four rows at a time (see KernelEmitter.EmitRowByRow): where a tensor is 4 MiB or more, so the pass
    /// reads x and dy from memory, and its rows are at most 2 KB, so both sums stay in L1. Measured against four rows at a
    /// time, float32, 1 thread unless said: N 8 × C 256 × 28² 1.18–1.23 (0.91–1.12 at 2 threads), N 16 × 256 × 28² 1.31–1.35
    /// at 2 threads, N 32 × 256 × 28² 1.17–1.37 (1.31–1.48), N 128 × 512 × 7² 1.14–1.16, 26 MB in rows of 128 1.08–1.14
    /// and of 512 1.19–1.22; and left out: resnet-late
    /// (3.2 MB a tensor) 0.81–0.95, N 4 × 256 × 28² 0.99, rows of 1,024 (6.4 and 26 MB) 0.78–1.03. The statistics' three
    /// sums lost in memory order even from memory (N 8 × 256 × 28² forward 0.74), and keep four rows at a time.
    /// </summary>
    public bool GradientSumsInMemoryOrder => N * C * S * sizeof(T) >= 4 << 20 && C * sizeof(T) <= 2048;

    /// <summary>Tasks in a channels-last layout; fixed by the shape, never by the thread count.</summary>
    public long TaskCount => RowBlocks * ChannelBlocks;

    /// <summary>The tile of channels-last task <paramref name="task"/>: its row block and its rows and channels.</summary>
    public Tile TaskTile(long task)
    {
        long rowBlock = task / ChannelBlocks, channelBlock = task % ChannelBlocks;
        long firstRow = rowBlock * RowsPerTask, firstChannel = channelBlock * ChannelsPerTask;
        return new Tile(rowBlock, firstRow, Math.Min(RowsPerTask, M - firstRow), firstChannel, Math.Min(ChannelsPerTask, C - firstChannel));
    }

    /// <summary>Rows in row block <paramref name="rowBlock"/>.</summary>
    public long RowsIn(long rowBlock) => Math.Min(RowsPerTask, M - rowBlock * RowsPerTask);

    /// <summary>NCHW slabs (one (n, c) plane of S values) per task of an element-wise pass.</summary>
    public long SlabsPerTask => Math.Max(1, TaskBytes / (S * sizeof(T)));

    /// <summary>Tasks of an element-wise pass over NCHW.</summary>
    public long PlanarTaskCount => (N * C + SlabsPerTask - 1) / SlabsPerTask;

    /// <summary>The slabs [first, end) of NCHW element-wise task <paramref name="task"/>, in memory order.</summary>
    public (long First, long End) PlanarTaskSlabs(long task)
    {
        long first = task * SlabsPerTask;
        return (first, Math.Min(first + SlabsPerTask, N * C));
    }

    /// <summary>Offset of slab (n, c) in NCHW.</summary>
    public long Slab(long n, long c) => (n * C + c) * S;

    /// <summary>The M members of channel <paramref name="c"/>: N slabs of S (NCHW), or one value per row of C (NC, NHWC).</summary>
    public Members Channel(long c) => ChannelsLast ? Members.Strided(c, M, C) : new Members(c * S, N, C * S, S, 1);
}

/// <summary>
/// A tensor's shape as the operations see it, once the ABI layer has checked it (every dimension ≥ 1, sizes that
/// fit): channels-last (NC, NHWC: rows of C contiguous channels) or channels-first (NCHW), and N, C, H, W.
/// </summary>
internal readonly record struct Shape(bool ChannelsLast, long N, long C, long H, long W)
{
    /// <summary>Positions per sample (H·W).</summary>
    public long S => H * W;

    /// <summary>Values per channel, and positions in the tensor (N·H·W).</summary>
    public long M => N * S;
}

/// <summary>A channels-last task: rows [FirstRow, FirstRow + Rows) × channels [FirstChannel, FirstChannel + Channels).</summary>
internal readonly record struct Tile(long RowBlock, long FirstRow, long Rows, long FirstChannel, long Channels)
{
    /// <summary>Offset of the tile's first element in a tensor with <paramref name="c"/> channels per row.</summary>
    public long Offset(long c) => FirstRow * c + FirstChannel;
}

/// <summary>An unmanaged buffer for one call's per-channel or per-task values.</summary>
internal readonly unsafe struct NativeBuffer<T> : IDisposable where T : unmanaged
{
    public readonly T* Pointer;

    public NativeBuffer(long count) =>
        Pointer = (T*)NativeMemory.AllocZeroed((nuint)Math.Max(1, count), (nuint)sizeof(T));

    public void Dispose() => NativeMemory.Free(Pointer);

    public static implicit operator T*(NativeBuffer<T> buffer) => buffer.Pointer;
}
