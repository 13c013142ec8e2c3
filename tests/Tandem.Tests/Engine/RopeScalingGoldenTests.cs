using Tandem.Engine;

namespace Tandem.Tests.Engine;

/// <summary>
/// RoPE variants that no shipped model exercises — Llama-3 frequency factors with adjacent-pair rotation, YaRN, linear
/// interpolation — checked against llama.cpp's logits for models derived from the mini Qwen2 (see DerivedModels).
/// These goldens are printed with 9 significant digits, enough to round-trip a float exactly, so the test demands what
/// the engine achieves: the same bits as llama.cpp at every position (batched prefill) and the same greedy tokens.
/// </summary>
public class RopeScalingGoldenTests
{
    public static TheoryData<string> Variants => new(["mini-llama3", "mini-qwen2-yarn", "mini-qwen2-linear"]);

    static string Derive(string name) => name switch
    {
        "mini-llama3" => DerivedModels.Llama3(TestData.Temp(name + ".gguf")),
        "mini-qwen2-yarn" => DerivedModels.QwenYarn(TestData.Temp(name + ".gguf")),
        _ => DerivedModels.QwenLinear(TestData.Temp(name + ".gguf")),
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void LogitsAndGreedyMatchLlamaCpp(string name)
    {
        string path = Derive(name);
        try
        {
            var (vocab, cases) = GoldenCase.Load(Path.Combine("derived", name));
            using var model = Model.Load(path);
            foreach (var c in cases) c.AssertSameBits(model, vocab, name);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ScalingKeysBecomeLlamaCppParameters()
    {
        string yarn = Derive("mini-qwen2-yarn"), linear = Derive("mini-qwen2-linear");
        try
        {
            using var y = Model.Load(yarn);
            Assert.Equal(0.25f, y.Config.Rope.FreqScale);
            Assert.Equal(1f, y.Config.Rope.ExtFactor);
            Assert.True(y.Config.Rope.CorrLow >= 0 && y.Config.Rope.CorrHigh > y.Config.Rope.CorrLow && y.Config.Rope.CorrHigh <= 63);
            using var l = Model.Load(linear);
            Assert.Equal((0.5f, 0f, 1f), (l.Config.Rope.FreqScale, l.Config.Rope.ExtFactor, l.Config.Rope.AttnFactor));
        }
        finally
        {
            File.Delete(yarn);
            File.Delete(linear);
        }
    }
}
