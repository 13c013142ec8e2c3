using Tandem.Engine.Blocks;
using Tandem.Gguf;

namespace Tandem.Engine.Architectures;

/// <summary>One decoder block's weights. Optional parts are null when an architecture lacks them.</summary>
public sealed class LayerWeights
{
    public required float[] AttentionNorm { get; init; }
    public required Linear Query { get; init; }
    public required Linear Key { get; init; }
    public required Linear Value { get; init; }
    public required Linear AttentionOutput { get; init; }
    /// <summary>Per-head RMSNorm of queries and keys before RoPE (qwen3).</summary>
    public float[]? QueryNorm { get; init; }
    public float[]? KeyNorm { get; init; }
    public required float[] FeedForwardNorm { get; init; }
    public required Linear Gate { get; init; }
    public required Linear Up { get; init; }
    public required Linear Down { get; init; }
}

/// <summary>All weights of a decoder-only transformer; matrices are views into the mapped GGUF.</summary>
public sealed unsafe class TransformerWeights
{
    public required GgufTensorInfo TokenEmbedding { get; init; }
    public required byte* TokenEmbeddingData { get; init; }
    public required LayerWeights[] Layers { get; init; }
    public required float[] OutputNorm { get; init; }
    /// <summary>The output projection; the token embedding itself when embeddings are tied.</summary>
    public required Linear Output { get; init; }
    public bool TiedEmbeddings { get; init; }
    /// <summary>Per-pair RoPE frequency divisors (rope_freqs.weight, Llama-3.1 style), or null.</summary>
    public float[]? RopeFrequencyFactors { get; init; }
}

/// <summary>Reads the tensors that llama-family architectures name the same way (blk.N.attn_q.weight, …).</summary>
public static class TransformerLoader
{
    public sealed record Parts(bool AttentionBiases = false, bool QueryKeyNorm = false);

    public static unsafe TransformerWeights Load(GgufFile file, ModelConfig config, Parts parts)
    {
        string name = System.IO.Path.GetFileName(file.Path);
        GgufTensorInfo Tensor(string tensorName) => file.TryGetTensor(tensorName, out var t) ? t
            : throw new GgufFormatException(name, $"tensor '{tensorName}'", $"required by architecture '{config.Architecture}' but missing");
        Linear Matrix(string baseName, int inFeatures, int outFeatures, bool bias)
        {
            var t = Tensor(baseName + ".weight");
            if (t.Dimensions.Length != 2 || t.Dimensions[0] != inFeatures || t.Dimensions[1] != outFeatures)
                throw new GgufFormatException(name, $"tensor '{t.Name}'", $"shape {t.ShapeText}; expected [{inFeatures}, {outFeatures}]");
            return new Linear(file, t, bias ? Vector(baseName + ".bias", outFeatures) : null);
        }
        float[] Vector(string tensorName, int length)
        {
            var t = Tensor(tensorName);
            if (t.ElementCount != length)
                throw new GgufFormatException(name, $"tensor '{tensorName}'", $"has {t.ElementCount} elements; expected {length}");
            return ReadF32(file, t);
        }

        int d = config.EmbeddingLength;
        var layers = new LayerWeights[config.BlockCount];
        for (int i = 0; i < layers.Length; i++)
        {
            string p = $"blk.{i}.";
            layers[i] = new LayerWeights
            {
                AttentionNorm = Vector(p + "attn_norm.weight", d),
                Query = Matrix(p + "attn_q", d, config.QueryLength, parts.AttentionBiases),
                Key = Matrix(p + "attn_k", d, config.KeyValueLength, parts.AttentionBiases),
                Value = Matrix(p + "attn_v", d, config.ValueLength, parts.AttentionBiases),
                AttentionOutput = Matrix(p + "attn_output", config.HeadCount * config.ValueHeadDim, d, false),
                QueryNorm = parts.QueryKeyNorm ? Vector(p + "attn_q_norm.weight", config.HeadDim) : null,
                KeyNorm = parts.QueryKeyNorm ? Vector(p + "attn_k_norm.weight", config.HeadDim) : null,
                FeedForwardNorm = Vector(p + "ffn_norm.weight", d),
                Gate = Matrix(p + "ffn_gate", d, config.FeedForwardLength, false),
                Up = Matrix(p + "ffn_up", d, config.FeedForwardLength, false),
                Down = Matrix(p + "ffn_down", config.FeedForwardLength, d, false),
            };
        }
        var embedding = Tensor("token_embd.weight");
        bool tied = !file.TryGetTensor("output.weight", out var output);
        var weights = new TransformerWeights
        {
            TokenEmbedding = embedding,
            TokenEmbeddingData = file.TensorPointer(embedding),
            Layers = layers,
            OutputNorm = Vector("output_norm.weight", d),
            Output = tied ? Matrix("token_embd", d, config.VocabSize, false) : Matrix("output", d, config.VocabSize, false),
            TiedEmbeddings = tied,
            RopeFrequencyFactors = file.TryGetTensor("rope_freqs.weight", out _) ? Vector("rope_freqs.weight", config.RopeDimensions / 2) : null,
        };
        ReleaseCopiedTensors(file, weights);
        return weights;
    }

    /// <summary>
    /// Norms, biases and matrices re-laid at load live in their own memory, yet reading them faulted in their mapped
    /// pages, and each fault also maps up to 64 KiB of neighbouring pages (Linux fault-around): 121 small tensors of a
    /// qwen2.5-0.5b kept ~7.5 MiB of otherwise unread Q4_0 weights resident. Only tensors still read through the
    /// mapping keep their pages.
    /// </summary>
    static void ReleaseCopiedTensors(GgufFile file, TransformerWeights weights)
    {
        var mapped = new HashSet<string>(StringComparer.Ordinal) { weights.TokenEmbedding.Name };
        foreach (var layer in weights.Layers)
            foreach (var matrix in (Linear[])[layer.Query, layer.Key, layer.Value, layer.AttentionOutput, layer.Gate, layer.Up, layer.Down])
                if (matrix.ReadsMapping) mapped.Add(matrix.Name);
        if (weights.Output.ReadsMapping) mapped.Add(weights.Output.Name);
        foreach (var tensor in file.Tensors)
            if (!mapped.Contains(tensor.Name)) file.ReleasePages(tensor);
    }

    /// <summary>Small 1-D tensors (norms, biases) are materialised as F32; matrices stay in the mapping.</summary>
    static unsafe float[] ReadF32(GgufFile file, GgufTensorInfo t)
    {
        var result = new float[t.ElementCount];
        fixed (float* dst = result)
            Kernels.KernelRegistry.DequantizeRow(t.Type, file.TensorPointer(t), dst, result.Length);
        return result;
    }
}
