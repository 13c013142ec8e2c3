using System.Text.Json;

namespace Tandem.Tokenizers;

/// <summary>
/// Loads a Hugging Face tokenizer.json holding a byte-level BPE model: model.vocab, model.merges (either "a b" strings or
/// ["a", "b"] pairs), added_tokens (special → control, others → user-defined, as llama.cpp's converter marks them),
/// the pre_tokenizer (Split regexes, ByteLevel, Digits, Sequence) and the NFC normalizer. BOS/EOS come from a
/// tokenizer_config.json beside it when there is one.
/// </summary>
internal static class HuggingFaceLoader
{
    public static Tokenizer Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 256 });
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        string type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "BPE";
        if (type != "BPE") throw new NotSupportedException($"Unsupported tokenizer.json model type '{type}'.");

        // vocabulary
        var vocab = model.GetProperty("vocab");
        var entries = new List<(string, int)>(200_000);
        int maxId = -1;
        foreach (var p in vocab.EnumerateObject())
        {
            int id = p.Value.GetInt32();
            entries.Add((p.Name, id));
            if (id > maxId) maxId = id;
        }
        var added = root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array ? at : default;
        if (added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray()) maxId = Math.Max(maxId, a.GetProperty("id").GetInt32());
        int n = maxId + 1;
        var tokens = new string[n];
        var attrs = new TokenAttr[n];
        foreach (var (name, id) in entries)
        {
            tokens[id] = name;
            attrs[id] = TokenAttr.Normal;
        }
        if (added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray())
            {
                int id = a.GetProperty("id").GetInt32();
                tokens[id] = a.GetProperty("content").GetString()!;
                bool special = a.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True;
                var attr = special ? TokenAttr.Control : TokenAttr.UserDefined;
                if (a.TryGetProperty("lstrip", out var ls) && ls.ValueKind == JsonValueKind.True) attr |= TokenAttr.LStrip;
                if (a.TryGetProperty("rstrip", out var rs) && rs.ValueKind == JsonValueKind.True) attr |= TokenAttr.RStrip;
                attrs[id] = attr;
            }
        for (int i = 0; i < n; i++)
            if (tokens[i] is null) { tokens[i] = $"[PAD{i}]"; attrs[i] = TokenAttr.Unused; }

        // merges
        var mergesEl = model.GetProperty("merges");
        var merges = new List<(string, string)>(mergesEl.GetArrayLength());
        foreach (var m in mergesEl.EnumerateArray())
        {
            if (m.ValueKind == JsonValueKind.String) merges.Add(GgufVocabLoader.SplitMerge(m.GetString()!));
            else merges.Add((m[0].GetString()!, m[1].GetString()!));
        }
        bool ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;

        // pre-tokenizer
        var patterns = new List<string>();
        bool byteLevel = false, addPrefixSpace = false;
        if (root.TryGetProperty("pre_tokenizer", out var pre) && pre.ValueKind == JsonValueKind.Object) CollectPre(pre, patterns, ref byteLevel, ref addPrefixSpace);
        if (root.TryGetProperty("decoder", out var dec) && dec.ValueKind == JsonValueKind.Object && JsonContains(dec, "ByteLevel")) byteLevel = true;
        if (!byteLevel) throw new NotSupportedException("Only byte-level BPE tokenizer.json files are supported.");
        bool nfc = root.TryGetProperty("normalizer", out var norm) && norm.ValueKind == JsonValueKind.Object && JsonContains(norm, "NFC");

        var init = new VocabInit { Tokens = tokens, Attrs = attrs };
        // tokenizer_config.json: bos/eos tokens, add_bos/add_eos, clean-up
        string configPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", "tokenizer_config.json");
        string? bosText = null, eosText = null;
        if (File.Exists(configPath))
        {
            using var cfg = JsonDocument.Parse(File.ReadAllBytes(configPath));
            var c = cfg.RootElement;
            bosText = TokenString(c, "bos_token");
            eosText = TokenString(c, "eos_token");
            if (c.TryGetProperty("add_bos_token", out var ab) && ab.ValueKind is JsonValueKind.True or JsonValueKind.False) init.AddBos = ab.GetBoolean();
            if (c.TryGetProperty("add_eos_token", out var ae) && ae.ValueKind is JsonValueKind.True or JsonValueKind.False) init.AddEos = ae.GetBoolean();
            if (c.TryGetProperty("clean_up_tokenization_spaces", out var cu) && cu.ValueKind is JsonValueKind.True or JsonValueKind.False) init.CleanSpaces = cu.GetBoolean();
        }
        int Find(string text) => Array.LastIndexOf(tokens, text);
        if (bosText is not null && Find(bosText) is >= 0 and var bos) init.Bos = bos;
        if (eosText is not null && Find(eosText) is >= 0 and var eos) init.Eos = eos;
        // a post-processor template that starts with the BOS token means BOS is added
        if (init.Bos is { } b && !File.Exists(configPath) && root.TryGetProperty("post_processor", out var pp) && pp.ValueKind == JsonValueKind.Object
            && JsonContains(pp, tokens[b]))
            init.AddBos = true;

        return new BpeTokenizer(init, merges, new PreTokenizer(patterns), ignoreMerges) { NormalizeNfc = nfc, AddPrefixSpace = addPrefixSpace };
    }

    static string? TokenString(JsonElement cfg, string key)
    {
        if (!cfg.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) => c.GetString(),
            _ => null,
        };
    }

    static void CollectPre(JsonElement pre, List<string> patterns, ref bool byteLevel, ref bool addPrefixSpace)
    {
        string type = pre.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        switch (type)
        {
            case "Sequence":
                foreach (var p in pre.GetProperty("pretokenizers").EnumerateArray()) CollectPre(p, patterns, ref byteLevel, ref addPrefixSpace);
                break;
            case "Split":
                var pat = pre.GetProperty("pattern");
                if (pat.TryGetProperty("Regex", out var rx)) patterns.Add(rx.GetString()!);
                else if (pat.TryGetProperty("String", out var s)) patterns.Add(System.Text.RegularExpressions.Regex.Escape(s.GetString()!));
                break;
            case "ByteLevel":
                byteLevel = true;
                if (pre.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True) addPrefixSpace = true;
                if (!pre.TryGetProperty("use_regex", out var ur) || ur.ValueKind != JsonValueKind.False) patterns.Add(PreTokenizer.Gpt2PatternHf);
                break;
            case "Digits":
                bool individual = pre.TryGetProperty("individual_digits", out var ind) && ind.ValueKind == JsonValueKind.True;
                patterns.Add(individual ? @"\p{N}" : @"\p{N}+");
                break;
            default:
                throw new NotSupportedException($"Unsupported tokenizer.json pre-tokenizer '{type}'.");
        }
    }

    /// <summary>Whether any string inside the element equals the text.</summary>
    static bool JsonContains(JsonElement e, string text) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString() == text,
        JsonValueKind.Object => e.EnumerateObject().Any(p => JsonContains(p.Value, text)),
        JsonValueKind.Array => e.EnumerateArray().Any(x => JsonContains(x, text)),
        _ => false,
    };
}
