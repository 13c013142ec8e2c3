using Tandem.Engine.Kernels;
using Tandem.Gguf;

namespace Tandem.Engine.Blocks;

/// <summary>
/// A weight matrix of <see cref="OutFeatures"/> rows × <see cref="InFeatures"/> columns, read in place from the
/// memory-mapped GGUF, with an optional F32 bias and the kernel chosen for its type. The exceptions: repacked Q4_0
/// matrices and Q5_0 ones (rows a multiple of 8) are interleaved by groups of eight rows at load (<see cref="Q4_0Lanes"/>,
/// <see cref="Q5_0Lanes"/>), read from the file into their own memory — decode then streams them front to back; their
/// mapped pages are given back after loading, so the resident size stays that of the weights.
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
        // cache and from DRAM alike), so interleaving it measured no faster and it stays mapped. llama.cpp keeps Q5_0 as
        // in the file; re-laid, the one-token product runs 34 → 50 GMAC/s per thread in the same order (Q5_0Lanes).
        var layout = !InterleaveAtLoad || !GgmlQ0Kernel.CanInterleave || (long)OutFeatures * RowBytes > Array.MaxLength ? null // one array holds the copy
            : Kernel is GgmlQ0Kernel { Repacked: true } ? (Q4_0Lanes.LayOut, KernelRegistry.InterleavedQ4_0)
            : Type == GgmlType.Q5_0 && OutFeatures % Q5_0Lanes.Rows == 0 && Name != "token_embd.weight" ? (Q5_0Lanes.LayOut, KernelRegistry.InterleavedQ5_0)
            : ((LayOutGroup, MatVecKernel)?)null;
        if (layout is ({ } layOut, { } kernel))
        {
            _interleaved = ReadInterleaved(file, tensor, OutFeatures, RowBytes, layOut);
            Data = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _interleaved[0]);
            Kernel = kernel;
        }
        Bias = bias;
    }

    /// <summary>Whether the kernel reads the weights through the file's mapping (false: from the copy made at load).</summary>
    public bool ReadsMapping => _interleaved is null;

    /// <summary>Row <paramref name="row"/> as stored in the file.</summary>
    public byte* Row(int row) => _interleaved is null ? Data + row * RowBytes : throw new InvalidOperationException($"'{Name}' is interleaved at load; its rows are not contiguous");

    /// <summary>Writes eight consecutive rows, as in the file, into their lane-major group.</summary>
    delegate void LayOutGroup(ReadOnlySpan<byte> eightRows, Span<byte> group, long rowBytes);

    /// <summary>Reads a matrix group by group (eight rows) with positioned reads and interleaves each group.</summary>
    static byte[] ReadInterleaved(GgufFile file, GgufTensorInfo tensor, int rows, long rowBytes, LayOutGroup layOut)
    {
        long groupBytes = Q4_0Lanes.Rows * rowBytes; // Q5_0Lanes.Rows is the same 8
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
            layOut(group, result.AsSpan((int)at, (int)groupBytes), rowBytes);
        }
        return result;
    }
}
