using System.Text;
using Tandem.Gguf;

namespace Tandem.Tokenizers;

/// <summary>Token attributes (llama.cpp's llama_token_attr bit set).</summary>
[Flags]
public enum TokenAttr
{
    Undefined = 0,
    Unknown = 1 << 0,
    Unused = 1 << 1,
    Normal = 1 << 2,
    Control = 1 << 3,
    UserDefined = 1 << 4,
    Byte = 1 << 5,
    Normalized = 1 << 6,
    LStrip = 1 << 7,
    RStrip = 1 << 8,
    SingleWord = 1 << 9,
}

/// <summary>Everything a tokenizer is built from, whatever the source (GGUF metadata or tokenizer.json).</summary>
internal sealed class VocabInit
{
    /// <summary>Token texts by id (see <see cref="AddToken"/>).</summary>
    public required TokenTable Tokens { get; init; }
    public required TokenAttr[] Attrs { get; init; }
    public float[]? Scores { get; init; }
    public int? Bos { get; set; }
    public int? Eos { get; set; }
    public int? Eot { get; set; }
    public int? Eom { get; set; }
    public int? Unk { get; set; }
    public int? FimPad { get; set; }
    public int? FimRep { get; set; }
    public int? FimSep { get; set; }
    public bool AddBos { get; set; }
    public bool AddEos { get; set; }
    public bool AddSpacePrefix { get; set; }
    public bool CleanSpaces { get; set; }
    public string? ModelName { get; set; }

    /// <summary>Adds the next token's text; an empty text becomes "[EMPTY_id]", so that no token has an empty text.</summary>
    public static void AddToken(TokenTable tokens, ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty) tokens.Add($"[EMPTY_{tokens.Count}]");
        else tokens.Add(utf8);
    }

    /// <summary>GGUF token_type values → attributes.</summary>
    public static TokenAttr AttrFromType(long type) => type switch
    {
        1 => TokenAttr.Normal,
        2 => TokenAttr.Unknown,
        3 => TokenAttr.Control,
        4 => TokenAttr.UserDefined,
        5 => TokenAttr.Unused,
        6 => TokenAttr.Byte,
        _ => TokenAttr.Undefined,
    };
}

/// <summary>
/// A text tokenizer: byte-level BPE or SentencePiece, built from GGUF metadata or a Hugging Face tokenizer.json.
/// Behaviour follows llama.cpp's (llama-vocab.cpp): special-token partitioning, BOS/EOS defaults, end-of-generation set,
/// and detokenization rules. The implementations are <see cref="BpeTokenizer"/> and <see cref="SpmTokenizer"/>.
/// </summary>
public abstract class Tokenizer
{
    protected Tokenizer() { }

    /// <summary>Builds the tokenizer described by a GGUF file's <c>tokenizer.*</c> metadata.</summary>
    public static Tokenizer FromGguf(GgufFile file) => GgufVocabLoader.Load(file);

    /// <summary>Builds a tokenizer from a Hugging Face <c>tokenizer.json</c> (a <c>tokenizer_config.json</c> beside it is read for BOS/EOS settings).</summary>
    public static Tokenizer FromHuggingFace(string tokenizerJsonPath) => HuggingFaceLoader.Load(tokenizerJsonPath);

    public abstract int VocabSize { get; }
    public int? BosId { get; protected init; }
    public int? EosId { get; protected init; }
    /// <summary>End-of-turn token (metadata or detected by text, e.g. &lt;|im_end|&gt;, &lt;|eot_id|&gt;).</summary>
    public virtual int? EotId => null;
    public virtual int? UnkId => null;
    /// <summary>Whether <see cref="Encode"/> with addSpecial prepends BOS (tokenizer.ggml.add_bos_token or the model family's default).</summary>
    public bool AddBos { get; protected init; }
    public bool AddEos { get; protected init; }
    /// <summary>SentencePiece: a space is put before the text (and removed again by <see cref="Decode"/>).</summary>
    public virtual bool AddSpacePrefix => false;
    /// <summary>Decode removes spaces before punctuation (clean_up_tokenization_spaces), as the vocabulary's family does in llama.cpp.</summary>
    public virtual bool CleanSpaces => false;

    /// <summary>Encodes text. addSpecial: add BOS/EOS as the model's defaults say; parseSpecial: recognise special/control token texts such as &lt;|im_start|&gt;.</summary>
    public abstract int[] Encode(string text, bool addSpecial, bool parseSpecial);

    /// <summary>The raw bytes a token stands for when detokenized (control tokens give their text only when renderSpecial).</summary>
    public abstract byte[] TokenBytes(int id, bool renderSpecial = false);

    /// <summary>The vocabulary string of a token, as stored.</summary>
    public abstract string TokenText(int id);

    /// <summary>True for tokens that end a generation (EOS, EOT, &lt;|im_end|&gt;, &lt;|eot_id|&gt;, …).</summary>
    public abstract bool IsEndOfGeneration(int id);

    /// <summary>True for control tokens (llama.cpp's llama_vocab_is_control).</summary>
    public abstract bool IsControl(int id);

    /// <summary>Id of a token with exactly this text, or null.</summary>
    public virtual int? TokenId(string text)
    {
        for (int i = 0; i < VocabSize; i++)
            if (TokenText(i) == text) return i;
        return null;
    }

    /// <summary>
    /// Detokenizes a whole sequence as llama.cpp's llama_detokenize does (special tokens kept in the ids): the first
    /// token's leading space is dropped for SentencePiece vocabularies that add one, and spaces before punctuation are
    /// cleaned for families that ask for it. Invalid UTF-8 becomes U+FFFD.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids, bool renderSpecial = false) =>
        Utf8Lossy(DecodeBytes(ids, renderSpecial, AddSpacePrefix, CleanSpaces));

    /// <summary>The bytes of <see cref="Decode"/>, with the two clean-up rules selectable.</summary>
    public byte[] DecodeBytes(ReadOnlySpan<int> ids, bool renderSpecial, bool removeLeadingSpace, bool cleanSpaces)
    {
        var buf = new List<byte>(ids.Length * 4);
        for (int i = 0; i < ids.Length; i++)
        {
            var piece = TokenBytes(ids[i], renderSpecial);
            int skip = i == 0 && removeLeadingSpace && piece.Length > 0 && piece[0] == (byte)' ' ? 1 : 0;
            for (int k = skip; k < piece.Length; k++) buf.Add(piece[k]);
        }
        var bytes = buf.ToArray();
        return cleanSpaces ? CleanUpSpaces(bytes) : bytes;
    }

    /// <summary>clean_up_tokenization_spaces: " ?" " !" " ." " ," lose the space; " ' " loses both; " 's" " 'm" " 're" " 've" lose the space.</summary>
    public static byte[] CleanUpSpaces(byte[] t)
    {
        if (t.Length == 0) return t;
        // pass 1: space before ? ! . ,
        var a = new List<byte>(t.Length) { t[0] };
        for (int i = 1; i < t.Length; i++)
        {
            byte x = t[i];
            if (t[i - 1] == ' ' && x is (byte)'?' or (byte)'!' or (byte)'.' or (byte)',') a.RemoveAt(a.Count - 1);
            a.Add(x);
        }
        // pass 2: " ' " → "'" (the space after is zeroed in place, as llama.cpp does, and then skipped)
        var a2 = a.ToArray();
        var b = new List<byte>(a2.Length) { a2[0] };
        for (int i = 1; i < a2.Length; i++)
        {
            byte x = a2[i];
            if (x == '\'' && i + 1 < a2.Length && a2[i - 1] == ' ' && a2[i + 1] == ' ')
            {
                b.RemoveAt(b.Count - 1);
                a2[++i] = 0;
            }
            b.Add(x);
        }
        // pass 3: contractions
        var c = new List<byte>(b.Count) { b[0] };
        for (int i = 1; i < b.Count; i++)
        {
            byte x = b[i];
            if (b[i - 1] == ' ' && x == '\'' && i + 1 < b.Count)
            {
                byte x1 = b[i + 1];
                bool drop = x1 is (byte)'s' or (byte)'m'
                    || (i + 2 < b.Count && (x1 is (byte)'r' or (byte)'v') && b[i + 2] == 'e');
                if (drop) c.RemoveAt(c.Count - 1);
            }
            c.Add(x);
        }
        return c.ToArray();
    }

    static readonly UTF8Encoding s_utf8Lossy = new(false, false);
    internal static string Utf8Lossy(ReadOnlySpan<byte> bytes) => s_utf8Lossy.GetString(bytes);
}


/// <summary>A tokenizer over a vocabulary with per-token attributes: what the BPE and SentencePiece tokenizers share.</summary>
public abstract class VocabularyTokenizer : Tokenizer
{
    private protected readonly TokenTable _vocab;
    private protected readonly TokenAttr[] _attrs;
    readonly int[] _specialCache;
    readonly string[] _specialText; // the texts of _specialCache's tokens
    readonly HashSet<int> _eog;
    readonly byte[]?[] _pieces;

    private protected VocabularyTokenizer(VocabInit init)
    {
        _vocab = init.Tokens;
        _vocab.Trim();
        _attrs = init.Attrs;
        int n = _vocab.Count;

        int? Valid(int? id) => id is { } v && v >= 0 && v < n ? v : null;
        int? bos = Valid(init.Bos), eos = Valid(init.Eos), eot = Valid(init.Eot), eom = Valid(init.Eom);
        int? fimPad = Valid(init.FimPad), fimRep = Valid(init.FimRep), fimSep = Valid(init.FimSep);
        UnkId = Valid(init.Unk);

        // auto-detect EOT/EOM/FIM tokens by text, as llama.cpp does; they become control tokens
        void Detect(ref int? slot, string[] texts)
        {
            if (slot is not null) return;
            foreach (var t in texts)
                if (_vocab.TryFind(t, out var id)) { slot = id; _attrs[id] |= TokenAttr.Control; return; }
        }
        Detect(ref eot, ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"]);
        Detect(ref eom, ["<|eom_id|>"]);
        int? dummy = null;
        Detect(ref dummy, ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"]);
        dummy = null;
        Detect(ref dummy, ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"]);
        dummy = null;
        Detect(ref dummy, ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"]);
        Detect(ref fimPad, ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]);
        Detect(ref fimRep, ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]);
        Detect(ref fimSep, ["<|file_sep|>"]);

        for (int i = 0; i < n; i++)
            if ((_attrs[i] & TokenAttr.Control) != 0 && _vocab.Utf8(i).IndexOf("unused"u8) >= 0)
                _attrs[i] |= TokenAttr.Unused;

        // end-of-generation set
        _eog = [];
        foreach (var id in new[] { fimPad, fimRep, fimSep }) if (id is { } v) _eog.Add(v);
        string[] eogTexts = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
            "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
            "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["];
        foreach (var t in eogTexts)
            if (_vocab.TryFind(t, out var id)) { _eog.Add(id); _attrs[id] |= TokenAttr.Control; }
        foreach (var t in new[] { "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>" })
            if (_vocab.TryFind(t, out var id)) _attrs[id] = TokenAttr.UserDefined;
        foreach (var id in new[] { eos, eot, eom }) if (id is { } v) _eog.Add(v);
        // harmony / solar-open: <|end|> is not the end of a generation there
        bool Has(string t) => _vocab.TryFind(t, out var id) && _eog.Contains(id);
        if (_vocab.TryFind("<|end|>", out var endId) && _eog.Contains(endId)
            && ((Has("<|return|>") && (Has("<|call|>") || Has("<|calls|>"))) || ((Has("<|call|>") || Has("<|calls|>")) && Has("<|flush|>"))))
        {
            _eog.Remove(endId);
            _attrs[endId] = TokenAttr.UserDefined;
        }
        if (Has("<|tool_response>") && _vocab.TryFind("</s>", out var sId) && _eog.Contains(sId))
        {
            _eog.Remove(sId);
            _attrs[sId] = TokenAttr.Normal;
        }

        // special tokens, longest first (they are split out of the text before tokenization)
        _specialCache = Enumerable.Range(0, n)
            .Where(i => (_attrs[i] & (TokenAttr.Control | TokenAttr.UserDefined | TokenAttr.Unknown)) != 0)
            .OrderByDescending(i => _vocab.Utf8(i).Length).ThenBy(i => i).ToArray();
        _specialText = _specialCache.Select(_vocab.Text).ToArray();

        string name = (init.ModelName ?? "").ToLowerInvariant();
        if (name.Contains("phi-3") || name.Contains("phi3"))
        {
            foreach (var id in _specialCache) _attrs[id] |= TokenAttr.RStrip;
            if (_vocab.TryFind("</s>", out var s)) _attrs[s] |= TokenAttr.RStrip;
            foreach (var t in new[] { "<unk>", "<s>", "<|endoftext|>" })
                if (_vocab.TryFind(t, out var id)) _attrs[id] &= ~TokenAttr.RStrip;
        }

        BosId = bos;
        EosId = eos;
        EotId = eot;
        AddBos = init.AddBos && bos is not null;
        AddEos = init.AddEos && eos is not null;
        AddSpacePrefix = init.AddSpacePrefix;
        CleanSpaces = init.CleanSpaces;
        _pieces = new byte[n][];
    }

    public override int VocabSize => _vocab.Count;
    public override int? EotId { get; }
    public override int? UnkId { get; }
    public override bool AddSpacePrefix { get; }
    public override bool CleanSpaces { get; }
    /// <summary>The ids that end a generation.</summary>
    public IReadOnlyCollection<int> EndOfGenerationIds => _eog;

    public TokenAttr GetAttr(int id) => _attrs[id];

    /// <summary>Id of a token with exactly this text, or null.</summary>
    public override int? TokenId(string text) => _vocab.TryFind(text, out var id) ? id : null;

    /// <summary>Bytes the vocabulary's texts and their lookup table take.</summary>
    public long VocabularyBytes => _vocab.MemoryBytes;

    public sealed override int[] Encode(string text, bool addSpecial, bool parseSpecial)
    {
        var output = new List<int>(text.Length / 3 + 4);
        if (addSpecial && AddBos) output.Add(BosId!.Value);
        bool afterSpecial = true;
        foreach (var frag in Partition(text, parseSpecial))
        {
            if (frag.Token >= 0) { output.Add(frag.Token); afterSpecial = true; }
            else { EncodeText(text.Substring(frag.Start, frag.Length), afterSpecial, output); afterSpecial = false; }
        }
        if (addSpecial && AddEos) output.Add(EosId!.Value);
        return output.ToArray();
    }

    /// <summary>Tokenizes plain text (no special tokens in it). afterSpecial: the text starts the input or follows a special token.</summary>
    private protected abstract void EncodeText(string text, bool afterSpecial, List<int> output);

    private protected readonly record struct Fragment(int Token, int Start, int Length);

    /// <summary>Splits special-token texts out of the input (llama.cpp's tokenizer_st_partition).</summary>
    private protected List<Fragment> Partition(string text, bool parseSpecial)
    {
        var frags = new List<Fragment>();
        if (text.Length == 0) return frags;
        frags.Add(new Fragment(-1, 0, text.Length));
        for (int special = 0; special < _specialCache.Length; special++)
        {
            int id = _specialCache[special];
            var attr = _attrs[id];
            if (!parseSpecial && (attr & (TokenAttr.Control | TokenAttr.Unknown)) != 0) continue;
            string tok = _specialText[special];
            for (int fi = 0; fi < frags.Count; fi++)
            {
                var f = frags[fi];
                if (f.Token >= 0) continue;
                int match = text.IndexOf(tok, f.Start, f.Length, StringComparison.Ordinal);
                if (match < 0) continue;
                // replace this fragment with left / token / right pieces, repeating on the right
                var pieces = new List<Fragment>();
                int start = f.Start, length = f.Length;
                while (match >= 0)
                {
                    int leftLen = match - start;
                    if ((attr & TokenAttr.LStrip) != 0)
                        while (leftLen > 0 && IsCSpace(text[start + leftLen - 1])) leftLen--;
                    if (leftLen > 0) pieces.Add(new Fragment(-1, start, leftLen));
                    pieces.Add(new Fragment(id, match, tok.Length));
                    int rightStart = match + tok.Length, rightLen = start + length - rightStart;
                    if ((attr & TokenAttr.RStrip) != 0)
                        while (rightLen > 0 && IsCSpace(text[rightStart])) { rightStart++; rightLen--; }
                    start = rightStart; length = rightLen;
                    if (length <= 0) break;
                    match = text.IndexOf(tok, start, length, StringComparison.Ordinal);
                }
                if (length > 0) pieces.Add(new Fragment(-1, start, length));
                frags.RemoveAt(fi);
                frags.InsertRange(fi, pieces);
                fi += pieces.Count - 1;
            }
        }
        return frags;
    }

    static bool IsCSpace(char c) => c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r';

    public sealed override byte[] TokenBytes(int id, bool renderSpecial = false)
    {
        if ((uint)id >= (uint)_vocab.Count) return [];
        if (!renderSpecial && (_attrs[id] & (TokenAttr.Unknown | TokenAttr.Control)) != 0) return [];
        return _pieces[id] ??= ComputePiece(id);
    }

    /// <summary>The bytes of a token's piece as llama.cpp's token_to_piece gives it with special = true.</summary>
    private protected abstract byte[] ComputePiece(int id);

    public sealed override string TokenText(int id) => _vocab.Text(id);

    public sealed override bool IsEndOfGeneration(int id) => _eog.Contains(id);

    public sealed override bool IsControl(int id) => (uint)id < (uint)_attrs.Length && (_attrs[id] & TokenAttr.Control) != 0;
}

/// <summary>
/// Incremental detokenizer: feeds tokens one at a time and returns only complete UTF-8 text. It concatenates token
/// pieces as llama.cpp does while generating (no leading-space removal, no clean-up) unless <see cref="StripLeadingSpace"/>
/// is set, in which case the first token is treated as the start of a text, like <see cref="Tokenizer.Decode"/>.
/// </summary>
public sealed class StreamingDecoder(Tokenizer tokenizer, bool renderSpecial = false)
{
    public Tokenizer Tokenizer { get; } = tokenizer;
    public bool RenderSpecial { get; } = renderSpecial;
    /// <summary>Drop the first token's leading space when the vocabulary adds one (SentencePiece), as whole-text decoding does.</summary>
    public bool StripLeadingSpace { get; init; }

    readonly List<byte> _pending = [];
    bool _first = true;

    /// <summary>Adds a token; returns the text that became complete (possibly empty).</summary>
    public string Push(int id)
    {
        var piece = Tokenizer.TokenBytes(id, RenderSpecial);
        int skip = _first && StripLeadingSpace && Tokenizer.AddSpacePrefix && piece.Length > 0 && piece[0] == (byte)' ' ? 1 : 0;
        _first = false;
        for (int k = skip; k < piece.Length; k++) _pending.Add(piece[k]);
        int complete = CompletePrefixLength(_pending);
        if (complete == 0) return "";
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending)[..complete];
        string s = Tokenizer.Utf8Lossy(span);
        _pending.RemoveRange(0, complete);
        return s;
    }

    /// <summary>Returns whatever bytes remain, with invalid sequences replaced by U+FFFD.</summary>
    public string Flush()
    {
        var s = Tokenizer.Utf8Lossy(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending));
        _pending.Clear();
        return s;
    }

    /// <summary>Length of the prefix that cannot change with more bytes: all but a trailing, so far valid, incomplete sequence.</summary>
    static int CompletePrefixLength(List<byte> b)
    {
        int n = b.Count;
        // look back at most 3 bytes for the lead byte of the last sequence
        for (int back = 1; back <= Math.Min(4, n); back++)
        {
            byte x = b[n - back];
            if ((x & 0xC0) == 0x80) continue; // continuation byte
            if (x < 0x80) return n;            // ASCII: everything is complete
            int need = x >= 0xF8 ? 1 : Unicode.Utf8SequenceLength(x);
            if (x >= 0xF8 || x < 0xC2) return n; // invalid lead byte: will never complete
            if (back >= need) return n;         // the last sequence is complete (or over-long: invalid anyway)
            // incomplete: check what we have so far could still become valid
            if (back >= 2)
            {
                byte y = b[n - back + 1];
                if ((x == 0xE0 && y < 0xA0) || (x == 0xED && y > 0x9F) || (x == 0xF0 && y < 0x90) || (x == 0xF4 && y > 0x8F) || x > 0xF4)
                    return n;
            }
            else if (x > 0xF4) return n;
            return n - back;
        }
        return n; // only continuation bytes at the end: invalid
    }
}
