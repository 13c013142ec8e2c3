using Tandem.Gguf;

namespace Tandem.Compression;

/// <summary>What the per-tensor type rules need to know about a model (from its metadata and tensor list).</summary>
public sealed record ModelFacts
{
    public required string Architecture { get; init; }
    public required int LayerCount { get; init; }
    public int HeadCount { get; init; } = 1;
    public int HeadCountKv { get; init; } = 1;
    public int ExpertCount { get; init; }
    /// <summary>True when there is no output.weight, so token_embd.weight is also the output projection.</summary>
    public bool TiedEmbeddings { get; init; } = true;

    /// <summary>Query heads per key/value head.</summary>
    public int GroupedQueryFactor => HeadCountKv > 0 ? HeadCount / HeadCountKv : 1;

    /// <summary>llama.cpp treats these as its "70B" size class, which gets a larger attn_v type.</summary>
    public bool Is70BClass => LayerCount == 80 && (Architecture == "qwen2" || (Architecture == "llama" && HeadCount != HeadCountKv));

    public static ModelFacts Read(GgufFile file)
    {
        string arch = file.GetString("general.architecture") ?? "";
        // per-layer hyperparameters may be arrays; llama.cpp's n_gqa() looks at layer 0
        long? First(string key) => !file.Metadata.TryGetValue(key, out var v) ? null
            : v.Type == GgufValueType.Array ? (v.AsArray() is { Count: > 0 } a ? Convert.ToInt64(a.Items.GetValue(0), System.Globalization.CultureInfo.InvariantCulture) : null)
            : v.AsInt64();
        int heads = (int)(First($"{arch}.attention.head_count") ?? 1);
        return new ModelFacts
        {
            Architecture = arch,
            LayerCount = (int)(file.GetInt($"{arch}.block_count") ?? 0),
            HeadCount = heads,
            HeadCountKv = (int)(First($"{arch}.attention.head_count_kv") ?? heads),
            ExpertCount = (int)(file.GetInt($"{arch}.expert_count") ?? 0),
            TiedEmbeddings = !file.TryGetTensor("output.weight", out _),
        };
    }
}

/// <summary>A tensor as the type rules see it.</summary>
public sealed record TensorShape(string Name, long[] Dimensions, GgmlType Type);

/// <summary>
/// Chooses each tensor's type for a quantization, reproducing llama.cpp's choices (llama_tensor_get_type in
/// src/llama-quant.cpp, without importance matrices and without the IQ/ternary mixes):
/// <list type="bullet">
/// <item>only tensors of 2+ dimensions whose name ends in "weight" are quantized, never "*_norm.weight";</item>
/// <item>output.weight (and token_embd.weight when tied) gets Q6_K (Q8_0 for Q8_0 files, or when its rows are not a
///   multiple of the block size, and always for falcon);</item>
/// <item>the mixes raise attn_v / ffn_down / attn_output by layer position ("use more bits" = the first and last eighth
///   of the layers and every third layer between);</item>
/// <item>a type whose block does not divide the row length falls back: Q2_K/Q3_K → Q4_0, Q4_K → Q5_0, Q5_K → Q5_1,
///   Q6_K → Q8_0, and F16 if even that does not fit.</item>
/// </list>
/// Tensors must be given in llama.cpp's processing order (<see cref="ProcessingOrder"/>): the layer counters depend on it.
/// </summary>
public sealed class TensorTypePolicy
{
    enum Category { TokenEmbedding, Output, AttentionQkv, AttentionKvB, AttentionV, AttentionK, AttentionQ, AttentionOutput, FfnUp, FfnGate, FfnDown, Other }

    readonly ModelFacts _model;
    readonly QuantizationType _quant;
    readonly bool _pure;
    int _attentionVCount, _attentionVIndex, _ffnDownIndex;

    /// <summary>How many tensors had to fall back to another type because of their row length.</summary>
    public int FallbackCount { get; private set; }

    TensorTypePolicy(ModelFacts model, QuantizationType quant, bool pure)
    {
        _model = model;
        _quant = quant;
        _pure = pure;
    }

    /// <summary>llama.cpp's order: tensors outside blocks first, then block by block; by name within each group.</summary>
    public static List<T> ProcessingOrder<T>(IEnumerable<T> tensors, Func<T, string> name) =>
        tensors.OrderBy(t => LayerOf(name(t))).ThenBy(t => name(t), StringComparer.Ordinal).ToList();

    /// <summary>The target type of every tensor, in the order given (which must be <see cref="ProcessingOrder"/>).</summary>
    public static GgmlType[] Choose(ModelFacts model, QuantizationType quant, IReadOnlyList<TensorShape> tensors, bool pure, out int fallbacks)
    {
        var policy = new TensorTypePolicy(model, quant, pure);
        policy._attentionVCount = tensors.Count(t => IsAttentionVLike(CategoryOf(t.Name)));
        var result = tensors.Select(policy.TypeFor).ToArray();
        fallbacks = policy.FallbackCount;
        return result;
    }

    /// <summary>Whether llama.cpp would quantize this tensor at all (otherwise it keeps its type).</summary>
    public static bool AllowsQuantization(TensorShape t)
    {
        string n = t.Name;
        if (NumberOfDimensions(t.Dimensions) < 2) return false;
        if (!n.EndsWith("weight", StringComparison.Ordinal)) return false;
        string[] excluded =
        [
            "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
            "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight", "time_mix_first.weight",
            "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight",
            "time_mix_v2.weight", "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
            "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
            "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd",
            ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
        ];
        if (excluded.Any(x => n.Contains(x, StringComparison.Ordinal))) return false;
        return n is not ("position_embd.weight" or "token_types.weight");
    }

    /// <summary>ggml_n_dims: the number of dimensions up to the last one larger than 1 (at least 1).</summary>
    static int NumberOfDimensions(long[] dims)
    {
        for (int i = dims.Length - 1; i >= 1; i--)
            if (dims[i] > 1) return i + 1;
        return 1;
    }

    GgmlType TypeFor(TensorShape t)
    {
        if (!AllowsQuantization(t)) return t.Type;
        var type = _quant.DefaultTensorType;
        if (!IsBlockQuantized(type)) return type; // F32/F16/BF16 files: every quantizable tensor gets that type
        if (!_pure) type = MixType(t, type, CategoryOf(t.Name));
        return Fallback(t, type);
    }

    static bool IsBlockQuantized(GgmlType type) => type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16);

    static bool UseMoreBits(int layer, int layers) => layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    GgmlType MixType(TensorShape t, GgmlType type, Category category)
    {
        var ftype = _quant.FileType;
        string arch = _model.Architecture;
        bool falcon = arch == "falcon";
        int gqa = _model.GroupedQueryFactor, experts = _model.ExpertCount;

        if (category == Category.Output || (_model.TiedEmbeddings && category == Category.TokenEmbedding))
        {
            long columns = t.Dimensions[0];
            if (falcon || columns % GgmlTypeInfo.Of(type).BlockSize != 0) return GgmlType.Q8_0;
            return type != GgmlType.Q8_0 ? GgmlType.Q6_K : type;
        }
        if (category == Category.TokenEmbedding) return type; // untied: the default type
        if (IsAttentionVLike(category))
        {
            if (ftype == LlamaFileType.MostlyQ2_K) type = gqa >= 4 ? GgmlType.Q4_K : GgmlType.Q3_K;
            else if (ftype == LlamaFileType.MostlyQ3_K_M) type = _attentionVIndex < 2 ? GgmlType.Q5_K : GgmlType.Q4_K;
            else if (ftype == LlamaFileType.MostlyQ3_K_L) type = GgmlType.Q5_K;
            else if (ftype is LlamaFileType.MostlyQ4_K_M or LlamaFileType.MostlyQ5_K_M && UseMoreBits(_attentionVIndex, _attentionVCount)) type = GgmlType.Q6_K;
            else if (ftype == LlamaFileType.MostlyQ4_K_S && _attentionVIndex < 4) type = GgmlType.Q5_K;
            if (_model.Is70BClass && type is GgmlType.Q3_K or GgmlType.Q4_K) type = GgmlType.Q5_K;
            if (experts == 8) type = GgmlType.Q8_0;
            _attentionVIndex++;
            return type;
        }
        switch (category)
        {
            case Category.AttentionK:
                return experts == 8 ? GgmlType.Q8_0 : type;
            case Category.FfnDown:
            {
                int layer = experts > 1 ? BlockIndexOf(t.Name) : _ffnDownIndex, layers = _model.LayerCount;
                if (ftype == LlamaFileType.MostlyQ2_K) type = GgmlType.Q3_K;
                else if (ftype == LlamaFileType.MostlyQ3_K_M)
                    type = layer < layers / 16 ? GgmlType.Q5_K : !falcon || UseMoreBits(layer, layers) ? GgmlType.Q4_K : GgmlType.Q3_K;
                else if (ftype == LlamaFileType.MostlyQ3_K_L) type = falcon ? GgmlType.Q4_K : GgmlType.Q5_K;
                else if (ftype == LlamaFileType.MostlyQ4_K_M)
                {
                    if (falcon) type = layer < layers / 16 ? GgmlType.Q6_K : UseMoreBits(layer, layers) ? GgmlType.Q5_K : GgmlType.Q4_K;
                    else if (UseMoreBits(layer, layers)) type = GgmlType.Q6_K;
                }
                else if (ftype == LlamaFileType.MostlyQ5_K_M && UseMoreBits(layer, layers)) type = GgmlType.Q6_K;
                else if (ftype == LlamaFileType.MostlyQ4_K_S && !falcon && layer < layers / 8) type = GgmlType.Q5_K;
                _ffnDownIndex++;
                return type;
            }
            case Category.AttentionOutput:
                if (falcon) return ftype == LlamaFileType.MostlyQ3_K_L ? GgmlType.Q4_K : type;
                if (experts == 8)
                    return ftype is LlamaFileType.MostlyQ2_K or LlamaFileType.MostlyQ3_K_S or LlamaFileType.MostlyQ3_K_M
                        or LlamaFileType.MostlyQ4_K_S or LlamaFileType.MostlyQ4_K_M ? GgmlType.Q5_K : type;
                return ftype switch
                {
                    LlamaFileType.MostlyQ2_K => GgmlType.Q3_K,
                    LlamaFileType.MostlyQ3_K_M => GgmlType.Q4_K,
                    LlamaFileType.MostlyQ3_K_L => GgmlType.Q5_K,
                    _ => type,
                };
            case Category.AttentionQkv:
                return ftype switch
                {
                    LlamaFileType.MostlyQ3_K_M or LlamaFileType.MostlyQ3_K_L => GgmlType.Q4_K,
                    LlamaFileType.MostlyQ4_K_M => GgmlType.Q5_K,
                    LlamaFileType.MostlyQ5_K_M => GgmlType.Q6_K,
                    _ => type,
                };
            default:
                return type;
        }
    }

    GgmlType Fallback(TensorShape t, GgmlType type)
    {
        long columns = t.Dimensions[0];
        if (columns % GgmlTypeInfo.Of(type).BlockSize == 0) return type;
        FallbackCount++;
        var fallback = type switch
        {
            GgmlType.Q2_K or GgmlType.Q3_K => GgmlType.Q4_0,
            GgmlType.Q4_K => GgmlType.Q5_0,
            GgmlType.Q5_K => GgmlType.Q5_1,
            GgmlType.Q6_K => GgmlType.Q8_0,
            _ => throw new ArgumentException($"tensor '{t.Name}': row length {columns} is not a multiple of the {type} block size and {type} has no fallback"),
        };
        return columns % GgmlTypeInfo.Of(fallback).BlockSize == 0 ? fallback : GgmlType.F16;
    }

    static bool IsAttentionVLike(Category c) => c is Category.AttentionV or Category.AttentionQkv or Category.AttentionKvB;

    static Category CategoryOf(string name)
    {
        if (name == "output.weight") return Category.Output;
        if (name is "token_embd.weight" or "per_layer_token_embd.weight") return Category.TokenEmbedding;
        (string Part, Category Category)[] parts =
        [
            ("attn_qkv.weight", Category.AttentionQkv), ("attn_kv_b.weight", Category.AttentionKvB), ("attn_v.weight", Category.AttentionV),
            ("attn_k.weight", Category.AttentionK), ("attn_q.weight", Category.AttentionQ), ("attn_output.weight", Category.AttentionOutput),
            ("ffn_up", Category.FfnUp), ("ffn_gate", Category.FfnGate), ("ffn_down", Category.FfnDown),
        ];
        foreach (var (part, category) in parts)
            if (name.Contains(part, StringComparison.Ordinal)) return category;
        return Category.Other;
    }

    /// <summary>The N of "blk.N.…", or -1 for tensors outside the blocks.</summary>
    public static int LayerOf(string name)
    {
        if (!name.StartsWith("blk.", StringComparison.Ordinal)) return -1;
        int end = name.IndexOf('.', 4);
        return end > 4 && int.TryParse(name.AsSpan(4, end - 4), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) ? n : -1;
    }

    static int BlockIndexOf(string name) => LayerOf(name) is >= 0 and var n ? n
        : throw new ArgumentException($"cannot tell the layer of tensor '{name}'");
}
