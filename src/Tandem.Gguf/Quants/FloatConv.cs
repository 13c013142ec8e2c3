using System.Runtime.CompilerServices;

namespace Tandem.Gguf.Quants;

/// <summary>F16 / BF16 scalar conversions with ggml's rounding.</summary>
public static class FloatConv
{
    /// <summary>IEEE half bits to float (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float F16ToF32(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>Float to IEEE half bits, round-to-nearest-even (as F16C / ggml's software path).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort F32ToF16(float f) => BitConverter.HalfToUInt16Bits((Half)f);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BF16ToF32(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Float to bfloat16 bits as ggml does it: round-to-nearest-even, NaN forced quiet.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort F32ToBF16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffffu) > 0x7f800000u)
            return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
    }

    /// <summary>Round half to even for |x| &lt; 2^22, as ggml's nearest_int.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestInt(float f)
    {
        float val = f + 12582912f;
        int i = BitConverter.SingleToInt32Bits(val);
        return (i & 0x007fffff) - 0x00400000;
    }

    public static unsafe void F16ToF32(ushort* src, float* dst, int n)
    {
        for (int i = 0; i < n; i++) dst[i] = F16ToF32(src[i]);
    }

    public static unsafe void BF16ToF32(ushort* src, float* dst, int n)
    {
        for (int i = 0; i < n; i++) dst[i] = BF16ToF32(src[i]);
    }
}

/// <summary>Table of all 65536 fp16 values as float (as ggml's table_f32_f16), for fast scale loads.</summary>
public static class HalfTable
{
    static readonly float[] Table = Build();

    static float[] Build()
    {
        var t = new float[65536];
        for (int i = 0; i < t.Length; i++) t[i] = (float)BitConverter.UInt16BitsToHalf((ushort)i);
        return t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToF32(ushort bits) => Unsafe.Add(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(Table), bits);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToF32(Half h) => ToF32(BitConverter.HalfToUInt16Bits(h));
}
