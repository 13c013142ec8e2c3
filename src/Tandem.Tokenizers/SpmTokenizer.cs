using System.Text;

namespace Tandem.Tokenizers;

/// <summary>
/// SentencePiece-style tokenizer (GGUF tokenizer.ggml.model "llama"): spaces become ▁, a leading space is added at the
/// start and after special tokens, adjacent symbols are merged by the score of the token they form (highest first,
/// leftmost on ties), and characters that form no token fall back to &lt;0xXX&gt; byte tokens.
/// </summary>
public sealed class SpmTokenizer : VocabularyTokenizer
{
    readonly float[] _scores;
    readonly int[] _byteToken = new int[256];

    internal SpmTokenizer(VocabInit init) : base(init)
    {
        _scores = init.Scores ?? new float[_vocab.Count];
        for (int b = 0; b < 256; b++)
        {
            if (_vocab.TryFind($"<0x{b:X2}>", out var id)) _byteToken[b] = id;
            else if (b < 0x80 && _vocab.TryFind(((char)b).ToString(), out id)) _byteToken[b] = id;
            else _byteToken[b] = -1;
        }
    }

    sealed class BigramComparer : IComparer<(float Score, int Left)>
    {
        public static readonly BigramComparer Instance = new();
        // highest score first; on ties the leftmost
        public int Compare((float Score, int Left) x, (float Score, int Left) y) =>
            x.Score != y.Score ? y.Score.CompareTo(x.Score) : x.Left.CompareTo(y.Left);
    }

    private protected override void EncodeText(string raw, bool afterSpecial, List<int> output)
    {
        string text = (AddSpacePrefix && afterSpecial ? " " + raw : raw).Replace(' ', '\u2581');
        if (text.Length == 0) return;
        // symbols: one per codepoint, as [start, length) in UTF-16 units
        var start = new List<int>(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            start.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
        }
        int n = start.Count;
        var len = new int[n];
        var next = new int[n];
        var prev = new int[n];
        for (int i = 0; i < n; i++)
        {
            len[i] = (i + 1 < n ? start[i + 1] : text.Length) - start[i];
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        var queue = new PriorityQueue<(int L, int R, int Size), (float, int)>(BigramComparer.Instance);
        void TryAdd(int l, int r)
        {
            if (l < 0 || r < 0) return;
            int size = len[l] + len[r];
            int id = _vocab.Find(text.AsSpan(start[l], size));
            if (id < 0) return;
            queue.Enqueue((l, r, size), (_scores[id], l));
        }
        for (int i = 1; i < n; i++) TryAdd(i - 1, i);
        while (queue.TryDequeue(out var bg, out _))
        {
            if (len[bg.L] == 0 || len[bg.R] == 0 || len[bg.L] + len[bg.R] != bg.Size) continue;
            len[bg.L] += len[bg.R];
            len[bg.R] = 0;
            next[bg.L] = next[bg.R];
            if (next[bg.R] >= 0) prev[next[bg.R]] = bg.L;
            TryAdd(prev[bg.L], bg.L);
            TryAdd(bg.L, next[bg.L]);
        }
        Span<byte> utf8 = stackalloc byte[8];
        for (int i = 0; i != -1; i = next[i])
        {
            var piece = text.AsSpan(start[i], len[i]);
            if (_vocab.Find(piece) is >= 0 and var id) { output.Add(id); continue; }
            int k = Encoding.UTF8.GetBytes(piece, utf8);
            for (int j = 0; j < k; j++)
            {
                int t = _byteToken[utf8[j]];
                if (t >= 0) output.Add(t);
                else if (UnkId is { } unk) output.Add(unk);
            }
        }
    }

    private protected override byte[] ComputePiece(int id)
    {
        var attr = _attrs[id];
        string text = _vocab.Text(id);
        if ((attr & (TokenAttr.Unknown | TokenAttr.Control | TokenAttr.UserDefined)) != 0) return Encoding.UTF8.GetBytes(text);
        if ((attr & TokenAttr.Normal) != 0) return Encoding.UTF8.GetBytes(text.Replace('\u2581', ' '));
        if ((attr & TokenAttr.Byte) != 0 && text.Length >= 5) return [Convert.ToByte(text.Substring(3, 2), 16)];
        return [];
    }
}
