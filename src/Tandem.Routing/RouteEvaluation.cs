using System.Diagnostics;
using System.Text;
using System.Text.Json.Serialization;
using Microsoft.Extensions.AI;

namespace Tandem.Routing;

/// <summary>Settings for <see cref="RouteEvaluation.Run"/>.</summary>
public sealed record RouteEvaluationOptions
{
    /// <summary>Threshold the headline numbers use; null = the scorer's own.</summary>
    public double? Threshold { get; init; }
    /// <summary>Timed passes over the data for the decision latency (after one warm-up pass).</summary>
    public int LatencyPasses { get; init; } = 5;
    /// <summary>Points of the cost/quality curve: thresholds 0, 1/Steps, …, 1.</summary>
    public int CurveSteps { get; init; } = 100;
}

/// <summary>Counts of one routing rule over labelled prompts (cloud = positive).</summary>
public sealed record Confusion(
    [property: JsonPropertyName("cloud_to_cloud")] int CloudToCloud,
    [property: JsonPropertyName("cloud_to_local")] int CloudToLocal,
    [property: JsonPropertyName("local_to_cloud")] int LocalToCloud,
    [property: JsonPropertyName("local_to_local")] int LocalToLocal)
{
    [JsonPropertyName("total")] public int Total => CloudToCloud + CloudToLocal + LocalToCloud + LocalToLocal;
    [JsonPropertyName("accuracy")] public double Accuracy => Total == 0 ? 0 : (double)(CloudToCloud + LocalToLocal) / Total;
    /// <summary>Share of requests kept on the device.</summary>
    [JsonPropertyName("local_share")] public double LocalShare => Total == 0 ? 0 : (double)(CloudToLocal + LocalToLocal) / Total;

    public static Confusion Of(IReadOnlyList<bool> labelCloud, IReadOnlyList<bool> routedCloud)
    {
        int cc = 0, cl = 0, lc = 0, ll = 0;
        for (int i = 0; i < labelCloud.Count; i++)
        {
            if (labelCloud[i]) { if (routedCloud[i]) cc++; else cl++; }
            else if (routedCloud[i]) lc++; else ll++;
        }
        return new Confusion(cc, cl, lc, ll);
    }
}

/// <summary>
/// One point of the cost/quality curve. Cost = share of requests sent to the cloud. Quality = share of requests that
/// get an adequate answer, counting the cloud as adequate for every request and the device only for those labelled
/// local (so quality = 1 − share of cloud-labelled requests kept local).
/// </summary>
public sealed record CurvePoint(
    [property: JsonPropertyName("threshold")] double Threshold,
    [property: JsonPropertyName("cloud_share")] double CloudShare,
    [property: JsonPropertyName("quality")] double Quality,
    [property: JsonPropertyName("accuracy")] double Accuracy);

/// <summary>Accuracy on one subset of the data (a language, a source, the cases where length misleads).</summary>
public sealed record SubsetResult(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("count")] int Count,
    [property: JsonPropertyName("accuracy")] double Accuracy);

/// <summary>What <c>tandem route-eval</c> reports.</summary>
public sealed class RouteEvaluationReport
{
    [JsonPropertyName("prompts")] public int Prompts { get; init; }
    [JsonPropertyName("threshold")] public double Threshold { get; init; }
    [JsonPropertyName("confusion")] public required Confusion Confusion { get; init; }
    [JsonPropertyName("by_language")] public List<SubsetResult> ByLanguage { get; init; } = [];
    [JsonPropertyName("by_source")] public List<SubsetResult> BySource { get; init; } = [];
    /// <summary>The best single threshold on UTF-8 length (fitted on this same data, so an optimistic baseline).</summary>
    [JsonPropertyName("length_baseline_bytes")] public int LengthBaselineBytes { get; init; }
    [JsonPropertyName("length_baseline")] public required Confusion LengthBaseline { get; init; }
    /// <summary>The scorer on the prompts that the length baseline gets wrong: short hard requests, long simple ones.</summary>
    [JsonPropertyName("length_misleads")] public required SubsetResult LengthMisleads { get; init; }
    [JsonPropertyName("curve")] public List<CurvePoint> Curve { get; init; } = [];
    [JsonPropertyName("length_curve")] public List<CurvePoint> LengthCurve { get; init; } = [];
    /// <summary>The router's whole decision (scorer, personal data detectors, device state, budgets), per request.</summary>
    [JsonPropertyName("decision_ms_p50")] public double DecisionMsP50 { get; init; }
    [JsonPropertyName("decision_ms_p99")] public double DecisionMsP99 { get; init; }
    [JsonPropertyName("decision_ms_max")] public double DecisionMsMax { get; init; }
    [JsonPropertyName("decisions_timed")] public int DecisionsTimed { get; init; }
}

/// <summary>Evaluates the router's up-front decision on labelled prompts (see <see cref="RouteEvaluationReport"/>).</summary>
public static class RouteEvaluation
{
    public static RouteEvaluationReport Run(IReadOnlyList<LabelledPrompt> data, ComplexityScorer scorer, RouteEvaluationOptions? options = null)
    {
        options ??= new();
        if (data.Count == 0) throw new ArgumentException("route-eval needs at least one labelled prompt");
        double threshold = options.Threshold ?? scorer.Threshold;
        // The decision is timed through the real router (route mode, privacy allow, an unconstrained device). Deciding
        // contacts neither side, so the two clients are placeholders that are never called.
        using var router = new HybridChatClient(NeverCalled.Instance, NeverCalled.Instance,
            new RouterOptions { Mode = RoutingMode.Route, Privacy = PrivacyPolicy.Allow, ComplexityThreshold = threshold }, scorer);
        var messages = data.Select(d => (IList<ChatMessage>)[new ChatMessage(ChatRole.User, d.Prompt)]).ToArray();

        var scores = new double[data.Count];
        for (int i = 0; i < data.Count; i++) scores[i] = router.Decide(messages[i]).Complexity ?? 0; // also the warm-up pass
        var ms = new List<double>(data.Count * options.LatencyPasses);
        for (int pass = 0; pass < options.LatencyPasses; pass++)
            foreach (var m in messages)
            {
                long t0 = Stopwatch.GetTimestamp();
                router.Decide(m);
                ms.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
        ms.Sort();

        var label = data.Select(d => d.IsCloud).ToArray();
        var routed = scores.Select(s => s >= threshold).ToArray();
        var breakdown = Breakdown(data, label, routed);
        var lengths = breakdown.Lengths;

        return new RouteEvaluationReport
        {
            Prompts = data.Count,
            Threshold = threshold,
            Confusion = Confusion.Of(label, routed),
            ByLanguage = breakdown.ByLanguage,
            BySource = breakdown.BySource,
            LengthBaselineBytes = breakdown.LengthBaselineBytes,
            LengthBaseline = breakdown.LengthBaseline,
            LengthMisleads = breakdown.LengthMisleads,
            Curve = Curve(scores, label, Enumerable.Range(0, options.CurveSteps + 1).Select(k => (double)k / options.CurveSteps)),
            LengthCurve = Curve(lengths, label, lengths.Append(0).Append(double.MaxValue).Distinct().Order()),
            DecisionMsP50 = Percentile(ms, 0.50),
            DecisionMsP99 = Percentile(ms, 0.99),
            DecisionMsMax = ms[^1],
            DecisionsTimed = ms.Count,
        };
    }

    static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];

    /// <summary>What decisions on labelled data add up to: by language, by source, and against the best length-only rule.</summary>
    internal sealed record DecisionBreakdown(double[] Lengths, List<SubsetResult> ByLanguage, List<SubsetResult> BySource,
        int LengthBaselineBytes, Confusion LengthBaseline, SubsetResult LengthMisleads);

    /// <param name="unnamed">the subset name for prompts without a language or source; null leaves them out of those lists.</param>
    internal static DecisionBreakdown Breakdown(IReadOnlyList<LabelledPrompt> data, bool[] label, bool[] routed, string? unnamed = null)
    {
        var lengths = data.Select(d => (double)Encoding.UTF8.GetByteCount(d.Prompt)).ToArray();
        int bestBytes = BestLengthThreshold(lengths, label);
        var byLength = lengths.Select(l => l >= bestBytes).ToArray();
        var misled = Enumerable.Range(0, data.Count).Where(i => byLength[i] != label[i]).ToArray();
        return new DecisionBreakdown(lengths,
            Subsets(data, d => d.Language ?? unnamed, label, routed), Subsets(data, d => d.Source ?? unnamed, label, routed),
            bestBytes, Confusion.Of(label, byLength),
            new SubsetResult("length misleads", misled.Length, misled.Length == 0 ? 1 : misled.Count(i => routed[i] == label[i]) / (double)misled.Length));
    }

    static List<SubsetResult> Subsets(IReadOnlyList<LabelledPrompt> data, Func<LabelledPrompt, string?> key, bool[] label, bool[] routed) =>
        Enumerable.Range(0, data.Count).Where(i => key(data[i]) is not null).GroupBy(i => key(data[i])!)
            .Select(g => new SubsetResult(g.Key, g.Count(), g.Count(i => routed[i] == label[i]) / (double)g.Count()))
            .OrderBy(s => s.Name, StringComparer.Ordinal).ToList();

    /// <summary>The byte length at or above which "cloud" is most accurate on this data.</summary>
    static int BestLengthThreshold(double[] lengths, bool[] label)
    {
        int best = 0, bestCorrect = -1;
        foreach (int t in lengths.Select(l => (int)l).Append(int.MaxValue).Distinct())
        {
            int correct = 0;
            for (int i = 0; i < lengths.Length; i++) if ((lengths[i] >= t) == label[i]) correct++;
            if (correct > bestCorrect) { bestCorrect = correct; best = t; }
        }
        return best;
    }

    static List<CurvePoint> Curve(double[] scores, bool[] label, IEnumerable<double> thresholds)
    {
        var points = new List<CurvePoint>();
        int n = scores.Length;
        foreach (double t in thresholds)
        {
            int cloud = 0, missed = 0, correct = 0;
            for (int i = 0; i < n; i++)
            {
                bool c = scores[i] >= t;
                if (c) cloud++;
                if (!c && label[i]) missed++;
                if (c == label[i]) correct++;
            }
            points.Add(new CurvePoint(t, (double)cloud / n, 1 - (double)missed / n, (double)correct / n));
        }
        return points;
    }

    /// <summary>Stands in for a side the evaluation never asks; calling it is a bug.</summary>
    sealed class NeverCalled : IChatClient
    {
        public static readonly NeverCalled Instance = new();
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("route-eval only decides; it never asks a model");
        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("route-eval only decides; it never asks a model");
        public object? GetService(Type serviceType, object? serviceKey = null) => null;
        public void Dispose() { }
    }
}
