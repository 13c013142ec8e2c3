using System.Buffers;
using Tandem.Gguf;
using Tandem.Gguf.Quants;

// Layout written here: one tensor's data, rows one after another (row r at r × row_bytes), each row
// ne[0] / block_size ggml blocks of the target type (Blocks.cs), no padding between rows.

namespace Tandem.Compression;

/// <summary>Fills <paramref name="destination"/> with rows [firstRow, firstRow + count) of a tensor as F32. Called from several threads at once.</summary>
public delegate void RowSource(long firstRow, int count, Span<float> destination);

/// <summary>
/// Streams one tensor into a GGUF data stream in its target type, a chunk of rows at a time: the rows of a chunk are
/// produced and quantized by several threads, then written in order. Memory is bounded by the chunk size, not the
/// tensor size, so models larger than RAM can be written.
/// </summary>
public static class TensorEncoder
{
    /// <summary>About this many F32 values are held per chunk (32 MiB).</summary>
    const long ChunkValues = 8L << 20;

    public static void Write(Stream output, long rows, int columns, GgmlType type, RowSource source, int threads, Action<long>? rowsDone = null)
    {
        var info = GgmlTypeInfo.Of(type);
        if (columns % info.BlockSize != 0)
            throw new ArgumentException($"row length {columns} is not a multiple of the {info.Name} block size {info.BlockSize}");
        int rowBytes = checked((int)info.RowBytes(columns));
        int chunkRows = (int)Math.Clamp(ChunkValues / columns, 1, Math.Max(1, rows));
        threads = Math.Max(1, threads);
        // pooled: a model has hundreds of tensors, and fresh 32 MiB buffers for each would pile up until a full GC
        var values = ArrayPool<float>.Shared.Rent(chunkRows * columns);
        var bytes = ArrayPool<byte>.Shared.Rent(chunkRows * rowBytes);
        try
        {
            WriteChunks(output, rows, columns, type, source, threads, rowsDone, chunkRows, rowBytes, values, bytes);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(values);
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    static void WriteChunks(Stream output, long rows, int columns, GgmlType type, RowSource source, int threads, Action<long>? rowsDone,
        int chunkRows, int rowBytes, float[] values, byte[] bytes)
    {
        for (long first = 0; first < rows; first += chunkRows)
        {
            int count = (int)Math.Min(chunkRows, rows - first);
            int parts = Math.Min(threads, count);
            long chunkFirst = first;
            void Part(int p)
            {
                int r0 = (int)((long)count * p / parts), r1 = (int)((long)count * (p + 1) / parts);
                if (r1 <= r0) return;
                var x = values.AsSpan(r0 * columns, (r1 - r0) * columns);
                source(chunkFirst + r0, r1 - r0, x);
                for (int r = 0; r < r1 - r0; r++)
                    Quantizer.Quantize(type, x.Slice(r * columns, columns), bytes.AsSpan((r0 + r) * rowBytes, rowBytes));
            }
            if (parts == 1) Part(0);
            else Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, Part);
            output.Write(bytes, 0, count * rowBytes);
            rowsDone?.Invoke(count);
        }
    }
}
