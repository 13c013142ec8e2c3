using System.Text.Json;
using Tandem.Gguf;

namespace Tandem.Tests.Cli;

/// <summary>Runs the real <c>tandem</c> process. Commands that need the engine (run, chat) pass once it is implemented.</summary>
public class CliTests
{
    static JsonElement ParseSingleJson(CliResult r)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = JsonDocument.Parse(r.Stdout); // throws unless stdout is exactly one JSON value
        Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        return doc.RootElement.Clone();
    }

    static void AssertOneLineError(CliResult r, int expectedExit, params string[] mentions)
    {
        Assert.True(r.ExitCode == expectedExit, r.ToString());
        string line = r.Stderr.TrimEnd('\n', '\r');
        Assert.False(line.Contains('\n'), "expected one line on stderr:\n" + r.Stderr);
        Assert.StartsWith("tandem: ", line);
        Assert.DoesNotContain("   at ", line);
        foreach (var m in mentions) Assert.Contains(m, line);
    }

    static Dictionary<string, (int Count, long Bytes)> TypesOf(string path)
    {
        using var f = GgufFile.Open(path);
        return f.Tensors.GroupBy(t => GgmlTypeInfo.Of(t.Type).Name).ToDictionary(g => g.Key, g => (g.Count(), g.Sum(t => t.ByteSize)));
    }

    static void AssertTensorTypes(JsonElement json, string path)
    {
        var expected = TypesOf(path);
        var actual = json.GetProperty("tensor_types").EnumerateArray()
            .ToDictionary(t => t.GetProperty("type").GetString()!, t => (t.GetProperty("count").GetInt32(), t.GetProperty("bytes").GetInt64()));
        Assert.Equal(expected.OrderBy(kv => kv.Key), actual.OrderBy(kv => kv.Key));
        Assert.Equal(expected.Values.Sum(v => v.Count), json.GetProperty("tensor_count").GetInt32());
    }

    [Fact]
    public void InspectStories260K()
    {
        var json = ParseSingleJson(TandemProcess.Run("inspect", TestData.Stories260K, "--json"));
        Assert.Equal("llama", json.GetProperty("architecture").GetString());
        var h = json.GetProperty("hyperparameters");
        Assert.Equal(64, h.GetProperty("embedding_length").GetInt32());
        Assert.Equal(5, h.GetProperty("block_count").GetInt32());
        Assert.Equal(8, h.GetProperty("attention.head_count").GetInt32());
        Assert.Equal(4, h.GetProperty("attention.head_count_kv").GetInt32());
        Assert.Equal(512, json.GetProperty("tokenizer").GetProperty("vocab_size").GetInt32());
        Assert.Equal("llama", json.GetProperty("tokenizer").GetProperty("model").GetString());
        Assert.Equal(new FileInfo(TestData.Stories260K).Length, json.GetProperty("file_size_bytes").GetInt64());
        using (var f = GgufFile.Open(TestData.Stories260K))
            Assert.Equal(f.Tensors.Sum(t => t.ElementCount), json.GetProperty("parameter_count").GetInt64());
        AssertTensorTypes(json, TestData.Stories260K);
        Assert.Equal("F32", Assert.Single(json.GetProperty("tensor_types").EnumerateArray()).GetProperty("type").GetString());
    }

    [Fact]
    public void InspectQuantizedMiniQwen2ListsEveryTypeWithCounts()
    {
        string path = TestData.Model("mini-qwen2-q4_k_m.gguf");
        var json = ParseSingleJson(TandemProcess.Run("inspect", path, "--json"));
        Assert.Equal("qwen2", json.GetProperty("architecture").GetString());
        Assert.Equal(256, json.GetProperty("hyperparameters").GetProperty("embedding_length").GetInt32());
        Assert.Equal(2, json.GetProperty("hyperparameters").GetProperty("attention.head_count_kv").GetInt32());
        Assert.Equal(1e6, json.GetProperty("hyperparameters").GetProperty("rope.freq_base").GetDouble());
        var tok = json.GetProperty("tokenizer");
        Assert.Equal("gpt2", tok.GetProperty("model").GetString());
        Assert.Equal("qwen2", tok.GetProperty("pre").GetString());
        Assert.Equal(4099, tok.GetProperty("vocab_size").GetInt32());
        Assert.Equal("chatml", json.GetProperty("chat_template").GetString());
        AssertTensorTypes(json, path);
        var types = json.GetProperty("tensor_types").EnumerateArray().Select(t => t.GetProperty("type").GetString()).ToHashSet();
        Assert.Contains("Q4_K", types);
        Assert.Contains("Q6_K", types);
    }

    [Fact]
    public void InspectTextShowsTypeCounts()
    {
        string path = TestData.Model("mini-qwen2-q3_k_m.gguf");
        var r = TandemProcess.Run("inspect", path);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("qwen2", r.Stdout);
        foreach (var (type, (count, _)) in TypesOf(path))
            Assert.Matches($@"(?m)^\s+{type}\s+{count} tensors", r.Stdout);
        Assert.True(TypesOf(path).Count >= 3, "Q3_K_M mixes several types");
    }

    [Fact]
    public void InspectNotAGgufFileFailsWithOneLineNamingTheFile()
    {
        string path = TestData.Temp("not-a-model.gguf");
        File.WriteAllText(path, "this is not a model\n");
        AssertOneLineError(TandemProcess.Run("inspect", path), 1, "not-a-model.gguf", "GGUF");
    }

    [Fact]
    public void InspectTruncatedFileFails()
    {
        string path = TestData.Temp("truncated.gguf");
        File.WriteAllBytes(path, File.ReadAllBytes(TestData.Stories260K)[..200]);
        AssertOneLineError(TandemProcess.Run("inspect", path), 1, "truncated.gguf");
    }

    [Fact]
    public void MissingModelFileFails()
    {
        string path = Path.Combine(Path.GetTempPath(), "tandem-no-such-model.gguf");
        AssertOneLineError(TandemProcess.Run("inspect", path), 1, "tandem-no-such-model.gguf");
        AssertOneLineError(TandemProcess.Run("run", "-m", path, "-p", "hi"), 1, "tandem-no-such-model.gguf");
        AssertOneLineError(TandemProcess.Run("run", "-f", path + ".txt"), 1, "tandem-no-such-model.gguf.txt");
    }

    [Fact]
    public void UnknownOptionIsAUsageError()
    {
        AssertOneLineError(TandemProcess.Run("run", "-p", "hi", "--bogus"), 2, "--bogus", "tandem run --help");
        AssertOneLineError(TandemProcess.Run("inspect", TestData.Stories260K, "--nope"), 2, "--nope");
    }

    [Fact]
    public void BadArgumentsAreUsageErrors()
    {
        AssertOneLineError(TandemProcess.Run("frobnicate"), 2, "frobnicate");
        AssertOneLineError(TandemProcess.Run("run", "-p", "hi", "--temp", "warm"), 2, "--temp", "warm");
        AssertOneLineError(TandemProcess.Run("run", "-p", "hi", "-n"), 2, "--n-predict");
        AssertOneLineError(TandemProcess.Run("run", "-n", "3"), 2, "prompt");
        AssertOneLineError(TandemProcess.Run("run", "-p", "hi", "--top-p", "1.5"), 2, "--top-p");
        AssertOneLineError(TandemProcess.Run("inspect"), 2, "model file");
        AssertOneLineError(TandemProcess.Run("run", "-p", "hi", "-f", "prompt.txt"), 2, "--file");
        AssertOneLineError(TandemProcess.Run("run", "-p", "hi", "--seed", "-5"), 2, "--seed");
        AssertOneLineError(TandemProcess.Run("chat", "extra"), 2, "extra");
        Assert.Equal(2, TandemProcess.Run().ExitCode);
    }

    [Fact]
    public void HelpListsCommandsAndOptions()
    {
        var r = TandemProcess.Run("--help");
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (var c in new[] { "run", "chat", "inspect" }) Assert.Contains("tandem " + c, r.Stdout);

        r = TandemProcess.Run("run", "--help");
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (var o in new[] { "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty", "--seed", "--json", "-n", "-c", "-t" })
            Assert.Contains(o, r.Stdout);
        Assert.Contains("--system", TandemProcess.Run("chat", "--help").Stdout);
        Assert.Contains("--json", TandemProcess.Run("help", "inspect").Stdout);
    }

    // ---- these need the engine (Model.Load, tokenizer, forward pass) ----

    [Fact]
    public void GreedyRunOnTheEmbeddedModelMatchesLlamaCpp()
    {
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.Golden, "stories260K.golden.json")));
        var @case = golden.RootElement.GetProperty("cases").EnumerateArray()
            .First(c => c.GetProperty("kind").GetString() == "P" && c.GetProperty("input").GetString() == "Once upon a time");
        int[] Ids(JsonElement a) => a.EnumerateArray().Select(x => x.GetInt32()).ToArray();

        var json = ParseSingleJson(TandemProcess.Run("run", "-p", "Once upon a time", "-n", "64", "--temp", "0", "--json"));
        Assert.Equal("stories260K.gguf", json.GetProperty("model").GetString());
        Assert.Equal(Ids(@case.GetProperty("tokens")), Ids(json.GetProperty("prompt_tokens")));
        Assert.Equal(Ids(@case.GetProperty("greedy")), Ids(json.GetProperty("tokens")));
        Assert.False(string.IsNullOrWhiteSpace(json.GetProperty("text").GetString()));
        var t = json.GetProperty("timings");
        foreach (var k in new[] { "load_ms", "ttft_ms", "prefill_tok_s", "decode_tok_s" })
            Assert.True(t.GetProperty(k).GetDouble() > 0, k);
        Assert.True(json.GetProperty("peak_rss_bytes").GetInt64() > 1 << 20);
    }

    [Fact]
    public void SameSeedSameTokensAcrossRuns()
    {
        string[] args = ["run", "-p", "Once upon a time", "-n", "40", "--temp", "1.0", "--seed", "1234", "--json"];
        var a = ParseSingleJson(TandemProcess.Run(args));
        var b = ParseSingleJson(TandemProcess.Run(args));
        Assert.Equal(1234UL, a.GetProperty("seed").GetUInt64());
        Assert.Equal(a.GetProperty("tokens").GetRawText(), b.GetProperty("tokens").GetRawText());
        var c = ParseSingleJson(TandemProcess.Run([.. args[..^3], "--seed", "99", "--json"]));
        Assert.NotEqual(a.GetProperty("tokens").GetRawText(), c.GetProperty("tokens").GetRawText());
    }

    [Fact]
    public void StreamingRunEchoesPromptAndPrintsSummary()
    {
        var r = TandemProcess.Run("run", "-p", "Once upon a time", "-n", "16", "--temp", "0");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith("Once upon a time", r.Stdout);
        Assert.True(r.Stdout.Trim().Length > "Once upon a time".Length);
        foreach (var s in new[] { "load", "ttft", "prefill", "decode", "tok/s", "peak RSS" }) Assert.Contains(s, r.Stderr);
    }

    [Fact]
    public void ChatKeepsTheCacheBetweenTurns()
    {
        const string first = "Once upon a time there was a little girl named Lily who liked to play in the park with her big red ball and her dog";
        var r = TandemProcess.RunWithInput(first + "\nHi\n", "chat", "--temp", "0", "-n", "12", "-c", "512", "--stats");
        Assert.True(r.ExitCode == 0, r.ToString());
        var prefills = System.Text.RegularExpressions.Regex.Matches(r.Stderr, @"prefill\s+[\d.]+ ms\s+(\d+) tokens")
            .Select(m => int.Parse(m.Groups[1].Value)).ToArray();
        Assert.Equal(2, prefills.Length);
        // the second turn evaluates only what is new (at most the reply and "Hi" with its markup), not the first message again
        Assert.True(prefills[1] < prefills[0], $"second turn evaluated {prefills[1]} tokens, first {prefills[0]}");
    }
}
