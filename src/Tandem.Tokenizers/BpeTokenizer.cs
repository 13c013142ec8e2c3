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
    // merge table on symbol ids: (left << 32 | right) → rank; result id per rank. Strings that are not vocabulary
    // tokens but take part in merges get ids past the vocabulary (kept in _extra).
    readonly Dictionary<long, int> _mergeRank;
    readonly int[] _mergeResult;
    readonly List<string> _extra = [];
    readonly int[] _byteSymbol = new int[256];
    readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    const int CacheLimit = 200_000;

    /// <summary>The regexes of the pre-tokenizer, in order.</summary>
    public IReadOnlyList<string> PreTokenizerPatterns => _pre.Patterns;
    public int MergeCount => _mergeResult.Length;
    /// <summary>Apply Unicode NFC to text before tokenizing (a tokenizer.json "NFC" normalizer).</summary>
    internal bool NormalizeNfc { get; init; }
    /// <summary>Put a space before each piece of text that does not start with one (a tokenizer.json ByteLevel add_prefix_space).</summary>
    internal bool AddPrefixSpace { get; init; }

    internal BpeTokenizer(VocabInit init, IReadOnlyList<(string Left, string Right)> merges, PreTokenizer pre, bool ignoreMerges) : base(init)
    {
        _pre = pre;
        _ignoreMerges = ignoreMerges;
        var extraIds = new Dictionary<string, int>(StringComparer.Ordinal);
        int n = _tokens.Length;
        int Id(ReadOnlySpan<char> s)
        {
            if (_lookup.TryGetValue(s, out var id)) return id;
            string str = s.ToString();
            if (extraIds.TryGetValue(str, out id)) return id;
            id = n + _extra.Count;
            _extra.Add(str);
            extraIds[str] = id;
            return id;
        }
        _mergeRank = new Dictionary<long, int>(merges.Count, PairComparer.Instance);
        _mergeResult = new int[merges.Count];
        Span<char> buf = stackalloc char[256];
        for (int r = 0; r < merges.Count; r++)
        {
            var (l, rt) = merges[r];
            int a = Id(l), b = Id(rt);
            int len = l.Length + rt.Length;
            if (len <= buf.Length)
            {
                l.AsSpan().CopyTo(buf);
                rt.AsSpan().CopyTo(buf[l.Length..]);
                _mergeResult[r] = Id(buf[..len]);
            }
            else _mergeResult[r] = Id(l + rt);
            _mergeRank.TryAdd(((long)a << 32) | (uint)b, r);
        }
        for (int b = 0; b < 256; b++)
        {
            string s = Unicode.ByteToChar[b].ToString();
            _byteSymbol[b] = _tokenToId.TryGetValue(s, out var id) ? id : extraIds.TryGetValue(s, out id) ? id : -1;
        }
    }

    /// <summary>Hashes a (left, right) id pair well (long's own hash, low ^ high, collides for most id pairs).</summary>
    sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long v)
        {
            ulong h = (ulong)v * 0x9E3779B97F4A7C15UL;
            return (int)(h >> 32) ^ (int)h;
        }
    }

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
        if (_ignoreMerges && _tokenToId.TryGetValue(word, out var whole)) return [whole];
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
                if (_mergeRank.TryGetValue(((long)sym[l] << 32) | (uint)sym[r], out var rank))
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
        if (id >= 0 && id < _tokens.Length) { output.Add(id); return; }
        string s = id >= 0 ? _extra[id - _tokens.Length] : firstChar.ToString();
        foreach (var ch in s)
            if (ch < 0x80 && _tokenToId.TryGetValue(ch.ToString(), out var t)) output.Add(t);
    }

    private protected override byte[] ComputePiece(int id)
    {
        var attr = _attrs[id];
        string text = _tokens[id];
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
