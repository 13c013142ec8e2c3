using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Tandem.Gguf;

namespace Tandem.Engine.Kernels;

/// <summary>SIMD kernels usable on this CPU, detected at run time, listed slowest to fastest.</summary>
public static unsafe class SimdKernels
{
    static bool HasAvx2 => Avx2.IsSupported && Fma.IsSupported;

    public static IReadOnlyList<MatVecKernel> Create(GgmlType type)
    {
        var list = new List<MatVecKernel>();
        switch (type)
        {
            case GgmlType.F32:
                if (Vector128.IsHardwareAccelerated) list.Add(new FnKernel(type, "vector128", &SimdDot.F32Vector128));
                if (HasAvx2) list.Add(new FnKernel(type, "avx2", &SimdDot.F32Avx2));
                if (Avx512F.IsSupported) list.Add(new FnKernel(type, "avx512", &SimdDot.F32Avx512));
                break;
            case GgmlType.F16:
                if (Vector128.IsHardwareAccelerated) list.Add(new FnKernel(type, "vector128", &SimdDot128.F16));
                if (HasAvx2) list.Add(new FnKernel(type, "avx2", &SimdDot.F16Avx2));
                if (Avx512F.IsSupported) list.Add(new FnKernel(type, "avx512", &SimdDot.F16Avx512));
                break;
            case GgmlType.BF16:
                if (Vector128.IsHardwareAccelerated) list.Add(new FnKernel(type, "vector128", &SimdDot128.BF16));
                if (HasAvx2) list.Add(new FnKernel(type, "avx2", &SimdDot.BF16Avx2));
                if (Avx512F.IsSupported) list.Add(new FnKernel(type, "avx512", &SimdDot.BF16Avx512));
                break;
            default:
                AddInt(list, type);
                break;
        }
        return list;
    }

    static void AddInt(List<MatVecKernel> list, GgmlType type)
    {
        if (Vector128.IsHardwareAccelerated && V128Dot<Portable128>(type) is var p && p != null)
        {
            list.Add(new FnKernel(type, "vector128", p));
            if (Dp.IsSupported) list.Add(new FnKernel(type, "neon-dotprod", V128Dot<ArmDot128>(type)));
        }
        if (!HasAvx2) return;
        list.Add(new FnKernel(type, "avx2", IntDot<Avx2Isa>(type)));
        if (AvxVnni.IsSupported)
            list.Add(new FnKernel(type, "avx-vnni", IntDot<AvxVnniIsa>(type)));
    }

    static delegate*<byte*, byte*, int, float> V128Dot<T>(GgmlType type) where T : struct, IV128Isa => type switch
    {
        GgmlType.Q8_0 => &SimdDot128.Q8_0<T>,
        GgmlType.Q4_0 => &SimdDot128.Q4_0<T>,
        GgmlType.Q5_0 => &SimdDot128.Q5_0<T>,
        GgmlType.Q4_1 => &SimdDot128.Q4_1<T>,
        GgmlType.Q5_1 => &SimdDot128.Q5_1<T>,
        GgmlType.Q2_K => &SimdDot128.Q2_K<T>,
        GgmlType.Q3_K => &SimdDot128.Q3_K<T>,
        GgmlType.Q4_K => &SimdDot128.Q4_K<T>,
        GgmlType.Q5_K => &SimdDot128.Q5_K<T>,
        GgmlType.Q6_K => &SimdDot128.Q6_K<T>,
        _ => null,
    };

    static delegate*<byte*, byte*, int, float> IntDot<T>(GgmlType type) where T : struct, IIntIsa => type switch
    {
        GgmlType.Q8_0 => &SimdDot.Q8_0<T>,
        GgmlType.Q4_0 => &SimdDot.Q4_0<T>,
        GgmlType.Q4_1 => &SimdDot.Q4_1<T>,
        GgmlType.Q5_0 => &SimdDot.Q5_0<T>,
        GgmlType.Q5_1 => &SimdDot.Q5_1<T>,
        GgmlType.Q2_K => &SimdDot.Q2_K<T>,
        GgmlType.Q3_K => &SimdDot.Q3_K<T>,
        GgmlType.Q4_K => &SimdDot.Q4_K<T>,
        GgmlType.Q5_K => &SimdDot.Q5_K<T>,
        GgmlType.Q6_K => &SimdDot.Q6_K<T>,
        _ => throw new NotSupportedException($"No SIMD kernel for {type}."),
    };
}
