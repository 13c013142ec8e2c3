using Microsoft.Extensions.AI;
using Tandem.Engine;
using Tandem.Engine.Generation;
using Tandem.Engine.Sampling;
using Tandem.Routing;

namespace Tandem.Tests.Routing;

/// <summary>One stories260K client shared by a class's tests (they run one at a time).</summary>
public sealed class LocalStoriesFixture : IDisposable
{
    public LocalChatClient Client { get; } = LocalChatClient.Load(TestData.Stories260K, new LocalChatClientOptions { ContextLength = 256, Threads = 1 });
    public void Dispose() => Client.Dispose();
}

public sealed class LocalChatClientTests(LocalStoriesFixture fixture) : IClassFixture<LocalStoriesFixture>
{
    readonly LocalChatClient _client = fixture.Client;
    static List<ChatMessage> Ask(string text) => [new(ChatRole.User, text)];

    [Fact]
    public async Task Greedy_MatchesTheEnginesTextGenerator_WithUsage()
    {
        var r = await _client.GetResponseAsync(Ask("Once upon a time"), new ChatOptions { Temperature = 0, MaxOutputTokens = 20 });
        using var model = Model.Load(TestData.Stories260K);
        using var session = model.CreateSession(new SessionOptions(256, 1));
        var expected = new TextGenerator(model, session, new Sampler(session.VocabSize, SamplerOptions.Greedy))
            .Generate(new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 20 });
        Assert.Equal(expected.Text, r.Text);
        Assert.StartsWith(", there was a little", r.Text);
        Assert.Equal(ChatFinishReason.Length, r.FinishReason);
        Assert.Equal(expected.PromptTokens.Count, r.Usage!.InputTokenCount);
        Assert.Equal(20, r.Usage.OutputTokenCount);
        Assert.Equal("stories260K", r.ModelId);
    }

    [Fact]
    public async Task Streaming_GivesTheSameText()
    {
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 24 };
        var whole = (await _client.GetResponseAsync(Ask("Lily had a red ball"), options)).Text;
        var parts = new List<string>();
        await foreach (var u in _client.GetStreamingResponseAsync(Ask("Lily had a red ball"), options)) if (u.Text.Length > 0) parts.Add(u.Text);
        Assert.True(parts.Count > 3);
        Assert.Equal(whole, string.Concat(parts));
    }

    [Fact]
    public async Task StopSequence_EndsTheAnswerBeforeIt()
    {
        var full = (await _client.GetResponseAsync(Ask("Once upon a time"), new ChatOptions { Temperature = 0, MaxOutputTokens = 20 })).Text;
        var r = await _client.GetResponseAsync(Ask("Once upon a time"), new ChatOptions { Temperature = 0, MaxOutputTokens = 20, StopSequences = ["little"] });
        Assert.Equal(full[..full.IndexOf("little", StringComparison.Ordinal)], r.Text);
        Assert.Equal(ChatFinishReason.Stop, r.FinishReason);
    }

    [Fact]
    public async Task Seed_MakesSamplingRepeatable_AndTemperatureChangesIt()
    {
        var o = new ChatOptions { Temperature = 1.0f, TopK = 40, TopP = 0.95f, Seed = 42, MaxOutputTokens = 24 };
        var a = (await _client.GetResponseAsync(Ask("Once upon a time"), o)).Text;
        var b = (await _client.GetResponseAsync(Ask("Once upon a time"), o)).Text;
        var other = (await _client.GetResponseAsync(Ask("Once upon a time"), new ChatOptions { Temperature = 1.0f, Seed = 7, MaxOutputTokens = 24 })).Text;
        Assert.Equal(a, b);
        Assert.NotEqual(a, other);
    }

    [Fact]
    public async Task ConfidenceProbe_MeasuresTheFirstTokens_AndCanStop()
    {
        var probe = new ConfidenceProbe { Window = 6 };
        var o = new ChatOptions { Temperature = 0, MaxOutputTokens = 20, AdditionalProperties = new() { [LocalChatClient.ConfidenceKey] = probe } };
        var r = await _client.GetResponseAsync(Ask("Once upon a time"), o);
        Assert.Equal(6, probe.Tokens);
        Assert.InRange(probe.MeanLogProb, -5, 0);
        Assert.True(probe.MeanEntropy > 0);
        Assert.Equal(20, r.Usage!.OutputTokenCount);

        var stopper = new ConfidenceProbe { Window = 4, ShouldStop = _ => true };
        o.AdditionalProperties[LocalChatClient.ConfidenceKey] = stopper;
        r = await _client.GetResponseAsync(Ask("Once upon a time"), o);
        Assert.True(stopper.Stopped);
        Assert.Equal(3, r.Usage!.OutputTokenCount); // stopped when the 4th token was judged
    }

    [Fact]
    public async Task ChatML_ModelGetsItsTemplate_AndBadInputIsRefused()
    {
        using var qwen = LocalChatClient.Load(TestData.Model("mini-qwen2-q8_0.gguf"), new LocalChatClientOptions { ContextLength = 128, Threads = 1 });
        var r = await qwen.GetResponseAsync([new(ChatRole.System, "Be brief."), new(ChatRole.User, "Hello")], new ChatOptions { Temperature = 0, MaxOutputTokens = 4 });
        int expected = qwen.Model.Tokenizer.Encode("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", true, true).Length;
        Assert.Equal(expected, r.Usage!.InputTokenCount);
        await Assert.ThrowsAsync<ArgumentException>(() => qwen.GetResponseAsync([], new ChatOptions()));
        await Assert.ThrowsAsync<ContextOverflowException>(() => qwen.GetResponseAsync(Ask(string.Concat(Enumerable.Repeat("hello world ", 200))), new ChatOptions()));
    }
}

public sealed class LocalChatClientCancellationTests(LocalStoriesFixture fixture) : IClassFixture<LocalStoriesFixture>
{
    [Fact]
    public async Task AbandonedStream_FreesTheModelForTheNextRequest()
    {
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 200 };
        await foreach (var u in fixture.Client.GetStreamingResponseAsync([new(ChatRole.User, "Once upon a time")], options))
            if (u.Text.Length > 0) break; // stop reading after the first piece
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => fixture.Client.GetResponseAsync([new(ChatRole.User, "Once upon a time")], options, cts.Token));
        var r = await fixture.Client.GetResponseAsync([new(ChatRole.User, "Once upon a time")], new ChatOptions { Temperature = 0, MaxOutputTokens = 5 });
        Assert.Equal(5, r.Usage!.OutputTokenCount);
    }
}
