using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Provenance;

// What is read here, from a GGUF file (layout in Tandem.Gguf/GgufFile.cs), by llama.cpp tensor names:
//   token_embd.weight            [n_embd, n_vocab]   one row per token (ne[0] = n_embd innermost)
//   blk.N.attn_norm.weight       [n_embd]            RMSNorm gain before attention
//   blk.N.attn_q/k/v.weight      [n_embd, n_head*hd] / [n_embd, n_head_kv*hd]; one row per output unit
//   blk.N.attn_q/k/v.bias        [out]               qwen2 only
//   blk.N.attn_q_norm/k_norm     [hd]                qwen3 only
//   blk.N.attn_output.weight     [n_head*hd, n_embd]
//   blk.N.ffn_norm.weight        [n_embd]
//   blk.N.ffn_gate/up.weight     [n_embd, n_ff]; blk.N.ffn_down.weight [n_ff, n_embd]
//   tokenizer.ggml.tokens        string array, token id -> token string
// Tensors of any type Dequantize.Row knows are dequantized one row at a time into a reused buffer, so reading
// never holds more than one row of a tensor in F32 (the file itself is memory-mapped, not copied).

/// <summary>Hyperparameters of a transformer the provenance methods need.</summary>
public sealed record TransformerShape(string Architecture, int Layers, int Embedding, int Heads, int KvHeads, int HeadDim,
    int FeedForward, int Vocab, float NormEps);

/// <summary>
/// Streaming, bounded-memory access to the weights of a llama / qwen2 / qwen3 GGUF file: rows are dequantized
/// on the fly, one at a time. Safetensors is not read yet (it needs the compression issue's reader).
/// </summary>
public sealed unsafe class WeightReader : IDisposable
{
    public static readonly string[] SupportedArchitectures = ["llama", "qwen2", "qwen3"];

    readonly GgufFile _file;
    float[] _row = [];

    public string Path { get; }
    public TransformerShape Shape { get; }
    public string[] Tokens { get; }

    WeightReader(string path, GgufFile file)
    {
        Path = path;
        _file = file;
        string arch = file.GetString("general.architecture")
            ?? throw new ProvenanceException($"{path}: no general.architecture key; is this a model GGUF?");
        if (!SupportedArchitectures.Contains(arch))
            throw new ProvenanceException($"{path}: architecture '{arch}' is not supported by fingerprint; expected one of {string.Join(", ", SupportedArchitectures)}");
        int embd = (int)file.RequireInt($"{arch}.embedding_length");
        int heads = (int)file.RequireInt($"{arch}.attention.head_count");
        int kv = (int)(file.GetInt($"{arch}.attention.head_count_kv") ?? heads);
        int hd = (int)(file.GetInt($"{arch}.attention.key_length") ?? embd / heads);
        Tokens = file.GetArray<string>("tokenizer.ggml.tokens") ?? throw new ProvenanceException($"{path}: no tokenizer.ggml.tokens vocabulary");
        var embdTensor = Require("token_embd.weight");
        if (embdTensor.Columns != embd)
            throw new ProvenanceException($"{path}: token_embd.weight has {embdTensor.Columns} columns, expected n_embd = {embd}");
        int layers = (int)file.RequireInt($"{arch}.block_count");
        for (int l = 0; l < layers; l++)
            foreach (var part in new[] { "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
                         "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight" })
                Require($"blk.{l}.{part}");
        Shape = new TransformerShape(arch, layers, embd, heads, kv, hd, (int)file.RequireInt($"{arch}.feed_forward_length"),
            (int)embdTensor.Rows, (float)(file.GetFloat($"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-6));
    }

    /// <summary>Opens a model file; a missing file, a non-GGUF file or an unsupported architecture is a <see cref="ProvenanceException"/>.</summary>
    public static WeightReader Open(string path)
    {
        if (!File.Exists(path)) throw new ProvenanceException($"model file not found: {path}");
        GgufFile file;
        try { file = GgufFile.Open(path); }
        catch (GgufFormatException e) { throw new ProvenanceException($"{path}: not a readable GGUF file ({e.Message})"); }
        try { return new WeightReader(path, file); }
        catch { file.Dispose(); throw; }
    }

    GgufTensorInfo Require(string name) =>
        _file.TryGetTensor(name, out var t) ? t : throw new ProvenanceException($"{Path}: tensor {name} is missing");

    public bool Has(string name) => _file.TryGetTensor(name, out _);
    public GgufTensorInfo Tensor(string name) => Require(name);

    /// <summary>Row <paramref name="row"/> of a tensor in F32. The span is valid until the next read.</summary>
    public ReadOnlySpan<float> Row(GgufTensorInfo t, long row)
    {
        int n = checked((int)t.Columns);
        if (_row.Length < n) _row = new float[n];
        var info = GgmlTypeInfo.Of(t.Type);
        byte* src = _file.TensorPointer(t) + row * info.RowBytes(n);
        fixed (float* dst = _row)
        {
            try { Dequantize.Row(t.Type, src, dst, n); }
            catch (NotSupportedException e) { throw new ProvenanceException($"{Path}: tensor {t.Name}: {e.Message}"); }
        }
        return _row.AsSpan(0, n);
    }

    /// <summary>A whole 1-D tensor (norm gains, biases) as a new array.</summary>
    public float[] Vector(string name)
    {
        var t = Require(name);
        return Row(t, 0).ToArray();
    }

    /// <summary>Mean and standard deviation of every element of a tensor, streamed row by row.</summary>
    public (double Mean, double Std) Moments(string name)
    {
        var t = Require(name);
        double sum = 0, sum2 = 0;
        for (long r = 0; r < t.Rows; r++)
        {
            var row = Row(t, r);
            double s = 0, s2 = 0;
            foreach (float v in row) { s += v; s2 += (double)v * v; }
            sum += s; sum2 += s2;
        }
        double n = t.ElementCount, mean = sum / n;
        return (mean, Math.Sqrt(Math.Max(0, sum2 / n - mean * mean)));
    }

    /// <summary>
    /// y[k, r] = Σ_c x[k, c] · W[r, c] for every row r of W: the probes <paramref name="x"/> (k × columns) times Wᵀ,
    /// streaming W's rows. Writes into <paramref name="y"/> (k × W.Rows).
    /// </summary>
    public void MultiplyTransposed(string name, float[] x, int k, float[] y)
    {
        var t = Require(name);
        int cols = checked((int)t.Columns), rows = checked((int)t.Rows);
        if (x.Length < k * cols) throw new ProvenanceException($"{Path}: tensor {name} has {cols} columns, probes have {x.Length / Math.Max(1, k)}");
        for (int r = 0; r < rows; r++)
        {
            var w = Row(t, r);
            for (int i = 0; i < k; i++)
                y[i * rows + r] = Dot(x.AsSpan(i * cols, cols), w);
        }
    }

    static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var acc = System.Numerics.Vector<float>.Zero;
        int w = System.Numerics.Vector<float>.Count, i = 0;
        for (; i + w <= a.Length; i += w)
            acc += new System.Numerics.Vector<float>(a.Slice(i, w)) * new System.Numerics.Vector<float>(b.Slice(i, w));
        float s = System.Numerics.Vector.Sum(acc);
        for (; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>
/// A provenance input the user can fix (missing file, unsupported architecture, missing tensor). An ArgumentException,
/// so callers that report bad arguments by message (the CLI) print it as it is.
/// </summary>
public sealed class ProvenanceException(string message) : ArgumentException(message);
