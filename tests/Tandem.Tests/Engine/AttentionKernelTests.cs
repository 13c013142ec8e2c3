using Tandem.Engine.Blocks;

namespace Tandem.Tests.Engine;

/// <summary>The vectorized attention head against its scalar reference (the llama.cpp flash-attention arithmetic), bit for bit.</summary>
public class AttentionKernelTests
{
    /// <summary>An F16 cache of <paramref name="kvHeads"/> heads per position: keys in [−2, 2), values in [−10, 10).</summary>
    static (Half[] Keys, Half[] Values, int KeyStride, int ValueStride) RandomCache(Random rng, int positions, int kvHeads, int headDim, int valueDim)
    {
        int keyStride = kvHeads * headDim, valueStride = kvHeads * valueDim;
        var keys = new Half[positions * keyStride];
        var values = new Half[positions * valueStride];
        for (int i = 0; i < keys.Length; i++) keys[i] = (Half)(rng.NextDouble() * 4 - 2);
        for (int i = 0; i < values.Length; i++) values[i] = (Half)(rng.NextDouble() * 20 - 10);
        return (keys, values, keyStride, valueStride);
    }

    [Theory]
    [InlineData(64, 64)]
    [InlineData(128, 128)]
    [InlineData(80, 80)]   // a tail after the 64-element steps
    [InlineData(32, 48)]   // no whole step at all
    [InlineData(128, 64)]  // values narrower than keys
    public void HeadEqualsTheScalarReference(int headDim, int valueDim)
    {
        var rng = new Random(headDim * 31 + valueDim);
        // Past two tiles of 16 positions, so that whole tiles, a partial last tile and a single position all occur.
        const int positions = 70, kvHeads = 2;
        var (keys, values, keyStride, valueStride) = RandomCache(rng, positions, kvHeads, headDim, valueDim);
        var scratch = new Attention.Scratch(headDim, valueDim, positions);
        var queryF16 = new Half[headDim];
        var accumulator = new Half[valueDim];
        for (int trial = 0; trial < 24; trial++)
        {
            // Growing query scales make later scores larger, which exercises the running-max rescale.
            var query = Enumerable.Range(0, headDim).Select(_ => (float)(rng.NextDouble() * 2 - 1) * (1 + trial)).ToArray();
            int kvHead = trial % kvHeads;
            var geometry = new Attention.HeadGeometry(headDim, valueDim, keyStride, kvHead * headDim, valueStride, kvHead * valueDim, 1f / MathF.Sqrt(headDim));
            int attend = 1 + trial * 3 % positions;
            var expected = new float[valueDim];
            var actual = new float[valueDim];
            Attention.HeadReference(query, keys, values, geometry, attend, queryF16, accumulator, expected);
            Attention.Head(query, keys, values, geometry, attend, scratch, actual);
            for (int i = 0; i < valueDim; i++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                    $"hd {headDim}, positions {attend}, element {i}: {actual[i]:R} vs reference {expected[i]:R}");
        }
    }

    /// <summary>The tiled (F32) kernel's vector form against its scalar reference: positions across several 64-position
    /// tiles with partial last tiles, rescales when a later tile raises the max, and score ranges wide enough that some
    /// weights underflow.</summary>
    [Theory]
    [InlineData(64, 64)]
    [InlineData(128, 128)]
    [InlineData(128, 64)]
    [InlineData(80, 80)]   // a width the vector form does not take: the reference itself runs
    public void TiledHeadEqualsItsScalarReference(int headDim, int valueDim)
    {
        var rng = new Random(headDim * 17 + valueDim);
        const int positions = 200, kvHeads = 2;
        var (keys, values, keyStride, valueStride) = RandomCache(rng, positions, kvHeads, headDim, valueDim);
        var scratch = new Attention.Scratch(headDim, valueDim, positions);
        foreach (int attend in new[] { 1, 15, 16, 17, 48, 63, 64, 65, 100, 128, 129, 200 })
        {
            int kvHead = attend % kvHeads;
            // A growing query scale makes later positions' scores larger, so later tiles raise the running max.
            float growth = attend % 3 == 0 ? 0.05f : 0f;
            var query = Enumerable.Range(0, headDim).Select(i => (float)(rng.NextDouble() * 2 - 1) * (1 + attend / 20f)).ToArray();
            for (int p = 0; p < attend; p++)
                for (int i = 0; i < headDim; i++)
                    keys[p * keyStride + kvHead * headDim + i] = (Half)((float)keys[p * keyStride + kvHead * headDim + i] * (1 + growth * p / 10));
            var geometry = new Attention.HeadGeometry(headDim, valueDim, keyStride, kvHead * headDim, valueStride, kvHead * valueDim, 1f / MathF.Sqrt(headDim));
            var expected = new float[valueDim];
            var actual = new float[valueDim];
            Attention.HeadReferenceTiled(query, keys, values, geometry, attend, expected);
            scratch.Widen(keys, values, geometry, attend);
            Attention.HeadWidenedTiled(query, keys, values, geometry, attend, scratch, actual);
            for (int i = 0; i < valueDim; i++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                    $"hd {headDim}, positions {attend}, element {i}: {actual[i]:R} vs reference {expected[i]:R}");
        }
    }

    [Fact]
    public void RoundToHalfIsTheF16ConversionForEveryKindOfFloat()
    {
        var rng = new Random(99);
        var values = new List<float> { 0f, -0f, 1f, -1f, 65504f, 65519.99f, 65520f, -65520f, 1e6f, float.PositiveInfinity, float.NegativeInfinity,
            6.1035156e-5f, 6.1e-5f, 5.96e-8f, 2.98e-8f, 2.9802322e-8f, 1e-9f, -3e-6f, 0.33333334f };
        for (int i = 0; i < 20000; i++)
        {
            values.Add(BitConverter.Int32BitsToSingle(rng.Next(0x0000_0000, 0x7F80_0000)) * (rng.Next(2) == 0 ? 1 : -1));
            values.Add((float)(rng.NextDouble() * 200 - 100));
        }
        var span = values.ToArray();
        for (int i = 0; i + 8 <= span.Length; i += 8)
        {
            var rounded = Attention.RoundToHalf(System.Runtime.Intrinsics.Vector256.Create(span, i));
            var wide = i + 16 <= span.Length ? Attention.RoundToHalf(System.Runtime.Intrinsics.Vector512.Create(span, i)) : default;
            for (int l = 0; l < 8; l++)
            {
                float expected = (float)(Half)span[i + l];
                Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(rounded[l]),
                    $"{span[i + l]:R}: {rounded[l]:R} vs (float)(Half)x {expected:R}");
                if (i + 16 <= span.Length)
                    Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(wide[l]), $"{span[i + l]:R}: 16-lane form {wide[l]:R}");
            }
        }
    }

    /// <summary>Vectors whose lanes are all in F16's normal range take the short path; ties, the range's edges and one
    /// lane outside it (which sends the vector down the full path) must still give exactly (float)(Half)x.</summary>
    [Fact]
    public void RoundToHalfShortPathMatchesTheF16Conversion()
    {
        var rng = new Random(7);
        var edges = new[] { 6.1035156e-5f, 65504f, 65519.996f, 65519f, 1f + 1f / 2048, 1f + 3f / 2048, 2048f + 1f, 2048f + 3f };
        var outside = new[] { 6.1e-5f, 1e-7f, 0f, -0f, 65520f, 1e6f, float.PositiveInfinity, float.NaN };
        for (int trial = 0; trial < 20000; trial++)
        {
            var lanes = new float[16];
            for (int l = 0; l < 16; l++)
            {
                // a random normal F16-range value, an exact tie between two F16 values, or an edge of the range
                float v = rng.Next(3) switch
                {
                    0 => BitConverter.Int32BitsToSingle(rng.Next(0x3880_0000, 0x477F_F000)),
                    1 => (float)(Half)BitConverter.Int32BitsToSingle(rng.Next(0x3880_0000, 0x477F_E000)) * (1f + 1f / 2048),
                    _ => edges[rng.Next(edges.Length)],
                };
                lanes[l] = rng.Next(2) == 0 ? v : -v;
            }
            if (trial % 4 == 0) lanes[rng.Next(16)] = outside[rng.Next(outside.Length)];
            var narrow = Attention.RoundToHalf(System.Runtime.Intrinsics.Vector256.Create(lanes, 0));
            var wide = Attention.RoundToHalf(System.Runtime.Intrinsics.Vector512.Create(lanes, 0));
            for (int l = 0; l < 16; l++)
            {
                int expected = BitConverter.SingleToInt32Bits((float)(Half)lanes[l]);
                Assert.True(expected == BitConverter.SingleToInt32Bits(wide[l]), $"{lanes[l]:R}: 16-lane form {wide[l]:R}");
                if (l < 8) Assert.True(expected == BitConverter.SingleToInt32Bits(narrow[l]), $"{lanes[l]:R}: 8-lane form {narrow[l]:R}");
            }
        }
    }
}
