using System.Text;
using System.Text.Json;
using Tandem.Engine;
using Tandem.Engine.Generation;
using Tandem.Engine.Sampling;

namespace Tandem.Tests.Sampling;

/// <summary>The generation loop on the real stories260K model (needs the engine and the tokenizer).</summary>
public class TextGeneratorTests
{
    const string Prompt = "Once upon a time";

    static int[] GoldenGreedy()
    {
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.Golden, "stories260K.golden.json")));
        return golden.RootElement.GetProperty("cases").EnumerateArray()
            .First(c => c.GetProperty("kind").GetString() == "P" && c.GetProperty("input").GetString() == Prompt)
            .GetProperty("greedy").EnumerateArray().Select(x => x.GetInt32()).ToArray();
    }

    static GenerationResult Generate(Model model, GenerationRequest request, int context = 256, Action<string>? onText = null)
    {
        using var session = model.CreateSession(new SessionOptions(context, 1));
        var generator = new TextGenerator(model, session, new Sampler(session.VocabSize, SamplerOptions.Greedy));
        return generator.Generate(request, onText);
    }

    [Fact]
    public void GreedyGenerationMatchesLlamaCppAndStreamsTheSameText()
    {
        using var model = Model.Load(TestData.Stories260K);
        var streamed = new StringBuilder();
        var r = Generate(model, new GenerationRequest { Prompt = Prompt, MaxTokens = 64 }, onText: s => streamed.Append(s));
        Assert.Equal(GoldenGreedy(), r.Tokens);
        Assert.Equal(StopReason.MaxTokens, r.StopReason);
        Assert.Equal(r.Text, streamed.ToString());
        Assert.Equal(model.Tokenizer.Decode(r.Tokens.ToArray()), r.Text);
        Assert.Equal(r.PromptTokens.Count, r.Timings.PromptTokens);
        Assert.Equal(63, r.Timings.DecodedTokens);
        Assert.True(r.Timings.TimeToFirstTokenMs >= r.Timings.PrefillMs);
    }

    [Fact]
    public void StopStringEndsTheTextBeforeIt()
    {
        using var model = Model.Load(TestData.Stories260K);
        string full = Generate(model, new GenerationRequest { Prompt = Prompt, MaxTokens = 64 }).Text;
        string stop = full.Substring(full.Length / 2, 6);
        int at = full.IndexOf(stop, StringComparison.Ordinal);

        var streamed = new StringBuilder();
        var r = Generate(model, new GenerationRequest { Prompt = Prompt, MaxTokens = 64, StopStrings = [stop] }, onText: s => streamed.Append(s));
        Assert.Equal(StopReason.StopString, r.StopReason);
        Assert.Equal(stop, r.MatchedStopString);
        Assert.Equal(full[..at], r.Text);
        Assert.Equal(full[..at], streamed.ToString());
        Assert.True(r.Tokens.Count < 64);
    }

    [Fact]
    public void PromptLongerThanTheContextThrowsAClearError()
    {
        using var model = Model.Load(TestData.Stories260K);
        int promptLength = model.Tokenizer.Encode(Prompt, addSpecial: true, parseSpecial: true).Length;
        var ex = Assert.Throws<ContextOverflowException>(() => Generate(model, new GenerationRequest { Prompt = Prompt }, context: promptLength - 1));
        Assert.Contains($"{promptLength} tokens", ex.Message);
        Assert.Contains($"room for {promptLength - 1}", ex.Message);
    }

    [Fact]
    public void GenerationStopsWhenTheContextIsFull()
    {
        using var model = Model.Load(TestData.Stories260K);
        int promptLength = model.Tokenizer.Encode(Prompt, addSpecial: true, parseSpecial: true).Length;
        var r = Generate(model, new GenerationRequest { Prompt = Prompt, MaxTokens = 64 }, context: promptLength + 4);
        Assert.Equal(StopReason.ContextFull, r.StopReason);
        // 4 generated tokens fill the context; a 5th is still chosen from the last logits
        Assert.Equal(GoldenGreedy()[..5], r.Tokens);
    }

    [Fact]
    public void ZeroMaxTokensOnlyPrefills()
    {
        using var model = Model.Load(TestData.Stories260K);
        var r = Generate(model, new GenerationRequest { Prompt = Prompt, MaxTokens = 0 });
        Assert.Empty(r.Tokens);
        Assert.Equal("", r.Text);
        Assert.Equal(StopReason.MaxTokens, r.StopReason);
    }
}
