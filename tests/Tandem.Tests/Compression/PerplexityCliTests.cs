using System.Text.Json;
using Tandem.Gguf;
using Tandem.Tests.Cli;

namespace Tandem.Tests.Compression;

/// <summary>The real <c>tandem perplexity / kl / prune</c> processes: JSON output, progress on stderr, one-line errors.</summary>
public class PerplexityCliTests
{
    static JsonElement Json(CliResult r)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = JsonDocument.Parse(r.Stdout);
        return doc.RootElement.Clone();
    }

    static void OneLineError(CliResult r, int exit, string mention)
    {
        Assert.True(r.ExitCode == exit, r.ToString());
        string line = r.Stderr.TrimEnd('\n', '\r');
        Assert.DoesNotContain('\n', line);
        Assert.StartsWith("tandem: ", line);
        Assert.Contains(mention, line);
    }

    [Fact]
    public void Perplexity_Json_ReportsTheWindows()
    {
        var j = Json(TandemProcess.Run("perplexity", "-m", TestData.Stories260K, "-f", PerplexityTests.SampleText, "--ctx", "128", "--chunks", "10", "-t", "2", "--json"));
        Assert.Equal(10, j.GetProperty("chunks").GetInt32());
        Assert.Equal(630, j.GetProperty("scored_tokens").GetInt32());
        Assert.InRange(j.GetProperty("perplexity").GetDouble(), 1.5, 6);
        Assert.True(j.GetProperty("uncertainty").GetDouble() > 0);
    }

    [Fact]
    public void Perplexity_Text_PrintsPlainProgressWhenStderrIsNotATerminal()
    {
        var r = TandemProcess.Run("perplexity", "-m", TestData.Stories260K, "-f", PerplexityTests.SampleText, "--ctx", "128", "--chunks", "4", "-t", "2");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith("PPL = ", r.Stdout);
        Assert.Contains("perplexity: 4/4", r.Stderr);
        Assert.DoesNotContain('\r', r.Stderr);
    }

    [Fact]
    public void Kl_Json_AgainstItself_IsZero()
    {
        string m = TestData.Model("mini-qwen3-q8_0.gguf");
        var j = Json(TandemProcess.Run("kl", "-m", m, "-m2", m, "-f", PerplexityTests.SampleText, "--ctx", "128", "--chunks", "2", "-t", "2", "--json"));
        Assert.Equal(0.0, j.GetProperty("mean_kl").GetDouble());
        Assert.Equal(1.0, j.GetProperty("top1_agreement").GetDouble());
    }

    [Fact]
    public void Kl_WithoutCandidate_IsAUsageError() =>
        OneLineError(TandemProcess.Run("kl", "-m", TestData.Stories260K, "-f", PerplexityTests.SampleText), 2, "-m2");

    [Fact]
    public void Perplexity_MissingText_SaysWhichFile() =>
        OneLineError(TandemProcess.Run("perplexity", "-m", TestData.Stories260K, "-f", "/nonexistent/text.txt"), 1, "/nonexistent/text.txt");

    [Fact]
    public void Prune_Json_WritesTheFileItDescribes()
    {
        string output = TestData.Temp("cli-pruned.gguf");
        try
        {
            var j = Json(TandemProcess.Run("prune", TestData.Stories260K, output, "--drop-layers", "1", "--ffn-keep", "0.5", "--calib-chunks", "2", "-t", "2", "--json"));
            using var f = GgufFile.Open(output);
            Assert.Equal(f.ParameterCount, j.GetProperty("parameters").GetInt64());
            Assert.Equal(4, j.GetProperty("result").GetProperty("block_count").GetInt32());
            Assert.Equal(86, j.GetProperty("result").GetProperty("feed_forward_length").GetInt32());
            Assert.Equal(1, j.GetProperty("dropped_layers").GetArrayLength());
            Assert.Equal(5, j.GetProperty("layer_angular_distance").GetArrayLength());
        }
        finally { File.Delete(output); }
    }

    [Fact]
    public void Prune_UsesTheShippedCalibrationText_ByDefault()
    {
        string output = TestData.Temp("cli-default-calib.gguf");
        try
        {
            var r = TandemProcess.Run("prune", TestData.Stories260K, output, "--heads-keep", "0.5", "--calib-chunks", "1", "-t", "2");
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("heads  8/4 kv -> 4/4 kv", r.Stdout);
            Assert.True(File.Exists(output));
        }
        finally { File.Delete(output); }
    }

    [Fact]
    public void Prune_BadFraction_IsAUsageError_AndWritesNothing()
    {
        string output = TestData.Temp("cli-bad.gguf");
        OneLineError(TandemProcess.Run("prune", TestData.Stories260K, output, "--ffn-keep", "1.5"), 2, "--ffn-keep");
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Prune_TargetWithAmounts_IsAUsageError() =>
        OneLineError(TandemProcess.Run("prune", TestData.Stories260K, TestData.Temp("x.gguf"), "--target-params", "100000", "--drop-layers", "1"), 2, "target");
}
