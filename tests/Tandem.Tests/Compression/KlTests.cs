using Tandem.Compression.Evaluation;
using Tandem.Engine;

namespace Tandem.Tests.Compression;

/// <summary>KL divergence and top-1 agreement between a base and a candidate model on the same windows.</summary>
public class KlTests
{
    static readonly EvaluationOptions Options = new() { ContextLength = 128, MaxChunks = 6, Threads = 2 };
    static string Text => File.ReadAllText(PerplexityTests.SampleText);

    static KlResult Compare(string basePath, string candidatePath)
    {
        using var b = Model.Load(basePath);
        using var c = Model.Load(candidatePath);
        return KlDivergence.Measure(b, c, Text, Options);
    }

    [Fact]
    public void ModelAgainstItself_IsZero_WithFullAgreement()
    {
        var r = Compare(TestData.Model("mini-qwen2-f32.gguf"), TestData.Model("mini-qwen2-f32.gguf"));
        Assert.Equal(0.0, r.MeanKl);
        Assert.Equal(0.0, r.MaxKl);
        Assert.Equal(1.0, r.Top1Agreement);
        Assert.Equal(r.BasePerplexity, r.CandidatePerplexity);
        Assert.Equal(6 * 63, r.ScoredTokens);
    }

    [Fact]
    public void CoarserQuantization_DivergesMore()
    {
        var q8 = Compare(TestData.Model("mini-qwen2-f32.gguf"), TestData.Model("mini-qwen2-q8_0.gguf"));
        var q2 = Compare(TestData.Model("mini-qwen2-f32.gguf"), TestData.Model("mini-qwen2-q2_k.gguf"));
        Assert.True(q8.MeanKl > 0, $"q8_0 KL {q8.MeanKl}");
        Assert.True(q8.MeanKl < q2.MeanKl, $"KL(f32, q8_0) = {q8.MeanKl}, KL(f32, q2_k) = {q2.MeanKl}");
        Assert.InRange(q8.Top1Agreement, 0, 1);
        Assert.InRange(q2.Top1Agreement, 0, 1);
        Assert.True(q8.Top1Agreement >= q2.Top1Agreement, $"top-1 agreement q8_0 {q8.Top1Agreement}, q2_k {q2.Top1Agreement}");
    }

    [Fact]
    public void DifferentVocabularies_AreRefused()
    {
        var ex = Assert.Throws<ArgumentException>(() => Compare(TestData.Stories260K, TestData.Model("mini-qwen2-f32.gguf")));
        Assert.Contains("different vocabularies", ex.Message);
    }
}
