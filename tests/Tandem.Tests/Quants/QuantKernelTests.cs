using Tandem.Engine.Kernels;
using Tandem.Gguf;
using Tandem.Gguf.Quants;
using Xunit.Abstractions;

namespace Tandem.Tests.Quants;

public unsafe class QuantKernelTests(ITestOutputHelper output)
{
    static readonly GgmlType[] AllTypes =
    [
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
    ];

    public static TheoryData<string> TypeNames()
    {
        var d = new TheoryData<string>();
        foreach (var t in AllTypes) d.Add(GgmlTypeInfo.Of(t).Name);
        return d;
    }

    static GgmlType Parse(string name) => GgmlTypeInfo.TryParse(name, out var t) ? t : throw new ArgumentException(name);

    /// <summary>Random weight row: random quant bits, sane fp16 scales.</summary>
    internal static byte[] RandomWeights(Random rng, GgmlType type, int n)
    {
        var info = GgmlTypeInfo.Of(type);
        var bytes = new byte[info.RowBytes(n)];
        if (type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)
        {
            var x = QuantTestUtil.RandomFloats(rng, n, 0.05f);
            ActivationQuant.Quantize(type, x, bytes);
            return bytes;
        }
        rng.NextBytes(bytes);
        int[] halfOffsets = type switch
        {
            GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 => [0],
            GgmlType.Q4_1 or GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
            GgmlType.Q2_K => [80, 82],
            GgmlType.Q3_K => [108],
            GgmlType.Q6_K => [208],
            _ => throw new NotSupportedException(),
        };
        for (int b = 0; b < bytes.Length; b += info.TypeSize)
            foreach (int off in halfOffsets)
            {
                float v = (float)(rng.NextDouble() * 0.02 + 0.001) * (type is GgmlType.Q4_1 or GgmlType.Q5_1 && off == 2 ? -1 : 1);
                BitConverter.TryWriteBytes(bytes.AsSpan(b + off, 2), (Half)v);
            }
        return bytes;
    }

    static (byte[] act, float[] deqAct) PrepareActivation(MatVecKernel k, float[] x)
    {
        var act = new byte[k.ActivationRowBytes(x.Length)];
        k.PrepareActivation(x, act);
        var deq = new float[x.Length];
        fixed (byte* p = act) fixed (float* d = deq) Dequantize.Row(k.ActivationType, p, d, x.Length);
        return (act, deq);
    }

    static float[] DeqWeights(GgmlType type, byte[] w, int n)
    {
        var r = new float[n];
        fixed (byte* p = w) fixed (float* d = r) KernelRegistry.DequantizeRow(type, p, d, n);
        return r;
    }

    static float Dot(MatVecKernel k, byte[] w, byte[] a, int n)
    {
        fixed (byte* pw = w) fixed (byte* pa = a) return k.Dot(pw, pa, n);
    }

    static (double exact, double absSum) ExactDot(float[] w, float[] a)
    {
        double s = 0, abs = 0;
        for (int i = 0; i < w.Length; i++) { double t = (double)w[i] * a[i]; s += t; abs += Math.Abs(t); }
        return (s, abs);
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void ReferenceDotEqualsDotOfDequantizedValues(string typeName)
    {
        var type = Parse(typeName);
        var k = KernelRegistry.Reference(type);
        Assert.Equal("scalar", k.Isa);
        var rng = new Random(10 + (int)type);
        // Q4_1/Q5_1 use ggml's s = fp16(d * sum q) for the min term, rounded to fp16: allow for that rounding.
        double tol = type is GgmlType.Q4_1 or GgmlType.Q5_1 ? 2e-3 : 2e-6;
        foreach (int n in new[] { 256, 512, 2048 })
        {
            var w = RandomWeights(rng, type, n);
            var (act, deqAct) = PrepareActivation(k, QuantTestUtil.RandomFloats(rng, n));
            var (exact, abs) = ExactDot(DeqWeights(type, w, n), deqAct);
            float got = Dot(k, w, act, n);
            Assert.True(Math.Abs(got - exact) <= tol * abs, $"{typeName} n={n}: {got} vs {exact} (sum|terms| {abs})");
        }
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void EngineKernelsAgreeWithReferenceOnRandomData(string typeName)
    {
        var type = Parse(typeName);
        var kernels = KernelRegistry.Available(type);
        var reference = kernels[0];
        int block = GgmlTypeInfo.Of(type).BlockSize;
        int step = Math.Max(block, 32);
        var rng = new Random(100 + (int)type);
        var lengths = Enumerable.Range(1, 512 / step).Select(i => i * step).Concat([step * 33, 4096 + step, 8192]).Distinct();
        if (type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)
            lengths = lengths.Concat(Enumerable.Range(1, 70)).Distinct(); // odd lengths exercise the tails
        foreach (int n in lengths)
        {
            var w = RandomWeights(rng, type, n);
            var (act, deqAct) = PrepareActivation(reference, QuantTestUtil.RandomFloats(rng, n));
            var (_, abs) = ExactDot(DeqWeights(type, w, n), deqAct);
            float expected = Dot(reference, w, act, n);
            foreach (var k in kernels.Skip(1))
            {
                float got = Dot(k, w, act, n);
                Assert.True(Math.Abs(got - expected) <= 1e-5 * abs + 1e-30, $"{typeName} [{k.Isa}] n={n}: {got} vs {expected} (sum|terms| {abs})");
            }
        }
    }

    public static TheoryData<string, string> RealModelCases => new()
    {
        { "mini-qwen2-f32.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-f16.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-bf16.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q8_0.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q4_0.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q4_1.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q5_0.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q2_k.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q3_k_m.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q4_k_m.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q5_k_m.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen2-q6_k.gguf", "mini-qwen2-f32.gguf" },
        { "mini-qwen3-q4_k_m.gguf", "mini-qwen3-f32.gguf" },
        { "mini-qwen3-q8_0.gguf", "mini-qwen3-f32.gguf" },
    };

    /// <summary>
    /// On real tensors: every kernel agrees with the reference; and the quantized dot is close to the F32 dot
    /// of the original weights and activations (error bounded by the format's weight and activation error).
    /// </summary>
    [Theory]
    [MemberData(nameof(RealModelCases))]
    public void KernelsOnRealTensors(string quantFile, string f32File)
    {
        using var q = GgufFile.Open(TestData.Model(quantFile));
        using var f = GgufFile.Open(TestData.Model(f32File));
        var rng = new Random(7);
        foreach (var t in q.Tensors.Where(t => t.Dimensions.Length == 2))
        {
            var kernels = KernelRegistry.Available(t.Type);
            int n = (int)t.Columns;
            long rowBytes = GgmlTypeInfo.Of(t.Type).RowBytes(n);
            var x = QuantTestUtil.RandomFloats(rng, n);
            var (act, deqAct) = PrepareActivation(kernels[0], x);
            var f32 = f.GetTensor(t.Name);
            float* fw = (float*)f.TensorPointer(f32);
            byte* qw = q.TensorPointer(t);
            double errSq = 0, refSq = 0;
            int rows = (int)Math.Min(t.Rows, 64);
            var deqRow = new float[n];
            for (int r = 0; r < rows; r++)
            {
                byte* row = qw + r * rowBytes;
                fixed (float* d = deqRow) KernelRegistry.DequantizeRow(t.Type, row, d, n);
                var (_, abs) = ExactDot(deqRow, deqAct);
                float expected;
                fixed (byte* pa = act) expected = kernels[0].Dot(row, pa, n);
                foreach (var k in kernels.Skip(1))
                {
                    float got;
                    fixed (byte* pa = act) got = k.Dot(row, pa, n);
                    Assert.True(Math.Abs(got - expected) <= 1e-5 * abs, $"{t.Name} {t.Type} [{k.Isa}] row {r}: {got} vs {expected}");
                }
                double f32Dot = 0;
                for (int i = 0; i < n; i++) f32Dot += (double)fw[(long)r * n + i] * x[i];
                errSq += (expected - f32Dot) * (expected - f32Dot);
                refSq += f32Dot * f32Dot;
            }
            double rel = Math.Sqrt(errSq / refSq);
            double bound = t.Type switch
            {
                GgmlType.F32 => 1e-6, GgmlType.F16 => 2e-3, GgmlType.BF16 => 1e-2, GgmlType.Q8_0 => 0.02,
                GgmlType.Q6_K => 0.05, GgmlType.Q5_0 or GgmlType.Q5_K or GgmlType.Q5_1 => 0.10,
                GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q4_K => 0.20, GgmlType.Q3_K => 0.35, _ => 0.60,
            };
            Assert.True(rel < bound, $"{quantFile} {t.Name} {t.Type}: dot error vs F32 {rel:P2} exceeds {bound:P0}");
        }
    }

    [Fact]
    public void ReportsKernelChoice()
    {
        foreach (var t in AllTypes)
        {
            var k = KernelRegistry.For(t);
            Assert.Equal(t, k.WeightType);
        }
        foreach (var line in KernelRegistry.Describe()) output.WriteLine(line);
        Assert.Equal(AllTypes.Length, KernelRegistry.Describe().Count());
    }
}

public unsafe class HalfConversionKernelTests
{
    /// <summary>The SIMD fp16 decoders are exact for every fp16 value (subnormals, infinities, NaN included).</summary>
    [Fact]
    public void F16KernelsDecodeEveryHalfExactly()
    {
        var one = new ushort[65536];
        Array.Fill(one, (ushort)0x3c00); // 1.0
        var all = new ushort[65536];
        for (int i = 0; i < all.Length; i++) all[i] = (ushort)i;
        foreach (var k in KernelRegistry.Available(GgmlType.F16))
        {
            // dot of [h, 0, 0, ...] with ones = h, one value at a time (chunks of 16 aligned values)
            fixed (ushort* pa = all) fixed (ushort* po = one)
            {
                var buf = new ushort[32];
                fixed (ushort* pb = buf)
                    for (int i = 0; i < 65536; i++)
                    {
                        buf[i % 32] = all[i];
                        float got = k.Dot((byte*)pb, (byte*)po, 32);
                        buf[i % 32] = 0;
                        float expected = (float)BitConverter.UInt16BitsToHalf((ushort)i);
                        if (float.IsNaN(expected)) Assert.True(float.IsNaN(got), $"{k.Isa} {i:x4}");
                        else Assert.True(expected == got, $"{k.Isa} {i:x4}: {got} vs {expected}");
                    }
            }
        }
    }
}

public unsafe class IntegerExactnessTests
{
    /// <summary>
    /// With every scale 1 (and Q4_1/Q5_1 mins 0) a 32-block kernel's result is the sum of its integer block sums,
    /// exactly representable in float: every kernel (scalar and SIMD) must return exactly the integer dot product.
    /// </summary>
    [Theory]
    [InlineData("Q4_0")]
    [InlineData("Q4_1")]
    [InlineData("Q5_0")]
    [InlineData("Q5_1")]
    [InlineData("Q8_0")]
    public void IntegerPartIsExact(string typeName)
    {
        Assert.True(GgmlTypeInfo.TryParse(typeName, out var type));
        var info = GgmlTypeInfo.Of(type);
        var actType = ActivationQuant.VecDotType(type);
        var actInfo = GgmlTypeInfo.Of(actType);
        var rng = new Random(3);
        ushort one = BitConverter.HalfToUInt16Bits((Half)1f);
        foreach (int n in Enumerable.Range(1, 16).Select(i => i * 32).Concat([1024, 4096]))
        {
            var w = new byte[info.RowBytes(n)];
            rng.NextBytes(w);
            for (int b = 0; b < w.Length; b += info.TypeSize)
            {
                BitConverter.TryWriteBytes(w.AsSpan(b, 2), one);
                if (type is GgmlType.Q4_1 or GgmlType.Q5_1) BitConverter.TryWriteBytes(w.AsSpan(b + 2, 2), (ushort)0);
            }
            var a = new byte[actInfo.RowBytes(n)];
            for (int b = 0; b < a.Length; b += actInfo.TypeSize)
            {
                int qOffset = actType == GgmlType.Q8_1 ? 4 : 2;
                int sum = 0;
                for (int j = 0; j < 32; j++) { sbyte q = (sbyte)rng.Next(-127, 128); a[b + qOffset + j] = (byte)q; sum += q; }
                BitConverter.TryWriteBytes(a.AsSpan(b, 2), one);
                if (actType == GgmlType.Q8_1) BitConverter.TryWriteBytes(a.AsSpan(b + 2, 2), (Half)sum);
            }
            var wq = new float[n];
            var aq = new float[n];
            fixed (byte* pw = w) fixed (byte* pa = a) fixed (float* fw = wq) fixed (float* fa = aq)
            {
                Dequantize.Row(type, pw, fw, n);
                Dequantize.Row(actType, pa, fa, n);
                long exact = 0;
                for (int i = 0; i < n; i++) exact += (long)wq[i] * (long)aq[i];
                foreach (var k in KernelRegistry.Available(type))
                    Assert.True(k.Dot(pw, pa, n) == exact, $"{typeName} [{k.Isa}] n={n}: {k.Dot(pw, pa, n)} vs {exact}");
            }
        }
    }
}

public unsafe class WidenF16Tests
{
    /// <summary>The vector F16 widening the float kernels use gives, bit for bit, (float)Half for all 65536 values.</summary>
    [Fact]
    public void WidenF16EqualsHalfConversionForEveryValue()
    {
        var all = new ushort[65536];
        for (int i = 0; i < all.Length; i++) all[i] = (ushort)i;
        var widened = new float[16];
        fixed (ushort* p = all)
            for (int i = 0; i < all.Length; i += 16)
            {
                System.Runtime.Intrinsics.Vector512.CopyTo(Tandem.Engine.Kernels.GgmlFloatDot.WidenF16(p + i), widened);
                for (int k = 0; k < 16; k++)
                {
                    int expected = BitConverter.SingleToInt32Bits((float)BitConverter.UInt16BitsToHalf((ushort)(i + k)));
                    Assert.True(expected == BitConverter.SingleToInt32Bits(widened[k]),
                        $"{i + k:x4}: {BitConverter.SingleToInt32Bits(widened[k]):x8} vs (float)Half {expected:x8}");
                }
            }
    }
}
