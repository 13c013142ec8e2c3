using System.ClientModel;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

namespace Tandem.Tests.Server;

/// <summary>The OpenAI wire format over real HTTP: the official OpenAI .NET SDK, raw JSON and raw SSE against a running server.</summary>
public sealed class EndpointTests(StoriesServerFixture fixture) : IClassFixture<StoriesServerFixture>
{
    readonly ServerHarness _h = fixture.Harness;

    ChatClient SdkClient() => new("stories260K", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_h.Url + "/v1") });

    [Fact]
    public async Task OpenAiSdk_ChatCompletion_ReturnsTextFinishReasonAndUsage()
    {
        var result = await SdkClient().CompleteChatAsync([new UserChatMessage("Once upon a time")],
            new ChatCompletionOptions { MaxOutputTokenCount = 20, Temperature = 0 });
        var completion = result.Value;
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.StartsWith(", there was a little", completion.Content[0].Text);
        Assert.Equal(20, completion.Usage.OutputTokenCount);
        Assert.True(completion.Usage.InputTokenCount > 0);
        Assert.Equal(completion.Usage.InputTokenCount + 20, completion.Usage.TotalTokenCount);
        Assert.Equal("stories260K", completion.Model);
    }

    [Fact]
    public async Task OpenAiSdk_Streaming_GivesTheSameTextAsNonStreaming()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 24, Temperature = 0 };
        var whole = (await SdkClient().CompleteChatAsync([new UserChatMessage("Lily had a red ball")], options)).Value.Content[0].Text;
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in SdkClient().CompleteChatStreamingAsync([new UserChatMessage("Lily had a red ball")], options))
        {
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            finish ??= update.FinishReason;
        }
        Assert.Equal(whole, text.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.NotEmpty(whole);
    }

    [Fact]
    public async Task RawSse_ChunksRoleContentFinishUsageThenDone()
    {
        var events = await _h.StreamAsync("v1/chat/completions",
            ServerHarness.Chat("Once upon a time", 8, stream: true, extra: ""","stream_options":{"include_usage":true}"""));
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        string id = chunks[0].GetProperty("id").GetString()!;
        Assert.StartsWith("chatcmpl-", id);
        foreach (var c in chunks)
        {
            Assert.Equal(id, c.GetProperty("id").GetString());
            Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString());
            Assert.Equal("stories260K", c.GetProperty("model").GetString());
        }
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        // the last chunk before [DONE] carries usage and no choices; the one before it the finish reason
        var usage = chunks[^1];
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        Assert.Equal(8, usage.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        var finish = chunks[^2].GetProperty("choices")[0];
        Assert.Equal("length", finish.GetProperty("finish_reason").GetString());
        foreach (var c in chunks[..^2]) Assert.Equal(JsonValueKind.Null, c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind);
        foreach (var c in chunks[..^1]) Assert.Equal(JsonValueKind.Null, c.GetProperty("usage").ValueKind);
        Assert.StartsWith(", there was", ServerHarness.StreamText(events));
    }

    [Fact]
    public async Task Stream_WithoutIncludeUsage_HasNoUsageField()
    {
        var events = await _h.StreamAsync("v1/chat/completions", ServerHarness.Chat("Once upon a time", 3, stream: true));
        foreach (var e in events[..^1]) Assert.False(JsonDocument.Parse(e).RootElement.TryGetProperty("usage", out _));
    }

    [Fact]
    public async Task Completions_NonStreamAndStream_AgreeAndStopStringsCut()
    {
        var (status, body, _) = await _h.PostAsync("v1/completions", """{"prompt":"Once upon a time","max_tokens":16,"temperature":0}""");
        Assert.Equal(200, status);
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        string full = body.GetProperty("choices")[0].GetProperty("text").GetString()!;
        Assert.StartsWith(", there was a little", full);

        var (_, stopped, _) = await _h.PostAsync("v1/completions", """{"prompt":"Once upon a time","max_tokens":16,"temperature":0,"stop":["little"]}""");
        var choice = stopped.GetProperty("choices")[0];
        Assert.Equal(full[..full.IndexOf("little", StringComparison.Ordinal)], choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());

        var events = await _h.StreamAsync("v1/completions", """{"prompt":"Once upon a time","max_tokens":16,"temperature":0,"stream":true}""");
        string streamed = string.Concat(events[..^1].Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.Equal(full, streamed);
    }

    [Fact]
    public async Task Logprobs_ChosenTokenIsTheTopAlternativeUnderGreedy()
    {
        var (status, body, _) = await _h.PostAsync("v1/chat/completions",
            ServerHarness.Chat("Once upon a time", 5, extra: ""","logprobs":true,"top_logprobs":3"""));
        Assert.Equal(200, status);
        var content = body.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content");
        Assert.Equal(5, content.GetArrayLength());
        var text = new StringBuilder();
        foreach (var t in content.EnumerateArray())
        {
            var top = t.GetProperty("top_logprobs");
            Assert.Equal(3, top.GetArrayLength());
            Assert.Equal(t.GetProperty("token").GetString(), top[0].GetProperty("token").GetString());
            float lp = t.GetProperty("logprob").GetSingle();
            Assert.InRange(lp, -50f, 0f);
            Assert.True(top[0].GetProperty("logprob").GetSingle() >= top[1].GetProperty("logprob").GetSingle());
            text.Append(t.GetProperty("token").GetString());
        }
        Assert.Equal(body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), text.ToString());
    }

    [Fact]
    public async Task CompletionLogprobs_UseTheLegacyParallelArrays()
    {
        var (status, body, _) = await _h.PostAsync("v1/completions", """{"prompt":"Once upon a time","max_tokens":6,"temperature":0,"logprobs":2}""");
        Assert.Equal(200, status);
        var choice = body.GetProperty("choices")[0];
        var lp = choice.GetProperty("logprobs");
        var tokens = lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()).ToList();
        Assert.Equal(6, tokens.Count);
        Assert.Equal(choice.GetProperty("text").GetString(), string.Concat(tokens));
        Assert.Equal(6, lp.GetProperty("token_logprobs").GetArrayLength());
        var top = lp.GetProperty("top_logprobs");
        Assert.Equal(6, top.GetArrayLength());
        for (int i = 0; i < 6; i++)
        {
            var alternatives = top[i].EnumerateObject().ToList();
            Assert.Equal(2, alternatives.Count);
            Assert.Equal(tokens[i], alternatives[0].Name); // greedy: the chosen token is the most likely one
            Assert.Equal(lp.GetProperty("token_logprobs")[i].GetSingle(), alternatives[0].Value.GetSingle());
        }
    }

    [Fact]
    public async Task Seed_SameSeedSameText()
    {
        string req = """{"messages":[{"role":"user","content":"A bunny found a carrot"}],"max_tokens":24,"temperature":1.0,"seed":1234}""";
        // Logits depend in their last bits on how a token was batched (a prompt prefilled in one batch, or reused from
        // the prefix cache with only its last token evaluated). At temperature 1 such a difference can, rarely, move a
        // draw across a boundary. The warm-up puts the prompt in a slot's cache; both measured requests reuse that slot, so they take the same path.
        await _h.PostAsync("v1/chat/completions", req);
        var (_, a, _) = await _h.PostAsync("v1/chat/completions", req);
        var (_, b, _) = await _h.PostAsync("v1/chat/completions", req);
        Assert.Equal(a.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(),
                     b.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    static string ChatText(JsonElement body) => body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    [Fact]
    public async Task TinyTopP_IsGreedy_AndFrequencyPenaltyChangesARepetitiveText()
    {
        var (_, greedy, _) = await _h.PostAsync("v1/chat/completions", ServerHarness.Chat("Lily went to the park", 40));
        // top_p keeps only the most likely token, so any seed gives the greedy text
        var (_, nucleus, _) = await _h.PostAsync("v1/chat/completions",
            """{"messages":[{"role":"user","content":"Lily went to the park"}],"max_tokens":40,"temperature":1,"top_p":0.000001,"seed":7}""");
        Assert.Equal(ChatText(greedy), ChatText(nucleus));
        // the greedy text repeats itself ("a big box with a big box"); penalizing repeats must change it
        Assert.Contains("big box with a big box", ChatText(greedy));
        var (status, penalized, _) = await _h.PostAsync("v1/chat/completions", ServerHarness.Chat("Lily went to the park", 40, extra: ""","frequency_penalty":2,"presence_penalty":1"""));
        Assert.Equal(200, status);
        Assert.DoesNotContain("big box with a big box", ChatText(penalized));
    }

    [Fact]
    public async Task Models_ListsTheModelById()
    {
        using var doc = JsonDocument.Parse(await _h.Http.GetStringAsync("v1/models"));
        Assert.Equal("list", doc.RootElement.GetProperty("object").GetString());
        var m = Assert.Single(doc.RootElement.GetProperty("data").EnumerateArray());
        Assert.Equal("stories260K", m.GetProperty("id").GetString());
        Assert.Equal("model", m.GetProperty("object").GetString());
    }

    [Fact]
    public async Task Health_IsOkOnceLoaded_AndMetricsArePrometheusText()
    {
        var health = await _h.Http.GetAsync("health");
        Assert.Equal(200, (int)health.StatusCode);
        await _h.PostAsync("v1/chat/completions", ServerHarness.Chat("Once upon a time", 4));
        var response = await _h.Http.GetAsync("metrics");
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        string metrics = await response.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE tandem_requests_total counter", metrics);
        Assert.Contains("tandem_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"}", metrics);
        Assert.True(ServerHarness.Metric(metrics, "tandem_generated_tokens_total") >= 4);
        Assert.True(ServerHarness.Metric(metrics, "tandem_prompt_tokens_total") >= 1);
        Assert.Contains("tandem_queue_depth{model=\"stories260K\"} 0", metrics);
        Assert.Contains("# TYPE tandem_time_to_first_token_seconds histogram", metrics);
        Assert.Contains("tandem_inter_token_latency_seconds_bucket{le=\"+Inf\"}", metrics);
        // every sample line is "name[{labels}] value"
        foreach (var line in metrics.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            if (!line.StartsWith('#'))
                Assert.Matches(@"^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$", line);
        double first = ServerHarness.Metric(metrics, "tandem_time_to_first_token_seconds_count");
        Assert.True(first >= 1);
    }

    [Theory]
    [InlineData("{\"messages\": [", "not valid JSON")]
    [InlineData("[1,2]", "must be a JSON object")]
    [InlineData("{}", "'messages' is required")]
    [InlineData("{\"messages\": \"hi\"}", "'messages' must be an array")]
    [InlineData("{\"messages\": []}", "at least one message")]
    [InlineData("{\"messages\": [{\"role\": 5, \"content\": \"x\"}]}", "'messages[0].role' must be a string")]
    [InlineData("{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", "must be one of")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": 7}]}", "'messages[0].content' must be a string")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": \"ten\"}", "'max_tokens' must be an integer")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"max_tokens\": 0}", "'max_tokens' must be between 1")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": \"hot\"}", "'temperature' must be a number")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"temperature\": 3}", "'temperature' must be between 0 and 2")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stream\": \"yes\"}", "'stream' must be a boolean")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"stop\": 3}", "'stop' must be a string or an array")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"n\": 2}", "'n' must be 1")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 2}", "requires 'logprobs'")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"seed\": 1.5}", "'seed' must be an integer")]
    public async Task BadRequests_Get400WithOpenAiErrorNamingTheProblem(string body, string expected)
    {
        var (status, json, _) = await _h.PostAsync("v1/chat/completions", body);
        Assert.Equal(400, status);
        var error = json.GetProperty("error");
        Assert.Contains(expected, error.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.True(error.TryGetProperty("param", out _));
        Assert.True(error.TryGetProperty("code", out _));
        // and the server still answers
        var (ok, _, _) = await _h.PostAsync("v1/chat/completions", ServerHarness.Chat("Once upon a time", 2));
        Assert.Equal(200, ok);
    }

    [Fact]
    public async Task PromptLongerThanTheContext_Gets400NamingTheLimit()
    {
        string prompt = string.Concat(Enumerable.Repeat("Once upon a time there was a cat. ", 60));
        var (status, json, _) = await _h.PostAsync("v1/completions", JsonSerializer.Serialize(new { prompt, max_tokens = 4 }));
        Assert.Equal(400, status);
        var error = json.GetProperty("error");
        Assert.Contains("context length is 256", error.GetProperty("message").GetString());
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task CompletionRunsIntoTheContext_EndsWithLength()
    {
        // no max_tokens: generation goes on until the slot's 256 positions are used (or the model ends the story)
        var (status, json, _) = await _h.PostAsync("v1/completions", """{"prompt":"Once upon a time","temperature":0,"max_tokens":1000}""");
        Assert.Equal(200, status);
        var usage = json.GetProperty("usage");
        string finish = json.GetProperty("choices")[0].GetProperty("finish_reason").GetString()!;
        // all 256 positions hold prompt and generated tokens; the last generated token needs no position of its own
        if (finish == "length") Assert.Equal(257, usage.GetProperty("total_tokens").GetInt32());
        else Assert.Equal("stop", finish);
    }

    [Fact]
    public async Task OversizedBody_Gets413()
    {
        string big = new('a', 100 * 1024);
        var (status, json, _) = await _h.PostAsync("v1/completions", JsonSerializer.Serialize(new { prompt = big }));
        Assert.Equal(413, status);
        Assert.Contains("65536 bytes", json.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task OversizedChunkedBody_Gets413_AndUnknownPathsShareOneMetricLabel()
    {
        // no Content-Length: Kestrel stops reading at the limit
        var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { prompt = new string('a', 100 * 1024) }))));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var response = await _h.Http.SendAsync(request);
        Assert.Equal(413, (int)response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Contains("65536 bytes", doc.RootElement.GetProperty("error").GetProperty("message").GetString());

        await _h.Http.GetAsync("no/such/path/\"quoted\"");
        string metrics = await _h.MetricsAsync();
        Assert.Contains("tandem_requests_total{endpoint=\"other\",status=\"404\"}", metrics);
        Assert.DoesNotContain("quoted", metrics);
    }

    [Fact]
    public async Task UnknownModel_WithOneModelServed_UsesIt_AndUnknownPath404()
    {
        var (status, json, _) = await _h.PostAsync("v1/chat/completions", """{"model":"gpt-4o","messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":2}""");
        Assert.Equal(200, status);
        Assert.Equal("stories260K", json.GetProperty("model").GetString());
        var missing = await _h.Http.GetAsync("v1/nothing");
        Assert.Equal(404, (int)missing.StatusCode);
        using var doc = JsonDocument.Parse(await missing.Content.ReadAsStringAsync());
        Assert.True(doc.RootElement.TryGetProperty("error", out _));
    }

    [Fact]
    public async Task RepeatedPrompt_ReusesThePrefixCache()
    {
        string system = "You are a storyteller who tells short stories about animals in the forest.";
        string req(string user) => $$"""{"messages":[{"role":"system","content":"{{system}}"},{"role":"user","content":"{{user}}"}],"max_tokens":4,"temperature":0}""";
        await _h.PostAsync("v1/chat/completions", req("A fox"));
        var (_, json, _) = await _h.PostAsync("v1/chat/completions", req("A bear"));
        int cached = json.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
        int prompt = json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        Assert.True(cached >= 10, $"cached {cached} of {prompt}");
        Assert.True(cached < prompt);
    }
}
