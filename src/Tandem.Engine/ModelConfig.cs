using Tandem.Gguf;

namespace Tandem.Engine;

/// <summary>How RoPE pairs dimensions: Normal rotates (x[2i], x[2i+1]) (llama); Neox rotates (x[i], x[i+n/2]) (qwen2, qwen3).</summary>
public enum RopeLayout { Normal, Neox }

/// <summary>Hyperparameters of a decoder-only transformer, read from <c>{architecture}.*</c> metadata.</summary>
public sealed record ModelConfig
{
    public required string Architecture { get; init; }
    public required int EmbeddingLength { get; init; }
    public required int BlockCount { get; init; }
    public required int HeadCount { get; init; }
    public required int HeadCountKv { get; init; }
    /// <summary>Per-head dimension of queries and keys.</summary>
    public required int HeadDim { get; init; }
    /// <summary>Per-head dimension of values.</summary>
    public required int ValueHeadDim { get; init; }
    public required int FeedForwardLength { get; init; }
    public required int VocabSize { get; init; }
    public required int TrainedContextLength { get; init; }
    public required float RmsEps { get; init; }
    public required float RopeFreqBase { get; init; }
    /// <summary>1 / linear scaling factor (1 when unscaled).</summary>
    public required float RopeFreqScale { get; init; }
    /// <summary>Leading dimensions of each head that RoPE rotates (the rest pass through).</summary>
    public required int RopeDimensions { get; init; }
    public required RopeLayout RopeLayout { get; init; }

    public int QueryLength => HeadCount * HeadDim;
    public int KeyValueLength => HeadCountKv * HeadDim;
    public int ValueLength => HeadCountKv * ValueHeadDim;

    /// <summary>Reads the common keys for architecture <paramref name="arch"/> (keys are prefixed by the GGUF architecture name).</summary>
    public static ModelConfig Read(GgufFile file, string arch, RopeLayout rope)
    {
        string file_ = System.IO.Path.GetFileName(file.Path);
        int Int(string key) => checked((int)file.RequireInt($"{arch}.{key}"));
        int embd = Int("embedding_length");
        int heads = Int("attention.head_count");
        if (heads <= 0 || embd <= 0)
            throw new GgufFormatException(file_, $"metadata '{arch}.attention.head_count'", $"expected positive head count and embedding length, found {heads} and {embd}");
        int headsKv = (int)(file.GetInt($"{arch}.attention.head_count_kv") ?? heads);
        if (headsKv <= 0 || heads % headsKv != 0)
            throw new GgufFormatException(file_, $"metadata '{arch}.attention.head_count_kv'", $"expected a divisor of head_count {heads}, found {headsKv}");
        int headDim = (int)(file.GetInt($"{arch}.attention.key_length") ?? embd / heads);
        int valueDim = (int)(file.GetInt($"{arch}.attention.value_length") ?? headDim);
        var embdTensor = file.TryGetTensor("token_embd.weight", out var te) ? te
            : throw new GgufFormatException(file_, "tensor 'token_embd.weight'", "required tensor is missing");
        float freqScale = 1f;
        string? scalingType = file.GetString($"{arch}.rope.scaling.type");
        double? factor = file.GetFloat($"{arch}.rope.scaling.factor") ?? file.GetFloat($"{arch}.rope.scale_linear");
        if (scalingType is "yarn" or "longrope")
            throw new NotSupportedException($"{file_}: rope scaling type '{scalingType}' is not supported yet (supported: none, linear, rope_freqs factors)");
        if (scalingType is null or "linear" && factor is > 0) freqScale = (float)(1.0 / factor.Value);
        return new ModelConfig
        {
            Architecture = arch,
            EmbeddingLength = embd,
            BlockCount = Int("block_count"),
            HeadCount = heads,
            HeadCountKv = headsKv,
            HeadDim = headDim,
            ValueHeadDim = valueDim,
            FeedForwardLength = Int("feed_forward_length"),
            VocabSize = checked((int)embdTensor.Dimensions[1]),
            TrainedContextLength = (int)(file.GetInt($"{arch}.context_length") ?? 2048),
            RmsEps = (float)(file.GetFloat($"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-5),
            RopeFreqBase = (float)(file.GetFloat($"{arch}.rope.freq_base") ?? 10000.0),
            RopeFreqScale = freqScale,
            RopeDimensions = (int)(file.GetInt($"{arch}.rope.dimension_count") ?? headDim),
            RopeLayout = rope,
        };
    }
}
