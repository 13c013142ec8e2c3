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
        var json = Read(File.ReadAllBytes(path));
        if (json.ModelType != "BPE") throw new NotSupportedException($"Unsupported tokenizer.json model type '{json.ModelType}'.");

        // vocabulary
        int maxId = -1;
        foreach (var (_, id) in json.Vocab) maxId = Math.Max(maxId, id);
        var added = json.AddedTokens;
        if (added.ValueKind == JsonValueKind.Array)
            foreach (var a in added.EnumerateArray()) maxId = Math.Max(maxId, a.GetProperty("id").GetInt32());
        int n = maxId + 1;
        var tokens = new string[n];
        var attrs = new TokenAttr[n];
        foreach (var (name, id) in json.Vocab)
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

        var merges = json.Merges;
        bool ignoreMerges = json.IgnoreMerges;

        // pre-tokenizer
        var patterns = new List<string>();
        bool byteLevel = false, addPrefixSpace = false;
        if (json.PreTokenizer.ValueKind == JsonValueKind.Object) CollectPre(json.PreTokenizer, patterns, ref byteLevel, ref addPrefixSpace);
        if (json.Decoder.ValueKind == JsonValueKind.Object && JsonContains(json.Decoder, "ByteLevel")) byteLevel = true;
        if (!byteLevel) throw new NotSupportedException("Only byte-level BPE tokenizer.json files are supported.");
        bool nfc = json.Normalizer.ValueKind == JsonValueKind.Object && JsonContains(json.Normalizer, "NFC");

        var table = new TokenTable(n);
        foreach (var token in tokens) VocabInit.AddToken(table, System.Text.Encoding.UTF8.GetBytes(token));
        var init = new VocabInit { Tokens = table, Attrs = attrs };
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
        if (init.Bos is { } b && !File.Exists(configPath) && json.PostProcessor.ValueKind == JsonValueKind.Object
            && JsonContains(json.PostProcessor, tokens[b]))
            init.AddBos = true;

        return new BpeTokenizer(init, new StringMergeRules(merges), new PreTokenizer(patterns), ignoreMerges) { NormalizeNfc = nfc, AddPrefixSpace = addPrefixSpace };
    }

    sealed class RawJson
    {
        public string ModelType = "BPE";
        public List<(string, int)> Vocab = [];
        public List<(string, string)> Merges = [];
        public bool IgnoreMerges;
        public JsonElement AddedTokens, PreTokenizer, Decoder, Normalizer, PostProcessor;
    }

    /// <summary>Reads tokenizer.json with a forward-only reader: the big vocab and merges go straight into lists.</summary>
    static RawJson Read(byte[] bytes)
    {
        var r = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 256, CommentHandling = JsonCommentHandling.Skip });
        var result = new RawJson();
        bool sawModel = false;
        Expect(ref r, JsonTokenType.StartObject);
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            string name = r.GetString()!;
            r.Read();
            switch (name)
            {
                case "model" when r.TokenType == JsonTokenType.StartObject:
                    sawModel = true;
                    ReadModel(ref r, result);
                    break;
                case "added_tokens": result.AddedTokens = JsonElement.ParseValue(ref r); break;
                case "pre_tokenizer": result.PreTokenizer = JsonElement.ParseValue(ref r); break;
                case "decoder": result.Decoder = JsonElement.ParseValue(ref r); break;
                case "normalizer": result.Normalizer = JsonElement.ParseValue(ref r); break;
                case "post_processor": result.PostProcessor = JsonElement.ParseValue(ref r); break;
                default: r.Skip(); break;
            }
        }
        if (!sawModel) throw new NotSupportedException("tokenizer.json has no model.");
        return result;
    }

    static void ReadModel(ref Utf8JsonReader r, RawJson result)
    {
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            string name = r.GetString()!;
            r.Read();
            switch (name)
            {
                case "type": result.ModelType = r.GetString() ?? "BPE"; break;
                case "ignore_merges": result.IgnoreMerges = r.TokenType == JsonTokenType.True; break;
                case "vocab" when r.TokenType == JsonTokenType.StartObject:
                    while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                    {
                        string token = r.GetString()!;
                        r.Read();
                        result.Vocab.Add((token, r.GetInt32()));
                    }
                    break;
                case "merges" when r.TokenType == JsonTokenType.StartArray:
                    while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                    {
                        if (r.TokenType == JsonTokenType.String) result.Merges.Add(GgufVocabLoader.SplitMerge(r.GetString()!));
                        else
                        {
                            Expect(ref r, JsonTokenType.StartArray, read: false);
                            r.Read(); string a = r.GetString()!;
                            r.Read(); string b = r.GetString()!;
                            r.Read(); Expect(ref r, JsonTokenType.EndArray, read: false);
                            result.Merges.Add((a, b));
                        }
                    }
                    break;
                default: r.Skip(); break;
            }
        }
    }

    static void Expect(ref Utf8JsonReader r, JsonTokenType type, bool read = true)
    {
        if (read) r.Read();
        if (r.TokenType != type) throw new JsonException($"tokenizer.json: expected {type}, found {r.TokenType} at byte {r.TokenStartIndex}.");
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
