using System.ClientModel;
using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Tandem.Routing;

/// <summary>Retry settings: exponential backoff with full jitter, and a deadline per attempt.</summary>
public sealed record RetryOptions
{
    /// <summary>Attempts in all (1 = no retry).</summary>
    public int MaxAttempts { get; init; } = 3;
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(4);
    /// <summary>An attempt that has produced nothing by then counts as a timeout.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>Circuit breaker settings.</summary>
public sealed record CircuitBreakerOptions
{
    /// <summary>Consecutive failed calls that open the circuit.</summary>
    public int FailureThreshold { get; init; } = 5;
    /// <summary>How long an open circuit refuses calls before letting one through to probe.</summary>
    public TimeSpan BreakDuration { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>The cloud could not be used: why, and whether retrying might help.</summary>
public sealed class CloudUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Which cloud failures are transient (worth a retry and counted by the breaker).</summary>
public static class CloudFailures
{
    public static bool IsTransient(Exception ex, CancellationToken callerToken) => ex switch
    {
        OperationCanceledException => !callerToken.IsCancellationRequested, // our attempt deadline, not the caller
        ClientResultException c => c.Status is 0 or 408 or 429 || c.Status >= 500,
        HttpRequestException h => h.StatusCode is null or HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int?)h.StatusCode >= 500,
        IOException => true,
        _ => false,
    };

    public static string Describe(Exception ex) => ex switch
    {
        OperationCanceledException => "timeout",
        ClientResultException c when c.Status == 429 => "429 rate limited",
        ClientResultException c when c.Status >= 500 => $"{c.Status} server error",
        ClientResultException c when c.Status == 0 => "network error",
        ClientResultException c => $"{c.Status} error",
        HttpRequestException => "network error",
        CircuitOpenException => "circuit open",
        _ => ex.GetType().Name,
    };
}

/// <summary>
/// Retries transient failures (timeouts, 5xx, 429, network errors) with exponential backoff and full jitter.
/// A stream is retried only while it has yielded nothing; after that a failure is the caller's to handle.
/// </summary>
public sealed class RetryingChatClient(IChatClient inner, RetryOptions options) : DelegatingChatClient(inner)
{
    /// <summary>Attempts made by the most recent call on this thread of execution (for traces).</summary>
    public static readonly AsyncLocal<int> LastAttempts = new();

    TimeSpan Backoff(int attempt)
    {
        double cap = Math.Min(options.MaxDelay.TotalMilliseconds, options.BaseDelay.TotalMilliseconds * Math.Pow(2, attempt - 1));
        return TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * cap); // full jitter spreads retrying clients apart
    }

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options_ = null, CancellationToken ct = default)
    {
        var list = messages as IList<ChatMessage> ?? messages.ToList();
        for (int attempt = 1; ; attempt++)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(options.AttemptTimeout);
            try
            {
                var r = await base.GetResponseAsync(list, options_, deadline.Token);
                Record(r.AdditionalProperties ??= [], attempt);
                return r;
            }
            catch (Exception ex) when (CloudFailures.IsTransient(ex, ct) && attempt < options.MaxAttempts)
            {
                await Task.Delay(Backoff(attempt), ct);
            }
        }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options_ = null,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        var list = messages as IList<ChatMessage> ?? messages.ToList();
        for (int attempt = 1; ; attempt++)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(options.AttemptTimeout);
            var e = base.GetStreamingResponseAsync(list, options_, deadline.Token).GetAsyncEnumerator(deadline.Token);
            ChatResponseUpdate? first = null;
            bool retry = false;
            try
            {
                if (await e.MoveNextAsync()) first = e.Current;
            }
            catch (Exception ex) when (CloudFailures.IsTransient(ex, ct) && attempt < options.MaxAttempts)
            {
                retry = true;
            }
            if (retry)
            {
                await e.DisposeAsync();
                await Task.Delay(Backoff(attempt), ct);
                continue;
            }
            try
            {
                // the first update came in time: the rest of the stream is not bound by the attempt deadline
                deadline.CancelAfter(Timeout.InfiniteTimeSpan);
                if (first is null) yield break;
                Record(first.AdditionalProperties ??= [], attempt);
                yield return first;
                while (await e.MoveNextAsync()) yield return e.Current;
                yield break;
            }
            finally { await e.DisposeAsync(); }
        }
    }

    static void Record(AdditionalPropertiesDictionary props, int attempts) => props["tandem.cloud_attempts"] = attempts;
}

/// <summary>The circuit is open: the cloud failed too often recently, so calls fail fast.</summary>
public sealed class CircuitOpenException(string message) : Exception(message);

/// <summary>
/// Opens after <see cref="CircuitBreakerOptions.FailureThreshold"/> consecutive transient failures; while open every
/// call fails at once with <see cref="CircuitOpenException"/>; after the break one call is let through (half-open)
/// and its outcome closes or reopens the circuit.
/// </summary>
public sealed class CircuitBreakerChatClient(IChatClient inner, CircuitBreakerOptions options, TimeProvider? time = null) : DelegatingChatClient(inner)
{
    readonly TimeProvider _time = time ?? TimeProvider.System;
    readonly Lock _lock = new();
    int _failures;
    DateTimeOffset _openUntil = DateTimeOffset.MinValue;
    bool _probing;

    public bool IsOpen { get { lock (_lock) return _failures >= options.FailureThreshold && _time.GetUtcNow() < _openUntil; } }
    public int ConsecutiveFailures { get { lock (_lock) return _failures; } }

    void Enter()
    {
        lock (_lock)
        {
            if (_failures < options.FailureThreshold) return;
            if (_time.GetUtcNow() < _openUntil || _probing)
                throw new CircuitOpenException($"cloud circuit open after {_failures} consecutive failures");
            _probing = true; // half-open: this call probes
        }
    }

    void Succeeded() { lock (_lock) { _failures = 0; _probing = false; } }

    void Failed()
    {
        lock (_lock)
        {
            _failures++;
            _probing = false;
            if (_failures >= options.FailureThreshold) _openUntil = _time.GetUtcNow() + options.BreakDuration;
        }
    }

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options_ = null, CancellationToken ct = default)
    {
        Enter();
        try
        {
            var r = await base.GetResponseAsync(messages, options_, ct);
            Succeeded();
            return r;
        }
        catch (Exception ex) when (CloudFailures.IsTransient(ex, ct)) { Failed(); throw; }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options_ = null,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        Enter();
        var e = base.GetStreamingResponseAsync(messages, options_, ct).GetAsyncEnumerator(ct);
        try
        {
            while (true)
            {
                bool more;
                try { more = await e.MoveNextAsync(); }
                catch (Exception ex) when (CloudFailures.IsTransient(ex, ct)) { Failed(); throw; }
                if (!more) break;
                yield return e.Current;
            }
            Succeeded();
        }
        finally { await e.DisposeAsync(); }
    }
}

/// <summary>
/// Last line of defence on the way to the cloud: under <see cref="PrivacyPolicy.RedactThenCloud"/> every message is
/// redacted; under <see cref="PrivacyPolicy.KeepLocal"/> a message with personal data is refused (the router should
/// never have sent it). Records what was masked in the response's additional properties.
/// </summary>
public sealed class PrivacyGuardChatClient(IChatClient inner, PrivacyPolicy policy) : DelegatingChatClient(inner)
{
    public PrivacyPolicy Policy => policy;

    List<ChatMessage> Guard(IEnumerable<ChatMessage> messages, out int masked)
    {
        masked = 0;
        var list = new List<ChatMessage>();
        foreach (var m in messages)
        {
            var text = m.Text;
            var found = PrivacyDetector.Detect(text);
            if (found.Count > 0 && policy == PrivacyPolicy.KeepLocal)
                throw new InvalidOperationException($"refusing to send personal data ({string.Join(", ", found.Select(f => f.Kind).Distinct())}) to the cloud under keep-local");
            if (found.Count > 0 && policy == PrivacyPolicy.RedactThenCloud)
            {
                masked += found.Count;
                list.Add(new ChatMessage(m.Role, PrivacyDetector.Redact(text, found)));
            }
            else list.Add(m);
        }
        return list;
    }

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken ct = default)
    {
        var r = await base.GetResponseAsync(Guard(messages, out int masked), options, ct);
        (r.AdditionalProperties ??= [])["tandem.redacted"] = masked;
        return r;
    }

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken ct = default) =>
        base.GetStreamingResponseAsync(Guard(messages, out _), options, ct);
}
