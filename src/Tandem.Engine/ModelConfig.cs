using Tandem.Engine.Blocks;
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
    /// <summary>Leading dimensions of each head that RoPE rotates (the rest pass through).</summary>
    public required int RopeDimensions { get; init; }
    public required RopeLayout RopeLayout { get; init; }
    /// <summary>Position scaling (linear, YaRN) as llama.cpp derives it from the rope.scaling.* keys.</summary>
    public required RopeParameters Rope { get; init; }

    public int QueryLength => HeadCount * HeadDim;
    public int KeyValueLength => HeadCountKv * HeadDim;
    public int ValueLength => HeadCountKv * ValueHeadDim;

    /// <summary>Reads the common keys for architecture <paramref name="arch"/> (keys are prefixed by the GGUF architecture name).</summary>
    public static ModelConfig Read(GgufFile file, string arch, RopeLayout layout)
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
        int ropeDims = (int)(file.GetInt($"{arch}.rope.dimension_count") ?? headDim);
        float freqBase = (float)(file.GetFloat($"{arch}.rope.freq_base") ?? 10000.0);
        int trainedContext = (int)(file.GetInt($"{arch}.context_length") ?? 2048);
        var rope = ReadRopeScaling(file, arch, file_, ropeDims, freqBase, trainedContext);
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
            TrainedContextLength = trainedContext,
            RmsEps = (float)(file.GetFloat($"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-5),
            RopeFreqBase = freqBase,
            RopeDimensions = ropeDims,
            RopeLayout = layout,
            Rope = rope,
        };
    }

    /// <summary>
    /// rope.scaling.type (linear when absent, as in llama.cpp), .factor (or the older rope.scale_linear),
    /// .original_context_length, .attn_factor and .yarn_log_multiplier, turned into ggml's rope parameters exactly as
    /// llama.cpp's context setup does (including its cancellation of ggml's YaRN magnitude term).
    /// </summary>
    static RopeParameters ReadRopeScaling(GgufFile file, string arch, string fileName, int dims, float freqBase, int trainedContext)
    {
        string type = file.GetString($"{arch}.rope.scaling.type") ?? "linear";
        if (type is not ("none" or "linear" or "yarn"))
            throw new NotSupportedException($"{fileName}: rope scaling type '{type}' is not supported (supported: none, linear, yarn)");
        float factor = (float)(file.GetFloat($"{arch}.rope.scaling.factor") ?? file.GetFloat($"{arch}.rope.scale_linear") ?? 0.0);
        float freqScale = type == "none" || factor == 0f ? 1f : 1f / factor;
        float attnFactor = 1f, extFactor = type == "yarn" ? 1f : 0f, low = 0f, high = 0f;
        if (extFactor != 0f)
        {
            static float MScale(float scale, float m) => scale <= 1f ? 1f : MathF.FusedMultiplyAdd(0.1f * m, MathF.Log(scale), 1f);
            float f = 1f / freqScale;
            float logMul = (float)(file.GetFloat($"{arch}.rope.scaling.yarn_log_multiplier") ?? 0.0);
            attnFactor = logMul != 0f ? MScale(f, 1f) / MScale(f, logMul) : MScale(f, 1f);
            attnFactor *= 1f / MathF.FusedMultiplyAdd(0.1f, MathF.Log(f), 1f);
            int originalContext = (int)(file.GetInt($"{arch}.rope.scaling.original_context_length") ?? trainedContext);
            (low, high) = RopeParameters.YarnCorrectionDims(dims, originalContext, freqBase, betaFast: 32f, betaSlow: 1f);
        }
        attnFactor *= (float)(file.GetFloat($"{arch}.rope.scaling.attn_factor") ?? 1.0);
        return new RopeParameters(dims, freqBase, freqScale, extFactor, attnFactor, low, high);
    }
}
