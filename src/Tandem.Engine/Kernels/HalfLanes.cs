using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Tandem.Engine.Kernels;

/// <summary>
/// F16 → F32 widening on vector lanes, exactly as <c>(float)Half</c> and <see cref="Tandem.Gguf.Quants.HalfTable"/> give it
/// (NaNs come out quiet, as the F16C instruction converts them), with integer and float vector operations only: .NET
/// exposes no F16 conversion instruction. The exponent is rebiased; a subnormal is built as 2^-14·(1 + m/1024) and
/// 2^-14 is subtracted (exact, and no denormal operand); infinities and NaNs keep an all-ones exponent. Each lane holds
/// one half in its low 16 bits; the upper 16 bits are ignored.
/// </summary>
public static class HalfLanes
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle(Vector256<uint> h)
    {
        var magnitude = (h & Vector256.Create(0x7fffu)) << 13;
        var exponent = magnitude & Vector256.Create(0x7c00u << 13);
        var normal = magnitude + Vector256.Create(112u << 23);
        var infNan = (normal + Vector256.Create(112u << 23))
            | (Vector256.GreaterThan(magnitude, Vector256.Create(0x7c00u << 13)) & Vector256.Create(0x400000u));
        var subnormal = ((normal + Vector256.Create(1u << 23)).AsSingle() - Vector256.Create(113u << 23).AsSingle()).AsUInt32();
        var bits = Vector256.ConditionalSelect(Vector256.Equals(exponent, Vector256.Create(0x7c00u << 13)), infNan,
            Vector256.ConditionalSelect(Vector256.Equals(exponent, Vector256<uint>.Zero), subnormal, normal));
        return (bits | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ToSingle(Vector512<uint> h)
    {
        var magnitude = (h & Vector512.Create(0x7fffu)) << 13;
        var exponent = magnitude & Vector512.Create(0x7c00u << 13);
        var normal = magnitude + Vector512.Create(112u << 23);
        var infNan = (normal + Vector512.Create(112u << 23))
            | (Vector512.GreaterThan(magnitude, Vector512.Create(0x7c00u << 13)) & Vector512.Create(0x400000u));
        var subnormal = ((normal + Vector512.Create(1u << 23)).AsSingle() - Vector512.Create(113u << 23).AsSingle()).AsUInt32();
        var bits = Vector512.ConditionalSelect(Vector512.Equals(exponent, Vector512.Create(0x7c00u << 13)), infNan,
            Vector512.ConditionalSelect(Vector512.Equals(exponent, Vector512<uint>.Zero), subnormal, normal));
        return (bits | ((h & Vector512.Create(0x8000u)) << 16)).AsSingle();
    }
}
