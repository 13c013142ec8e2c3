namespace Tandem.Tests.Engine;

/// <summary>Comparisons of two runs of the engine whose summation orders legitimately differ.</summary>
public static class LogitAssert
{
    /// <summary>
    /// Same argmax (so greedy text is the same), and every logit within 0.1% of the logit range. Batches sum in a
    /// different order than single tokens (as in llama.cpp), and over a dozen steps those last-bit differences grow
    /// through the F16 roundings of the KV cache to ~0.01% of the range; a real mix-up of sequences, positions or
    /// caches moves logits by a sizeable fraction of the range.
    /// </summary>
    public static void Close(float[] expected, float[] actual)
    {
        Assert.Equal(ArgMax(expected), ArgMax(actual));
        float bound = 1e-3f * (expected.Max() - expected.Min());
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= bound, $"token {i}: {actual[i]} vs {expected[i]} (bound {bound})");
    }

    public static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
