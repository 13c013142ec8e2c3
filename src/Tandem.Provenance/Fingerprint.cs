namespace Tandem.Provenance;

public enum Verdict { Derived, Unrelated, Inconclusive }

/// <summary>
/// Thresholds of the combined verdict, calibrated on the benchmark set (<c>tandem fingerprint-eval</c>, docs/PROVENANCE.md):
/// on unrelated same-shape pairs the decisive methods stay below <see cref="UnrelatedBelow"/>, while every derived
/// variant scores above <see cref="DerivedAbove"/> on at least one of them.
/// </summary>
public static class Calibration
{
    /// <summary>A decisive method at or above this score, with p ≤ <see cref="MaxPValue"/>, makes the pair derived.</summary>
    public const double DerivedAbove = 0.5;
    /// <summary>All applicable decisive methods below this score make the pair unrelated.</summary>
    public const double UnrelatedBelow = 0.2;
    public const double MaxPValue = 0.01;
    /// <summary>The level at which the HonestAGI study read its statistic as "very evident correlation" (it reported 0.927).</summary>
    public const double HonestAgiClaimLevel = 0.9;
    /// <summary>Methods whose scores decide the verdict; the others are reported as supporting evidence only.</summary>
    public static readonly string[] Decisive = [Methods.LayerInvariant, Methods.Embedding];
}

/// <summary>Every method's result for one pair of models, and the verdict.</summary>
public sealed record PairReport(string A, string B, IReadOnlyList<MethodResult> Results, Verdict Verdict, double CombinedScore, string Evidence)
{
    public MethodResult this[string method] => Results.First(r => r.Method == method);
}

/// <summary>Compares models pairwise with every method and decides.</summary>
public static class Fingerprint
{
    /// <summary>
    /// Compares every pair of the models. Each pair is probed with the tokens its two vocabularies share (so a third
    /// model with another vocabulary does not thin the probes of the other two); a model's signature is taken once per
    /// distinct probe set. Returns one signature per model (for plotting) and the pair reports in (i, j &gt; i) order.
    /// </summary>
    public static (IReadOnlyList<ModelSignature> Models, IReadOnlyList<PairReport> Pairs) CompareAll(IReadOnlyList<string> paths,
        SignatureOptions? signatureOptions = null, MethodOptions? methodOptions = null)
    {
        signatureOptions ??= new();
        var vocabularies = new List<string[]>();
        foreach (var p in paths)
        {
            using var r = WeightReader.Open(p);
            vocabularies.Add(r.Tokens);
        }
        var cache = new Dictionary<(int, string), ModelSignature>();
        var first = new ModelSignature?[paths.Count];
        ModelSignature Sign(int i, string[] probes)
        {
            var key = (i, string.Join('\u0001', probes));
            if (!cache.TryGetValue(key, out var s)) cache[key] = s = ModelSignature.Extract(paths[i], probes);
            first[i] ??= s;
            return s;
        }
        var reports = new List<PairReport>();
        for (int i = 0; i < paths.Count; i++)
            for (int j = i + 1; j < paths.Count; j++)
            {
                var shared = ProbeSet.Shared(vocabularies[i], vocabularies[j]);
                var probes = shared.Count >= signatureOptions.MinProbeCount ? ProbeSet.Choose(shared, signatureOptions.ProbeCount) : [];
                reports.Add(Compare(Sign(i, probes), Sign(j, probes), methodOptions));
            }
        return (first.Select((s, i) => s ?? Sign(i, [])).ToList(), reports);
    }

    public static PairReport Compare(ModelSignature a, ModelSignature b, MethodOptions? options = null)
    {
        var results = new List<MethodResult>
        {
            Methods.HonestAgi(a, b, centered: false, options),
            Methods.HonestAgi(a, b, centered: true, options),
            Methods.BiasNormSimilarity(a, b, options),
            Methods.LayerInvariants(a, b, options),
            Methods.EmbeddingSimilarity(a, b, options),
        };
        var (verdict, combined, evidence) = Decide(results);
        return new PairReport(a.Path, b.Path, results, verdict, combined, evidence);
    }

    /// <summary>The combined verdict from the decisive methods; the combined score is the largest decisive score.</summary>
    public static (Verdict Verdict, double Combined, string Evidence) Decide(IReadOnlyList<MethodResult> results)
    {
        var decisive = results.Where(r => Calibration.Decisive.Contains(r.Method) && r.Applicable).ToList();
        if (decisive.Count == 0)
            return (Verdict.Inconclusive, double.NaN, "no permutation-invariant method applies (too few shared tokens)");
        double combined = decisive.Max(r => r.Score);
        var strong = decisive.Where(r => r.Score >= Calibration.DerivedAbove && r.PValue <= Calibration.MaxPValue).ToList();
        string Describe(IEnumerable<MethodResult> rs) => string.Join("; ", rs.Select(r => $"{r.Method} {r.Score:F3} (p={r.PValue:G3})"));
        if (strong.Count > 0)
            return (Verdict.Derived, combined, $"{Describe(strong)} ≥ {Calibration.DerivedAbove}");
        if (decisive.All(r => r.Score < Calibration.UnrelatedBelow))
            return (Verdict.Unrelated, combined, $"{Describe(decisive)} all < {Calibration.UnrelatedBelow}");
        return (Verdict.Inconclusive, combined, $"{Describe(decisive)} between the thresholds");
    }
}
