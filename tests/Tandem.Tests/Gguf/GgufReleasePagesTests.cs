using System.Runtime.InteropServices;
using Tandem.Gguf;

namespace Tandem.Tests.Gguf;

/// <summary><see cref="GgufFile.ReleasePages"/>: the pages leave the process's resident set, and reading reads the same bytes.</summary>
public unsafe class GgufReleasePagesTests
{
    [Fact]
    public void ReleasedTensorPagesLeaveTheResidentSetAndReadBackUnchanged()
    {
        var path = TestData.Temp("release-pages.gguf");
        try
        {
            const int Big = 1 << 18; // 1 MiB of F32: 256 whole pages between two small neighbours
            var rng = new Random(7);
            byte[] Bytes(int floats) { var b = new byte[floats * 4]; rng.NextBytes(b); for (int i = 3; i < b.Length; i += 4) b[i] &= 0x3F; return b; }
            byte[] small = Bytes(16), big = Bytes(Big), tail = Bytes(16);
            GgufWriter.Write(path, [new("general.architecture", GgufValue.Of("test"))],
            [
                new("a", [16], GgmlType.F32, small), new("big", [Big], GgmlType.F32, big), new("z", [16], GgmlType.F32, tail),
            ]);
            using var file = GgufFile.Open(path);
            var tensor = file.GetTensor("big");
            long sum = 0;
            byte* p = file.TensorPointer(tensor);
            for (long i = 0; i < tensor.ByteSize; i += 4096) sum += p[i];
            long before = MappingRssKiB(path);

            file.ReleasePages(tensor);

            if (OperatingSystem.IsLinux())
                Assert.True(before - MappingRssKiB(path) >= 1000, $"resident KiB of the mapping: {before} before, {MappingRssKiB(path)} after");
            Assert.True(file.TensorBytes(tensor).SequenceEqual(big), "a released tensor reads back its bytes");
            Assert.True(file.TensorBytes(file.GetTensor("a")).SequenceEqual(small));
            Assert.True(file.TensorBytes(file.GetTensor("z")).SequenceEqual(tail));
            GC.KeepAlive(sum);
        }
        finally { File.Delete(path); }
    }

    /// <summary>Resident KiB of this process's mappings of <paramref name="path"/> (/proc/self/smaps; 0 elsewhere).</summary>
    static long MappingRssKiB(string path)
    {
        if (!OperatingSystem.IsLinux()) return 0;
        long total = 0;
        bool inFile = false;
        string full = Path.GetFullPath(path);
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            if (line.Length > 0 && char.IsAsciiHexDigit(line[0]) && line.Contains('-')) inFile = line.EndsWith(full, StringComparison.Ordinal);
            else if (inFile && line.StartsWith("Rss:", StringComparison.Ordinal))
                total += long.Parse(line.AsSpan(4).Trim().TrimEnd("kB").Trim());
        }
        return total;
    }
}
