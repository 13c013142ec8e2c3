using System.Text.Json;
using Tandem.Gguf;
using Tandem.Provenance;
using Tandem.Tests.Cli;

namespace Tandem.Tests.Provenance;

public class FingerprintCliTests
{
    [Fact]
    public void FingerprintJsonEndToEnd()
    {
        string svg = TestData.Temp("fp.svg");
        try
        {
            var r = TandemProcess.Run("fingerprint", TestData.Model("mini-qwen2-f32.gguf"), TestData.Model("mini-qwen2-q4_k_m.gguf"),
                TestData.Model("mini-qwen3-f32.gguf"), "--json", "--plot", svg);
            Assert.True(r.ExitCode == 0, r.ToString());
            using var doc = JsonDocument.Parse(r.Stdout);
            var pairs = doc.RootElement.GetProperty("pairs").EnumerateArray().ToList();
            Assert.Equal(3, pairs.Count);
            Assert.Equal(3, doc.RootElement.GetProperty("models").GetArrayLength());
            Assert.Equal("derived", pairs[0].GetProperty("verdict").GetString());
            Assert.EndsWith("mini-qwen2-q4_k_m.gguf", pairs[0].GetProperty("b").GetString());
            Assert.Equal("unrelated", pairs[1].GetProperty("verdict").GetString());
            Assert.Equal("unrelated", pairs[2].GetProperty("verdict").GetString());
            var methods = pairs[0].GetProperty("methods");
            foreach (var m in Methods.All) Assert.True(methods.TryGetProperty(m, out _), m);
            Assert.True(methods.GetProperty("layer-invariant").GetProperty("score").GetDouble() > 0.9);
            Assert.Equal(4, methods.GetProperty("layer-invariant").GetProperty("layers").GetArrayLength());
            string plot = File.ReadAllText(svg);
            Assert.StartsWith("<svg", plot);
            Assert.Contains("mini-qwen3-f32.gguf", plot);
            // a line per model in each of the four projection panels, and one per pair in the similarity panel
            Assert.Equal(3 * 4 + 3, plot.Split("<polyline").Length - 1);
        }
        finally { File.Delete(svg); }
    }

    [Fact]
    public void FingerprintTextNamesTheVerdict()
    {
        var output = new StringWriter();
        int code = Tandem.Cli.FingerprintCommand.Run(new Tandem.Cli.FingerprintOptions([TestData.Stories260K, TestData.Stories260K], false, null), output);
        Assert.Equal(0, code);
        Assert.Contains("verdict: derived", output.ToString());
        Assert.Contains("honestagi-raw", output.ToString());
    }

    [Fact]
    public void MissingFileIsAOneLineError()
    {
        var r = TandemProcess.Run("fingerprint", TestData.Stories260K, "/nonexistent/model.gguf");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("tandem: model file not found: /nonexistent/model.gguf", r.Stderr.Trim());
        var one = TandemProcess.Run("fingerprint", TestData.Stories260K);
        Assert.Equal(2, one.ExitCode);
        Assert.Contains("at least two model files", one.Stderr);
    }

    [Fact]
    public void UnsupportedArchitectureAndNonGgufAreClearErrors()
    {
        string gpt2 = TestData.Temp("gpt2.gguf"), junk = TestData.Temp("junk.gguf");
        try
        {
            using (var f = GgufFile.Open(TestData.Stories260K))
                GgufWriter.Write(gpt2, f.MetadataList.With("general.architecture", GgufValue.Of("gpt2")), GgufWriter.TensorsOf(f));
            var e = Assert.Throws<ProvenanceException>(() => WeightReader.Open(gpt2));
            Assert.Contains("architecture 'gpt2' is not supported", e.Message);
            File.WriteAllText(junk, "not a model");
            var r = TandemProcess.Run("fingerprint", TestData.Stories260K, junk);
            Assert.Equal(1, r.ExitCode);
            Assert.Contains("not a readable GGUF file", r.Stderr);
            Assert.Contains(junk, r.Stderr);
        }
        finally { File.Delete(gpt2); File.Delete(junk); }
    }
}
