namespace Tandem.Gguf;

/// <summary>
/// A tensor as described in the header. <see cref="Dimensions"/> are in ggml order: ne[0] is the
/// innermost (contiguous) dimension, so a weight matrix of shape [rows, cols] is stored as ne = {cols, rows}.
/// <see cref="Offset"/> is relative to the start of the tensor-data section.
/// </summary>
public sealed record GgufTensorInfo(string Name, long[] Dimensions, GgmlType Type, ulong Offset)
{
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Dimensions) n *= d;
            return n;
        }
    }

    /// <summary>Bytes of tensor data: whole rows of <see cref="Columns"/> elements each.</summary>
    public long ByteSize => GgmlTypeInfo.Of(Type).RowBytes(Columns) * Rows;

    /// <summary>Length of the contiguous dimension (ne[0]).</summary>
    public long Columns => Dimensions.Length == 0 ? 1 : Dimensions[0];

    /// <summary>Number of rows: product of every dimension but the first.</summary>
    public long Rows
    {
        get
        {
            long n = 1;
            for (int i = 1; i < Dimensions.Length; i++) n *= Dimensions[i];
            return n;
        }
    }

    public string ShapeText => "[" + string.Join(", ", Dimensions) + "]";
}

/// <summary>How much of a file one tensor type accounts for: tensor count, elements and bytes of data.</summary>
public sealed record GgufTensorTypeSummary(GgmlType Type, int TensorCount, long ElementCount, long ByteCount);
