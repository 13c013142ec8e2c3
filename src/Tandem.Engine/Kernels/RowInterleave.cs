namespace Tandem.Engine.Kernels;

/// <summary>
/// The layout llama.cpp's CPU repack gives a quantized matrix, applied at load: rows in groups of eight, each group
/// stored block column by block column with the eight rows' blocks side by side. A single-token product reads the
/// eight rows it combines as one front-to-back stream instead of eight streams a row apart (which the hardware
/// prefetchers follow poorly from DRAM); the bytes and the arithmetic are unchanged.
/// </summary>
public readonly unsafe struct RowInterleave(byte* weights, long rowBytes, int blockBytes, bool interleaved)
{
    public const int Group = 8;

    public bool Interleaved => interleaved;
    /// <summary>Bytes from one block of a row to its next.</summary>
    public int BlockStride => interleaved ? Group * blockBytes : blockBytes;
    /// <summary>Bytes from a row's block to the same block of the next row, within an aligned group of eight.</summary>
    public long RowStride => interleaved ? blockBytes : rowBytes;
    public byte* Row(int r) => interleaved ? weights + (r / Group) * Group * rowBytes + (r % Group) * blockBytes : weights + r * rowBytes;

    /// <summary>Writes eight consecutive rows (as in the file) into their interleaved group.</summary>
    public static void Interleave(ReadOnlySpan<byte> eightRows, Span<byte> group, long rowBytes, int blockBytes)
    {
        int blocks = (int)(rowBytes / blockBytes);
        for (int k = 0; k < Group; k++)
            for (int ib = 0; ib < blocks; ib++)
                eightRows.Slice((int)(k * rowBytes) + ib * blockBytes, blockBytes).CopyTo(group.Slice((ib * Group + k) * blockBytes, blockBytes));
    }
}
