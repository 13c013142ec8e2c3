namespace Tandem.Provenance;

/// <summary>One method's answer for a pair. <see cref="Score"/> is NaN when the method does not apply.</summary>
public sealed record MethodResult(string Method, double Score, double PValue, string Note)
{
    public bool Applicable => !double.IsNaN(Score);
    /// <summary>Per-layer similarity along the alignment (layer of A, layer of B, similarity), where the method has one.</summary>
    public IReadOnlyList<(int A, int B, double Similarity)> Layers { get; init; } = [];
}

/// <summary>How hard the p-values work.</summary>
public sealed record MethodOptions
{
    public int Permutations { get; init; } = 199;
    public ulong Seed { get; init; } = 20250704;
}

/// <summary>The provenance methods. Each compares two signatures and gives a score with a p-value.</summary>
public static class Methods
{
    public const string HonestAgiRaw = "honestagi-raw", HonestAgiCentered = "honestagi-centered", BiasNorm = "bias-norm",
        LayerInvariant = "layer-invariant", Embedding = "embedding";
    public static readonly string[] All = [HonestAgiRaw, HonestAgiCentered, BiasNorm, LayerInvariant, Embedding];

    /// <summary>
    /// The HonestAGI statistic. Raw, as published: each model's Q/K/V/O per-layer std series are scaled by the model's
    /// largest value (normalised across layers), laid end to end and Pearson-correlated — level differences between
    /// the projections and the depth trend of the common init then count as "correlation". Centered: each projection's
    /// series has its mean across layers removed first, so only the layer-to-layer pattern is compared.
    /// Depths that differ are met by linear interpolation of B onto A's depth. p-value: B's layer order permuted.
    /// </summary>
    public static MethodResult HonestAgi(ModelSignature a, ModelSignature b, bool centered, MethodOptions? options = null)
    {
        options ??= new();
        string name = centered ? HonestAgiCentered : HonestAgiRaw;
        int L = a.Shape.Layers;
        if (L < 2) return new(name, double.NaN, double.NaN, "needs at least 2 layers");
        var fa = Profile(a.ProjectionStd, L, centered, null);
        var fb = Profile(b.ProjectionStd, L, centered, null);
        double score = Stats.Pearson(fa, fb);
        if (double.IsNaN(score)) return new(name, double.NaN, double.NaN, "a std profile is constant");
        var nulls = new List<double>();
        foreach (var perm in LayerPermutations(L, options))
            nulls.Add(Stats.Pearson(fa, Profile(b.ProjectionStd, L, centered, perm)));
        string note = a.Shape.Layers == b.Shape.Layers ? "" : $"B resampled from {b.Shape.Layers} to {L} layers";
        return new(name, score, Stats.EmpiricalP(score, nulls), note);
    }

    static double[] Profile(double[][] std, int depth, bool centered, int[]? perm)
    {
        double max = std.Max(p => p.Max());
        var f = new double[4 * depth];
        for (int p = 0; p < 4; p++)
        {
            var series = Resample(std[p], depth);
            if (perm is not null) series = perm.Select(i => series[i]).ToArray();
            double mean = centered ? series.Average() : 0;
            for (int l = 0; l < depth; l++) f[p * depth + l] = (series[l] - mean) / max;
        }
        return f;
    }

    static double[] Resample(double[] x, int n)
    {
        if (x.Length == n) return x;
        var y = new double[n];
        for (int i = 0; i < n; i++)
        {
            double t = n == 1 ? 0 : i * (x.Length - 1.0) / (n - 1);
            int lo = (int)Math.Floor(t), hi = Math.Min(x.Length - 1, lo + 1);
            y[i] = x[lo] + (x[hi] - x[lo]) * (t - lo);
        }
        return y;
    }

    static IEnumerable<int[]> LayerPermutations(int n, MethodOptions options)
    {
        if (n <= 6)
        {
            // every reordering but the identity (at most 719)
            foreach (var p in AllPermutations(Enumerable.Range(0, n).ToArray(), 0))
                if (!p.Select((v, i) => v == i).All(x => x)) yield return p;
            yield break;
        }
        var rng = new SeededRandom(options.Seed);
        for (int i = 0; i < options.Permutations; i++) yield return rng.Permutation(n);
    }

    static IEnumerable<int[]> AllPermutations(int[] p, int k)
    {
        if (k == p.Length) { yield return (int[])p.Clone(); yield break; }
        for (int i = k; i < p.Length; i++)
        {
            (p[k], p[i]) = (p[i], p[k]);
            foreach (var q in AllPermutations(p, k + 1)) yield return q;
            (p[k], p[i]) = (p[i], p[k]);
        }
    }

    /// <summary>
    /// Norm gains and biases: per layer, every 1-D parameter both models have at the same length is mean-centred and
    /// the pieces laid end to end; layers are matched by the best monotone alignment of their Pearson correlations.
    /// Not invariant to permuted hidden units (a permuted copy looks unrelated here). p-value: B's entries shuffled.
    /// </summary>
    public static MethodResult BiasNormSimilarity(ModelSignature a, ModelSignature b, MethodOptions? options = null)
    {
        options ??= new();
        var parts = a.LayerVectors[0].Keys.Where(k => b.LayerVectors[0].TryGetValue(k, out var v) && v.Length == a.LayerVectors[0][k].Length)
            .OrderBy(k => k, StringComparer.Ordinal).ToArray();
        if (parts.Length == 0) return new(BiasNorm, double.NaN, double.NaN, "no norm or bias vectors of matching length");
        double[][] Flat(ModelSignature m, Dictionary<int, int[]>? shuffle) => m.LayerVectors.Select(layer =>
        {
            var list = new List<double>();
            foreach (var part in parts)
            {
                var v = layer[part];
                double mean = v.Average(x => (double)x);
                for (int i = 0; i < v.Length; i++) list.Add(v[shuffle is null ? i : shuffle[v.Length][i]] - mean);
            }
            return list.ToArray();
        }).ToArray();
        var fa = Flat(a, null);
        var (score, pairs) = AlignedScore(fa, Flat(b, null));
        if (double.IsNaN(score)) return new(BiasNorm, double.NaN, double.NaN, "norm and bias vectors are constant (nothing to compare)");
        var rng = new SeededRandom(options.Seed);
        var nulls = new List<double>();
        var lengths = parts.Select(part => b.LayerVectors[0][part].Length).Distinct().ToArray();
        for (int t = 0; t < options.Permutations; t++)
        {
            // one shuffle per vector length, shared by the layers (a vector's entries lose their unit identity)
            var perms = lengths.ToDictionary(n => n, n => rng.Permutation(n));
            nulls.Add(AlignedScore(fa, Flat(b, perms)).Score);
        }
        return new(BiasNorm, score, Stats.EmpiricalP(score, nulls), string.Join(",", parts)) { Layers = pairs };
    }

    static (double Score, (int, int, double)[] Pairs) AlignedScore(double[][] fa, double[][] fb)
    {
        var s = new double[fa.Length, fb.Length];
        bool any = false;
        for (int i = 0; i < fa.Length; i++)
            for (int j = 0; j < fb.Length; j++)
            {
                double r = fa[i].Length == fb[j].Length ? Stats.Pearson(fa[i], fb[j]) : double.NaN;
                any |= !double.IsNaN(r);
                s[i, j] = double.IsNaN(r) ? 0 : r;
            }
        if (!any) return (double.NaN, []);
        var (mean, pairs) = Stats.MonotoneAlign(s);
        return (mean, pairs.Select(p => (p.A, p.B, s[p.A, p.B])).ToArray());
    }

    /// <summary>
    /// Permutation-invariant per-layer signatures (query-key, value-output and FFN maps of the shared probe tokens)
    /// correlated layer by layer over the off-diagonal entries, layers matched by the best monotone alignment
    /// (so dropped or duplicated layers still line up). p-value: B's probe tokens relabelled at random.
    /// </summary>
    public static MethodResult LayerInvariants(ModelSignature a, ModelSignature b, MethodOptions? options = null)
    {
        options ??= new();
        int k = a.Probes.Length;
        if (!SameProbes(a, b, out var why)) return new(LayerInvariant, double.NaN, double.NaN, why);
        var na = a.LayerInvariants.Select(l => l.Select(m => OffDiagonalStandardized(m, k)).ToArray()).ToArray();
        var nb = b.LayerInvariants.Select(l => l.Select(m => OffDiagonalStandardized(m, k)).ToArray()).ToArray();
        double[,] Similarity(int[]? perm)
        {
            var s = new double[na.Length, nb.Length];
            for (int i = 0; i < na.Length; i++)
                for (int j = 0; j < nb.Length; j++)
                {
                    double sum = 0;
                    for (int t = 0; t < na[i].Length; t++) sum += PermutedCorrelation(na[i][t], nb[j][t], k, perm);
                    s[i, j] = sum / na[i].Length;
                }
            return s;
        }
        var sim = Similarity(null);
        var (score, pairs) = Stats.MonotoneAlign(sim);
        var rng = new SeededRandom(options.Seed);
        var nulls = new List<double>();
        for (int t = 0; t < options.Permutations; t++) nulls.Add(Stats.MonotoneAlign(Similarity(rng.Permutation(k))).Mean);
        return new(LayerInvariant, score, Stats.EmpiricalP(score, nulls), $"{k} probe tokens") { Layers = pairs.Select(p => (p.A, p.B, sim[p.A, p.B])).ToArray() };
    }

    /// <summary>
    /// Embedding rows of the shared probe tokens: Pearson correlation of the two models' cosine-similarity matrices
    /// (off-diagonal). Invariant to any rotation or permutation of the hidden units, and to added vocabulary rows.
    /// p-value: B's probe tokens relabelled at random.
    /// </summary>
    public static MethodResult EmbeddingSimilarity(ModelSignature a, ModelSignature b, MethodOptions? options = null)
    {
        options ??= new();
        int k = a.Probes.Length;
        if (!SameProbes(a, b, out var why)) return new(Embedding, double.NaN, double.NaN, why);
        var ga = OffDiagonalStandardized(a.EmbeddingGram, k);
        var gb = OffDiagonalStandardized(b.EmbeddingGram, k);
        double score = PermutedCorrelation(ga, gb, k, null);
        var rng = new SeededRandom(options.Seed);
        var nulls = new List<double>();
        for (int t = 0; t < Math.Max(options.Permutations, 999); t++) nulls.Add(PermutedCorrelation(ga, gb, k, rng.Permutation(k)));
        return new(Embedding, score, Stats.EmpiricalP(score, nulls), $"{k} shared tokens");
    }

    static bool SameProbes(ModelSignature a, ModelSignature b, out string why)
    {
        why = "";
        if (a.Probes.Length < 16) { why = $"only {a.Probes.Length} shared tokens"; return false; }
        if (!a.Probes.SequenceEqual(b.Probes)) throw new ArgumentException("Signatures were taken with different probe tokens; extract both with the same probes.");
        return true;
    }

    /// <summary>A k×k matrix with its diagonal set to 0 and its off-diagonal entries standardized (mean 0, unit norm).</summary>
    static double[] OffDiagonalStandardized(double[] m, int k)
    {
        double mean = 0;
        for (int i = 0; i < k; i++) for (int j = 0; j < k; j++) if (i != j) mean += m[i * k + j];
        mean /= k * (k - 1.0);
        var z = new double[k * k];
        double ss = 0;
        for (int i = 0; i < k; i++) for (int j = 0; j < k; j++) if (i != j) { z[i * k + j] = m[i * k + j] - mean; ss += z[i * k + j] * z[i * k + j]; }
        double norm = Math.Sqrt(ss);
        if (norm > 0) for (int i = 0; i < z.Length; i++) z[i] /= norm;
        return z;
    }

    /// <summary>Correlation of two standardized off-diagonal matrices, B's tokens relabelled by <paramref name="perm"/>.</summary>
    static double PermutedCorrelation(double[] a, double[] b, int k, int[]? perm)
    {
        double sum = 0;
        for (int i = 0; i < k; i++)
        {
            int pi = perm?[i] ?? i;
            for (int j = 0; j < k; j++) sum += a[i * k + j] * b[pi * k + (perm?[j] ?? j)];
        }
        return sum;
    }
}
