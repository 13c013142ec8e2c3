using System.Text.Json;
using Tandem.Tests.Cli;

namespace Tandem.Tests.Routing;

/// <summary>The real <c>tandem</c> process: ask (local and against a loopback cloud) and train-router.</summary>
public sealed class RoutingCliTests(HybridFixture fixture) : IClassFixture<HybridFixture>
{
    static string Data(string name) => Path.Combine(TestData.Root, "src", "Tandem.Routing", "Data", name);

    [Fact]
    public void Ask_LocalOnly_AnswersWithTheEmbeddedModel_AndExplains()
    {
        var r = TandemProcess.Run("ask", "Once upon a time", "-n", "12", "--temp", "0", "--explain", "-t", "1");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith(", there was a little", r.Stdout);
        Assert.Contains("route: mode=local-only", r.Stderr);
        Assert.Contains("answered_by=local", r.Stderr);
    }

    [Fact]
    public void Ask_Route_SendsAHardRequestToTheCloud()
    {
        fixture.Cloud.Reset();
        var r = TandemProcess.Run("ask", "写一个快速排序", "--cloud", fixture.Cloud.Url, "--cloud-model", "stories260K", "-n", "8", "--temp", "0", "--json", "-t", "1");
        Assert.True(r.ExitCode == 0, r.ToString());
        var trace = JsonDocument.Parse(r.Stdout).RootElement.GetProperty("trace");
        Assert.Equal("cloud", trace.GetProperty("answered_by").GetString());
        Assert.Equal("route", trace.GetProperty("mode").GetString());
        Assert.Equal(1, fixture.Cloud.Requests);
    }

    [Fact]
    public void Ask_BadArguments_AreUsageErrors()
    {
        var r = TandemProcess.Run("ask", "hi", "--mode", "cloud-only");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("needs --cloud URL", r.Stderr);
        r = TandemProcess.Run("ask", "hi", "--cloud", "http://127.0.0.1:1/v1", "--cloud-model", "m", "--mode", "sideways");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("unknown routing mode 'sideways'", r.Stderr);
    }

    [Fact]
    public void TrainRouter_WritesAModelAndReportsHeldOutAccuracy()
    {
        string output = TestData.Temp("router.json");
        var r = TandemProcess.Run("train-router", "--data", Data("router-train.jsonl"), "--data", Data("public/public-train.jsonl"),
            "--data", Data("public/public-dev-train.jsonl"), "--data", Data("public/public-dev-train2.jsonl"), "--test", Data("router-heldout.jsonl"), "-o", output);
        Assert.True(r.ExitCode == 0, r.ToString());
        int publicCount = new[] { "public-train.jsonl", "public-dev-train.jsonl", "public-dev-train2.jsonl" }.Sum(f => File.ReadLines(Data("public/" + f)).Count());
        Assert.Contains($"trained on {192 + publicCount} prompts", r.Stdout);
        Assert.Contains("test:  accuracy", r.Stdout);
        Assert.True(File.Exists(output));
        Assert.Equal(File.ReadAllText(Data("router-weights.json")), File.ReadAllText(output)); // the shipped weights are reproducible

        string bad = TestData.Temp("bad.jsonl");
        File.WriteAllText(bad, "{\"prompt\":\"hi\"}\n");
        string missing = TestData.Temp("never.json");
        r = TandemProcess.Run("train-router", "--data", bad, "-o", missing);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("bad.jsonl:1:", r.Stderr);
        Assert.False(File.Exists(missing));
    }

    [Fact]
    public void TrainRouter_CrossValidates_WithoutWritingAModelUnlessAsked()
    {
        string misses = TestData.Temp("cv-misses.jsonl");
        var r = TandemProcess.Run("train-router", "--data", Data("router-train.jsonl"), "--cv", "3", "--epochs", "20", "--cv-misses", misses);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("3-fold cross-validation over 192 training prompts", r.Stdout);
        Assert.Contains("where length misleads", r.Stdout);
        Assert.Contains("lang fr", r.Stdout);
        Assert.DoesNotContain("trained on", r.Stdout); // no -o: nothing trained on everything, nothing written
        foreach (var line in File.ReadLines(misses)) Assert.Contains("\"score\":", line);

        var bad = TandemProcess.Run("train-router", "--data", Data("router-train.jsonl"), "--cv", "3", "--balance", "sideways");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--balance: expected none, label or language-label, got 'sideways'", bad.Stderr);
        Assert.Equal(2, TandemProcess.Run("train-router", "--data", Data("router-train.jsonl"), "--cv", "1").ExitCode);
    }

    [Fact]
    public void RouteEval_ReportsAccuracyConfusionCurveAndLatency()
    {
        string data = TestData.Temp("route-eval.jsonl");
        File.WriteAllLines(data,
        [
            """{"prompt": "Turn on the flashlight", "label": "local", "lang": "en"}""",
            """{"prompt": "打开客厅的灯", "label": "local", "lang": "zh"}""",
            """{"prompt": "Allume la lumière du salon", "label": "local", "lang": "fr"}""",
            """{"prompt": "写一个快速排序", "label": "cloud", "lang": "zh"}""",
            """{"prompt": "x+y=4z, xy=4z², express x−y in z", "label": "cloud", "lang": "en"}""",
            """{"prompt": "Turn on the flashlight", "label": "cloud", "lang": "en"}""", // deliberately mislabelled: one error
        ]);
        string svg = TestData.Temp("route-eval.svg");
        var r = TandemProcess.Run("route-eval", data, "--json", "--plot", svg, "--passes", "2");
        Assert.True(r.ExitCode == 0, r.ToString());
        var j = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(6, j.GetProperty("prompts").GetInt32());
        var c = j.GetProperty("confusion");
        Assert.Equal(2, c.GetProperty("cloud_to_cloud").GetInt32());
        Assert.Equal(1, c.GetProperty("cloud_to_local").GetInt32());
        Assert.Equal(3, c.GetProperty("local_to_local").GetInt32());
        Assert.Equal(5 / 6.0, c.GetProperty("accuracy").GetDouble(), 6);
        Assert.Equal(4 / 6.0, c.GetProperty("local_share").GetDouble(), 6);
        Assert.Equal(["en", "fr", "zh"], j.GetProperty("by_language").EnumerateArray().Select(l => l.GetProperty("name").GetString()));
        var curve = j.GetProperty("curve").EnumerateArray().ToList();
        Assert.Equal(101, curve.Count);
        Assert.Equal(1.0, curve[0].GetProperty("cloud_share").GetDouble()); // threshold 0 sends everything to the cloud
        Assert.Equal(1.0, curve[0].GetProperty("quality").GetDouble());
        var shares = curve.Select(p => p.GetProperty("cloud_share").GetDouble()).ToList();
        Assert.Equal(shares.OrderByDescending(x => x), shares); // a higher threshold never sends more to the cloud
        Assert.Equal(12, j.GetProperty("decisions_timed").GetInt32());
        Assert.InRange(j.GetProperty("decision_ms_p50").GetDouble(), 0, j.GetProperty("decision_ms_p99").GetDouble());
        string plot = File.ReadAllText(svg);
        Assert.StartsWith("<svg", plot);
        Assert.Contains("<polyline", plot);
        Assert.Contains("length only", plot);

        var text = TandemProcess.Run("route-eval", data);
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("accuracy      83.3 % (5/6)", text.Stdout);
        Assert.Contains("decision latency p50", text.Stdout);

        File.WriteAllText(data, "{\"prompt\": \"hi\", \"label\": \"maybe\"}\n");
        var bad = TandemProcess.Run("route-eval", data);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("route-eval.jsonl:1: expected", bad.Stderr);
        Assert.Equal(2, TandemProcess.Run("route-eval").ExitCode);
    }
}
