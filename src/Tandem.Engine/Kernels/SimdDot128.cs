using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>Flavour of the 128-bit integer kernels.</summary>
public interface IV128Isa
{
    /// <summary>True to use ARM's sdot (Dp), false for portable widening multiplies.</summary>
    static abstract bool ArmDot { get; }
}

public struct Portable128 : IV128Isa { public static bool ArmDot => false; }
public struct ArmDot128 : IV128Isa { public static bool ArmDot => true; }

/// <summary>
/// 128-bit kernels written with the portable Vector128 API (NEON on ARM64, SSE on x64; sdot where the CPU has it).
/// Each 16-byte vector lies in one 16-element group, so K-quants are summed in integers per super-block and agree
/// with <see cref="ScalarDot"/> bit for bit.
/// </summary>
public static unsafe class SimdDot128
{
    /// <summary>Sum of the 16 products of signed bytes x and y, spread over 4 int lanes (|x|,|y| ≤ 128).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<int> Dot16<T>(Vector128<sbyte> x, Vector128<sbyte> y) where T : struct, IV128Isa
    {
        if (T.ArmDot && Dp.IsSupported)
            return Dp.DotProduct(Vector128<int>.Zero, x, y);
        var (xl, xh) = Vector128.Widen(x);
        var (yl, yh) = Vector128.Widen(y);
        var (a, b) = Vector128.Widen(xl * yl);
        var (c, d) = Vector128.Widen(xh * yh);
        return (a + b) + (c + d);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<sbyte> L(sbyte* p) => Vector128.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<byte> L(byte* p) => Vector128.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Fp16(Half h) => HalfTable.ToF32(h);

    /// <summary>Bits [16*half, 16*half+16) of a 32-bit mask to 16 bytes: 0xFF where set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<byte> BytesFromBits16(uint bits)
    {
        var v = Vector128.Create((ushort)bits).AsByte();
        var spread = Vector128.Shuffle(v, Vector128.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
        var bit = Vector128.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        return Vector128.Equals(spread & bit, bit);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q8_0<T>(byte* w, byte* a, int n) where T : struct, IV128Isa
    {
        var x = (BlockQ8_0*)w;
        var y = (BlockQ8_0*)a;
        var acc = Vector128<float>.Zero;
        for (int ib = 0; ib < n / 32; ib++)
        {
            var p = Dot16<T>(L(x[ib].Qs), L(y[ib].Qs)) + Dot16<T>(L(x[ib].Qs + 16), L(y[ib].Qs + 16));
            acc += Vector128.ConvertToSingle(p) * Vector128.Create(Fp16(x[ib].D) * Fp16(y[ib].D));
        }
        return Vector128.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q4_0<T>(byte* w, byte* a, int n) where T : struct, IV128Isa
    {
        var x = (BlockQ4_0*)w;
        var y = (BlockQ8_0*)a;
        var acc = Vector128<float>.Zero;
        var m4 = Vector128.Create((byte)0x0F);
        var eight = Vector128.Create((sbyte)8);
        for (int ib = 0; ib < n / 32; ib++)
        {
            var q = L(x[ib].Qs);
            var lo = (q & m4).AsSByte() - eight;
            var hi = Vector128.ShiftRightLogical(q, 4).AsSByte() - eight;
            var p = Dot16<T>(lo, L(y[ib].Qs)) + Dot16<T>(hi, L(y[ib].Qs + 16));
            acc += Vector128.ConvertToSingle(p) * Vector128.Create(Fp16(x[ib].D) * Fp16(y[ib].D));
        }
        return Vector128.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q5_0<T>(byte* w, byte* a, int n) where T : struct, IV128Isa
    {
        var x = (BlockQ5_0*)w;
        var y = (BlockQ8_0*)a;
        var acc = Vector128<float>.Zero;
        var m4 = Vector128.Create((byte)0x0F);
        var b4 = Vector128.Create((byte)0x10);
        var sixteen = Vector128.Create((sbyte)16);
        for (int ib = 0; ib < n / 32; ib++)
        {
            uint qh = *(uint*)x[ib].Qh;
            var q = L(x[ib].Qs);
            var lo = ((q & m4) | (BytesFromBits16(qh) & b4)).AsSByte() - sixteen;
            var hi = (Vector128.ShiftRightLogical(q, 4) | (BytesFromBits16(qh >> 16) & b4)).AsSByte() - sixteen;
            var p = Dot16<T>(lo, L(y[ib].Qs)) + Dot16<T>(hi, L(y[ib].Qs + 16));
            acc += Vector128.ConvertToSingle(p) * Vector128.Create(Fp16(x[ib].D) * Fp16(y[ib].D));
        }
        return Vector128.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q4_K<T>(byte* w, byte* a, int n) where T : struct, IV128Isa
    {
        var x = (BlockQ4_K*)w;
        var y = (BlockQ8_K*)a;
        var m4 = Vector128.Create((byte)0x0F);
        float sumf = 0;
        for (int i = 0; i < n / 256; i++)
        {
            SimdDot.UnpackK4(x[i].Scales, out ulong scales, out ulong mins);
            short* bs = y[i].BSums;
            int summ = 0;
            for (int j = 0; j < 8; j++) summ += (bs[2 * j] + bs[2 * j + 1]) * (int)((mins >> (8 * j)) & 0xFF);
            sbyte* q8 = y[i].Qs;
            var acc = Vector128<int>.Zero;
            for (int j = 0; j < 4; j++)
            {
                byte* q = x[i].Qs + 32 * j;
                var q0 = L(q);
                var q1 = L(q + 16);
                var lo = Dot16<T>((q0 & m4).AsSByte(), L(q8)) + Dot16<T>((q1 & m4).AsSByte(), L(q8 + 16));
                var hi = Dot16<T>(Vector128.ShiftRightLogical(q0, 4).AsSByte(), L(q8 + 32)) + Dot16<T>(Vector128.ShiftRightLogical(q1, 4).AsSByte(), L(q8 + 48));
                acc += lo * (int)((scales >> (16 * j)) & 0xFF) + hi * (int)((scales >> (16 * j + 8)) & 0xFF);
                q8 += 64;
            }
            int isum = Vector128.Sum(acc);
            float d = Fp16(x[i].D) * y[i].D;
            float dmin = Fp16(x[i].DMin) * y[i].D;
            sumf += d * isum;
            sumf -= dmin * summ;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q6_K<T>(byte* w, byte* a, int n) where T : struct, IV128Isa
    {
        var x = (BlockQ6_K*)w;
        var y = (BlockQ8_K*)a;
        var m4 = Vector128.Create((byte)0x0F);
        var m2 = Vector128.Create((byte)0x30);
        float sumf = 0;
        for (int i = 0; i < n / 256; i++)
        {
            sbyte* sc = x[i].Scales;
            short* bs = y[i].BSums;
            int corr = 0;
            for (int j = 0; j < 16; j++) corr += sc[j] * bs[j];
            sbyte* q8 = y[i].Qs;
            var acc = Vector128<int>.Zero;
            for (int k = 0; k < 2; k++)
            {
                byte* ql = x[i].Ql + 64 * k;
                byte* qh = x[i].Qh + 32 * k;
                sbyte* s = sc + 8 * k;
                for (int h = 0; h < 2; h++)
                {
                    var l0 = L(ql + 16 * h);
                    var l1 = L(ql + 32 + 16 * h);
                    var hb = L(qh + 16 * h);
                    var u1 = (l0 & m4) | (Vector128.ShiftLeft(hb, 4) & m2);
                    var u2 = (l1 & m4) | (Vector128.ShiftLeft(hb, 2) & m2);
                    var u3 = Vector128.ShiftRightLogical(l0, 4) | (hb & m2);
                    var u4 = Vector128.ShiftRightLogical(l1, 4) | (Vector128.ShiftRightLogical(hb, 2) & m2);
                    acc += Dot16<T>(u1.AsSByte(), L(q8 + 16 * h)) * s[h]
                         + Dot16<T>(u2.AsSByte(), L(q8 + 32 + 16 * h)) * s[2 + h]
                         + Dot16<T>(u3.AsSByte(), L(q8 + 64 + 16 * h)) * s[4 + h]
                         + Dot16<T>(u4.AsSByte(), L(q8 + 96 + 16 * h)) * s[6 + h];
                }
                q8 += 128;
            }
            int isum = Vector128.Sum(acc) - 32 * corr;
            sumf += Fp16(x[i].D) * y[i].D * isum;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q4_1<T>(byte* w, byte* a, int n) where T : struct, IV128Isa
    {
        var x = (BlockQ4_1*)w;
        var y = (BlockQ8_1*)a;
        var acc = Vector128<float>.Zero;
        var m4 = Vector128.Create((byte)0x0F);
        float summ = 0;
        for (int ib = 0; ib < n / 32; ib++)
        {
            var q = L(x[ib].Qs);
            var p = Dot16<T>((q & m4).AsSByte(), L(y[ib].Qs)) + Dot16<T>(Vector128.ShiftRightLogical(q, 4).AsSByte(), L(y[ib].Qs + 16));
            acc += Vector128.ConvertToSingle(p) * Vector128.Create(Fp16(x[ib].D) * Fp16(y[ib].D));
            summ += Fp16(x[ib].M) * Fp16(y[ib].S);
        }
        return Vector128.Sum(acc) + summ;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q5_1<T>(byte* w, byte* a, int n) where T : struct, IV128Isa
    {
        var x = (BlockQ5_1*)w;
        var y = (BlockQ8_1*)a;
        var acc = Vector128<float>.Zero;
        var m4 = Vector128.Create((byte)0x0F);
        var b4 = Vector128.Create((byte)0x10);
        float summ = 0;
        for (int ib = 0; ib < n / 32; ib++)
        {
            uint qh = *(uint*)x[ib].Qh;
            var q = L(x[ib].Qs);
            var lo = (q & m4) | (BytesFromBits16(qh) & b4);
            var hi = Vector128.ShiftRightLogical(q, 4) | (BytesFromBits16(qh >> 16) & b4);
            var p = Dot16<T>(lo.AsSByte(), L(y[ib].Qs)) + Dot16<T>(hi.AsSByte(), L(y[ib].Qs + 16));
            acc += Vector128.ConvertToSingle(p) * Vector128.Create(Fp16(x[ib].D) * Fp16(y[ib].D));
            summ += Fp16(x[ib].M) * Fp16(y[ib].S);
        }
        return Vector128.Sum(acc) + summ;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q2_K<T>(byte* w, byte* a, int n) where T : struct, IV128Isa
    {
        var x = (BlockQ2_K*)w;
        var y = (BlockQ8_K*)a;
        var three = Vector128.Create((byte)3);
        float sumf = 0;
        for (int i = 0; i < n / 256; i++)
        {
            byte* sc = x[i].Scales;
            short* bs = y[i].BSums;
            int summs = 0;
            for (int j = 0; j < 16; j++) summs += bs[j] * (sc[j] >> 4);
            sbyte* q8 = y[i].Qs;
            var acc = Vector128<int>.Zero;
            for (int k = 0; k < 2; k++)
            {
                var q0 = L(x[i].Qs + 32 * k);
                var q1 = L(x[i].Qs + 32 * k + 16);
                for (int j = 0; j < 4; j++)
                {
                    int s = 8 * k + 2 * j;
                    acc += Dot16<T>((Vector128.ShiftRightLogical(q0, 2 * j) & three).AsSByte(), L(q8)) * (sc[s] & 0xF)
                         + Dot16<T>((Vector128.ShiftRightLogical(q1, 2 * j) & three).AsSByte(), L(q8 + 16)) * (sc[s + 1] & 0xF);
                    q8 += 32;
                }
            }
            int isum = Vector128.Sum(acc);
            float dall = y[i].D * Fp16(x[i].D);
            float dmin = y[i].D * Fp16(x[i].DMin);
            sumf += dall * isum - dmin * summs;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q3_K<T>(byte* w, byte* a, int n) where T : struct, IV128Isa
    {
        var x = (BlockQ3_K*)w;
        var y = (BlockQ8_K*)a;
        var three = Vector128.Create((byte)3);
        var four = Vector128.Create((byte)4);
        float sumf = 0;
        for (int i = 0; i < n / 256; i++)
        {
            const uint kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
            byte* ps = x[i].Scales;
            uint a0 = *(uint*)ps, a1 = *(uint*)(ps + 4), tmp = *(uint*)(ps + 8);
            ulong lo = ((a0 & kmask2) | (((tmp >> 0) & kmask1) << 4)) | ((ulong)((a1 & kmask2) | (((tmp >> 2) & kmask1) << 4)) << 32);
            ulong hi = (((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)) | ((ulong)(((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)) << 32);
            short* bs = y[i].BSums;
            int corr = 0;
            for (int j = 0; j < 8; j++)
                corr += ((int)((lo >> (8 * j)) & 0xFF) - 32) * bs[j] + ((int)((hi >> (8 * j)) & 0xFF) - 32) * bs[8 + j];
            var hm0 = L(x[i].HMask);
            var hm1 = L(x[i].HMask + 16);
            sbyte* q8 = y[i].Qs;
            var acc = Vector128<int>.Zero;
            for (int k = 0; k < 2; k++)
            {
                var q0 = L(x[i].Qs + 32 * k);
                var q1 = L(x[i].Qs + 32 * k + 16);
                ulong sc = k == 0 ? lo : hi;
                for (int j = 0; j < 4; j++)
                {
                    var m = Vector128.Create((byte)(1 << (4 * k + j)));
                    var u0 = (Vector128.ShiftRightLogical(q0, 2 * j) & three) | (Vector128.Equals(hm0 & m, m) & four);
                    var u1 = (Vector128.ShiftRightLogical(q1, 2 * j) & three) | (Vector128.Equals(hm1 & m, m) & four);
                    int s0 = (int)((sc >> (16 * j)) & 0xFF) - 32, s1 = (int)((sc >> (16 * j + 8)) & 0xFF) - 32;
                    acc += Dot16<T>(u0.AsSByte(), L(q8)) * s0 + Dot16<T>(u1.AsSByte(), L(q8 + 16)) * s1;
                    q8 += 32;
                }
            }
            int isum = Vector128.Sum(acc) - 4 * corr;
            sumf += Fp16(x[i].D) * y[i].D * isum;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q5_K<T>(byte* w, byte* a, int n) where T : struct, IV128Isa
    {
        var x = (BlockQ5_K*)w;
        var y = (BlockQ8_K*)a;
        var m4 = Vector128.Create((byte)0x0F);
        var sixteen = Vector128.Create((byte)16);
        float sumf = 0;
        for (int i = 0; i < n / 256; i++)
        {
            SimdDot.UnpackK4(x[i].Scales, out ulong scales, out ulong mins);
            short* bs = y[i].BSums;
            int summ = 0;
            for (int j = 0; j < 8; j++) summ += (bs[2 * j] + bs[2 * j + 1]) * (int)((mins >> (8 * j)) & 0xFF);
            var hm0 = L(x[i].Qh);
            var hm1 = L(x[i].Qh + 16);
            sbyte* q8 = y[i].Qs;
            var acc = Vector128<int>.Zero;
            for (int j = 0; j < 4; j++)
            {
                byte* q = x[i].Qs + 32 * j;
                var q0 = L(q);
                var q1 = L(q + 16);
                var b1 = Vector128.Create((byte)(1 << (2 * j)));
                var b2 = Vector128.Create((byte)(2 << (2 * j)));
                var lo0 = (q0 & m4) | (Vector128.Equals(hm0 & b1, b1) & sixteen);
                var lo1 = (q1 & m4) | (Vector128.Equals(hm1 & b1, b1) & sixteen);
                var hi0 = Vector128.ShiftRightLogical(q0, 4) | (Vector128.Equals(hm0 & b2, b2) & sixteen);
                var hi1 = Vector128.ShiftRightLogical(q1, 4) | (Vector128.Equals(hm1 & b2, b2) & sixteen);
                var lo = Dot16<T>(lo0.AsSByte(), L(q8)) + Dot16<T>(lo1.AsSByte(), L(q8 + 16));
                var hi = Dot16<T>(hi0.AsSByte(), L(q8 + 32)) + Dot16<T>(hi1.AsSByte(), L(q8 + 48));
                acc += lo * (int)((scales >> (16 * j)) & 0xFF) + hi * (int)((scales >> (16 * j + 8)) & 0xFF);
                q8 += 64;
            }
            int isum = Vector128.Sum(acc);
            float d = Fp16(x[i].D) * y[i].D;
            float dmin = Fp16(x[i].DMin) * y[i].D;
            sumf += d * isum;
            sumf -= dmin * summ;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float BF16(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        var s0 = Vector128<float>.Zero; var s1 = s0;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var (xl, xh) = Vector128.Widen(Vector128.Load(x + i));
            var (yl, yh) = Vector128.Widen(Vector128.Load(y + i));
            s0 += (xl << 16).AsSingle() * (yl << 16).AsSingle();
            s1 += (xh << 16).AsSingle() * (yh << 16).AsSingle();
        }
        float sum = Vector128.Sum(s0 + s1);
        for (; i < n; i++) sum += FloatConv.BF16ToF32(x[i]) * FloatConv.BF16ToF32(y[i]);
        return sum;
    }

    /// <summary>4 fp16 values (zero-extended) to float, exact (see SimdDot.HalfToSingle).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<float> HalfToSingle(Vector128<uint> h)
    {
        var u = h.AsInt32();
        var em = u & Vector128.Create(0x7fff);
        var f = ((em << 13).AsSingle() * Vector128.Create(5.192296858534828e33f)).AsInt32(); // 2^112
        var special = Vector128.GreaterThan(em, Vector128.Create(0x7bff)) & Vector128.Create(0x7f800000);
        var sign = (u << 16) & Vector128.Create(int.MinValue);
        return (f | special | sign).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float F16(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        var s0 = Vector128<float>.Zero; var s1 = s0;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var (xl, xh) = Vector128.Widen(Vector128.Load(x + i));
            var (yl, yh) = Vector128.Widen(Vector128.Load(y + i));
            s0 += HalfToSingle(xl) * HalfToSingle(yl);
            s1 += HalfToSingle(xh) * HalfToSingle(yh);
        }
        float sum = Vector128.Sum(s0 + s1);
        for (; i < n; i++) sum += HalfTable.ToF32(x[i]) * HalfTable.ToF32(y[i]);
        return sum;
    }
}
