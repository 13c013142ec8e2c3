using System.Text;
using System.Text.Json.Serialization;

namespace Tandem.Routing;

/// <summary>
/// Why a request went where it went: every signal and score, the policy, the decision and its reasons, each side's
/// attempts and latencies, and fallbacks. Attached to every response as <c>AdditionalProperties["tandem.route"]</c>.
/// </summary>
public sealed class RouteTrace
{
    public const string Key = "tandem.route";
    [JsonPropertyName("mode")] public string Mode { get; set; } = "";
    [JsonPropertyName("policy")] public string Policy { get; set; } = "";
    [JsonPropertyName("complexity")] public double? Complexity { get; set; }
    [JsonPropertyName("threshold")] public double? Threshold { get; set; }
    [JsonPropertyName("pii")] public List<string> Pii { get; set; } = [];
    [JsonPropertyName("device")] public DeviceState? Device { get; set; }
    [JsonPropertyName("estimated_cloud_cost")] public double? EstimatedCloudCost { get; set; }
    [JsonPropertyName("decision")] public string Decision { get; set; } = "";
    [JsonPropertyName("reasons")] public List<string> Reasons { get; set; } = [];
    [JsonPropertyName("answered_by")] public string AnsweredBy { get; set; } = "";
    [JsonPropertyName("degraded")] public bool Degraded { get; set; }
    [JsonPropertyName("redacted")] public bool Redacted { get; set; }
    [JsonPropertyName("fallbacks")] public List<string> Fallbacks { get; set; } = [];
    [JsonPropertyName("local_mean_logprob")] public double? LocalMeanLogProb { get; set; }
    [JsonPropertyName("local_mean_entropy")] public double? LocalMeanEntropy { get; set; }
    [JsonPropertyName("decision_ms")] public double DecisionMs { get; set; }
    /// <summary>Why the cloud may not be used for this request (null = it may).</summary>
    [JsonPropertyName("cloud_blocked_by")] public string? CloudBlockedBy { get; set; }
    [JsonPropertyName("local")] public SideTiming? Local { get; set; }
    [JsonPropertyName("cloud")] public SideTiming? Cloud { get; set; }

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append($"mode={Mode} policy={Policy} decision={Decision} answered_by={AnsweredBy}");
        if (Degraded) sb.Append(" DEGRADED");
        if (Complexity is { } c) sb.Append($" complexity={c:F3}/{Threshold:F2}");
        if (Pii.Count > 0) sb.Append(" pii=").Append(string.Join(',', Pii));
        if (Reasons.Count > 0) sb.Append(" reasons=[").Append(string.Join("; ", Reasons)).Append(']');
        if (Fallbacks.Count > 0) sb.Append(" fallbacks=[").Append(string.Join("; ", Fallbacks)).Append(']');
        if (LocalMeanLogProb is { } lp) sb.Append($" local_logprob={lp:F2} entropy={LocalMeanEntropy:F2}");
        sb.Append($" decision_ms={DecisionMs:F3}");
        if (Local is { } l) sb.Append(" local=").Append(l);
        if (Cloud is { } cl) sb.Append(" cloud=").Append(cl);
        return sb.ToString();
    }
}

/// <summary>One side's part in a request: outcome, time to first text and total time (ms).</summary>
public sealed class SideTiming
{
    [JsonPropertyName("outcome")] public string Outcome { get; set; } = "started";
    [JsonPropertyName("ttft_ms")] public double? TimeToFirstTokenMs { get; set; }
    [JsonPropertyName("total_ms")] public double? TotalMs { get; set; }
    [JsonPropertyName("attempts")] public int? Attempts { get; set; }
    public override string ToString() =>
        $"{Outcome}(ttft={TimeToFirstTokenMs?.ToString("F0") ?? "-"}ms total={TotalMs?.ToString("F0") ?? "-"}ms{(Attempts is { } a ? $" attempts={a}" : "")})";
}
