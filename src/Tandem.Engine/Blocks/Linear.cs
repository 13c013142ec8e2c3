using Tandem.Engine.Kernels;
using Tandem.Gguf;

namespace Tandem.Engine.Blocks;

/// <summary>
/// A weight matrix of <see cref="OutFeatures"/> rows × <see cref="InFeatures"/> columns, read in place from the
/// memory-mapped GGUF, with an optional F32 bias and the kernel chosen for its type. The exception: repacked Q4_0
/// matrices are interleaved by groups of eight rows at load (<see cref="Q4_0Lanes"/>), read from the file into their
/// own memory — decode then streams them front to back; the mapped pages of those tensors are never touched, so the
/// resident size stays that of the weights.
/// </summary>
public sealed unsafe class Linear
{
    public string Name { get; }
    public GgmlType Type { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public long RowBytes { get; }
    public byte* Data { get; }
    /// <summary>The interleaved copy of the weights (pinned) when <see cref="Data"/> points into it, else null.</summary>
    readonly byte[]? _interleaved;
    public float[]? Bias { get; }
    public MatVecKernel Kernel { get; }

    /// <summary>TANDEM_INTERLEAVE=0 keeps every matrix as in the file (for comparisons; same results, slower decode).</summary>
    static readonly bool InterleaveAtLoad = Environment.GetEnvironmentVariable("TANDEM_INTERLEAVE") != "0";

    public Linear(GgufFile file, GgufTensorInfo tensor, float[]? bias)
    {
        if (tensor.Dimensions.Length != 2)
            throw new InvalidDataException($"{System.IO.Path.GetFileName(file.Path)}: tensor '{tensor.Name}' has shape {tensor.ShapeText}; expected a 2-D matrix");
        Name = tensor.Name;
        Type = tensor.Type;
        InFeatures = checked((int)tensor.Dimensions[0]);
        OutFeatures = checked((int)tensor.Dimensions[1]);
        RowBytes = GgmlTypeInfo.Of(Type).RowBytes(InFeatures);
        if (bias is not null && bias.Length != OutFeatures)
            throw new InvalidDataException($"{System.IO.Path.GetFileName(file.Path)}: bias for '{tensor.Name}' has {bias.Length} elements; expected {OutFeatures}");
        Data = file.TensorPointer(tensor);
        Kernel = KernelRegistry.ForWeights(Type, OutFeatures, repackable: Name != "token_embd.weight");
        // Q4_K is repacked by llama.cpp too, but its eight-row GEMV is compute-bound here (31 GMAC/s per thread from
        // cache and from DRAM alike), so interleaving it measured no faster and it stays mapped.
        if (InterleaveAtLoad && Kernel is GgmlQ0Kernel { Repacked: true } && GgmlQ0Kernel.CanInterleave
            && (long)OutFeatures * RowBytes <= Array.MaxLength) // one array holds the copy; a larger matrix stays mapped
        {
            _interleaved = ReadInterleaved(file, tensor, OutFeatures, RowBytes);
            Data = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _interleaved[0]);
            Kernel = KernelRegistry.InterleavedQ4_0;
        }
        Bias = bias;
    }

    /// <summary>Whether the kernel reads the weights through the file's mapping (false: from the copy made at load).</summary>
    public bool ReadsMapping => _interleaved is null;

    /// <summary>Row <paramref name="row"/> as stored in the file.</summary>
    public byte* Row(int row) => _interleaved is null ? Data + row * RowBytes : throw new InvalidOperationException($"'{Name}' is interleaved at load; its rows are not contiguous");

    /// <summary>Reads a matrix group by group (eight rows) with positioned reads and interleaves each group.</summary>
    static byte[] ReadInterleaved(GgufFile file, GgufTensorInfo tensor, int rows, long rowBytes)
    {
        long groupBytes = Q4_0Lanes.Rows * rowBytes;
        var result = GC.AllocateUninitializedArray<byte>((int)(rows * rowBytes), pinned: true);
        var group = new byte[groupBytes];
        using var handle = File.OpenHandle(file.Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long offset = file.DataOffset + (long)tensor.Offset;
        for (long at = 0; at < result.Length; at += groupBytes)
        {
            int read = 0;
            while (read < groupBytes)
            {
                int n = RandomAccess.Read(handle, group.AsSpan(read), offset + at + read);
                if (n == 0) throw new InvalidDataException($"{System.IO.Path.GetFileName(file.Path)}: tensor '{tensor.Name}' ends early at byte {offset + at + read}");
                read += n;
            }
            Q4_0Lanes.LayOut(group, result.AsSpan((int)at, (int)groupBytes), rowBytes);
        }
        return result;
    }
}
