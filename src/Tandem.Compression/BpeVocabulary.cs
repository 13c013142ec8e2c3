using System.Text.Json;

// Layout read here — a Hugging Face tokenizer.json (JSON; only these parts are used):
//   { "added_tokens": [ { "id": N, "content": "...", "special": bool, ... }, ... ],
//     "model": { "type": "BPE", "vocab": { "token": id, ... }, "merges": [ "a b" | ["a", "b"], ... ] }, ... }
// Produced (as GGUF metadata arrays): tokenizer.ggml.tokens [string × vocab], tokenizer.ggml.token_type
// [int32 × vocab: 1 normal, 3 control, 4 user-defined, 5 unused], tokenizer.ggml.merges [string "left right"].

namespace Tandem.Compression;

/// <summary>llama.cpp's token types (tokenizer.ggml.token_type values).</summary>
public enum GgufTokenType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

/// <summary>
/// A byte-level BPE vocabulary as GGUF stores it (tokenizer.ggml.tokens / token_type / merges), read from a Hugging
/// Face tokenizer.json and fitted to a model's vocabulary size.
/// </summary>
public sealed class BpeVocabulary
{
    public required string[] Tokens { get; init; }
    public required int[] TokenTypes { get; init; }
    /// <summary>Merges as "left right", in priority order.</summary>
    public required string[] Merges { get; init; }

    /// <summary>The id of the token with this exact text, or null.</summary>
    public int? IdOf(string text)
    {
        int i = Array.IndexOf(Tokens, text);
        return i >= 0 ? i : null;
    }

    /// <summary>
    /// Reads tokenizer.json. The regular vocabulary keeps its ids and the added tokens follow it (special ones as
    /// control tokens, others user-defined). When <paramref name="modelVocabSize"/> is larger, the rest is padding
    /// ("[PADn]", unused), as llama.cpp's converter writes it; when smaller, the regular vocabulary is cut so that the
    /// added tokens still fit at the end, and merges that would produce or use a dropped token are dropped.
    /// </summary>
    public static BpeVocabulary FromTokenizerJson(string path, int modelVocabSize)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 256 });
        var root = doc.RootElement;
        if (!root.TryGetProperty("model", out var model) || (model.TryGetProperty("type", out var type) && type.GetString() != "BPE"))
            throw new ArgumentException($"{path}: not a BPE tokenizer.json");
        var regular = new List<(string Text, int Id)>();
        foreach (var p in model.GetProperty("vocab").EnumerateObject()) regular.Add((p.Name, p.Value.GetInt32()));
        regular.Sort((a, b) => a.Id.CompareTo(b.Id));
        var added = new List<(string Text, int Id, bool Special)>();
        if (root.TryGetProperty("added_tokens", out var addedJson))
            foreach (var a in addedJson.EnumerateArray())
                added.Add((a.GetProperty("content").GetString()!, a.GetProperty("id").GetInt32(),
                    a.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True));
        added.Sort((a, b) => a.Id.CompareTo(b.Id));
        for (int i = 0; i < regular.Count; i++)
            if (regular[i].Id != i) throw new ArgumentException($"{path}: vocabulary ids are not contiguous at {i}");

        int keepRegular = Math.Min(regular.Count, modelVocabSize - added.Count);
        if (keepRegular <= 256) throw new ArgumentException($"model vocabulary {modelVocabSize} is too small for this tokenizer");
        var tokens = new string[modelVocabSize];
        var types = new int[modelVocabSize];
        for (int i = 0; i < keepRegular; i++) { tokens[i] = regular[i].Text; types[i] = (int)GgufTokenType.Normal; }
        // added tokens keep their ids when the whole regular vocabulary is kept, else they follow the cut one
        int next = keepRegular;
        foreach (var (text, id, special) in added)
        {
            int at = keepRegular == regular.Count ? id : next++;
            tokens[at] = text;
            types[at] = (int)(special ? GgufTokenType.Control : GgufTokenType.UserDefined);
        }
        for (int i = 0; i < modelVocabSize; i++)
            if (tokens[i] is null) { tokens[i] = $"[PAD{i}]"; types[i] = (int)GgufTokenType.Unused; }

        var kept = new HashSet<string>(tokens.Take(keepRegular), StringComparer.Ordinal);
        var merges = new List<string>();
        foreach (var m in model.GetProperty("merges").EnumerateArray())
        {
            string left, right;
            if (m.ValueKind == JsonValueKind.Array) { left = m[0].GetString()!; right = m[1].GetString()!; }
            else
            {
                string s = m.GetString()!;
                int space = s.IndexOf(' ', 1);
                left = s[..space]; right = s[(space + 1)..];
            }
            if (keepRegular == regular.Count || (kept.Contains(left) && kept.Contains(right) && kept.Contains(left + right)))
                merges.Add(left + " " + right);
        }
        return new BpeVocabulary { Tokens = tokens, TokenTypes = types, Merges = merges.ToArray() };
    }
}
