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
            using var session = model.CreateSession(new SessionOptions(ContextLength: 128, Threads: 2));
            var logits = new float[c.Tokens.Length * vocab];
            session.Evaluate(c.Tokens, logits);
            for (int p = 0; p < c.Tokens.Length; p++)
                for (int v = 0; v < vocab; v++)
                    Assert.True(logits[p * vocab + v] == c.Logits![p][v],
                        $"{name} position {p} token {v}: {logits[p * vocab + v]:R} vs llama.cpp {c.Logits![p][v]:R}");
            var last = logits.AsSpan((c.Tokens.Length - 1) * vocab, vocab).ToArray();
            var generated = new List<int>();
            foreach (var _ in c.Greedy!)
            {
                int next = 0;
                for (int v = 1; v < vocab; v++) if (last[v] > last[next]) next = v;
                generated.Add(next);
                last = session.Evaluate([next]).ToArray();
            }
            Assert.Equal(c.Greedy, generated);
        }
    }
}
