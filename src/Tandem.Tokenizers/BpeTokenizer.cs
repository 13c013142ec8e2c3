using System.Collections.Concurrent;
using System.Text;

namespace Tandem.Tokenizers;

/// <summary>
/// Byte-level BPE (GPT-2 style): text is split into words by the pre-tokenizer, each word's UTF-8 bytes are mapped to
/// printable characters, and adjacent symbols are merged by merge rank (lowest first, leftmost on ties).
/// </summary>
public sealed class BpeTokenizer : VocabularyTokenizer
{
    readonly PreTokenizer _pre;
    readonly bool _ignoreMerges;
    // Merge table on symbol ids: rank r merges the pair _mergePair[r] (left << 32 | right) into _mergeResult[r];
    // _mergeSlots is an open-addressing hash of the pairs (rank + 1 per slot, 0 = empty; the lowest rank of a pair).
    // Strings that are not vocabulary tokens but take part in merges get ids past the vocabulary (kept in _extra).
    readonly ulong[] _mergePair;
    readonly int[] _mergeResult;
    readonly int[] _mergeSlots;
    readonly TokenTable _extra = new();
    readonly int[] _byteSymbol = new int[256];
    readonly int[] _asciiToken = new int[128];
    readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    const int CacheLimit = 200_000;

    /// <summary>The regexes of the pre-tokenizer, in order.</summary>
    public IReadOnlyList<string> PreTokenizerPatterns => _pre.Patterns;
    public int MergeCount => _mergeResult.Length;
    /// <summary>Apply Unicode NFC to text before tokenizing (a tokenizer.json "NFC" normalizer).</summary>
    internal bool NormalizeNfc { get; init; }
    /// <summary>Put a space before each piece of text that does not start with one (a tokenizer.json ByteLevel add_prefix_space).</summary>
    internal bool AddPrefixSpace { get; init; }

    internal BpeTokenizer(VocabInit init, IMergeRules merges, PreTokenizer pre, bool ignoreMerges) : base(init)
    {
        _pre = pre;
        _ignoreMerges = ignoreMerges;
        int n = _vocab.Count;
        int Id(ReadOnlySpan<byte> s)
        {
            int id = _vocab.Find(s);
            if (id >= 0) return id;
            id = _extra.Find(s);
            return n + (id >= 0 ? id : _extra.Add(s));
        }
        int count = merges.Count;
        _mergePair = new ulong[count];
        _mergeResult = new int[count];
        _mergeSlots = new int[(int)Math.Max(16, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(count + count / 2 + 1)))];
        Span<byte> buf = stackalloc byte[512];
        for (int r = 0; r < count; r++)
        {
            merges.Get(r, out var l, out var rt);
            int a = Id(l), b = Id(rt);
            int len = l.Length + rt.Length;
            var joined = len <= buf.Length ? buf[..len] : new byte[len];
            l.CopyTo(joined);
            rt.CopyTo(joined[l.Length..]);
            _mergeResult[r] = Id(joined);
            ulong pair = ((ulong)(uint)a << 32) | (uint)b;
            _mergePair[r] = pair;
            int slot = MergeSlot(pair);
            if (_mergeSlots[slot] == 0) _mergeSlots[slot] = r + 1; // the first (lowest) rank of a repeated pair counts
        }
        _extra.Trim();
        for (int b = 0; b < 256; b++)
        {
            var symbol = new ReadOnlySpan<char>(in Unicode.ByteToChar[b]);
            int id = _vocab.Find(symbol), extra;
            _byteSymbol[b] = id >= 0 ? id : (extra = _extra.Find(symbol)) >= 0 ? n + extra : -1;
        }
        for (int c = 0; c < 128; c++) _asciiToken[c] = _vocab.Find([(byte)c]);
    }

    /// <summary>The slot of a merge pair in _mergeSlots, or the empty slot where it would go.</summary>
    int MergeSlot(ulong pair)
    {
        int mask = _mergeSlots.Length - 1;
        ulong h = pair * 0x9E3779B97F4A7C15UL;
        for (int slot = (int)(h >> 40) & mask; ; slot = (slot + 1) & mask)
        {
            int entry = _mergeSlots[slot];
            if (entry == 0 || _mergePair[entry - 1] == pair) return slot;
        }
    }

    /// <summary>The rank of the merge of two symbols, or -1.</summary>
    int MergeRank(int left, int right) => _mergeSlots[MergeSlot(((ulong)(uint)left << 32) | (uint)right)] - 1;

    private protected override void EncodeText(string text, bool afterSpecial, List<int> output)
    {
        if (NormalizeNfc) text = Nfc(text);
        if (AddPrefixSpace && !text.StartsWith(' ')) text = " " + text;
        var cps = Unicode.Codepoints(text);
        var lens = _pre.Split(cps);
        int start = 0;
        var bytes = new List<byte>(64);
        Span<byte> tmp = stackalloc byte[4];
        foreach (var len in lens)
        {
            bytes.Clear();
            for (int i = start; i < start + len; i++)
            {
                int cp = cps[i];
                int k = new Rune(cp).EncodeToUtf8(tmp);
                for (int j = 0; j < k; j++) bytes.Add(tmp[j]);
            }
            start += len;
            if (bytes.Count == 0) continue;
            var word = string.Create(bytes.Count, bytes, static (span, bs) =>
            {
                for (int i = 0; i < span.Length; i++) span[i] = Unicode.ByteToChar[bs[i]];
            });
            if (!_cache.TryGetValue(word, out var ids))
            {
                ids = EncodeWord(word);
                if (_cache.Count >= CacheLimit) _cache.Clear();
                _cache[word] = ids;
            }
            output.AddRange(ids);
        }
    }

    static string Nfc(string text)
    {
        try { return text.IsNormalized(NormalizationForm.FormC) ? text : text.Normalize(NormalizationForm.FormC); }
        catch (PlatformNotSupportedException) { return text; }
        catch (ArgumentException) { return text; } // invalid UTF-16 (lone surrogates): leave as is
    }

    /// <summary>Merges one byte-encoded word.</summary>
    int[] EncodeWord(string word)
    {
        if (_ignoreMerges && _vocab.Find(word.AsSpan()) is >= 0 and var whole) return [whole];
        int n = word.Length;
        var sym = new int[n];
        for (int i = 0; i < n; i++) sym[i] = _byteSymbol[Unicode.ByteOfChar(word[i])];
        if (n > 1)
        {
            var next = new int[n];
            var prev = new int[n];
            var alive = new bool[n];
            for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; alive[i] = true; }
            var queue = new PriorityQueue<(int L, int R, int IdL, int IdR), long>();
            void Add(int l, int r)
            {
                if (l < 0 || r < 0 || sym[l] < 0 || sym[r] < 0) return;
                int rank = MergeRank(sym[l], sym[r]);
                if (rank >= 0)
                    queue.Enqueue((l, r, sym[l], sym[r]), ((long)rank << 32) | (uint)l);
            }
            for (int i = 1; i < n; i++) Add(i - 1, i);
            while (queue.TryDequeue(out var bg, out var pri))
            {
                if (!alive[bg.L] || !alive[bg.R] || sym[bg.L] != bg.IdL || sym[bg.R] != bg.IdR || next[bg.L] != bg.R) continue;
                sym[bg.L] = _mergeResult[(int)(pri >> 32)];
                alive[bg.R] = false;
                next[bg.L] = next[bg.R];
                if (next[bg.R] >= 0) prev[next[bg.R]] = bg.L;
                Add(prev[bg.L], bg.L);
                Add(bg.L, next[bg.L]);
            }
            var result = new List<int>(n);
            for (int i = 0; i != -1; i = next[i]) Emit(sym[i], word[i], result);
            return result.ToArray();
        }
        var single = new List<int>(1);
        Emit(sym[0], word[0], single);
        return single.ToArray();
    }

    /// <summary>Outputs a final symbol; one that is not a token falls back to its single-byte characters, as llama.cpp does.</summary>
    void Emit(int id, char firstChar, List<int> output)
    {
        int n = _vocab.Count;
        if (id >= 0 && id < n) { output.Add(id); return; }
        // the ASCII characters of the symbol's text are its ASCII bytes in UTF-8
        if (id < 0) { if (firstChar < 0x80 && _asciiToken[firstChar] >= 0) output.Add(_asciiToken[firstChar]); return; }
        foreach (byte b in _extra.Utf8(id - n))
            if (b < 0x80 && _asciiToken[b] >= 0) output.Add(_asciiToken[b]);
    }

    private protected override byte[] ComputePiece(int id)
    {
        var attr = _attrs[id];
        string text = _vocab.Text(id);
        if ((attr & (TokenAttr.Unknown | TokenAttr.Control | TokenAttr.UserDefined)) != 0) return Encoding.UTF8.GetBytes(text);
        if ((attr & TokenAttr.Normal) != 0)
        {
            var bytes = new List<byte>(text.Length);
            foreach (var r in text.EnumerateRunes())
            {
                int b = r.Value < 512 ? Unicode.ByteOfChar((char)r.Value) : -1;
                if (b >= 0) bytes.Add((byte)b);
                else
                {
                    var u = Encoding.UTF8.GetBytes(r.ToString());
                    bytes.AddRange(Encoding.UTF8.GetBytes("[UNK_BYTE_0x" + Convert.ToHexStringLower(u) + text + "]"));
                }
            }
            return bytes.ToArray();
        }
        if ((attr & TokenAttr.Byte) != 0 && text.Length >= 5) return [Convert.ToByte(text.Substring(3, 2), 16)];
        return [];
    }
}

/// <summary>BPE merge rules in rank order, each a (left, right) pair of UTF-8 texts.</summary>
internal interface IMergeRules
{
    int Count { get; }
    /// <summary>The texts of rule <paramref name="rank"/>, valid until the next call.</summary>
    void Get(int rank, out ReadOnlySpan<byte> left, out ReadOnlySpan<byte> right);
}

/// <summary>Merge rules given as string pairs (tokenizer.json).</summary>
internal sealed class StringMergeRules(IReadOnlyList<(string Left, string Right)> rules) : IMergeRules
{
    byte[] _left = new byte[64], _right = new byte[64];

    public int Count => rules.Count;

    public void Get(int rank, out ReadOnlySpan<byte> left, out ReadOnlySpan<byte> right)
    {
        var (l, r) = rules[rank];
        left = Encode(l, ref _left);
        right = Encode(r, ref _right);
    }

    static ReadOnlySpan<byte> Encode(string s, ref byte[] buffer)
    {
        int max = Encoding.UTF8.GetMaxByteCount(s.Length);
        if (max > buffer.Length) buffer = new byte[max];
        return buffer.AsSpan(0, Encoding.UTF8.GetBytes(s, buffer));
    }
}
