using System.Runtime.InteropServices;

namespace Tandem.Gguf.Quants;

// Block layouts of ggml's quantized types (see ggml-common.h for the format definitions).
// Field order and sizes are the on-disk layout; all structs are packed.

/// <summary>Common block constants.</summary>
public static class QK
{
    public const int Q4_0 = 32, Q4_1 = 32, Q5_0 = 32, Q5_1 = 32, Q8_0 = 32, Q8_1 = 32;
    /// <summary>Super-block size of the K-quants.</summary>
    public const int K = 256;
    /// <summary>Bytes of packed 6-bit scales/mins in Q3_K/Q4_K/Q5_K.</summary>
    public const int KScaleSize = 12;
}

/// <summary>32 weights: 4-bit quants q, value = d * (q - 8).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ4_0
{
    public Half D;
    public fixed byte Qs[16];
}

/// <summary>32 weights: 4-bit quants q, value = d * q + m.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ4_1
{
    public Half D;
    public Half M;
    public fixed byte Qs[16];
}

/// <summary>32 weights: 5-bit quants (low nibbles in qs, 5th bits in qh), value = d * (q - 16).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ5_0
{
    public Half D;
    public fixed byte Qh[4];
    public fixed byte Qs[16];
}

/// <summary>32 weights: 5-bit quants, value = d * q + m.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ5_1
{
    public Half D;
    public Half M;
    public fixed byte Qh[4];
    public fixed byte Qs[16];
}

/// <summary>32 weights: 8-bit signed quants, value = d * q.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ8_0
{
    public Half D;
    public fixed sbyte Qs[32];
}

/// <summary>32 activations: 8-bit signed quants, value = d * q; s = d * sum(q).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ8_1
{
    public Half D;
    public Half S;
    public fixed sbyte Qs[32];
}

/// <summary>256 weights: 16 sub-blocks of 16, 2-bit quants, 4-bit scales and mins.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ2_K
{
    public fixed byte Scales[16];
    public fixed byte Qs[64];
    public Half D;
    public Half DMin;
}

/// <summary>256 weights: 3-bit quants (2 low bits in qs, high bit in hmask), 6-bit signed scales.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ3_K
{
    public fixed byte HMask[32];
    public fixed byte Qs[64];
    public fixed byte Scales[12];
    public Half D;
}

/// <summary>256 weights: 8 sub-blocks of 32, 4-bit quants, 6-bit scales and mins.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ4_K
{
    public Half D;
    public Half DMin;
    public fixed byte Scales[12];
    public fixed byte Qs[128];
}

/// <summary>256 weights: 8 sub-blocks of 32, 5-bit quants, 6-bit scales and mins.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ5_K
{
    public Half D;
    public Half DMin;
    public fixed byte Scales[12];
    public fixed byte Qh[32];
    public fixed byte Qs[128];
}

/// <summary>256 weights: 16 sub-blocks of 16, 6-bit quants (4 low bits in ql, 2 high in qh), 8-bit signed scales.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ6_K
{
    public fixed byte Ql[128];
    public fixed byte Qh[64];
    public fixed sbyte Scales[16];
    public Half D;
}

/// <summary>256 activations: float scale, 8-bit quants, sums of each group of 16 quants.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ8_K
{
    public float D;
    public fixed sbyte Qs[256];
    public fixed short BSums[16];
}
