using Tandem.Engine.Sampling;

namespace Tandem.Tests.Sampling;

public class SamplerTests
{
    static float[] RandomLogits(int n, int seed)
    {
        var r = new Random(seed);
        var l = new float[n];
        for (int i = 0; i < n; i++) l[i] = (float)(r.NextDouble() * 20 - 10);
        return l;
    }

    static int ArgmaxByHand(float[] v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    // logits whose softmax is exactly the given probabilities
    static float[] FromProbabilities(params double[] p) => p.Select(x => (float)Math.Log(x)).ToArray();

    static int[] Histogram(Sampler s, float[] logits, int draws)
    {
        var h = new int[logits.Length];
        for (int i = 0; i < draws; i++) h[s.Sample(logits)]++;
        return h;
    }

    static SamplerOptions Plain(float temperature = 1f, int topK = 0, float topP = 1f, float minP = 0f, ulong seed = 7) =>
        new() { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP, Seed = seed };

    [Fact]
    public void GreedyIsArgmax()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var logits = RandomLogits(1000, seed);
            var s = new Sampler(logits.Length, SamplerOptions.Greedy);
            Assert.Equal(ArgmaxByHand(logits), s.Sample(logits));
        }
    }

    [Fact]
    public void ZeroTemperatureIgnoresTheOtherFilters()
    {
        var logits = RandomLogits(300, 3);
        var s = new Sampler(logits.Length, new SamplerOptions { Temperature = 0, TopK = 5, TopP = 0.1f, MinP = 0.5f, Seed = 1 });
        for (int i = 0; i < 10; i++) Assert.Equal(ArgmaxByHand(logits), s.Sample(logits));
    }

    [Fact]
    public void TopKOfOneIsGreedyAtAnyTemperature()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var logits = RandomLogits(500, 100 + seed);
            var s = new Sampler(logits.Length, Plain(temperature: 5f, topK: 1, seed: (ulong)seed));
            for (int i = 0; i < 5; i++) Assert.Equal(ArgmaxByHand(logits), s.Sample(logits));
        }
    }

    [Fact]
    public void TopKKeepsOnlyTheKBest()
    {
        var logits = RandomLogits(200, 11);
        var best3 = logits.Select((l, i) => (l, i)).OrderByDescending(x => x.l).Take(3).Select(x => x.i).ToHashSet();
        var s = new Sampler(logits.Length, Plain(temperature: 50f, topK: 3)); // very flat: all three must show up
        var h = Histogram(s, logits, 3000);
        for (int i = 0; i < h.Length; i++)
        {
            if (best3.Contains(i)) Assert.True(h[i] > 500, $"token {i} drawn {h[i]} times");
            else Assert.Equal(0, h[i]);
        }
    }

    [Fact]
    public void TopPExcludesTheTail()
    {
        var logits = FromProbabilities(0.5, 0.3, 0.15, 0.05);
        // 0.5 < 0.75 <= 0.8: tokens 0 and 1 only, renormalized to 0.625 / 0.375
        var h = Histogram(new Sampler(4, Plain(topP: 0.75f)), logits, 20000);
        Assert.Equal(0, h[2]);
        Assert.Equal(0, h[3]);
        Assert.InRange(h[0] / 20000.0, 0.60, 0.65);

        // 0.8 < 0.9 <= 0.95: token 2 comes in, token 3 stays out
        h = Histogram(new Sampler(4, Plain(topP: 0.9f)), logits, 20000);
        Assert.InRange(h[2] / 20000.0, 0.13, 0.187);
        Assert.Equal(0, h[3]);
    }

    [Fact]
    public void MinPExcludesTokensFarBelowTheTop()
    {
        var logits = FromProbabilities(0.5, 0.3, 0.15, 0.05);
        // threshold 0.2 × 0.5 = 0.1: token 3 (0.05) is out, token 2 (0.15) stays
        var h = Histogram(new Sampler(4, Plain(minP: 0.2f)), logits, 20000);
        Assert.Equal(0, h[3]);
        Assert.InRange(h[2] / 20000.0, 0.14, 0.176); // 0.15 / 0.95 = 0.158
        Assert.InRange(h[0] / 20000.0, 0.50, 0.553); // 0.5 / 0.95 = 0.526

        // threshold 0.35 × 0.5 = 0.175: tokens 0 (0.5) and 1 (0.3) remain
        h = Histogram(new Sampler(4, Plain(minP: 0.35f)), logits, 20000);
        Assert.Equal(0, h[2]);
        Assert.Equal(0, h[3]);
        Assert.True(h[1] > 5000);
    }

    [Fact]
    public void UnfilteredDrawsFollowTheSoftmax()
    {
        double[] p = [0.4, 0.3, 0.2, 0.1];
        var h = Histogram(new Sampler(4, Plain()), FromProbabilities(p), 40000);
        for (int i = 0; i < 4; i++)
            Assert.InRange(h[i] / 40000.0, p[i] - 0.015, p[i] + 0.015);
    }

    [Fact]
    public void LowTemperatureSharpensHighTemperatureFlattens()
    {
        var logits = FromProbabilities(0.4, 0.3, 0.2, 0.1);
        var cold = Histogram(new Sampler(4, Plain(temperature: 0.1f)), logits, 5000);
        var hot = Histogram(new Sampler(4, Plain(temperature: 10f)), logits, 5000);
        // p_i^(1/T) renormalized: T = 0.1 gives token 0 0.947; T = 10 gives token 3 0.231
        Assert.InRange(cold[0] / 5000.0, 0.93, 0.96);
        Assert.InRange(hot[3] / 5000.0, 0.21, 0.25);
    }

    [Fact]
    public void SameSeedSameTokensDifferentSeedsDiffer()
    {
        var logits = RandomLogits(64, 5).Select(x => x / 4).ToArray(); // flat enough for real choices
        int[] Run(ulong seed)
        {
            var s = new Sampler(logits.Length, new SamplerOptions { Seed = seed, TopK = 0, TopP = 1, MinP = 0, Temperature = 1 });
            return Enumerable.Range(0, 200).Select(_ => s.Sample(logits)).ToArray();
        }
        Assert.Equal(Run(1234), Run(1234));
        Assert.NotEqual(Run(1234), Run(1235));
    }

    [Fact]
    public void ResetReplaysTheSameSequence()
    {
        var logits = RandomLogits(64, 6).Select(x => x / 4).ToArray();
        var s = new Sampler(logits.Length, Plain(seed: 99));
        var a = Enumerable.Range(0, 50).Select(_ => s.Sample(logits)).ToArray();
        s.Reset();
        var b = Enumerable.Range(0, 50).Select(_ => s.Sample(logits)).ToArray();
        Assert.Equal(a, b);
    }

    [Fact]
    public void RandomSeedIsReportedAndReproduces()
    {
        var logits = RandomLogits(64, 8).Select(x => x / 4).ToArray();
        var s1 = new Sampler(logits.Length, Plain() with { Seed = null });
        var a = Enumerable.Range(0, 50).Select(_ => s1.Sample(logits)).ToArray();
        var s2 = new Sampler(logits.Length, Plain() with { Seed = s1.Seed });
        Assert.Equal(a, Enumerable.Range(0, 50).Select(_ => s2.Sample(logits)).ToArray());
    }

    [Fact]
    public void PrngMatchesTheReferenceXoshiro256StarStar()
    {
        // values from an independent implementation of splitmix64-seeded xoshiro256**
        var r = new Xoshiro256(0);
        Assert.Equal(0x99ec5f36cb75f2b4UL, r.NextUInt64());
        Assert.Equal(0xbf6e1f784956452aUL, r.NextUInt64());
        Assert.Equal(0x1a5f849d4933e6e0UL, r.NextUInt64());
        r = new Xoshiro256(42);
        Assert.Equal(0x15780b2e0c2ec716UL, r.NextUInt64());
        Assert.Equal(0x6104d9866d113a7eUL, r.NextUInt64());
    }

    [Fact]
    public void RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits()
    {
        var s = new Sampler(5, new SamplerOptions { RepeatPenalty = 2f, RepeatLastN = 64 });
        foreach (int t in new[] { 0, 1, 0, 4 }) s.Accept(t);
        float[] l = [2f, -2f, 1f, 0.5f, 0f];
        s.ApplyPenalties(l);
        Assert.Equal([1f, -4f, 1f, 0.5f, 0f], l); // seen twice is still divided once; 0 counts as non-positive
    }

    [Fact]
    public void FrequencyAndPresencePenaltiesSubtract()
    {
        var s = new Sampler(4, new SamplerOptions { FrequencyPenalty = 0.5f, PresencePenalty = 0.25f, RepeatLastN = 64 });
        foreach (int t in new[] { 0, 1, 0, 0 }) s.Accept(t);
        float[] l = [2f, -2f, 1f, 0.5f];
        s.ApplyPenalties(l);
        Assert.Equal([2f - 1.5f - 0.25f, -2f - 0.5f - 0.25f, 1f, 0.5f], l);
    }

    [Fact]
    public void PenaltiesOnlySeeTheLastNTokens()
    {
        var s = new Sampler(4, new SamplerOptions { RepeatPenalty = 2f, FrequencyPenalty = 1f, RepeatLastN = 2 });
        foreach (int t in new[] { 0, 0, 1, 2, 2 }) s.Accept(t); // window: [2, 2]
        float[] l = [4f, 4f, 4f, 4f];
        s.ApplyPenalties(l);
        Assert.Equal([4f, 4f, 2f - 2f, 4f], l);
    }

    [Fact]
    public void PenaltiesSteerSampling()
    {
        float[] logits = [5f, 4.9f, 0f];
        var s = new Sampler(3, new SamplerOptions { Temperature = 0, RepeatPenalty = 1.5f });
        Assert.Equal(0, s.Sample(logits));
        s.Accept(0);
        Assert.Equal(1, s.Sample(logits)); // 5 / 1.5 < 4.9
        Assert.Equal([5f, 4.9f, 0f], logits); // the caller's logits are not modified
    }

    [Fact]
    public void SamplingDoesNotAllocate()
    {
        var logits = RandomLogits(32000, 9);
        var s = new Sampler(logits.Length, new SamplerOptions { Seed = 1, RepeatPenalty = 1.1f, TopK = 40 });
        var full = new Sampler(logits.Length, new SamplerOptions { Seed = 1, TopK = 0, TopP = 0.9f });
        for (int i = 0; i < 5; i++) { s.Accept(s.Sample(logits)); full.Sample(logits); }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++) { s.Accept(s.Sample(logits)); full.Sample(logits); }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void RejectsWrongSizesAndBadOptions()
    {
        var s = new Sampler(10, SamplerOptions.Greedy);
        Assert.Throws<ArgumentException>(() => s.Sample(new float[9]));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Accept(10));
        Assert.Throws<ArgumentException>(() => new Sampler(10, new SamplerOptions { TopP = 0 }));
        Assert.Throws<ArgumentException>(() => new Sampler(10, new SamplerOptions { RepeatPenalty = 0 }));
    }
}
