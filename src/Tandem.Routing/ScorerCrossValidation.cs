using System.Text;

namespace Tandem.Routing;

/// <summary>
/// What k-fold cross-validation over the training data says about a training setup: every example is scored by the
/// model trained on the other folds, and the pooled out-of-fold decisions are summarised like <c>route-eval</c> does
/// (overall, per language, per source, where length misleads). This is where features and settings get chosen, so
/// that the held-out files are only read once, for the final measurement.
/// </summary>
public sealed record CrossValidationReport(
    int Folds,
    double Threshold,
    Confusion Confusion,
    IReadOnlyList<SubsetResult> ByLanguage,
    IReadOnlyList<SubsetResult> BySource,
    int LengthBaselineBytes,
    Confusion LengthBaseline,
    SubsetResult LengthMisleads,
    IReadOnlyList<double> FoldAccuracies,
    double BestThreshold,
    double BestThresholdAccuracy,
    IReadOnlyList<(LabelledPrompt Prompt, double Score)> Misses)
{
    public override string ToString()
    {
        static string Pct(double x) => (x * 100).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) + " %";
        var b = new StringBuilder();
        b.AppendLine($"{Folds}-fold cross-validation over {Confusion.Total} training prompts (out-of-fold decisions, threshold {Threshold:F2}):");
        b.AppendLine($"  accuracy {Pct(Confusion.Accuracy)}  (folds {string.Join(", ", FoldAccuracies.Select(Pct))})");
        b.AppendLine($"  confusion: cloud→cloud {Confusion.CloudToCloud}, cloud→local {Confusion.CloudToLocal}, local→cloud {Confusion.LocalToCloud}, local→local {Confusion.LocalToLocal}");
        foreach (var s in ByLanguage) b.AppendLine($"  lang {s.Name,-22} {Pct(s.Accuracy),8} of {s.Count}");
        foreach (var s in BySource) b.AppendLine($"  source {s.Name,-20} {Pct(s.Accuracy),8} of {s.Count}");
        b.AppendLine($"  length only {Pct(LengthBaseline.Accuracy)} (cloud at ≥ {LengthBaselineBytes} bytes); where length misleads ({LengthMisleads.Count}): {Pct(LengthMisleads.Accuracy)}");
        b.AppendLine($"  best threshold on the out-of-fold scores: {BestThreshold:F2} ({Pct(BestThresholdAccuracy)})");
        return b.ToString();
    }
}

public static class ScorerCrossValidation
{
    /// <summary>
    /// Splits <paramref name="data"/> into <paramref name="folds"/> folds (a seeded shuffle, then round robin, so each fold
    /// has about the same mix; items sharing a <see cref="LabelledPrompt.Group"/> stay together), trains on all folds but one and scores that one, for each fold in turn.
    /// </summary>
    public static CrossValidationReport Run(IReadOnlyList<LabelledPrompt> data, int folds, ScorerTrainingOptions? options = null,
        int buckets = ComplexityScorer.DefaultBuckets)
    {
        options ??= new();
        if (folds < 2) throw new ArgumentException($"cross-validation needs at least 2 folds, got {folds}");
        if (data.Count < folds) throw new ArgumentException($"{folds}-fold cross-validation needs at least {folds} prompts, got {data.Count}");
        // Units of assignment: a group's items together, every other item alone.
        var units = Enumerable.Range(0, data.Count).GroupBy(i => data[i].Group is { } g ? "g:" + g : "i:" + i)
            .OrderBy(u => u.Key, StringComparer.Ordinal).Select(u => u.ToArray()).ToArray();
        new Random(options.Seed + 7919).Shuffle(units);
        var fold = new int[data.Count];
        for (int k = 0; k < units.Length; k++) foreach (int i in units[k]) fold[i] = k % folds;

        var scores = new double[data.Count];
        var foldAccuracies = new List<double>();
        for (int f = 0; f < folds; f++)
        {
            var trainSet = Enumerable.Range(0, data.Count).Where(i => fold[i] != f).Select(i => data[i]).ToList();
            var model = ComplexityScorer.Train(trainSet, options, buckets);
            int correct = 0, n = 0;
            for (int i = 0; i < data.Count; i++)
            {
                if (fold[i] != f) continue;
                scores[i] = model.Score(data[i].Prompt);
                n++;
                if ((scores[i] >= options.Threshold) == data[i].IsCloud) correct++;
            }
            foldAccuracies.Add((double)correct / n);
        }

        var label = data.Select(d => d.IsCloud).ToArray();
        var routed = scores.Select(s => s >= options.Threshold).ToArray();
        var breakdown = RouteEvaluation.Breakdown(data, label, routed, unnamed: "(none)");
        var (bestT, bestAcc) = Enumerable.Range(1, 99).Select(k => k / 100.0)
            .Select(t => (t, acc: scores.Zip(label).Count(p => (p.First >= t) == p.Second) / (double)data.Count))
            .MaxBy(p => p.acc);
        return new CrossValidationReport(folds, options.Threshold, Confusion.Of(label, routed),
            breakdown.ByLanguage, breakdown.BySource, breakdown.LengthBaselineBytes, breakdown.LengthBaseline, breakdown.LengthMisleads,
            foldAccuracies, bestT, bestAcc,
            Enumerable.Range(0, data.Count).Where(i => routed[i] != label[i]).Select(i => (data[i], scores[i])).ToList());
    }
}
