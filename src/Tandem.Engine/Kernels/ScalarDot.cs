using System.Runtime.CompilerServices;
using Tandem.Gguf.Quants;

namespace Tandem.Engine.Kernels;

/// <summary>
/// Scalar reference dot products, computed as ggml's reference vec_dot functions do:
/// F32/F16/BF16 products summed in double; quantized types sum integer products per block, then scale.
/// </summary>
public static unsafe class ScalarDot
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float F32(byte* w, byte* a, int n)
    {
        float* x = (float*)w, y = (float*)a;
        double s = 0;
        for (int i = 0; i < n; i++) s += x[i] * y[i];
        return (float)s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float F16(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        double s = 0;
        for (int i = 0; i < n; i++) s += HalfTable.ToF32(x[i]) * HalfTable.ToF32(y[i]);
        return (float)s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float BF16(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        double s = 0;
        for (int i = 0; i < n; i++) s += FloatConv.BF16ToF32(x[i]) * FloatConv.BF16ToF32(y[i]);
        return (float)s;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q4_0(byte* w, byte* a, int n)
    {
        var x = (BlockQ4_0*)w;
        var y = (BlockQ8_0*)a;
        int nb = n / 32;
        float sumf = 0;
        for (int ib = 0; ib < nb; ib++)
        {
            int s0 = 0, s1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int b = x[ib].Qs[j];
                s0 += ((b & 0xF) - 8) * y[ib].Qs[j];
                s1 += ((b >> 4) - 8) * y[ib].Qs[j + 16];
            }
            sumf += (s0 + s1) * (float)x[ib].D * (float)y[ib].D;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q4_1(byte* w, byte* a, int n)
    {
        var x = (BlockQ4_1*)w;
        var y = (BlockQ8_1*)a;
        int nb = n / 32;
        float sumf = 0;
        for (int ib = 0; ib < nb; ib++)
        {
            int s0 = 0, s1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int b = x[ib].Qs[j];
                s0 += (b & 0xF) * y[ib].Qs[j];
                s1 += (b >> 4) * y[ib].Qs[j + 16];
            }
            sumf += ((float)x[ib].D * (float)y[ib].D) * (s0 + s1) + (float)x[ib].M * (float)y[ib].S;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q5_0(byte* w, byte* a, int n)
    {
        var x = (BlockQ5_0*)w;
        var y = (BlockQ8_0*)a;
        int nb = n / 32;
        float sumf = 0;
        for (int ib = 0; ib < nb; ib++)
        {
            uint qh = *(uint*)x[ib].Qh;
            int s0 = 0, s1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int b = x[ib].Qs[j];
                int h0 = (int)((qh >> j) << 4) & 0x10;
                int h1 = (int)(qh >> (j + 12)) & 0x10;
                s0 += (((b & 0xF) | h0) - 16) * y[ib].Qs[j];
                s1 += (((b >> 4) | h1) - 16) * y[ib].Qs[j + 16];
            }
            sumf += ((float)x[ib].D * (float)y[ib].D) * (s0 + s1);
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q5_1(byte* w, byte* a, int n)
    {
        var x = (BlockQ5_1*)w;
        var y = (BlockQ8_1*)a;
        int nb = n / 32;
        float sumf = 0;
        for (int ib = 0; ib < nb; ib++)
        {
            uint qh = *(uint*)x[ib].Qh;
            int s0 = 0, s1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int b = x[ib].Qs[j];
                int h0 = (int)((qh >> j) << 4) & 0x10;
                int h1 = (int)(qh >> (j + 12)) & 0x10;
                s0 += ((b & 0xF) | h0) * y[ib].Qs[j];
                s1 += ((b >> 4) | h1) * y[ib].Qs[j + 16];
            }
            sumf += ((float)x[ib].D * (float)y[ib].D) * (s0 + s1) + (float)x[ib].M * (float)y[ib].S;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q8_0(byte* w, byte* a, int n)
    {
        var x = (BlockQ8_0*)w;
        var y = (BlockQ8_0*)a;
        int nb = n / 32;
        float sumf = 0;
        for (int ib = 0; ib < nb; ib++)
        {
            int s = 0;
            for (int j = 0; j < 32; j++) s += x[ib].Qs[j] * y[ib].Qs[j];
            sumf += s * ((float)x[ib].D * (float)y[ib].D);
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q2_K(byte* w, byte* a, int n)
    {
        var x = (BlockQ2_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / 256;
        float sumf = 0;
        for (int i = 0; i < nb; i++)
        {
            byte* q2 = x[i].Qs;
            sbyte* q8 = y[i].Qs;
            byte* sc = x[i].Scales;
            int summs = 0;
            for (int j = 0; j < 16; j++) summs += y[i].BSums[j] * (sc[j] >> 4);
            float dall = y[i].D * (float)x[i].D;
            float dmin = y[i].D * (float)x[i].DMin;
            int isum = 0, isc = 0;
            for (int k = 0; k < 2; k++)
            {
                int shift = 0;
                for (int j = 0; j < 4; j++)
                {
                    int d = sc[isc++] & 0xF;
                    int s = 0;
                    for (int l = 0; l < 16; l++) s += q8[l] * ((q2[l] >> shift) & 3);
                    isum += d * s;
                    d = sc[isc++] & 0xF;
                    s = 0;
                    for (int l = 16; l < 32; l++) s += q8[l] * ((q2[l] >> shift) & 3);
                    isum += d * s;
                    shift += 2;
                    q8 += 32;
                }
                q2 += 32;
            }
            sumf += dall * isum - dmin * summs;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q3_K(byte* w, byte* a, int n)
    {
        var x = (BlockQ3_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / 256;
        sbyte* scales = stackalloc sbyte[16];
        float sumf = 0;
        for (int i = 0; i < nb; i++)
        {
            byte* q3 = x[i].Qs;
            byte* hm = x[i].HMask;
            sbyte* q8 = y[i].Qs;
            Dequantize.UnpackQ3KScales(x[i].Scales, scales);
            int isum = 0, isc = 0, m = 1;
            for (int k = 0; k < 2; k++)
            {
                for (int shift = 0; shift < 8; shift += 2)
                {
                    int s = 0;
                    for (int l = 0; l < 16; l++) s += q8[l] * (((q3[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    isum += (scales[isc++] - 32) * s;
                    s = 0;
                    for (int l = 16; l < 32; l++) s += q8[l] * (((q3[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    isum += (scales[isc++] - 32) * s;
                    q8 += 32;
                    m <<= 1;
                }
                q3 += 32;
            }
            sumf += (float)x[i].D * y[i].D * isum;
        }
        return sumf;
    }

    /// <summary>Unpacks the 8 scales and 8 mins of Q4_K/Q5_K.</summary>
    public static void UnpackK4(byte* packed, byte* scales8, byte* mins8)
    {
        for (int j = 0; j < 8; j++)
        {
            Dequantize.ScaleMinK4(j, packed, out int d, out int m);
            scales8[j] = (byte)d;
            mins8[j] = (byte)m;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q4_K(byte* w, byte* a, int n)
    {
        var x = (BlockQ4_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / 256;
        byte* scales = stackalloc byte[8];
        byte* mins = stackalloc byte[8];
        float sumf = 0;
        for (int i = 0; i < nb; i++)
        {
            byte* q4 = x[i].Qs;
            sbyte* q8 = y[i].Qs;
            UnpackK4(x[i].Scales, scales, mins);
            int summ = 0;
            for (int j = 0; j < 16; j++) summ += y[i].BSums[j] * mins[j / 2];
            int isum = 0;
            for (int j = 0; j < 4; j++)
            {
                int s0 = 0, s1 = 0;
                for (int l = 0; l < 32; l++)
                {
                    s0 += (q4[l] & 0xF) * q8[l];
                    s1 += (q4[l] >> 4) * q8[l + 32];
                }
                isum += scales[2 * j] * s0 + scales[2 * j + 1] * s1;
                q4 += 32;
                q8 += 64;
            }
            float d = (float)x[i].D * y[i].D;
            float dmin = (float)x[i].DMin * y[i].D;
            sumf += d * isum;
            sumf -= dmin * summ;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q5_K(byte* w, byte* a, int n)
    {
        var x = (BlockQ5_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / 256;
        byte* scales = stackalloc byte[8];
        byte* mins = stackalloc byte[8];
        float sumf = 0;
        for (int i = 0; i < nb; i++)
        {
            byte* q4 = x[i].Qs;
            byte* hm = x[i].Qh;
            sbyte* q8 = y[i].Qs;
            UnpackK4(x[i].Scales, scales, mins);
            int summ = 0;
            for (int j = 0; j < 16; j++) summ += y[i].BSums[j] * mins[j / 2];
            int isum = 0;
            int m1 = 1, m2 = 2;
            for (int j = 0; j < 4; j++)
            {
                int s0 = 0, s1 = 0;
                for (int l = 0; l < 32; l++)
                {
                    s0 += ((q4[l] & 0xF) + ((hm[l] & m1) != 0 ? 16 : 0)) * q8[l];
                    s1 += ((q4[l] >> 4) + ((hm[l] & m2) != 0 ? 16 : 0)) * q8[l + 32];
                }
                isum += scales[2 * j] * s0 + scales[2 * j + 1] * s1;
                q4 += 32;
                q8 += 64;
                m1 <<= 2;
                m2 <<= 2;
            }
            float d = (float)x[i].D * y[i].D;
            float dmin = (float)x[i].DMin * y[i].D;
            sumf += d * isum;
            sumf -= dmin * summ;
        }
        return sumf;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Q6_K(byte* w, byte* a, int n)
    {
        var x = (BlockQ6_K*)w;
        var y = (BlockQ8_K*)a;
        int nb = n / 256;
        float sumf = 0;
        for (int i = 0; i < nb; i++)
        {
            byte* ql = x[i].Ql;
            byte* qh = x[i].Qh;
            sbyte* sc = x[i].Scales;
            sbyte* q8 = y[i].Qs;
            int isum = 0;
            for (int k = 0; k < 2; k++)
            {
                // sub-blocks of 16: is = 0..7 in this half, elements [16*is, 16*is+16)
                for (int half = 0; half < 2; half++)
                {
                    int s1 = 0, s2 = 0, s3 = 0, s4 = 0;
                    for (int l = 16 * half; l < 16 * half + 16; l++)
                    {
                        int a1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                        int a2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                        int a3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                        int a4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                        s1 += a1 * q8[l];
                        s2 += a2 * q8[l + 32];
                        s3 += a3 * q8[l + 64];
                        s4 += a4 * q8[l + 96];
                    }
                    isum += sc[half] * s1 + sc[half + 2] * s2 + sc[half + 4] * s3 + sc[half + 6] * s4;
                }
                ql += 64;
                qh += 32;
                sc += 8;
                q8 += 128;
            }
            sumf += (float)x[i].D * y[i].D * isum;
        }
        return sumf;
    }
}
