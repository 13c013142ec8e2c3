using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Engine.Kernels;

namespace Tandem.Tests.Engine;

/// <summary>The 16-lane expf against the platform's <see cref="MathF.Exp"/>, which attention uses wherever the two differ.</summary>
public class ExpLanesTests
{
    /// <summary>Every 61st float bit pattern (all signs, subnormals, infinities, NaNs) and every float in the underflow band
    /// [−104, −88], where glibc switches from the formula to its underflow results.</summary>
    [Fact]
    public void EqualsMathFExpWhereverItClaimsToBeExact()
    {
        if (!Avx512F.IsSupported)
        {
            Assert.False(ExpLanes.Exact);
            return;
        }
        // glibc on x86-64 with FMA is the C library the form reproduces: there the probe must have passed.
        if (System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier == "linux-x64" && Fma.IsSupported)
            Assert.True(ExpLanes.Exact, "the start-up probe disagreed with glibc's expf");
        var lanes = new uint[16];
        long checkedCount = 0, mismatches = 0;
        string? first = null;
        void Check()
        {
            var x = Vector512.Create(lanes).AsSingle();
            var e = ExpLanes.Exp(x);
            for (int l = 0; l < 16; l++)
            {
                float expected = MathF.Exp(x[l]);
                checkedCount++;
                if (BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(e[l]) || float.IsNaN(expected) && float.IsNaN(e[l])) continue;
                mismatches++;
                first ??= $"exp({x[l]:R}) = {e[l]:R}, MathF.Exp gives {expected:R}";
            }
        }
        for (long b = 0; b < 1L << 32; b += 16 * 61)
        {
            for (int l = 0; l < 16; l++) lanes[l] = (uint)(b + l * 61);
            Check();
        }
        uint from = BitConverter.SingleToUInt32Bits(-88f), to = BitConverter.SingleToUInt32Bits(-104f);
        for (uint b = from; b <= to; b += 16)
        {
            for (int l = 0; l < 16; l++) lanes[l] = b + (uint)l;
            Check();
        }
        Assert.True(checkedCount > 70_000_000);
        if (ExpLanes.Exact) Assert.True(mismatches == 0, $"{mismatches} of {checkedCount} differ; first: {first}");
        else Assert.True(mismatches > 0, "the start-up probe found a difference that this wider check does not");
    }

    /// <summary>ggml's vector exp against its scalar reference on every 61st float bit pattern (the vector form was also
    /// checked once against libggml-cpu's own softmax on all 2^32 patterns: identical).</summary>
    [Fact]
    public void GgmlExpEqualsItsScalarReference()
    {
        if (!Avx512F.IsSupported) return; // the vector form needs AVX-512; the reference is what runs without it
        var lanes = new uint[16];
        long mismatches = 0;
        string? first = null;
        for (long b = 0; b < 1L << 32; b += 16 * 61)
        {
            for (int l = 0; l < 16; l++) lanes[l] = (uint)(b + l * 61);
            var x = Vector512.Create(lanes).AsSingle();
            var e = ExpLanes.Ggml(x);
            for (int l = 0; l < 16; l++)
            {
                float expected = ExpLanes.GgmlReference(x[l]);
                if (BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(e[l]) || float.IsNaN(expected) && float.IsNaN(e[l])) continue;
                mismatches++;
                first ??= $"exp({x[l]:R}) = {e[l]:R}, reference {expected:R}";
            }
        }
        Assert.True(mismatches == 0, $"{mismatches} differ; first: {first}");
        Assert.Equal(0f, ExpLanes.GgmlReference(float.NegativeInfinity));
        Assert.Equal(1f, ExpLanes.GgmlReference(0f));
    }
}
