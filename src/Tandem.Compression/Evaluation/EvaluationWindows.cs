using Tandem.Tokenizers;

namespace Tandem.Compression.Evaluation;

/// <summary>How a text is cut into windows and scored; shared by perplexity and KL divergence.</summary>
public sealed record EvaluationOptions
{
    /// <summary>Tokens per window (llama-perplexity's -c).</summary>
    public int ContextLength { get; init; } = 512;
    /// <summary>Worker threads; 0 = all cores.</summary>
    public int Threads { get; init; }
    /// <summary>At most this many windows; 0 = every whole window of the text.</summary>
    public int MaxChunks { get; init; }
    /// <summary>Called after each window with (windows done, windows in all).</summary>
    public Action<int, int>? Progress { get; init; }
}

/// <summary>
/// llama-perplexity's windows: the whole text is tokenized once (with BOS when the vocabulary adds one), cut into
/// non-overlapping windows of <see cref="ContextLength"/> tokens (a partial last window is dropped), each window
/// evaluated from an empty cache with its first token replaced by BOS, and only the second half scored: the
/// logits at positions <see cref="First"/> … ContextLength−2 predict the tokens that follow them.
/// </summary>
public sealed class EvaluationWindows
{
    public int[] Tokens { get; }
    public int ContextLength { get; }
    public int Chunks { get; }
    readonly int? _bos;

    EvaluationWindows(int[] tokens, int contextLength, int chunks, int? bos)
    {
        Tokens = tokens;
        ContextLength = contextLength;
        Chunks = chunks;
        _bos = bos;
    }

    /// <summary>First scored position of a window (the model always has half a window of context).</summary>
    public int First => ContextLength / 2;
    /// <summary>Predictions scored per window.</summary>
    public int ScoredPerChunk => ContextLength - First - 1;

    public static EvaluationWindows Of(Tokenizer tokenizer, string text, int contextLength, int maxChunks = 0)
    {
        if (contextLength < 4) throw new ArgumentException($"the context must be at least 4 tokens, got {contextLength}");
        var tokens = tokenizer.Encode(text, addSpecial: true, parseSpecial: false);
        if (tokens.Length < 2 * contextLength)
            throw new ArgumentException($"the text tokenizes to only {tokens.Length} tokens; a context of {contextLength} needs at least {2 * contextLength} (use a longer text or a smaller --ctx)");
        int chunks = tokens.Length / contextLength;
        if (maxChunks > 0) chunks = Math.Min(chunks, maxChunks);
        return new EvaluationWindows(tokens, contextLength, chunks, tokenizer.AddBos ? tokenizer.BosId : null);
    }

    /// <summary>The tokens window <paramref name="chunk"/> evaluates (BOS in front when the vocabulary adds one).</summary>
    public void Fill(int chunk, Span<int> window)
    {
        Tokens.AsSpan(chunk * ContextLength, ContextLength).CopyTo(window);
        if (_bos is int bos) window[0] = bos;
    }

    /// <summary>The token that logits row <paramref name="position"/> of window <paramref name="chunk"/> predicts (from the text, never the BOS).</summary>
    public int Next(int chunk, int position) => Tokens[chunk * ContextLength + position + 1];
}

/// <summary>Log-probabilities from a logits row, as llama-perplexity computes them (max-shifted, float exps summed in double).</summary>
public static class LogSoftmax
{
    /// <summary>log p(token) for one row.</summary>
    public static double Of(ReadOnlySpan<float> logits, int token)
    {
        float max = Max(logits);
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += MathF.Exp(logits[i] - max);
        return logits[token] - max - Math.Log(sum);
    }

    /// <summary>Every token's log-probability into <paramref name="logProbs"/>; returns the arg max.</summary>
    public static int All(ReadOnlySpan<float> logits, Span<double> logProbs)
    {
        float max = logits[0];
        int argMax = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > max) { max = logits[i]; argMax = i; }
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += Math.Exp((double)logits[i] - max);
        double logSum = Math.Log(sum);
        for (int i = 0; i < logits.Length; i++) logProbs[i] = (double)logits[i] - max - logSum;
        return argMax;
    }

    static float Max(ReadOnlySpan<float> x)
    {
        float m = x[0];
        for (int i = 1; i < x.Length; i++) m = Math.Max(m, x[i]);
        return m;
    }
}
