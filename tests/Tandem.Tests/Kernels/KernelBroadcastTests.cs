using System.Runtime.Intrinsics.X86;
using Tandem.Engine.Kernels;

namespace Tandem.Tests.Kernels;

/// <summary>
/// The kernels' 32-byte broadcast must read exactly the 32 bytes at its address, wherever the address falls. .NET
/// 10.0.12's <c>Avx512F.BroadcastVector256ToVector512</c> reads [reg + 32k] for [reg + 16k], so the kernels use
/// <see cref="GgmlQ0Dot.BroadcastHalf"/> instead; this pins that helper to the right bytes at every small
/// displacement, multiples of 16 included.
/// </summary>
public unsafe class KernelBroadcastTests
{
    [Fact]
    public void BroadcastHalfReadsTheBytesAtItsAddressInBothHalves()
    {
        if (!Avx512BW.IsSupported) return; // only the AVX-512 tiles call it
        var bytes = new byte[256];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)(i * 7 + 3);
        fixed (byte* p = bytes)
        {
            for (int displacement = 0; displacement <= 128; displacement++)
            {
                var v = Displaced(p, displacement);
                for (int i = 0; i < 64; i++)
                    Assert.True(bytes[displacement + i % 32] == v[i], $"displacement {displacement}, byte {i}: {v[i]} vs {bytes[displacement + i % 32]}");
            }
        }
    }

    // Constant displacements, as kernels write them (a field or block offset added to a pointer), compiled straight to
    // optimized code as the kernels are, so the JIT folds them into the instruction's address (where the bug lives).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    static System.Runtime.Intrinsics.Vector512<byte> Displaced(byte* p, int d) => d switch
    {
        16 => GgmlQ0Dot.BroadcastHalf(p + 16),
        32 => GgmlQ0Dot.BroadcastHalf(p + 32),
        48 => GgmlQ0Dot.BroadcastHalf(p + 48),
        64 => GgmlQ0Dot.BroadcastHalf(p + 64),
        96 => GgmlQ0Dot.BroadcastHalf(p + 96),
        128 => GgmlQ0Dot.BroadcastHalf(p + 128),
        _ => GgmlQ0Dot.BroadcastHalf(p + d),
    };
}
