using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>Where a Q4_0 row's scale and quant bytes sit: the file's 18-byte blocks, or lane-major groups (<see cref="Q4_0Lanes"/>).</summary>
internal unsafe interface IQ4_0Layout
{
    /// <summary>Bytes from one block of a row to its next.</summary>
    static abstract int BlockStride { get; }
    /// <summary>Bytes from a block's quant bytes 4k..4k+3 to its bytes 4k+4..4k+7.</summary>
    static abstract int QuantStride { get; }
    /// <summary>Row <paramref name="row"/>'s first block's scale (f16).</summary>
    static abstract byte* Scale(byte* weights, long rowBytes, int row);
    /// <summary>Row <paramref name="row"/>'s first block's quant bytes 0..3.</summary>
    static abstract byte* Quants(byte* weights, long rowBytes, int row);
}

/// <summary>Q4_0 rows as in the file: 18-byte blocks, the scale then sixteen quant bytes.</summary>
internal readonly unsafe struct FileLayout : IQ4_0Layout
{
    public static int BlockStride => 18;
    public static int QuantStride => 4;
    public static byte* Scale(byte* weights, long rowBytes, int row) => weights + row * rowBytes;
    public static byte* Quants(byte* weights, long rowBytes, int row) => weights + row * rowBytes + 2;
}

public static unsafe partial class GgmlQ0Dot
{
    /// <summary>
    /// Repacked Q4_0 order for whole groups of 32 tokens, then one of sixteen, two rows at a time; returns how many
    /// tokens it did (tokens − tokens % 16). The tokens sit in the lanes (<see cref="LayOutQ4Group"/>, groups of eight),
    /// so each weight row's four-nibble groups are broadcast and split once for all the tile's tokens, and each
    /// activation vector serves both rows. The block sums are exact integers (lane = token), then
    /// acc = fma(sum, d_w·d_a, acc) per lane: the scalar chain.
    /// </summary>
    internal static int TokenTiles<TLayout>(in MatMulOperands op, int rowStart, int rowEnd) where TLayout : struct, IQ4_0Layout
    {
        int nb = op.N / 32, done = op.Tokens / 16 * 16;
        if (done == 0 || rowEnd <= rowStart) return done;
        long ys = op.ActivationRowBytes, groupBytes = nb * Q4GroupBlockBytes;
        byte* layout = KernelScratch.Get(4 * groupBytes);
        for (int t = 0; t < done;)
        {
            bool wide = t + 32 <= done && Avx512BW.IsSupported;
            var tokens = new Q4TokenGroups(layout, (wide ? 2 : 1) * groupBytes, nb);
            LayOutQ4Tokens(op.Activations + t * ys, ys, nb, wide ? 16 : 8, tokens.First);
            LayOutQ4Tokens(op.Activations + (t + (wide ? 16 : 8)) * ys, ys, nb, wide ? 16 : 8, tokens.Second);
            for (int r = rowStart; r < rowEnd; r += 2)
            {
                int next = Math.Min(r + 1, rowEnd - 1); // a leftover row is paired with itself, its copy not stored
                var rows = Q4RowPair.Of<TLayout>(op, r, next);
                var output = new Q4TileOutput(op, t, r, rows: next - r + 1);
                if (wide) TwoRows32<TLayout>(rows, tokens, output);
                else TwoRows16<TLayout>(rows, tokens, output);
            }
            t += wide ? 32 : 16;
        }
        return done;
    }

    /// <summary>Two weight rows (the same row twice for a leftover one): their first blocks' scales and quant bytes.</summary>
    readonly struct Q4RowPair(byte* scale0, byte* quants0, byte* scale1, byte* quants1)
    {
        public byte* Scale0 => scale0;
        public byte* Quants0 => quants0;
        public byte* Scale1 => scale1;
        public byte* Quants1 => quants1;

        public static Q4RowPair Of<TLayout>(in MatMulOperands op, int r0, int r1) where TLayout : struct, IQ4_0Layout => new(
            TLayout.Scale(op.Weights, op.RowBytes, r0), TLayout.Quants(op.Weights, op.RowBytes, r0),
            TLayout.Scale(op.Weights, op.RowBytes, r1), TLayout.Quants(op.Weights, op.RowBytes, r1));
    }

    /// <summary>Two laid-out groups of tokens (<see cref="LayOutQ4Tokens"/>), <paramref name="groupBytes"/> apart.</summary>
    readonly struct Q4TokenGroups(byte* first, long groupBytes, int blocks)
    {
        public byte* First => first;
        public byte* Second => first + groupBytes;
        public int Blocks => blocks;
    }

    /// <summary>Where a two-row, sixteen-token tile writes: token t, row r at <c>At[t·Stride + r]</c>, with the rows' biases.</summary>
    readonly struct Q4TileOutput(in MatMulOperands op, int t, int r, int rows)
    {
        public float* At { get; } = op.Output + t * op.OutputStride + r;
        /// <summary>Where token group g (eight tokens) of the first row starts.</summary>
        public float* Group(int g) => At + 8 * g * Stride;
        public long Stride { get; } = op.OutputStride;
        public float Bias0 { get; } = op.Bias is null ? 0f : op.Bias[r];
        public float Bias1 { get; } = op.Bias is null || rows < 2 ? 0f : op.Bias[r + 1];
        public int Rows => rows;
    }

    /// <summary>
    /// Two rows × sixteen tokens over the whole row. Per block: four weight groups per row, each split into its low and
    /// high nibbles once and dotted against both token groups; the low and high sums run as separate chains (eight
    /// independent chains of four multiply-adds, not four of eight: the multiply-add latency would set the pace) and
    /// meet before the conversion.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TwoRows16<TLayout>(Q4RowPair rows, Q4TokenGroups groups, Q4TileOutput output) where TLayout : struct, IQ4_0Layout
    {
        Vector256<float> acc00 = default, acc01 = default, acc10 = default, acc11 = default;
        byte* d0p = rows.Scale0, d1p = rows.Scale1, q0 = rows.Quants0, q1 = rows.Quants1;
        int stride = TLayout.QuantStride;
        for (int ib = 0; ib < groups.Blocks; ib++)
        {
            var g0 = (Vector256<sbyte>*)(groups.First + ib * Q4GroupBlockBytes);
            var g1 = (Vector256<sbyte>*)(groups.Second + ib * Q4GroupBlockBytes);
            var offsets0 = ((Vector256<int>*)g0)[8];
            var offsets1 = ((Vector256<int>*)g1)[8];
            Vector256<int> lo00 = offsets0, lo01 = offsets1, lo10 = offsets0, lo11 = offsets1;
            Vector256<int> hi00 = default, hi01 = default, hi10 = default, hi11 = default;
            // Written out: the JIT does not unroll, and the loop's compare and branch would sit among sixteen multiply-adds.
            NibbleStep(q0, q1, g0, g1, ref lo00, ref lo01, ref lo10, ref lo11, ref hi00, ref hi01, ref hi10, ref hi11);
            NibbleStep(q0 + stride, q1 + stride, g0 + 1, g1 + 1, ref lo00, ref lo01, ref lo10, ref lo11, ref hi00, ref hi01, ref hi10, ref hi11);
            NibbleStep(q0 + 2 * stride, q1 + 2 * stride, g0 + 2, g1 + 2, ref lo00, ref lo01, ref lo10, ref lo11, ref hi00, ref hi01, ref hi10, ref hi11);
            NibbleStep(q0 + 3 * stride, q1 + 3 * stride, g0 + 3, g1 + 3, ref lo00, ref lo01, ref lo10, ref lo11, ref hi00, ref hi01, ref hi10, ref hi11);
            var d0 = Vector256.Create(HalfTable.ToF32(*(ushort*)d0p));
            var d1 = Vector256.Create(HalfTable.ToF32(*(ushort*)d1p));
            var s0 = ((Vector256<float>*)g0)[9];
            var s1 = ((Vector256<float>*)g1)[9];
            acc00 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(lo00 + hi00), d0 * s0, acc00);
            acc01 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(lo01 + hi01), d0 * s1, acc01);
            acc10 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(lo10 + hi10), d1 * s0, acc10);
            acc11 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(lo11 + hi11), d1 * s1, acc11);
            d0p += TLayout.BlockStride; d1p += TLayout.BlockStride; q0 += TLayout.BlockStride; q1 += TLayout.BlockStride;
        }
        TokenLanes.Store8(output.Group(0), output.Stride, acc00 + Vector256.Create(output.Bias0));
        TokenLanes.Store8(output.Group(1), output.Stride, acc01 + Vector256.Create(output.Bias0));
        if (output.Rows < 2) return;
        TokenLanes.Store8(output.Group(0) + 1, output.Stride, acc10 + Vector256.Create(output.Bias1));
        TokenLanes.Store8(output.Group(1) + 1, output.Stride, acc11 + Vector256.Create(output.Bias1));
    }

    /// <summary>
    /// Two rows × 32 tokens (two groups of sixteen in 512-bit lanes, AVX-512BW). .NET has no 512-bit vpdpbusd, and the
    /// 256-bit one shares the multiplier ports with the conversions and multiply-adds, which set the pace. So the
    /// products go through vpmaddubsw, 64 bytes at a time, and are summed in 16 bits: a weight nibble is at most 15 and
    /// a Q8_0 quant at most 128 in size, so the eight products-of-pairs of a block stay within ±30,720 and no sum
    /// saturates; one vpmaddwd then widens each token's two halves. The sums are the same integers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TwoRows32<TLayout>(Q4RowPair rows, Q4TokenGroups groups, Q4TileOutput output) where TLayout : struct, IQ4_0Layout
    {
        Vector512<float> a00 = default, a01 = default, a10 = default, a11 = default;
        byte* d0p = rows.Scale0, d1p = rows.Scale1, q0 = rows.Quants0, q1 = rows.Quants1;
        int stride = TLayout.QuantStride;
        var ones = Vector512.Create((short)1);
        for (int ib = 0; ib < groups.Blocks; ib++)
        {
            var g0 = (Vector512<sbyte>*)(groups.First + ib * 2 * Q4GroupBlockBytes);
            var g1 = (Vector512<sbyte>*)(groups.Second + ib * 2 * Q4GroupBlockBytes);
            Vector512<short> s00 = default, s01 = default, s10 = default, s11 = default;
            WideStep(q0, q1, g0, g1, ref s00, ref s01, ref s10, ref s11);
            WideStep(q0 + stride, q1 + stride, g0 + 1, g1 + 1, ref s00, ref s01, ref s10, ref s11);
            WideStep(q0 + 2 * stride, q1 + 2 * stride, g0 + 2, g1 + 2, ref s00, ref s01, ref s10, ref s11);
            WideStep(q0 + 3 * stride, q1 + 3 * stride, g0 + 3, g1 + 3, ref s00, ref s01, ref s10, ref s11);
            var o0 = ((Vector512<int>*)g0)[8];
            var o1 = ((Vector512<int>*)g1)[8];
            var d0 = Vector512.Create(HalfTable.ToF32(*(ushort*)d0p));
            var d1 = Vector512.Create(HalfTable.ToF32(*(ushort*)d1p));
            var y0 = ((Vector512<float>*)g0)[9];
            var y1 = ((Vector512<float>*)g1)[9];
            a00 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(s00, ones) + o0), d0 * y0, a00);
            a01 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(s01, ones) + o1), d0 * y1, a01);
            a10 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(s10, ones) + o0), d1 * y0, a10);
            a11 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(s11, ones) + o1), d1 * y1, a11);
            d0p += TLayout.BlockStride; d1p += TLayout.BlockStride; q0 += TLayout.BlockStride; q1 += TLayout.BlockStride;
        }
        var b0 = Vector512.Create(output.Bias0);
        TokenLanes.Store16(output.Group(0), output.Stride, a00 + b0);
        TokenLanes.Store16(output.Group(2), output.Stride, a01 + b0);
        if (output.Rows < 2) return;
        var b1 = Vector512.Create(output.Bias1);
        TokenLanes.Store16(output.Group(0) + 1, output.Stride, a10 + b1);
        TokenLanes.Store16(output.Group(2) + 1, output.Stride, a11 + b1);
    }

    /// <summary>Four weight bytes at <paramref name="q"/> in every 32-bit lane, split into their low and high nibbles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void BroadcastNibbles(byte* q, out Vector512<byte> low, out Vector512<byte> high)
    {
        var m4 = Vector512.Create((byte)0x0F);
        var w = Vector512.Create(*(int*)q).AsByte();
        low = w & m4;
        high = Vector512.ShiftRightLogical(w.AsUInt16(), 4).AsByte() & m4;
    }

    /// <summary>Quant bytes 4k..4k+3 of two rows against two sixteen-token groups' quant groups k (low nibbles) and k + 4 (high), summed in 16 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void WideStep(byte* q0, byte* q1, Vector512<sbyte>* g0, Vector512<sbyte>* g1,
        ref Vector512<short> s00, ref Vector512<short> s01, ref Vector512<short> s10, ref Vector512<short> s11)
    {
        BroadcastNibbles(q0, out var lo0, out var hi0);
        BroadcastNibbles(q1, out var lo1, out var hi1);
        s00 += Avx512BW.MultiplyAddAdjacent(lo0, g0[0]) + Avx512BW.MultiplyAddAdjacent(hi0, g0[4]);
        s01 += Avx512BW.MultiplyAddAdjacent(lo0, g1[0]) + Avx512BW.MultiplyAddAdjacent(hi0, g1[4]);
        s10 += Avx512BW.MultiplyAddAdjacent(lo1, g0[0]) + Avx512BW.MultiplyAddAdjacent(hi1, g0[4]);
        s11 += Avx512BW.MultiplyAddAdjacent(lo1, g1[0]) + Avx512BW.MultiplyAddAdjacent(hi1, g1[4]);
    }

    /// <summary>
    /// Quant bytes 4k..4k+3 of two rows (<paramref name="q0"/>, <paramref name="q1"/>) against two token groups' quant
    /// groups k (low nibbles: elements 4k..4k+3) and k + 4 (high nibbles: elements 16+4k..16+4k+3).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void NibbleStep(byte* q0, byte* q1, Vector256<sbyte>* g0, Vector256<sbyte>* g1,
        ref Vector256<int> lo00, ref Vector256<int> lo01, ref Vector256<int> lo10, ref Vector256<int> lo11,
        ref Vector256<int> hi00, ref Vector256<int> hi01, ref Vector256<int> hi10, ref Vector256<int> hi11)
    {
        var m4 = Vector256.Create((byte)0x0F);
        var w0 = Vector256.Create(*(int*)q0).AsByte();
        var w1 = Vector256.Create(*(int*)q1).AsByte();
        var y0 = g0[0];
        var y1 = g1[0];
        lo00 = UnsignedDot(lo00, w0 & m4, y0);
        lo01 = UnsignedDot(lo01, w0 & m4, y1);
        lo10 = UnsignedDot(lo10, w1 & m4, y0);
        lo11 = UnsignedDot(lo11, w1 & m4, y1);
        var h0 = Vector256.ShiftRightLogical(w0.AsUInt16(), 4).AsByte() & m4;
        var h1 = Vector256.ShiftRightLogical(w1.AsUInt16(), 4).AsByte() & m4;
        var z0 = g0[4];
        var z1 = g1[4];
        hi00 = UnsignedDot(hi00, h0, z0);
        hi01 = UnsignedDot(hi01, h0, z1);
        hi10 = UnsignedDot(hi10, h1, z0);
        hi11 = UnsignedDot(hi11, h1, z1);
    }
}
