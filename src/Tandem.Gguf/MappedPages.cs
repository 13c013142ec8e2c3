using System.Runtime.InteropServices;

namespace Tandem.Gguf;

/// <summary>
/// Gives back the resident pages of a read-only file mapping that will not be read again (Linux madvise
/// MADV_DONTNEED): they leave the process's RSS but stay in the page cache, and reading them again just maps them back.
/// Elsewhere, or if the call is unavailable, nothing happens.
/// </summary>
internal static unsafe partial class MappedPages
{
    const int MadvDontNeed = 4;
    static bool s_unavailable = !OperatingSystem.IsLinux();

    /// <summary>Releases the whole pages inside [start, start + length).</summary>
    public static void Release(byte* start, long length)
    {
        if (s_unavailable || length <= 0) return;
        long page = Environment.SystemPageSize;
        long first = ((long)start + page - 1) / page * page, end = ((long)start + length) / page * page;
        if (end <= first) return;
        try { _ = Madvise((void*)first, (nuint)(end - first), MadvDontNeed); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { s_unavailable = true; }
    }

    [LibraryImport("libc.so.6", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
