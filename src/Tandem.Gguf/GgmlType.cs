namespace Tandem.Gguf;

/// <summary>ggml tensor element types, numbered as in ggml.h (the numbers are the on-disk values).</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
}

/// <summary>Block geometry of a tensor type: <see cref="BlockSize"/> elements are stored in <see cref="TypeSize"/> bytes.</summary>
public readonly record struct GgmlTypeInfo(GgmlType Type, string Name, int BlockSize, int TypeSize)
{
    static readonly Dictionary<GgmlType, GgmlTypeInfo> Known = new()
    {
        [GgmlType.F32] = new(GgmlType.F32, "F32", 1, 4),
        [GgmlType.F16] = new(GgmlType.F16, "F16", 1, 2),
        [GgmlType.BF16] = new(GgmlType.BF16, "BF16", 1, 2),
        [GgmlType.F64] = new(GgmlType.F64, "F64", 1, 8),
        [GgmlType.I8] = new(GgmlType.I8, "I8", 1, 1),
        [GgmlType.I16] = new(GgmlType.I16, "I16", 1, 2),
        [GgmlType.I32] = new(GgmlType.I32, "I32", 1, 4),
        [GgmlType.I64] = new(GgmlType.I64, "I64", 1, 8),
        [GgmlType.Q4_0] = new(GgmlType.Q4_0, "Q4_0", 32, 18),
        [GgmlType.Q4_1] = new(GgmlType.Q4_1, "Q4_1", 32, 20),
        [GgmlType.Q5_0] = new(GgmlType.Q5_0, "Q5_0", 32, 22),
        [GgmlType.Q5_1] = new(GgmlType.Q5_1, "Q5_1", 32, 24),
        [GgmlType.Q8_0] = new(GgmlType.Q8_0, "Q8_0", 32, 34),
        [GgmlType.Q8_1] = new(GgmlType.Q8_1, "Q8_1", 32, 36),
        [GgmlType.Q2_K] = new(GgmlType.Q2_K, "Q2_K", 256, 84),
        [GgmlType.Q3_K] = new(GgmlType.Q3_K, "Q3_K", 256, 110),
        [GgmlType.Q4_K] = new(GgmlType.Q4_K, "Q4_K", 256, 144),
        [GgmlType.Q5_K] = new(GgmlType.Q5_K, "Q5_K", 256, 176),
        [GgmlType.Q6_K] = new(GgmlType.Q6_K, "Q6_K", 256, 210),
        [GgmlType.Q8_K] = new(GgmlType.Q8_K, "Q8_K", 256, 292),
    };

    public static bool TryGet(GgmlType type, out GgmlTypeInfo info) => Known.TryGetValue(type, out info);

    public static GgmlTypeInfo Of(GgmlType type) =>
        Known.TryGetValue(type, out var info) ? info : throw new ArgumentException($"Unsupported ggml tensor type {(uint)type}.", nameof(type));

    public static IEnumerable<GgmlTypeInfo> All => Known.Values;

    /// <summary>Bytes taken by one row of <paramref name="elements"/> elements (must be a multiple of the block size).</summary>
    public long RowBytes(long elements) => elements / BlockSize * TypeSize;

    public static bool TryParse(string name, out GgmlType type)
    {
        foreach (var info in Known.Values)
            if (string.Equals(info.Name, name, StringComparison.OrdinalIgnoreCase)) { type = info.Type; return true; }
        type = default;
        return false;
    }
}
