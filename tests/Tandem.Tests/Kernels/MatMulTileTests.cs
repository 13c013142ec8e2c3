using Tandem.Engine.Kernels;
using Tandem.Gguf;
using Tandem.Tests.Quants;

namespace Tandem.Tests.Kernels;

/// <summary>
/// The multi-token matrix kernels (prefill and batched decode) must give, bit for bit, what one
/// <see cref="MatVecKernel.DotInMatMul"/> per output gives: that is what keeps the engine's logits equal to llama.cpp's
/// whatever the batch size. Shapes cover full tiles, partial tiles, odd row counts and sub-ranges of rows.
/// </summary>
public unsafe class MatMulTileTests
{
    public static TheoryData<string> Types() => new(KernelRegistry.SupportedTypes.Select(t => GgmlTypeInfo.Of(t).Name));

    [Theory]
    [MemberData(nameof(Types))]
    public void MatMulEqualsOneDotPerOutput(string typeName)
    {
        Assert.True(GgmlTypeInfo.TryParse(typeName, out var type));
        var rng = new Random(17);
        foreach (var (n, rows) in new[] { (512, 1), (512, 7), (512, 16), (4864, 5) })
        {
            // Two workers' halves, the split the engine's pool makes (the first half may be odd).
            int split = rows / 2 + (rows > 2 ? 1 : 0);
            var tokenCounts = n > 512 ? new[] { 1, 24, 33 } : new[] { 1, 2, 3, 4, 5, 8, 9, 12, 16, 17, 24, 32, 40, 57 };
            CheckMatMul(rng, type, n, rows, tokenCounts, [0, split, rows], bias: rows == 7);
        }
    }

    /// <summary>
    /// Every token count from 1 to 40 (whole and partial groups of 4, 8 and 16, and every remainder), over three row
    /// ranges of odd lengths (so two-row tiles meet a leftover row in each), with a bias; the K-quants also at their
    /// shortest row (256) and at a 4864-element row with odd token counts.
    /// </summary>
    [Theory]
    [MemberData(nameof(Types))]
    public void MatMulEqualsOneDotPerOutputForEveryTokenCount(string typeName)
    {
        Assert.True(GgmlTypeInfo.TryParse(typeName, out var type));
        var rng = new Random(23);
        int blockSize = GgmlTypeInfo.Of(type).BlockSize;
        // Float types: tinyBLAS order (and its tile) needs a row count that is a multiple of 4 and a row length that
        // is a multiple of 16; 144 is not a multiple of vec_dot's 64, so the single-token tail is covered too.
        int n = blockSize switch { 256 => 256, 1 => 144, _ => 128 }, rows = blockSize == 1 ? 12 : 9;
        CheckMatMul(rng, type, n, rows, Enumerable.Range(1, 40).ToArray(), [0, 1, 6, rows], bias: true);
        if (blockSize == 256)
            CheckMatMul(rng, type, 4864, rows: 3, [7, 15, 21, 39], [0, 1, 3], bias: true);
    }

    /// <summary>
    /// Q4_0 and Q5_0 interleaved at load (eight rows' blocks side by side): the interleaved kernel's MatMul must equal,
    /// bit for bit, the kernel over the file's layout — for decode and batches (whole tile groups, one-token remainders;
    /// Q5_0's tiles over rows re-read in chunks, several chunks for the 160 long rows), whole and partial groups of eight
    /// rows, ranges starting inside a group, a bias.
    /// </summary>
    [Theory]
    [InlineData("Q4_0")]
    [InlineData("Q5_0")]
    public void InterleavedEqualsTheFileLayout(string typeName)
    {
        Assert.True(GgmlTypeInfo.TryParse(typeName, out var type));
        if (!GgmlQ0Kernel.CanInterleave) return; // AVX2-only layout; elsewhere matrices stay as in the file
        var rng = new Random(31);
        var plain = KernelRegistry.ForWeights(type, 64);
        var interleaved = type == GgmlType.Q4_0 ? KernelRegistry.InterleavedQ4_0 : KernelRegistry.InterleavedQ5_0;
        Assert.Equal(8, interleaved.RowGranularity);
        Assert.Contains("interleaved", interleaved.Isa);
        foreach (var (n, rows) in type == GgmlType.Q4_0 ? new[] { (512, 64), (4864, 24) } : [(512, 64), (4864, 24), (4864, 160)])
        {
            long rowBytes = GgmlTypeInfo.Of(type).RowBytes(n);
            var weights = new byte[rowBytes * rows];
            for (int r = 0; r < rows; r++) QuantKernelTests.RandomWeights(rng, type, n).CopyTo(weights, r * rowBytes);
            var packed = new byte[weights.Length];
            for (int g = 0; g < rows / 8; g++)
                if (type == GgmlType.Q4_0) Q4_0Lanes.LayOut(weights.AsSpan((int)(g * 8 * rowBytes), (int)(8 * rowBytes)), packed.AsSpan((int)(g * 8 * rowBytes), (int)(8 * rowBytes)), rowBytes);
                else Q5_0Lanes.LayOut(weights.AsSpan((int)(g * 8 * rowBytes), (int)(8 * rowBytes)), packed.AsSpan((int)(g * 8 * rowBytes), (int)(8 * rowBytes)), rowBytes);
            var biases = QuantTestUtil.RandomFloats(rng, rows);
            foreach (int tokens in n > 512 && rows > 64 ? new[] { 1, 8, 21 } : [1, 2, 4, 7, 8, 9, 13, 16, 17, 33, 57, 70])
            {
                var activations = new byte[plain.ActivationRowBytes(n) * tokens];
                for (int t = 0; t < tokens; t++)
                    plain.PrepareActivation(QuantTestUtil.RandomFloats(rng, n), activations.AsSpan((int)(t * plain.ActivationRowBytes(n)), (int)plain.ActivationRowBytes(n)));
                var expected = new float[tokens * rows];
                var actual = new float[tokens * rows];
                fixed (byte* w = weights) fixed (byte* p = packed) fixed (byte* a = activations) fixed (float* e = expected) fixed (float* o = actual)
                {
                    var op = new MatMulOperands
                    {
                        Weights = w, RowBytes = rowBytes, Activations = a, ActivationRowBytes = plain.ActivationRowBytes(n),
                        Tokens = tokens, N = n, Output = e, OutputStride = rows, Bias = biases,
                    };
                    plain.MatMul(op, 0, rows);
                    foreach (var (start, end) in new[] { (0, rows), (0, 8), (3, rows - 5), (rows / 2, rows), (5, 6) })
                    {
                        Array.Clear(actual);
                        interleaved.MatMul(op with { Weights = p, Output = o }, start, end);
                        for (int t = 0; t < tokens; t++)
                            for (int r = start; r < end; r++)
                                Assert.True(BitConverter.SingleToInt32Bits(expected[t * rows + r]) == BitConverter.SingleToInt32Bits(actual[t * rows + r]),
                                    $"{type} n {n}, rows [{start}, {end}), tokens {tokens}, output [{t}, {r}]: {actual[t * rows + r]:R} vs {expected[t * rows + r]:R}");
                    }
                }
            }
        }
    }

    /// <summary>Q5_0's lane-major layout keeps every byte: each row's blocks read back as in the file, and the qh regrouping
    /// (BMI2 bit extract/deposit) agrees with its bit-by-bit reference and inverts.</summary>
    [Fact]
    public void Q5_0LanesReadBackEveryBlock()
    {
        var rng = new Random(5);
        for (int i = 0; i < 10000; i++)
        {
            uint qh = (uint)rng.NextInt64(0, 1L << 32);
            Assert.Equal(Q5_0Lanes.RegroupFifthBitsReference(qh), Q5_0Lanes.RegroupFifthBits(qh));
            Assert.Equal(qh, Q5_0Lanes.FileFifthBits(Q5_0Lanes.RegroupFifthBits(qh)));
            Assert.Equal(qh, Q5_0Lanes.FileFifthBitsReference(Q5_0Lanes.RegroupFifthBitsReference(qh)));
        }
        Assert.Equal(0x00000001u, Q5_0Lanes.RegroupFifthBits(1u << 0));   // element 0: byte 0, bit 0
        Assert.Equal(0x00000100u, Q5_0Lanes.RegroupFifthBits(1u << 1));   // element 1: byte 1, bit 0
        Assert.Equal(0x00000002u, Q5_0Lanes.RegroupFifthBits(1u << 4));   // element 4: byte 0, bit 1
        Assert.Equal(0x80000000u, Q5_0Lanes.RegroupFifthBits(1u << 31));  // element 31: byte 3, bit 7
        const int n = 256, rows = 16;
        long rowBytes = GgmlTypeInfo.Of(GgmlType.Q5_0).RowBytes(n);
        var weights = new byte[rowBytes * rows];
        rng.NextBytes(weights);
        var packed = new byte[weights.Length];
        for (int g = 0; g < rows / 8; g++)
            Q5_0Lanes.LayOut(weights.AsSpan((int)(g * 8 * rowBytes), (int)(8 * rowBytes)), packed.AsSpan((int)(g * 8 * rowBytes), (int)(8 * rowBytes)), rowBytes);
        var block = new byte[Q5_0Lanes.BlockBytes];
        fixed (byte* p = packed) fixed (byte* b = block)
            for (int r = 0; r < rows; r++)
                for (int ib = 0; ib < n / 32; ib++)
                {
                    Q5_0Lanes.ReadBlock(p, rowBytes, r, ib, b);
                    Assert.True(block.AsSpan().SequenceEqual(weights.AsSpan((int)(r * rowBytes) + ib * Q5_0Lanes.BlockBytes, Q5_0Lanes.BlockBytes)), $"row {r}, block {ib}");
                }
    }

    /// <summary>MatMul over the row ranges [rowSplits[k], rowSplits[k+1]) against one DotInMatMul per output, bit for bit.</summary>
    static void CheckMatMul(Random rng, GgmlType type, int n, int rows, int[] tokenCounts, int[] rowSplits, bool bias)
    {
        var kernel = KernelRegistry.ForWeights(type, rows);
        long rowBytes = GgmlTypeInfo.Of(type).RowBytes(n);
        var weights = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++) QuantKernelTests.RandomWeights(rng, type, n).CopyTo(weights, r * rowBytes);
        var biases = bias ? QuantTestUtil.RandomFloats(rng, rows) : null;
        foreach (int tokens in tokenCounts)
        {
            long actBytes = kernel.ActivationRowBytes(n);
            var activations = new byte[actBytes * tokens];
            for (int t = 0; t < tokens; t++)
                kernel.PrepareActivation(QuantTestUtil.RandomFloats(rng, n), activations.AsSpan((int)(t * actBytes), (int)actBytes));
            var expected = new float[tokens * rows];
            var actual = new float[tokens * rows];
            fixed (byte* w = weights) fixed (byte* a = activations) fixed (float* o = actual)
            {
                for (int r = 0; r < rows; r++)
                    for (int t = 0; t < tokens; t++)
                        expected[t * rows + r] = kernel.DotInMatMul(w + r * rowBytes, a + t * actBytes, n, t, tokens) + (biases?[r] ?? 0f);
                var op = new MatMulOperands
                {
                    Weights = w, RowBytes = rowBytes, Activations = a, ActivationRowBytes = actBytes,
                    Tokens = tokens, N = n, Output = o, OutputStride = rows, Bias = biases,
                };
                for (int k = 0; k + 1 < rowSplits.Length; k++)
                    kernel.MatMul(op, rowSplits[k], rowSplits[k + 1]);
            }
            for (int i = 0; i < expected.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                    $"{kernel}: n {n}, rows {rows}, tokens {tokens}, output [{i / rows}, {i % rows}]: {actual[i]:R} vs one dot {expected[i]:R}");
        }
    }
}
