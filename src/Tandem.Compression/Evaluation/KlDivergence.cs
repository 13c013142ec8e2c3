using Tandem.Engine;

namespace Tandem.Compression.Evaluation;

/// <summary>
/// How far a candidate's next-token distributions are from a base model's over the same scored positions:
/// mean KL(base ‖ candidate) in nats with its standard error, the largest KL seen, how often both put the same token
/// first, and each model's perplexity on the text.
/// </summary>
public sealed record KlResult(
    double MeanKl, double KlUncertainty, double MaxKl, double Top1Agreement,
    double BasePerplexity, double CandidatePerplexity, int Chunks, int ContextLength, long ScoredTokens);

public static class KlDivergence
{
    /// <summary>
    /// Compares <paramref name="candidate"/> with <paramref name="baseModel"/> on llama-perplexity's windows of the text
    /// (tokenized with the base's tokenizer). Both must share the vocabulary. Unlike llama-perplexity, which stores the
    /// base's log-probabilities as 16-bit values, the base distribution is kept in full precision, so a model compared
    /// with itself gives exactly 0.
    /// </summary>
    public static KlResult Measure(Model baseModel, Model candidate, string text, EvaluationOptions options)
    {
        int vocab = baseModel.Config.VocabSize;
        if (candidate.Config.VocabSize != vocab)
            throw new ArgumentException($"the models have different vocabularies ({vocab} and {candidate.Config.VocabSize} tokens); KL divergence needs the same tokenizer");
        var windows = EvaluationWindows.Of(baseModel.Tokenizer, text, options.ContextLength, options.MaxChunks);
        using var baseSession = WindowSession.Create(baseModel, options);
        using var candidateSession = WindowSession.Create(candidate, options);
        var basePositions = new double[windows.ScoredPerChunk * vocab];
        var logQ = new double[vocab];
        var baseTop = new int[windows.ScoredPerChunk];
        var kl = new MeanAccumulator();
        var baseNll = new MeanAccumulator();
        var candidateNll = new MeanAccumulator();
        double maxKl = 0;
        long sameTop = 0;
        for (int c = 0; c < windows.Chunks; c++)
        {
            baseSession.Run(windows, c);
            for (int j = windows.First, r = 0; j < windows.ContextLength - 1; j++, r++)
            {
                var logP = basePositions.AsSpan(r * vocab, vocab);
                baseTop[r] = LogSoftmax.All(baseSession.Row(j), logP);
                baseNll.Add(-logP[windows.Next(c, j)]);
            }
            candidateSession.Run(windows, c);
            for (int j = windows.First, r = 0; j < windows.ContextLength - 1; j++, r++)
            {
                int top = LogSoftmax.All(candidateSession.Row(j), logQ);
                var logP = basePositions.AsSpan(r * vocab, vocab);
                double sum = 0;
                for (int i = 0; i < vocab; i++) sum += Math.Exp(logP[i]) * (logP[i] - logQ[i]);
                sum = Math.Max(0, sum); // rounding can leave a tiny negative for identical distributions' neighbours
                kl.Add(sum);
                maxKl = Math.Max(maxKl, sum);
                if (top == baseTop[r]) sameTop++;
                candidateNll.Add(-logQ[windows.Next(c, j)]);
            }
            options.Progress?.Invoke(c + 1, windows.Chunks);
        }
        return new KlResult(kl.Mean, kl.StandardError, maxKl, (double)sameTop / kl.Count,
            Math.Exp(baseNll.Mean), Math.Exp(candidateNll.Mean), windows.Chunks, windows.ContextLength, kl.Count);
    }
}
