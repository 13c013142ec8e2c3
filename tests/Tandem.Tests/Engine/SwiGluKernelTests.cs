using Tandem.Engine.Kernels;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Engine.Blocks;

namespace Tandem.Tests.Engine;

/// <summary>The vectorized SwiGLU (ggml's AVX-512 silu) against its scalar reference, bit for bit.</summary>
public class SwiGluKernelTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(40)]
    [InlineData(896)]
    [InlineData(4864)]
    public void ApplyEqualsTheScalarReference(int width)
    {
        var rng = new Random(width);
        const int rows = 3;
        var gate = new float[rows * width];
        var up = new float[rows * width];
        for (int i = 0; i < gate.Length; i++)
        {
            // Mostly the activations' range, some far out where e^x saturates (|n| > 192) or turns subnormal.
            gate[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 7 == 0 ? 200f : 12f);
            up[i] = (float)(rng.NextDouble() * 4 - 2);
        }
        var expected = (float[])gate.Clone();
        SwiGlu.ApplyReference(expected, up, width);
        SwiGlu.Apply(gate, up, width);
        for (int i = 0; i < gate.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(gate[i]),
                $"width {width}, element {i}: {gate[i]:R} vs reference {expected[i]:R}");
    }

    [Fact]
    public void VectorExpMatchesScalarExpOverItsWholeRange()
    {
        if (!Avx512F.IsSupported) return; // the 16-lane e^x exists only where AVX-512 does; Apply then uses the scalar groups
        // Every 97th float bit pattern from −∞ to +∞ (includes NaNs, subnormals, both saturations).
        var lanes = new float[16];
        int checkedValues = 0;
        for (long bits = int.MinValue; bits <= int.MaxValue; bits += 97 * 16)
        {
            for (int k = 0; k < 16; k++) lanes[k] = BitConverter.Int32BitsToSingle((int)Math.Clamp(bits + 97L * k, int.MinValue, int.MaxValue));
            var vector = ExpLanes.Ggml(Vector512.Create(lanes));
            for (int k = 0; k < 16; k++)
            {
                float expected = ExpLanes.GgmlReference(lanes[k]), actual = vector[k];
                bool same = BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual) || (float.IsNaN(expected) && float.IsNaN(actual));
                Assert.True(same, $"e^{lanes[k]:R}: {actual:R} vs scalar {expected:R}");
                checkedValues++;
            }
        }
        Assert.True(checkedValues > 40_000_000);
    }
}
