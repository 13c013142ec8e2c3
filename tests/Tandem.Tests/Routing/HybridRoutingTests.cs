using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Routing;

namespace Tandem.Tests.Routing;

/// <summary>The local stories260K model plus a loopback cloud (a real Tandem server behind the fault-injecting proxy).</summary>
public sealed class HybridFixture : IAsyncLifetime
{
    public FaultyCloud Cloud { get; } = new();
    public LocalStoriesFixture Local { get; } = new();
    public Task InitializeAsync() => Cloud.InitializeAsync();
    public async Task DisposeAsync() { await Cloud.DisposeAsync(); Local.Dispose(); }
}

public sealed class HybridRoutingTests(HybridFixture fixture) : IClassFixture<HybridFixture>
{
    static readonly ComplexityScorer Scorer = ComplexityScorer.Load(Path.Combine(TestData.Root, "src", "Tandem.Routing", "Data", "router-weights.json"));
    readonly FaultyCloud _cloud = Reset(fixture.Cloud);
    static FaultyCloud Reset(FaultyCloud c) { c.Reset(); return c; }

    static readonly RetryOptions FastRetry = new() { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(5), MaxDelay = TimeSpan.FromMilliseconds(20) };
    static readonly ChatOptions Short = new() { Temperature = 0, MaxOutputTokens = 12 };

    /// <summary>The router over the shared local client; the local client is not disposed with it.</summary>
    HybridChatClient Router(RouterOptions options, IDeviceStateProvider? device = null) =>
        new(new NonDisposing(fixture.Local.Client), new CloudOptions { Endpoint = new Uri(_cloud.Url), Model = "stories260K" }.CreateClient(),
            options with { Retry = options.Retry == new RetryOptions() ? FastRetry : options.Retry }, Scorer, device);

    sealed class StartsAfter(IChatClient inner, Func<bool> ready) : DelegatingChatClient(inner)
    {
        public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken ct = default)
        {
            await Server.ServerHarness.WaitUntil(ready, "the cloud received the request");
            return await base.GetResponseAsync(messages, options, ct);
        }
    }

    sealed class NonDisposing(IChatClient inner) : DelegatingChatClient(inner) { protected override void Dispose(bool disposing) { } }

    static List<ChatMessage> Ask(string text) => [new(ChatRole.User, text)];
    static RouteTrace TraceOf(ChatResponse r) => Assert.IsType<RouteTrace>(r.AdditionalProperties![RouteTrace.Key]);

    [Theory]
    [InlineData("Turn on the flashlight", "local")]
    [InlineData("打开蓝牙", "local")]
    [InlineData("Mets un réveil à sept heures", "local")]
    [InlineData("写一个快速排序", "cloud")]
    [InlineData("x+y=4z, xy=4z², express x−y in z", "cloud")]
    [InlineData("Rédige une dissertation sur la Révolution française", "cloud")]
    public async Task Route_SendsEachRequestWhereTheScorerSays(string prompt, string side)
    {
        using var router = Router(new RouterOptions { Mode = RoutingMode.Route });
        var r = await router.GetResponseAsync(Ask(prompt), Short);
        var trace = TraceOf(r);
        Assert.Equal(side, trace.AnsweredBy);
        Assert.Equal(side, trace.Decision);
        Assert.Equal(side == "cloud" ? 1 : 0, _cloud.Requests);
        Assert.NotNull(trace.Complexity);
        Assert.False(trace.Degraded);
        Assert.NotEmpty(r.Text);
    }

    [Fact]
    public async Task KeepLocal_PersonalDataNeverLeaves()
    {
        using var router = Router(new RouterOptions { Mode = RoutingMode.CloudOnly, Privacy = PrivacyPolicy.KeepLocal });
        var r = await router.GetResponseAsync(Ask("写一个快速排序, 结果发到 13812345678"), Short);
        var trace = TraceOf(r);
        Assert.Equal("local", trace.AnsweredBy);
        Assert.Contains("Phone", trace.Pii);
        Assert.Equal(0, _cloud.Requests);
    }

    [Fact]
    public async Task RedactThenCloud_CloudReceivesPlaceholdersOnly()
    {
        using var router = Router(new RouterOptions { Mode = RoutingMode.CloudOnly, Privacy = PrivacyPolicy.RedactThenCloud });
        var r = await router.GetResponseAsync(Ask("Email alice@example.org and card 4111 1111 1111 1111: write a quicksort"), Short);
        Assert.Equal("cloud", TraceOf(r).AnsweredBy);
        Assert.True(TraceOf(r).Redacted);
        string body = Assert.Single(_cloud.Bodies);
        Assert.DoesNotContain("alice@example.org", body);
        Assert.DoesNotContain("4111", body);
        string content = JsonDocument.Parse(body).RootElement.GetProperty("messages")[0].GetProperty("content").GetString()!;
        Assert.Equal("Email [EMAIL] and card [CARD]: write a quicksort", content);
    }

    [Fact]
    public async Task ServerErrorsAndRateLimits_AreRetried()
    {
        _cloud.Faults.Enqueue(CloudFault.ServerError);
        _cloud.Faults.Enqueue(CloudFault.RateLimited);
        using var router = Router(new RouterOptions { Mode = RoutingMode.CloudOnly });
        var r = await router.GetResponseAsync(Ask("Once upon a time"), Short);
        var trace = TraceOf(r);
        Assert.Equal("cloud", trace.AnsweredBy);
        Assert.Equal(3, trace.Cloud!.Attempts);
        Assert.Equal(3, _cloud.Requests);
        Assert.StartsWith(", there was", r.Text);
    }

    [Fact]
    public async Task CloudKeepsFailing_LocalAnswersDegraded_ThenBreakerOpens()
    {
        for (int i = 0; i < 10; i++) _cloud.Faults.Enqueue(CloudFault.ServerError);
        using var router = Router(new RouterOptions
        {
            Mode = RoutingMode.CloudOnly,
            Retry = FastRetry with { MaxAttempts = 2 },
            Breaker = new CircuitBreakerOptions { FailureThreshold = 4, BreakDuration = TimeSpan.FromMinutes(5) },
        });
        var local = await fixture.Local.Client.GetResponseAsync(Ask("Once upon a time"), Short);
        for (int i = 0; i < 2; i++)
        {
            var r = await router.GetResponseAsync(Ask("Once upon a time"), Short);
            var trace = TraceOf(r);
            Assert.Equal("local", trace.AnsweredBy);
            Assert.True(trace.Degraded);
            Assert.Contains(trace.Fallbacks, f => f.Contains("500 server error", StringComparison.Ordinal));
            Assert.Equal(local.Text, r.Text);
        }
        Assert.Equal(4, _cloud.Requests);
        Assert.True(router.Breaker!.IsOpen);
        var third = await router.GetResponseAsync(Ask("Once upon a time"), Short);
        Assert.Equal("local", TraceOf(third).AnsweredBy);
        Assert.Contains("cloud circuit open", TraceOf(third).Reasons);
        Assert.True(TraceOf(third).Degraded);
        Assert.Equal(4, _cloud.Requests); // fails fast: nothing sent
    }

    [Fact]
    public async Task CloudTimeout_FallsBackToLocal()
    {
        _cloud.DelayBy = TimeSpan.FromSeconds(30);
        _cloud.Faults.Enqueue(CloudFault.Delay);
        _cloud.Faults.Enqueue(CloudFault.Delay);
        using var router = Router(new RouterOptions { Mode = RoutingMode.CloudOnly, Retry = FastRetry with { MaxAttempts = 2, AttemptTimeout = TimeSpan.FromSeconds(1) } });
        var r = await router.GetResponseAsync(Ask("Once upon a time"), Short);
        var trace = TraceOf(r);
        Assert.Equal("local", trace.AnsweredBy);
        Assert.True(trace.Degraded);
        Assert.Contains(trace.Fallbacks, f => f.Contains("timeout", StringComparison.Ordinal));
        Assert.Equal(2, _cloud.Requests);
    }

    [Fact]
    public async Task CloudKilledMidStream_LocalAnswers()
    {
        _cloud.Faults.Enqueue(CloudFault.CutMidStream);
        using var router = Router(new RouterOptions { Mode = RoutingMode.CloudOnly, Retry = FastRetry with { MaxAttempts = 1 } });
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 40 };
        var local = await fixture.Local.Client.GetResponseAsync(Ask("Once upon a time"), options);
        RouteTrace? trace = null;
        var text = new System.Text.StringBuilder();
        await foreach (var u in router.GetStreamingResponseAsync(Ask("Once upon a time"), options))
        {
            text.Append(u.Text);
            if (u.AdditionalProperties?.TryGetValue(RouteTrace.Key, out var t) == true) trace = (RouteTrace)t!;
        }
        Assert.NotNull(trace);
        Assert.Equal("local", trace.AnsweredBy);
        Assert.True(trace.Degraded);
        Assert.Contains(trace.Fallbacks, f => f.Contains("mid-stream", StringComparison.Ordinal));
        Assert.EndsWith(local.Text, text.ToString()); // the cloud's partial text, then the whole local answer
    }

    [Fact]
    public async Task Cascade_ConfidentLocalAnswerStays_UnsureOneEscalates()
    {
        using var confident = Router(new RouterOptions { Mode = RoutingMode.Cascade, CascadeWindow = 6, CascadeMinMeanLogProb = -3, CascadeMaxMeanEntropy = 10 });
        var r = await confident.GetResponseAsync(Ask("Once upon a time"), Short);
        Assert.Equal("local", TraceOf(r).AnsweredBy);
        Assert.Equal(0, _cloud.Requests);
        double logProb = TraceOf(r).LocalMeanLogProb!.Value;

        // the same answer judged by a stricter bar is "unsure": escalated to the cloud, local text dropped
        using var strict = Router(new RouterOptions { Mode = RoutingMode.Cascade, CascadeWindow = 6, CascadeMinMeanLogProb = logProb + 0.01, CascadeMaxMeanEntropy = 10 });
        var parts = new List<ChatResponseUpdate>();
        await foreach (var u in strict.GetStreamingResponseAsync(Ask("Once upon a time"), Short)) parts.Add(u);
        var trace = (RouteTrace)parts[^1].AdditionalProperties![RouteTrace.Key]!;
        Assert.Equal("cloud", trace.AnsweredBy);
        Assert.StartsWith("escalated", trace.Local!.Outcome);
        Assert.Equal(1, _cloud.Requests);
        Assert.All(parts.Where(p => p.Text.Length > 0), p => Assert.NotEqual("local", p.AdditionalProperties?.GetValueOrDefault("tandem.side")));
        Assert.Equal(r.Text, string.Concat(parts.Select(p => p.Text))); // same model, same greedy text, from the cloud
    }

    [Fact]
    public async Task Race_FirstGoodAnswerWins_TheOtherIsCancelled()
    {
        _cloud.DelayBy = TimeSpan.FromSeconds(30);
        _cloud.Faults.Enqueue(CloudFault.Delay);
        // the local side starts once the cloud has the request, so that there is a request in flight to cancel
        var local = new StartsAfter(new NonDisposing(fixture.Local.Client), () => _cloud.Requests >= 1);
        using var router = new HybridChatClient(local, new CloudOptions { Endpoint = new Uri(_cloud.Url), Model = "stories260K" }.CreateClient(),
            new RouterOptions { Mode = RoutingMode.Race, Retry = FastRetry with { AttemptTimeout = TimeSpan.FromMinutes(1) } }, Scorer);
        var r = await router.GetResponseAsync(Ask("Once upon a time"), Short);
        var trace = TraceOf(r);
        Assert.Equal("local", trace.AnsweredBy);
        Assert.StartsWith("cancelled", trace.Cloud!.Outcome);
        await Server.ServerHarness.WaitUntil(() => _cloud.Aborted == 1, "the cloud saw the request cancelled");
    }

    [Fact]
    public async Task Offline_DeviceConstrained_Budgets_ChangeTheDecision()
    {
        var prompt = Ask("Turn on the flashlight");
        using var offline = Router(new RouterOptions { Mode = RoutingMode.CloudOnly }, new FixedDeviceState(new DeviceState { Network = NetworkState.Offline }));
        Assert.Equal("local", offline.Decide(prompt).Decision);
        using var hot = Router(new RouterOptions(), new FixedDeviceState(new DeviceState { Thermal = ThermalState.Critical }));
        Assert.Equal("cloud", hot.Decide(prompt).Decision);
        using var cheap = Router(new RouterOptions { MaxCostPerRequest = 0.001, CloudPricePerOutputToken = 0.0001 });
        var t = cheap.Decide(Ask("写一个快速排序"), new ChatOptions { MaxOutputTokens = 100 });
        Assert.Equal("local", t.Decision);
        Assert.Contains(t.Reasons, x => x.Contains("over budget", StringComparison.Ordinal));
        using var fast = Router(new RouterOptions { MaxTimeToFirstTokenMs = 100, CloudTimeToFirstTokenMs = 600 });
        Assert.Equal("local", fast.Decide(Ask("写一个快速排序")).Decision);
    }

    [Fact]
    public async Task LocalOverItsTimeToFirstTokenBudget_GoesToTheCloud()
    {
        // a budget no generation can meet (one tick), and a cloud estimate over it too, so the decision is still local
        using var router = Router(new RouterOptions { MaxTimeToFirstTokenMs = 0.0001, CloudTimeToFirstTokenMs = 600, LocalPrefillTokensPerSecond = 1e9 });
        var r = await router.GetResponseAsync(Ask("Once upon a time"), Short);
        var trace = TraceOf(r);
        Assert.Equal("local", trace.Decision);
        Assert.Equal("over time-to-first-token budget", trace.Local!.Outcome);
        Assert.Equal("cloud", trace.AnsweredBy);
        Assert.Equal(1, _cloud.Requests);
        Assert.StartsWith(", there was", r.Text);
    }

    [Fact]
    public void Decision_ExplainsItself()
    {
        using var router = Router(new RouterOptions(), new FixedDeviceState(new DeviceState { Network = NetworkState.Metered }));
        var t = router.Decide(Ask("Could you please explain, step by step, how to solve 3x + 5 = 20 and why each step is valid?"));
        Assert.True(t.DecisionMs > 0);
        Assert.Equal("cloud", t.Decision);
        Assert.Equal(Scorer.Threshold + 0.2, t.Threshold!.Value, 6); // metered network raises the bar by 0.2
        Assert.Contains(t.Reasons, r => r.StartsWith("complexity", StringComparison.Ordinal));
        Assert.Contains("decision=cloud", t.ToString());
    }

    [Fact]
    public async Task DependencyInjection_GivesTheRouterAsIChatClient()
    {
        var services = new ServiceCollection();
        services.AddTandemHybridChat(new HybridChatSetup
        {
            LocalModelPath = TestData.Stories260K,
            Local = new LocalChatClientOptions { ContextLength = 128, Threads = 1 },
            Router = new RouterOptions { Mode = RoutingMode.LocalOnly },
            ScorerPath = Path.Combine(TestData.Root, "src", "Tandem.Routing", "Data", "router-weights.json"),
            Device = new FixedDeviceState(DeviceState.Unconstrained),
        });
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IChatClient>();
        var r = await client.GetResponseAsync(Ask("Once upon a time"), Short);
        Assert.Equal("local", TraceOf(r).AnsweredBy);
        Assert.StartsWith(", there was", r.Text);
    }
}
