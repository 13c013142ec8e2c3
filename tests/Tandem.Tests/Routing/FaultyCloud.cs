using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Tandem.Tests.Server;

namespace Tandem.Tests.Routing;

/// <summary>What the fault injector does to the next request.</summary>
public enum CloudFault { None, ServerError, RateLimited, Delay, CutMidStream }

/// <summary>
/// A loopback "cloud" for the router tests: a real Tandem server (OpenAI wire protocol) behind a small ASP.NET
/// proxy that records every request body (to assert what left the device) and injects the failures a remote
/// cloud has and a local server cannot be made to have: 500, 429, long delays, a connection cut mid-stream.
/// </summary>
public sealed class FaultyCloud : IAsyncLifetime
{
    ServerHarness _server = null!;
    WebApplication _proxy = null!;
    readonly HttpClient _upstream = new() { Timeout = TimeSpan.FromMinutes(2) };
    public string Url { get; private set; } = "";
    public ConcurrentQueue<string> Bodies { get; } = new();
    public ConcurrentQueue<CloudFault> Faults { get; } = new();
    public TimeSpan DelayBy { get; set; } = TimeSpan.FromSeconds(5);
    int _aborted, _requests;
    bool _lastWasNewline;
    public int Requests => _requests;
    /// <summary>Requests whose client went away before the answer was complete (cancelled races).</summary>
    public int Aborted => _aborted;

    public void Reset()
    {
        Bodies.Clear();
        Faults.Clear();
        _aborted = 0;
        _requests = 0;
    }

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync(ServerHarness.StoriesOptions);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _proxy = builder.Build();
        _proxy.MapPost("/v1/chat/completions", Handle);
        await _proxy.StartAsync();
        Url = _proxy.Urls.First() + "/v1";
    }

    async Task Handle(HttpContext ctx)
    {
        Interlocked.Increment(ref _requests);
        using var reader = new StreamReader(ctx.Request.Body);
        string body = await reader.ReadToEndAsync();
        Bodies.Enqueue(body);
        var fault = Faults.TryDequeue(out var f) ? f : CloudFault.None;
        var ct = ctx.RequestAborted;
        try
        {
            switch (fault)
            {
                case CloudFault.ServerError:
                    ctx.Response.StatusCode = 500;
                    await ctx.Response.WriteAsync("""{"error":{"message":"injected failure","type":"server_error"}}""", ct);
                    return;
                case CloudFault.RateLimited:
                    ctx.Response.StatusCode = 429;
                    ctx.Response.Headers.RetryAfter = "0";
                    await ctx.Response.WriteAsync("""{"error":{"message":"injected rate limit","type":"rate_limit"}}""", ct);
                    return;
                case CloudFault.Delay:
                    await Task.Delay(DelayBy, ct);
                    break;
            }
            using var request = new HttpRequestMessage(HttpMethod.Post, _server.Url + "/v1/chat/completions")
            { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
            using var response = await _upstream.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            ctx.Response.StatusCode = (int)response.StatusCode;
            ctx.Response.ContentType = response.Content.Headers.ContentType?.ToString();
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            if (fault == CloudFault.CutMidStream)
            {
                // pass the first events through, then drop the connection as a dying cloud would
                var buffer = new byte[1];
                int events = 0;
                while (events < 4 && await stream.ReadAsync(buffer, ct) == 1)
                {
                    await ctx.Response.Body.WriteAsync(buffer, ct);
                    if (buffer[0] == '\n' && _lastWasNewline) events++;
                    _lastWasNewline = buffer[0] == '\n';
                }
                await ctx.Response.Body.FlushAsync(ct);
                await Task.Delay(50, ct);
                ctx.Abort();
                return;
            }
            await stream.CopyToAsync(ctx.Response.Body, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Interlocked.Increment(ref _aborted);
        }
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        await _server.DisposeAsync();
        _upstream.Dispose();
    }
}
