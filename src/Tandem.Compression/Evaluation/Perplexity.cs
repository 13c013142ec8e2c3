using Tandem.Engine;

namespace Tandem.Compression.Evaluation;

/// <summary>Perplexity over a text, with llama-perplexity's ± (standard error of the mean NLL, times the perplexity).</summary>
public sealed record PerplexityResult(double Perplexity, double Uncertainty, double MeanNll, int Chunks, int ContextLength, long ScoredTokens, int TextTokens);

/// <summary>Mean of a per-position quantity and its standard error, accumulated as llama-perplexity does (sum and sum of squares).</summary>
public struct MeanAccumulator
{
    public double Sum, SumSquares;
    public long Count;

    public void Add(double v) { Sum += v; SumSquares += v * v; Count++; }
    public readonly double Mean => Count == 0 ? 0 : Sum / Count;

    /// <summary>sqrt((E[v²] − E[v]²) / (n − 1)); 0 when the variance is not positive.</summary>
    public readonly double StandardError
    {
        get
        {
            if (Count < 2) return 0;
            double m = Mean, variance = SumSquares / Count - m * m;
            return variance > 0 ? Math.Sqrt(variance / (Count - 1)) : 0;
        }
    }
}

public static class Perplexity
{
    /// <summary>Perplexity of <paramref name="model"/> on <paramref name="text"/> by llama-perplexity's method.</summary>
    public static PerplexityResult Measure(Model model, string text, EvaluationOptions options)
    {
        var windows = EvaluationWindows.Of(model.Tokenizer, text, options.ContextLength, options.MaxChunks);
        using var session = WindowSession.Create(model, options);
        var nll = new MeanAccumulator();
        for (int c = 0; c < windows.Chunks; c++)
        {
            var logits = session.Run(windows, c);
            for (int j = windows.First; j < windows.ContextLength - 1; j++)
                nll.Add(-LogSoftmax.Of(session.Row(logits, j), windows.Next(c, j)));
            options.Progress?.Invoke(c + 1, windows.Chunks);
        }
        double ppl = Math.Exp(nll.Mean);
        return new PerplexityResult(ppl, nll.StandardError * ppl, nll.Mean, windows.Chunks, windows.ContextLength, nll.Count, windows.Tokens.Length);
    }
}

/// <summary>A session sized for one window, evaluated in one batch (as llama-perplexity does when n_batch ≥ n_ctx).</summary>
sealed class WindowSession : IDisposable
{
    readonly InferenceSession _session;
    readonly int[] _window;
    readonly float[] _logits;
    readonly int _vocab;

    WindowSession(InferenceSession session, int contextLength, int vocab)
    {
        _session = session;
        _vocab = vocab;
        _window = new int[contextLength];
        _logits = new float[(long)contextLength * vocab];
    }

    public static WindowSession Create(Model model, EvaluationOptions options) =>
        new(model.CreateSession(new SessionOptions(options.ContextLength, options.Threads) { BatchSize = options.ContextLength }),
            options.ContextLength, model.Config.VocabSize);

    public InferenceSession Session => _session;

    /// <summary>Evaluates window <paramref name="chunk"/> from an empty cache; returns all its logits (valid until the next call).</summary>
    public float[] Run(EvaluationWindows windows, int chunk)
    {
        windows.Fill(chunk, _window);
        _session.Truncate(0);
        _session.Evaluate(_window, _logits);
        return _logits;
    }

    public ReadOnlySpan<float> Row(float[] logits, int position) => logits.AsSpan(position * _vocab, _vocab);

    public void Dispose() => _session.Dispose();
}
