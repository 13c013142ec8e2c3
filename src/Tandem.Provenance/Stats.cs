namespace Tandem.Provenance;

/// <summary>Small statistics used by the provenance methods.</summary>
public static class Stats
{
    /// <summary>Pearson correlation; NaN when either side has no variance (the method then has nothing to say).</summary>
    public static double Pearson(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length) throw new ArgumentException("Pearson needs equal lengths.");
        int n = a.Length;
        if (n < 2) return double.NaN;
        double ma = 0, mb = 0;
        for (int i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
        ma /= n; mb /= n;
        double sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < n; i++)
        {
            double x = a[i] - ma, y = b[i] - mb;
            sab += x * y; saa += x * x; sbb += y * y;
        }
        // relative guard: a vector that is constant up to rounding has no pattern to correlate
        if (saa <= 1e-24 * Math.Max(1, ma * ma * n) || sbb <= 1e-24 * Math.Max(1, mb * mb * n)) return double.NaN;
        return sab / Math.Sqrt(saa * sbb);
    }

    /// <summary>
    /// Best monotone matching of rows to columns of a similarity matrix: min(rows, cols) pairs, strictly increasing in
    /// both indices (a layer of the shallower model matches one layer of the deeper one, order kept), maximizing the
    /// summed similarity. Returns the mean similarity of the matched pairs and the pairs.
    /// </summary>
    public static (double Mean, (int A, int B)[] Pairs) MonotoneAlign(double[,] s)
    {
        int ra = s.GetLength(0), rb = s.GetLength(1);
        bool flip = ra > rb;
        int n = flip ? rb : ra, m = flip ? ra : rb; // n <= m
        double At(int i, int j) => flip ? s[j, i] : s[i, j];
        var dp = new double[n + 1, m + 1];
        for (int i = 1; i <= n; i++) for (int j = 0; j <= m; j++) dp[i, j] = double.NegativeInfinity;
        for (int i = 1; i <= n; i++)
            for (int j = i; j <= m; j++)
                dp[i, j] = Math.Max(dp[i, j - 1], dp[i - 1, j - 1] + At(i - 1, j - 1));
        var pairs = new (int, int)[n];
        for (int i = n, j = m; i > 0;)
        {
            if (j > i && dp[i, j] == dp[i, j - 1]) { j--; continue; }
            pairs[i - 1] = flip ? (j - 1, i - 1) : (i - 1, j - 1);
            i--; j--;
        }
        return (n == 0 ? double.NaN : dp[n, m] / n, pairs);
    }

    /// <summary>ROC AUC (Mann-Whitney): probability that a positive outscores a negative, ties counted half.</summary>
    public static double RocAuc(IReadOnlyList<double> positives, IReadOnlyList<double> negatives)
    {
        if (positives.Count == 0 || negatives.Count == 0) return double.NaN;
        double wins = 0;
        foreach (var p in positives)
            foreach (var q in negatives)
                wins += p > q ? 1 : p == q ? 0.5 : 0;
        return wins / ((double)positives.Count * negatives.Count);
    }

    /// <summary>Empirical one-sided p-value of an observed score against null draws: (1 + #null ≥ observed) / (1 + n).</summary>
    public static double EmpiricalP(double observed, IReadOnlyList<double> nulls)
    {
        int above = 0;
        foreach (var v in nulls) if (!(v < observed)) above++;
        return (1.0 + above) / (1.0 + nulls.Count);
    }
}

/// <summary>Seeded generator (SplitMix64) with Gaussian draws: same numbers on every machine and runtime.</summary>
public sealed class SeededRandom(ulong seed)
{
    ulong _state = seed;
    double? _spare;

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in (0, 1).</summary>
    public double Uniform() => ((Next() >> 11) + 0.5) * (1.0 / (1UL << 53));

    public int Below(int n) => (int)(Next() % (ulong)n);

    public double Gaussian()
    {
        if (_spare is { } s) { _spare = null; return s; }
        double u = Uniform(), v = Uniform(), r = Math.Sqrt(-2 * Math.Log(u));
        _spare = r * Math.Sin(2 * Math.PI * v);
        return r * Math.Cos(2 * Math.PI * v);
    }

    /// <summary>A uniformly random permutation of 0..n-1 (Fisher–Yates).</summary>
    public int[] Permutation(int n)
    {
        var p = Enumerable.Range(0, n).ToArray();
        for (int i = n - 1; i > 0; i--) { int j = Below(i + 1); (p[i], p[j]) = (p[j], p[i]); }
        return p;
    }
}
