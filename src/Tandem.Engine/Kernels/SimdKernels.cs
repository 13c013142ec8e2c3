using Tandem.Gguf;

namespace Tandem.Engine.Kernels;

/// <summary>SIMD kernels available on this CPU, slowest to fastest.</summary>
public static unsafe class SimdKernels
{
    public static IReadOnlyList<MatVecKernel> Create(GgmlType type)
    {
        var list = new List<MatVecKernel>();
        return list;
    }
}
