using System.Runtime.CompilerServices;
using Tandem.Engine.Kernels;
using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Tests.Quants;

public unsafe class QuantFormatTests
{
    [Fact]
    public void BlockSizesMatchGgml()
    {
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q4_0).TypeSize, sizeof(BlockQ4_0));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q4_1).TypeSize, sizeof(BlockQ4_1));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q5_0).TypeSize, sizeof(BlockQ5_0));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q5_1).TypeSize, sizeof(BlockQ5_1));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q8_0).TypeSize, sizeof(BlockQ8_0));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q8_1).TypeSize, sizeof(BlockQ8_1));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q2_K).TypeSize, sizeof(BlockQ2_K));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q3_K).TypeSize, sizeof(BlockQ3_K));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q4_K).TypeSize, sizeof(BlockQ4_K));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q5_K).TypeSize, sizeof(BlockQ5_K));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q6_K).TypeSize, sizeof(BlockQ6_K));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q8_K).TypeSize, sizeof(BlockQ8_K));
        Assert.Equal(GgmlTypeInfo.Of(GgmlType.Q8_K).TypeSize, Unsafe.SizeOf<BlockQ8_K>());
    }

    [Fact]
    public void Bf16RoundsToNearestEvenAndKeepsNaNQuiet()
    {
        Assert.Equal((ushort)0x3f80, FloatConv.F32ToBF16(1.0f));
        // exactly halfway between 0x3f80 and 0x3f81 -> even (0x3f80); just above -> up
        Assert.Equal((ushort)0x3f80, FloatConv.F32ToBF16(BitConverter.UInt32BitsToSingle(0x3f808000)));
        Assert.Equal((ushort)0x3f82, FloatConv.F32ToBF16(BitConverter.UInt32BitsToSingle(0x3f818000)));
        Assert.Equal((ushort)0x3f81, FloatConv.F32ToBF16(BitConverter.UInt32BitsToSingle(0x3f808001)));
        Assert.Equal((ushort)0xbf80, FloatConv.F32ToBF16(-1.0f));
        Assert.Equal((ushort)0x7f80, FloatConv.F32ToBF16(float.PositiveInfinity));
        // signalling NaN with payload only in the low bits stays a NaN, made quiet
        ushort nan = FloatConv.F32ToBF16(BitConverter.UInt32BitsToSingle(0x7f800001));
        Assert.Equal((ushort)0x7fc0, nan);
        Assert.True(float.IsNaN(FloatConv.BF16ToF32(nan)));
        Assert.Equal(1.5f, FloatConv.BF16ToF32(0x3fc0));
    }

    [Fact]
    public void F16ConversionsRoundToNearestEven()
    {
        Assert.Equal((ushort)0x3c00, FloatConv.F32ToF16(1.0f));
        Assert.Equal((ushort)0x3c00, FloatConv.F32ToF16(1.0f + MathF.Pow(2, -11)));       // tie -> even
        Assert.Equal((ushort)0x3c02, FloatConv.F32ToF16(1.0f + 3 * MathF.Pow(2, -11)));   // tie -> even (up)
        Assert.Equal(65504f, FloatConv.F16ToF32(0x7bff));
        Assert.Equal(MathF.Pow(2, -24), FloatConv.F16ToF32(0x0001));
        Assert.Equal(0, FloatConv.NearestInt(0.5f));
        Assert.Equal(2, FloatConv.NearestInt(1.5f));
        Assert.Equal(-2, FloatConv.NearestInt(-2.5f));
        Assert.Equal(-3, FloatConv.NearestInt(-2.6f));
    }

    public static TheoryData<string, string, string, double> DequantCases => new()
    {
        // quantized file, F32 reference file, weight type, bound on RMS(error)/RMS(weights).
        // Measured: F16 0.021%, BF16 0.167%, Q8_0 0.54%, Q4_0 8.65%, Q4_1 7.88%, Q5_0 4.31%, Q2_K 29.9%, Q3_K 15.2%,
        // Q4_K 7.17%, Q5_K 3.62%, Q6_K 1.79% (theory for uniform b-bit rounding: ~ range/2^b/sqrt(12)).
        { "mini-qwen2-f16.gguf", "mini-qwen2-f32.gguf", "F16", 0.0003 },
        { "mini-qwen2-bf16.gguf", "mini-qwen2-f32.gguf", "BF16", 0.0022 },
        { "mini-qwen2-q8_0.gguf", "mini-qwen2-f32.gguf", "Q8_0", 0.0062 },
        { "mini-qwen3-q8_0.gguf", "mini-qwen3-f32.gguf", "Q8_0", 0.0062 },
        { "mini-qwen2-q4_0.gguf", "mini-qwen2-f32.gguf", "Q4_0", 0.095 },
        { "mini-qwen2-q4_1.gguf", "mini-qwen2-f32.gguf", "Q4_1", 0.087 },
        { "mini-qwen2-q5_0.gguf", "mini-qwen2-f32.gguf", "Q5_0", 0.048 },
        { "mini-qwen2-q2_k.gguf", "mini-qwen2-f32.gguf", "Q2_K", 0.33 },
        { "mini-qwen2-q3_k_m.gguf", "mini-qwen2-f32.gguf", "Q3_K", 0.167 },
        { "mini-qwen2-q4_k_m.gguf", "mini-qwen2-f32.gguf", "Q4_K", 0.079 },
        { "mini-qwen3-q4_k_m.gguf", "mini-qwen3-f32.gguf", "Q4_K", 0.079 },
        { "mini-qwen2-q5_k_m.gguf", "mini-qwen2-f32.gguf", "Q5_K", 0.040 },
        { "mini-qwen2-q6_k.gguf", "mini-qwen2-f32.gguf", "Q6_K", 0.020 },
        { "mini-qwen2-q4_k_m.gguf", "mini-qwen2-f32.gguf", "Q6_K", 0.020 },
    };

    [Theory]
    [MemberData(nameof(DequantCases))]
    public void DequantizedRealTensorsMatchF32Model(string quantFile, string f32File, string typeName, double bound)
    {
        Assert.True(GgmlTypeInfo.TryParse(typeName, out var type));
        using var q = GgufFile.Open(TestData.Model(quantFile));
        using var f = GgufFile.Open(TestData.Model(f32File));
        int checkedTensors = 0;
        foreach (var t in q.Tensors.Where(t => t.Type == type))
        {
            var reference = QuantTestUtil.DequantizeTensor(f, f.GetTensor(t.Name));
            var deq = QuantTestUtil.DequantizeTensor(q, t);
            Assert.Equal(reference.Length, deq.Length);
            double rel = QuantTestUtil.RmsDiff(reference, deq) / QuantTestUtil.Rms(reference);
            Assert.True(rel < bound, $"{t.Name} ({typeName}): relative RMS error {rel:P3} exceeds {bound:P3}");
            checkedTensors++;
        }
        Assert.True(checkedTensors > 0, $"no {typeName} tensors in {quantFile}");
    }

    [Fact]
    public void Q8_0ActivationRoundTripWithinHalfStep()
    {
        var rng = new Random(1);
        var x = QuantTestUtil.RandomFloats(rng, 1024);
        var buf = new byte[GgmlTypeInfo.Of(GgmlType.Q8_0).RowBytes(x.Length)];
        ActivationQuant.Quantize(GgmlType.Q8_0, x, buf);
        var back = new float[x.Length];
        fixed (byte* p = buf) fixed (float* b = back) Dequantize.Row(GgmlType.Q8_0, p, b, x.Length);
        for (int blk = 0; blk < x.Length / 32; blk++)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[blk * 32 + j]));
            float d = amax / 127;
            // half a step, plus the effect of storing d as fp16
            float bound = d * 0.5f * 1.0001f + 127 * MathF.Abs(d - (float)(Half)d);
            for (int j = 0; j < 32; j++)
                Assert.True(MathF.Abs(x[blk * 32 + j] - back[blk * 32 + j]) <= bound, $"element {blk * 32 + j}");
        }
    }

    [Fact]
    public void Q8_1ActivationSumMatchesQuants()
    {
        var rng = new Random(2);
        var x = QuantTestUtil.RandomFloats(rng, 256);
        var buf = new byte[GgmlTypeInfo.Of(GgmlType.Q8_1).RowBytes(x.Length)];
        ActivationQuant.Quantize(GgmlType.Q8_1, x, buf);
        fixed (byte* p = buf)
        {
            var y = (BlockQ8_1*)p;
            for (int i = 0; i < 8; i++)
            {
                int sum = 0;
                for (int j = 0; j < 32; j++) sum += y[i].Qs[j];
                float amax = 0;
                for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[i * 32 + j]));
                Assert.Equal((Half)(amax / 127), y[i].D);
                Assert.Equal((Half)(amax / 127 * sum), y[i].S); // s uses the unrounded d, as ggml
            }
        }
    }

    [Fact]
    public void Q8_KActivationMatchesGgmlReference()
    {
        var rng = new Random(3);
        var x = QuantTestUtil.RandomFloats(rng, 512);
        x[300] = -100f; // largest magnitude, negative: iscale = -127/max maps it to +127
        var buf = new byte[GgmlTypeInfo.Of(GgmlType.Q8_K).RowBytes(x.Length)];
        ActivationQuant.Quantize(GgmlType.Q8_K, x, buf);
        fixed (byte* p = buf)
        {
            var y = (BlockQ8_K*)p;
            for (int i = 0; i < 2; i++)
            {
                float max = 0, amax = 0;
                for (int j = 0; j < 256; j++) { float a = MathF.Abs(x[i * 256 + j]); if (a > amax) { amax = a; max = x[i * 256 + j]; } }
                float iscale = -127f / max;
                Assert.Equal(1 / iscale, y[i].D);
                for (int j = 0; j < 256; j++)
                {
                    Assert.Equal((int)Math.Min(127, Math.Round(iscale * x[i * 256 + j], MidpointRounding.ToEven)), y[i].Qs[j]);
                    Assert.True(MathF.Abs(y[i].D * y[i].Qs[j] - x[i * 256 + j]) <= MathF.Abs(y[i].D) * 0.5001f);
                }
                for (int g = 0; g < 16; g++)
                {
                    int s = 0;
                    for (int j = 0; j < 16; j++) s += y[i].Qs[g * 16 + j];
                    Assert.Equal(s, y[i].BSums[g]);
                }
            }
            Assert.Equal(127, Math.Abs((int)y[1].Qs[300 - 256]));
        }
    }

    [Fact]
    public void F16AndBf16ActivationsRoundAsGgml()
    {
        var x = new[] { 1.0f, -3.14159f, 1e-6f, 65519f, BitConverter.UInt32BitsToSingle(0x3f808000), 0f, -0f, 1234.5678f };
        var h = new byte[16];
        ActivationQuant.Quantize(GgmlType.F16, x, h);
        var b = new byte[16];
        ActivationQuant.Quantize(GgmlType.BF16, x, b);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)x[i]), BitConverter.ToUInt16(h, 2 * i));
            Assert.Equal(FloatConv.F32ToBF16(x[i]), BitConverter.ToUInt16(b, 2 * i));
        }
    }

    [Fact]
    public void VecDotTypesAreGgmls()
    {
        Assert.Equal(GgmlType.F32, KernelRegistry.Reference(GgmlType.F32).ActivationType);
        Assert.Equal(GgmlType.F16, KernelRegistry.Reference(GgmlType.F16).ActivationType);
        Assert.Equal(GgmlType.BF16, KernelRegistry.Reference(GgmlType.BF16).ActivationType);
        foreach (var t in new[] { GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q8_0 })
            Assert.Equal(GgmlType.Q8_0, KernelRegistry.For(t).ActivationType);
        foreach (var t in new[] { GgmlType.Q4_1, GgmlType.Q5_1 })
            Assert.Equal(GgmlType.Q8_1, KernelRegistry.For(t).ActivationType);
        foreach (var t in new[] { GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K })
            Assert.Equal(GgmlType.Q8_K, KernelRegistry.For(t).ActivationType);
        Assert.Equal(34 * 4, KernelRegistry.For(GgmlType.Q4_0).ActivationRowBytes(128));
        Assert.Equal("scalar", KernelRegistry.Reference(GgmlType.Q4_K).Isa);
    }
}

public unsafe class ActivationSimdTests
{
    static float[] Interesting(Random rng, int n)
    {
        var x = QuantTestUtil.RandomFloats(rng, n);
        for (int i = 0; i < 32 && i < n; i++) x[i] = 0;                 // an all-zero Q8_0 block
        if (n >= 512) for (int i = 256; i < 512; i++) x[i] = 0;         // an all-zero Q8_K block
        for (int i = 40; i < n; i += 37) x[i] = -x[i - 1];              // equal magnitudes, opposite signs
        for (int i = 64; i < Math.Min(n, 96); i++) x[i] = (i - 80) + 0.5f;  // amax 127 -> multiplier 1: exact .5 ties
        x[64] = 127f;
        for (int i = 100; i < n; i += 53) x[i] *= 1e-30f;               // tiny values
        return x;
    }

    [Theory]
    [InlineData("Q8_0")]
    [InlineData("Q8_1")]
    [InlineData("Q8_K")]
    [InlineData("F16")]
    [InlineData("BF16")]
    public void SimdActivationMatchesReferenceBytes(string typeName)
    {
        Assert.True(GgmlTypeInfo.TryParse(typeName, out var type));
        var rng = new Random(42);
        foreach (int n in new[] { 256, 512, 768, 4096 })
        {
            var x = Interesting(rng, n);
            var a = new byte[GgmlTypeInfo.Of(type).RowBytes(n)];
            var b = new byte[a.Length];
            ActivationQuant.Quantize(type, x, a);
            ActivationQuant.QuantizeReference(type, x, b);
            Assert.Equal(b, a);
        }
    }

    [Theory]
    [InlineData("F16")]
    [InlineData("BF16")]
    public void SimdFloatConversionMatchesReferenceOnAllKindsOfBits(string typeName)
    {
        Assert.True(GgmlTypeInfo.TryParse(typeName, out var type));
        var rng = new Random(7);
        int n = 1 << 16;
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            uint bits = (uint)rng.NextInt64(0, 1L << 32);
            // bias toward the fp16 range and its boundaries (subnormal, rounding ties, overflow)
            if (i % 4 == 1) bits = (bits & 0x8000_0000u) | (uint)rng.Next(0x3300_0000, 0x4780_2000);
            if (i % 4 == 2) bits = (bits & 0xFFFF_E000u) | 0x1000u; // exact fp16 ties
            x[i] = BitConverter.UInt32BitsToSingle(bits);
        }
        var a = new byte[n * 2];
        var b = new byte[n * 2];
        ActivationQuant.Quantize(type, x, a);
        ActivationQuant.QuantizeReference(type, x, b);
        for (int i = 0; i < n; i++)
            Assert.True(a[2 * i] == b[2 * i] && a[2 * i + 1] == b[2 * i + 1],
                $"{typeName} {BitConverter.SingleToUInt32Bits(x[i]):x8}: {BitConverter.ToUInt16(a, 2 * i):x4} vs {BitConverter.ToUInt16(b, 2 * i):x4}");
    }
}
