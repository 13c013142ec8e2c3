using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Q4_K and Q6_K dot products against Q8_K activations that round exactly as llama.cpp's x86 build
/// (AVX2/AVX-512 flags) does. The integer sums are the same in every order; what this reproduces is how they are
/// grouped before conversion to float and how the float products are accumulated:
/// <list type="bullet">
/// <item>vec_dot (single token, and every token of a non-repacked matrix): eight float lanes, each fed once per
/// 256-element super-block with d × (integer sum of its 4-element groups), fused multiply-add; Q4_K keeps the
/// mins term in a separate four-lane accumulator. Both are reduced like hsum_float_8.</item>
/// <item>Q4_K matrices with a row count divisible by 8 are repacked by llama.cpp into 8-row interleaved blocks.
/// Then a group of four tokens goes through the repacked GEMM, which adds d × (integer sum of 64 elements) to a
/// single float per output, and a leftover token goes through the GEMV, which adds once per super-block;
/// both keep the mins in a second float and subtract at the end.</item>
/// </list>
/// Each path has a plain scalar reference (<c>…Scalar</c>) beside its AVX2 form; both give identical bits.
/// </summary>
public static unsafe partial class GgmlKQuantDot
{
    const uint KMask1 = 0x3f3f3f3f, KMask2 = 0x0f0f0f0f, KMask3 = 0x03030303;

    /// <summary>Unpacks the 6-bit scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K block, as ggml's utmp trick does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackScalesMins(byte* packed, uint* utmp)
    {
        uint u0 = Unsafe.ReadUnaligned<uint>(packed), u1 = Unsafe.ReadUnaligned<uint>(packed + 4), u2 = Unsafe.ReadUnaligned<uint>(packed + 8);
        utmp[3] = ((u2 >> 4) & KMask2) | (((u1 >> 6) & KMask3) << 4);
        utmp[2] = u1 & KMask1;
        utmp[1] = (u2 & KMask2) | (((u0 >> 6) & KMask3) << 4);
        utmp[0] = u0 & KMask1;
    }

    /// <summary>
    /// <see cref="UnpackScalesMins"/> into registers: the eight scales (bytes of <paramref name="scales"/>) and the eight
    /// mins. Vector code widens these with a register move; reading the bytes back from a stack buffer that four 32-bit
    /// stores just wrote cannot be store-forwarded and stalls the load until the stores retire.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackScalesMins(byte* packed, out ulong scales, out ulong mins)
    {
        uint u0 = Unsafe.ReadUnaligned<uint>(packed), u1 = Unsafe.ReadUnaligned<uint>(packed + 4), u2 = Unsafe.ReadUnaligned<uint>(packed + 8);
        scales = (u0 & KMask1) | (ulong)((u2 & KMask2) | (((u0 >> 6) & KMask3) << 4)) << 32;
        mins = (u1 & KMask1) | (ulong)(((u2 >> 4) & KMask2) | (((u1 >> 6) & KMask3) << 4)) << 32;
    }

    /// <summary>Byte <paramref name="k"/> of eight packed scales or mins (<see cref="UnpackScalesMins(byte*, out ulong, out ulong)"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static byte ScaleByte(ulong packed, int k) => (byte)(packed >> 8 * k);

    /// <summary>Horizontal sum in the order of ggml's hsum_float_8: 128-bit halves, then (0+2)+(1+3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Hsum8(Vector256<float> v)
    {
        var r = v.GetUpper() + v.GetLower();
        return (r[0] + r[2]) + (r[1] + r[3]);
    }

    static float Hsum8(float* v)
    {
        float r0 = v[4] + v[0], r1 = v[5] + v[1], r2 = v[6] + v[2], r3 = v[7] + v[3];
        return (r0 + r2) + (r1 + r3);
    }

    static bool UseAvx2 => Avx2.IsSupported;

    // The eight-token row kernels spend ~0.4 µs on a row of a feed-forward matrix, slowly enough that the hardware
    // prefetchers, which restart at every 4 KiB page (about one row), fall behind DRAM: Q6_K ran at 37 GMAC/s from
    // DRAM against 94 from cache. So each super-block step fetches the same super-block RowsAhead rows on (a K-quant row
    // is whole super-blocks, Blocks × block size bytes; a prefetch past the matrix cannot fault). From L3 the same
    // prefetches cost ~12 % (they hold L1 miss buffers the activation group's loads need), so they run only where the
    // rows come from DRAM: the first eight tokens of a product, and every group of a matrix share too big to stay in L3.
    internal const int RowsAhead = 2;
    const long CachedShareBytes = 4 << 20;

    /// <summary>Whether an eight-token row kernel prefetches the rows ahead (a compile-time choice per token group).</summary>
    internal interface IRowFetch { static abstract bool Ahead { get; } }
    internal readonly struct FetchAhead : IRowFetch { public static bool Ahead => true; }
    internal readonly struct NoFetch : IRowFetch { public static bool Ahead => false; }

    /// <summary>Whether the rows of the token group starting at <paramref name="firstToken"/> are likely in DRAM.</summary>
    internal static bool RowsFromMemory(int firstToken, int rows, long rowBytes) => firstToken == 0 || rows * rowBytes > CachedShareBytes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PrefetchAhead<TFetch, TBlock>(TBlock* block, int blocksPerRow) where TFetch : struct, IRowFetch where TBlock : unmanaged
    {
        if (!TFetch.Ahead || !Sse.IsSupported) return;
        byte* ahead = (byte*)(block + RowsAhead * blocksPerRow);
        for (int line = 0; line < sizeof(TBlock); line += 64) Sse.Prefetch0(ahead + line);
    }

    // ---------------------------------------------------------------- Q4_K, vec_dot

    /// <summary>ggml_vec_dot_q4_K_q8_K (x86 AVX2 branch).</summary>
    public static float VecDotQ4K(byte* w, byte* a, int n) =>
        UseAvx2 ? VecDotQ4KAvx2(w, a, n) : Vector128Dot.Accelerated ? Vector128Dot.VecDotQ4K(w, a, n) : VecDotQ4KScalar(w, a, n);

    /// <summary>Scalar reference of <see cref="VecDotQ4K"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float VecDotQ4KScalar(byte* w, byte* a, int n)
    {
        var x = (BlockQ4_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK.K;
        uint* utmp = stackalloc uint[4];
        float* acc = stackalloc float[8];
        float* accM = stackalloc float[4];
        int* sumi = stackalloc int[8];
        for (int l = 0; l < 8; l++) acc[l] = 0;
        for (int l = 0; l < 4; l++) accM[l] = 0;
        for (int i = 0; i < nb; i++)
        {
            float d = y[i].D * HalfTable.ToF32(x[i].D);
            float dmin = -y[i].D * HalfTable.ToF32(x[i].DMin);
            UnpackScalesMins(x[i].Scales, utmp);
            byte* sc = (byte*)utmp, mn = sc + 8;
            short* bs = y[i].BSums;
            for (int k = 0; k < 4; k++)
            {
                int prod = mn[2 * k] * (bs[4 * k] + bs[4 * k + 1]) + mn[2 * k + 1] * (bs[4 * k + 2] + bs[4 * k + 3]);
                accM[k] = MathF.FusedMultiplyAdd(dmin, prod, accM[k]);
            }
            byte* q4 = x[i].Qs;
            sbyte* q8 = y[i].Qs;
            for (int l = 0; l < 8; l++) sumi[l] = 0;
            for (int j = 0; j < 4; j++, q4 += 32, q8 += 64)
            {
                for (int l = 0; l < 8; l++)
                {
                    int lo = 0, hi = 0;
                    for (int e = 4 * l; e < 4 * l + 4; e++)
                    {
                        lo += (q4[e] & 0xF) * q8[e];
                        hi += (q4[e] >> 4) * q8[e + 32];
                    }
                    sumi[l] += sc[2 * j] * lo + sc[2 * j + 1] * hi;
                }
            }
            for (int l = 0; l < 8; l++) acc[l] = MathF.FusedMultiplyAdd(d, sumi[l], acc[l]);
        }
        float m = (accM[0] + accM[2]) + (accM[1] + accM[3]);
        return Hsum8(acc) + m;
    }

    /// <summary>The eight 32-bit lanes of one Q4_K super-block's scaled integer sum, per pair of sub-blocks j (AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Q4KPairLanes(byte* q4, sbyte* q8, int scLo, int scHi)
    {
        var m4 = Vector256.Create((byte)0xF);
        var bits = Avx.LoadVector256(q4);
        var lo = bits & m4;
        var hi = Avx2.ShiftRightLogical(bits.AsUInt16(), 4).AsByte() & m4;
        var pl = Avx2.MultiplyAddAdjacent(Vector256.Create((short)scLo), Avx2.MultiplyAddAdjacent(lo, Avx.LoadVector256(q8)));
        var ph = Avx2.MultiplyAddAdjacent(Vector256.Create((short)scHi), Avx2.MultiplyAddAdjacent(hi, Avx.LoadVector256(q8 + 32)));
        return pl + ph;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float VecDotQ4KAvx2(byte* w, byte* a, int n)
    {
        var x = (BlockQ4_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK.K;
        var acc = Vector256<float>.Zero;
        var accM = Vector128<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            float d = y[i].D * HalfTable.ToF32(x[i].D);
            float dmin = -y[i].D * HalfTable.ToF32(x[i].DMin);
            UnpackScalesMins(x[i].Scales, out ulong sc, out ulong mn);
            var bsums = Avx.LoadVector256(y[i].BSums);
            var q8s = Ssse3.HorizontalAdd(bsums.GetLower(), bsums.GetUpper());
            var mins = Sse41.ConvertToVector128Int16(Vector128.CreateScalarUnsafe(mn).AsByte());
            var prod = Sse2.MultiplyAddAdjacent(mins, q8s);
            accM = Vector128.FusedMultiplyAdd(Vector128.Create(dmin), Vector128.ConvertToSingle(prod), accM);

            byte* q4 = x[i].Qs;
            sbyte* q8 = y[i].Qs;
            var sumi = Vector256<int>.Zero;
            for (int j = 0; j < 4; j++)
                sumi += Q4KPairLanes(q4 + 32 * j, q8 + 64 * j, ScaleByte(sc, 2 * j), ScaleByte(sc, 2 * j + 1));
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(d), Vector256.ConvertToSingle(sumi), acc);
        }
        float m = (accM[0] + accM[2]) + (accM[1] + accM[3]);
        return Hsum8(acc) + m;
    }

    // ---------------------------------------------------------------- Q4_K, repacked (q4_K_8x8 with Q8_K)

    /// <summary>ggml_gemv_q4_K_8x8_q8_K for one output: one float per super-block for the scaled sums, one for the mins.</summary>
    public static float RepackGemvQ4K(byte* w, byte* a, int n) => RepackQ4K(w, a, n, perPair: false, BestPairForm);

    /// <summary>ggml_gemm_q4_K_8x8_q8_K for one output: the float accumulators are fed once per 64 elements.</summary>
    public static float RepackGemmQ4K(byte* w, byte* a, int n) => RepackQ4K(w, a, n, perPair: true, BestPairForm);

    /// <summary>How a 64-element pair's integer sum is computed: plain loops, AVX2, or portable 128-bit vectors.</summary>
    public enum PairForm { Scalar, Avx2, Vector128 }

    static PairForm BestPairForm => UseAvx2 ? PairForm.Avx2 : Vector128Dot.Accelerated ? PairForm.Vector128 : PairForm.Scalar;

    /// <summary>The repacked GEMV (<paramref name="perPair"/> false) or GEMM order with the pair sums computed in the given form.</summary>
    public static float RepackQ4KWith(byte* w, byte* a, int n, bool perPair, PairForm form) => RepackQ4K(w, a, n, perPair, form);

    /// <summary>Scalar reference of <see cref="RepackGemvQ4K"/>.</summary>
    public static float RepackGemvQ4KScalar(byte* w, byte* a, int n) => RepackQ4K(w, a, n, perPair: false, PairForm.Scalar);

    /// <summary>Scalar reference of <see cref="RepackGemmQ4K"/>.</summary>
    public static float RepackGemmQ4KScalar(byte* w, byte* a, int n) => RepackQ4K(w, a, n, perPair: true, PairForm.Scalar);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float RepackQ4K(byte* w, byte* a, int n, bool perPair, PairForm form)
    {
        var x = (BlockQ4_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK.K;
        uint* utmp = stackalloc uint[4];
        float acc = 0, accMin = 0;
        for (int i = 0; i < nb; i++)
        {
            float ds = HalfTable.ToF32(x[i].D) * y[i].D;
            float dm = HalfTable.ToF32(x[i].DMin) * y[i].D;
            UnpackScalesMins(x[i].Scales, utmp);
            byte* sc = (byte*)utmp, mn = sc + 8;
            short* bs = y[i].BSums;
            byte* q4 = x[i].Qs;
            sbyte* q8 = y[i].Qs;
            int isum = 0, imin = 0;
            for (int j = 0; j < 4; j++)
            {
                int pair = form switch
                {
                    PairForm.Avx2 => Vector256.Sum(Q4KPairLanes(q4 + 32 * j, q8 + 64 * j, sc[2 * j], sc[2 * j + 1])),
                    PairForm.Vector128 => Vector128Dot.Q4KPairSum(q4 + 32 * j, q8 + 64 * j, sc[2 * j], sc[2 * j + 1]),
                    _ => Q4KPairScalar(q4 + 32 * j, q8 + 64 * j, sc[2 * j], sc[2 * j + 1]),
                };
                int pairMin = mn[2 * j] * (bs[4 * j] + bs[4 * j + 1]) + mn[2 * j + 1] * (bs[4 * j + 2] + bs[4 * j + 3]);
                if (perPair)
                {
                    acc = MathF.FusedMultiplyAdd(pair, ds, acc);
                    accMin = MathF.FusedMultiplyAdd(pairMin, dm, accMin);
                }
                else
                {
                    isum += pair;
                    imin += pairMin;
                }
            }
            if (!perPair)
            {
                acc = MathF.FusedMultiplyAdd(isum, ds, acc);
                accMin = MathF.FusedMultiplyAdd(imin, dm, accMin);
            }
        }
        return acc - accMin;
    }

    static int Q4KPairScalar(byte* q4, sbyte* q8, int scLo, int scHi)
    {
        int lo = 0, hi = 0;
        for (int e = 0; e < 32; e++)
        {
            lo += (q4[e] & 0xF) * q8[e];
            hi += (q4[e] >> 4) * q8[e + 32];
        }
        return scLo * lo + scHi * hi;
    }

    /// <summary>Eight int vectors reduced to one: lane t = the sum of all lanes of v_t (exact in any order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> Reduce8(Vector256<int> v0, Vector256<int> v1, Vector256<int> v2, Vector256<int> v3,
        Vector256<int> v4, Vector256<int> v5, Vector256<int> v6, Vector256<int> v7)
    {
        var h0 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(v0, v1), Avx2.HorizontalAdd(v2, v3));
        var h1 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(v4, v5), Avx2.HorizontalAdd(v6, v7));
        return Avx2.Permute2x128(h0, h1, 0x20) + Avx2.Permute2x128(h0, h1, 0x31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Q4KPair(sbyte* q8, Vector256<byte> lo, Vector256<byte> hi, Vector256<short> scLo, Vector256<short> scHi) =>
        Avx2.MultiplyAddAdjacent(scLo, Avx2.MultiplyAddAdjacent(lo, Avx.LoadVector256(q8)))
        + Avx2.MultiplyAddAdjacent(scHi, Avx2.MultiplyAddAdjacent(hi, Avx.LoadVector256(q8 + 32)));

    /// <summary>
    /// Eight tokens' Q8_K activations laid out with tokens in the lanes (in <see cref="KernelScratch"/>): per
    /// super-block, the tokens' scales, the sums of adjacent bsums pairs (one vector per 32-element sub-block), and for
    /// each 4-element group g a vector whose lane t holds token t's quants 4g..4g+3.
    /// </summary>
    readonly struct Q4KGroup
    {
        const long SuperBlockBytes = 32 + 8 * 32 + 64 * 32;
        readonly byte* _data;
        public readonly int Blocks;

        /// <summary>Group <paramref name="slot"/> (0 or 1) of the worker's scratch, so that two groups can be laid out side by side.</summary>
        public Q4KGroup(int superBlocks, int slot = 0)
        {
            Blocks = superBlocks;
            _data = KernelScratch.Get(2 * superBlocks * SuperBlockBytes) + slot * superBlocks * SuperBlockBytes;
        }

        public Vector256<float>* Scales(int i) => (Vector256<float>*)(_data + i * SuperBlockBytes);
        public Vector256<int>* BsumPairs(int i) => (Vector256<int>*)(_data + i * SuperBlockBytes + 32);
        public Vector256<sbyte>* Groups(int i) => (Vector256<sbyte>*)(_data + i * SuperBlockBytes + 32 + 8 * 32);

        public void LayOut(byte* a, long ys)
        {
            var ones = Vector256.Create((short)1);
            var bsums = stackalloc Vector256<int>[8];
            for (int i = 0; i < Blocks; i++)
            {
                byte* y0 = a + i * (long)sizeof(BlockQ8_K);
                float* scales = (float*)Scales(i);
                int* groups = (int*)Groups(i);
                for (int t = 0; t < 8; t++)
                {
                    var y = (BlockQ8_K*)(y0 + t * ys);
                    scales[t] = y->D;
                    bsums[t] = Avx2.MultiplyAddAdjacent(Avx.LoadVector256(y->BSums), ones);
                    int* q = (int*)y->Qs;
                    for (int g = 0; g < 64; g++) groups[g * 8 + t] = q[g];
                }
                // Transpose: pair q of token t → lane t of vector q.
                int* src = (int*)bsums;
                int* dst = (int*)BsumPairs(i);
                for (int q = 0; q < 8; q++)
                    for (int t = 0; t < 8; t++) dst[q * 8 + t] = src[t * 8 + q];
            }
        }
    }

    /// <summary>
    /// Σ over one 64-element pair's low (elements 0..31) and high (32..63) nibble halves, lane = token: each group of
    /// four weight nibbles is broadcast and dotted against the eight tokens' matching quants.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void NibbleHalfSums(byte* q4, Vector256<sbyte>* groups, out Vector256<int> lo, out Vector256<int> hi)
    {
        // Eight independent chains (integer sums: any grouping is exact), so the multiply-add latency overlaps.
        Vector256<int> lo0 = default, lo1 = default, lo2 = default, lo3 = default, hi0 = default, hi1 = default, hi2 = default, hi3 = default;
        NibbleSteps(q4, groups, ref lo0, ref lo1, ref lo2, ref lo3, ref hi0, ref hi1, ref hi2, ref hi3);
        NibbleSteps(q4 + 16, groups + 4, ref lo0, ref lo1, ref lo2, ref lo3, ref hi0, ref hi1, ref hi2, ref hi3);
        lo = (lo0 + lo1) + (lo2 + lo3);
        hi = (hi0 + hi1) + (hi2 + hi3);
    }

    /// <summary>Four groups of four nibble pairs: each group's bytes broadcast, its low and high nibbles dotted against the tokens' quants.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void NibbleSteps(byte* q4, Vector256<sbyte>* groups, ref Vector256<int> lo0, ref Vector256<int> lo1, ref Vector256<int> lo2, ref Vector256<int> lo3,
        ref Vector256<int> hi0, ref Vector256<int> hi1, ref Vector256<int> hi2, ref Vector256<int> hi3)
    {
        var m4 = Vector256.Create((byte)0xF);
        var b0 = Vector256.Create(*(int*)q4).AsByte();
        var b1 = Vector256.Create(*(int*)(q4 + 4)).AsByte();
        var b2 = Vector256.Create(*(int*)(q4 + 8)).AsByte();
        var b3 = Vector256.Create(*(int*)(q4 + 12)).AsByte();
        lo0 = GgmlQ0Dot.UnsignedDot(lo0, b0 & m4, groups[0]);
        lo1 = GgmlQ0Dot.UnsignedDot(lo1, b1 & m4, groups[1]);
        lo2 = GgmlQ0Dot.UnsignedDot(lo2, b2 & m4, groups[2]);
        lo3 = GgmlQ0Dot.UnsignedDot(lo3, b3 & m4, groups[3]);
        hi0 = GgmlQ0Dot.UnsignedDot(hi0, Vector256.ShiftRightLogical(b0.AsUInt16(), 4).AsByte() & m4, groups[8]);
        hi1 = GgmlQ0Dot.UnsignedDot(hi1, Vector256.ShiftRightLogical(b1.AsUInt16(), 4).AsByte() & m4, groups[9]);
        hi2 = GgmlQ0Dot.UnsignedDot(hi2, Vector256.ShiftRightLogical(b2.AsUInt16(), 4).AsByte() & m4, groups[10]);
        hi3 = GgmlQ0Dot.UnsignedDot(hi3, Vector256.ShiftRightLogical(b3.AsUInt16(), 4).AsByte() & m4, groups[11]);
    }

    /// <summary>
    /// Repacked Q4_K GEMM order (<see cref="RepackGemmQ4K"/>) for one weight row and eight tokens, with the tokens in
    /// the lanes (see <see cref="Q4KGroup"/>): the pair sums come out one lane per token with no horizontal reduction,
    /// and each lane's float accumulators run exactly the scalar chain.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GemmQ4KRow8Lanes<TFetch>(BlockQ4_K* x, in Q4KGroup group, float* o, long os, float bias) where TFetch : struct, IRowFetch
    {
        var acc = Vector256<float>.Zero;
        var accMin = Vector256<float>.Zero;
        for (int i = 0; i < group.Blocks; i++, x++)
        {
            PrefetchAhead<TFetch, BlockQ4_K>(x, group.Blocks);
            var yd = *group.Scales(i);
            var ds = Vector256.Create(HalfTable.ToF32(x->D)) * yd;
            var dm = Vector256.Create(HalfTable.ToF32(x->DMin)) * yd;
            UnpackScalesMins(x->Scales, out ulong sc, out ulong mn);
            var bsumPairs = group.BsumPairs(i);
            var groups = group.Groups(i);
            for (int j = 0; j < 4; j++)
            {
                NibbleHalfSums(x->Qs + 32 * j, groups + 16 * j, out var lo, out var hi);
                var pairs = lo * Vector256.Create((int)ScaleByte(sc, 2 * j)) + hi * Vector256.Create((int)ScaleByte(sc, 2 * j + 1));
                var pairMin = Vector256.Create((int)ScaleByte(mn, 2 * j)) * bsumPairs[2 * j] + Vector256.Create((int)ScaleByte(mn, 2 * j + 1)) * bsumPairs[2 * j + 1];
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(pairs), ds, acc);
                accMin = Fma.MultiplyAdd(Avx.ConvertToVector256Single(pairMin), dm, accMin);
            }
        }
        var result = acc - accMin + Vector256.Create(bias);
        TokenLanes.Store8(o, os, result);
    }

    /// <summary>
    /// <see cref="GemmQ4KRow8Lanes{TFetch}"/> for sixteen tokens, two laid-out groups of eight: each group of four weight
    /// nibbles is broadcast and masked once for the sixteen (the decode is most of the work per multiply-add at eight).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GemmQ4KRow16Lanes<TFetch>(BlockQ4_K* x, in Q4KGroup first, in Q4KGroup second, float* o, long os, float bias) where TFetch : struct, IRowFetch
    {
        Vector256<float> acc0 = default, accMin0 = default, acc1 = default, accMin1 = default;
        for (int i = 0; i < first.Blocks; i++, x++)
        {
            PrefetchAhead<TFetch, BlockQ4_K>(x, first.Blocks);
            var xd = Vector256.Create(HalfTable.ToF32(x->D));
            var xm = Vector256.Create(HalfTable.ToF32(x->DMin));
            var ds0 = xd * *first.Scales(i);
            var dm0 = xm * *first.Scales(i);
            var ds1 = xd * *second.Scales(i);
            var dm1 = xm * *second.Scales(i);
            UnpackScalesMins(x->Scales, out ulong sc, out ulong mn);
            var bsumPairs0 = first.BsumPairs(i);
            var bsumPairs1 = second.BsumPairs(i);
            var groups0 = first.Groups(i);
            var groups1 = second.Groups(i);
            for (int j = 0; j < 4; j++)
            {
                Vector256<int> lo0 = default, hi0 = default, lo1 = default, hi1 = default, lo0b = default, hi0b = default, lo1b = default, hi1b = default;
                byte* q4 = x->Qs + 32 * j;
                for (int m = 0; m < 8; m += 4)
                {
                    NibbleStep2(q4 + 4 * m, groups0 + 16 * j + m, groups1 + 16 * j + m, ref lo0, ref hi0, ref lo1, ref hi1);
                    NibbleStep2(q4 + 4 * m + 4, groups0 + 16 * j + m + 1, groups1 + 16 * j + m + 1, ref lo0b, ref hi0b, ref lo1b, ref hi1b);
                    NibbleStep2(q4 + 4 * m + 8, groups0 + 16 * j + m + 2, groups1 + 16 * j + m + 2, ref lo0, ref hi0, ref lo1, ref hi1);
                    NibbleStep2(q4 + 4 * m + 12, groups0 + 16 * j + m + 3, groups1 + 16 * j + m + 3, ref lo0b, ref hi0b, ref lo1b, ref hi1b);
                }
                var scLo = Vector256.Create((int)ScaleByte(sc, 2 * j));
                var scHi = Vector256.Create((int)ScaleByte(sc, 2 * j + 1));
                var mnLo = Vector256.Create((int)ScaleByte(mn, 2 * j));
                var mnHi = Vector256.Create((int)ScaleByte(mn, 2 * j + 1));
                var pairs0 = (lo0 + lo0b) * scLo + (hi0 + hi0b) * scHi;
                var pairs1 = (lo1 + lo1b) * scLo + (hi1 + hi1b) * scHi;
                var pairMin0 = mnLo * bsumPairs0[2 * j] + mnHi * bsumPairs0[2 * j + 1];
                var pairMin1 = mnLo * bsumPairs1[2 * j] + mnHi * bsumPairs1[2 * j + 1];
                acc0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(pairs0), ds0, acc0);
                accMin0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(pairMin0), dm0, accMin0);
                acc1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(pairs1), ds1, acc1);
                accMin1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(pairMin1), dm1, accMin1);
            }
        }
        var result0 = acc0 - accMin0 + Vector256.Create(bias);
        var result1 = acc1 - accMin1 + Vector256.Create(bias);
        TokenLanes.Store8(o, os, result0);
        TokenLanes.Store8(o + 8 * os, os, result1);
    }

    /// <summary>One group of four weight nibble pairs against two eight-token groups' quants: low nibbles (groups[0]) and high (groups[8]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void NibbleStep2(byte* q4, Vector256<sbyte>* first, Vector256<sbyte>* second,
        ref Vector256<int> lo0, ref Vector256<int> hi0, ref Vector256<int> lo1, ref Vector256<int> hi1)
    {
        var m4 = Vector256.Create((byte)0xF);
        var b = Vector256.Create(*(int*)q4).AsByte();
        var lo = b & m4;
        var hi = Vector256.ShiftRightLogical(b.AsUInt16(), 4).AsByte() & m4;
        lo0 = GgmlQ0Dot.UnsignedDot(lo0, lo, first[0]);
        hi0 = GgmlQ0Dot.UnsignedDot(hi0, hi, first[8]);
        lo1 = GgmlQ0Dot.UnsignedDot(lo1, lo, second[0]);
        hi1 = GgmlQ0Dot.UnsignedDot(hi1, hi, second[8]);
    }

    /// <summary>
    /// Repacked Q4_K over rows × tokens as llama.cpp computes it: tokens in whole groups of four through the GEMM
    /// (eight at a time here, the last group of four per dot), the rest through the GEMV.
    /// </summary>
    public static void MatMulRepackedQ4K(MatVecKernel kernel, in MatMulOperands op, int rowStart, int rowEnd)
    {
        int tokens = op.Tokens, gemm = tokens - tokens % 4, tiled = UseAvx2 ? gemm - gemm % 8 : 0, nb = op.N / QK.K;
        long ys = op.ActivationRowBytes, os = op.OutputStride;
        if (tiled > 0)
        {
            // Whole groups of 32 tokens first (AVX-512), then eights and sixteens; each kind takes the worker's scratch
            // only after the previous kind is done with it.
            int wide = Avx512BW.IsSupported ? tiled / 32 * 32 : 0;
            byte* wideData = wide > 0 ? KernelScratch.Get(2 * Q4KWideGroup.Bytes(nb)) : null;
            var wideFirst = new Q4KWideGroup(wideData, nb);
            var wideSecond = new Q4KWideGroup(wideData + Q4KWideGroup.Bytes(nb), nb);
            for (int t = 0; t < wide; t += 32)
            {
                wideFirst.LayOut(op.Activations + t * ys, ys);
                wideSecond.LayOut(op.Activations + (t + 16) * ys, ys);
                bool fetch = RowsFromMemory(t, rowEnd - rowStart, op.RowBytes);
                for (int r = rowStart; r < rowEnd; r += 2)
                {
                    int next = Math.Min(r + 1, rowEnd - 1);
                    var rows = new Q4KRowPair((BlockQ4_K*)(op.Weights + r * op.RowBytes), (BlockQ4_K*)(op.Weights + next * op.RowBytes),
                        op.Output + t * os + r, os, op.Bias is null ? 0f : op.Bias[r], op.Bias is null ? 0f : op.Bias[next], next - r + 1);
                    if (fetch) GemmQ4KRows2x32<FetchAhead>(rows, wideFirst, wideSecond);
                    else GemmQ4KRows2x32<NoFetch>(rows, wideFirst, wideSecond);
                }
            }
            var group = new Q4KGroup(nb);
            var second = new Q4KGroup(nb, slot: 1);
            for (int t = wide; t < tiled; t += 8)
            {
                bool sixteen = t + 16 <= tiled;
                group.LayOut(op.Activations + t * ys, ys);
                if (sixteen) second.LayOut(op.Activations + (t + 8) * ys, ys);
                bool fetch = RowsFromMemory(t, rowEnd - rowStart, op.RowBytes);
                for (int r = rowStart; r < rowEnd; r++)
                {
                    var row = (BlockQ4_K*)(op.Weights + r * op.RowBytes);
                    float* o = op.Output + t * os + r;
                    float bias = op.Bias is null ? 0f : op.Bias[r];
                    if (sixteen && fetch) GemmQ4KRow16Lanes<FetchAhead>(row, group, second, o, os, bias);
                    else if (sixteen) GemmQ4KRow16Lanes<NoFetch>(row, group, second, o, os, bias);
                    else if (fetch) GemmQ4KRow8Lanes<FetchAhead>(row, group, o, os, bias);
                    else GemmQ4KRow8Lanes<NoFetch>(row, group, o, os, bias);
                }
                if (sixteen) t += 8;
            }
        }
        for (int r = rowStart; r < rowEnd; r++)
        {
            byte* row = op.Weights + r * op.RowBytes;
            float bias = op.Bias is null ? 0f : op.Bias[r];
            for (int t = tiled; t < gemm; t++)
                op.Output[t * os + r] = kernel.DotInMatMul(row, op.Activations + t * ys, op.N, t, tokens) + bias;
        }
        for (int t = gemm; t < tokens; t++)
            GemvQ4KRows8(kernel, op, t, rowStart, rowEnd);
    }

    /// <summary>
    /// Repacked Q4_K GEMV order (<see cref="RepackGemvQ4K"/>) for one token, eight rows at a time: each row's integer
    /// sums for a super-block stay in vector lanes (the GEMV converts once per super-block), then the eight rows are
    /// reduced into one vector (lane = row) whose lanes run the scalar float chains. The integer sums are exact in any
    /// grouping, so the 512-bit and AVX2 forms of a row's sum give the same bits.
    /// </summary>
    static void GemvQ4KRows8(MatVecKernel kernel, in MatMulOperands op, int t, int rowStart, int rowEnd)
    {
        if (Avx512BW.IsSupported) GemvQ4KRows8<Q4KRowSum512>(kernel, op, t, rowStart, rowEnd);
        else GemvQ4KRows8<Q4KRowSumAvx2>(kernel, op, t, rowStart, rowEnd);
    }

    /// <summary><see cref="GemvQ4KRows8(MatVecKernel, in MatMulOperands, int, int, int)"/> with the AVX2 row sums, for tests on AVX-512 machines.</summary>
    internal static void GemvQ4KRows8Avx2(MatVecKernel kernel, in MatMulOperands op, int t, int rowStart, int rowEnd) =>
        GemvQ4KRows8<Q4KRowSumAvx2>(kernel, op, t, rowStart, rowEnd);

    /// <summary>How one row's integer sum over a super-block (Σ scale × nibble × quant) is formed, in eight int lanes.</summary>
    interface IQ4KRowSum
    {
        /// <summary>The token's quants in the order <see cref="Sum"/> reads them; returns the first super-block's and the stride.</summary>
        static abstract byte* LayOut(BlockQ8_K* y, int blocks, out long stride);
        static abstract Vector256<int> Sum(byte* qs, byte* quants, ulong scales);
    }

    /// <summary>Pairs j of the super-block one at a time in 256-bit registers (low nibbles against quants 64j.., high against 64j + 32..).</summary>
    readonly struct Q4KRowSumAvx2 : IQ4KRowSum
    {
        public static byte* LayOut(BlockQ8_K* y, int blocks, out long stride)
        {
            stride = sizeof(BlockQ8_K);
            return (byte*)y->Qs;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Sum(byte* qs, byte* quants, ulong scales)
        {
            var m4 = Vector256.Create((byte)0xF);
            var lanes = Vector256<int>.Zero;
            for (int j = 0; j < 4; j++)
            {
                var bits = Avx.LoadVector256(qs + 32 * j);
                lanes += Q4KPair((sbyte*)quants + 64 * j, bits & m4, Avx2.ShiftRightLogical(bits.AsUInt16(), 4).AsByte() & m4,
                    Vector256.Create((short)ScaleByte(scales, 2 * j)), Vector256.Create((short)ScaleByte(scales, 2 * j + 1)));
            }
            return lanes;
        }
    }

    /// <summary>
    /// Two pairs per 512-bit register: the 64 bytes of pairs 0–1 (then 2–3) loaded whole, their low nibbles against the
    /// quants of sub-blocks 0 | 2 (4 | 6) and their high nibbles against 1 | 3 (5 | 7), which the token's quants are
    /// laid out for once per product; each half's scale is one word permute of the row's eight scales.
    /// </summary>
    readonly struct Q4KRowSum512 : IQ4KRowSum
    {
        public static byte* LayOut(BlockQ8_K* y, int blocks, out long stride)
        {
            stride = 256;
            byte* quants = KernelScratch.Get(blocks * 256L);
            for (int i = 0; i < blocks; i++)
            {
                sbyte* q = y[i].Qs;
                var dst = (Vector256<sbyte>*)(quants + 256L * i);
                for (int c = 0; c < 8; c++) dst[c] = Vector256.Load(q + 128 * (c >> 2) + 64 * (c & 1) + 32 * ((c >> 1) & 1));
            }
            return quants;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Sum(byte* qs, byte* quants, ulong scales)
        {
            var m4 = Vector512.Create((byte)0xF);
            var words = Sse41.ConvertToVector128Int16(Vector128.CreateScalarUnsafe(scales).AsByte()).ToVector256Unsafe().ToVector512Unsafe();
            var q01 = Vector512.Load(qs);
            var q23 = Vector512.Load(qs + 64);
            var sum = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q01 & m4, Vector512.Load((sbyte*)quants)), ScaleHalves(words, 0, 2))
                + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.ShiftRightLogical(q01.AsUInt16(), 4).AsByte() & m4, Vector512.Load((sbyte*)quants + 64)), ScaleHalves(words, 1, 3))
                + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q23 & m4, Vector512.Load((sbyte*)quants + 128)), ScaleHalves(words, 4, 6))
                + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.ShiftRightLogical(q23.AsUInt16(), 4).AsByte() & m4, Vector512.Load((sbyte*)quants + 192)), ScaleHalves(words, 5, 7));
            return sum.GetLower() + sum.GetUpper();
        }

        /// <summary>Word <paramref name="lower"/> of <paramref name="words"/> in the lower 16 words, word <paramref name="upper"/> in the upper 16.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<short> ScaleHalves(Vector512<short> words, short lower, short upper) =>
            Avx512BW.PermuteVar32x16(words, GgmlQ0Dot.Halves(Vector256.Create(lower), Vector256.Create(upper)));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GemvQ4KRows8<TSum>(MatVecKernel kernel, in MatMulOperands op, int t, int rowStart, int rowEnd) where TSum : struct, IQ4KRowSum
    {
        int nb = op.N / QK.K, grouped = UseAvx2 ? rowStart + (rowEnd - rowStart) / 8 * 8 : rowStart;
        long rb = op.RowBytes;
        var y = (BlockQ8_K*)(op.Activations + t * op.ActivationRowBytes);
        float* o = op.Output + t * (long)op.OutputStride;
        var sums = stackalloc Vector256<int>[8];
        var mins = stackalloc Vector256<int>[8];
        var rowOffsets = GgmlQ0Dot.EightRowOffsets(rb);
        long quantStride = 0;
        byte* quants = grouped > rowStart ? TSum.LayOut(y, nb, out quantStride) : null;
        for (int r = rowStart; r < grouped; r += 8)
        {
            var acc = Vector256<float>.Zero;
            var accMin = Vector256<float>.Zero;
            for (int i = 0; i < nb; i++)
            {
                // Eight rows are read side by side, which the hardware prefetchers follow poorly from DRAM (decode
                // reads every weight once): fetch the same super-block of the rows two groups ahead.
                if (Sse.IsSupported)
                    for (int k = 16; k < 24; k++)
                    {
                        byte* ahead = op.Weights + (r + k) * rb + i * (long)sizeof(BlockQ4_K);
                        Sse.Prefetch0(ahead);
                        Sse.Prefetch0(ahead + 64);
                        Sse.Prefetch0(ahead + 128);
                    }
                var bsums = Avx2.MultiplyAddAdjacent(Avx.LoadVector256(y[i].BSums), Vector256.Create((short)1));
                byte* blockQuants = quants + i * quantStride;
                var x = (BlockQ4_K*)(op.Weights + r * rb) + i;
                for (int k = 0; k < 8; k++, x = (BlockQ4_K*)((byte*)x + rb))
                {
                    UnpackScalesMins(x->Scales, out ulong scales, out ulong mn);
                    sums[k] = TSum.Sum(x->Qs, blockQuants, scales);
                    mins[k] = Avx2.MultiplyLow(Avx2.ConvertToVector256Int32(Vector128.CreateScalarUnsafe(mn).AsByte()), bsums);
                }
                var isum = Reduce8(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]);
                var imin = Reduce8(mins[0], mins[1], mins[2], mins[3], mins[4], mins[5], mins[6], mins[7]);
                // d and dmin are a block's first two halves: one gather fetches both for the eight rows.
                var dAndMin = Avx2.GatherVector256((int*)((BlockQ4_K*)(op.Weights + r * rb) + i), rowOffsets, 1).AsUInt32();
                var xd = HalfLanes.ToSingle(dAndMin);
                var xm = HalfLanes.ToSingle(dAndMin >>> 16);
                var yd = Vector256.Create(y[i].D);
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), xd * yd, acc);
                accMin = Fma.MultiplyAdd(Avx.ConvertToVector256Single(imin), xm * yd, accMin);
            }
            var bias = op.Bias is null ? Vector256<float>.Zero : Vector256.Create(op.Bias, r);
            (acc - accMin + bias).Store(o + r);
        }
        for (int r = grouped; r < rowEnd; r++)
            o[r] = kernel.DotInMatMul(op.Weights + r * rb, (byte*)y, op.N, t, op.Tokens) + (op.Bias is null ? 0f : op.Bias[r]);
    }

    // ---------------------------------------------------------------- Q6_K, vec_dot

    /// <summary>ggml_vec_dot_q6_K_q8_K (x86 AVX2 branch).</summary>
    public static float VecDotQ6K(byte* w, byte* a, int n) =>
        UseAvx2 ? VecDotQ6KAvx2(w, a, n) : Vector128Dot.Accelerated ? Vector128Dot.VecDotQ6K(w, a, n) : VecDotQ6KScalar(w, a, n);

    /// <summary>Scalar reference of <see cref="VecDotQ6K"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float VecDotQ6KScalar(byte* w, byte* a, int n)
    {
        var x = (BlockQ6_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK.K;
        float* acc = stackalloc float[8];
        int* sumi = stackalloc int[8];
        byte* q = stackalloc byte[QK.K];
        for (int l = 0; l < 8; l++) acc[l] = 0;
        for (int i = 0; i < nb; i++)
        {
            float d = y[i].D * HalfTable.ToF32(x[i].D);
            byte* ql = x[i].Ql;
            byte* qh = x[i].Qh;
            sbyte* sc = x[i].Scales;
            sbyte* q8 = y[i].Qs;
            short* bs = y[i].BSums;
            for (int j = 0; j < 2; j++)
            {
                byte* o = q + 128 * j;
                for (int l = 0; l < 32; l++)
                {
                    byte h = qh[32 * j + l];
                    o[l] = (byte)((ql[64 * j + l] & 0xF) | ((h & 3) << 4));
                    o[l + 32] = (byte)((ql[64 * j + l + 32] & 0xF) | (((h >> 2) & 3) << 4));
                    o[l + 64] = (byte)((ql[64 * j + l] >> 4) | (((h >> 4) & 3) << 4));
                    o[l + 96] = (byte)((ql[64 * j + l + 32] >> 4) | (((h >> 6) & 3) << 4));
                }
            }
            for (int l = 0; l < 8; l++)
            {
                int s = 0;
                for (int c = 0; c < 8; c++)
                {
                    int p = 0;
                    for (int e = 32 * c + 4 * l; e < 32 * c + 4 * l + 4; e++) p += q[e] * q8[e];
                    s += sc[2 * c + (l >> 2)] * p;
                }
                sumi[l] = s - ((bs[2 * l] * sc[2 * l] + bs[2 * l + 1] * sc[2 * l + 1]) << 5);
            }
            for (int l = 0; l < 8; l++) acc[l] = MathF.FusedMultiplyAdd(d, sumi[l], acc[l]);
        }
        return Hsum8(acc);
    }

    /// <summary>
    /// The 6-bit quants of half <paramref name="j"/> of a Q6_K super-block (256-bit form): low 4 bits from ql, high 2
    /// from qh; q0..q3 are the 32-element runs 0–3 of the half, as ggml's AVX2 vec_dot decodes them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Q6KQuants(byte* ql, byte* qh, int j, out Vector256<byte> q0, out Vector256<byte> q1, out Vector256<byte> q2, out Vector256<byte> q3)
    {
        var m15 = Vector256.Create((byte)15);
        var b1 = Avx.LoadVector256(ql + 64 * j);
        var b2 = Avx.LoadVector256(ql + 64 * j + 32);
        var bh = Avx.LoadVector256(qh + 32 * j);
        q0 = (b1 & m15) | Avx2.ShiftLeftLogical((bh & Vector256.Create((byte)3)).AsUInt16(), 4).AsByte();
        q1 = (b2 & m15) | Avx2.ShiftLeftLogical((bh & Vector256.Create((byte)12)).AsUInt16(), 2).AsByte();
        q2 = (Avx2.ShiftRightLogical(b1.AsUInt16(), 4).AsByte() & m15) | (bh & Vector256.Create((byte)48));
        q3 = (Avx2.ShiftRightLogical(b2.AsUInt16(), 4).AsByte() & m15) | Avx2.ShiftRightLogical((bh & Vector256.Create((byte)192)).AsUInt16(), 2).AsByte();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static float VecDotQ6KAvx2(byte* w, byte* a, int n)
    {
        var x = (BlockQ6_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / QK.K;
        var acc = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            float d = y[i].D * HalfTable.ToF32(x[i].D);
            byte* ql = x[i].Ql;
            byte* qh = x[i].Qh;
            sbyte* sc = x[i].Scales;
            sbyte* q8 = y[i].Qs;
            var scales16 = Avx2.ConvertToVector256Int16(sc);
            var q8sclsub = Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(Avx.LoadVector256(y[i].BSums), scales16), 5);
            var sumi = Vector256<int>.Zero;
            for (int j = 0; j < 2; j++)
            {
                Q6KQuants(ql, qh, j, out var q0, out var q1, out var q2, out var q3);
                sbyte* q8j = q8 + 128 * j;
                sbyte* scj = sc + 8 * j;
                var p0 = Avx2.MultiplyAddAdjacent(Scale2(scj[0], scj[1]), Avx2.MultiplyAddAdjacent(q0, Avx.LoadVector256(q8j)));
                var p1 = Avx2.MultiplyAddAdjacent(Scale2(scj[2], scj[3]), Avx2.MultiplyAddAdjacent(q1, Avx.LoadVector256(q8j + 32)));
                var p2 = Avx2.MultiplyAddAdjacent(Scale2(scj[4], scj[5]), Avx2.MultiplyAddAdjacent(q2, Avx.LoadVector256(q8j + 64)));
                var p3 = Avx2.MultiplyAddAdjacent(Scale2(scj[6], scj[7]), Avx2.MultiplyAddAdjacent(q3, Avx.LoadVector256(q8j + 96)));
                sumi += p0 + p1;
                sumi += p2 + p3;
            }
            sumi -= q8sclsub;
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(d), Vector256.ConvertToSingle(sumi), acc);
        }
        return Hsum8(acc);
    }

    /// <summary>
    /// <see cref="VecDotQ6KAvx2"/> for two rows and one token: row <paramref name="first"/> in the lower 256 bits of
    /// each register and the next row in the upper, the token's quants in both. Each half keeps that dot's integer sums
    /// and float chain, so both results are identical to it, with the 6-bit decode and the multiplies done once for the
    /// two rows; each pair of scales comes from the two rows' widened scales by one word permute. The rows four pairs
    /// ahead are prefetched (two rows read side by side are not followed by the hardware prefetchers from DRAM).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void VecDotQ6KTwoRows(byte* first, long rowBytes, BlockQ8_K* y, int nb, float* results)
    {
        var x = (BlockQ6_K*)first;
        var z = (BlockQ6_K*)(first + rowBytes);
        byte* ahead = first + 8 * rowBytes;
        var m3 = Vector512.Create((byte)3);
        var m15 = Vector512.Create((byte)15);
        var m12 = Vector512.Create((byte)12);
        var m48 = Vector512.Create((byte)48);
        var m192 = Vector512.Create((byte)192);
        var acc = Vector512<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            if (Sse.IsSupported)
                for (int line = 0; line < sizeof(BlockQ6_K); line += 64)
                {
                    Sse.Prefetch0(ahead + i * sizeof(BlockQ6_K) + line);
                    Sse.Prefetch0(ahead + rowBytes + i * sizeof(BlockQ6_K) + line);
                }
            var d = Vector512.Create(y[i].D) * GgmlQ0Dot.Halves(Vector256.Create(HalfTable.ToF32(x[i].D)), Vector256.Create(HalfTable.ToF32(z[i].D)));
            var scales16 = GgmlQ0Dot.Halves(Avx2.ConvertToVector256Int16(x[i].Scales), Avx2.ConvertToVector256Int16(z[i].Scales));
            var q8sclsub = Avx512F.ShiftLeftLogical(Avx512BW.MultiplyAddAdjacent(GgmlQ0Dot.BroadcastHalf(y[i].BSums).AsInt16(), scales16), 5);
            var sumi = Vector512<int>.Zero;
            for (int j = 0; j < 2; j++)
            {
                var b1 = TwoRows(x[i].Ql + 64 * j, z[i].Ql + 64 * j);
                var b2 = TwoRows(x[i].Ql + 64 * j + 32, z[i].Ql + 64 * j + 32);
                var bh = TwoRows(x[i].Qh + 32 * j, z[i].Qh + 32 * j);
                var h0 = Avx512BW.ShiftLeftLogical((bh & m3).AsUInt16(), 4).AsByte();
                var h1 = Avx512BW.ShiftLeftLogical((bh & m12).AsUInt16(), 2).AsByte();
                var h2 = bh & m48;
                var h3 = Avx512BW.ShiftRightLogical((bh & m192).AsUInt16(), 2).AsByte();
                var q0 = (b1 & m15) | h0;
                var q1 = (b2 & m15) | h1;
                var q2 = (Avx512BW.ShiftRightLogical(b1.AsUInt16(), 4).AsByte() & m15) | h2;
                var q3 = (Avx512BW.ShiftRightLogical(b2.AsUInt16(), 4).AsByte() & m15) | h3;
                sbyte* q8j = y[i].Qs + 128 * j;
                var p0 = Avx512BW.MultiplyAddAdjacent(ScalePair(scales16, 8 * j), Avx512BW.MultiplyAddAdjacent(q0, GgmlQ0Dot.BroadcastHalf(q8j).AsSByte()));
                var p1 = Avx512BW.MultiplyAddAdjacent(ScalePair(scales16, 8 * j + 2), Avx512BW.MultiplyAddAdjacent(q1, GgmlQ0Dot.BroadcastHalf(q8j + 32).AsSByte()));
                var p2 = Avx512BW.MultiplyAddAdjacent(ScalePair(scales16, 8 * j + 4), Avx512BW.MultiplyAddAdjacent(q2, GgmlQ0Dot.BroadcastHalf(q8j + 64).AsSByte()));
                var p3 = Avx512BW.MultiplyAddAdjacent(ScalePair(scales16, 8 * j + 6), Avx512BW.MultiplyAddAdjacent(q3, GgmlQ0Dot.BroadcastHalf(q8j + 96).AsSByte()));
                sumi += p0 + p1;
                sumi += p2 + p3;
            }
            sumi -= q8sclsub;
            acc = Vector512.FusedMultiplyAdd(d, Vector512.ConvertToSingle(sumi), acc);
        }
        results[0] = Hsum8(acc.GetLower());
        results[1] = Hsum8(acc.GetUpper());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<byte> TwoRows(byte* first, byte* second) =>
        GgmlQ0Dot.Halves(Vector256.Load(first), Vector256.Load(second));

    /// <summary>Scale2(sc[k], sc[k + 1]) of each half's row: words k (×8) and k + 1 (×8) of the lower 16, the same of the upper 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<short> ScalePair(Vector512<short> scales16, int k)
    {
        var pair = Vector256.Create(Vector128.Create((short)k), Vector128.Create((short)(k + 1)));
        return Avx512BW.PermuteVar32x16(scales16, GgmlQ0Dot.Halves(pair, pair + Vector256.Create((short)16)));
    }

    /// <summary>
    /// <see cref="VecDotQ6K"/> for one weight row and four tokens: the 6-bit quants of each half super-block are decoded
    /// once for the four tokens; each token's eight float lanes follow exactly the single-token chain.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void VecDotQ6KRow4(BlockQ6_K* x, int nb, byte* a, long ys, float* o, long os, float bias)
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        for (int i = 0; i < nb; i++, x++)
        {
            var y0 = (BlockQ8_K*)(a + i * (long)sizeof(BlockQ8_K));
            var y1 = (BlockQ8_K*)((byte*)y0 + ys);
            var y2 = (BlockQ8_K*)((byte*)y1 + ys);
            var y3 = (BlockQ8_K*)((byte*)y2 + ys);
            byte* ql = x->Ql;
            byte* qh = x->Qh;
            sbyte* sc = x->Scales;
            var scales16 = Avx2.ConvertToVector256Int16(sc);
            var s0 = -Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(Avx.LoadVector256(y0->BSums), scales16), 5);
            var s1 = -Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(Avx.LoadVector256(y1->BSums), scales16), 5);
            var s2 = -Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(Avx.LoadVector256(y2->BSums), scales16), 5);
            var s3 = -Avx2.ShiftLeftLogical(Avx2.MultiplyAddAdjacent(Avx.LoadVector256(y3->BSums), scales16), 5);
            for (int j = 0; j < 2; j++)
            {
                Q6KQuants(ql, qh, j, out var q0, out var q1, out var q2, out var q3);
                sbyte* scj = sc + 8 * j;
                var c0 = Scale2(scj[0], scj[1]);
                var c1 = Scale2(scj[2], scj[3]);
                var c2 = Scale2(scj[4], scj[5]);
                var c3 = Scale2(scj[6], scj[7]);
                s0 += Q6KHalf(y0->Qs + 128 * j, q0, q1, q2, q3, c0, c1, c2, c3);
                s1 += Q6KHalf(y1->Qs + 128 * j, q0, q1, q2, q3, c0, c1, c2, c3);
                s2 += Q6KHalf(y2->Qs + 128 * j, q0, q1, q2, q3, c0, c1, c2, c3);
                s3 += Q6KHalf(y3->Qs + 128 * j, q0, q1, q2, q3, c0, c1, c2, c3);
            }
            float xd = HalfTable.ToF32(x->D);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(y0->D * xd), Vector256.ConvertToSingle(s0), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(y1->D * xd), Vector256.ConvertToSingle(s1), acc1);
            acc2 = Vector256.FusedMultiplyAdd(Vector256.Create(y2->D * xd), Vector256.ConvertToSingle(s2), acc2);
            acc3 = Vector256.FusedMultiplyAdd(Vector256.Create(y3->D * xd), Vector256.ConvertToSingle(s3), acc3);
        }
        o[0] = Hsum8(acc0) + bias;
        o[os] = Hsum8(acc1) + bias;
        o[2 * os] = Hsum8(acc2) + bias;
        o[3 * os] = Hsum8(acc3) + bias;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Q6KHalf(sbyte* q8, Vector256<byte> q0, Vector256<byte> q1, Vector256<byte> q2, Vector256<byte> q3,
        Vector256<short> c0, Vector256<short> c1, Vector256<short> c2, Vector256<short> c3) =>
        Avx2.MultiplyAddAdjacent(c0, Avx2.MultiplyAddAdjacent(q0, Avx.LoadVector256(q8)))
        + Avx2.MultiplyAddAdjacent(c1, Avx2.MultiplyAddAdjacent(q1, Avx.LoadVector256(q8 + 32)))
        + Avx2.MultiplyAddAdjacent(c2, Avx2.MultiplyAddAdjacent(q2, Avx.LoadVector256(q8 + 64)))
        + Avx2.MultiplyAddAdjacent(c3, Avx2.MultiplyAddAdjacent(q3, Avx.LoadVector256(q8 + 96)));

    /// <summary>
    /// Eight tokens' Q8_K activations laid out for the 512-bit Q6_K and Q5_K steps (in <see cref="KernelScratch"/>): per super-block, per token pair, the two tokens' scales side by side (8 lanes each) and bsums side by
    /// side, then per half (j), chunk (k) and token pair the two tokens' 32 quants side by side, then the eight
    /// tokens' scales one lane per token (for the Q5_K mins, which are summed per token, not per lane).
    /// </summary>
    internal readonly struct Q8KPairGroup
    {
        const long SuperBlockBytes = 4 * 64 + 4 * 64 + 2 * 4 * 4 * 64 + 64; // the token scales padded to keep blocks 64-byte aligned
        readonly byte* _data;
        public readonly int Blocks;

        public Q8KPairGroup(int superBlocks)
        {
            Blocks = superBlocks;
            _data = KernelScratch.Get(superBlocks * SuperBlockBytes);
        }

        public Vector512<float>* Scales(int i) => (Vector512<float>*)(_data + i * SuperBlockBytes);
        public Vector512<short>* Bsums(int i) => (Vector512<short>*)(_data + i * SuperBlockBytes + 256);
        public Vector512<sbyte>* Quants(int i, int j, int k) => (Vector512<sbyte>*)(_data + i * SuperBlockBytes + 512 + (j * 4 + k) * 256);
        /// <summary>The token pairs' quants of 32-element chunk <paramref name="c"/> (0..7) of super-block <paramref name="i"/>.</summary>
        public Vector512<sbyte>* Chunk(int i, int c) => Quants(i, c >> 2, c & 3);
        /// <summary>The eight tokens' scales of super-block <paramref name="i"/>, lane = token.</summary>
        public Vector256<float> TokenScales(int i) => Vector256.Load(TokenScaleLanes(i));
        float* TokenScaleLanes(int i) => (float*)(_data + i * SuperBlockBytes + 512 + 2048);

        public void LayOut(byte* a, long ys)
        {
            for (int i = 0; i < Blocks; i++)
            {
                byte* y0 = a + i * (long)sizeof(BlockQ8_K);
                for (int p = 0; p < 4; p++)
                {
                    var ya = (BlockQ8_K*)(y0 + 2 * p * ys);
                    var yb = (BlockQ8_K*)(y0 + (2 * p + 1) * ys);
                    Scales(i)[p] = Vector512.Create(Vector256.Create(ya->D), Vector256.Create(yb->D));
                    Bsums(i)[p] = Vector512.Create(Vector256.Load(ya->BSums), Vector256.Load(yb->BSums));
                    TokenScaleLanes(i)[2 * p] = ya->D;
                    TokenScaleLanes(i)[2 * p + 1] = yb->D;
                    for (int j = 0; j < 2; j++)
                        for (int k = 0; k < 4; k++)
                            Quants(i, j, k)[p] = Vector512.Create(Vector256.Load(ya->Qs + 128 * j + 32 * k), Vector256.Load(yb->Qs + 128 * j + 32 * k));
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<short> Scale2x2(sbyte a, sbyte b)
    {
        return GgmlQ0Dot.BothHalves(Scale2(a, b));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<byte> Twice(Vector256<byte> v) => GgmlQ0Dot.BothHalves(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<int> Q6KChunks512(in Q8KPairGroup g, int i, int j, int p, Vector512<byte> q0, Vector512<byte> q1, Vector512<byte> q2, Vector512<byte> q3,
        Vector512<short> c0, Vector512<short> c1, Vector512<short> c2, Vector512<short> c3) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q0, g.Quants(i, j, 0)[p]), c0)
        + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q1, g.Quants(i, j, 1)[p]), c1)
        + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q2, g.Quants(i, j, 2)[p]), c2)
        + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q3, g.Quants(i, j, 3)[p]), c3);

    /// <summary>
    /// <see cref="VecDotQ6KRow4"/> for eight tokens with 512-bit registers holding two tokens each, over a laid-out
    /// group: the same integer lane sums and the same per-lane float chain for every token.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void VecDotQ6KRow8Avx512<TFetch>(BlockQ6_K* x, in Q8KPairGroup g, float* o, long os, float bias) where TFetch : struct, IRowFetch
    {
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        for (int i = 0; i < g.Blocks; i++, x++)
        {
            PrefetchAhead<TFetch, BlockQ6_K>(x, g.Blocks);
            byte* ql = x->Ql;
            byte* qh = x->Qh;
            sbyte* sc = x->Scales;
            var scales16 = Avx2.ConvertToVector256Int16(sc);
            var scales32 = GgmlQ0Dot.BothHalves(scales16);
            var bs = g.Bsums(i);
            var s0 = -Avx512BW.ShiftLeftLogical(Avx512BW.MultiplyAddAdjacent(bs[0], scales32), 5);
            var s1 = -Avx512BW.ShiftLeftLogical(Avx512BW.MultiplyAddAdjacent(bs[1], scales32), 5);
            var s2 = -Avx512BW.ShiftLeftLogical(Avx512BW.MultiplyAddAdjacent(bs[2], scales32), 5);
            var s3 = -Avx512BW.ShiftLeftLogical(Avx512BW.MultiplyAddAdjacent(bs[3], scales32), 5);
            for (int j = 0; j < 2; j++)
            {
                Q6KQuants(ql, qh, j, out var r0, out var r1, out var r2, out var r3);
                var q0 = Twice(r0);
                var q1 = Twice(r1);
                var q2 = Twice(r2);
                var q3 = Twice(r3);
                sbyte* scj = sc + 8 * j;
                var c0 = Scale2x2(scj[0], scj[1]);
                var c1 = Scale2x2(scj[2], scj[3]);
                var c2 = Scale2x2(scj[4], scj[5]);
                var c3 = Scale2x2(scj[6], scj[7]);
                s0 += Q6KChunks512(g, i, j, 0, q0, q1, q2, q3, c0, c1, c2, c3);
                s1 += Q6KChunks512(g, i, j, 1, q0, q1, q2, q3, c0, c1, c2, c3);
                s2 += Q6KChunks512(g, i, j, 2, q0, q1, q2, q3, c0, c1, c2, c3);
                s3 += Q6KChunks512(g, i, j, 3, q0, q1, q2, q3, c0, c1, c2, c3);
            }
            var xd = Vector512.Create(HalfTable.ToF32(x->D));
            var d = g.Scales(i);
            acc0 = Vector512.FusedMultiplyAdd(d[0] * xd, Vector512.ConvertToSingle(s0), acc0);
            acc1 = Vector512.FusedMultiplyAdd(d[1] * xd, Vector512.ConvertToSingle(s1), acc1);
            acc2 = Vector512.FusedMultiplyAdd(d[2] * xd, Vector512.ConvertToSingle(s2), acc2);
            acc3 = Vector512.FusedMultiplyAdd(d[3] * xd, Vector512.ConvertToSingle(s3), acc3);
        }
        GgmlQ0Dot.StorePairs(o, os, bias, acc0, acc1, acc2, acc3);
    }

    /// <summary>Q6_K over rows × tokens: eight (AVX-512) or four tokens per weight decode, the remainder one dot at a time.</summary>
    public static void MatMulQ6K(in MatMulOperands op, int rowStart, int rowEnd) => MatMulTiled<Q6KTiles>(op, rowStart, rowEnd);

    /// <summary>The three shapes a K-quant's multi-token product is built from, each in the type's vec_dot order.</summary>
    internal interface IKQuantTiles
    {
        /// <summary>One row × eight tokens (AVX-512), activations laid out as <see cref="Q8KPairGroup"/>.</summary>
        static abstract void Row8<TFetch>(byte* row, in Q8KPairGroup group, float* o, long os, float bias) where TFetch : struct, IRowFetch;
        /// <summary>One row × four tokens (AVX2) straight from the Q8_K activations.</summary>
        static abstract void Row4(byte* row, int blocks, byte* a, long ys, float* o, long os, float bias);
        static abstract float Dot(byte* row, byte* a, int n);
        /// <summary><see cref="Dot"/> of rows <paramref name="first"/> and first + rowBytes against one token: results[0], results[1].</summary>
        static abstract void DotTwo(byte* first, long rowBytes, byte* a, int n, float* results);
    }

    readonly struct Q6KTiles : IKQuantTiles
    {
        public static void Row8<TFetch>(byte* row, in Q8KPairGroup group, float* o, long os, float bias) where TFetch : struct, IRowFetch
            => VecDotQ6KRow8Avx512<TFetch>((BlockQ6_K*)row, group, o, os, bias);
        public static void Row4(byte* row, int blocks, byte* a, long ys, float* o, long os, float bias) => VecDotQ6KRow4((BlockQ6_K*)row, blocks, a, ys, o, os, bias);
        public static float Dot(byte* row, byte* a, int n) => VecDotQ6K(row, a, n);
        public static void DotTwo(byte* first, long rowBytes, byte* a, int n, float* results)
        {
            if (UseAvx2 && Avx512BW.IsSupported) { VecDotQ6KTwoRows(first, rowBytes, (BlockQ8_K*)a, n / QK.K, results); return; }
            results[0] = VecDotQ6K(first, a, n);
            results[1] = VecDotQ6K(first + rowBytes, a, n);
        }
    }

    /// <summary>Rows × tokens for a K-quant: groups of eight tokens through <see cref="IKQuantTiles.Row8"/> (AVX-512),
    /// then groups of four (AVX2), the remainder one dot at a time.</summary>
    internal static void MatMulTiled<T>(in MatMulOperands op, int rowStart, int rowEnd) where T : struct, IKQuantTiles
    {
        int tokens = op.Tokens, nb = op.N / QK.K, done = 0;
        long ys = op.ActivationRowBytes, os = op.OutputStride;
        if (Avx512BW.IsSupported && tokens >= 8)
        {
            var group = new Q8KPairGroup(nb);
            for (; done + 8 <= tokens; done += 8)
            {
                group.LayOut(op.Activations + done * ys, ys);
                bool fetch = RowsFromMemory(done, rowEnd - rowStart, op.RowBytes);
                for (int r = rowStart; r < rowEnd; r++)
                {
                    byte* row = op.Weights + r * op.RowBytes;
                    float* o = op.Output + done * os + r;
                    float bias = op.Bias is null ? 0f : op.Bias[r];
                    if (fetch) T.Row8<FetchAhead>(row, group, o, os, bias);
                    else T.Row8<NoFetch>(row, group, o, os, bias);
                }
            }
        }
        int tiled = UseAvx2 ? done + (tokens - done) / 4 * 4 : done;
        for (int r = rowStart; r < rowEnd && done < tiled; r++)
        {
            byte* row = op.Weights + r * op.RowBytes;
            float bias = op.Bias is null ? 0f : op.Bias[r];
            for (int t = done; t < tiled; t += 4)
                T.Row4(row, nb, op.Activations + t * ys, ys, op.Output + t * os + r, os, bias);
        }
        float* two = stackalloc float[2];
        for (int t = tiled; t < tokens; t++)
        {
            byte* a = op.Activations + t * ys;
            float* o = op.Output + t * os;
            int r = rowStart;
            for (; r + 2 <= rowEnd; r += 2)
            {
                T.DotTwo(op.Weights + r * op.RowBytes, op.RowBytes, a, op.N, two);
                o[r] = two[0] + (op.Bias is null ? 0f : op.Bias[r]);
                o[r + 1] = two[1] + (op.Bias is null ? 0f : op.Bias[r + 1]);
            }
            if (r < rowEnd) o[r] = T.Dot(op.Weights + r * op.RowBytes, a, op.N) + (op.Bias is null ? 0f : op.Bias[r]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<short> Scale2(sbyte a, sbyte b) => Vector256.Create(Vector128.Create((short)a), Vector128.Create((short)b));
}

/// <summary>A Q4_K or Q6_K kernel in llama.cpp's float arithmetic; see <see cref="GgmlKQuantDot"/>.</summary>
public sealed unsafe class GgmlKQuantKernel : MatVecKernel
{
    enum Mode { VecDotQ4K, RepackedQ4K, VecDotQ6K }

    readonly Mode _mode;

    GgmlKQuantKernel(Mode mode) => _mode = mode;

    /// <summary>Q4_K through ggml_vec_dot_q4_K_q8_K for every token (matrices llama.cpp does not repack).</summary>
    public static GgmlKQuantKernel Q4K { get; } = new(Mode.VecDotQ4K);

    /// <summary>Q4_K as llama.cpp computes it after repacking to q4_K_8x8 (row count a multiple of 8).</summary>
    public static GgmlKQuantKernel Q4KRepacked { get; } = new(Mode.RepackedQ4K);

    /// <summary>Q6_K through ggml_vec_dot_q6_K_q8_K for every token (never repacked on x86).</summary>
    public static GgmlKQuantKernel Q6K { get; } = new(Mode.VecDotQ6K);

    public override GgmlType WeightType => _mode == Mode.VecDotQ6K ? GgmlType.Q6_K : GgmlType.Q4_K;
    public override GgmlType ActivationType => GgmlType.Q8_K;
    public override string Isa => _mode == Mode.RepackedQ4K ? "ggml-order-repack" : "ggml-order";

    // The repacked GEMM quantizes groups of four tokens with ggml_quantize_mat_q8_K_4x8 instead of quantize_row_q8_K.
    // Both compute iscale = ∓127/amax, round x·iscale half to even and set d = 1/iscale; they differ only when a block's
    // largest magnitude occurs both positive and negative (4x8 takes the positive one, the reference the first one).
    // Then d, the quants and the sums are all negated, which leaves every product, and so every result, bit-identical.
    public override void PrepareActivation(ReadOnlySpan<float> x, Span<byte> dst) => ActivationQuant.Quantize(GgmlType.Q8_K, x, dst);

    public override float Dot(byte* w, byte* a, int n) => _mode switch
    {
        Mode.VecDotQ4K => GgmlKQuantDot.VecDotQ4K(w, a, n),
        Mode.RepackedQ4K => GgmlKQuantDot.RepackGemvQ4K(w, a, n),
        _ => GgmlKQuantDot.VecDotQ6K(w, a, n),
    };

    public override void MatMul(in MatMulOperands op, int rowStart, int rowEnd)
    {
        if (_mode == Mode.RepackedQ4K) GgmlKQuantDot.MatMulRepackedQ4K(this, op, rowStart, rowEnd);
        else if (_mode == Mode.VecDotQ6K) GgmlKQuantDot.MatMulQ6K(op, rowStart, rowEnd);
        else base.MatMul(op, rowStart, rowEnd);
    }

    /// <summary>Repacked Q4_K: the first tokens − tokens % 4 tokens go through the GEMM, the rest through the GEMV.</summary>
    public override float DotInMatMul(byte* w, byte* a, int n, int token, int tokens)
    {
        if (_mode == Mode.RepackedQ4K && token < tokens - tokens % 4)
            return GgmlKQuantDot.RepackGemmQ4K(w, a, n);
        return Dot(w, a, n);
    }

    public override string ToString() => $"{GgmlTypeInfo.Of(WeightType).Name}xQ8_K [{Isa}]";
}
