using System.Text;
using System.Text.Unicode;

namespace Tandem.Tokenizers;

/// <summary>
/// A vocabulary's texts in compact form: every text's UTF-8 bytes in one block with start offsets, and an
/// open-addressing hash table of ids over them — instead of one string object per token and a string-keyed dictionary
/// (for a 151,936-token vocabulary, ~3 MB instead of ~12 MB, and almost no objects for the GC to trace).
/// Ids are given in the order texts are added; when a text occurs twice, lookups find the later id (as assigning into a
/// dictionary would). Texts are valid UTF-8: invalid input is decoded with U+FFFD replacements and stored re-encoded,
/// exactly the string a decoder would have produced.
/// </summary>
internal sealed class TokenTable
{
    byte[] _bytes;
    int _length;
    int[] _start; // _start[id] .. _start[id + 1]
    int _count;
    int[] _slots; // id + 1 per slot, 0 = empty; a power of two, at most two-thirds full
    int _used;
    bool _shared; // _bytes and _start belong to a GGUF array: copied before anything is added


    public TokenTable(int capacity = 16)
    {
        capacity = Math.Max(capacity, 4);
        _bytes = new byte[capacity * 8];
        _start = new int[capacity + 1];
        _slots = new int[SlotCount(capacity)];
    }

    /// <summary>
    /// A table over a GGUF string array's own UTF-8 block (shared, not copied) when every text is non-empty, valid
    /// UTF-8 (the usual case); else one filled text by text through <see cref="VocabInit.AddToken"/>.
    /// </summary>
    public static TokenTable FromGguf(Gguf.GgufArray texts)
    {
        if (texts.TryGetUtf8Block(out var bytesMemory, out var offsetsMemory)
            && System.Runtime.InteropServices.MemoryMarshal.TryGetArray(bytesMemory, out var bytes) && bytes.Offset == 0 && bytes.Count == bytes.Array!.Length
            && System.Runtime.InteropServices.MemoryMarshal.TryGetArray(offsetsMemory, out var offsets) && offsets.Offset == 0 && offsets.Count == offsets.Array!.Length
            && offsets.Count == texts.Count + 1)
        {
            var shared = new TokenTable(bytes.Array, offsets.Array);
            if (shared.IndexAll()) return shared;
        }
        var table = new TokenTable(texts.Count);
        for (int i = 0; i < texts.Count; i++) VocabInit.AddToken(table, texts.GetUtf8(i));
        return table;
    }

    TokenTable(byte[] bytes, int[] start)
    {
        _bytes = bytes;
        _start = start;
        _count = start.Length - 1;
        _length = start[_count];
        _slots = new int[SlotCount(_count)];
        _shared = true;
    }

    /// <summary>Hashes every text of a shared block; false (and nothing usable) when a text is empty or not valid UTF-8.</summary>
    bool IndexAll()
    {
        for (int id = 0; id < _count; id++)
        {
            var text = Utf8(id);
            if (text.IsEmpty || !System.Text.Unicode.Utf8.IsValid(text)) return false;
            int slot = SlotOf(text, out bool found);
            if (!found) _used++;
            _slots[slot] = id + 1; // a repeated text finds its last id
        }
        return true;
    }

    static int SlotCount(int entries) => (int)Math.Max(16, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(entries + entries / 2 + 1)));

    public int Count => _count;

    /// <summary>Bytes held (texts, offsets and the hash table).</summary>
    public long MemoryBytes => _bytes.Length + (long)_start.Length * sizeof(int) + (long)_slots.Length * sizeof(int);

    public ReadOnlySpan<byte> Utf8(int id) => _bytes.AsSpan(_start[id], _start[id + 1] - _start[id]);

    public string Text(int id) => Encoding.UTF8.GetString(Utf8(id));

    /// <summary>Appends a text as the next id (even if the same text is already there) and returns that id.</summary>
    public int Add(ReadOnlySpan<byte> utf8)
    {
        if (!System.Text.Unicode.Utf8.IsValid(utf8)) utf8 = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(utf8));
        int id = _count;
        if (_shared) { _bytes = (byte[])_bytes.Clone(); _start = (int[])_start.Clone(); _shared = false; }
        if (id + 1 >= _start.Length) Array.Resize(ref _start, _start.Length * 2);
        if (_length + utf8.Length > _bytes.Length) Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, _length + utf8.Length));
        utf8.CopyTo(_bytes.AsSpan(_length));
        _length += utf8.Length;
        _start[id + 1] = _length;
        _count++;
        if ((_used + 1) * 3 > _slots.Length * 2) Rehash(_slots.Length * 2);
        int slot = SlotOf(Utf8(id), out bool found);
        if (!found) _used++;
        _slots[slot] = id + 1;
        return id;
    }

    public int Add(string text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        Span<byte> buffer = max <= 256 ? stackalloc byte[256] : new byte[max];
        return Add(buffer[..Encoding.UTF8.GetBytes(text, buffer)]);
    }

    /// <summary>The id of a text (the last one added with it), or -1.</summary>
    public int Find(ReadOnlySpan<byte> utf8)
    {
        int slot = SlotOf(utf8, out bool found);
        return found ? _slots[slot] - 1 : -1;
    }

    /// <summary>The id of a text given as UTF-16, or -1. Lone surrogates are matched as U+FFFD, as in <see cref="Add(string)"/>.</summary>
    public int Find(ReadOnlySpan<char> text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        Span<byte> buffer = max <= 256 ? stackalloc byte[256] : new byte[max];
        return Find(buffer[..Encoding.UTF8.GetBytes(text, buffer)]);
    }

    public bool TryFind(ReadOnlySpan<char> text, out int id) => (id = Find(text)) >= 0;

    /// <summary>The slot holding this text, or the empty slot where it would go.</summary>
    int SlotOf(ReadOnlySpan<byte> utf8, out bool found)
    {
        int mask = _slots.Length - 1;
        for (int slot = (int)Hash(utf8) & mask; ; slot = (slot + 1) & mask)
        {
            int entry = _slots[slot];
            if (entry == 0) { found = false; return slot; }
            if (Utf8(entry - 1).SequenceEqual(utf8)) { found = true; return slot; }
        }
    }

    void Rehash(int slotCount)
    {
        var old = _slots;
        _slots = new int[slotCount];
        int mask = slotCount - 1;
        foreach (int entry in old)
        {
            if (entry == 0) continue;
            int slot = (int)Hash(Utf8(entry - 1)) & mask;
            while (_slots[slot] != 0) slot = (slot + 1) & mask;
            _slots[slot] = entry;
        }
    }

    /// <summary>FNV-1a over the bytes, then a multiplicative mix so the low bits (the slot) depend on all of them.</summary>
    static uint Hash(ReadOnlySpan<byte> bytes)
    {
        uint h = 2166136261;
        foreach (byte b in bytes) h = (h ^ b) * 16777619;
        return (h ^ (h >> 15)) * 0x2C1B3C6Du ^ (h >> 13);
    }

    /// <summary>Drops the spare capacity left by growing (once all texts are added).</summary>
    public void Trim()
    {
        if (_shared) return;
        if (_bytes.Length != _length) Array.Resize(ref _bytes, _length);
        if (_start.Length != _count + 1) Array.Resize(ref _start, _count + 1);
        int slots = SlotCount(_used);
        if (slots < _slots.Length) Rehash(slots);
    }
}
