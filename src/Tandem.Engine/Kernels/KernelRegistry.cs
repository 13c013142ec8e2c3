using Tandem.Gguf;

namespace Tandem.Engine.Kernels;

/// <summary>SKELETON (being written): chooses kernels by weight type and CPU features at run time.</summary>
public static class KernelRegistry
{
    /// <summary>The fastest kernel this CPU supports for the weight type.</summary>
    public static MatVecKernel For(GgmlType weightType) => throw new NotImplementedException();

    /// <summary>The scalar reference kernel for the weight type.</summary>
    public static MatVecKernel Reference(GgmlType weightType) => throw new NotImplementedException();

    /// <summary>Dequantizes <paramref name="n"/> elements of one row of the given type to F32.</summary>
    public static unsafe void DequantizeRow(GgmlType type, byte* src, float* dst, int n) => throw new NotImplementedException();
}
