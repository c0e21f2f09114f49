using System;

namespace BnGenerator
{
    /// <summary>What one statement of a kernel body does with its expression.</summary>
    internal enum StatementKind
    {
        /// <summary><c>var name = expr;</c>: a temporary of one element.</summary>
        Local,
        /// <summary><c>output = expr;</c>: written to an output stream.</summary>
        Store,
        /// <summary><c>sum += expr;</c>: reduced over the members of the group.</summary>
        Accumulate,
    }

    internal sealed record KernelStatement(StatementKind Kind, string Target, string Expression);

    /// <summary>
    /// One kernel description, as written in a <c>[NormKernel]</c> attribute: a per-element body over
    /// element streams, with parameters per statistics group (BN: channel; LN: position), parameters
    /// per member of a group (LN: channel), and sums per group. The emitter turns it into one method per
    /// loop shape × element type × vector width.
    /// </summary>
    internal sealed record KernelSpec(
        string Namespace,
        string ContainingType,
        string Name,
        string Body,
        EquatableArray<string> Inputs,
        EquatableArray<string> Outputs,
        EquatableArray<string> GroupParams,
        EquatableArray<string> MemberParams,
        EquatableArray<string> Sums,
        EquatableArray<KernelStatement> Statements)
    {
        /// <summary>Names of the temporaries the body declares, in order.</summary>
        public EquatableArray<string> Locals => new(System.Linq.Enumerable.Select(
            System.Linq.Enumerable.Where(Statements, s => s.Kind == StatementKind.Local), s => s.Target));
    }

    /// <summary>
    /// An element type the kernels are emitted for: how tensor elements are stored (<see cref="Keyword"/>, the
    /// type of the element streams) and the type they are computed in (<see cref="Compute"/>, the type of
    /// parameters, temporaries and sums). 16-bit types are stored narrow and computed in float: their streams
    /// are widened on load and narrowed (round to nearest even) on store by <see cref="Conversions"/>, a class
    /// of <see cref="ConversionEmitter"/>'s, so no kernel spells out a conversion.
    /// </summary>
    internal sealed record ElementType(string Keyword, string Compute, string Suffix, int Size, int ComputeSize, string? Conversions)
    {
        public static readonly ElementType Float32 = new("float", "float", "Float32", 4, 4, null);
        public static readonly ElementType Float64 = new("double", "double", "Float64", 8, 8, null);
        public static readonly ElementType Float16 = new("global::System.Half", "float", "Float16", 2, 4, "global::BnNative.Kernels.Float16Conversions");
        public static readonly ElementType BFloat16 = new("global::BnNative.Kernels.BFloat16", "float", "BFloat16", 2, 4, "global::BnNative.Kernels.BFloat16Conversions");
        public static readonly ElementType[] All = { Float32, Float64, Float16, BFloat16 };

        /// <summary>The element types whose compute type is their own: the others have no type of their own for sums.</summary>
        public static readonly ElementType[] ComputeTypes = { Float32, Float64 };

        /// <summary>Stored as computed: streams are loaded and stored as they are.</summary>
        public bool IsNative => Conversions == null;

        /// <summary>A vector of <paramref name="width"/> computed values loaded from <paramref name="address"/>.</summary>
        public string VectorLoad(VectorWidth width, string address) =>
            IsNative ? $"{width.Name}.Load({address})" : $"{Conversions}.Load{width.Bits}({address})";

        /// <summary>
        /// Stores a vector of computed values at <paramref name="address"/>, narrowed where the type is; <paramref name="store"/>
        /// names the Vector method (Store or StoreAlignedNonTemporal), which a 16-bit type's conversion class mirrors.
        /// </summary>
        public string VectorStore(VectorWidth width, string store, string value, string address) =>
            IsNative ? $"{width.Name}.{store}({value}, {address});" : $"{Conversions}.{store}{width.Bits}({value}, {address});";

        /// <summary>
        /// Whether outputs at this width can be written with non-temporal stores: native vectors, and 16-bit ones whose
        /// narrowed half vector is at least 16 bytes (a whole SSE store: x86's movntdq; a 128-bit vector narrows to 8 bytes,
        /// for which there is no non-temporal store).
        /// </summary>
        public bool StreamsAt(VectorWidth width) => !width.IsScalar && (IsNative || width.Bits >= 256);

        /// <summary>The bytes one vector of <paramref name="width"/> occupies in memory as this type: the alignment a non-temporal store needs.</summary>
        public int StoredVectorBytes(VectorWidth width) => width.Lanes(this) * Size;

        /// <summary>One stored element as the compute type.</summary>
        public string ScalarLoad(string element) => IsNative ? element : $"{Conversions}.Widen({element})";

        /// <summary>A computed value as a stored element.</summary>
        public string ScalarStore(string value) => IsNative ? value : $"{Conversions}.Narrow({value})";
    }

    /// <summary>
    /// A vector width the kernels are emitted for, with the register file the unroll factor is sized
    /// against (x86 AVX-512: 32 zmm; AVX2 and SSE: 16; NEON has 32 but shares Vector128 with SSE).
    /// Scalar has width 0.
    /// </summary>
    internal sealed record VectorWidth(string Name, int Bits, int Registers)
    {
        public static readonly VectorWidth Vector512 = new("Vector512", 512, 32);
        public static readonly VectorWidth Vector256 = new("Vector256", 256, 16);
        public static readonly VectorWidth Vector128 = new("Vector128", 128, 16);
        public static readonly VectorWidth Scalar = new("Scalar", 0, 0);

        /// <summary>The ladder, best first: the dispatcher tries them in this order.</summary>
        public static readonly VectorWidth[] Ladder = { Vector512, Vector256, Vector128, Scalar };

        public bool IsScalar => Bits == 0;

        public int Lanes(ElementType type) => Bits / 8 / type.ComputeSize;
    }

    /// <summary>The two ways a tile of (members × groups) can lie in memory.</summary>
    internal enum LoopShape
    {
        /// <summary>
        /// The members of one group are contiguous (BN over NCHW: a channel's H·W values; LN over NC and
        /// NHWC: a position's C values). Group parameters are scalars broadcast to every lane, member
        /// parameters are arrays read along the run, sums are reduced across lanes at the end.
        /// </summary>
        MembersContiguous,

        /// <summary>
        /// The groups are contiguous and members are rows with a stride (BN over NC and NHWC: a row of C
        /// channels per position; LN over NCHW: a row of H·W positions per channel). Group parameters and
        /// sums are arrays read along the row and kept in registers across rows; member parameters are
        /// one scalar per row.
        /// </summary>
        GroupsContiguous,

        /// <summary>
        /// Rows of contiguous members, one group each, <c>rowStride</c> elements apart (LayerNorm rows in L1, a group of
        /// them at a time): each row is reduced by one accumulator per sum, and the rows follow each other with no
        /// dependence between them, so their chains overlap in the core. Group parameters and sums are arrays of one
        /// value per row, member parameters one value per member, the same for every row. Only for reductions: kernels with
        /// sums and no outputs.
        /// </summary>
        RowGroup,
    }

    /// <summary>How far a loop is unrolled and so how many independent accumulators each sum gets.</summary>
    internal static class Unrolling
    {
        public const int Max = 4;

        /// <summary>
        /// The unroll factor for one kernel at one width: as many independent copies of the body as fit in
        /// the register file with the values every copy keeps live (its loads, temporaries, accumulators and,
        /// when the groups lie along the vector, its group parameters), leaving room for broadcast constants.
        /// </summary>
        public static int Factor(KernelSpec spec, LoopShape shape, VectorWidth width)
        {
            if (width.IsScalar || shape == LoopShape.RowGroup) // RowGroup: the rows are the independent chains
                return 1;
            int perCopy = spec.Inputs.Count + spec.Locals.Count + spec.Sums.Count + 1;
            int shared;
            if (shape == LoopShape.MembersContiguous)
            {
                perCopy += spec.MemberParams.Count;
                shared = spec.GroupParams.Count;
            }
            else
            {
                perCopy += spec.GroupParams.Count;
                shared = spec.MemberParams.Count;
            }
            int fit = (width.Registers - shared - 1) / Math.Max(1, perCopy);
            return Math.Max(1, Math.Min(Max, fit));
        }
    }
}
