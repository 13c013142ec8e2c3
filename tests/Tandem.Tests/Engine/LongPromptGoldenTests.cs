using Tandem.Engine;

namespace Tandem.Tests.Engine;

/// <summary>
/// A 72-token prompt evaluated as one batch, against llama.cpp's logits at every position (see testdata/ORIGIN.md):
/// 64 or more query rows take llama.cpp's tiled flash attention, whose F32 arithmetic differs from the one-row kernel's
/// F16 roundings by up to a logit here, so only the matching kernel gives the same bits.
/// </summary>
public class LongPromptGoldenTests
{
    [Theory]
    [InlineData("mini-qwen2-f32")]
    [InlineData("mini-qwen2-q4_k_m")]
    public void EveryPositionMatchesLlamaCppBitForBit(string name)
    {
        var (vocab, cases) = GoldenCase.Load(Path.Combine("derived", name + "-long"));
        using var model = Model.Load(TestData.Model(name + ".gguf"));
        foreach (var c in cases)
        {
            Assert.True(c.Tokens.Length >= Tandem.Engine.Blocks.Attention.TiledMinTokens);
            c.AssertSameBits(model, vocab, name);
        }
    }
}
