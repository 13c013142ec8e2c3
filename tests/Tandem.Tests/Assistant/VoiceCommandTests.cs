using Tandem.Assistant;
using Tandem.Cli;
using Tandem.Engine;

namespace Tandem.Tests.Assistant;

/// <summary>The voice-command path end to end on the public-data set, the model fallback under constrained decoding, and arbitration.</summary>
public class VoiceCommandTests
{
    static string SetPath => Path.Combine(TestData.Root, "testdata", "commands", "slurp-device-commands.jsonl");
    static string HeldOutPath => Path.Combine(TestData.Root, "testdata", "commands", "slurp-device-commands-heldout.jsonl");

    [Fact]
    public void PublicDataSet_AtLeast95PercentBecomeTheRightCall()
    {
        var cases = AssistEvalCommand.Load(SetPath);
        Assert.True(cases.Count >= 100);
        foreach (var lang in new[] { "en", "zh", "fr" }) Assert.Contains(cases, c => c.Lang == lang);
        using var model = Model.Load(TestData.Stories260K);
        using var pipeline = new VoiceCommandPipeline(DeviceCommands.Default, model);
        int right = cases.Count(c => pipeline.Handle(c.Text).Call is { } call && VoiceCommandPipeline.SameCall(call, c.Expected));
        Assert.True(right >= Math.Ceiling(0.95 * cases.Count), $"{right}/{cases.Count} right");
    }

    // The held-out set was built after the matcher was first tuned; it scored 44/126 once, and then became development
    // data for issue 8's matcher work (126/126 since). The floor guards against regressions.
    [Fact]
    public void HeldOutSet_IsDisjointFromTheTuningSet_AndKeepsItsMeasuredScore()
    {
        var held = AssistEvalCommand.Load(HeldOutPath);
        var tuning = AssistEvalCommand.Load(SetPath);
        Assert.True(held.Count >= 100);
        foreach (var lang in new[] { "en", "zh", "fr" }) Assert.Contains(held, c => c.Lang == lang);
        var tuningTexts = tuning.Select(c => c.Text.ToLowerInvariant()).ToHashSet();
        Assert.DoesNotContain(held, c => tuningTexts.Contains(c.Text.ToLowerInvariant()));
        static IEnumerable<string> SlurpIds(string path) => File.ReadLines(path)
            .Select(l => System.Text.RegularExpressions.Regex.Match(l, "slurp_id (\\d+)").Groups[1].Value);
        Assert.Empty(SlurpIds(HeldOutPath).Intersect(SlurpIds(SetPath)));

        using var pipeline = new VoiceCommandPipeline(DeviceCommands.Default, null);
        int right = held.Count(c => pipeline.Handle(c.Text).Call is { } call && VoiceCommandPipeline.SameCall(call, c.Expected));
        Assert.True(right >= 120, $"{right}/{held.Count} right on the held-out set (126 since issue 8)");
    }

    static string TestSetPath => Path.Combine(TestData.Root, "testdata", "commands", "slurp-device-commands-test.jsonl");

    // Issue 8's first test set: built before the matcher work, disjoint from both development sets, scored once (49/108
    // with the matcher alone, see testdata/ORIGIN.md). Its misses were then used to improve the matcher, so it is
    // development data now (108/108 since); the floor guards against regressions.
    [Fact]
    public void SlurpTestSet_IsDisjointFromTheOtherSlurpSets_AndKeepsItsScore()
    {
        var test = AssistEvalCommand.Load(TestSetPath);
        Assert.True(test.Count >= 100);
        foreach (var lang in new[] { "en", "zh", "fr" }) Assert.Contains(test, c => c.Lang == lang);
        var devTexts = AssistEvalCommand.Load(SetPath).Concat(AssistEvalCommand.Load(HeldOutPath)).Select(c => c.Text.ToLowerInvariant()).ToHashSet();
        Assert.DoesNotContain(test, c => devTexts.Contains(c.Text.ToLowerInvariant()));
        static IEnumerable<string> EnglishSlurpIds(string path) => File.ReadLines(path).Where(l => l.Contains("\"lang\": \"en\""))
            .Select(l => System.Text.RegularExpressions.Regex.Match(l, "slurp_id (\\d+)").Groups[1].Value);
        Assert.Empty(EnglishSlurpIds(TestSetPath).Intersect(EnglishSlurpIds(SetPath).Concat(EnglishSlurpIds(HeldOutPath))));

        using var pipeline = new VoiceCommandPipeline(DeviceCommands.Default, null);
        int right = test.Count(c => pipeline.Handle(c.Text).Call is { } call && VoiceCommandPipeline.SameCall(call, c.Expected));
        Assert.True(right >= 104, $"{right}/{test.Count} right on the SLURP test set (108 since it became development data)");
    }

    static string HaTestSetPath => Path.Combine(TestData.Root, "testdata", "commands", "ha-device-commands-test.jsonl");

    // Issue 8's second test set: Home Assistant's native-speaker test sentences (en/fr/zh), selected by a written rule
    // and committed before the matcher was changed for it, scored once: 509/554 (91.9 %) with the matcher alone. Its
    // misses then became development data for round two (547/554 since); the floor guards against regressions.
    [Fact]
    public void HomeAssistantTestSet_IsFromItsSourceAndDisjoint_AndKeepsItsMeasuredScore()
    {
        var test = AssistEvalCommand.Load(HaTestSetPath);
        Assert.True(test.Count >= 120);
        foreach (var lang in new[] { "en", "zh", "fr" }) Assert.True(test.Count(c => c.Lang == lang) >= 30, $"fewer than 30 {lang} lines");
        Assert.All(File.ReadLines(HaTestSetPath), l => Assert.Contains("\"source\": \"home-assistant/intents aa55003 tests/", l));
        string handWritten = Path.Combine(TestData.Root, "tests", "Tandem.Tests", "Assistant");
        var devTexts = new[] { SetPath, HeldOutPath, TestSetPath }.SelectMany(AssistEvalCommand.Load).Select(c => c.Text)
            .Concat(new[] { "device-commands.jsonl", "device-commands-heldout.jsonl" }
                .SelectMany(f => File.ReadLines(Path.Combine(handWritten, f)).Where(l => l.Length > 0)
                    .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!)))
            .Select(t => string.Join(' ', t.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToLowerInvariant()).ToHashSet();
        Assert.DoesNotContain(test, c => devTexts.Contains(c.Text.ToLowerInvariant()));
        Assert.Equal(test.Count, test.Select(c => (c.Lang, c.Text.ToLowerInvariant())).Distinct().Count());

        using var pipeline = new VoiceCommandPipeline(DeviceCommands.Default, null);
        int right = test.Count(c => pipeline.Handle(c.Text).Call is { } call && VoiceCommandPipeline.SameCall(call, c.Expected));
        Assert.True(right >= 545, $"{right}/{test.Count} right on the Home Assistant set (547 since it became development data)");
    }

    static string FreshTestSetPath => Path.Combine(TestData.Root, "testdata", "commands", "fresh-device-commands-test.jsonl");

    // Issue 8's test set now: sentences no earlier set or builder's pool held (older Home Assistant test sentences, its
    // English sub-folder tests, xSID alarms in en/zh), selected by a written rule and committed before round two's
    // matcher changes, scored once: 117/118 with the matcher alone (testdata/ORIGIN.md). The floor sits just under it.
    [Fact]
    public void FreshTestSet_IsFromItsSourcesAndDisjoint_AndKeepsItsMeasuredScore()
    {
        var test = AssistEvalCommand.Load(FreshTestSetPath);
        Assert.True(test.Count >= 110);
        foreach (var lang in new[] { "en", "zh", "fr" }) Assert.True(test.Count(c => c.Lang == lang) >= 10, $"fewer than 10 {lang} lines");
        Assert.All(File.ReadLines(FreshTestSetPath), l => Assert.Matches("\"source\": \"(home-assistant/intents [0-9a-f]{7} tests/|xSID 0\\.7 )", l));
        string handWritten = Path.Combine(TestData.Root, "tests", "Tandem.Tests", "Assistant");
        static string Canonical(string t) => string.Join(' ', t.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToLowerInvariant();
        var earlierTexts = new[] { SetPath, HeldOutPath, TestSetPath, HaTestSetPath }.SelectMany(AssistEvalCommand.Load).Select(c => c.Text)
            .Concat(new[] { "device-commands.jsonl", "device-commands-heldout.jsonl" }
                .SelectMany(f => File.ReadLines(Path.Combine(handWritten, f)).Where(l => l.Length > 0)
                    .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!)))
            .Select(Canonical).ToHashSet();
        Assert.DoesNotContain(test, c => earlierTexts.Contains(Canonical(c.Text)));
        Assert.Equal(test.Count, test.Select(c => (c.Lang, Canonical(c.Text))).Distinct().Count());

        using var pipeline = new VoiceCommandPipeline(DeviceCommands.Default, null);
        int right = test.Count(c => pipeline.Handle(c.Text).Call is { } call && VoiceCommandPipeline.SameCall(call, c.Expected));
        Assert.True(right >= 115, $"{right}/{test.Count} right on the fresh test set (measured 117)");
    }

    [Theory]
    [InlineData("please do the thing with the house")]   // the matcher knows no intent here
    [InlineData("set the thermostat")]                   // intent, but no temperature
    public void UnsureUtterances_GoToTheModel_WhichAlwaysGivesAValidCall(string utterance)
    {
        using var model = Model.Load(TestData.Stories260K);
        using var pipeline = new VoiceCommandPipeline(DeviceCommands.Default, model);
        var r = pipeline.Handle(utterance);
        Assert.Equal("model", r.Source);
        Assert.NotNull(r.Call);
        Assert.Empty(DeviceCommands.Default.Validate(r.Call!));

        using var noModel = new VoiceCommandPipeline(DeviceCommands.Default, null);
        var none = noModel.Handle(utterance);
        Assert.Null(none.Call);
        Assert.Equal("none", none.Source);
    }

    [Fact]
    public void Arbitration_PriorityThenConfidenceThenName()
    {
        var call = new ToolCall("lights_set", new Dictionary<string, object> { ["state"] = "on" });
        var arbiter = new CommandArbiter(minConfidence: 0.5);
        Assert.Equal("car", arbiter.Decide([new("phone", 1, 0.99, call), new("car", 2, 0.6, call)])!.Assistant);
        Assert.Equal("phone", arbiter.Decide([new("phone", 1, 0.9, call), new("watch", 1, 0.7, call)])!.Assistant);
        Assert.Equal("a-speaker", arbiter.Decide([new("b-speaker", 1, 0.8, call), new("a-speaker", 1, 0.8, call)])!.Assistant);
        Assert.Equal("watch", arbiter.Decide([new("car", 5, 0.4, call), new("watch", 0, 0.6, call)])!.Assistant); // too unsure to win
        Assert.Null(arbiter.Decide([new("car", 5, 0.4, call)]));
    }
}
