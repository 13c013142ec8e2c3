using System.Diagnostics;
using Tandem.Engine.Architectures;
using Tandem.Gguf;
using Tandem.Tokenizers;

namespace Tandem.Engine;

/// <summary>How a session runs: context length (positions each sequence's KV cache holds), threads (0 = all cores),
/// the largest batch evaluated in one pass (longer prompts are split; buffers are sized for it once), the most tokens
/// the feed-forward block takes at once, and how many sequences (KV slots) it holds.</summary>
public sealed record SessionOptions(int ContextLength = 2048, int Threads = 0)
{
    /// <summary>
    /// The most tokens one pass evaluates; its model-wide buffers are sized for this many. 256, not llama.cpp's 512:
    /// a 512-token prompt then reads the weights twice, which measured within noise of once (the tiles are
    /// compute-bound), and the buffers of the 1.5B shrink by 5.5 MiB of peak RSS (its budget: weights + KV + 64 MiB).
    /// </summary>
    public int BatchSize { get; init; } = 256;
    /// <summary>
    /// The feed-forward block of a batch runs over at most this many tokens at a time (rounded down to a multiple of
    /// 16, at least 32), so its two ffn-wide buffers — the largest activations — are sized for this many tokens rather
    /// than for <see cref="BatchSize"/>. Results do not depend on it (see <see cref="InferenceSession"/>); each slice
    /// reads the feed-forward weights once, so much smaller values cost prefill speed.
    /// </summary>
    public int FeedForwardBatch { get; init; } = 64;
    public int Sequences { get; init; } = 1;
}

/// <summary>A loaded model: the mapped GGUF, its hyperparameters, weights bound in place, tokenizer and chat format.</summary>
public sealed class Model : IDisposable
{
    public GgufFile Gguf { get; }
    public ModelConfig Config { get; }
    public TransformerWeights Weights { get; }
    public Tokenizer Tokenizer { get; }
    public ChatFormatter Chat { get; }
    public TimeSpan LoadTime { get; }

    /// <summary>Total parameters (elements of all tensors).</summary>
    public long ParameterCount => Gguf.Tensors.Sum(t => t.ElementCount);

    /// <summary>Bytes of tensor data mapped (weights).</summary>
    public long WeightBytes => Gguf.Tensors.Sum(t => t.ByteSize);

    Model(GgufFile gguf, ModelConfig config, TransformerWeights weights, Tokenizer tokenizer, ChatFormatter chat, TimeSpan loadTime)
    {
        Gguf = gguf;
        Config = config;
        Weights = weights;
        Tokenizer = tokenizer;
        Chat = chat;
        LoadTime = loadTime;
    }

    public static Model Load(string path)
    {
        var clock = Stopwatch.StartNew();
        var gguf = GgufFile.Open(path);
        try
        {
            var architecture = ArchitectureRegistry.Get(gguf);
            var config = architecture.ReadConfig(gguf);
            var weights = architecture.LoadWeights(gguf, config);
            var tokenizer = Tokenizer.FromGguf(gguf);
            var chat = ChatFormatter.FromGguf(gguf);
            return new Model(gguf, config, weights, tokenizer, chat, clock.Elapsed);
        }
        catch
        {
            gguf.Dispose();
            throw;
        }
    }

    public InferenceSession CreateSession(SessionOptions options) => new(this, options);

    public void Dispose() => Gguf.Dispose();
}

/// <summary>The prompt plus generated tokens would not fit the session's context.</summary>
public sealed class ContextOverflowException(string message) : Exception(message);
