using System.Text;
using Tandem.Gguf;

namespace Tandem.Tokenizers;

/// <summary>Reads a GGUF file's tokenizer.* metadata, with llama.cpp's defaults for what is absent.</summary>
internal static class GgufVocabLoader
{
    public static Tokenizer Load(GgufFile f)
    {
        string model = f.GetString("tokenizer.ggml.model") ?? throw new NotSupportedException("GGUF file has no tokenizer.ggml.model.");
        string? pre = f.GetString("tokenizer.ggml.pre");
        var tokenTexts = f.GetArray("tokenizer.ggml.tokens") ?? throw new NotSupportedException("GGUF file has no tokenizer.ggml.tokens.");
        if (tokenTexts.ElementType != GgufValueType.String)
            throw new NotSupportedException($"GGUF tokenizer.ggml.tokens is an array of {tokenTexts.ElementType}; expected strings.");
        int n = tokenTexts.Count;
        // the texts stay UTF-8 (the file's block, shared): no string per token is made
        var tokens = TokenTable.FromGguf(tokenTexts);

        var attrs = new TokenAttr[n];
        var types = f.GetArray("tokenizer.ggml.token_type");
        for (int i = 0; i < n; i++)
            attrs[i] = types is null || i >= types.Count ? TokenAttr.Normal : VocabInit.AttrFromType(types.Items switch
            {
                int[] a => a[i],
                uint[] a => a[i],
                _ => Convert.ToInt64(types.Items.GetValue(i)),
            });

        float[]? scores = null;
        if (f.GetArray("tokenizer.ggml.scores") is { } sa)
        {
            scores = new float[n];
            if (sa.Items is float[] fa) Array.Copy(fa, scores, Math.Min(n, fa.Length));
            else for (int i = 0; i < n && i < sa.Count; i++) scores[i] = Convert.ToSingle(sa.Items.GetValue(i));
        }

        var init = new VocabInit { Tokens = tokens, Attrs = attrs, Scores = scores, ModelName = f.GetString("general.name") };
        PreConfig? preConfig = null;
        switch (model)
        {
            case "llama":
                init.Bos = 1; init.Eos = 2; init.Unk = 0;
                init.AddSpacePrefix = true; init.AddBos = true; init.CleanSpaces = false;
                break;
            case "gpt2":
                preConfig = PreTokenizer.ForGguf(pre);
                init.Bos = preConfig.NoBos ? null : 11; init.Eos = 11;
                init.CleanSpaces = preConfig.CleanSpaces;
                init.AddBos = preConfig.AddBos;
                break;
            default:
                throw new NotSupportedException($"Unsupported tokenizer model '{model}' (tokenizer.ggml.model).");
        }
        // defaults outside the vocabulary are disabled
        if (init.Bos >= n) init.Bos = null;
        if (init.Eos >= n) init.Eos = null;
        if (init.Unk >= n) init.Unk = null;

        int? Id(string key, int? current)
        {
            long? v = f.GetInt(key);
            return v is { } x && x >= 0 && x < n ? (int)x : current;
        }
        init.Bos = Id("tokenizer.ggml.bos_token_id", init.Bos);
        init.Eos = Id("tokenizer.ggml.eos_token_id", init.Eos);
        init.Eot = Id("tokenizer.ggml.eot_token_id", null);
        init.Eom = Id("tokenizer.ggml.eom_token_id", null);
        init.Unk = Id("tokenizer.ggml.unknown_token_id", init.Unk);
        init.FimPad = Id("tokenizer.ggml.fim_pad_token_id", null);
        init.FimRep = Id("tokenizer.ggml.fim_rep_token_id", null);
        init.FimSep = Id("tokenizer.ggml.fim_sep_token_id", null);
        if (f.GetBool("tokenizer.ggml.add_space_prefix") is { } asp) init.AddSpacePrefix = asp;
        if (f.GetBool("tokenizer.ggml.add_bos_token") is { } ab) init.AddBos = ab;
        if (f.GetBool("tokenizer.ggml.add_eos_token") is { } ae) init.AddEos = ae;

        if (model == "llama") return new SpmTokenizer(init);

        var merges = f.GetArray("tokenizer.ggml.merges") ?? throw new NotSupportedException("GGUF BPE vocabulary has no tokenizer.ggml.merges.");
        if (merges.ElementType != GgufValueType.String)
            throw new NotSupportedException($"GGUF tokenizer.ggml.merges is an array of {merges.ElementType}; expected strings.");
        return new BpeTokenizer(init, new GgufMergeRules(merges), new PreTokenizer(preConfig!.Patterns), preConfig.IgnoreMerges);
    }

    /// <summary>tokenizer.ggml.merges: "left right" strings, split as <see cref="SplitMerge"/> does, read as UTF-8.</summary>
    sealed class GgufMergeRules(GgufArray merges) : IMergeRules
    {
        public int Count => merges.Count;

        public void Get(int rank, out ReadOnlySpan<byte> left, out ReadOnlySpan<byte> right)
        {
            var m = merges.GetUtf8(rank);
            if (!System.Text.Unicode.Utf8.IsValid(m)) m = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(m)); // as the string would read
            // the first space after the first character (whose UTF-8 length its lead byte gives)
            int first = m.IsEmpty ? 0 : Unicode.Utf8SequenceLength(m[0]);
            int pos = m.Length > first ? m[first..].IndexOf((byte)' ') : -1;
            if (pos < 0) { left = right = default; return; }
            pos += first;
            left = m[..pos];
            right = m[(pos + 1)..];
        }
    }

    /// <summary>"a b" → (a, b), splitting at the first space after the first character (so a merge of a space works).</summary>
    internal static (string, string) SplitMerge(string m)
    {
        int pos = m.Length > 1 ? m.IndexOf(' ', 1) : -1;
        return pos < 0 ? ("", "") : (m[..pos], m[(pos + 1)..]);
    }
}
