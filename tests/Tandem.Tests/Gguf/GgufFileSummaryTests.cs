using Tandem.Gguf;

namespace Tandem.Tests.Gguf;

/// <summary>Parameter counts and per-type summaries (expected values computed independently from the files' headers).</summary>
public class GgufFileSummaryTests
{
    [Fact]
    public void Stories260KIsAllF32()
    {
        using var file = GgufFile.Open(TestData.Stories260K);
        Assert.Equal(292_800, file.ParameterCount);
        var summary = Assert.Single(file.TensorTypeSummary);
        Assert.Equal(new GgufTensorTypeSummary(GgmlType.F32, 48, 292_800, 1_171_200), summary);
    }

    [Fact]
    public void Q4KMixSummarizesEachType()
    {
        using var file = GgufFile.Open(TestData.Model("mini-qwen3-q4_k_m.gguf"));
        Assert.Equal(5_247_232, file.ParameterCount);
        Assert.Equal(
            [
                new GgufTensorTypeSummary(GgmlType.F32, 17, 2_816, 11_264),
                new GgufTensorTypeSummary(GgmlType.Q4_K, 25, 3_736_320, 2_101_680),
                new GgufTensorTypeSummary(GgmlType.Q6_K, 5, 1_508_096, 1_237_110),
            ],
            file.TensorTypeSummary);
        Assert.Equal(file.Tensors.Count, file.TensorTypeSummary.Sum(s => s.TensorCount));
    }

    [Fact]
    public void VocabularyOnlyFileHasNoParameters()
    {
        using var file = GgufFile.Open(Path.Combine(TestData.Tokenizers, "llama.cpp-vectors", "ggml-vocab-llama-spm.gguf"));
        Assert.Equal(0, file.ParameterCount);
        Assert.Empty(file.TensorTypeSummary);
        Assert.True(file.GetArray<string>("tokenizer.ggml.tokens")!.Length > 1000);
    }
}
