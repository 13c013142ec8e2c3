using System.Text;
using Tandem.Gguf;

namespace Tandem.Tests.Gguf;

/// <summary>
/// Malformed files, composed byte by byte: each must fail with a <see cref="GgufFormatException"/> that names the
/// field and the problem, without crashing, hanging or allocating a buffer sized by a hostile count.
/// </summary>
public class GgufMalformedTests
{
    static GgufFormatException Fails(byte[] bytes, string field, string problemFragment)
    {
        var path = TestData.Temp("malformed.gguf");
        File.WriteAllBytes(path, bytes);
        try
        {
            long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<GgufFormatException>(() => { using var file = GgufFile.Open(path); });
            long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            Assert.Equal(Path.GetFileName(path), e.File);
            Assert.Equal(field, e.Field);
            Assert.Contains(problemFragment, e.Problem);
            Assert.True(allocated < (1 << 20), $"opening a {bytes.Length}-byte malformed file allocated {allocated} bytes");
            return e;
        }
        finally { File.Delete(path); }
    }

    /// <summary>Header with one metadata entry whose key and type are written; the caller appends the value.</summary>
    static GgufBytes OneKey(GgufValueType type, string key = "k") => new GgufBytes().Header(tensorCount: 0, kvCount: 1).Key(key, type);

    /// <summary>Header with one tensor info (no metadata); the caller appends padding and data.</summary>
    static GgufBytes OneTensor(ulong[] dims, GgmlType type = GgmlType.F32, ulong offset = 0, string name = "w") =>
        new GgufBytes().Header(tensorCount: 1, kvCount: 0).TensorInfo(name, dims, type, offset);

    // ---- header ----

    [Fact]
    public void EmptyFile() => Fails([], "magic", "file is empty");

    [Fact]
    public void ShorterThanTheMagic() => Fails("GGU"u8.ToArray(), "magic", "expected at least the 4-byte magic");

    [Fact]
    public void BadMagic() =>
        Fails(new GgufBytes().Raw("GGML"u8).U32(3).U64(0).U64(0).ToArray(), "magic", "found 0x4C4D4747; not a GGUF file");

    [Fact]
    public void Version1IsRejected() => Fails(new GgufBytes().Header(0, 0, version: 1).ToArray(), "version", "expected version 2 or 3, found 1");

    [Fact]
    public void Version4IsRejected() => Fails(new GgufBytes().Header(0, 0, version: 4).ToArray(), "version", "expected version 2 or 3, found 4");

    [Fact]
    public void BigEndianFileIsNamedAsSuch() =>
        Fails(new GgufBytes().Header(0, 0, version: 0x0300_0000).ToArray(), "version", "big-endian");

    [Fact]
    public void TruncatedInsideTensorCount() =>
        Fails(new GgufBytes().Header(0, 0).ToArray()[..12], "tensor_count", "file truncated: needs 8 bytes at offset 8, but only 4 remain");

    [Fact]
    public void TruncatedInsideMetadataCount() =>
        Fails(new GgufBytes().Header(0, 0).ToArray()[..20], "metadata_kv_count", "file truncated");

    [Fact]
    public void HostileMetadataCount() =>
        Fails(new GgufBytes().Header(0, 1UL << 60).Zeros(64).ToArray(), "metadata_kv_count", "1152921504606846976 entries cannot fit in the 64 bytes left");

    [Fact]
    public void HostileTensorCount() =>
        Fails(new GgufBytes().Header(ulong.MaxValue, 0).Zeros(64).ToArray(), "tensor_count", "18446744073709551615 tensors cannot fit");

    // ---- metadata ----

    [Fact]
    public void TruncatedInsideKey() =>
        Fails(new GgufBytes().Header(0, 1).U64(100).Raw(Encoding.ASCII.GetBytes(new string('a', 20))).ToArray(),
            "metadata[0].key", "string length 100 exceeds the 20 bytes left");

    [Fact]
    public void HostileKeyLength() =>
        Fails(new GgufBytes().Header(0, 1).U64(1UL << 62).Zeros(16).ToArray(), "metadata[0].key", "string length 4611686018427387904 exceeds the 16 bytes left");

    [Fact]
    public void KeyThatIsNotUtf8() =>
        Fails(new GgufBytes().Header(0, 1).RawStr([0x6B, 0xFF]).U32((uint)GgufValueType.UInt8).U8(0).ToArray(), "metadata[0].key", "is not valid UTF-8");

    [Fact]
    public void EmptyKey() =>
        Fails(new GgufBytes().Header(0, 1).Str("").U32((uint)GgufValueType.UInt8).U8(0).ToArray(), "metadata[0].key", "the name at offset 24 is empty");

    [Fact]
    public void TruncatedInsideScalarValue() =>
        Fails(OneKey(GgufValueType.UInt64).U32(7).ToArray(), "metadata 'k'", "file truncated: needs 8 bytes");

    [Fact]
    public void TruncatedInsideStringValue() =>
        Fails(OneKey(GgufValueType.String).U64(10).Raw("abc"u8).ToArray(), "metadata 'k'", "string length 10 exceeds the 3 bytes left");

    [Fact]
    public void HostileStringValueLength() =>
        Fails(OneKey(GgufValueType.String).U64(ulong.MaxValue).Zeros(8).ToArray(), "metadata 'k'", "string length 18446744073709551615 exceeds");

    [Fact]
    public void TruncatedInsideNumericArray() =>
        Fails(OneKey(GgufValueType.Array).U32((uint)GgufValueType.UInt32).U64(10).U32(1).U32(2).U32(3).ToArray(),
            "metadata 'k' count", "10 elements of UInt32 cannot fit in the 12 bytes left");

    [Fact]
    public void TruncatedInsideStringArray() =>
        Fails(OneKey(GgufValueType.Array).U32((uint)GgufValueType.String).U64(3).Str("a").Str("b").U64(5).Raw("xy"u8).ToArray(),
            "metadata 'k'[2]", "string length 5 exceeds the 2 bytes left");

    [Fact]
    public void HostileArrayCount() =>
        Fails(OneKey(GgufValueType.Array).U32((uint)GgufValueType.UInt8).U64(1UL << 62).Zeros(32).ToArray(),
            "metadata 'k' count", "4611686018427387904 elements of UInt8 cannot fit in the 32 bytes left");

    [Fact]
    public void HostileNestedArrayCount() =>
        Fails(OneKey(GgufValueType.Array).U32((uint)GgufValueType.Array).U64(1)
                .U32((uint)GgufValueType.Array).U64(uint.MaxValue).Zeros(40).ToArray(),
            "metadata 'k'[0] count", "4294967295 elements of Array cannot fit");

    [Fact]
    public void UnknownValueType() =>
        Fails(OneKey((GgufValueType)13).U32(0).ToArray(), "metadata 'k'", "unknown value type 13");

    [Fact]
    public void UnknownArrayElementType() =>
        Fails(OneKey(GgufValueType.Array).U32(42).U64(0).ToArray(), "metadata 'k' element type", "unknown value type 42");

    [Fact]
    public void BoolThatIsNeitherZeroNorOne() =>
        Fails(OneKey(GgufValueType.Bool).U8(2).Zeros(4).ToArray(), "metadata 'k'", "bool must be 0 or 1, found 2");

    [Fact]
    public void BoolArrayElementThatIsNeitherZeroNorOne() =>
        Fails(OneKey(GgufValueType.Array).U32((uint)GgufValueType.Bool).U64(3).U8(1).U8(0).U8(7).ToArray(), "metadata 'k'[2]", "bool must be 0 or 1, found 7");

    [Fact]
    public void ArraysNestedTooDeep()
    {
        var bytes = OneKey(GgufValueType.Array);
        for (int level = 0; level < 17; level++) bytes.U32((uint)GgufValueType.Array).U64(1);
        bytes.U32((uint)GgufValueType.UInt8).U64(0);
        Fails(bytes.ToArray(), "metadata 'k'" + string.Concat(Enumerable.Repeat("[0]", 16)), "arrays nested deeper than 16 levels");
    }

    [Fact]
    public void DuplicateMetadataKey() =>
        Fails(new GgufBytes().Header(0, 2).Key("k", GgufValueType.UInt8).U8(1).Key("k", GgufValueType.UInt8).U8(2).ToArray(),
            "metadata 'k'", "duplicate key");

    [Fact]
    public void AlignmentOfTheWrongType() =>
        Fails(OneKey(GgufValueType.UInt64, "general.alignment").U64(32).ToArray(), "metadata 'general.alignment'", "expected type UInt32, found UInt64");

    [Fact]
    public void AlignmentThatIsNotAPowerOfTwo() =>
        Fails(OneKey(GgufValueType.UInt32, "general.alignment").U32(48).ToArray(), "metadata 'general.alignment'", "expected a power of two between 1 and 1 MiB, found 48");

    [Fact]
    public void AlignmentZero() =>
        Fails(OneKey(GgufValueType.UInt32, "general.alignment").U32(0).ToArray(), "metadata 'general.alignment'", "found 0");

    // ---- tensor infos ----

    [Fact]
    public void TruncatedInsideTensorInfo() =>
        Fails(new GgufBytes().Header(1, 0).Str("weight.xyz").U32(2).U64(4).ToArray(), "tensor 'weight.xyz' ne[1]", "file truncated");

    [Fact]
    public void TensorNameThatIsNotUtf8() =>
        Fails(new GgufBytes().Header(1, 0).RawStr([0xC3, 0x28]).U32(1).U64(1).U32(0).U64(0).ToArray(), "tensor[0].name", "is not valid UTF-8");

    [Fact]
    public void EmptyTensorName() =>
        Fails(new GgufBytes().Header(1, 0).Str("").U32(1).U64(1).U32(0).U64(0).PadTo(32).Zeros(32).ToArray(), "tensor[0].name", "is empty");

    [Fact]
    public void MoreThanFourDimensions() =>
        Fails(OneTensor([1, 1, 1, 1, 1]).PadTo(32).Zeros(32).ToArray(), "tensor 'w' n_dims", "expected at most 4 dimensions, found 5");

    [Fact]
    public void HostileDimensionCount() =>
        Fails(new GgufBytes().Header(1, 0).Str("w").U32(uint.MaxValue).Zeros(64).ToArray(), "tensor 'w' n_dims", "found 4294967295");

    [Fact]
    public void DimensionsWhoseProductOverflows() =>
        Fails(OneTensor([1UL << 32, 1UL << 32]).PadTo(32).ToArray(), "tensor 'w' dimensions", "element count of shape [4294967296, 4294967296] overflows 64 bits");

    [Fact]
    public void DimensionAboveLongMaxValue() =>
        Fails(OneTensor([1UL << 63]).PadTo(32).ToArray(), "tensor 'w' ne[0]", "dimension 9223372036854775808 does not fit a signed 64-bit count");

    [Fact]
    public void ByteSizeThatOverflows() =>
        Fails(OneTensor([1UL << 31, 1UL << 31], GgmlType.F64).PadTo(32).ToArray(), "tensor 'w' dimensions", "byte size of 4611686018427387904 F64 elements overflows 64 bits");

    [Fact]
    public void UnknownTensorType() =>
        Fails(OneTensor([4], (GgmlType)99).PadTo(32).Zeros(32).ToArray(), "tensor 'w' type", "unknown or unsupported ggml type 99");

    [Fact]
    public void RowLengthNotAWholeNumberOfBlocks() =>
        Fails(OneTensor([33, 2], GgmlType.Q4_0).PadTo(32).Zeros(64).ToArray(), "tensor 'w' ne[0]", "row length 33 is not a multiple of the Q4_0 block size 32");

    [Fact]
    public void QuantizedScalarIsNotAWholeBlock() =>
        Fails(OneTensor([], GgmlType.Q8_0).PadTo(32).Zeros(64).ToArray(), "tensor 'w' ne[0]", "row length 1 is not a multiple of the Q8_0 block size 32");

    [Fact]
    public void MisalignedOffset() =>
        Fails(OneTensor([1], offset: 7).PadTo(32).Zeros(64).ToArray(), "tensor 'w' offset", "offset 7 is not a multiple of the alignment 32");

    [Fact]
    public void DuplicateTensorName() =>
        Fails(new GgufBytes().Header(2, 0).TensorInfo("w", [1], GgmlType.F32, 0).TensorInfo("w", [1], GgmlType.F32, 32).PadTo(32).Zeros(64).ToArray(),
            "tensor 'w'", "duplicate tensor name");

    // ---- tensor data ----

    [Fact]
    public void OffsetOutsideTheFile() =>
        Fails(OneTensor([1], offset: 1UL << 40).PadTo(32).Zeros(32).ToArray(), "tensor 'w' data", "outside the file");

    [Fact]
    public void TensorDataTruncated() =>
        Fails(OneTensor([4, 4]).PadTo(32).Zeros(10).ToArray(), "tensor 'w' data", "bytes [96, 160) lie outside the file of 106 bytes");

    [Fact]
    public void TensorSizeNear2To63DoesNotWrapAround() =>
        Fails(OneTensor([(1UL << 61) - 1], offset: 32).PadTo(32).Zeros(64).ToArray(), "tensor 'w' data", "outside the file");

    [Fact]
    public void FileEndsBeforeTheAlignedDataStart() =>
        Fails(OneTensor([0]).ToArray(), "tensor data", "before the aligned start of tensor data at 64");

    [Fact]
    public void OverlappingTensors() =>
        Fails(new GgufBytes().Header(2, 0).TensorInfo("a", [16], GgmlType.F32, 0).TensorInfo("b", [1], GgmlType.F32, 32).PadTo(32).Zeros(64).ToArray(),
            "tensor 'b' offset", "data at [32, 36) overlaps tensor 'a' at [0, 64)");

    [Fact]
    public void CorruptedMagicOfAWrittenFile()
    {
        var path = TestData.Temp("valid.gguf");
        try
        {
            GgufWriter.Write(path, [new("general.architecture", GgufValue.Of("llama"))], [new GgufTensorToWrite("w", [8], GgmlType.F32, new byte[32])]);
            var bytes = File.ReadAllBytes(path);
            using (GgufFile.Open(path)) { } // the uncorrupted file is valid
            bytes[3] = (byte)'L';
            Fails(bytes, "magic", "not a GGUF file");
        }
        finally { File.Delete(path); }
    }

    // ---- real files ----

    [Fact]
    public void RealModelTruncatedAnywhereFailsWithAFormatError()
    {
        var bytes = File.ReadAllBytes(TestData.Stories260K);
        long dataOffset;
        using (var file = GgufFile.Open(TestData.Stories260K)) dataOffset = file.DataOffset;
        // 20 cuts spread over the whole file and 20 inside the header, where every field type gets cut.
        var cuts = Enumerable.Range(0, 20).Select(i => (long)bytes.Length * i / 20)
            .Concat(Enumerable.Range(0, 20).Select(i => dataOffset * i / 20 + 3))
            .Append(dataOffset)
            .Append(bytes.Length - 32);
        var path = TestData.Temp("truncated.gguf");
        try
        {
            foreach (long cut in cuts)
            {
                File.WriteAllBytes(path, bytes.AsSpan(0, (int)cut));
                var e = Record.Exception(() => { using var file = GgufFile.Open(path); });
                Assert.True(e is GgufFormatException, $"cut at {cut} of {bytes.Length}: expected GgufFormatException, got {e?.GetType().Name ?? "no exception"}: {e?.Message}");
            }
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void MissingFileNamesThePath()
    {
        var path = Path.Combine(TestData.Root, "testdata", "models", "no-such-model.gguf");
        var e = Assert.Throws<FileNotFoundException>(() => GgufFile.Open(path));
        Assert.Equal(path, e.FileName);
        Assert.Contains(path, e.Message);
    }
}
