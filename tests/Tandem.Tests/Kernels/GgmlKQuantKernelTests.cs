using Tandem.Engine.Kernels;
using Tandem.Gguf;
using Tandem.Gguf.Quants;
using Tandem.Tests.Quants;

namespace Tandem.Tests.Kernels;

/// <summary>
/// The Q4_K/Q6_K kernels that reproduce llama.cpp's x86 arithmetic (vec_dot, repacked q4_K_8x8 GEMM and GEMV):
/// SIMD forms equal their scalar references bit for bit, every path is within float rounding of the exact dot of
/// the dequantized values, and the registry picks the path llama.cpp takes.
/// </summary>
public unsafe class GgmlKQuantKernelTests
{
    delegate float DotFn(byte* w, byte* a, int n);

    static readonly (string Name, GgmlType Type, DotFn Simd, DotFn Scalar)[] Paths =
    [
        ("q4_K vec_dot", GgmlType.Q4_K, GgmlKQuantDot.VecDotQ4K, GgmlKQuantDot.VecDotQ4KScalar),
        ("q4_K repack gemv", GgmlType.Q4_K, GgmlKQuantDot.RepackGemvQ4K, GgmlKQuantDot.RepackGemvQ4KScalar),
        ("q4_K repack gemm", GgmlType.Q4_K, GgmlKQuantDot.RepackGemmQ4K, GgmlKQuantDot.RepackGemmQ4KScalar),
        ("q6_K vec_dot", GgmlType.Q6_K, GgmlKQuantDot.VecDotQ6K, GgmlKQuantDot.VecDotQ6KScalar),
    ];

    static byte[] Q8K(float[] x)
    {
        var a = new byte[GgmlTypeInfo.Of(GgmlType.Q8_K).RowBytes(x.Length)];
        ActivationQuant.Quantize(GgmlType.Q8_K, x, a);
        return a;
    }

    static double[] ExactDot(GgmlType type, byte* w, byte* a, int n)
    {
        var dw = new float[n];
        var da = new float[n];
        fixed (float* pw = dw) fixed (float* pa = da)
        {
            Dequantize.Row(type, w, pw, n);
            Dequantize.Row(GgmlType.Q8_K, a, pa, n);
        }
        double s = 0, abs = 0;
        for (int i = 0; i < n; i++) { double t = (double)dw[i] * da[i]; s += t; abs += Math.Abs(t); }
        return [s, abs];
    }

    static void Check(string what, GgmlType type, byte* w, byte* a, int n)
    {
        var exact = ExactDot(type, w, a, n);
        foreach (var p in Paths.Where(p => p.Type == type))
        {
            float simd = p.Simd(w, a, n), scalar = p.Scalar(w, a, n);
            Assert.True(BitConverter.SingleToInt32Bits(simd) == BitConverter.SingleToInt32Bits(scalar),
                $"{p.Name} {what} n={n}: SIMD {simd:R} vs scalar {scalar:R}");
            Assert.True(Math.Abs(scalar - exact[0]) <= 1e-5 * exact[1] + 1e-30,
                $"{p.Name} {what} n={n}: {scalar:R} vs exact {exact[0]:R} (sum|terms| {exact[1]})");
        }
    }

    [Theory]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q6_K)]
    public void SimdEqualsScalarAndExactDotOnRandomData(GgmlType type)
    {
        var rng = new Random(42 + (int)type);
        foreach (int n in new[] { 256, 512, 768, 1024, 2816, 4096 })
            for (int rep = 0; rep < 8; rep++)
            {
                var w = QuantKernelTests.RandomWeights(rng, type, n);
                var a = Q8K(QuantTestUtil.RandomFloats(rng, n, rep + 1));
                fixed (byte* pw = w) fixed (byte* pa = a) Check("random", type, pw, pa, n);
            }
    }

    [Theory]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q6_K)]
    public void ExtremeQuantsDoNotOverflow(GgmlType type)
    {
        // All weight quant bits set (largest quants and scales) against activations at ±127.
        int n = 1024;
        var rng = new Random(3);
        var w = QuantKernelTests.RandomWeights(rng, type, n);
        var info = GgmlTypeInfo.Of(type);
        for (int b = 0; b < w.Length; b += info.TypeSize)
        {
            if (type == GgmlType.Q4_K) w.AsSpan(b + 4, 140).Fill(0xFF);          // scales + qs
            else { w.AsSpan(b, 192).Fill(0xFF); w.AsSpan(b + 192, 16).Fill(127); } // ql, qh, scales
        }
        foreach (float sign in new[] { 1f, -1f })
        {
            var x = new float[n];
            for (int i = 0; i < n; i++) x[i] = (i % 3 == 0 ? -sign : sign) * (1 + (i % 7) * 1e-3f);
            var a = Q8K(x);
            fixed (byte* pw = w) fixed (byte* pa = a) Check("extreme", type, pw, pa, n);
        }
    }

    public static TheoryData<string> QuantizedModels => new() { "mini-qwen2-q4_k_m.gguf", "mini-qwen2-q6_k.gguf", "mini-qwen3-q4_k_m.gguf" };

    [Theory]
    [MemberData(nameof(QuantizedModels))]
    public void SimdEqualsScalarAndExactDotOnRealTensors(string file)
    {
        using var g = GgufFile.Open(TestData.Model(file));
        var rng = new Random(11);
        int checkedTensors = 0;
        foreach (var t in g.Tensors.Where(t => t.Dimensions.Length == 2 && t.Type is GgmlType.Q4_K or GgmlType.Q6_K))
        {
            int n = (int)t.Columns;
            long rowBytes = GgmlTypeInfo.Of(t.Type).RowBytes(n);
            var a = Q8K(QuantTestUtil.RandomFloats(rng, n));
            byte* data = g.TensorPointer(t);
            fixed (byte* pa = a)
                for (int r = 0; r < Math.Min(t.Rows, 16); r++)
                    Check(t.Name, t.Type, data + r * rowBytes, pa, n);
            checkedTensors++;
        }
        Assert.True(checkedTensors > 0);
    }

    [Fact]
    public void NegatedActivationBlocksGiveIdenticalResults()
    {
        // ggml_quantize_mat_q8_K_4x8 (repacked GEMM) differs from quantize_row_q8_K only by negating d, quants and
        // sums of a block whose extreme value occurs with both signs; every path must be blind to that.
        var rng = new Random(21);
        int n = 768;
        var x = QuantTestUtil.RandomFloats(rng, n);
        x[5] = -4f; x[300] = 4f; x[600] = -4f; x[601] = 4f;
        var a = Q8K(x);
        var neg = (byte[])a.Clone();
        fixed (byte* pn = neg)
        {
            var blocks = (BlockQ8_K*)pn;
            for (int b = 0; b < n / QK.K; b++)
            {
                blocks[b].D = -blocks[b].D;
                for (int i = 0; i < QK.K; i++) blocks[b].Qs[i] = (sbyte)-blocks[b].Qs[i];
                for (int i = 0; i < 16; i++) blocks[b].BSums[i] = (short)-blocks[b].BSums[i];
            }
        }
        foreach (var p in Paths)
        {
            var w = QuantKernelTests.RandomWeights(rng, p.Type, n);
            fixed (byte* pw = w) fixed (byte* pa = a) fixed (byte* pn = neg)
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(p.Simd(pw, pa, n)), BitConverter.SingleToInt32Bits(p.Simd(pw, pn, n)));
                Assert.Equal(BitConverter.SingleToInt32Bits(p.Scalar(pw, pa, n)), BitConverter.SingleToInt32Bits(p.Scalar(pw, pn, n)));
            }
        }
    }

    [Fact]
    public void RegistryPicksLlamaCppPaths()
    {
        Assert.Same(GgmlKQuantKernel.Q4KRepacked, KernelRegistry.ForWeights(GgmlType.Q4_K, 256));
        Assert.Same(GgmlKQuantKernel.Q4KRepacked, KernelRegistry.ForWeights(GgmlType.Q4_K, 8));
        Assert.Same(GgmlKQuantKernel.Q4K, KernelRegistry.ForWeights(GgmlType.Q4_K, 4099));
        Assert.Same(GgmlKQuantKernel.Q4K, KernelRegistry.For(GgmlType.Q4_K));
        Assert.Same(GgmlKQuantKernel.Q6K, KernelRegistry.ForWeights(GgmlType.Q6_K, 256));
        Assert.Same(GgmlKQuantKernel.Q6K, KernelRegistry.For(GgmlType.Q6_K));
        Assert.Same(KernelRegistry.For(GgmlType.Q8_0), KernelRegistry.ForWeights(GgmlType.Q8_0, 4099));
    }

    [Fact]
    public void RepackedKernelSplitsTokensLikeLlamaCpp()
    {
        // Tokens in groups of four go through the GEMM, the tokens % 4 left over through the GEMV.
        var rng = new Random(9);
        int n = 768;
        var k = GgmlKQuantKernel.Q4KRepacked;
        var w = QuantKernelTests.RandomWeights(rng, GgmlType.Q4_K, n);
        var a = new byte[k.ActivationRowBytes(n)];
        k.PrepareActivation(QuantTestUtil.RandomFloats(rng, n), a);
        fixed (byte* pw = w) fixed (byte* pa = a)
        {
            float gemm = GgmlKQuantDot.RepackGemmQ4K(pw, pa, n), gemv = GgmlKQuantDot.RepackGemvQ4K(pw, pa, n);
            Assert.Equal(gemv, k.Dot(pw, pa, n));
            Assert.Equal(gemv, k.DotInMatMul(pw, pa, n, 0, 1));
            for (int t = 0; t < 3; t++) Assert.Equal(gemv, k.DotInMatMul(pw, pa, n, t, 3));
            for (int t = 0; t < 7; t++) Assert.Equal(t < 4 ? gemm : gemv, k.DotInMatMul(pw, pa, n, t, 7));
            for (int t = 0; t < 16; t++) Assert.Equal(gemm, k.DotInMatMul(pw, pa, n, t, 16));

            // Non-repacked kernels use vec_dot for every token.
            float vq4 = GgmlKQuantDot.VecDotQ4K(pw, pa, n);
            for (int t = 0; t < 5; t++) Assert.Equal(vq4, GgmlKQuantKernel.Q4K.DotInMatMul(pw, pa, n, t, 5));
        }
    }

    /// <summary>
    /// The repacked Q4_K GEMV's eight-row groups: the form the machine picks (512-bit on AVX-512) and the AVX2 form
    /// both equal the one-output GEMV bit for bit, over rows that are and are not a multiple of eight, row lengths
    /// of one to 35 super-blocks, and extreme quants (all-15 nibbles against −128 activations, no int16 saturation).
    /// </summary>
    [Fact]
    public void RepackedGemvRowGroupsEqualOneOutputGemv()
    {
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported) return; // the row groups are x86 code; elsewhere the one-output GEMV runs
        var rng = new Random(41);
        var kernel = GgmlKQuantKernel.Q4KRepacked;
        foreach (var (n, rows, extreme) in new[] { (256, 8, false), (768, 24, false), (4864, 19, false), (8960, 16, false), (1536, 16, true) })
        {
            long rowBytes = GgmlTypeInfo.Of(GgmlType.Q4_K).RowBytes(n);
            var weights = new byte[rowBytes * rows];
            for (int r = 0; r < rows; r++) QuantKernelTests.RandomWeights(rng, GgmlType.Q4_K, n).CopyTo(weights, r * rowBytes);
            var x = QuantTestUtil.RandomFloats(rng, n);
            if (extreme)
            {
                for (int r = 0; r < rows; r++)
                    for (int b = 0; b < n / 256; b++)
                        weights.AsSpan((int)(r * rowBytes + b * 144 + 16), 128).Fill(0xFF);
                for (int i = 0; i < n; i++) x[i] = i % 3 == 0 ? -1f : -0.5f;
            }
            var a = Q8K(x);
            var bias = QuantTestUtil.RandomFloats(rng, rows);
            var expected = new float[rows];
            var picked = new float[rows];
            var avx2 = new float[rows];
            fixed (byte* w = weights) fixed (byte* pa = a) fixed (float* po = picked) fixed (float* p2 = avx2)
            {
                for (int r = 0; r < rows; r++) expected[r] = kernel.DotInMatMul(w + r * rowBytes, pa, n, 0, 1) + bias[r];
                var op = new MatMulOperands { Weights = w, RowBytes = rowBytes, Activations = pa, ActivationRowBytes = a.Length, Tokens = 1, N = n, Output = po, OutputStride = rows, Bias = bias };
                kernel.MatMul(op, 0, rows);
                GgmlKQuantDot.GemvQ4KRows8Avx2(kernel, op with { Output = p2 }, 0, 0, rows);
            }
            for (int r = 0; r < rows; r++)
            {
                Assert.True(BitConverter.SingleToInt32Bits(expected[r]) == BitConverter.SingleToInt32Bits(picked[r]), $"n {n} row {r}: {picked[r]:R} vs one output {expected[r]:R}");
                Assert.True(BitConverter.SingleToInt32Bits(expected[r]) == BitConverter.SingleToInt32Bits(avx2[r]), $"AVX2 form, n {n} row {r}: {avx2[r]:R} vs one output {expected[r]:R}");
            }
        }
    }
}
