using Tandem.Provenance;

namespace Tandem.Tests.Provenance;

public class StatsTests
{
    [Fact]
    public void MonotoneAlignmentSkipsTheUnmatchedLayer()
    {
        // B (3 layers) is A (4 layers) without A's layer 1
        double[,] s = { { 0.9, 0.1, 0.0 }, { 0.2, 0.3, 0.1 }, { 0.0, 0.8, 0.2 }, { 0.1, 0.0, 0.95 } };
        var (mean, pairs) = Stats.MonotoneAlign(s);
        Assert.Equal([(0, 0), (2, 1), (3, 2)], pairs);
        Assert.Equal((0.9 + 0.8 + 0.95) / 3, mean, 12);
        // transposed input gives the mirrored matching
        var t = new double[3, 4];
        for (int i = 0; i < 4; i++) for (int j = 0; j < 3; j++) t[j, i] = s[i, j];
        Assert.Equal([(0, 0), (1, 2), (2, 3)], Stats.MonotoneAlign(t).Pairs);
    }

    [Fact]
    public void RocAucCountsWinsAndHalfTies()
    {
        Assert.Equal(1.0, Stats.RocAuc([0.9, 0.8], [0.1, 0.2]));
        Assert.Equal(0.0, Stats.RocAuc([0.1], [0.9]));
        // 0.5 vs {0.5, 0.1}: a tie and a win -> 0.75; 0.2 vs {0.5, 0.1}: a loss and a win -> 0.5
        Assert.Equal((0.75 + 0.5) / 2, Stats.RocAuc([0.5, 0.2], [0.5, 0.1]), 12);
    }

    [Fact]
    public void PearsonAndEmpiricalP()
    {
        Assert.Equal(1.0, Stats.Pearson([1, 2, 3], [2, 4, 6]), 12);
        Assert.Equal(-1.0, Stats.Pearson([1, 2, 3], [3, 2, 1]), 12);
        Assert.True(double.IsNaN(Stats.Pearson([1, 1, 1], [1, 2, 3])));
        Assert.Equal(2.0 / 5, Stats.EmpiricalP(0.5, [0.1, 0.6, 0.2, 0.3]), 12);
    }

    [Fact]
    public void SeededRandomIsReproducibleAndPermutationsAreValid()
    {
        var a = new SeededRandom(5).Permutation(50);
        Assert.Equal(a, new SeededRandom(5).Permutation(50));
        Assert.Equal(Enumerable.Range(0, 50), a.Order());
        Assert.NotEqual(a, new SeededRandom(6).Permutation(50));
    }
}
