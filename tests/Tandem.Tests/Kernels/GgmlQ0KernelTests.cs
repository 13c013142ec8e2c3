using System.Runtime.Intrinsics;
using Tandem.Engine.Kernels;
using Tandem.Gguf;
using Tandem.Gguf.Quants;
using Tandem.Tests.Quants;

namespace Tandem.Tests.Kernels;

/// <summary>
/// The Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 kernels that reproduce llama.cpp's x86 float order (<see cref="GgmlQ0Dot"/>):
/// AVX2 and scalar versions identical bit for bit, close to the plain reference dot, the order itself checked on
/// hand-made cases, and the registry choosing the repacked order where llama.cpp repacks.
/// </summary>
public unsafe class GgmlQ0KernelTests
{
    public static TheoryData<string> TypeNames()
    {
        var d = new TheoryData<string>();
        foreach (var t in GgmlQ0Kernel.Types) d.Add(GgmlTypeInfo.Of(t).Name);
        return d;
    }

    static GgmlType Parse(string name) => GgmlTypeInfo.TryParse(name, out var t) ? t : throw new ArgumentException(name);

    static byte[] Prepare(MatVecKernel k, float[] x)
    {
        var act = new byte[k.ActivationRowBytes(x.Length)];
        k.PrepareActivation(x, act);
        return act;
    }

    static float Dot(MatVecKernel k, byte[] w, byte[] a, int n)
    {
        fixed (byte* pw = w) fixed (byte* pa = a) return k.Dot(pw, pa, n);
    }

    static double AbsTerms(GgmlType type, byte[] w, byte[] a, int n)
    {
        var dw = new float[n];
        var da = new float[n];
        fixed (byte* pw = w) fixed (float* p = dw) Dequantize.Row(type, pw, p, n);
        fixed (byte* pa = a) fixed (float* p = da) Dequantize.Row(ActivationQuant.VecDotType(type), pa, p, n);
        double abs = 0;
        for (int i = 0; i < n; i++) abs += Math.Abs((double)dw[i] * da[i]);
        return abs;
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void SimdEqualsScalarBitForBitAndIsCloseToReference(string typeName)
    {
        var type = Parse(typeName);
        var simd = new GgmlQ0Kernel(type);
        var scalar = new GgmlQ0Kernel(type, simd: false);
        var plain = KernelRegistry.Reference(type);
        var kernels = new List<(MatVecKernel fast, MatVecKernel slow)> { (simd, scalar) };
        if (type == GgmlType.Q4_0)
            kernels.Add((new GgmlQ0Kernel(type, repacked: true), new GgmlQ0Kernel(type, repacked: true, simd: false)));
        var rng = new Random(1234 + (int)type);
        foreach (int n in new[] { 32, 64, 96, 256, 768, 4096 })
            for (int rep = 0; rep < 8; rep++)
            {
                var w = QuantKernelTests.RandomWeights(rng, type, n);
                var act = Prepare(simd, QuantTestUtil.RandomFloats(rng, n));
                double abs = AbsTerms(type, w, act, n);
                float expected = Dot(plain, w, act, n);
                foreach (var (fast, slow) in kernels)
                {
                    float a = Dot(fast, w, act, n), b = Dot(slow, w, act, n);
                    Assert.Equal(b, a);
                    // Q4_1/Q5_1: the plain reference uses the same fp16 s, so only float rounding differs.
                    Assert.True(Math.Abs(a - expected) <= 1e-5 * abs + 1e-30, $"{typeName} [{fast.Isa}] n={n}: {a} vs {expected} (sum|terms| {abs})");
                }
            }
    }

    [Fact]
    public void Hsum8AddsLikeHsumFloat8()
    {
        // ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)): 2^25 + 1 rounds to 2^25, so the 1 is lost; a left-to-right sum keeps it.
        float big = 33554432f;
        float* l = stackalloc float[8] { big, 0, -big, 0, 1, 0, 0, 0 };
        Assert.Equal(0f, GgmlQ0Dot.Hsum8(l));
        Assert.Equal(0f, GgmlQ0Dot.Hsum8(Vector256.Create(big, 0, -big, 0, 1, 0, 0, 0)));
        float seq = 0;
        for (int i = 0; i < 8; i++) seq += l[i];
        Assert.Equal(1f, seq);
    }

    /// <summary>
    /// A hand-made Q4_0 row of two blocks on which the two orders round differently.
    /// Block 0 (d_w·d_a = 1): element 0 = 7·127 = 889 (lane 0), element 4 = 2·1 = 2 (lane 1).
    /// Block 1 (d_w·d_a = 256·256 = 2^16): element 0 = 7·127 = 889 (lane 0). In [2^25, 2^26) floats are 4 apart.
    /// vec_dot lanes: lane0 = fma(2^16, 889, 889) = 58262393 → 58262392; lane1 = 2; hsum 58262394 → tie → 58262392.
    /// Repacked chain: acc = 891, then fma(889, 2^16, 891) = 58262395 → 58262396.
    /// </summary>
    [Fact]
    public void HandCheckedOrdersOfLanesAndRepackedChain()
    {
        var w = new byte[2 * 18];
        var a = new byte[2 * 34];
        fixed (byte* pw = w) fixed (byte* pa = a)
        {
            var x = (BlockQ4_0*)pw;
            var y = (BlockQ8_0*)pa;
            for (int b = 0; b < 2; b++)
                for (int j = 0; j < 16; j++) x[b].Qs[j] = 0x88; // every quant 8 -> value 0
            x[0].D = (Half)1f; y[0].D = (Half)1f;
            x[1].D = (Half)256f; y[1].D = (Half)256f;
            x[0].Qs[0] = 0x8F; // element 0 -> 15 - 8 = 7
            x[0].Qs[4] = 0x8A; // element 4 -> 10 - 8 = 2
            x[1].Qs[0] = 0x8F;
            y[0].Qs[0] = 127; y[0].Qs[4] = 1; y[1].Qs[0] = 127;
            foreach (var k in new[] { new GgmlQ0Kernel(GgmlType.Q4_0), new GgmlQ0Kernel(GgmlType.Q4_0, simd: false) })
                Assert.Equal(58262392f, k.Dot(pw, pa, 64));
            foreach (var k in new[] { new GgmlQ0Kernel(GgmlType.Q4_0, repacked: true), new GgmlQ0Kernel(GgmlType.Q4_0, repacked: true, simd: false) })
                Assert.Equal(58262396f, k.Dot(pw, pa, 64));
        }
    }

    [Fact]
    public void OrdersDifferOnRandomRowsAsExpected()
    {
        // The lane order and the chain order are different arithmetic: on random rows they must disagree somewhere
        // (otherwise the repacked kernel would not be needed), and each must stay within rounding of the other.
        var rng = new Random(99);
        var lanes = new GgmlQ0Kernel(GgmlType.Q4_0);
        var chain = new GgmlQ0Kernel(GgmlType.Q4_0, repacked: true);
        int differ = 0;
        for (int rep = 0; rep < 64; rep++)
        {
            int n = 768;
            var w = QuantKernelTests.RandomWeights(rng, GgmlType.Q4_0, n);
            var act = Prepare(lanes, QuantTestUtil.RandomFloats(rng, n));
            float p = Dot(lanes, w, act, n), q = Dot(chain, w, act, n);
            if (p != q) differ++;
            Assert.True(Math.Abs(p - q) <= 1e-5 * AbsTerms(GgmlType.Q4_0, w, act, n));
        }
        Assert.True(differ > 0);
    }

    [Fact]
    public void ActivationQuantizationMatchesHandCheckedBlock()
    {
        // amax 127 -> d = 1, multiplier 1; x·1 rounded half to even (as _mm256_round_ps), not away from zero.
        var x = new float[32];
        x[0] = 127f; x[1] = 2.5f; x[2] = 3.5f; x[3] = -2.5f; x[4] = 0.5f; x[5] = -127f; x[6] = 1.49f; x[7] = -0.5f;
        var q8_0 = new byte[34];
        var q8_1 = new byte[36];
        ActivationQuant.Quantize(GgmlType.Q8_0, x, q8_0);
        ActivationQuant.Quantize(GgmlType.Q8_1, x, q8_1);
        sbyte[] expected = [127, 2, 4, -2, 0, -127, 1, 0];
        fixed (byte* p0 = q8_0) fixed (byte* p1 = q8_1)
        {
            var b0 = (BlockQ8_0*)p0;
            var b1 = (BlockQ8_1*)p1;
            Assert.Equal(1f, (float)b0->D);
            Assert.Equal(1f, (float)b1->D);
            for (int j = 0; j < expected.Length; j++)
            {
                Assert.Equal(expected[j], b0->Qs[j]);
                Assert.Equal(expected[j], b1->Qs[j]);
            }
            for (int j = expected.Length; j < 32; j++) Assert.Equal(0, b0->Qs[j]);
            Assert.Equal(5f, (float)b1->S); // d · Σq = 127+2+4-2+0-127+1+0
        }

        // d = amax/127 stored as fp16, multiplier 127/amax (not 1/d): amax 1 -> 0.5·127 = 63.5 -> 64 (even).
        var y = new float[32];
        y[0] = 1f; y[1] = 0.5f; y[2] = -0.25f;
        ActivationQuant.Quantize(GgmlType.Q8_0, y, q8_0);
        fixed (byte* p0 = q8_0)
        {
            var b0 = (BlockQ8_0*)p0;
            Assert.Equal((float)(Half)(1f / 127f), (float)b0->D);
            Assert.Equal(127, b0->Qs[0]);
            Assert.Equal(64, b0->Qs[1]);
            Assert.Equal(-32, b0->Qs[2]); // -31.75 -> -32
        }
    }

    [Fact]
    public void RegistryRepacksQ4_0WithRowsMultipleOf8()
    {
        var repacked = Assert.IsType<GgmlQ0Kernel>(KernelRegistry.ForWeights(GgmlType.Q4_0, 256));
        Assert.True(repacked.Repacked);
        Assert.False(Assert.IsType<GgmlQ0Kernel>(KernelRegistry.ForWeights(GgmlType.Q4_0, 4099)).Repacked);
        Assert.False(Assert.IsType<GgmlQ0Kernel>(KernelRegistry.ForWeights(GgmlType.Q4_0, 256, repackable: false)).Repacked);
        foreach (var t in new[] { GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0 })
        {
            Assert.Same(KernelRegistry.For(t), KernelRegistry.ForWeights(t, 256));
            Assert.False(Assert.IsType<GgmlQ0Kernel>(KernelRegistry.For(t)).Repacked);
        }
    }

    public static TheoryData<string> RealModels => new()
    {
        "mini-qwen2-q8_0.gguf", "mini-qwen2-q4_0.gguf", "mini-qwen2-q4_1.gguf", "mini-qwen2-q5_0.gguf", "mini-qwen3-q8_0.gguf",
    };

    /// <summary>On every matrix of the shipped models: the kernel the engine picks (AVX2 where available) equals its
    /// scalar twin bit for bit, and is within rounding of the plain reference dot.</summary>
    [Theory]
    [MemberData(nameof(RealModels))]
    public void RealTensorsSimdEqualsScalar(string file)
    {
        using var g = GgufFile.Open(TestData.Model(file));
        var rng = new Random(5);
        foreach (var t in g.Tensors.Where(t => t.Dimensions.Length == 2 && Array.IndexOf(GgmlQ0Kernel.Types, t.Type) >= 0))
        {
            int n = (int)t.Columns, rows = (int)t.Rows;
            var fast = Assert.IsType<GgmlQ0Kernel>(KernelRegistry.ForWeights(t.Type, rows, t.Name != "token_embd.weight"));
            var slow = new GgmlQ0Kernel(t.Type, fast.Repacked, simd: false);
            var plain = KernelRegistry.Reference(t.Type);
            var act = Prepare(fast, QuantTestUtil.RandomFloats(rng, n));
            long rowBytes = GgmlTypeInfo.Of(t.Type).RowBytes(n);
            byte* w = g.TensorPointer(t);
            var row = new byte[rowBytes];
            for (int r = 0; r < Math.Min(rows, 96); r++)
            {
                new ReadOnlySpan<byte>(w + r * rowBytes, (int)rowBytes).CopyTo(row);
                float a = Dot(fast, row, act, n), b = Dot(slow, row, act, n), c = Dot(plain, row, act, n);
                Assert.Equal(b, a);
                Assert.True(Math.Abs(a - c) <= 1e-5 * AbsTerms(t.Type, row, act, n), $"{file} {t.Name} row {r}: {a} vs {c}");
            }
        }
    }

    /// <summary>The 8-lane vector F16 → F32 conversion used for gathered row scales equals the table for all 65,536
    /// patterns (normals, subnormals, zeros, infinities, NaNs), whatever the lane's upper 16 bits hold. (The 16-lane
    /// form is checked through GgmlFloatDot.WidenF16 in WidenF16Tests.)</summary>
    [Fact]
    public void HalfLanesToSingleIsExactForEveryHalf()
    {
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) return; // x86 helper; the Vector128 path converts with the table
        for (int h = 0; h < 65536; h += 8)
        {
            var bits = Vector256.Create(h, h + 1, h + 2, h + 3, h + 4, h + 5, h + 6, h + 7) | Vector256.Create(0x5A5A << 16);
            var wide = HalfLanes.ToSingle(bits.AsUInt32());
            for (int l = 0; l < 8; l++)
                Assert.True(BitConverter.SingleToInt32Bits(HalfTable.ToF32((ushort)(h + l))) == BitConverter.SingleToInt32Bits(wide[l]),
                    $"half 0x{h + l:X4}: {wide[l]:R} vs {HalfTable.ToF32((ushort)(h + l)):R}");
        }
    }
}
