using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>Instruction-set flavour for the 256-bit integer kernels; a struct type argument so the JIT folds the checks.</summary>
public interface IIntIsa
{
    /// <summary>True to use AVX-VNNI vpdpbusd, false for AVX2 vpmaddubsw + vpmaddwd.</summary>
    static abstract bool Vnni { get; }
}

public struct Avx2Isa : IIntIsa { public static bool Vnni => false; }
public struct AvxVnniIsa : IIntIsa { public static bool Vnni => true; }

/// <summary>
/// AVX2 / AVX-VNNI dot products (256-bit). Integer parts are exact; K-quants sum each super-block in integers and
/// scale once, in the same order as <see cref="ScalarDot"/>, so they agree with it bit for bit.
/// </summary>
public static unsafe class SimdDot
{
    // ---------- primitives ----------

    /// <summary>Per int32 lane: sum of 4 products of unsigned u and signed s bytes (no saturation for |u*s| pairs below 2^15).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> DotU8S8<T>(Vector256<byte> u, Vector256<sbyte> s) where T : struct, IIntIsa
    {
        if (T.Vnni)
            return AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u, s);
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1));
    }

    /// <summary>Per int32 lane: sum of 4 products of signed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> DotS8S8<T>(Vector256<sbyte> x, Vector256<sbyte> y) where T : struct, IIntIsa =>
        DotU8S8<T>(Avx2.Abs(x), Avx2.Sign(y, x));

    /// <summary>Per int32 lane: (sum of 4 products of u and s) times the scale of its 16-byte half (lo for bytes 0..15, hi for 16..31).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> DotU8S8Scaled<T>(Vector256<byte> u, Vector256<sbyte> s, int lo, int hi) where T : struct, IIntIsa
    {
        if (T.Vnni)
            return Avx2.MultiplyLow(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u, s),
                Vector256.Create(Vector128.Create(lo), Vector128.Create(hi)));
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s),
            Vector256.Create(Vector128.Create((short)lo), Vector128.Create((short)hi)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> Load32(byte* p) => Vector256.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<sbyte> LoadS32(sbyte* p) => Vector256.Load(p);

    /// <summary>16 bytes of nibbles to 32 bytes: low nibbles then high nibbles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> Nibbles16(byte* p)
    {
        var v = Vector128.Load(p);
        var m = Vector128.Create((byte)0x0F);
        return Vector256.Create(v & m, Vector128.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m);
    }

    /// <summary>Bit i of a 32-bit mask to byte i: 0xFF where set, 0 where clear.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> BytesFromBits32(uint bits)
    {
        var v = Vector256.Create(bits).AsByte();
        var idx = Vector256.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        var spread = Avx2.Shuffle(v, idx);
        var bit = Vector256.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        return Vector256.Equals(spread & bit, bit);
    }

    /// <summary>Sum over j of bsums[j] * scales[j] for 16 int16 bsums and 16 signed byte scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int BSumDot16(short* bsums, sbyte* scales) =>
        Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load(bsums), Avx2.ConvertToVector256Int16(Vector128.Load(scales))));

    /// <summary>Sum over j of (bsums[2j] + bsums[2j+1]) * mins[j] for 16 bsums and 8 unsigned byte mins.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int BSumDotPairs(short* bsums, ulong mins8)
    {
        var m = Vector128.CreateScalarUnsafe(mins8).AsByte();
        var pairs = Sse2.UnpackLow(m, m); // m0 m0 m1 m1 ...
        return Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load(bsums), Avx2.ConvertToVector256Int16(pairs)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Fp16(Half h) => HalfTable.ToF32(h);

    // ---------- float types ----------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float F32Avx512(byte* w, byte* a, int n)
    {
        float* x = (float*)w, y = (float*)a;
        var s0 = Vector512<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
        int i = 0;
        for (; i + 64 <= n; i += 64)
        {
            s0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i), Vector512.Load(y + i), s0);
            s1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i + 16), Vector512.Load(y + i + 16), s1);
            s2 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i + 32), Vector512.Load(y + i + 32), s2);
            s3 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i + 48), Vector512.Load(y + i + 48), s3);
        }
        for (; i + 16 <= n; i += 16)
            s0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i), Vector512.Load(y + i), s0);
        float sum = Vector512.Sum((s0 + s1) + (s2 + s3));
        for (; i < n; i++) sum += x[i] * y[i];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float F32Avx2(byte* w, byte* a, int n)
    {
        float* x = (float*)w, y = (float*)a;
        var s0 = Vector256<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            s0 = Fma.MultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), s0);
            s1 = Fma.MultiplyAdd(Vector256.Load(x + i + 8), Vector256.Load(y + i + 8), s1);
            s2 = Fma.MultiplyAdd(Vector256.Load(x + i + 16), Vector256.Load(y + i + 16), s2);
            s3 = Fma.MultiplyAdd(Vector256.Load(x + i + 24), Vector256.Load(y + i + 24), s3);
        }
        for (; i + 8 <= n; i += 8)
            s0 = Fma.MultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), s0);
        float sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        for (; i < n; i++) sum += x[i] * y[i];
        return sum;
    }

    /// <summary>Portable 128-bit path (NEON on ARM64, SSE on x64).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float F32Vector128(byte* w, byte* a, int n)
    {
        float* x = (float*)w, y = (float*)a;
        var s0 = Vector128<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            s0 = Vector128.FusedMultiplyAdd(Vector128.Load(x + i), Vector128.Load(y + i), s0);
            s1 = Vector128.FusedMultiplyAdd(Vector128.Load(x + i + 4), Vector128.Load(y + i + 4), s1);
            s2 = Vector128.FusedMultiplyAdd(Vector128.Load(x + i + 8), Vector128.Load(y + i + 8), s2);
            s3 = Vector128.FusedMultiplyAdd(Vector128.Load(x + i + 12), Vector128.Load(y + i + 12), s3);
        }
        for (; i + 4 <= n; i += 4)
            s0 = Vector128.FusedMultiplyAdd(Vector128.Load(x + i), Vector128.Load(y + i), s0);
        float sum = Vector128.Sum((s0 + s1) + (s2 + s3));
        for (; i < n; i++) sum += x[i] * y[i];
        return sum;
    }

    // fp16 -> fp32 without F16C: move exponent+mantissa into place (<< 13), rescale by 2^112 (exact, also for
    // subnormals), force the exponent to all-ones for infinities/NaN, then put the sign back.
    const float TwoPow112 = 5.192296858534828e33f;

    /// <summary>8 fp16 values to float (exact, including subnormals, infinities and NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> HalfToSingle(Vector128<ushort> h)
    {
        var u = Avx2.ConvertToVector256Int32(h);
        var em = u & Vector256.Create(0x7fff);
        var f = ((em << 13).AsSingle() * Vector256.Create(TwoPow112)).AsInt32();
        var special = Vector256.GreaterThan(em, Vector256.Create(0x7bff)) & Vector256.Create(0x7f800000);
        var sign = (u << 16) & Vector256.Create(int.MinValue);
        return (f | special | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> HalfToSingle512(Vector256<ushort> h)
    {
        var u = Avx512F.ConvertToVector512Int32(h);
        var em = u & Vector512.Create(0x7fff);
        var f = ((em << 13).AsSingle() * Vector512.Create(TwoPow112)).AsInt32();
        var special = Vector512.GreaterThan(em, Vector512.Create(0x7bff)) & Vector512.Create(0x7f800000);
        var sign = (u << 16) & Vector512.Create(int.MinValue);
        return (f | special | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float F16Avx2(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        var s0 = Vector256<float>.Zero; var s1 = s0;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            s0 = Fma.MultiplyAdd(HalfToSingle(Vector128.Load(x + i)), HalfToSingle(Vector128.Load(y + i)), s0);
            s1 = Fma.MultiplyAdd(HalfToSingle(Vector128.Load(x + i + 8)), HalfToSingle(Vector128.Load(y + i + 8)), s1);
        }
        for (; i + 8 <= n; i += 8)
            s0 = Fma.MultiplyAdd(HalfToSingle(Vector128.Load(x + i)), HalfToSingle(Vector128.Load(y + i)), s0);
        float sum = Vector256.Sum(s0 + s1);
        for (; i < n; i++) sum += FloatConv.F16ToF32(x[i]) * FloatConv.F16ToF32(y[i]);
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float F16Avx512(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        var s0 = Vector512<float>.Zero; var s1 = s0;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            s0 = Avx512F.FusedMultiplyAdd(HalfToSingle512(Vector256.Load(x + i)), HalfToSingle512(Vector256.Load(y + i)), s0);
            s1 = Avx512F.FusedMultiplyAdd(HalfToSingle512(Vector256.Load(x + i + 16)), HalfToSingle512(Vector256.Load(y + i + 16)), s1);
        }
        for (; i + 16 <= n; i += 16)
            s0 = Avx512F.FusedMultiplyAdd(HalfToSingle512(Vector256.Load(x + i)), HalfToSingle512(Vector256.Load(y + i)), s0);
        float sum = Vector512.Sum(s0 + s1);
        for (; i < n; i++) sum += FloatConv.F16ToF32(x[i]) * FloatConv.F16ToF32(y[i]);
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Bf16ToSingle(Vector128<ushort> h) => (Avx2.ConvertToVector256Int32(h) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float BF16Avx2(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        var s0 = Vector256<float>.Zero; var s1 = s0;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            s0 = Fma.MultiplyAdd(Bf16ToSingle(Vector128.Load(x + i)), Bf16ToSingle(Vector128.Load(y + i)), s0);
            s1 = Fma.MultiplyAdd(Bf16ToSingle(Vector128.Load(x + i + 8)), Bf16ToSingle(Vector128.Load(y + i + 8)), s1);
        }
        for (; i + 8 <= n; i += 8)
            s0 = Fma.MultiplyAdd(Bf16ToSingle(Vector128.Load(x + i)), Bf16ToSingle(Vector128.Load(y + i)), s0);
        float sum = Vector256.Sum(s0 + s1);
        for (; i < n; i++) sum += FloatConv.BF16ToF32(x[i]) * FloatConv.BF16ToF32(y[i]);
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float BF16Avx512(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        var s0 = Vector512<float>.Zero; var s1 = s0;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            s0 = Avx512F.FusedMultiplyAdd((Avx512F.ConvertToVector512Int32(Vector256.Load(x + i)) << 16).AsSingle(),
                (Avx512F.ConvertToVector512Int32(Vector256.Load(y + i)) << 16).AsSingle(), s0);
            s1 = Avx512F.FusedMultiplyAdd((Avx512F.ConvertToVector512Int32(Vector256.Load(x + i + 16)) << 16).AsSingle(),
                (Avx512F.ConvertToVector512Int32(Vector256.Load(y + i + 16)) << 16).AsSingle(), s1);
        }
        for (; i + 16 <= n; i += 16)
            s0 = Avx512F.FusedMultiplyAdd((Avx512F.ConvertToVector512Int32(Vector256.Load(x + i)) << 16).AsSingle(),
                (Avx512F.ConvertToVector512Int32(Vector256.Load(y + i)) << 16).AsSingle(), s0);
        float sum = Vector512.Sum(s0 + s1);
        for (; i < n; i++) sum += FloatConv.BF16ToF32(x[i]) * FloatConv.BF16ToF32(y[i]);
        return sum;
    }

    // ---------- 32-element block types ----------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q8_0<T>(byte* w, byte* a, int n) where T : struct, IIntIsa
    {
        var x = (BlockQ8_0*)w;
        var y = (BlockQ8_0*)a;
        int nb = n / 32;
        var acc0 = Vector256<float>.Zero; var acc1 = acc0;
        int ib = 0;
        for (; ib + 1 < nb; ib += 2)
        {
            var p0 = DotS8S8<T>(LoadS32(x[ib].Qs), LoadS32(y[ib].Qs));
            var p1 = DotS8S8<T>(LoadS32(x[ib + 1].Qs), LoadS32(y[ib + 1].Qs));
            acc0 = Fma.MultiplyAdd(Vector256.Create(Fp16(x[ib].D) * Fp16(y[ib].D)), Avx.ConvertToVector256Single(p0), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.Create(Fp16(x[ib + 1].D) * Fp16(y[ib + 1].D)), Avx.ConvertToVector256Single(p1), acc1);
        }
        for (; ib < nb; ib++)
        {
            var p0 = DotS8S8<T>(LoadS32(x[ib].Qs), LoadS32(y[ib].Qs));
            acc0 = Fma.MultiplyAdd(Vector256.Create(Fp16(x[ib].D) * Fp16(y[ib].D)), Avx.ConvertToVector256Single(p0), acc0);
        }
        return Vector256.Sum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q4_0<T>(byte* w, byte* a, int n) where T : struct, IIntIsa
    {
        var x = (BlockQ4_0*)w;
        var y = (BlockQ8_0*)a;
        int nb = n / 32;
        var acc0 = Vector256<float>.Zero; var acc1 = acc0;
        var eight = Vector256.Create((sbyte)8);
        int ib = 0;
        for (; ib + 1 < nb; ib += 2)
        {
            var q0 = Nibbles16(x[ib].Qs).AsSByte() - eight;
            var q1 = Nibbles16(x[ib + 1].Qs).AsSByte() - eight;
            var p0 = DotS8S8<T>(q0, LoadS32(y[ib].Qs));
            var p1 = DotS8S8<T>(q1, LoadS32(y[ib + 1].Qs));
            acc0 = Fma.MultiplyAdd(Vector256.Create(Fp16(x[ib].D) * Fp16(y[ib].D)), Avx.ConvertToVector256Single(p0), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.Create(Fp16(x[ib + 1].D) * Fp16(y[ib + 1].D)), Avx.ConvertToVector256Single(p1), acc1);
        }
        for (; ib < nb; ib++)
        {
            var q0 = Nibbles16(x[ib].Qs).AsSByte() - eight;
            var p0 = DotS8S8<T>(q0, LoadS32(y[ib].Qs));
            acc0 = Fma.MultiplyAdd(Vector256.Create(Fp16(x[ib].D) * Fp16(y[ib].D)), Avx.ConvertToVector256Single(p0), acc0);
        }
        return Vector256.Sum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q4_1<T>(byte* w, byte* a, int n) where T : struct, IIntIsa
    {
        var x = (BlockQ4_1*)w;
        var y = (BlockQ8_1*)a;
        int nb = n / 32;
        var acc = Vector256<float>.Zero;
        float summ = 0;
        for (int ib = 0; ib < nb; ib++)
        {
            var p = DotU8S8<T>(Nibbles16(x[ib].Qs), LoadS32(y[ib].Qs));
            acc = Fma.MultiplyAdd(Vector256.Create(Fp16(x[ib].D) * Fp16(y[ib].D)), Avx.ConvertToVector256Single(p), acc);
            summ += Fp16(x[ib].M) * Fp16(y[ib].S);
        }
        return Vector256.Sum(acc) + summ;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q5_0<T>(byte* w, byte* a, int n) where T : struct, IIntIsa
    {
        var x = (BlockQ5_0*)w;
        var y = (BlockQ8_0*)a;
        int nb = n / 32;
        var acc = Vector256<float>.Zero;
        var sixteen = Vector256.Create((byte)0x10);
        for (int ib = 0; ib < nb; ib++)
        {
            var hb = BytesFromBits32(*(uint*)x[ib].Qh) & sixteen;
            var q = (Nibbles16(x[ib].Qs) | hb).AsSByte() - sixteen.AsSByte();
            var p = DotS8S8<T>(q, LoadS32(y[ib].Qs));
            acc = Fma.MultiplyAdd(Vector256.Create(Fp16(x[ib].D) * Fp16(y[ib].D)), Avx.ConvertToVector256Single(p), acc);
        }
        return Vector256.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q5_1<T>(byte* w, byte* a, int n) where T : struct, IIntIsa
    {
        var x = (BlockQ5_1*)w;
        var y = (BlockQ8_1*)a;
        int nb = n / 32;
        var acc = Vector256<float>.Zero;
        var sixteen = Vector256.Create((byte)0x10);
        float summ = 0;
        for (int ib = 0; ib < nb; ib++)
        {
            var hb = BytesFromBits32(*(uint*)x[ib].Qh) & sixteen;
            var p = DotU8S8<T>(Nibbles16(x[ib].Qs) | hb, LoadS32(y[ib].Qs));
            acc = Fma.MultiplyAdd(Vector256.Create(Fp16(x[ib].D) * Fp16(y[ib].D)), Avx.ConvertToVector256Single(p), acc);
            summ += Fp16(x[ib].M) * Fp16(y[ib].S);
        }
        return Vector256.Sum(acc) + summ;
    }

    // ---------- K-quants (256-element super-blocks against Q8_K) ----------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q2_K<T>(byte* w, byte* a, int n) where T : struct, IIntIsa
    {
        var x = (BlockQ2_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / 256;
        float sumf = 0;
        var three = Vector256.Create((byte)3);
        for (int i = 0; i < nb; i++)
        {
            byte* sc = x[i].Scales;
            var mins = Vector128.ShiftRightLogical(Vector128.Load(sc), 4);
            int summs = Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load(y[i].BSums), Avx2.ConvertToVector256Int16(mins)));
            sbyte* q8 = y[i].Qs;
            var acc = Vector256<int>.Zero;
            for (int k = 0; k < 2; k++)
            {
                var q = Load32(x[i].Qs + 32 * k);
                for (int j = 0; j < 4; j++)
                {
                    var u = Vector256.ShiftRightLogical(q.AsUInt16(), 2 * j).AsByte() & three;
                    int s = 8 * k + 2 * j;
                    acc += DotU8S8Scaled<T>(u, LoadS32(q8), sc[s] & 0xF, sc[s + 1] & 0xF);
                    q8 += 32;
                }
            }
            int isum = Vector256.Sum(acc);
            float dall = y[i].D * Fp16(x[i].D);
            float dmin = y[i].D * Fp16(x[i].DMin);
            sumf += dall * isum - dmin * summs;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q3_K<T>(byte* w, byte* a, int n) where T : struct, IIntIsa
    {
        var x = (BlockQ3_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / 256;
        float sumf = 0;
        var three = Vector256.Create((byte)3);
        var four = Vector256.Create((byte)4);
        for (int i = 0; i < nb; i++)
        {
            // unpack the 16 six-bit scales (offset by 32) into registers
            const uint kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
            byte* ps = x[i].Scales;
            uint a0 = *(uint*)ps, a1 = *(uint*)(ps + 4), tmp = *(uint*)(ps + 8);
            ulong lo = ((a0 & kmask2) | (((tmp >> 0) & kmask1) << 4)) | ((ulong)((a1 & kmask2) | (((tmp >> 2) & kmask1) << 4)) << 32);
            ulong hi = (((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)) | ((ulong)(((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)) << 32);
            var sv = Vector128.Create(lo, hi).AsSByte() - Vector128.Create((sbyte)32);
            int corr = Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load(y[i].BSums), Avx2.ConvertToVector256Int16(sv)));
            var hm = Load32(x[i].HMask);
            sbyte* q8 = y[i].Qs;
            var acc = Vector256<int>.Zero;
            for (int k = 0; k < 2; k++)
            {
                var q = Load32(x[i].Qs + 32 * k);
                for (int j = 0; j < 4; j++)
                {
                    var m = Vector256.Create((byte)(1 << (4 * k + j)));
                    var hbit = Vector256.Equals(hm & m, m) & four;
                    var u = (Vector256.ShiftRightLogical(q.AsUInt16(), 2 * j).AsByte() & three) | hbit;
                    ulong sc = k == 0 ? lo : hi;
                    int s0 = (int)(sc >> (16 * j)) & 0xFF, s1 = (int)(sc >> (16 * j + 8)) & 0xFF;
                    acc += DotU8S8Scaled<T>(u, LoadS32(q8), s0 - 32, s1 - 32);
                    q8 += 32;
                }
            }
            // values are u - 4: subtract 4 * scale * (sum of the 16 activations) per sub-block
            int isum = Vector256.Sum(acc) - 4 * corr;
            sumf += Fp16(x[i].D) * y[i].D * isum;
        }
        return sumf;
    }

    /// <summary>The 8 six-bit scales and 8 mins of Q4_K/Q5_K, one byte each, kept in registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackK4(byte* packed, out ulong scales, out ulong mins)
    {
        const uint kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
        uint u0 = ((uint*)packed)[0], u1 = ((uint*)packed)[1], u2 = ((uint*)packed)[2];
        uint s0 = u0 & kmask1;
        uint s1 = (u2 & kmask2) | (((u0 >> 6) & kmask3) << 4);
        uint m0 = u1 & kmask1;
        uint m1 = ((u2 >> 4) & kmask2) | (((u1 >> 6) & kmask3) << 4);
        scales = s0 | ((ulong)s1 << 32);
        mins = m0 | ((ulong)m1 << 32);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q4_K<T>(byte* w, byte* a, int n) where T : struct, IIntIsa
    {
        var x = (BlockQ4_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / 256;
        float sumf = 0;
        for (int i = 0; i < nb; i++)
        {
            UnpackK4(x[i].Scales, out ulong scales, out ulong mins);
            int summ = BSumDotPairs(y[i].BSums, mins);
            sbyte* q8 = y[i].Qs;
            var acc = Vector256<int>.Zero;
            var m4 = Vector256.Create((byte)0x0F);
            for (int j = 0; j < 4; j++)
            {
                var q = Load32(x[i].Qs + 32 * j);
                var lo = q & m4;
                var hi = Vector256.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m4;
                int s0 = (int)(scales >> (16 * j)) & 0xFF, s1 = (int)(scales >> (16 * j + 8)) & 0xFF;
                acc += DotU8S8Scaled<T>(lo, LoadS32(q8), s0, s0);
                acc += DotU8S8Scaled<T>(hi, LoadS32(q8 + 32), s1, s1);
                q8 += 64;
            }
            int isum = Vector256.Sum(acc);
            float d = Fp16(x[i].D) * y[i].D;
            float dmin = Fp16(x[i].DMin) * y[i].D;
            sumf += d * isum;
            sumf -= dmin * summ;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q5_K<T>(byte* w, byte* a, int n) where T : struct, IIntIsa
    {
        var x = (BlockQ5_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / 256;
        float sumf = 0;
        var sixteen = Vector256.Create((byte)16);
        var m4 = Vector256.Create((byte)0x0F);
        for (int i = 0; i < nb; i++)
        {
            UnpackK4(x[i].Scales, out ulong scales, out ulong mins);
            int summ = BSumDotPairs(y[i].BSums, mins);
            var hm = Load32(x[i].Qh);
            sbyte* q8 = y[i].Qs;
            var acc = Vector256<int>.Zero;
            for (int j = 0; j < 4; j++)
            {
                var q = Load32(x[i].Qs + 32 * j);
                var lo = q & m4;
                var hi = Vector256.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & m4;
                var m1 = Vector256.Create((byte)(1 << (2 * j)));
                var m2 = Vector256.Create((byte)(2 << (2 * j)));
                lo |= Vector256.Equals(hm & m1, m1) & sixteen;
                hi |= Vector256.Equals(hm & m2, m2) & sixteen;
                int s0 = (int)(scales >> (16 * j)) & 0xFF, s1 = (int)(scales >> (16 * j + 8)) & 0xFF;
                acc += DotU8S8Scaled<T>(lo, LoadS32(q8), s0, s0);
                acc += DotU8S8Scaled<T>(hi, LoadS32(q8 + 32), s1, s1);
                q8 += 64;
            }
            int isum = Vector256.Sum(acc);
            float d = Fp16(x[i].D) * y[i].D;
            float dmin = Fp16(x[i].DMin) * y[i].D;
            sumf += d * isum;
            sumf -= dmin * summ;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q6_K<T>(byte* w, byte* a, int n) where T : struct, IIntIsa
    {
        var x = (BlockQ6_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / 256;
        float sumf = 0;
        var m4 = Vector256.Create((byte)0x0F);
        var m2 = Vector256.Create((byte)0x30);
        for (int i = 0; i < nb; i++)
        {
            sbyte* sc = x[i].Scales;
            int corr = BSumDot16(y[i].BSums, sc);
            sbyte* q8 = y[i].Qs;
            var acc = Vector256<int>.Zero;
            for (int k = 0; k < 2; k++)
            {
                byte* ql = x[i].Ql + 64 * k;
                var qh = Load32(x[i].Qh + 32 * k);
                var l0 = Load32(ql);
                var l1 = Load32(ql + 32);
                var u1 = (l0 & m4) | (Vector256.ShiftLeft(qh.AsUInt16(), 4).AsByte() & m2);
                var u2 = (l1 & m4) | (Vector256.ShiftLeft(qh.AsUInt16(), 2).AsByte() & m2);
                var u3 = (Vector256.ShiftRightLogical(l0.AsUInt16(), 4).AsByte() & m4) | (qh & m2);
                var u4 = (Vector256.ShiftRightLogical(l1.AsUInt16(), 4).AsByte() & m4) | (Vector256.ShiftRightLogical(qh.AsUInt16(), 2).AsByte() & m2);
                sbyte* s = sc + 8 * k;
                acc += DotU8S8Scaled<T>(u1, LoadS32(q8), s[0], s[1]);
                acc += DotU8S8Scaled<T>(u2, LoadS32(q8 + 32), s[2], s[3]);
                acc += DotU8S8Scaled<T>(u3, LoadS32(q8 + 64), s[4], s[5]);
                acc += DotU8S8Scaled<T>(u4, LoadS32(q8 + 96), s[6], s[7]);
                q8 += 128;
            }
            // values are u - 32
            int isum = Vector256.Sum(acc) - 32 * corr;
            sumf += Fp16(x[i].D) * y[i].D * isum;
        }
        return sumf;
    }
}
