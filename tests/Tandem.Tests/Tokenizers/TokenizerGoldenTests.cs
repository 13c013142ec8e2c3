using System.Text;
using System.Text.Json;
using Tandem.Tokenizers;

namespace Tandem.Tests.Tokenizers;

/// <summary>Tokenization of the golden prompts (llama.cpp's output) for every shipped model.</summary>
public class TokenizerGoldenTests
{
    public static TheoryData<string> GoldenFiles()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(TestData.Golden, "*.golden.json").Order()) data.Add(Path.GetFileName(f));
        return data;
    }

    static string ModelPath(string golden)
    {
        string model = golden[..^".golden.json".Length];
        return model == "stories260K" ? TestData.Stories260K : TestData.Model(model + ".gguf");
    }

    static List<(string Kind, string Input, int[] Tokens)> Cases(string golden)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestData.Golden, golden)));
        var list = new List<(string, string, int[])>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            string kind = c.GetProperty("kind").GetString()!;
            if (kind is not ("T" or "P")) continue;
            list.Add((kind, c.GetProperty("input").GetString()!, c.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray()));
        }
        return list;
    }

    [Theory]
    [MemberData(nameof(GoldenFiles))]
    public void TokenizesGoldenPromptsExactly(string golden)
    {
        var tok = TokenizerCache.Gguf(ModelPath(golden));
        var cases = Cases(golden);
        Assert.NotEmpty(cases);
        foreach (var (kind, input, expected) in cases)
        {
            var ids = tok.Encode(input, addSpecial: kind == "P", parseSpecial: true);
            Assert.True(expected.SequenceEqual(ids), $"{golden} {kind} '{input}': expected {string.Join(' ', expected)}, got {string.Join(' ', ids)}");
        }
    }

    [Theory]
    [MemberData(nameof(GoldenFiles))]
    public void StreamingDecodeOfGoldenPromptsEqualsFullDecode(string golden)
    {
        var tok = TokenizerCache.Gguf(ModelPath(golden));
        foreach (var (_, input, expected) in Cases(golden))
        {
            foreach (bool special in new[] { false, true })
            {
                var dec = new StreamingDecoder(tok, special) { StripLeadingSpace = true };
                var sb = new StringBuilder();
                foreach (var id in expected)
                {
                    string chunk = dec.Push(id);
                    Assert.DoesNotContain('\uFFFD', chunk);
                    sb.Append(chunk);
                }
                sb.Append(dec.Flush());
                Assert.Equal(tok.Decode(expected, special), sb.ToString());
            }
            // with special tokens rendered, the text comes back (SentencePiece: after BOS the added space stays, as in llama.cpp)
            string full = tok.Decode(expected, renderSpecial: true);
            string bos = tok.AddBos && expected.Length > 0 && expected[0] == tok.BosId ? tok.TokenText(tok.BosId!.Value) : "";
            string sep = tok.AddSpacePrefix && bos.Length > 0 ? " " : "";
            Assert.Equal(bos + sep + input, full);
        }
    }
}
