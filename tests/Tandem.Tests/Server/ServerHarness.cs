using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Tandem.Server;

namespace Tandem.Tests.Server;

/// <summary>A real Tandem server on a free loopback port (Kestrel, in this process), with an HttpClient pointed at it.</summary>
public sealed class ServerHarness : IAsyncDisposable
{
    public TandemServer Server { get; }
    public HttpClient Http { get; }
    public string Url => Server.Url;

    ServerHarness(TandemServer server)
    {
        Server = server;
        Http = new HttpClient { BaseAddress = new Uri(server.Url + "/"), Timeout = TimeSpan.FromMinutes(2) };
    }

    public static ServerOptions StoriesOptions => new()
    {
        ModelPaths = [TestData.Stories260K],
        Port = 0,
        Threads = 1,
        ContextLength = 256,
        Parallel = 8,
    };

    public static async Task<ServerHarness> StartAsync(ServerOptions options, bool waitReady = true)
    {
        var server = await TandemServer.StartAsync(options, logging => logging.ClearProviders());
        if (waitReady) await server.WaitReadyAsync();
        return new ServerHarness(server);
    }

    public BatchScheduler Scheduler => Server.Models.Values.Single();

    public async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> PostAsync(string path, string json, string? apiKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (apiKey is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        var response = await Http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    /// <summary>Sends a streaming request and returns every "data:" payload, up to and including [DONE].</summary>
    public async Task<List<string>> StreamAsync(string path, string json)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        using var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return await ReadEvents(response);
    }

    /// <summary>Server-sent events: "data: PAYLOAD" lines, each event ended by an empty line.</summary>
    public static async Task<List<string>> ReadEvents(HttpResponseMessage response)
    {
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<string>();
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0) continue;
            Assert.StartsWith("data: ", line);
            events.Add(line[6..]);
            Assert.Equal("", await reader.ReadLineAsync()); // every event ends with a blank line
            if (line == "data: [DONE]") break;
        }
        Assert.Null(await reader.ReadLineAsync()); // nothing after [DONE]
        return events;
    }

    /// <summary>Concatenated delta.content of a chat stream.</summary>
    public static string StreamText(List<string> events) =>
        string.Concat(events.Where(e => e != "[DONE]").Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices"))
            .Where(c => c.GetArrayLength() > 0)
            .Select(c => c[0].GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));

    public async Task<string> MetricsAsync() => await Http.GetStringAsync("metrics");

    public static double Metric(string metrics, string name)
    {
        foreach (var line in metrics.Split('\n'))
            if (line.StartsWith(name + " ", StringComparison.Ordinal))
                return double.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        throw new Xunit.Sdk.XunitException($"metric {name} not found in:\n{metrics}");
    }

    /// <summary>Waits for a condition the server reaches asynchronously; the bound only guards against a hang.</summary>
    public static async Task WaitUntil(Func<bool> condition, string what)
    {
        for (int i = 0; i < 3000; i++)
        {
            if (condition()) return;
            await Task.Delay(10);
        }
        throw new Xunit.Sdk.XunitException("timed out waiting until " + what);
    }

    public static string Chat(string content, int maxTokens, bool stream = false, string extra = "") =>
        $$"""{"model":"stories260K","messages":[{"role":"user","content":{{JsonSerializer.Serialize(content)}}}],"max_tokens":{{maxTokens}},"temperature":0,"stream":{{(stream ? "true" : "false")}}{{extra}}}""";

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>One server on stories260K shared by the tests of a class (xUnit runs a class's tests one at a time).</summary>
public sealed class StoriesServerFixture : IAsyncLifetime
{
    public ServerHarness Harness { get; private set; } = null!;

    public async Task InitializeAsync() => Harness = await ServerHarness.StartAsync(ServerHarness.StoriesOptions with { MaxRequestBodyBytes = 64 * 1024 });

    public async Task DisposeAsync() => await Harness.DisposeAsync();
}
