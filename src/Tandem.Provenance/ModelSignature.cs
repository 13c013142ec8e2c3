namespace Tandem.Provenance;

/// <summary>How a signature is taken.</summary>
public sealed record SignatureOptions
{
    /// <summary>Probe tokens for the embedding and per-layer invariants (fewer if the vocabularies share fewer).</summary>
    public int ProbeCount { get; init; } = 128;
    /// <summary>Below this many shared tokens the token-based methods say nothing.</summary>
    public int MinProbeCount { get; init; } = 16;
}

/// <summary>
/// What the provenance methods compare, taken from one model in one streaming pass. Memory: the probe activations
/// (probes × max(n_embd, n_head·hd, n_ff) floats), one dequantized row, and 3·probes² doubles per layer — for
/// 128 probes and a 1.5B model (n_ff 8960, 28 layers) under 30 MB, far inside the 256 MB bound stated in README.
/// </summary>
public sealed class ModelSignature
{
    public required string Path { get; init; }
    public required TransformerShape Shape { get; init; }
    /// <summary>HonestAGI input: standard deviation of Q, K, V, O weights, [projection][layer].</summary>
    public required double[][] ProjectionStd { get; init; }
    /// <summary>Per layer, the 1-D parameters (norm gains, biases) by tensor part name.</summary>
    public required Dictionary<string, float[]>[] LayerVectors { get; init; }
    /// <summary>The probe token strings, in order; the token-based matrices below are indexed by them.</summary>
    public required string[] Probes { get; init; }
    /// <summary>Cosine similarities of the probes' embedding rows (probes × probes, row-major); empty without probes.</summary>
    public required double[] EmbeddingGram { get; init; }
    /// <summary>
    /// Per layer, three probes × probes matrices invariant to permutations of hidden units, heads and FFN units:
    /// query-key scores xᵢ·Wqᵀ·Wk·xⱼ (summed over heads), the value-output map x̂ᵢ·Wo·Wv·xⱼ and the FFN map x̂ᵢ·FFN(xⱼ).
    /// </summary>
    public required double[][][] LayerInvariants { get; init; }

    public static readonly string[] ProjectionNames = ["Q", "K", "V", "O"];
    public static readonly string[] InvariantNames = ["qk", "ov", "ffn"];
    static readonly string[] ProjectionTensors = ["attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight"];
    static readonly string[] VectorParts = ["attn_norm.weight", "ffn_norm.weight", "attn_q.bias", "attn_k.bias", "attn_v.bias",
        "attn_q_norm.weight", "attn_k_norm.weight"];

    /// <summary>Reads the signature of the model at <paramref name="path"/>, probing with the given token strings.</summary>
    public static ModelSignature Extract(string path, IReadOnlyList<string> probes)
    {
        using var r = WeightReader.Open(path);
        return Extract(r, probes);
    }

    public static ModelSignature Extract(WeightReader r, IReadOnlyList<string> probes)
    {
        var s = r.Shape;
        int L = s.Layers, d = s.Embedding;
        var std = new double[4][];
        for (int p = 0; p < 4; p++)
        {
            std[p] = new double[L];
            for (int l = 0; l < L; l++) std[p][l] = r.Moments($"blk.{l}.{ProjectionTensors[p]}").Std;
        }
        var vectors = new Dictionary<string, float[]>[L];
        for (int l = 0; l < L; l++)
        {
            vectors[l] = new Dictionary<string, float[]>(StringComparer.Ordinal);
            foreach (var part in VectorParts)
                if (r.Has($"blk.{l}.{part}")) vectors[l][part] = r.Vector($"blk.{l}.{part}");
        }

        int k = probes.Count;
        var gram = Array.Empty<double>();
        var inv = new double[L][][];
        if (k == 0)
        {
            for (int l = 0; l < L; l++) inv[l] = [];
        }
        else
        {
            var ids = TokenIds(r, probes);
            var x = new float[k * d];
            var embd = r.Tensor("token_embd.weight");
            for (int i = 0; i < k; i++) r.Row(embd, ids[i]).CopyTo(x.AsSpan(i * d, d));
            gram = CosineGram(x, k, d);
            var xhat = RmsNormRows(x, k, d, null, s.NormEps);
            for (int l = 0; l < L; l++) inv[l] = LayerInvariant(r, l, xhat, k);
        }
        return new ModelSignature
        {
            Path = r.Path, Shape = s, ProjectionStd = std, LayerVectors = vectors, Probes = probes.ToArray(),
            EmbeddingGram = gram, LayerInvariants = inv,
        };
    }

    static int[] TokenIds(WeightReader r, IReadOnlyList<string> probes)
    {
        var first = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = r.Tokens.Length - 1; i >= 0; i--) first[r.Tokens[i]] = i;
        var ids = new int[probes.Count];
        for (int i = 0; i < ids.Length; i++)
        {
            if (!first.TryGetValue(probes[i], out ids[i])) throw new ProvenanceException($"{r.Path}: probe token '{probes[i]}' is not in the vocabulary");
            if (ids[i] >= r.Shape.Vocab) throw new ProvenanceException($"{r.Path}: token {ids[i]} has no embedding row (token_embd has {r.Shape.Vocab})");
        }
        return ids;
    }

    static double[][] LayerInvariant(WeightReader r, int l, float[] xhat, int k)
    {
        var s = r.Shape;
        int d = s.Embedding, qDim = s.Heads * s.HeadDim, kvDim = s.KvHeads * s.HeadDim, group = s.Heads / Math.Max(1, s.KvHeads);
        string b = $"blk.{l}.";
        var xa = Scale(xhat, k, d, r.Vector(b + "attn_norm.weight"));
        var q = new float[k * qDim];
        var kk = new float[k * kvDim];
        var v = new float[k * kvDim];
        r.MultiplyTransposed(b + "attn_q.weight", xa, k, q);
        r.MultiplyTransposed(b + "attn_k.weight", xa, k, kk);
        r.MultiplyTransposed(b + "attn_v.weight", xa, k, v);

        // query-key: Σ_h q_i[h] · k_j[h / group]
        var qk = new double[k * k];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
            {
                double sum = 0;
                for (int h = 0; h < s.Heads; h++)
                {
                    int qo = i * qDim + h * s.HeadDim, ko = j * kvDim + h / group * s.HeadDim;
                    for (int e = 0; e < s.HeadDim; e++) sum += q[qo + e] * kk[ko + e];
                }
                qk[i * k + j] = sum;
            }

        // value-output: read out Wo · (v_j expanded to all query heads) against x̂_i
        var vexp = new float[k * qDim];
        for (int j = 0; j < k; j++)
            for (int h = 0; h < s.Heads; h++)
                Array.Copy(v, j * kvDim + h / group * s.HeadDim, vexp, j * qDim + h * s.HeadDim, s.HeadDim);
        var ov = ReadOut(r, b + "attn_output.weight", vexp, xhat, k, d);

        // feed-forward: x̂_i · down(silu(gate x_j) ⊙ up x_j)
        var xf = Scale(xhat, k, d, r.Vector(b + "ffn_norm.weight"));
        int ff = s.FeedForward;
        var g = new float[k * ff];
        var u = new float[k * ff];
        r.MultiplyTransposed(b + "ffn_gate.weight", xf, k, g);
        r.MultiplyTransposed(b + "ffn_up.weight", xf, k, u);
        for (int i = 0; i < g.Length; i++) g[i] = g[i] / (1 + MathF.Exp(-g[i])) * u[i];
        var fo = ReadOut(r, b + "ffn_down.weight", g, xhat, k, d);
        return [qk, ov, fo];
    }

    /// <summary>M[i, j] = x̂_i · (W h_j): h (k × W.Columns) is mapped back to the residual width and read against x̂.</summary>
    static double[] ReadOut(WeightReader r, string tensor, float[] h, float[] xhat, int k, int d)
    {
        var y = new float[k * d];
        r.MultiplyTransposed(tensor, h, k, y);
        var m = new double[k * k];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
            {
                double sum = 0;
                for (int c = 0; c < d; c++) sum += xhat[i * d + c] * y[j * d + c];
                m[i * k + j] = sum;
            }
        return m;
    }

    static float[] Scale(float[] x, int k, int d, float[] gain)
    {
        var y = new float[k * d];
        for (int i = 0; i < k; i++) for (int c = 0; c < d; c++) y[i * d + c] = x[i * d + c] * gain[c];
        return y;
    }

    static float[] RmsNormRows(float[] x, int k, int d, float[]? gain, float eps)
    {
        var y = new float[k * d];
        for (int i = 0; i < k; i++)
        {
            double ss = 0;
            for (int c = 0; c < d; c++) ss += (double)x[i * d + c] * x[i * d + c];
            float inv = (float)(1 / Math.Sqrt(ss / d + eps));
            for (int c = 0; c < d; c++) y[i * d + c] = x[i * d + c] * inv * (gain?[c] ?? 1f);
        }
        return y;
    }

    static double[] CosineGram(float[] x, int k, int d)
    {
        var norms = new double[k];
        for (int i = 0; i < k; i++)
        {
            double ss = 0;
            for (int c = 0; c < d; c++) ss += (double)x[i * d + c] * x[i * d + c];
            norms[i] = Math.Sqrt(ss) + 1e-30;
        }
        var g = new double[k * k];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
            {
                double sum = 0;
                for (int c = 0; c < d; c++) sum += (double)x[i * d + c] * x[j * d + c];
                g[i * k + j] = sum / (norms[i] * norms[j]);
            }
        return g;
    }
}

/// <summary>Chooses probe tokens from the token strings two vocabularies share, the same way for every pair.</summary>
public static class ProbeSet
{
    /// <summary>Token strings present in every vocabulary (empty strings excluded).</summary>
    public static List<string> Shared(params IReadOnlyList<string>[] vocabularies)
    {
        var set = new HashSet<string>(vocabularies[0].Where(t => t.Length > 0), StringComparer.Ordinal);
        foreach (var v in vocabularies.Skip(1)) set.IntersectWith(v);
        return set.ToList();
    }

    /// <summary>
    /// The <paramref name="count"/> shared strings with the smallest FNV-1a hash: a choice that depends only on the
    /// strings, so models that share a vocabulary get the same probes whatever else their vocabularies hold.
    /// </summary>
    public static string[] Choose(IEnumerable<string> shared, int count) =>
        shared.OrderBy(Hash).ThenBy(t => t, StringComparer.Ordinal).Take(count).ToArray();

    static ulong Hash(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(s)) { h ^= b; h *= 1099511628211UL; }
        return h;
    }
}
