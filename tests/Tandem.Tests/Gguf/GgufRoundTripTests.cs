using System.Security.Cryptography;
using Tandem.Gguf;

namespace Tandem.Tests.Gguf;

/// <summary>Reading then writing every shipped GGUF file reproduces it byte for byte.</summary>
public class GgufRoundTripTests
{
    /// <summary>Every .gguf the repository ships, as paths relative to the repository root.</summary>
    public static IEnumerable<object[]> ShippedFiles() =>
        Directory.GetFiles(TestData.Models, "*.gguf")
            .Append(TestData.Stories260K)
            .Concat(Directory.GetFiles(Path.Combine(TestData.Tokenizers, "llama.cpp-vectors"), "*.gguf"))
            .Order(StringComparer.Ordinal)
            .Select(p => new object[] { Path.GetRelativePath(TestData.Root, p) });

    [Fact]
    public void ShippedFileListCoversModelsAndVocabularies()
    {
        var files = ShippedFiles().Select(f => (string)f[0]).ToList();
        Assert.Contains(files, f => f.EndsWith("stories260K.gguf", StringComparison.Ordinal));
        Assert.True(files.Count(f => f.StartsWith("testdata/models/", StringComparison.Ordinal)) >= 15, string.Join(", ", files));
        Assert.True(files.Count(f => f.Contains("ggml-vocab-", StringComparison.Ordinal)) >= 12, string.Join(", ", files));
    }

    [Theory]
    [MemberData(nameof(ShippedFiles))]
    public void CopyReproducesFileByteForByte(string relativePath)
    {
        var source = Path.Combine(TestData.Root, relativePath);
        var copy = TestData.Temp(Path.GetFileName(source));
        try
        {
            using (var file = GgufFile.Open(source))
                GgufWriter.Copy(file, copy);
            AssertSameBytes(source, copy);
        }
        finally { File.Delete(copy); }
    }

    [Fact]
    public void WriteFromMetadataAndTensorBytesReproducesAQuantizedModel()
    {
        // Same as Copy, but through the public Write entry point with in-memory byte[] tensor data.
        var source = TestData.Model("mini-qwen3-q4_k_m.gguf");
        var copy = TestData.Temp("q4km.gguf");
        try
        {
            using (var file = GgufFile.Open(source))
            {
                var tensors = file.Tensors
                    .Select(t => new GgufTensorToWrite(t.Name, t.Dimensions, t.Type, file.TensorBytes(t).ToArray()))
                    .ToList();
                GgufWriter.Write(copy, file.MetadataList, tensors, new GgufWriterOptions { Version = file.Version });
            }
            AssertSameBytes(source, copy);
        }
        finally { File.Delete(copy); }
    }

    [Fact]
    public void CopyAsVersion2DiffersOnlyInTheVersionField()
    {
        var copy = TestData.Temp("v2.gguf");
        try
        {
            using (var file = GgufFile.Open(TestData.Stories260K))
                GgufWriter.Copy(file, copy, new GgufWriterOptions { Version = 2 });
            var original = File.ReadAllBytes(TestData.Stories260K);
            var written = File.ReadAllBytes(copy);
            Assert.Equal(3u, BitConverter.ToUInt32(original, 4));
            Assert.Equal(2u, BitConverter.ToUInt32(written, 4));
            written[4] = 3;
            Assert.True(original.AsSpan().SequenceEqual(written));
            using var reread = GgufFile.Open(copy);
            Assert.Equal(2u, reread.Version);
        }
        finally { File.Delete(copy); }
    }

    [Fact]
    public void CopyOntoTheOpenSourceFileReplacesItSafely()
    {
        // Rewriting a file in place (as a pruning or re-quantizing tool may) reads from the old mapping while the
        // new file is written beside it; the rename then swaps it in.
        var path = TestData.Temp("in-place.gguf");
        try
        {
            File.Copy(TestData.Stories260K, path);
            using (var file = GgufFile.Open(path))
                GgufWriter.Copy(file, path, new GgufWriterOptions { Version = 2 });
            using var rewritten = GgufFile.Open(path);
            using var original = GgufFile.Open(TestData.Stories260K);
            Assert.Equal(2u, rewritten.Version);
            Assert.Equal(original.Tensors.Count, rewritten.Tensors.Count);
            foreach (var t in original.Tensors)
                Assert.True(original.TensorBytes(t).SequenceEqual(rewritten.TensorBytes(rewritten.GetTensor(t.Name))), t.Name);
            Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!, $"*{Path.GetFileName(path)}*"));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void CallbacksRunOnceEachInTensorOrder()
    {
        var calls = new List<string>();
        GgufTensorToWrite Tensor(string name, int floats) => new(name, [floats], GgmlType.F32, GgufTensorData.FromCallback(stream =>
        {
            calls.Add(name);
            for (int i = 0; i < floats; i++) stream.Write(BitConverter.GetBytes((float)i)); // many small writes
        }));
        var path = TestData.Temp("callbacks.gguf");
        try
        {
            GgufWriter.Write(path, [], [Tensor("c", 5), Tensor("a", 1000), Tensor("b", 1)]);
            Assert.Equal(["c", "a", "b"], calls);
            using var file = GgufFile.Open(path);
            var a = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(file.TensorBytes(file.GetTensor("a")));
            Assert.Equal(999f, a[999]);
            Assert.Equal(4f, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(file.TensorBytes(file.GetTensor("c")))[4]);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void InvalidUtf8StringsKeepTheirExactBytes()
    {
        byte[] loneContinuation = [0x61, 0x80, 0x62];       // 'a', stray continuation byte, 'b'
        byte[] truncatedSequence = [0xE4, 0xB8];             // first two bytes of a three-byte character
        byte[] overlongSlash = [0xC0, 0xAF];                 // overlong encoding of '/'
        var bytes = new GgufBytes().Header(tensorCount: 0, kvCount: 2)
            .Key("tokenizer.ggml.tokens", GgufValueType.Array).U32((uint)GgufValueType.String).U64(4)
                .Str("ok").RawStr(loneContinuation).RawStr(truncatedSequence).Str("é")
            .Key("general.name", GgufValueType.String).RawStr(overlongSlash)
            .ToArray();
        var path = TestData.Temp("bad-utf8.gguf");
        var copy = TestData.Temp("bad-utf8-copy.gguf");
        try
        {
            File.WriteAllBytes(path, bytes);
            using (var file = GgufFile.Open(path))
            {
                var tokens = file.GetArray("tokenizer.ggml.tokens")!;
                Assert.Equal(["ok", "a\uFFFDb", "\uFFFD", "é"], (string[])tokens.Items);
                Assert.Null(tokens.InvalidUtf8Strings![0]);
                Assert.Equal(loneContinuation, tokens.GetStringBytes(1));
                Assert.Equal(truncatedSequence, tokens.GetStringBytes(2));
                Assert.Null(tokens.InvalidUtf8Strings[3]);
                Assert.Equal(overlongSlash, file.Metadata["general.name"].InvalidUtf8Bytes);
                GgufWriter.Copy(file, copy);
            }
            Assert.Equal(bytes, File.ReadAllBytes(copy));
        }
        finally
        {
            File.Delete(path);
            File.Delete(copy);
        }
    }

    static void AssertSameBytes(string expectedPath, string actualPath)
    {
        var expected = File.ReadAllBytes(expectedPath);
        var actual = File.ReadAllBytes(actualPath);
        int firstDifference = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(expected.Length == actual.Length && firstDifference == expected.Length,
            $"{Path.GetFileName(expectedPath)}: {expected.Length} bytes, copy {actual.Length} bytes, first difference at {firstDifference}");
        Assert.Equal(SHA256.HashData(expected), SHA256.HashData(actual));
    }
}
