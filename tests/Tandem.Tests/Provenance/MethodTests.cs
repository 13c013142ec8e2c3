using Tandem.Engine;
using Tandem.Gguf;
using Tandem.Provenance;

namespace Tandem.Tests.Provenance;

public class MethodTests(StoriesFamily f) : IClassFixture<StoriesFamily>
{
    static readonly MethodOptions Fast = new() { Permutations = 99 };

    [Fact]
    public void LayerInvariantsSeparateDerivedFromUnrelated()
    {
        var derived = Methods.LayerInvariants(f.Original, f.Noisy, Fast);
        var unrelated = Methods.LayerInvariants(f.Original, f.Unrelated, Fast);
        Assert.True(derived.Score > 0.9, $"derived {derived.Score}");
        Assert.True(derived.PValue <= 0.01, $"p {derived.PValue}");
        Assert.True(Math.Abs(unrelated.Score) < 0.1, $"unrelated {unrelated.Score}");
        Assert.True(unrelated.PValue > 0.01, $"p {unrelated.PValue}");
    }

    [Fact]
    public void EmbeddingSeparatesDerivedFromUnrelated()
    {
        var derived = Methods.EmbeddingSimilarity(f.Original, f.Noisy, Fast);
        var unrelated = Methods.EmbeddingSimilarity(f.Original, f.Unrelated, Fast);
        Assert.True(derived.Score > 0.9, $"derived {derived.Score}");
        Assert.True(derived.PValue <= 0.01);
        Assert.True(Math.Abs(unrelated.Score) < 0.1, $"unrelated {unrelated.Score}");
    }

    [Fact]
    public void BiasNormSeparatesDerivedFromUnrelated()
    {
        var derived = Methods.BiasNormSimilarity(f.Original, f.Noisy, Fast);
        var unrelated = Methods.BiasNormSimilarity(f.Original, f.Unrelated, Fast);
        Assert.True(derived.Score > 0.9, $"derived {derived.Score}");
        Assert.True(derived.PValue <= 0.01);
        Assert.True(unrelated.Score < 0.3, $"unrelated {unrelated.Score}");
        Assert.Contains("attn_norm.weight", derived.Note);
    }

    [Fact]
    public void HonestAgiCenteredSeparatesOnMiniQwenButRawStatisticFlagsAnUnrelatedTrainedShape()
    {
        // on the random-weight mini model, a quantized sibling correlates better than a stranger …
        string[] none = [];
        var q = ModelSignature.Extract(TestData.Model("mini-qwen2-f32.gguf"), none);
        var q8 = ModelSignature.Extract(TestData.Model("mini-qwen2-q8_0.gguf"), none);
        var qwen3 = ModelSignature.Extract(TestData.Model("mini-qwen3-f32.gguf"), none);
        Assert.True(Methods.HonestAgi(q, q8, centered: true).Score > 0.99);
        Assert.True(Methods.HonestAgi(q, qwen3, centered: true).Score < 0.5);
        // … but a stranger drawn with stories260K's per-tensor statistics reaches the "very evident" level on the raw
        // statistic (even centered, and "significant" against the layer-order null: the statistic sees only the
        // per-tensor scale, which a same-recipe model shares), while the verdict stays unrelated
        var raw = Methods.HonestAgi(f.Original, f.Unrelated, centered: false);
        Assert.True(raw.Score >= Calibration.HonestAgiClaimLevel, $"raw {raw.Score}");
        Assert.True(Methods.HonestAgi(f.Original, f.Unrelated, centered: true).Score >= Calibration.HonestAgiClaimLevel);
        Assert.Equal(Verdict.Unrelated, Fingerprint.Compare(f.Original, f.Unrelated, Fast).Verdict);
    }

    [Fact]
    public void PermutedCopyScoresAsDerivedOnInvariantMethodsOnly()
    {
        Assert.True(Methods.LayerInvariants(f.Original, f.Permuted, Fast).Score > 0.999);
        Assert.True(Methods.EmbeddingSimilarity(f.Original, f.Permuted, Fast).Score > 0.999);
        // the element-wise norm comparison is not permutation-invariant: shuffled units break it
        Assert.True(Methods.BiasNormSimilarity(f.Original, f.Permuted, Fast).Score < 0.5);
        Assert.Equal(Verdict.Derived, Fingerprint.Compare(f.Original, f.Permuted, Fast).Verdict);
    }

    [Fact]
    public void PermutationKeepsTheFunction()
    {
        // the benchmark's permuted copy must be the same network: same logits from the real engine
        int[] tokens = [1, 403, 407, 261, 378, 434];
        float[] Logits(string path)
        {
            using var m = Model.Load(path);
            using var s = m.CreateSession(new SessionOptions(64, 1));
            return s.Evaluate(tokens).ToArray();
        }
        var a = Logits(TestData.Stories260K);
        var b = Logits(f.PermutedPath);
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) < 1e-3f, $"logit {i}: {a[i]} vs {b[i]}");
        // and the weights really moved
        using var g1 = GgufFile.Open(TestData.Stories260K);
        using var g2 = GgufFile.Open(f.PermutedPath);
        Assert.False(g1.TensorBytes(g1.GetTensor("blk.0.attn_q.weight")).SequenceEqual(g2.TensorBytes(g2.GetTensor("blk.0.attn_q.weight"))));
    }

    [Fact]
    public void DroppedLayerIsAlignedAroundTheGap()
    {
        var r = Methods.LayerInvariants(f.Original, f.Dropped, Fast);
        Assert.True(r.Score > 0.99, $"score {r.Score}");
        Assert.Equal([(0, 0), (1, 1), (3, 2), (4, 3)], r.Layers.Select(l => (l.A, l.B)).ToArray());
        Assert.Equal(Verdict.Derived, Fingerprint.Compare(f.Original, f.Dropped, Fast).Verdict);
    }

    [Fact]
    public void VerdictOnUnrelatedSameShapeIsUnrelated()
    {
        var report = Fingerprint.Compare(f.Original, f.Unrelated, Fast);
        Assert.Equal(Verdict.Unrelated, report.Verdict);
        Assert.Contains(Methods.LayerInvariant, report.Evidence);
    }

    [Fact]
    public void QuantizedFilesAreDequantizedOnTheFly()
    {
        string[] probes;
        using (var r = WeightReader.Open(TestData.Model("mini-qwen2-f32.gguf"))) probes = ProbeSet.Choose(ProbeSet.Shared(r.Tokens), 64);
        var a = ModelSignature.Extract(TestData.Model("mini-qwen2-f32.gguf"), probes);
        var b = ModelSignature.Extract(TestData.Model("mini-qwen2-q4_k_m.gguf"), probes);
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < a.Shape.Layers; l++)
            {
                double rel = Math.Abs(b.ProjectionStd[p][l] / a.ProjectionStd[p][l] - 1);
                Assert.True(rel < 0.05, $"{ModelSignature.ProjectionNames[p]} layer {l}: std {a.ProjectionStd[p][l]} vs {b.ProjectionStd[p][l]}");
            }
        Assert.NotEqual(a.ProjectionStd[0][0], b.ProjectionStd[0][0]); // the quantized weights really were read
        Assert.True(Methods.LayerInvariants(a, b, Fast).Score > 0.95);
    }

    [Fact]
    public void EachPairIsProbedWithTheTokensItsTwoVocabulariesShare()
    {
        string q = TestData.Model("mini-qwen2-f32.gguf"), q8 = TestData.Model("mini-qwen2-q8_0.gguf");
        var (models, pairs) = Fingerprint.CompareAll([q, TestData.Stories260K, q8], methodOptions: Fast);
        Assert.Equal(3, models.Count);
        Assert.Equal(3, pairs.Count);
        var qq = pairs[1]; // (0, 2)
        Assert.Equal(q8, qq.B);
        string[] pairProbes;
        using (var r = WeightReader.Open(q)) pairProbes = ProbeSet.Choose(ProbeSet.Shared(r.Tokens), 128);
        var expected = Methods.LayerInvariants(ModelSignature.Extract(q, pairProbes), ModelSignature.Extract(q8, pairProbes), Fast);
        Assert.Equal(expected.Score, qq[Methods.LayerInvariant].Score);
        Assert.Equal(Verdict.Derived, qq.Verdict);
        Assert.Equal(Verdict.Unrelated, pairs[0].Verdict);
    }
}
