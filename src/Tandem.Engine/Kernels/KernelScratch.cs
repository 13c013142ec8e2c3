using System.Runtime.InteropServices;

namespace Tandem.Engine.Kernels;

/// <summary>
/// One 64-byte-aligned buffer per worker thread for the multi-token tiles' laid-out activations. Tiles run one at a
/// time on a thread, so they share it. It is allocated on first use and grown only when a wider matrix needs more, so
/// the token path allocates nothing after warm-up; it lives as long as the thread (a few hundred KB at most). A second
/// buffer holds weight rows re-read into the file's layout (<see cref="Q5_0Lanes"/>) while a tile uses the first.
/// </summary>
internal static unsafe class KernelScratch
{
    [ThreadStatic] static byte* _buffer, _rows;
    [ThreadStatic] static long _capacity, _rowsCapacity;

    public static byte* Get(long bytes) => Grow(ref _buffer, ref _capacity, bytes);

    public static byte* GetRows(long bytes) => Grow(ref _rows, ref _rowsCapacity, bytes);

    static byte* Grow(ref byte* buffer, ref long capacity, long bytes)
    {
        if (capacity < bytes)
        {
            if (buffer is not null) NativeMemory.AlignedFree(buffer);
            buffer = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
            capacity = bytes;
        }
        return buffer;
    }
}
