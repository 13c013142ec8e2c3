using Tandem.Gguf;

namespace Tandem.Provenance;

/// <summary>Counts of actual (derived / unrelated) against predicted (derived / unrelated / inconclusive).</summary>
public sealed record ConfusionMatrix(int DerivedAsDerived, int DerivedAsUnrelated, int DerivedAsInconclusive,
    int UnrelatedAsDerived, int UnrelatedAsUnrelated, int UnrelatedAsInconclusive)
{
    public int Derived => DerivedAsDerived + DerivedAsUnrelated + DerivedAsInconclusive;
    public int Unrelated => UnrelatedAsDerived + UnrelatedAsUnrelated + UnrelatedAsInconclusive;
    /// <summary>Share of unrelated pairs called derived.</summary>
    public double FalsePositiveRate => Unrelated == 0 ? double.NaN : (double)UnrelatedAsDerived / Unrelated;
    /// <summary>Share of derived pairs called derived.</summary>
    public double TruePositiveRate => Derived == 0 ? double.NaN : (double)DerivedAsDerived / Derived;

    public static ConfusionMatrix From(IEnumerable<(bool ActuallyDerived, Verdict Predicted)> cases)
    {
        var n = new int[2, 3];
        foreach (var (actual, predicted) in cases) n[actual ? 0 : 1, (int)predicted]++;
        return new(n[0, 0], n[0, 1], n[0, 2], n[1, 0], n[1, 1], n[1, 2]);
    }
}

/// <summary>One pair of the benchmark: which models, whether one was derived from the other, and the report.</summary>
public sealed record BenchmarkPair(string Family, string A, string B, bool Derived, PairReport Report);

/// <summary>A method's (or the combined verdict's) showing on the benchmark.</summary>
public sealed record MethodEvaluation(string Method, double Threshold, double Auc, ConfusionMatrix Confusion, int NotApplicable);

public sealed record EvaluationReport(IReadOnlyList<BenchmarkPair> Pairs, IReadOnlyList<MethodEvaluation> Methods, MethodEvaluation Combined,
    double HonestAgiRawFalsePositiveRate, int UnrelatedSameShapePairs);

/// <summary>How big a benchmark to build.</summary>
public sealed record BenchmarkOptions
{
    /// <summary>Base models (real GGUF files): variants are derived from each, unrelated models drawn in its shape.</summary>
    public required IReadOnlyList<string> Bases { get; init; }
    /// <summary>Already-made derived files per base (e.g. llama.cpp quantizations), by base path.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Siblings { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
    public int UnrelatedSeeds { get; init; } = 3;
    public double[] NoiseStrengths { get; init; } = [0.02, 0.1, 0.3, 0.6];
    public GgmlType[] QuantTypes { get; init; } = [GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q5_1, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q3_K, GgmlType.Q2_K];
    public required string WorkDirectory { get; init; }
    public SignatureOptions Signature { get; init; } = new();
    public MethodOptions Methods { get; init; } = new() { Permutations = 99 };
    /// <summary>Called with a line of progress (a model generated, a pair compared).</summary>
    public Action<string>? Progress { get; init; }
}

/// <summary>
/// Builds the benchmark set from the base models (variants written with GgufWriter into a work directory, each
/// deleted once its signature is taken) and scores every method on it.
/// </summary>
public static class Evaluation
{
    public static EvaluationReport Run(BenchmarkOptions o)
    {
        Directory.CreateDirectory(o.WorkDirectory);
        var pairs = new List<BenchmarkPair>();
        foreach (var basePath in o.Bases)
        {
            string family = System.IO.Path.GetFileNameWithoutExtension(basePath);
            var baseModel = EditableModel.Load(basePath);
            string[] probes;
            using (var r = WeightReader.Open(basePath))
                probes = ProbeSet.Choose(ProbeSet.Shared(r.Tokens), o.Signature.ProbeCount);

            ModelSignature Sign(string name, EditableModel m, GgmlType type = GgmlType.F32)
            {
                string path = System.IO.Path.Combine(o.WorkDirectory, $"{family}-{name}.gguf");
                m.Write(path, type);
                try { return Named(ModelSignature.Extract(path, probes), name); }
                finally { File.Delete(path); }
            }
            ModelSignature Named(ModelSignature s, string name)
            {
                o.Progress?.Invoke($"{family}: signature of {name}");
                return new ModelSignature
                {
                    Path = name, Shape = s.Shape, ProjectionStd = s.ProjectionStd, LayerVectors = s.LayerVectors, Probes = s.Probes,
                    EmbeddingGram = s.EmbeddingGram, LayerInvariants = s.LayerInvariants,
                };
            }

            var original = Named(ModelSignature.Extract(basePath, probes), "base");
            var derived = new List<ModelSignature>();
            foreach (var type in o.QuantTypes)
                if (baseModel.Tensors.Any(t => t.Dimensions.Length == 2 && t.Columns % GgmlTypeInfo.Of(type).BlockSize == 0))
                    derived.Add(Sign(GgmlTypeInfo.Of(type).Name.ToLowerInvariant(), baseModel, type));
            if (o.Siblings.TryGetValue(basePath, out var siblings))
                foreach (var s in siblings) derived.Add(Named(ModelSignature.Extract(s, probes), "llama.cpp " + System.IO.Path.GetFileNameWithoutExtension(s)));
            for (int i = 0; i < o.NoiseStrengths.Length; i++)
                derived.Add(Sign($"noise-{o.NoiseStrengths[i]:0.###}", ModelEdits.AddNoise(baseModel, o.NoiseStrengths[i], 100 + (ulong)i)));
            int mid = baseModel.Layers / 2;
            derived.Add(Sign($"drop-layer-{mid}", ModelEdits.DropLayer(baseModel, mid)));
            derived.Add(Sign("duplicate-layer-1", ModelEdits.DuplicateLayer(baseModel, 1)));
            derived.Add(Sign("ffn-pruned-25%", ModelEdits.PruneFeedForward(baseModel, 0.25)));
            var permuted = ModelEdits.Permute(baseModel, 7);
            derived.Add(Sign("permuted", permuted));
            derived.Add(Sign("permuted+noise-0.1+q4_k", ModelEdits.AddNoise(permuted, 0.1, 8), GgmlType.Q4_K));
            derived.Add(Sign("vocab+64", ModelEdits.ExtendVocabulary(baseModel, 64, 9)));

            var unrelated = new List<ModelSignature>();
            for (int s = 0; s < o.UnrelatedSeeds; s++)
                unrelated.Add(Sign($"unrelated-seed{s + 1}", ModelEdits.Unrelated(baseModel, 1000 + (ulong)s)));

            void Add(ModelSignature a, ModelSignature b, bool isDerived)
            {
                var report = Fingerprint.Compare(a, b, o.Methods);
                o.Progress?.Invoke($"{family}: {a.Path} vs {b.Path}: {report.Verdict} ({report.CombinedScore:F3})");
                pairs.Add(new BenchmarkPair(family, a.Path, b.Path, isDerived, report));
            }
            foreach (var d in derived) Add(original, d, true);
            for (int i = 0; i < unrelated.Count; i++)
            {
                Add(original, unrelated[i], false);
                for (int j = i + 1; j < unrelated.Count; j++) Add(unrelated[i], unrelated[j], false);
            }
            // derived variants against an unrelated model: a permuted or noisy copy must not look related to a stranger
            foreach (var d in derived) Add(d, unrelated[0], false);
        }
        return Score(pairs);
    }

    /// <summary>Per-method AUC and confusion matrix, and the combined verdict's, over scored pairs.</summary>
    public static EvaluationReport Score(IReadOnlyList<BenchmarkPair> pairs)
    {
        var methods = new List<MethodEvaluation>();
        foreach (var m in Provenance.Methods.All)
        {
            double threshold = m is Provenance.Methods.HonestAgiRaw or Provenance.Methods.HonestAgiCentered ? Calibration.HonestAgiClaimLevel : Calibration.DerivedAbove;
            var results = pairs.Select(p => (p.Derived, R: p.Report[m])).ToList();
            var applicable = results.Where(x => x.R.Applicable).ToList();
            double auc = Stats.RocAuc(applicable.Where(x => x.Derived).Select(x => x.R.Score).ToList(), applicable.Where(x => !x.Derived).Select(x => x.R.Score).ToList());
            var confusion = ConfusionMatrix.From(results.Select(x => (x.Derived,
                !x.R.Applicable ? Verdict.Inconclusive
                : x.R.Score >= threshold && x.R.PValue <= Calibration.MaxPValue ? Verdict.Derived
                : Verdict.Unrelated)));
            methods.Add(new MethodEvaluation(m, threshold, auc, confusion, results.Count - applicable.Count));
        }
        var scored = pairs.Where(p => !double.IsNaN(p.Report.CombinedScore)).ToList();
        var combined = new MethodEvaluation("combined", Calibration.DerivedAbove,
            Stats.RocAuc(scored.Where(p => p.Derived).Select(p => p.Report.CombinedScore).ToList(), scored.Where(p => !p.Derived).Select(p => p.Report.CombinedScore).ToList()),
            ConfusionMatrix.From(pairs.Select(p => (p.Derived, p.Report.Verdict))), pairs.Count - scored.Count);

        // the point of the exercise: how often the raw published statistic reaches the level read as "evident" on strangers
        var strangers = pairs.Where(p => !p.Derived && p.Report[Provenance.Methods.HonestAgiRaw].Applicable).ToList();
        double rawFpr = strangers.Count == 0 ? double.NaN
            : strangers.Count(p => p.Report[Provenance.Methods.HonestAgiRaw].Score >= Calibration.HonestAgiClaimLevel) / (double)strangers.Count;
        return new EvaluationReport(pairs, methods, combined, rawFpr, strangers.Count);
    }
}
