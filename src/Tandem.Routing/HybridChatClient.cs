using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Tandem.Routing;

/// <summary>
/// The device–cloud router as an <see cref="IChatClient"/>: each request is answered by the local model, the cloud,
/// or both (cascade, race), according to <see cref="RouterOptions"/>, the request's complexity score and personal
/// data, the device state and the budgets. The cloud side is a <see cref="ChatClientBuilder"/> pipeline of small
/// <see cref="DelegatingChatClient"/>s (privacy guard → retry with backoff and jitter → circuit breaker → endpoint);
/// when it fails the local model answers, flagged degraded. Every response carries a <see cref="RouteTrace"/>.
/// </summary>
public sealed class HybridChatClient : IChatClient
{
    readonly IChatClient _local;
    readonly IChatClient? _cloud;
    readonly ComplexityScorer _scorer;
    readonly IDeviceStateProvider _device;
    public RouterOptions Options { get; }
    /// <summary>The cloud pipeline's breaker (null without a cloud).</summary>
    public CircuitBreakerChatClient? Breaker { get; }

    /// <param name="local">The on-device client (usually <see cref="LocalChatClient"/>).</param>
    /// <param name="cloudEndpoint">The bare cloud endpoint (e.g. <see cref="CloudOptions.CreateClient"/>); null = no cloud.</param>
    public HybridChatClient(IChatClient local, IChatClient? cloudEndpoint, RouterOptions options, ComplexityScorer scorer, IDeviceStateProvider? device = null)
    {
        _local = local;
        Options = options;
        _scorer = scorer;
        _device = device ?? new FixedDeviceState(DeviceState.Unconstrained);
        if (cloudEndpoint is not null)
        {
            CircuitBreakerChatClient? breaker = null;
            _cloud = new ChatClientBuilder(cloudEndpoint)
                .Use(inner => new PrivacyGuardChatClient(inner, options.Privacy))
                .Use(inner => new RetryingChatClient(inner, options.Retry))
                .Use(inner => breaker = new CircuitBreakerChatClient(inner, options.Breaker))
                .Build();
            Breaker = breaker;
        }
    }

    /// <summary>What the router would do with this request, without running it.</summary>
    public RouteTrace Decide(IList<ChatMessage> messages, ChatOptions? chatOptions = null) => Decide(messages, chatOptions, out _);

    enum Plan { Local, Cloud, Cascade, Race }

    RouteTrace Decide(IList<ChatMessage> messages, ChatOptions? chatOptions, out Plan plan)
    {
        long t0 = Stopwatch.GetTimestamp();
        var o = Options;
        var trace = new RouteTrace { Mode = ModeName(o.Mode), Policy = PolicyName(o.Privacy) };
        var device = _device.Current;
        trace.Device = device;

        string lastUser = messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        int turns = Math.Max(1, messages.Count(m => m.Role == ChatRole.User));
        int chars = 0;
        foreach (var m in messages)
        {
            string text = m.Text;
            chars += text.Length;
            foreach (var f in PrivacyDetector.Detect(text)) trace.Pii.Add(f.Kind.ToString());
        }
        bool pii = trace.Pii.Count > 0;

        // why the cloud may not be used at all
        string? noCloud = _cloud is null ? "no cloud configured"
            : device.Network == NetworkState.Offline ? "device offline"
            : pii && o.Privacy == PrivacyPolicy.KeepLocal ? "personal data under keep-local"
            : Breaker?.IsOpen == true ? "cloud circuit open"
            : null;
        if (pii && o.Privacy == PrivacyPolicy.RedactThenCloud) trace.Redacted = true;
        int promptTokensEstimate = chars / 3 + 8;
        int maxOut = chatOptions?.MaxOutputTokens ?? 256;
        trace.EstimatedCloudCost = promptTokensEstimate * o.CloudPricePerInputToken + maxOut * o.CloudPricePerOutputToken;
        if (noCloud is null && o.MaxCostPerRequest is { } maxCost && trace.EstimatedCloudCost > maxCost)
            noCloud = $"estimated cloud cost {trace.EstimatedCloudCost:G3} over budget {maxCost:G3}";

        double threshold = o.ComplexityThreshold ?? _scorer.Threshold;
        if (device.Network == NetworkState.Metered) { threshold = Math.Min(0.95, threshold + 0.2); trace.Reasons.Add("metered network: threshold raised"); }
        trace.Threshold = threshold;
        if (o.Mode is RoutingMode.Route or RoutingMode.Cascade) trace.Complexity = _scorer.Score(lastUser, turns);

        trace.CloudBlockedBy = noCloud;
        if (noCloud is not null && o.Mode != RoutingMode.LocalOnly) trace.Reasons.Add(noCloud);
        plan = Plan.Local;
        switch (o.Mode)
        {
            case RoutingMode.LocalOnly: trace.Reasons.Add("mode local-only"); break;
            case RoutingMode.CloudOnly: if (noCloud is null) { plan = Plan.Cloud; trace.Reasons.Add("mode cloud-only"); } break;
            case RoutingMode.Cascade: if (noCloud is null) plan = Plan.Cascade; break;
            case RoutingMode.Race: if (noCloud is null) plan = Plan.Race; break;
            default:
                if (noCloud is not null) break;
                double localTtft = promptTokensEstimate * 1000.0 / o.LocalPrefillTokensPerSecond;
                if (device.LocalConstrained) { plan = Plan.Cloud; trace.Reasons.Add("device constrained (battery, heat or memory)"); }
                else if (o.MaxTimeToFirstTokenMs is { } budget && localTtft > budget && o.CloudTimeToFirstTokenMs <= budget)
                { plan = Plan.Cloud; trace.Reasons.Add($"local time to first token ~{localTtft:F0} ms over budget {budget:F0} ms"); }
                else if (o.MaxTimeToFirstTokenMs is { } b2 && o.CloudTimeToFirstTokenMs > b2 && localTtft <= b2)
                { plan = Plan.Local; trace.Reasons.Add($"cloud time to first token ~{o.CloudTimeToFirstTokenMs:F0} ms over budget {b2:F0} ms"); }
                else
                {
                    plan = trace.Complexity >= threshold ? Plan.Cloud : Plan.Local;
                    trace.Reasons.Add($"complexity {trace.Complexity:F3} {(plan == Plan.Cloud ? "≥" : "<")} {threshold:F2}");
                }
                break;
        }
        trace.Decision = plan.ToString().ToLowerInvariant();
        trace.DecisionMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        return trace;
    }

    public static string ModeName(RoutingMode m) => m switch
    {
        RoutingMode.LocalOnly => "local-only", RoutingMode.CloudOnly => "cloud-only", RoutingMode.Cascade => "cascade", RoutingMode.Race => "race", _ => "route",
    };

    public static string PolicyName(PrivacyPolicy p) => p switch { PrivacyPolicy.KeepLocal => "keep-local", PrivacyPolicy.RedactThenCloud => "redact-then-cloud", _ => "allow" };

    public static RoutingMode ParseMode(string s) => s switch
    {
        "local-only" => RoutingMode.LocalOnly, "cloud-only" => RoutingMode.CloudOnly, "route" => RoutingMode.Route, "cascade" => RoutingMode.Cascade, "race" => RoutingMode.Race,
        _ => throw new ArgumentException($"unknown routing mode '{s}'; expected local-only, cloud-only, route, cascade or race"),
    };

    public static PrivacyPolicy ParsePolicy(string s) => s switch
    {
        "keep-local" => PrivacyPolicy.KeepLocal, "redact-then-cloud" => PrivacyPolicy.RedactThenCloud, "allow" => PrivacyPolicy.Allow,
        _ => throw new ArgumentException($"unknown privacy policy '{s}'; expected keep-local, redact-then-cloud or allow"),
    };

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages.ToList();
        var trace = Decide(list, options, out var plan);
        var response = await Run(list, options, plan, trace, buffered: true, cancellationToken).ToChatResponseAsync(cancellationToken);
        Attach(response.AdditionalProperties ??= [], trace);
        return response;
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = messages.ToList();
        var trace = Decide(list, options, out var plan);
        await foreach (var u in Run(list, options, plan, trace, buffered: false, cancellationToken)) yield return u;
    }

    static void Attach(AdditionalPropertiesDictionary props, RouteTrace trace)
    {
        props[RouteTrace.Key] = trace;
        props["tandem.answered_by"] = trace.AnsweredBy;
        props["tandem.degraded"] = trace.Degraded;
    }

    /// <summary>How one side's stream ended.</summary>
    sealed class SideResult
    {
        public Exception? Error;
        public int Yielded;
        public string Text = "";
        public AdditionalPropertiesDictionary Props = [];
    }

    /// <summary>
    /// Streams one side. Updates are held back while <paramref name="hold"/> says so (all of them when buffered),
    /// and held updates are dropped if the side fails or <paramref name="discard"/> says so at the end.
    /// Failures are recorded in <paramref name="result"/>, not thrown (except the caller's cancellation).
    /// </summary>
    static async IAsyncEnumerable<ChatResponseUpdate> Pump(IChatClient client, IList<ChatMessage> messages, ChatOptions? options, SideTiming timing,
        SideResult result, Func<bool> hold, Func<bool> discard, [EnumeratorCancellation] CancellationToken ct, CancellationTokenSource? budget = null,
        double? budgetMs = null)
    {
        // budget: cancels this side alone (not the caller) unless its first text arrives within budgetMs
        var sw = Stopwatch.StartNew();
        var held = new List<ChatResponseUpdate>();
        var text = new System.Text.StringBuilder();
        IAsyncEnumerator<ChatResponseUpdate>? e = null;
        try
        {
            while (true)
            {
                ChatResponseUpdate u;
                try
                {
                    var token = budget?.Token ?? ct;
                    e ??= client.GetStreamingResponseAsync(messages, options, token).GetAsyncEnumerator(token);
                    if (!await e.MoveNextAsync()) break;
                    u = e.Current;
                }
                catch (Exception ex) when (!ct.IsCancellationRequested)
                {
                    result.Error = ex;
                    timing.Outcome = "failed: " + CloudFailures.Describe(ex);
                    break;
                }
                string piece = u.Text;
                if (piece.Length > 0)
                {
                    if (timing.TimeToFirstTokenMs is null && budget is not null)
                    {
                        // A first text later than the budget counts as over it even when the timer has not fired yet
                        // (it runs on the thread pool: a fast model can beat a sub-millisecond budget's timer).
                        if (budgetMs is { } limit && sw.Elapsed.TotalMilliseconds > limit)
                        {
                            budget.Cancel();
                            result.Error = new OperationCanceledException(budget.Token);
                            timing.Outcome = "failed: no first token in time";
                            break;
                        }
                        budget.CancelAfter(Timeout.InfiniteTimeSpan);
                    }
                    timing.TimeToFirstTokenMs ??= sw.Elapsed.TotalMilliseconds;
                    text.Append(piece);
                }
                if (u.AdditionalProperties is { } p) foreach (var (k, v) in p) result.Props[k] = v;
                if (hold()) { held.Add(u); continue; }
                foreach (var h in held) { result.Yielded++; yield return h; }
                held.Clear();
                result.Yielded++;
                yield return u;
            }
        }
        finally
        {
            if (e is not null) await e.DisposeAsync();
            timing.TotalMs = sw.Elapsed.TotalMilliseconds;
            if (result.Props.TryGetValue("tandem.cloud_attempts", out var a) && a is int attempts) timing.Attempts = attempts;
        }
        result.Text = text.ToString();
        if (result.Error is null)
        {
            timing.Outcome = "ok";
            if (!discard()) foreach (var h in held) { result.Yielded++; yield return h; }
        }
    }

    async IAsyncEnumerable<ChatResponseUpdate> Run(List<ChatMessage> messages, ChatOptions? options, Plan plan, RouteTrace trace, bool buffered,
        [EnumeratorCancellation] CancellationToken ct)
    {
        Func<bool> holdAll = buffered ? () => true : () => false, never = () => false;
        bool cloudAllowed = _cloud is not null && trace.CloudBlockedBy is null && Options.Mode != RoutingMode.LocalOnly;
        // the cloud was wanted but is failing: the local answer is a fallback, say so
        if (trace.CloudBlockedBy == "cloud circuit open" && Options.Mode != RoutingMode.LocalOnly) trace.Degraded = true;

        switch (plan)
        {
            case Plan.Cloud:
            {
                trace.Cloud = new SideTiming();
                var r = new SideResult();
                await foreach (var u in Pump(_cloud!, messages, options, trace.Cloud, r, holdAll, never, ct)) yield return u;
                if (r.Error is null) { trace.AnsweredBy = "cloud"; break; }
                trace.Degraded = true;
                trace.Fallbacks.Add($"cloud {trace.Cloud.Outcome}{(r.Yielded > 0 ? " mid-stream" : "")} → local");
                await foreach (var u in LocalFallback(messages, options, trace, buffered, ct)) yield return u;
                break;
            }
            case Plan.Cascade:
            {
                var probe = new ConfidenceProbe
                {
                    Window = Options.CascadeWindow,
                    ShouldStop = p => p.MeanLogProb < Options.CascadeMinMeanLogProb || p.MeanEntropy > Options.CascadeMaxMeanEntropy,
                };
                var localOptions = WithProbe(options, probe);
                trace.Local = new SideTiming();
                var r = new SideResult();
                // hold local text until the probe has judged the first tokens, and drop it if they were not confident
                Func<bool> hold = buffered ? holdAll : () => !probe.Decided || probe.Stopped;
                await foreach (var u in Pump(_local, messages, localOptions, trace.Local, r, hold, () => probe.Stopped, ct)) yield return u;
                trace.LocalMeanLogProb = probe.MeanLogProb;
                trace.LocalMeanEntropy = probe.MeanEntropy;
                if (r.Error is null && !probe.Stopped) { trace.AnsweredBy = "local"; trace.Reasons.Add("local answer confident"); break; }
                trace.Local.Outcome = r.Error is null ? "escalated: low confidence" : trace.Local.Outcome;
                trace.Reasons.Add(r.Error is null ? $"local unsure (mean logprob {probe.MeanLogProb:F2}, entropy {probe.MeanEntropy:F2}) → cloud" : "local failed → cloud");
                trace.Cloud = new SideTiming();
                var c = new SideResult();
                await foreach (var u in Pump(_cloud!, messages, options, trace.Cloud, c, holdAll, never, ct)) yield return u;
                if (c.Error is null) { trace.AnsweredBy = "cloud"; break; }
                trace.Degraded = true;
                trace.Fallbacks.Add($"cloud {trace.Cloud.Outcome} → local without confidence check");
                await foreach (var u in LocalFallback(messages, options, trace, buffered, ct)) yield return u;
                break;
            }
            case Plan.Race:
            {
                var response = await Race(messages, options, trace, ct);
                foreach (var u in response.ToChatResponseUpdates()) yield return u;
                break;
            }
            default:
            {
                trace.Local = new SideTiming();
                var r = new SideResult();
                // over its time-to-first-token budget the local side is given up for the cloud (when the cloud may be used)
                using var budget = CancellationTokenSource.CreateLinkedTokenSource(ct);
                if (cloudAllowed && Options.MaxTimeToFirstTokenMs is { } ttft) budget.CancelAfter(TimeSpan.FromMilliseconds(ttft));
                await foreach (var u in Pump(_local, messages, options, trace.Local, r, holdAll, never, ct, budget,
                    cloudAllowed ? Options.MaxTimeToFirstTokenMs : null)) yield return u;
                if (r.Error is null) { trace.AnsweredBy = "local"; break; }
                if (r.Error is OperationCanceledException && budget.IsCancellationRequested)
                {
                    trace.Local.Outcome = "over time-to-first-token budget";
                    r.Error = new TimeoutException($"no first token within {Options.MaxTimeToFirstTokenMs} ms");
                }
                if (!cloudAllowed || _cloud is null)
                    throw new InvalidOperationException($"the local model failed ({r.Error.Message}) and the cloud may not be used", r.Error);
                trace.Fallbacks.Add($"local failed ({r.Error.GetType().Name}: {r.Error.Message}) → cloud");
                if (r.Yielded > 0) trace.Fallbacks.Add("local failed mid-stream");
                trace.Cloud = new SideTiming();
                var c = new SideResult();
                await foreach (var u in Pump(_cloud, messages, options, trace.Cloud, c, holdAll, never, ct)) yield return u;
                if (c.Error is not null) throw new CloudUnavailableException($"local failed and the cloud failed too ({trace.Cloud.Outcome})", c.Error);
                trace.AnsweredBy = "cloud";
                break;
            }
        }
        var last = new ChatResponseUpdate { Role = ChatRole.Assistant, AdditionalProperties = [] };
        Attach(last.AdditionalProperties, trace);
        yield return last;
    }

    async IAsyncEnumerable<ChatResponseUpdate> LocalFallback(List<ChatMessage> messages, ChatOptions? options, RouteTrace trace, bool buffered,
        [EnumeratorCancellation] CancellationToken ct)
    {
        trace.Local = new SideTiming();
        var r = new SideResult();
        await foreach (var u in Pump(_local, messages, options, trace.Local, r, buffered ? () => true : () => false, () => false, ct)) yield return u;
        if (r.Error is not null) throw new InvalidOperationException($"both sides failed: the cloud ({trace.Cloud?.Outcome}) and the local model ({r.Error.Message})", r.Error);
        trace.AnsweredBy = "local";
    }

    static ChatOptions WithProbe(ChatOptions? options, ConfidenceProbe probe)
    {
        var o = options?.Clone() ?? new ChatOptions();
        o.AdditionalProperties = o.AdditionalProperties is { } p ? new AdditionalPropertiesDictionary(p) : [];
        o.AdditionalProperties[LocalChatClient.ConfidenceKey] = probe;
        return o;
    }

    /// <summary>Both sides at once; the first good (non-failed, non-empty) answer wins and the other is cancelled.</summary>
    async Task<ChatResponse> Race(List<ChatMessage> messages, ChatOptions? options, RouteTrace trace, CancellationToken ct)
    {
        using var localCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var cloudCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        trace.Local = new SideTiming();
        trace.Cloud = new SideTiming();
        async Task<ChatResponse> Side(IChatClient client, SideTiming timing, CancellationToken token)
        {
            var sw = Stopwatch.StartNew();
            try
            {
                var r = await client.GetResponseAsync(messages, options, token);
                timing.TotalMs = sw.Elapsed.TotalMilliseconds;
                timing.Outcome = "ok";
                if (r.AdditionalProperties?.TryGetValue("tandem.cloud_attempts", out var a) == true && a is int n) timing.Attempts = n;
                return r;
            }
            catch (Exception ex)
            {
                timing.TotalMs = sw.Elapsed.TotalMilliseconds;
                timing.Outcome = token.IsCancellationRequested && !ct.IsCancellationRequested ? "cancelled (lost the race)" : "failed: " + CloudFailures.Describe(ex);
                throw;
            }
        }
        var local = Side(_local, trace.Local, localCts.Token);
        var cloud = Side(_cloud!, trace.Cloud, cloudCts.Token);
        var pending = new List<Task<ChatResponse>> { local, cloud };
        while (pending.Count > 0)
        {
            var done = await Task.WhenAny(pending);
            pending.Remove(done);
            bool isLocal = done == local;
            if (done.IsCompletedSuccessfully && done.Result.Text.Trim().Length >= Options.RaceMinAnswerChars)
            {
                (isLocal ? cloudCts : localCts).Cancel();
                try { await Task.WhenAll(pending); } catch (Exception) when (!ct.IsCancellationRequested) { } // the loser's cancellation
                trace.AnsweredBy = isLocal ? "local" : "cloud";
                trace.Reasons.Add($"{trace.AnsweredBy} answered first");
                return done.Result;
            }
            ct.ThrowIfCancellationRequested();
            trace.Fallbacks.Add($"{(isLocal ? "local" : "cloud")} gave no good answer ({(isLocal ? trace.Local : trace.Cloud).Outcome})");
            if (!isLocal) trace.Degraded = true;
        }
        throw new InvalidOperationException("race: neither side answered (" + string.Join("; ", trace.Fallbacks) + ")");
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : _local.GetService(serviceType, serviceKey);

    public void Dispose()
    {
        _local.Dispose();
        _cloud?.Dispose();
    }
}
