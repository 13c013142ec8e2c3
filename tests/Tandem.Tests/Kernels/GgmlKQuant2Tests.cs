using Tandem.Engine.Kernels;
using Tandem.Gguf;
using Tandem.Gguf.Quants;
using Tandem.Tests.Quants;

namespace Tandem.Tests.Kernels;

/// <summary>
/// Q2_K, Q3_K and Q5_K kernels in llama.cpp's float order (<see cref="GgmlKQuant2Dot"/>): bit-identical to
/// llama.cpp's own x86 kernels on inputs generated the same way on both sides, SIMD identical to scalar, and
/// close to the plain scalar reference.
/// </summary>
public unsafe class GgmlKQuant2Tests
{
    static readonly GgmlType[] Types = [GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q5_K];

    public static TheoryData<string> TypeNames => new(Types.Select(t => GgmlTypeInfo.Of(t).Name));

    static GgmlType Parse(string name) => GgmlTypeInfo.TryParse(name, out var t) ? t : throw new ArgumentException(name);

    /// <summary>
    /// The input generator that produced the expected values below from llama.cpp (commit d32676d, AVX-512 build):
    /// a 64-bit LCG; weights are random bytes with random normal F16 scales; activations are sums of four
    /// uniforms, scaled by one of five magnitudes.
    /// </summary>
    sealed class Lcg(ulong seed)
    {
        ulong _s = seed;
        static readonly float[] Scales = [0.001f, 0.1f, 1.0f, 10.0f, 100.0f];

        public uint Next()
        {
            _s = _s * 6364136223846793005UL + 1442695040888963407UL;
            return (uint)(_s >> 33);
        }

        float Unif() => (Next() >> 8) * (1.0f / 16777216.0f);

        ushort Half(bool positive)
        {
            uint sign = positive ? 0 : Next() & 1;
            uint e = 1 + Next() % 15;
            uint m = Next() & 0x3FF;
            return (ushort)((sign << 15) | (e << 10) | m);
        }

        public byte[] Weights(GgmlType type, int n, int rows)
        {
            var info = GgmlTypeInfo.Of(type);
            var w = new byte[info.RowBytes(n) * rows];
            for (int i = 0; i < w.Length; i++) w[i] = (byte)Next();
            for (int off = 0; off < w.Length; off += info.TypeSize)
            {
                ushort d = Half(false), m = Half(true);
                var (dOff, mOff) = type switch { GgmlType.Q2_K => (80, 82), GgmlType.Q3_K => (108, -1), _ => (0, 2) };
                BitConverter.TryWriteBytes(w.AsSpan(off + dOff, 2), d);
                if (mOff >= 0) BitConverter.TryWriteBytes(w.AsSpan(off + mOff, 2), m);
            }
            return w;
        }

        public void Activations(Span<float> x)
        {
            float s = Scales[Next() % 5];
            for (int i = 0; i < x.Length; i++)
            {
                float g = Unif();
                g += Unif();
                g += Unif();
                g += Unif();
                g -= 2.0f;
                x[i] = g * s;
            }
        }
    }

    /// <summary>ggml_vec_dot_{q2,q3,q5}_K_q8_K results (float bits) for 12 rows of 256·(1 + c%4) elements each.</summary>
    static readonly Dictionary<GgmlType, uint[]> VecDotExpected = new()
    {
        [GgmlType.Q2_K] = [0xC5FB417C, 0xC56664B5, 0x44E3DA72, 0x3F285F15, 0x48063B99, 0x44D058E8, 0xBEB8D8D7, 0x44A50347, 0x4093B7BE, 0x42275529, 0xC3920072, 0x43DC8E02],
        [GgmlType.Q3_K] = [0xC28210C4, 0xC1105EE8, 0xC6978AE5, 0x44CE32DF, 0x419ED243, 0xC30550B0, 0x3BEA3D60, 0x4304EA98, 0xBB906CA7, 0xC154636A, 0xC21276A4, 0x3FE40BB0],
        [GgmlType.Q5_K] = [0x40B62485, 0x40E47372, 0xCA331BA3, 0x4B002C66, 0xC6CED7B2, 0x40EB2D9B, 0x4554F2B0, 0x4BBD8FB2, 0x4183911A, 0x3E57FA1F, 0xC9A59849, 0x479B2BB0],
    };

    /// <summary>FNV-1a 64 of the float bits of a 24-row × 512 Q2_K matrix product with <c>tokens</c> tokens through
    /// llama.cpp's repacked q2_K 8x8 path (GEMM for groups of four tokens, GEMV for the rest), token-major.</summary>
    static readonly Dictionary<int, ulong> RepackedExpected = new()
    {
        [1] = 0x2D360F61606B4821UL,
        [2] = 0xAF59E3D9AC5D3619UL,
        [3] = 0x51CA1FFEF2189A5FUL,
        [4] = 0xF97CE5D3DBB78EDDUL,
        [5] = 0x784D183563C3120FUL,
        [8] = 0x419F6E8C9FAC218EUL,
        [11] = 0x476864329B3FFB65UL,
    };

    public static TheoryData<int> RepackedTokenCounts => new(RepackedExpected.Keys);

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void VecDotMatchesLlamaCppBitForBit(string typeName)
    {
        var type = Parse(typeName);
        var lcg = new Lcg(1000 + (ulong)Array.IndexOf(Types, type));
        var kernels = new[] { KernelRegistry.For(type), new GgmlKQuant2Kernel(type, scalar: true) };
        Assert.IsType<GgmlKQuant2Kernel>(kernels[0]);
        var expected = VecDotExpected[type];
        for (int c = 0; c < expected.Length; c++)
        {
            int n = 256 * (1 + c % 4);
            var w = lcg.Weights(type, n, 1);
            var x = new float[n];
            lcg.Activations(x);
            foreach (var k in kernels)
            {
                var a = new byte[k.ActivationRowBytes(n)];
                k.PrepareActivation(x, a);
                float got;
                fixed (byte* pw = w) fixed (byte* pa = a) got = k.Dot(pw, pa, n);
                Assert.True(expected[c] == BitConverter.SingleToUInt32Bits(got),
                    $"{typeName} [{k.Isa}] case {c}: {got:R} vs llama.cpp {BitConverter.UInt32BitsToSingle(expected[c]):R}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(RepackedTokenCounts))]
    public void RepackedQ2KMatchesLlamaCppBitForBit(int tokens)
    {
        const int n = 512, rows = 24;
        var lcg = new Lcg(2000 + (ulong)tokens);
        var w = lcg.Weights(GgmlType.Q2_K, n, rows);
        var x = new float[n * tokens];
        for (int t = 0; t < tokens; t++) lcg.Activations(x.AsSpan(t * n, n));
        var kernel = KernelRegistry.ForWeights(GgmlType.Q2_K, rows);
        Assert.True(kernel is GgmlKQuant2Kernel { Repacked: true });
        foreach (var k in new[] { kernel, new GgmlKQuant2Kernel(GgmlType.Q2_K, repacked: true, scalar: true) })
        {
            long pr = k.ActivationRowBytes(n), rb = GgmlTypeInfo.Of(GgmlType.Q2_K).RowBytes(n);
            var a = new byte[pr * tokens];
            for (int t = 0; t < tokens; t++) k.PrepareActivation(x.AsSpan(t * n, n), a.AsSpan((int)(t * pr), (int)pr));
            ulong h = 14695981039346656037UL;
            fixed (byte* pw = w) fixed (byte* pa = a)
                for (int t = 0; t < tokens; t++)
                    for (int r = 0; r < rows; r++)
                    {
                        uint bits = BitConverter.SingleToUInt32Bits(k.DotInMatMul(pw + r * rb, pa + t * pr, n, t, tokens));
                        for (int i = 0; i < 4; i++) { h ^= (bits >> (8 * i)) & 0xFF; h *= 1099511628211UL; }
                    }
            Assert.True(RepackedExpected[tokens] == h, $"tokens={tokens} [{k.Isa}]: hash {h:X16} vs llama.cpp {RepackedExpected[tokens]:X16}");
        }
    }

    [Fact]
    public void KernelChoiceFollowsLlamaCppRepacking()
    {
        Assert.True(KernelRegistry.ForWeights(GgmlType.Q2_K, 256) is GgmlKQuant2Kernel { Repacked: true });
        Assert.True(KernelRegistry.ForWeights(GgmlType.Q2_K, 12) is GgmlKQuant2Kernel { Repacked: false });
        Assert.Same(KernelRegistry.For(GgmlType.Q3_K), KernelRegistry.ForWeights(GgmlType.Q3_K, 256));
        Assert.Same(KernelRegistry.For(GgmlType.Q5_K), KernelRegistry.ForWeights(GgmlType.Q5_K, 256));
        foreach (var t in Types) Assert.Equal(GgmlType.Q8_K, KernelRegistry.For(t).ActivationType);
    }

    [Fact]
    public void RepackedUsesGemmOnlyForCompleteGroupsOfFourTokens()
    {
        var rng = new Random(3);
        const int n = 1024;
        var k = new GgmlKQuant2Kernel(GgmlType.Q2_K, repacked: true);
        for (int c = 0; c < 20; c++)
        {
            var w = QuantKernelTests.RandomWeights(rng, GgmlType.Q2_K, n);
            var a = new byte[k.ActivationRowBytes(n)];
            k.PrepareActivation(QuantTestUtil.RandomFloats(rng, n), a);
            fixed (byte* pw = w) fixed (byte* pa = a)
            {
                float gemm = GgmlKQuant2Dot.RepackedQ2K(pw, pa, n, gemm: true), gemv = GgmlKQuant2Dot.RepackedQ2K(pw, pa, n, gemm: false);
                Assert.Equal(gemv, k.Dot(pw, pa, n));
                for (int t = 0; t < 7; t++) Assert.Equal(t < 4 ? gemm : gemv, k.DotInMatMul(pw, pa, n, t, 7));
                for (int t = 0; t < 3; t++) Assert.Equal(gemv, k.DotInMatMul(pw, pa, n, t, 3));
                for (int t = 0; t < 8; t++) Assert.Equal(gemm, k.DotInMatMul(pw, pa, n, t, 8));
            }
        }
    }

    static IEnumerable<(string Path, MatVecKernel Kernel)> KernelVariants(GgmlType type)
    {
        yield return ("vec_dot", new GgmlKQuant2Kernel(type));
        if (type == GgmlType.Q2_K) yield return ("repacked", new GgmlKQuant2Kernel(type, repacked: true));
    }

    static float[] Deq(GgmlType type, byte* p, int n)
    {
        var r = new float[n];
        fixed (float* d = r) Dequantize.Row(type, p, d, n);
        return r;
    }

    /// <summary>Checks one weight row against one activation: SIMD = scalar form bit for bit (every path, GEMM and
    /// GEMV for repacked), and within 1e-5·Σ|terms| of the plain scalar reference.</summary>
    static void CheckRow(GgmlType type, byte* w, byte* a, float[] deqAct, int n, string what)
    {
        var reference = KernelRegistry.Reference(type);
        float expected = reference.Dot(w, a, n);
        var deqW = Deq(type, w, n);
        double abs = 0;
        for (int i = 0; i < n; i++) abs += Math.Abs((double)deqW[i] * deqAct[i]);
        foreach (var (path, k) in KernelVariants(type))
        {
            var scalar = new GgmlKQuant2Kernel(type, repacked: path == "repacked", scalar: true);
            foreach (int tokens in new[] { 1, 4 })
            {
                float got = k.DotInMatMul(w, a, n, 0, tokens), gotScalar = scalar.DotInMatMul(w, a, n, 0, tokens);
                Assert.True(BitConverter.SingleToUInt32Bits(got) == BitConverter.SingleToUInt32Bits(gotScalar),
                    $"{what} {path} tokens={tokens}: SIMD {got:R} vs scalar {gotScalar:R}");
                Assert.True(Math.Abs(got - expected) <= 1e-5 * abs + 1e-30, $"{what} {path} tokens={tokens}: {got} vs reference {expected} (Σ|terms| {abs})");
            }
        }
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void SimdEqualsScalarAndCloseToReferenceOnRandomData(string typeName)
    {
        var type = Parse(typeName);
        var rng = new Random(40 + (int)type);
        var k = KernelRegistry.For(type);
        foreach (int n in new[] { 256, 512, 768, 1024, 2048, 4096 })
            for (int c = 0; c < 8; c++)
            {
                var w = QuantKernelTests.RandomWeights(rng, type, n);
                if (c % 2 == 1) rng.NextBytes(w); // also arbitrary (possibly huge or negative) scales
                var x = QuantTestUtil.RandomFloats(rng, n, c == 2 ? 1e-3f : 1f);
                if (c == 3) Array.Clear(x, 0, 256); // an all-zero activation block
                var a = new byte[k.ActivationRowBytes(n)];
                k.PrepareActivation(x, a);
                fixed (byte* pw = w) fixed (byte* pa = a)
                {
                    var deqAct = Deq(GgmlType.Q8_K, pa, n);
                    if (c % 2 == 1 && !float.IsFinite(KernelRegistry.Reference(type).Dot(pw, pa, n))) continue;
                    CheckRow(type, pw, pa, deqAct, n, $"{typeName} n={n} case {c}");
                }
            }
    }

    public static TheoryData<string> ModelFiles => new("mini-qwen2-q2_k.gguf", "mini-qwen2-q3_k_m.gguf", "mini-qwen2-q5_k_m.gguf");

    [Theory]
    [MemberData(nameof(ModelFiles))]
    public void SimdEqualsScalarAndCloseToReferenceOnRealTensors(string file)
    {
        using var g = GgufFile.Open(TestData.Model(file));
        var rng = new Random(11);
        int checkedTensors = 0;
        foreach (var t in g.Tensors.Where(t => t.Dimensions.Length == 2 && Types.Contains(t.Type)))
        {
            int n = (int)t.Columns;
            long rowBytes = GgmlTypeInfo.Of(t.Type).RowBytes(n);
            var k = KernelRegistry.For(t.Type);
            var a = new byte[k.ActivationRowBytes(n)];
            k.PrepareActivation(QuantTestUtil.RandomFloats(rng, n), a);
            byte* w = g.TensorPointer(t);
            fixed (byte* pa = a)
            {
                var deqAct = Deq(GgmlType.Q8_K, pa, n);
                for (int r = 0; r < Math.Min(t.Rows, 32); r++)
                    CheckRow(t.Type, w + r * rowBytes, pa, deqAct, n, $"{file} {t.Name} row {r}");
            }
            checkedTensors++;
        }
        Assert.True(checkedTensors > 0);
    }
}
