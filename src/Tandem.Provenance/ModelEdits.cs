using System.Runtime.InteropServices;
using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Provenance;

/// <summary>One tensor held in F32, row-major (rows = ne[1..], columns = ne[0]).</summary>
public sealed record EditableTensor(string Name, long[] Dimensions, float[] Data)
{
    public int Columns => (int)Dimensions[0];
    public int Rows => Data.Length / Columns;
}

/// <summary>
/// A small model held in memory in F32 so the benchmark can derive variants from it (quantize, perturb, drop or
/// duplicate layers, permute units, extend the vocabulary) and write them with <see cref="GgufWriter"/>.
/// Only for the benchmark's small models: it holds every weight in memory, unlike <see cref="WeightReader"/>.
/// </summary>
public sealed class EditableModel
{
    public required string Architecture { get; init; }
    public required List<KeyValuePair<string, GgufValue>> Metadata { get; set; }
    public required List<EditableTensor> Tensors { get; set; }

    public static unsafe EditableModel Load(string path)
    {
        using var f = GgufFile.Open(path);
        var tensors = new List<EditableTensor>();
        foreach (var t in f.Tensors)
        {
            var data = new float[t.ElementCount];
            long rowBytes = GgmlTypeInfo.Of(t.Type).RowBytes(t.Columns);
            fixed (float* dst = data)
                for (long r = 0; r < t.Rows; r++)
                    Dequantize.Row(t.Type, f.TensorPointer(t) + r * rowBytes, dst + r * t.Columns, t.Columns);
            tensors.Add(new EditableTensor(t.Name, (long[])t.Dimensions.Clone(), data));
        }
        return new EditableModel
        {
            Architecture = f.RequireString("general.architecture"),
            Metadata = f.MetadataList.ToList(),
            Tensors = tensors,
        };
    }

    public EditableModel Clone() => new()
    {
        Architecture = Architecture,
        Metadata = Metadata.ToList(),
        Tensors = Tensors.Select(t => t with { Dimensions = (long[])t.Dimensions.Clone(), Data = (float[])t.Data.Clone() }).ToList(),
    };

    public EditableTensor this[string name] => Tensors.First(t => t.Name == name);
    public bool Has(string name) => Tensors.Any(t => t.Name == name);
    public int Int(string key) => (int)Metadata.First(kv => kv.Key == key).Value.AsInt64();
    public int Layers => Int($"{Architecture}.block_count");

    /// <summary>
    /// Writes the model; 2-D weights are stored as <paramref name="weightType"/> where their rows are whole blocks of it,
    /// the rest (1-D vectors, odd widths) as F32.
    /// </summary>
    public void Write(string path, GgmlType weightType = GgmlType.F32)
    {
        var list = new List<GgufTensorToWrite>();
        foreach (var t in Tensors)
        {
            var type = weightType;
            if (t.Dimensions.Length < 2 || t.Columns % GgmlTypeInfo.Of(type).BlockSize != 0) type = GgmlType.F32;
            byte[] bytes;
            if (type == GgmlType.F32) bytes = MemoryMarshal.AsBytes(t.Data.AsSpan()).ToArray();
            else
            {
                bytes = new byte[GgmlTypeInfo.Of(type).RowBytes(t.Columns) * t.Rows];
                Quantizer.QuantizeRows(type, t.Data, t.Rows, t.Columns, bytes, maxThreads: 1);
            }
            list.Add(new GgufTensorToWrite(t.Name, t.Dimensions, type, bytes));
        }
        GgufWriter.Write(path, Metadata, list, new GgufWriterOptions { FlushToDisk = false });
    }
}

/// <summary>The edits the benchmark applies. Each returns a new model; the input is left as it was.</summary>
public static class ModelEdits
{
    static (double Mean, double Std) Moments(float[] x)
    {
        double s = 0, s2 = 0;
        foreach (var v in x) { s += v; s2 += (double)v * v; }
        double mean = s / x.Length;
        return (mean, Math.Sqrt(Math.Max(0, s2 / x.Length - mean * mean)));
    }

    /// <summary>Fine-tuning-like drift: every tensor gets Gaussian noise of <paramref name="strength"/> × its own std.</summary>
    public static EditableModel AddNoise(EditableModel m, double strength, ulong seed)
    {
        var c = m.Clone();
        var rng = new SeededRandom(seed);
        foreach (var t in c.Tensors)
        {
            double sd = Moments(t.Data).Std * strength;
            for (int i = 0; i < t.Data.Length; i++) t.Data[i] += (float)(sd * rng.Gaussian());
        }
        return c;
    }

    /// <summary>
    /// An unrelated model of the same shape: every tensor redrawn from a Gaussian with that tensor's mean and std
    /// (so per-tensor statistics, the HonestAGI input, match the original's), from its own seed.
    /// </summary>
    public static EditableModel Unrelated(EditableModel m, ulong seed)
    {
        var c = m.Clone();
        var rng = new SeededRandom(seed);
        foreach (var t in c.Tensors)
        {
            var (mean, sd) = Moments(t.Data);
            for (int i = 0; i < t.Data.Length; i++) t.Data[i] = (float)(mean + sd * rng.Gaussian());
        }
        return c;
    }

    /// <summary>Removes layer <paramref name="layer"/> and renumbers the ones after it (a pruned model).</summary>
    public static EditableModel DropLayer(EditableModel m, int layer) => Relayer(m, Enumerable.Range(0, m.Layers).Where(l => l != layer).ToArray());

    /// <summary>Inserts a copy of layer <paramref name="layer"/> right after it (depth up-scaling).</summary>
    public static EditableModel DuplicateLayer(EditableModel m, int layer) =>
        Relayer(m, Enumerable.Range(0, m.Layers).SelectMany(l => l == layer ? new[] { l, l } : [l]).ToArray());

    /// <summary>New layer i is old layer <paramref name="source"/>[i].</summary>
    static EditableModel Relayer(EditableModel m, int[] source)
    {
        var c = m.Clone();
        var global = c.Tensors.Where(t => !t.Name.StartsWith("blk.", StringComparison.Ordinal)).ToList();
        var layered = new List<EditableTensor>();
        for (int i = 0; i < source.Length; i++)
            foreach (var t in m.Tensors.Where(t => t.Name.StartsWith($"blk.{source[i]}.", StringComparison.Ordinal)))
                layered.Add(t with { Name = $"blk.{i}." + t.Name[($"blk.{source[i]}.".Length)..], Data = (float[])t.Data.Clone() });
        int embd = global.FindIndex(t => t.Name == "token_embd.weight");
        c.Tensors = [.. global.Take(embd + 1), .. layered, .. global.Skip(embd + 1)];
        c.Metadata = c.Metadata.With($"{c.Architecture}.block_count", GgufValue.Of((uint)source.Length));
        return c;
    }

    /// <summary>
    /// Permutes hidden units, KV heads (with their query-head groups) and feed-forward units consistently, so the
    /// network computes the same function with its weights shuffled.
    /// </summary>
    public static EditableModel Permute(EditableModel m, ulong seed)
    {
        var c = m.Clone();
        var rng = new SeededRandom(seed);
        string a = m.Architecture;
        int d = m.Int($"{a}.embedding_length"), heads = m.Int($"{a}.attention.head_count"), ff = m.Int($"{a}.feed_forward_length");
        int kvHeads = m.Metadata.Any(kv => kv.Key == $"{a}.attention.head_count_kv") ? m.Int($"{a}.attention.head_count_kv") : heads;
        int hd = m.Metadata.Any(kv => kv.Key == $"{a}.attention.key_length") ? m.Int($"{a}.attention.key_length") : d / heads;
        int group = heads / kvHeads;
        var hidden = rng.Permutation(d);
        var kvPerm = rng.Permutation(kvHeads);
        // query head g*group+w comes from old head kvPerm[g]*group+w, so each query group keeps its KV head
        int[] Units(int[] headPerm, int g) => Enumerable.Range(0, headPerm.Length * g * hd).Select(u => (headPerm[u / hd / g] * g + u / hd % g) * hd + u % hd).ToArray();
        var qUnits = Units(kvPerm, group);
        var kvUnits = Units(kvPerm, 1);
        foreach (var t in c.Tensors)
        {
            string part = t.Name.StartsWith("blk.", StringComparison.Ordinal) ? t.Name[(t.Name.IndexOf('.', 4) + 1)..] : t.Name;
            switch (part)
            {
                case "token_embd.weight" or "output.weight": PermuteColumns(t, hidden); break;
                case "attn_norm.weight" or "ffn_norm.weight" or "output_norm.weight": PermuteRows(t, hidden); break;
                case "attn_q.weight": PermuteColumns(t, hidden); PermuteRows(t, qUnits); break;
                case "attn_k.weight" or "attn_v.weight": PermuteColumns(t, hidden); PermuteRows(t, kvUnits); break;
                case "attn_q.bias": PermuteRows(t, qUnits); break;
                case "attn_k.bias" or "attn_v.bias": PermuteRows(t, kvUnits); break;
                case "attn_output.weight": PermuteColumns(t, qUnits); PermuteRows(t, hidden); break;
                case "ffn_gate.weight" or "ffn_up.weight": PermuteColumns(t, hidden); PermuteRows(t, FfnPerm(t.Name)); break;
                case "ffn_down.weight": PermuteColumns(t, FfnPerm(t.Name)); PermuteRows(t, hidden); break;
            }
        }
        return c;

        // one FFN permutation per layer, shared by its gate, up and down
        int[] FfnPerm(string name) => new SeededRandom(seed * 31 + (ulong)int.Parse(name.Split('.')[1], System.Globalization.CultureInfo.InvariantCulture) + 1).Permutation(ff);
    }

    /// <summary>
    /// Magnitude pruning of the feed-forward width: in every layer keeps the (1 − <paramref name="fraction"/>) FFN units
    /// whose gate·up·down weight norms are largest, and sets feed_forward_length to match.
    /// </summary>
    public static EditableModel PruneFeedForward(EditableModel m, double fraction)
    {
        var c = m.Clone();
        int ff = m.Int($"{m.Architecture}.feed_forward_length");
        int keep = Math.Max(1, (int)Math.Round(ff * (1 - fraction)));
        for (int l = 0; l < m.Layers; l++)
        {
            var gate = c[$"blk.{l}.ffn_gate.weight"];
            var up = c[$"blk.{l}.ffn_up.weight"];
            var down = c[$"blk.{l}.ffn_down.weight"];
            double RowNorm(EditableTensor t, int r) { double s = 0; for (int i = 0; i < t.Columns; i++) s += t.Data[r * t.Columns + i] * t.Data[r * t.Columns + i]; return Math.Sqrt(s); }
            double ColNorm(EditableTensor t, int col) { double s = 0; for (int r = 0; r < t.Rows; r++) s += t.Data[r * t.Columns + col] * t.Data[r * t.Columns + col]; return Math.Sqrt(s); }
            var kept = Enumerable.Range(0, ff).OrderByDescending(u => RowNorm(gate, u) * RowNorm(up, u) * ColNorm(down, u)).Take(keep).Order().ToArray();
            Replace(c, gate with { Dimensions = [gate.Dimensions[0], keep], Data = kept.SelectMany(u => gate.Data.AsSpan(u * gate.Columns, gate.Columns).ToArray()).ToArray() });
            Replace(c, up with { Dimensions = [up.Dimensions[0], keep], Data = kept.SelectMany(u => up.Data.AsSpan(u * up.Columns, up.Columns).ToArray()).ToArray() });
            var d = new float[down.Rows * keep];
            for (int r = 0; r < down.Rows; r++) for (int i = 0; i < keep; i++) d[r * keep + i] = down.Data[r * down.Columns + kept[i]];
            Replace(c, down with { Dimensions = [keep, down.Dimensions[1]], Data = d });
        }
        c.Metadata = c.Metadata.With($"{c.Architecture}.feed_forward_length", GgufValue.Of((uint)keep));
        return c;
    }

    static void Replace(EditableModel m, EditableTensor t) => m.Tensors[m.Tensors.FindIndex(x => x.Name == t.Name)] = t;

    /// <summary>1-D tensors: new[i] = old[p[i]]; 2-D: new row i = old row p[i].</summary>
    static void PermuteRows(EditableTensor t, int[] p)
    {
        int cols = t.Dimensions.Length < 2 ? 1 : t.Columns;
        var old = (float[])t.Data.Clone();
        for (int i = 0; i < p.Length; i++) Array.Copy(old, p[i] * cols, t.Data, i * cols, cols);
    }

    static void PermuteColumns(EditableTensor t, int[] p)
    {
        int cols = t.Columns;
        var row = new float[cols];
        for (int r = 0; r < t.Rows; r++)
        {
            t.Data.AsSpan(r * cols, cols).CopyTo(row);
            for (int i = 0; i < cols; i++) t.Data[r * cols + i] = row[p[i]];
        }
    }

    /// <summary>Adds <paramref name="count"/> new tokens with fresh embedding (and output) rows drawn like the existing ones.</summary>
    public static EditableModel ExtendVocabulary(EditableModel m, int count, ulong seed)
    {
        var c = m.Clone();
        var rng = new SeededRandom(seed);
        for (int i = 0; i < c.Tensors.Count; i++)
        {
            var t = c.Tensors[i];
            if (t.Name is not ("token_embd.weight" or "output.weight")) continue;
            var (mean, sd) = Moments(t.Data);
            var data = new float[t.Data.Length + count * t.Columns];
            t.Data.CopyTo(data, 0);
            for (int j = t.Data.Length; j < data.Length; j++) data[j] = (float)(mean + sd * rng.Gaussian());
            c.Tensors[i] = t with { Dimensions = [t.Dimensions[0], t.Dimensions[1] + count], Data = data };
        }
        foreach (var (key, fill) in new (string, object)[] { ("tokenizer.ggml.tokens", ""), ("tokenizer.ggml.token_type", 4), ("tokenizer.ggml.scores", 0f) })
        {
            int at = c.Metadata.FindIndex(kv => kv.Key == key);
            if (at < 0) continue;
            var arr = c.Metadata[at].Value.AsArray();
            var items = Array.CreateInstance(arr.Items.GetType().GetElementType()!, arr.Count + count);
            Array.Copy(arr.Items, items, arr.Count);
            for (int j = 0; j < count; j++)
                items.SetValue(key == "tokenizer.ggml.tokens" ? $"<|extra_{j}|>" : Convert.ChangeType(fill, items.GetType().GetElementType()!), arr.Count + j);
            c.Metadata[at] = new(key, GgufValue.Of(new GgufArray(arr.ElementType, items)));
        }
        return c;
    }
}
