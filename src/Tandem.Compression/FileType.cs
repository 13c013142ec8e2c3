using Tandem.Gguf;

namespace Tandem.Compression;

/// <summary>llama.cpp's file types (enum llama_ftype; the number is what <c>general.file_type</c> holds).</summary>
public enum LlamaFileType : uint
{
    AllF32 = 0,
    MostlyF16 = 1,
    MostlyQ4_0 = 2,
    MostlyQ4_1 = 3,
    MostlyQ8_0 = 7,
    MostlyQ5_0 = 8,
    MostlyQ5_1 = 9,
    MostlyQ2_K = 10,
    MostlyQ3_K_S = 11,
    MostlyQ3_K_M = 12,
    MostlyQ3_K_L = 13,
    MostlyQ4_K_S = 14,
    MostlyQ4_K_M = 15,
    MostlyQ5_K_S = 16,
    MostlyQ5_K_M = 17,
    MostlyQ6_K = 18,
    MostlyBF16 = 32,
}

/// <summary>
/// A quantization the user can ask for by name (as llama-quantize names them): the file type it writes and the
/// tensor type most weights get. Q2_K, Q3_K_*, Q4_K_*, Q5_K_* are mixes (see <see cref="TensorTypePolicy"/>);
/// as in llama-quantize, "Q3_K", "Q4_K" and "Q5_K" are aliases of the _M mixes.
/// </summary>
public sealed record QuantizationType(string Name, LlamaFileType FileType, GgmlType DefaultTensorType, string Description)
{
    public static readonly IReadOnlyList<QuantizationType> All =
    [
        new("F32", LlamaFileType.AllF32, GgmlType.F32, "32-bit float (no quantization)"),
        new("F16", LlamaFileType.MostlyF16, GgmlType.F16, "16-bit float"),
        new("BF16", LlamaFileType.MostlyBF16, GgmlType.BF16, "bfloat16"),
        new("Q8_0", LlamaFileType.MostlyQ8_0, GgmlType.Q8_0, "8.5 bits per weight"),
        new("Q4_0", LlamaFileType.MostlyQ4_0, GgmlType.Q4_0, "4.5 bpw"),
        new("Q4_1", LlamaFileType.MostlyQ4_1, GgmlType.Q4_1, "5.0 bpw"),
        new("Q5_0", LlamaFileType.MostlyQ5_0, GgmlType.Q5_0, "5.5 bpw"),
        new("Q5_1", LlamaFileType.MostlyQ5_1, GgmlType.Q5_1, "6.0 bpw"),
        new("Q2_K", LlamaFileType.MostlyQ2_K, GgmlType.Q2_K, "mix: Q2_K, with Q3_K/Q4_K attn_v, Q3_K ffn_down and attn_output"),
        new("Q3_K_S", LlamaFileType.MostlyQ3_K_S, GgmlType.Q3_K, "Q3_K everywhere but the output"),
        new("Q3_K_M", LlamaFileType.MostlyQ3_K_M, GgmlType.Q3_K, "mix: Q3_K, with Q4_K/Q5_K attn_v, ffn_down, attn_output"),
        new("Q3_K_L", LlamaFileType.MostlyQ3_K_L, GgmlType.Q3_K, "mix: Q3_K, with Q5_K attn_v, ffn_down, attn_output"),
        new("Q4_K_S", LlamaFileType.MostlyQ4_K_S, GgmlType.Q4_K, "mix: Q4_K, Q5_K in the first layers' attn_v and ffn_down"),
        new("Q4_K_M", LlamaFileType.MostlyQ4_K_M, GgmlType.Q4_K, "mix: Q4_K, with Q6_K in half of attn_v and ffn_down"),
        new("Q5_K_S", LlamaFileType.MostlyQ5_K_S, GgmlType.Q5_K, "Q5_K everywhere but the output"),
        new("Q5_K_M", LlamaFileType.MostlyQ5_K_M, GgmlType.Q5_K, "mix: Q5_K, with Q6_K in half of attn_v and ffn_down"),
        new("Q6_K", LlamaFileType.MostlyQ6_K, GgmlType.Q6_K, "6.56 bpw"),
    ];

    static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Q3_K"] = "Q3_K_M", ["Q4_K"] = "Q4_K_M", ["Q5_K"] = "Q5_K_M",
    };

    /// <summary>The type called <paramref name="name"/> (case-insensitive, aliases allowed), or an error listing the known names.</summary>
    public static QuantizationType Parse(string name)
    {
        string key = Aliases.TryGetValue(name, out var target) ? target : name;
        return All.FirstOrDefault(t => string.Equals(t.Name, key, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"unknown quantization type '{name}'; expected one of {NameList}");
    }

    public static string NameList => string.Join(", ", All.Select(t => t.Name)) + " (Q3_K, Q4_K, Q5_K = the _M mixes)";
}
