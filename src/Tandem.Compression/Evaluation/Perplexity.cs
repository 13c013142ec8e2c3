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
            session.Run(windows, c);
            for (int j = windows.First; j < windows.ContextLength - 1; j++)
                nll.Add(-LogSoftmax.Of(session.Row(j), windows.Next(c, j)));
            options.Progress?.Invoke(c + 1, windows.Chunks);
        }
        double ppl = Math.Exp(nll.Mean);
        return new PerplexityResult(ppl, nll.StandardError * ppl, nll.Mean, windows.Chunks, windows.ContextLength, nll.Count, windows.Tokens.Length);
    }
}

/// <summary>
/// A session that evaluates one window at a time from an empty cache, in steps of at most 512 tokens (ggml's
/// micro-batch), asking for logits only at the scored positions as llama-perplexity does, so memory holds half a
/// window of logits rather than all of it. With <c>allRows</c> every position produces logits (and every layer
/// computes every row), which the importance measurements need to see each block's full output.
/// </summary>
sealed class WindowSession : IDisposable
{
    const int MaxStep = 512;
    readonly InferenceSession _session;
    readonly int[] _window;
    readonly BatchToken[] _step;
    readonly float[] _logits;
    readonly int _vocab, _first;

    WindowSession(InferenceSession session, int contextLength, int vocab, bool allRows)
    {
        _session = session;
        _vocab = vocab;
        _first = allRows ? 0 : contextLength / 2;
        _window = new int[contextLength];
        _step = new BatchToken[session.BatchSize];
        _logits = new float[(long)(contextLength - _first) * vocab];
    }

    public static WindowSession Create(Model model, EvaluationOptions options, bool allRows = false) =>
        new(model.CreateSession(new SessionOptions(options.ContextLength, options.Threads) { BatchSize = Math.Min(options.ContextLength, MaxStep) }),
            options.ContextLength, model.Config.VocabSize, allRows);

    public InferenceSession Session => _session;

    /// <summary>Evaluates window <paramref name="chunk"/> from an empty cache; its logits are then read with <see cref="Row"/>.</summary>
    public void Run(EvaluationWindows windows, int chunk)
    {
        windows.Fill(chunk, _window);
        _session.Truncate(0);
        int filled = 0;
        for (int start = 0; start < _window.Length; start += _step.Length)
        {
            int n = Math.Min(_step.Length, _window.Length - start);
            int flagged = 0;
            for (int t = 0; t < n; t++)
            {
                bool logits = start + t >= _first;
                _step[t] = new BatchToken(0, _window[start + t], logits);
                if (logits) flagged++;
            }
            var rows = _session.Evaluate(_step.AsSpan(0, n));
            rows.Slice(0, flagged * _vocab).CopyTo(_logits.AsSpan(filled * _vocab));
            filled += flagged;
        }
    }

    /// <summary>Logits after the token at <paramref name="position"/> of the last window run (a scored position unless allRows).</summary>
    public ReadOnlySpan<float> Row(int position) => _logits.AsSpan((position - _first) * _vocab, _vocab);

    public void Dispose() => _session.Dispose();
}
