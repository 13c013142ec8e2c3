using System.ClientModel;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.AI;
using OpenAI;
using Tandem.Routing;
using Tandem.Tests.Server;

namespace Tandem.Tests.Routing;

/// <summary>The router served as an OpenAI-compatible endpoint: the official SDK talks to it; headers carry the route.</summary>
public sealed class HybridGatewayTests(HybridFixture fixture) : IClassFixture<HybridFixture>
{
    static readonly ComplexityScorer Scorer = ComplexityScorer.Load(Path.Combine(TestData.Root, "src", "Tandem.Routing", "Data", "router-weights.json"));

    async Task<(WebApplication App, string Url)> Start()
    {
        fixture.Cloud.Reset();
        var router = new HybridChatClient(new NonDisposing(fixture.Local.Client),
            new CloudOptions { Endpoint = new Uri(fixture.Cloud.Url), Model = "stories260K" }.CreateClient(), new RouterOptions(), Scorer);
        var app = await HybridGateway.StartAsync(router);
        return (app, app.Urls.First());
    }

    sealed class NonDisposing(IChatClient inner) : DelegatingChatClient(inner) { protected override void Dispose(bool disposing) { } }

    [Fact]
    public async Task OpenAiSdk_GetsRoutedAnswers_HeadersSayWhere()
    {
        var (app, url) = await Start();
        await using var _ = app;
        var sdk = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(url + "/v1") }).GetChatClient("any");
        var local = await sdk.CompleteChatAsync([new OpenAI.Chat.UserChatMessage("Turn on the flashlight")], new OpenAI.Chat.ChatCompletionOptions { MaxOutputTokenCount = 8, Temperature = 0 });
        Assert.NotEmpty(local.Value.Content[0].Text);
        Assert.Equal("local", local.GetRawResponse().Headers.TryGetValue("X-Tandem-Answered-By", out var who) ? who : null);
        Assert.Equal(0, fixture.Cloud.Requests);

        using var http = new HttpClient();
        var response = await http.PostAsync(url + "/v1/chat/completions", new StringContent(
            """{"messages":[{"role":"user","content":"写一个快速排序"}],"max_tokens":8,"temperature":0}""", Encoding.UTF8, "application/json"));
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("cloud", response.Headers.GetValues("X-Tandem-Answered-By").Single());
        var trace = JsonDocument.Parse(response.Headers.GetValues("X-Tandem-Route").Single()).RootElement;
        Assert.Equal("route", trace.GetProperty("mode").GetString());
        Assert.True(trace.GetProperty("complexity").GetDouble() >= 0.5);
        Assert.Equal(1, fixture.Cloud.Requests);
    }

    [Fact]
    public async Task Streaming_EndsWithTheTrace_AndBadRequestsGet400()
    {
        var (app, url) = await Start();
        await using var _ = app;
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, url + "/v1/chat/completions")
        { Content = new StringContent("""{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":8,"temperature":0,"stream":true}""", Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("local", response.Headers.GetValues("X-Tandem-Decision").Single());
        var events = await ServerHarness.ReadEvents(response);
        Assert.Equal("[DONE]", events[^1]);
        Assert.StartsWith(", there was", ServerHarness.StreamText(events));
        var end = JsonDocument.Parse(events[^2]).RootElement;
        Assert.Equal("local", end.GetProperty("tandem_route").GetProperty("answered_by").GetString());

        var bad = await http.PostAsync(url + "/v1/chat/completions", new StringContent("""{"messages":[]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(400, (int)bad.StatusCode);
        Assert.Contains("'messages' must be a non-empty array", await bad.Content.ReadAsStringAsync());
        bad = await http.PostAsync(url + "/v1/chat/completions", new StringContent("{not json", Encoding.UTF8, "application/json"));
        Assert.Equal(400, (int)bad.StatusCode);
    }
}
