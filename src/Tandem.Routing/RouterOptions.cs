using System.ClientModel;
using System.ClientModel.Primitives;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Tandem.Routing;

public enum RoutingMode { LocalOnly, CloudOnly, Route, Cascade, Race }

/// <summary>How the router decides. Defaults suit a phone-class device beside a paid cloud model.</summary>
public sealed record RouterOptions
{
    public RoutingMode Mode { get; init; } = RoutingMode.Route;
    public PrivacyPolicy Privacy { get; init; } = PrivacyPolicy.KeepLocal;
    /// <summary>Complexity score at or above which a request goes to the cloud; null = the scorer's own threshold.</summary>
    public double? ComplexityThreshold { get; init; }
    /// <summary>Budget for time to first token; a side estimated to miss it is avoided. Null = no budget.</summary>
    public double? MaxTimeToFirstTokenMs { get; init; }
    /// <summary>Budget for the cloud cost of one request (same unit as the prices). Null = no budget.</summary>
    public double? MaxCostPerRequest { get; init; }
    public double CloudPricePerInputToken { get; init; }
    public double CloudPricePerOutputToken { get; init; }
    /// <summary>Estimate of the local prefill speed, for the time-to-first-token budget.</summary>
    public double LocalPrefillTokensPerSecond { get; init; } = 400;
    /// <summary>Estimate of the cloud's time to first token (network round trip plus queue).</summary>
    public double CloudTimeToFirstTokenMs { get; init; } = 600;
    /// <summary>Cascade: tokens of local output judged before deciding to escalate.</summary>
    public int CascadeWindow { get; init; } = 8;
    /// <summary>Cascade: escalate when the mean log-probability of the first tokens is below this…</summary>
    public double CascadeMinMeanLogProb { get; init; } = -2.0;
    /// <summary>…or their mean entropy (nats) is above this.</summary>
    public double CascadeMaxMeanEntropy { get; init; } = 3.5;
    /// <summary>Race: answers shorter than this (after trimming) are not "good" and the other side is awaited.</summary>
    public int RaceMinAnswerChars { get; init; } = 1;
    public RetryOptions Retry { get; init; } = new();
    public CircuitBreakerOptions Breaker { get; init; } = new();
}

/// <summary>An OpenAI-compatible endpoint.</summary>
public sealed record CloudOptions
{
    /// <summary>Base URL including the version path, e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1.</summary>
    public required Uri Endpoint { get; init; }
    public required string Model { get; init; }
    public string ApiKey { get; init; } = "unused";

    /// <summary>The endpoint as an <see cref="IChatClient"/> (Microsoft.Extensions.AI.OpenAI). The SDK's own retries are
    /// off: <see cref="RetryingChatClient"/> does them, so attempts, backoff and the breaker see every failure.</summary>
    public IChatClient CreateClient()
    {
        var client = new OpenAIClient(new ApiKeyCredential(ApiKey), new OpenAIClientOptions
        {
            Endpoint = Endpoint,
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });
        return client.GetChatClient(Model).AsIChatClient();
    }
}
