using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

public static unsafe partial class GgmlKQuantDot
{
    /// <summary>
    /// Sixteen tokens' Q8_K activations with the tokens in 512-bit lanes (in <see cref="KernelScratch"/>): per
    /// super-block, the tokens' scales; per 32-element sub-block pair, each token's two quant sums as adjacent 16-bit
    /// halves (a sub-block's 32 quants sum to at most 4,064 in size); and for each 4-element group g a vector whose
    /// lane t holds token t's quants 4g..4g+3.
    /// </summary>
    readonly struct Q4KWideGroup
    {
        const long SuperBlockBytes = 64 + 4 * 64 + 64 * 64;
        readonly byte* _data;
        public readonly int Blocks;

        public Q4KWideGroup(byte* data, int superBlocks)
        {
            _data = data;
            Blocks = superBlocks;
        }

        public static long Bytes(int superBlocks) => superBlocks * SuperBlockBytes;

        public Vector512<float>* Scales(int i) => (Vector512<float>*)(_data + i * SuperBlockBytes);
        /// <summary>Vector j: lane t = token t's quant sums of sub-blocks 2j and 2j + 1, as two 16-bit halves.</summary>
        public Vector512<short>* SubBlockSums(int i) => (Vector512<short>*)(_data + i * SuperBlockBytes + 64);
        public Vector512<sbyte>* Groups(int i) => (Vector512<sbyte>*)(_data + i * SuperBlockBytes + 64 + 4 * 64);

        public void LayOut(byte* a, long ys)
        {
            for (int i = 0; i < Blocks; i++)
            {
                byte* y0 = a + i * (long)sizeof(BlockQ8_K);
                var scales = (float*)Scales(i);
                var sums = (short*)SubBlockSums(i);
                var groups = (int*)Groups(i);
                for (int t = 0; t < 16; t++)
                {
                    var y = (BlockQ8_K*)(y0 + t * ys);
                    scales[t] = y->D;
                    for (int j = 0; j < 4; j++)
                    {
                        sums[j * 32 + 2 * t] = (short)(y->BSums[4 * j] + y->BSums[4 * j + 1]);
                        sums[j * 32 + 2 * t + 1] = (short)(y->BSums[4 * j + 2] + y->BSums[4 * j + 3]);
                    }
                    int* q = (int*)y->Qs;
                    for (int g = 0; g < 64; g++) groups[g * 16 + t] = q[g];
                }
            }
        }
    }

    /// <summary>Two Q4_K rows (the same row twice for a leftover one) and where their outputs go: token t, row k at <c>Output[t·Stride + k]</c>.</summary>
    readonly struct Q4KRowPair(BlockQ4_K* first, BlockQ4_K* second, float* output, long stride, float bias0, float bias1, int rows)
    {
        public BlockQ4_K* First => first;
        public BlockQ4_K* Second => second;
        public float* Output => output;
        public long Stride => stride;
        public float Bias0 => bias0;
        public float Bias1 => bias1;
        public int Rows => rows;
    }

    /// <summary>
    /// <see cref="GemmQ4KRow16Lanes{TFetch}"/> for two rows × 32 tokens, two groups of sixteen in 512-bit lanes
    /// (AVX-512BW). .NET has no 512-bit vpdpbusd, and the 256-bit one shares the multiplier ports with the conversions
    /// and multiply-adds, which then set the pace. Here the products go through vpmaddubsw 64 bytes at a time and a
    /// sub-block's are summed in 16 bits (a nibble is at most 15 and a Q8_K quant at most 128 in size: each half sums
    /// sixteen products, within ±30,720, no saturation); one vpmaddwd against the sub-block scale then gives each
    /// token's sum × scale in 32 bits, and one against the (min, min) pair the mins term. Two rows share each activation
    /// load: with one, the tile reads a byte of activations from cache per multiply-add, which is what held it back.
    /// The integers are the ones the 256-bit kernel forms, so each lane runs the same chain.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GemmQ4KRows2x32<TFetch>(Q4KRowPair rows, in Q4KWideGroup first, in Q4KWideGroup second) where TFetch : struct, IRowFetch
    {
        Vector512<float> acc00 = default, min00 = default, acc01 = default, min01 = default;
        Vector512<float> acc10 = default, min10 = default, acc11 = default, min11 = default;
        BlockQ4_K* x0 = rows.First, x1 = rows.Second;
        for (int i = 0; i < first.Blocks; i++, x0++, x1++)
        {
            PrefetchAhead<TFetch, BlockQ4_K>(x0, first.Blocks);
            PrefetchAhead<TFetch, BlockQ4_K>(x1, first.Blocks);
            UnpackScalesMins(x0->Scales, out ulong sc0, out ulong mn0);
            UnpackScalesMins(x1->Scales, out ulong sc1, out ulong mn1);
            var sums0 = first.SubBlockSums(i);
            var sums1 = second.SubBlockSums(i);
            var groups0 = first.Groups(i);
            var groups1 = second.Groups(i);
            var xd0 = Vector512.Create(HalfTable.ToF32(x0->D));
            var xm0 = Vector512.Create(HalfTable.ToF32(x0->DMin));
            var xd1 = Vector512.Create(HalfTable.ToF32(x1->D));
            var xm1 = Vector512.Create(HalfTable.ToF32(x1->DMin));
            var y0 = *first.Scales(i);
            var y1 = *second.Scales(i);
            Vector512<float> ds00 = xd0 * y0, dm00 = xm0 * y0, ds01 = xd0 * y1, dm01 = xm0 * y1;
            Vector512<float> ds10 = xd1 * y0, dm10 = xm1 * y0, ds11 = xd1 * y1, dm11 = xm1 * y1;
            for (int j = 0; j < 4; j++)
            {
                Vector512<short> lo00 = default, hi00 = default, lo01 = default, hi01 = default, lo10 = default, hi10 = default, lo11 = default, hi11 = default;
                byte* qa = x0->Qs + 32 * j;
                byte* qb = x1->Qs + 32 * j;
                for (int c = 0; c < 8; c++)
                    WideNibbles(qa + 4 * c, qb + 4 * c, groups0 + 16 * j + c, groups1 + 16 * j + c,
                        ref lo00, ref hi00, ref lo01, ref hi01, ref lo10, ref hi10, ref lo11, ref hi11);
                var scLo0 = Vector512.Create((short)ScaleByte(sc0, 2 * j));
                var scHi0 = Vector512.Create((short)ScaleByte(sc0, 2 * j + 1));
                var scLo1 = Vector512.Create((short)ScaleByte(sc1, 2 * j));
                var scHi1 = Vector512.Create((short)ScaleByte(sc1, 2 * j + 1));
                var mins0 = Vector512.Create((int)(ScaleByte(mn0, 2 * j) | (uint)ScaleByte(mn0, 2 * j + 1) << 16)).AsInt16();
                var mins1 = Vector512.Create((int)(ScaleByte(mn1, 2 * j) | (uint)ScaleByte(mn1, 2 * j + 1) << 16)).AsInt16();
                var pairs00 = Avx512BW.MultiplyAddAdjacent(lo00, scLo0) + Avx512BW.MultiplyAddAdjacent(hi00, scHi0);
                var pairs01 = Avx512BW.MultiplyAddAdjacent(lo01, scLo0) + Avx512BW.MultiplyAddAdjacent(hi01, scHi0);
                var pairs10 = Avx512BW.MultiplyAddAdjacent(lo10, scLo1) + Avx512BW.MultiplyAddAdjacent(hi10, scHi1);
                var pairs11 = Avx512BW.MultiplyAddAdjacent(lo11, scLo1) + Avx512BW.MultiplyAddAdjacent(hi11, scHi1);
                acc00 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(pairs00), ds00, acc00);
                min00 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(sums0[j], mins0)), dm00, min00);
                acc01 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(pairs01), ds01, acc01);
                min01 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(sums1[j], mins0)), dm01, min01);
                acc10 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(pairs10), ds10, acc10);
                min10 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(sums0[j], mins1)), dm10, min10);
                acc11 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(pairs11), ds11, acc11);
                min11 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(sums1[j], mins1)), dm11, min11);
            }
        }
        float* o = rows.Output;
        long os = rows.Stride;
        TokenLanes.Store16(o, os, acc00 - min00 + Vector512.Create(rows.Bias0));
        TokenLanes.Store16(o + 16 * os, os, acc01 - min01 + Vector512.Create(rows.Bias0));
        if (rows.Rows < 2) return;
        TokenLanes.Store16(o + 1, os, acc10 - min10 + Vector512.Create(rows.Bias1));
        TokenLanes.Store16(o + 1 + 16 * os, os, acc11 - min11 + Vector512.Create(rows.Bias1));
    }

    /// <summary>
    /// Weight bytes 4c..4c+3 of a sub-block pair of two rows against two sixteen-token groups: low nibbles with
    /// groups[0], high nibbles with groups[8], products summed in 16 bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void WideNibbles(byte* qa, byte* qb, Vector512<sbyte>* first, Vector512<sbyte>* second,
        ref Vector512<short> lo00, ref Vector512<short> hi00, ref Vector512<short> lo01, ref Vector512<short> hi01,
        ref Vector512<short> lo10, ref Vector512<short> hi10, ref Vector512<short> lo11, ref Vector512<short> hi11)
    {
        GgmlQ0Dot.BroadcastNibbles(qa, out var la, out var ha);
        GgmlQ0Dot.BroadcastNibbles(qb, out var lb, out var hb);
        var y = first[0];
        lo00 += Avx512BW.MultiplyAddAdjacent(la, y);
        lo10 += Avx512BW.MultiplyAddAdjacent(lb, y);
        y = second[0];
        lo01 += Avx512BW.MultiplyAddAdjacent(la, y);
        lo11 += Avx512BW.MultiplyAddAdjacent(lb, y);
        y = first[8];
        hi00 += Avx512BW.MultiplyAddAdjacent(ha, y);
        hi10 += Avx512BW.MultiplyAddAdjacent(hb, y);
        y = second[8];
        hi01 += Avx512BW.MultiplyAddAdjacent(ha, y);
        hi11 += Avx512BW.MultiplyAddAdjacent(hb, y);
    }
}
