using Tandem.Engine.Kernels;
using Tandem.Gguf;

namespace Tandem.Engine.Blocks;

/// <summary>
/// A weight matrix of <see cref="OutFeatures"/> rows × <see cref="InFeatures"/> columns, read in place from the
/// memory-mapped GGUF (never copied), with an optional F32 bias and the kernel chosen for its type.
/// </summary>
public sealed unsafe class Linear
{
    public string Name { get; }
    public GgmlType Type { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public long RowBytes { get; }
    public byte* Data { get; }
    public float[]? Bias { get; }
    public MatVecKernel Kernel { get; }

    public Linear(GgufFile file, GgufTensorInfo tensor, float[]? bias)
    {
        if (tensor.Dimensions.Length != 2)
            throw new InvalidDataException($"{System.IO.Path.GetFileName(file.Path)}: tensor '{tensor.Name}' has shape {tensor.ShapeText}; expected a 2-D matrix");
        Name = tensor.Name;
        Type = tensor.Type;
        InFeatures = checked((int)tensor.Dimensions[0]);
        OutFeatures = checked((int)tensor.Dimensions[1]);
        RowBytes = GgmlTypeInfo.Of(Type).RowBytes(InFeatures);
        Data = file.TensorPointer(tensor);
        Kernel = KernelRegistry.ForWeights(Type, OutFeatures);
        if (bias is not null && bias.Length != OutFeatures)
            throw new InvalidDataException($"{System.IO.Path.GetFileName(file.Path)}: bias for '{tensor.Name}' has {bias.Length} elements; expected {OutFeatures}");
        Bias = bias;
    }

    public byte* Row(int row) => Data + row * RowBytes;
}
