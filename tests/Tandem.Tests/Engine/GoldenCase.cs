using System.Text.Json;

namespace Tandem.Tests.Engine;

/// <summary>One case of a llama.cpp golden file (testdata/golden/*.golden.json): T = tokenize only; P/I = evaluate.</summary>
public sealed record GoldenCase(string Kind, string Input, int[] Tokens, float[][]? Logits, int[]? Greedy)
{
    public static (int Vocab, GoldenCase[] Cases) Load(string modelName)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestData.Golden, modelName + ".golden.json")));
        int vocab = doc.RootElement.GetProperty("n_vocab").GetInt32();
        var cases = doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new GoldenCase(
            c.GetProperty("kind").GetString()!,
            c.GetProperty("input").GetString()!,
            c.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            c.TryGetProperty("logits", out var l) ? l.EnumerateArray().Select(r => r.EnumerateArray().Select(e => e.GetSingle()).ToArray()).ToArray() : null,
            c.TryGetProperty("greedy", out var g) ? g.EnumerateArray().Select(e => e.GetInt32()).ToArray() : null)).ToArray();
        return (vocab, cases);
    }

    /// <summary>The input text as the prompt files write it ("\n" stands for a newline).</summary>
    public string Text => Input.Replace("\\n", "\n");
}
