using Tandem.Engine;
using Tandem.Gguf;

namespace Tandem.Tests.Engine;

/// <summary>The cache stores keys and values as F16 exactly as a cast to <see cref="Half"/> rounds them.</summary>
public class KvCacheTests
{
    /// <summary>
    /// Every 61st F32 bit pattern (70 million: both signs, subnormals, the F16 overflow edge, ties, infinities, NaNs)
    /// goes through <see cref="KvCache.Store"/> and must come out as <c>(Half)x</c>, bit for bit.
    /// </summary>
    [Fact]
    public void StoreRoundsLikeTheHalfCast()
    {
        const int width = 1 << 16;
        using var file = GgufFile.Open(TestData.Model("mini-qwen2-f32.gguf"));
        var config = ModelConfig.Read(file, "qwen2", RopeLayout.Neox) with { BlockCount = 1, HeadCountKv = 1, HeadDim = width, ValueHeadDim = width };
        var cache = new KvCache(config, contextLength: 2);
        var keys = new float[width];
        var values = new float[width];
        long checkedPatterns = 0;
        for (long start = 0; start < 1L << 32; start += 61L * width)
        {
            for (int i = 0; i < width; i++)
            {
                long pattern = start + 61L * i;
                keys[i] = BitConverter.Int32BitsToSingle((int)(uint)(pattern & 0xFFFF_FFFF));
                values[i] = -keys[i];
            }
            cache.Store(0, 1, keys, values);
            for (int i = 0; i < width; i++)
            {
                var key = cache.Keys[0][width + i];
                var value = cache.Values[0][width + i];
                if (BitConverter.HalfToUInt16Bits(key) != BitConverter.HalfToUInt16Bits((Half)keys[i]))
                    Assert.Fail($"key {keys[i]:R} (0x{BitConverter.SingleToUInt32Bits(keys[i]):X8}): stored 0x{BitConverter.HalfToUInt16Bits(key):X4}, (Half) gives 0x{BitConverter.HalfToUInt16Bits((Half)keys[i]):X4}");
                if (BitConverter.HalfToUInt16Bits(value) != BitConverter.HalfToUInt16Bits((Half)values[i]))
                    Assert.Fail($"value {values[i]:R}: stored 0x{BitConverter.HalfToUInt16Bits(value):X4}, (Half) gives 0x{BitConverter.HalfToUInt16Bits((Half)values[i]):X4}");
            }
            checkedPatterns += width;
        }
        Assert.True(checkedPatterns > 70_000_000);
        Assert.All(cache.Keys[0].AsSpan(0, width).ToArray(), h => Assert.Equal(0, BitConverter.HalfToUInt16Bits(h))); // position 0 untouched
    }
}
