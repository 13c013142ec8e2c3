using Tandem.Gguf;
using Tandem.Tokenizers;

namespace Tandem.Engine;

public sealed record SessionOptions(int ContextLength = 2048, int Threads = 0);

/// <summary>SKELETON: public surface fixed, implementation in progress.</summary>
public sealed class Model : IDisposable
{
    public static Model Load(string path) => throw new NotImplementedException();
    public GgufFile Gguf => throw new NotImplementedException();
    public ModelConfig Config => throw new NotImplementedException();
    public Tokenizer Tokenizer => throw new NotImplementedException();
    public ChatFormatter Chat => throw new NotImplementedException();
    /// <summary>Total parameters (elements of all tensors).</summary>
    public long ParameterCount => throw new NotImplementedException();
    /// <summary>Bytes of tensor data mapped (weights).</summary>
    public long WeightBytes => throw new NotImplementedException();
    public InferenceSession CreateSession(SessionOptions options) => throw new NotImplementedException();
    public void Dispose() { }
}

/// <summary>SKELETON.</summary>
public sealed record ModelConfig(string Architecture, int EmbeddingLength, int BlockCount, int HeadCount, int HeadCountKv,
    int HeadDim, int FeedForwardLength, int VocabSize, int TrainedContextLength, float RmsEps, float RopeFreqBase);

/// <summary>The run state of one sequence: KV cache (allocated once) and activation buffers. SKELETON.</summary>
public sealed class InferenceSession : IDisposable
{
    public int Position => throw new NotImplementedException();
    public int ContextLength => throw new NotImplementedException();
    public int VocabSize => throw new NotImplementedException();
    /// <summary>Evaluates tokens at the next positions (batched prefill when several); returns the last token's logits, valid until the next call.</summary>
    public ReadOnlySpan<float> Evaluate(ReadOnlySpan<int> tokens) => throw new NotImplementedException();
    /// <summary>Evaluates tokens and writes every position's logits into allLogits (tokens.Length × VocabSize).</summary>
    public void Evaluate(ReadOnlySpan<int> tokens, Span<float> allLogits) => throw new NotImplementedException();
    /// <summary>Forgets everything from position onward.</summary>
    public void Truncate(int position) => throw new NotImplementedException();
    public void Dispose() { }
}

/// <summary>The prompt plus generated tokens would not fit the session's context.</summary>
public sealed class ContextOverflowException(string message) : Exception(message);
