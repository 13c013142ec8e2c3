using Tandem.Engine;

namespace Tandem.Tests.Engine;

/// <summary>
/// The engine against llama.cpp's own logits and greedy continuations for every shipped model
/// (criteria from the engine issue: F32 within 2e-3 absolute at every position; other types: argmax agreement
/// at ≥ 99% of positions and |Δ| ≤ 2% of each position's logit range; greedy identical for F32/F16/BF16 and for
/// ≥ 90% of the quantized cases).
/// </summary>
public class GoldenLogitsTests
{
    static readonly string[] ModelNames =
    [
        "stories260K",
        "mini-qwen2-f32", "mini-qwen2-f16", "mini-qwen2-bf16", "mini-qwen2-q8_0", "mini-qwen2-q4_0", "mini-qwen2-q4_1",
        "mini-qwen2-q5_0", "mini-qwen2-q2_k", "mini-qwen2-q3_k_m", "mini-qwen2-q4_k_m", "mini-qwen2-q5_k_m", "mini-qwen2-q6_k",
        "mini-qwen3-f32", "mini-qwen3-q8_0", "mini-qwen3-q4_k_m",
    ];

    public static TheoryData<string> Models => new(ModelNames);

    static string ModelPath(string name) => name == "stories260K" ? TestData.Stories260K : TestData.Model(name + ".gguf");

    static bool IsFloat(string name) => name is "stories260K" || name.EndsWith("-f32") || name.EndsWith("-f16") || name.EndsWith("-bf16");

    public sealed record CaseResult(string Input, int Positions, int ArgmaxAgree, double MaxAbsDelta, double MaxRelDelta, bool GreedyIdentical, int GreedyMatched, int GreedyLength);

    public static IReadOnlyList<CaseResult> Evaluate(string name, int threads = 2)
    {
        var (vocab, cases) = GoldenCase.Load(name);
        using var model = Model.Load(ModelPath(name));
        Assert.Equal(vocab, model.Config.VocabSize);
        var results = new List<CaseResult>();
        foreach (var c in cases.Where(c => c.Kind is "P" or "I"))
        {
            using var session = model.CreateSession(new SessionOptions(ContextLength: 128, Threads: threads));
            var logits = new float[c.Tokens.Length * vocab];
            session.Evaluate(c.Tokens, logits);
            int agree = 0;
            double maxAbs = 0, maxRel = 0;
            for (int p = 0; p < c.Tokens.Length; p++)
            {
                var ours = logits.AsSpan(p * vocab, vocab);
                var theirs = c.Logits![p];
                double delta = 0;
                for (int i = 0; i < vocab; i++) delta = Math.Max(delta, Math.Abs(ours[i] - theirs[i]));
                double range = theirs.Max() - theirs.Min();
                maxAbs = Math.Max(maxAbs, delta);
                maxRel = Math.Max(maxRel, delta / range);
                if (ArgMax(ours) == ArgMax(theirs)) agree++;
            }
            int matched = 0;
            var last = logits.AsSpan((c.Tokens.Length - 1) * vocab, vocab).ToArray();
            foreach (int expected in c.Greedy!)
            {
                int next = ArgMax(last);
                if (next != expected) break;
                matched++;
                last = session.Evaluate([next]).ToArray();
            }
            results.Add(new CaseResult(c.Input, c.Tokens.Length, agree, maxAbs, maxRel, matched == c.Greedy.Length, matched, c.Greedy.Length));
        }
        return results;
    }

    static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void LogitsMatchLlamaCpp(string name)
    {
        var results = Evaluate(name);
        Assert.NotEmpty(results);
        string report = string.Join("\n", results.Select(r => $"{r.Input}: max|Δ| {r.MaxAbsDelta:E2} ({r.MaxRelDelta:P3} of range), argmax {r.ArgmaxAgree}/{r.Positions}, greedy {r.GreedyMatched}/{r.GreedyLength}"));
        if (name.EndsWith("-f32") || name == "stories260K")
        {
            Assert.True(results.All(r => r.MaxAbsDelta <= 2e-3), $"{name}: F32 logits must be within 2e-3 of llama.cpp at every position\n{report}");
        }
        else
        {
            int positions = results.Sum(r => r.Positions), agree = results.Sum(r => r.ArgmaxAgree);
            Assert.True(agree >= 0.99 * positions, $"{name}: argmax agrees at {agree}/{positions} positions; need ≥ 99%\n{report}");
            Assert.True(results.All(r => r.MaxRelDelta <= 0.02), $"{name}: |Δlogit| must stay within 2% of each position's range\n{report}");
        }
        if (IsFloat(name))
            Assert.True(results.All(r => r.GreedyIdentical), $"{name}: greedy continuations must equal llama.cpp's\n{report}");
        // Beyond the criteria: the engine reproduces llama.cpp's arithmetic, so every logit equals the golden one
        // to the precision the golden files print (|Δ| ≤ 5e-5 from rounding; a single flipped rounding shows as ≥ 1e-3).
        Assert.True(results.All(r => r.MaxAbsDelta <= 1e-4), $"{name}: logits must equal llama.cpp's to the golden files' print precision\n{report}");
        Assert.True(results.All(r => r.GreedyIdentical), $"{name}: greedy continuations must equal llama.cpp's\n{report}");
    }

    [Fact]
    public void QuantizedGreedyContinuationsMatchInAtLeast90PercentOfCases()
    {
        var quantized = ModelNames.Where(n => !IsFloat(n)).ToArray();
        var all = quantized.SelectMany(n => Evaluate(n).Select(r => (n, r))).ToArray();
        int identical = all.Count(x => x.r.GreedyIdentical);
        Assert.True(identical >= 0.9 * all.Length,
            $"greedy identical in {identical}/{all.Length} quantized cases; need ≥ 90%\n" +
            string.Join("\n", all.Where(x => !x.r.GreedyIdentical).Select(x => $"{x.n} '{x.r.Input}': {x.r.GreedyMatched}/{x.r.GreedyLength}")));
    }

    [Fact]
    public void PromptsTokenizeAsLlamaCppDoes()
    {
        foreach (var name in ModelNames)
        {
            var (_, cases) = GoldenCase.Load(name);
            using var model = Model.Load(ModelPath(name));
            foreach (var c in cases.Where(c => c.Kind is "T" or "P"))
                Assert.Equal(c.Tokens, model.Tokenizer.Encode(c.Text, addSpecial: c.Kind == "P", parseSpecial: true));
        }
    }
}
