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

    /// <summary>
    /// Evaluates this case's tokens as one batch in a fresh session and demands llama.cpp's bits at every position,
    /// then its greedy continuation token by token.
    /// </summary>
    public void AssertSameBits(Tandem.Engine.Model model, int vocab, string name)
    {
        using var session = model.CreateSession(new Tandem.Engine.SessionOptions(ContextLength: 128, Threads: 2));
        var logits = new float[Tokens.Length * vocab];
        session.Evaluate(Tokens, logits);
        for (int p = 0; p < Tokens.Length; p++)
            for (int v = 0; v < vocab; v++)
                Assert.True(logits[p * vocab + v] == Logits![p][v],
                    $"{name} position {p} token {v}: {logits[p * vocab + v]:R} vs llama.cpp {Logits![p][v]:R}");
        var last = logits.AsSpan((Tokens.Length - 1) * vocab, vocab).ToArray();
        var generated = new List<int>();
        foreach (var _ in Greedy!)
        {
            int next = 0;
            for (int v = 1; v < vocab; v++) if (last[v] > last[next]) next = v;
            generated.Add(next);
            last = session.Evaluate([next]).ToArray();
        }
        Assert.Equal(Greedy, generated);
    }

    /// <summary>The input text as the prompt files write it ("\n" stands for a newline).</summary>
    public string Text => Input.Replace("\\n", "\n");
}
