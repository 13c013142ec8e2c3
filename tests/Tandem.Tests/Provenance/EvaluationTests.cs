using Tandem.Provenance;

namespace Tandem.Tests.Provenance;

public class EvaluationTests
{
    static MethodResult R(string method, double score, double p = 0.001) => new(method, score, p, "");

    static BenchmarkPair Pair(bool derived, double invariant, double embedding, double raw, double p = 0.001)
    {
        var results = new List<MethodResult>
        {
            R(Methods.HonestAgiRaw, raw, 0.04), R(Methods.HonestAgiCentered, raw, 0.04), R(Methods.BiasNorm, double.NaN, double.NaN),
            R(Methods.LayerInvariant, invariant, p), R(Methods.Embedding, embedding, p),
        };
        var (verdict, combined, evidence) = Fingerprint.Decide(results);
        return new BenchmarkPair("hand", "a", "b", derived, new PairReport("a", "b", results, verdict, combined, evidence));
    }

    [Fact]
    public void ConfusionMatrixAndAucOnAHandMadeCase()
    {
        var pairs = new[]
        {
            Pair(true, 0.95, 0.9, 0.99),           // derived, called derived
            Pair(true, 0.40, 0.3, 0.99),           // derived, between the thresholds: inconclusive
            Pair(true, 0.10, 0.05, 0.2),           // derived, missed: unrelated
            Pair(false, 0.01, 0.02, 0.95),         // unrelated, called unrelated (raw HonestAGI ≥ 0.9: a false positive for it)
            Pair(false, 0.60, 0.1, 0.5, p: 0.2),   // unrelated, high score but p too large: not derived, inconclusive
        };
        var report = Evaluation.Score(pairs);
        var c = report.Combined.Confusion;
        Assert.Equal(new ConfusionMatrix(1, 1, 1, 0, 1, 1), c);
        Assert.Equal(0.0, c.FalsePositiveRate);
        Assert.Equal(1.0 / 3, c.TruePositiveRate, 12);
        // combined scores: derived {0.95, 0.40, 0.10}, unrelated {0.02, 0.60}: wins 2+1+1 of 6
        Assert.Equal(4.0 / 6, report.Combined.Auc, 12);
        var raw = report.Methods.First(m => m.Method == Methods.HonestAgiRaw);
        Assert.Equal(new ConfusionMatrix(0, 3, 0, 0, 2, 0), raw.Confusion); // p 0.04 never passes 0.01
        Assert.Equal(0.5, report.HonestAgiRawFalsePositiveRate, 12);      // 1 of 2 unrelated pairs ≥ 0.9
        var bias = report.Methods.First(m => m.Method == Methods.BiasNorm);
        Assert.Equal(5, bias.NotApplicable);
        Assert.Equal(new ConfusionMatrix(0, 0, 3, 0, 0, 2), bias.Confusion);
    }

    [Fact]
    public void SmallBenchmarkMeetsTheGoal()
    {
        string work = TestData.Temp("fingerprint-eval");
        try
        {
            var report = Evaluation.Run(new BenchmarkOptions
            {
                Bases = [TestData.Stories260K],
                UnrelatedSeeds = 2,
                NoiseStrengths = [0.1],
                QuantTypes = [Tandem.Gguf.GgmlType.Q8_0],
                WorkDirectory = work,
                Methods = new MethodOptions { Permutations = 49 },
                Signature = new SignatureOptions { ProbeCount = 64 },
            });
            // variants: q8_0, noise, drop, duplicate, ffn-pruned, permuted, permuted+noise+q4_k(F32 where rows are not whole blocks), vocab
            Assert.Equal(8, report.Pairs.Count(p => p.Derived));
            Assert.Equal(2 + 1 + 8, report.Pairs.Count(p => !p.Derived));
            Assert.Equal(1.0, report.Combined.Auc);
            Assert.Equal(0, report.Combined.Confusion.UnrelatedAsDerived);
            Assert.Equal(8, report.Combined.Confusion.DerivedAsDerived);
            Assert.Empty(Directory.GetFiles(work)); // every generated model was deleted after its signature was taken

            // what fingerprint-eval prints from it
            using var json = System.Text.Json.JsonDocument.Parse(Tandem.Cli.FingerprintCommand.EvalJson(report));
            var combined = json.RootElement.GetProperty("methods").EnumerateArray().Single(m => m.GetProperty("method").GetString() == "combined");
            Assert.Equal(1.0, combined.GetProperty("auc").GetDouble());
            Assert.Equal(0, combined.GetProperty("confusion").GetProperty("unrelated").GetProperty("derived").GetInt32());
            Assert.Equal(report.Pairs.Count, json.RootElement.GetProperty("pairs").GetArrayLength());
            Assert.Contains("raw HonestAGI statistic", Tandem.Cli.FingerprintCommand.EvalText(report));
        }
        finally { Directory.Delete(work, recursive: true); }
    }
}
