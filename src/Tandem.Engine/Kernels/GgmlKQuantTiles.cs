using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Multi-token tiles (prefill, batched decode) for Q5_K. llama.cpp computes every batch size of Q5_K through
/// ggml_vec_dot_q5_K_q8_K (<see cref="VecDotQ5K"/>), so each output here keeps exactly that order: per super-block,
/// eight int lanes (lane l = the scaled sums of the elements 4l..4l+3 of every 32-element run, exact in any
/// grouping) fed into eight float lanes with fma(d_a·d_w, lane, acc); the mins in a scalar chain per token,
/// summs = fma(−d_a·dmin_w, Σ min·bsum, summs); the result hsum_float_8(acc) + summs. The tiles only decode each
/// weight super-block once for several tokens.
/// </summary>
public static unsafe partial class GgmlKQuant2Dot
{
    /// <summary>Whether <see cref="MatMulQ5K"/> can run here (AVX2 + FMA; AVX-512BW adds the eight-token tile).</summary>
    public static bool Q5KTilesAvailable => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Q5_K over rows × tokens: eight (AVX-512) or four tokens per weight decode, the remainder one dot at a time.</summary>
    public static void MatMulQ5K(in MatMulOperands op, int rowStart, int rowEnd) => GgmlKQuantDot.MatMulTiled<Q5KTiles>(op, rowStart, rowEnd);

    readonly struct Q5KTiles : GgmlKQuantDot.IKQuantTiles
    {
        public static void Row8<TFetch>(byte* row, in GgmlKQuantDot.Q8KPairGroup group, float* o, long os, float bias) where TFetch : struct, GgmlKQuantDot.IRowFetch
            => Q5KRow8Avx512<TFetch>((BlockQ5_K*)row, group, o, os, bias);
        public static void Row4(byte* row, int blocks, byte* a, long ys, float* o, long os, float bias) => Q5KRow4((BlockQ5_K*)row, blocks, a, ys, o, os, bias);
        public static float Dot(byte* row, byte* a, int n) => VecDotQ5K(row, a, n);
        public static void DotTwo(byte* first, long rowBytes, byte* a, int n, float* results)
        {
            results[0] = VecDotQ5K(first, a, n);
            results[1] = VecDotQ5K(first + rowBytes, a, n);
        }
    }

    /// <summary>The 5-bit quants of 32-element runs 2j (low nibbles) and 2j+1 (high nibbles) of a super-block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Q5KRuns(byte* qs, Vector256<byte> hbits, int j, out Vector256<byte> q0, out Vector256<byte> q1)
    {
        var m4 = Vector256.Create((byte)0xF);
        var q5bits = Vector256.Load(qs + 32 * j);
        q0 = (q5bits & m4) + Vector256.ShiftLeft(BitOfBytes(hbits, 2 * j).AsUInt16(), 4).AsByte();
        q1 = (Vector256.ShiftRightLogical(q5bits.AsUInt16(), 4).AsByte() & m4) + Vector256.ShiftLeft(BitOfBytes(hbits, 2 * j + 1).AsUInt16(), 4).AsByte();
    }

    /// <summary>Sixteen shorts m0 m0 m1 m1 … m7 m7 from the eight mins, to pair with the sixteen bsums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<short> MinsTwice(ulong mins)
    {
        var packed = Vector128.CreateScalarUnsafe(mins).AsByte();
        return Avx2.ConvertToVector256Int16(Sse2.UnpackLow(packed, packed));
    }

    /// <summary>
    /// <see cref="VecDotQ5K"/> for one weight row and eight tokens, two tokens per 512-bit register, over a laid-out
    /// group: the same integer lanes and float lane chains per token; the eight tokens' mins chains in one vector
    /// (lane = token).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q5KRow8Avx512<TFetch>(BlockQ5_K* x, in GgmlKQuantDot.Q8KPairGroup g, float* o, long os, float bias) where TFetch : struct, GgmlKQuantDot.IRowFetch
    {
        float* summs = stackalloc float[8];
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        var mins = Vector256<float>.Zero;
        for (int i = 0; i < g.Blocks; i++, x++)
        {
            GgmlKQuantDot.PrefetchAhead<TFetch, BlockQ5_K>(x, g.Blocks);
            GgmlKQuantDot.UnpackScalesMins(x->Scales, out ulong sc, out ulong mn);
            var minPattern = MinsTwice(mn);
            var min2 = GgmlQ0Dot.BothHalves(minPattern);
            var bs = g.Bsums(i);
            var p0 = Avx512BW.MultiplyAddAdjacent(bs[0], min2);
            var p1 = Avx512BW.MultiplyAddAdjacent(bs[1], min2);
            var p2 = Avx512BW.MultiplyAddAdjacent(bs[2], min2);
            var p3 = Avx512BW.MultiplyAddAdjacent(bs[3], min2);
            var imin = GgmlKQuantDot.Reduce8(p0.GetLower(), p0.GetUpper(), p1.GetLower(), p1.GetUpper(),
                p2.GetLower(), p2.GetUpper(), p3.GetLower(), p3.GetUpper());
            var dmin = -g.TokenScales(i) * Vector256.Create(Fp16(x->DMin));
            mins = Fma.MultiplyAdd(dmin, Avx.ConvertToVector256Single(imin), mins);

            var hbits = Vector256.Load(x->Qh);
            Vector512<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int j = 0; j < 4; j++)
            {
                Q5KRuns(x->Qs, hbits, j, out var lo, out var hi);
                var q0 = GgmlQ0Dot.BothHalves(lo);
                var q1 = GgmlQ0Dot.BothHalves(hi);
                var c0 = Vector512.Create((short)GgmlKQuantDot.ScaleByte(sc, 2 * j));
                var c1 = Vector512.Create((short)GgmlKQuantDot.ScaleByte(sc, 2 * j + 1));
                var y0 = g.Chunk(i, 2 * j);
                var y1 = g.Chunk(i, 2 * j + 1);
                s0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q0, y0[0]), c0) + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q1, y1[0]), c1);
                s1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q0, y0[1]), c0) + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q1, y1[1]), c1);
                s2 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q0, y0[2]), c0) + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q1, y1[2]), c1);
                s3 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q0, y0[3]), c0) + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q1, y1[3]), c1);
            }
            var xd = Vector512.Create(Fp16(x->D));
            var d = g.Scales(i);
            acc0 = Vector512.FusedMultiplyAdd(d[0] * xd, Vector512.ConvertToSingle(s0), acc0);
            acc1 = Vector512.FusedMultiplyAdd(d[1] * xd, Vector512.ConvertToSingle(s1), acc1);
            acc2 = Vector512.FusedMultiplyAdd(d[2] * xd, Vector512.ConvertToSingle(s2), acc2);
            acc3 = Vector512.FusedMultiplyAdd(d[3] * xd, Vector512.ConvertToSingle(s3), acc3);
        }
        mins.Store(summs);
        GgmlQ0Dot.StorePairsPlus(o, os, bias, summs, acc0, acc1, acc2, acc3);
    }

    /// <summary><see cref="VecDotQ5K"/> for one weight row and four tokens (AVX2): each run's quants decoded once for the four.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q5KRow4(BlockQ5_K* x, int nb, byte* a, long ys, float* o, long os, float bias)
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        float m0 = 0, m1 = 0, m2 = 0, m3 = 0;
        for (int i = 0; i < nb; i++, x++)
        {
            var y0 = (BlockQ8_K*)(a + i * (long)sizeof(BlockQ8_K));
            var y1 = (BlockQ8_K*)((byte*)y0 + ys);
            var y2 = (BlockQ8_K*)((byte*)y1 + ys);
            var y3 = (BlockQ8_K*)((byte*)y2 + ys);
            GgmlKQuantDot.UnpackScalesMins(x->Scales, out ulong sc, out ulong mn);
            var minPattern = MinsTwice(mn);
            float xdmin = Fp16(x->DMin);
            m0 = MathF.FusedMultiplyAdd(-y0->D * xdmin, HsumInt(Avx2.MultiplyAddAdjacent(Vector256.Load(y0->BSums), minPattern)), m0);
            m1 = MathF.FusedMultiplyAdd(-y1->D * xdmin, HsumInt(Avx2.MultiplyAddAdjacent(Vector256.Load(y1->BSums), minPattern)), m1);
            m2 = MathF.FusedMultiplyAdd(-y2->D * xdmin, HsumInt(Avx2.MultiplyAddAdjacent(Vector256.Load(y2->BSums), minPattern)), m2);
            m3 = MathF.FusedMultiplyAdd(-y3->D * xdmin, HsumInt(Avx2.MultiplyAddAdjacent(Vector256.Load(y3->BSums), minPattern)), m3);

            var hbits = Vector256.Load(x->Qh);
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int j = 0; j < 4; j++)
            {
                Q5KRuns(x->Qs, hbits, j, out var q0, out var q1);
                var c0 = Vector256.Create((short)GgmlKQuantDot.ScaleByte(sc, 2 * j));
                var c1 = Vector256.Create((short)GgmlKQuantDot.ScaleByte(sc, 2 * j + 1));
                s0 += Q5KRunPair(y0->Qs + 64 * j, q0, q1, c0, c1);
                s1 += Q5KRunPair(y1->Qs + 64 * j, q0, q1, c0, c1);
                s2 += Q5KRunPair(y2->Qs + 64 * j, q0, q1, c0, c1);
                s3 += Q5KRunPair(y3->Qs + 64 * j, q0, q1, c0, c1);
            }
            float xd = Fp16(x->D);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(y0->D * xd), Vector256.ConvertToSingle(s0), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(y1->D * xd), Vector256.ConvertToSingle(s1), acc1);
            acc2 = Vector256.FusedMultiplyAdd(Vector256.Create(y2->D * xd), Vector256.ConvertToSingle(s2), acc2);
            acc3 = Vector256.FusedMultiplyAdd(Vector256.Create(y3->D * xd), Vector256.ConvertToSingle(s3), acc3);
        }
        o[0] = (Hsum8(acc0) + m0) + bias;
        o[os] = (Hsum8(acc1) + m1) + bias;
        o[2 * os] = (Hsum8(acc2) + m2) + bias;
        o[3 * os] = (Hsum8(acc3) + m3) + bias;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Q5KRunPair(sbyte* q8, Vector256<byte> q0, Vector256<byte> q1, Vector256<short> c0, Vector256<short> c1) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q0, Vector256.Load(q8)), c0)
        + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q1, Vector256.Load(q8 + 32)), c1);
}
