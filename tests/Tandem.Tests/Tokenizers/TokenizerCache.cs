using System.Collections.Concurrent;
using Tandem.Gguf;
using Tandem.Tokenizers;

namespace Tandem.Tests.Tokenizers;

/// <summary>Loads each test vocabulary once per test run.</summary>
internal static class TokenizerCache
{
    static readonly ConcurrentDictionary<string, Lazy<Tokenizer>> s_cache = new();

    public static string VectorsDir => Path.Combine(TestData.Tokenizers, "llama.cpp-vectors");
    public static string QwenTokenizerJson => Path.Combine(TestData.Tokenizers, "qwen", "tokenizer.json");

    public static Tokenizer Gguf(string path) => s_cache.GetOrAdd(path, p => new Lazy<Tokenizer>(() =>
    {
        using var f = GgufFile.Open(p);
        return Tokenizer.FromGguf(f);
    })).Value;

    public static Tokenizer Vocab(string name) => name == "qwen2"
        ? s_cache.GetOrAdd(QwenTokenizerJson, p => new Lazy<Tokenizer>(() => Tokenizer.FromHuggingFace(p))).Value
        : Gguf(Path.Combine(VectorsDir, $"ggml-vocab-{name}.gguf"));

    /// <summary>The test strings and expected ids of a vocabulary, read as llama.cpp's test-tokenizer-0 reads them.</summary>
    public static List<(string Text, int[] Ids)> Cases(string name)
    {
        string inp = File.ReadAllText(Path.Combine(VectorsDir, $"ggml-vocab-{name}.gguf.inp"));
        var outLines = File.ReadAllText(Path.Combine(VectorsDir, $"ggml-vocab-{name}.gguf.out")).Split('\n').ToList();
        if (outLines.Count > 0 && outLines[^1].Length == 0) outLines.RemoveAt(outLines.Count - 1);
        const string sep = "\n__ggml_vocab_test__\n";
        var inputs = new List<string>();
        int pos = 0;
        while (pos < inp.Length)
        {
            int next = inp.IndexOf(sep, pos, StringComparison.Ordinal);
            if (next < 0) { inputs.Add(inp[pos..]); break; }
            inputs.Add(inp[pos..next]);
            pos = next + sep.Length;
        }
        Assert.Equal(inputs.Count, outLines.Count);
        return inputs.Select((s, i) => (s, outLines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray())).ToList();
    }
}
