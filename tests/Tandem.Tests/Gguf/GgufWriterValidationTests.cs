using Tandem.Gguf;

namespace Tandem.Tests.Gguf;

/// <summary>The writer rejects bad input with a clear message and never leaves a partial or temporary file behind.</summary>
public sealed class GgufWriterValidationTests : IDisposable
{
    readonly string _directory;
    readonly string _path;

    public GgufWriterValidationTests()
    {
        _directory = Path.Combine(Path.GetTempPath(), "tandem-tests", "writer-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
        _path = Path.Combine(_directory, "out.gguf");
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    static readonly KeyValuePair<string, GgufValue>[] Arch = [new("general.architecture", GgufValue.Of("llama"))];

    static GgufTensorToWrite F32(string name, long[] dims, byte[]? data = null) =>
        new(name, dims, GgmlType.F32, data ?? new byte[dims.Aggregate(4L, (n, d) => n * d)]);

    TException Fails<TException>(IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufTensorToWrite> tensors,
        string messageFragment, GgufWriterOptions? options = null) where TException : Exception
    {
        var e = Assert.Throws<TException>(() => GgufWriter.Write(_path, metadata, tensors, options));
        Assert.Contains(messageFragment, e.Message);
        Assert.False(File.Exists(_path), "no output file may be left after a failed write");
        Assert.Empty(Directory.GetFiles(_directory));
        return e;
    }

    [Fact]
    public void TensorDataLengthMustMatchShapeAndType() =>
        Fails<ArgumentException>(Arch, [F32("w", [4, 2], new byte[31])], "tensor 'w': data is 31 bytes, but shape [4, 2] of F32 needs 32 bytes");

    [Fact]
    public void QuantizedTensorDataLengthCountsBlocks() =>
        Fails<ArgumentException>(Arch, [new GgufTensorToWrite("q", [64, 2], GgmlType.Q8_0, new byte[64 * 2])], "needs 136 bytes");

    [Fact]
    public void DuplicateTensorNamesAreRejected() =>
        Fails<ArgumentException>(Arch, [F32("w", [1]), F32("w", [2])], "Duplicate tensor name 'w'");

    [Fact]
    public void DuplicateMetadataKeysAreRejected() =>
        Fails<ArgumentException>([.. Arch, new("general.architecture", GgufValue.Of("qwen2"))], [], "Duplicate metadata key 'general.architecture'");

    [Fact]
    public void RowLengthMustBeAWholeNumberOfBlocks() =>
        Fails<ArgumentException>(Arch, [new GgufTensorToWrite("q", [33], GgmlType.Q4_0, new byte[18])], "row length 33 is not a multiple of the Q4_0 block size 32");

    [Fact]
    public void AtMostFourDimensions() =>
        Fails<ArgumentException>(Arch, [F32("w", [1, 1, 1, 1, 1])], "5 dimensions; at most 4");

    [Fact]
    public void NegativeDimensionsAreRejected() =>
        Fails<ArgumentException>(Arch, [new GgufTensorToWrite("w", [-1], GgmlType.F32, Array.Empty<byte>())], "negative dimension");

    [Fact]
    public void UnknownTensorTypeIsRejected() =>
        Fails<ArgumentException>(Arch, [new GgufTensorToWrite("w", [1], (GgmlType)99, new byte[4])], "unknown or unsupported ggml type 99");

    [Fact]
    public void ValueMustHoldTheClrTypeOfItsType() =>
        Fails<ArgumentException>([new("x", new GgufValue(GgufValueType.UInt32, 5))], [], "metadata 'x': a UInt32 value must hold a UInt32, found a Int32");

    [Fact]
    public void ArrayItemsMustMatchTheElementType() =>
        Fails<ArgumentException>([new("x", GgufValue.Of(new GgufArray(GgufValueType.Float32, new int[] { 1 })))], [], "an array of Float32 must hold a Single[]");

    [Fact]
    public void LoneSurrogatesCannotBeWritten() =>
        Fails<ArgumentException>([new("x", GgufValue.Of(new[] { "ok", "bad\uD800" }))], [], "metadata 'x'[1]: string cannot be encoded as UTF-8");

    [Theory]
    [InlineData(0u)]
    [InlineData(48u)]
    [InlineData(1u << 21)]
    public void AlignmentMustBeAPowerOfTwoUpTo1MiB(uint alignment) =>
        Fails<ArgumentException>([new("general.alignment", GgufValue.Of(alignment))], [], $"must be a power of two between 1 and 1 MiB, found {alignment}");

    [Fact]
    public void AlignmentMustBeUInt32() =>
        Fails<ArgumentException>([new("general.alignment", GgufValue.Of(32UL))], [], "'general.alignment' must be UInt32, found UInt64");

    [Fact]
    public void ArraysNestedTooDeepAreRejected()
    {
        var array = GgufArray.Of(new[] { 1 });
        for (int i = 0; i < 16; i++) array = new GgufArray(GgufValueType.Array, new[] { array });
        Fails<ArgumentException>([new("deep", GgufValue.Of(array))], [], "arrays nested deeper than 16 levels");
    }

    [Theory]
    [InlineData(1u)]
    [InlineData(4u)]
    public void OnlyVersions2And3CanBeWritten(uint version) =>
        Fails<ArgumentException>(Arch, [], $"GGUF version {version} cannot be written", new GgufWriterOptions { Version = version });

    [Fact]
    public void CallbackWritingTooFewBytesLeavesNoFile() =>
        Fails<InvalidOperationException>(Arch,
            [F32("a", [2]), new GgufTensorToWrite("w", [4], GgmlType.F32, GgufTensorData.FromCallback(s => s.Write(new byte[15])))],
            "tensor 'w': the data callback wrote 15 bytes, but shape [4] of F32 needs 16 bytes");

    [Fact]
    public void CallbackWritingTooManyBytesIsStoppedAtOnce()
    {
        int writes = 0;
        Fails<InvalidOperationException>(Arch,
            [new GgufTensorToWrite("w", [4], GgmlType.F32, GgufTensorData.FromCallback(s =>
            {
                for (int i = 0; i < 1000; i++) { s.Write(new byte[8]); writes++; }
            }))],
            "wrote more than the 16 bytes");
        Assert.Equal(2, writes);
    }

    [Fact]
    public void CallbackExceptionLeavesExistingFileUntouched()
    {
        File.WriteAllText(_path, "previous contents");
        var e = Assert.Throws<IOException>(() => GgufWriter.Write(_path, Arch,
            [F32("a", [8]), new GgufTensorToWrite("w", [4], GgmlType.F32, GgufTensorData.FromCallback(_ => throw new IOException("disk on fire")))]));
        Assert.Equal("disk on fire", e.Message);
        Assert.Equal("previous contents", File.ReadAllText(_path));
        Assert.Single(Directory.GetFiles(_directory));
    }

    [Fact]
    public void ExistingFileIsKeptWhenOverwriteIsOff()
    {
        File.WriteAllText(_path, "previous contents");
        var e = Assert.Throws<IOException>(() => GgufWriter.Write(_path, Arch, [], new GgufWriterOptions { Overwrite = false }));
        Assert.Contains("already exists", e.Message);
        Assert.Equal("previous contents", File.ReadAllText(_path));
    }

    [Fact]
    public void ExistingFileIsReplacedByDefault()
    {
        File.WriteAllText(_path, "previous contents");
        GgufWriter.Write(_path, Arch, [F32("w", [3], [0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64])]);
        using var file = GgufFile.Open(_path);
        Assert.Equal("llama", file.GetString("general.architecture"));
        Assert.Equal(new[] { 1f, 2f, 3f }, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(file.TensorBytes(file.GetTensor("w"))).ToArray());
        Assert.Single(Directory.GetFiles(_directory));
    }

    [Fact]
    public void MemorySliceWritesOnlyTheSlice()
    {
        byte[] buffer = [9, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9];
        GgufWriter.Write(_path, [], [new GgufTensorToWrite("w", [4], GgmlType.I16, GgufTensorData.FromBytes(buffer.AsMemory(2, 8)))]);
        using var file = GgufFile.Open(_path);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, file.TensorBytes(file.GetTensor("w")).ToArray());
    }

    [Fact]
    public void TensorsArePackedAtAlignedOffsetsInTheOrderGiven()
    {
        GgufWriter.Write(_path, [new("general.alignment", GgufValue.Of(128u))],
            [F32("first", [3]), F32("empty", [0]), F32("second", [40]), new GgufTensorToWrite("q", [32], GgmlType.Q4_0, new byte[18])]);
        using var file = GgufFile.Open(_path);
        Assert.Equal(["first", "empty", "second", "q"], file.Tensors.Select(t => t.Name));
        Assert.Equal([0UL, 128, 128, 384], file.Tensors.Select(t => t.Offset));
        Assert.Equal(0, file.DataOffset % 128);
        Assert.Equal(file.DataOffset + 512, file.FileLength); // the last tensor is padded too
    }
}
