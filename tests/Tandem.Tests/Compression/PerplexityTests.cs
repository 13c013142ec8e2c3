using Tandem.Compression.Evaluation;
using Tandem.Engine;

namespace Tandem.Tests.Compression;

/// <summary>Perplexity by llama-perplexity's method, checked against llama.cpp's own number.</summary>
public class PerplexityTests
{
    public static string SampleText => Path.Combine(TestData.Root, "testdata", "text", "stories260K-sample.txt");

    [Fact]
    public void Stories260K_OnTheSample_MatchesLlamaCpp()
    {
        using var model = Model.Load(TestData.Stories260K);
        var r = Perplexity.Measure(model, File.ReadAllText(SampleText), new EvaluationOptions { ContextLength = 128, Threads = 2 });
        // llama-perplexity -c 128 on the same file: "Final estimate: PPL = 2.9605 +/- 0.05620" (testdata/ORIGIN.md)
        Assert.Equal(80, r.Chunks);
        Assert.Equal(80 * 63, r.ScoredTokens);
        Assert.InRange(r.Perplexity, 2.9605 * 0.99, 2.9605 * 1.01);
        Assert.InRange(r.Uncertainty, 0.0562 * 0.95, 0.0562 * 1.05);
    }

    [Fact]
    public void Windows_PutBosFirst_AndScoreTheSecondHalf()
    {
        using var model = Model.Load(TestData.Stories260K);
        var w = EvaluationWindows.Of(model.Tokenizer, File.ReadAllText(SampleText), 128);
        Assert.Equal(w.Tokens.Length / 128, w.Chunks);
        Assert.Equal(64, w.First);
        Assert.Equal(63, w.ScoredPerChunk);
        var window = new int[128];
        w.Fill(3, window);
        Assert.Equal(model.Tokenizer.BosId, window[0]);
        Assert.Equal(w.Tokens.AsSpan(3 * 128 + 1, 127).ToArray(), window.AsSpan(1).ToArray());
        Assert.Equal(w.Tokens[3 * 128 + 101], w.Next(3, 100));
    }

    [Fact]
    public void TooShortText_IsRefusedWithTheTokenCount()
    {
        using var model = Model.Load(TestData.Stories260K);
        var ex = Assert.Throws<ArgumentException>(() => Perplexity.Measure(model, "Once upon a time there was a cat.", new EvaluationOptions { ContextLength = 128 }));
        Assert.Contains("needs at least 256", ex.Message);
    }
}
