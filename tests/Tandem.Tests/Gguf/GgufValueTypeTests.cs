using Tandem.Gguf;

namespace Tandem.Tests.Gguf;

/// <summary>Every metadata value type, and arrays and nested arrays of them, survive a write and a read (v2 and v3).</summary>
public class GgufValueTypeTests
{
    static GgufArray Nested(params GgufArray[] items) => new(GgufValueType.Array, items);

    static List<KeyValuePair<string, GgufValue>> EveryValueType() =>
    [
        new("t.u8", GgufValue.Of(byte.MaxValue)),
        new("t.i8", GgufValue.Of(sbyte.MinValue)),
        new("t.u16", GgufValue.Of((ushort)0xBEEF)),
        new("t.i16", GgufValue.Of(short.MinValue)),
        new("t.u32", GgufValue.Of(uint.MaxValue)),
        new("t.i32", GgufValue.Of(-123456789)),
        new("t.f32", GgufValue.Of(-0.0f)),
        new("t.f32_nan", GgufValue.Of(BitConverter.UInt32BitsToSingle(0x7FC0_1234))),
        new("t.bool_true", GgufValue.Of(true)),
        new("t.bool_false", GgufValue.Of(false)),
        new("t.string", GgufValue.Of("héllo, 世界 🎉\n\0tail")),
        new("t.string_empty", GgufValue.Of("")),
        new("t.u64", GgufValue.Of(ulong.MaxValue)),
        new("t.i64", GgufValue.Of(long.MinValue)),
        new("t.f64", GgufValue.Of(double.Epsilon)),
        new("a.u8", GgufValue.OfArray(new byte[] { 0, 1, 255 })),
        new("a.i8", GgufValue.OfArray(new sbyte[] { -128, 0, 127 })),
        new("a.u16", GgufValue.OfArray(new ushort[] { 0, 65535 })),
        new("a.i16", GgufValue.OfArray(new short[] { -32768, 32767 })),
        new("a.u32", GgufValue.OfArray(new uint[] { 1, 0xFFFF_FFFF })),
        new("a.i32", GgufValue.OfArray(new[] { int.MinValue, -1, int.MaxValue })),
        new("a.f32", GgufValue.OfArray(new[] { 1.5f, float.NegativeInfinity, float.NaN, float.Epsilon })),
        new("a.bool", GgufValue.OfArray(new[] { true, false, true })),
        new("a.string", GgufValue.OfArray(new[] { "", "a", "ü", "<|im_end|>" })),
        new("a.u64", GgufValue.OfArray(new[] { 0UL, ulong.MaxValue })),
        new("a.i64", GgufValue.OfArray(new[] { long.MinValue, long.MaxValue })),
        new("a.f64", GgufValue.OfArray(new[] { Math.PI, -0.0, double.MaxValue })),
        new("a.empty_f32", GgufValue.OfArray(Array.Empty<float>())),
        new("a.empty_string", GgufValue.OfArray(Array.Empty<string>())),
        new("n.ints", GgufValue.Of(Nested(GgufArray.Of(new[] { 1, 2 }), GgufArray.Of(Array.Empty<int>()), GgufArray.Of(new[] { 3 })))),
        new("n.mixed", GgufValue.Of(Nested(GgufArray.Of(new[] { "x", "y" }), GgufArray.Of(new[] { 0.25 }), GgufArray.Of(new[] { true })))),
        new("n.three_levels", GgufValue.Of(Nested(Nested(GgufArray.Of(new ushort[] { 7 })), Nested()))),
        new("n.empty", GgufValue.Of(Nested())),
    ];

    [Theory]
    [InlineData(2u)]
    [InlineData(3u)]
    public void EveryValueTypeReadsBackIdentically(uint version)
    {
        var metadata = EveryValueType();
        var path = TestData.Temp($"values-v{version}.gguf");
        try
        {
            GgufWriter.Write(path, metadata, [], new GgufWriterOptions { Version = version });
            using var file = GgufFile.Open(path);
            Assert.Equal(version, file.Version);
            Assert.Equal(metadata.Select(kv => kv.Key), file.MetadataList.Select(kv => kv.Key));
            foreach (var (key, expected) in metadata)
            {
                var actual = file.Metadata[key];
                Assert.Equal(expected.Type, actual.Type);
                Assert.True(expected.ContentEquals(actual), $"{key}: wrote {expected}, read {actual}");
            }
            // Spot checks through the typed getters, which do not go through ContentEquals.
            Assert.Equal(uint.MaxValue, file.RequireInt("t.u32"));
            Assert.Equal(long.MinValue, file.RequireInt("t.i64"));
            Assert.Equal(0x7FC0_1234u, BitConverter.SingleToUInt32Bits((float)file.Metadata["t.f32_nan"].Value));
            Assert.True(double.IsNegative((double)file.GetArray<double>("a.f64")![1]));
            Assert.Equal("héllo, 世界 🎉\n\0tail", file.GetString("t.string"));
            Assert.Equal(new[] { true, false, true }, file.GetArray<bool>("a.bool"));
            Assert.Equal(new[] { long.MinValue, long.MaxValue }, file.GetArray<long>("a.i64"));
            var threeLevels = file.GetArray<GgufArray>("n.three_levels")!;
            Assert.Equal(new ushort[] { 7 }, ((GgufArray[])threeLevels[0].Items)[0].Items);
            Assert.Equal(0, threeLevels[1].Count);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ContentEqualsNoticesDifferencesDeepInside()
    {
        var a = GgufValue.Of(Nested(GgufArray.Of(new[] { 1, 2 }), GgufArray.Of(new[] { "x" })));
        var same = GgufValue.Of(Nested(GgufArray.Of(new[] { 1, 2 }), GgufArray.Of(new[] { "x" })));
        var otherInt = GgufValue.Of(Nested(GgufArray.Of(new[] { 1, 3 }), GgufArray.Of(new[] { "x" })));
        var otherString = GgufValue.Of(Nested(GgufArray.Of(new[] { 1, 2 }), GgufArray.Of(new[] { "y" })));
        var otherType = GgufValue.Of(Nested(GgufArray.Of(new uint[] { 1, 2 }), GgufArray.Of(new[] { "x" })));
        Assert.True(a.ContentEquals(same));
        Assert.False(a.ContentEquals(otherInt));
        Assert.False(a.ContentEquals(otherString));
        Assert.False(a.ContentEquals(otherType));
        Assert.False(GgufValue.Of(0.0f).ContentEquals(GgufValue.Of(-0.0f)));
        Assert.True(GgufValue.Of(float.NaN).ContentEquals(GgufValue.Of(float.NaN)));
        Assert.False(GgufValue.Of(1).ContentEquals(GgufValue.Of(1u)));
    }

    [Fact]
    public void WriterProducesTheSpecifiedByteLayout()
    {
        // Expected bytes composed field by field from the GGUF layout, independently of the writer.
        var expected = new GgufBytes().Header(tensorCount: 2, kvCount: 5, version: 3)
            .Key("general.alignment", GgufValueType.UInt32).U32(64)
            .Key("k.u16", GgufValueType.UInt16).U16(0x1234)
            .Key("k.bool", GgufValueType.Bool).U8(1)
            .Key("k.str", GgufValueType.String).Str("hi")
            .Key("k.arr", GgufValueType.Array).U32((uint)GgufValueType.Array).U64(1)
                .U32((uint)GgufValueType.Int8).U64(2).U8(0xFF).U8(0x01)
            .TensorInfo("a", [3], GgmlType.F32, 0)
            .TensorInfo("b", [2, 1], GgmlType.F16, 64)
            .PadTo(64)
            .F32(1).F32(2).F32(3).Zeros(64 - 12)
            .U16(0x3C00).U16(0x4000).Zeros(64 - 4)
            .ToArray();
        var path = TestData.Temp("layout.gguf");
        try
        {
            byte[] a = new GgufBytes().F32(1).F32(2).F32(3).ToArray();
            byte[] b = new GgufBytes().U16(0x3C00).U16(0x4000).ToArray();
            GgufWriter.Write(path,
                [
                    new("general.alignment", GgufValue.Of(64u)),
                    new("k.u16", GgufValue.Of((ushort)0x1234)),
                    new("k.bool", GgufValue.Of(true)),
                    new("k.str", GgufValue.Of("hi")),
                    new("k.arr", GgufValue.Of(Nested(GgufArray.Of(new sbyte[] { -1, 1 })))),
                ],
                [
                    new GgufTensorToWrite("a", [3], GgmlType.F32, a),
                    new GgufTensorToWrite("b", [2, 1], GgmlType.F16, GgufTensorData.FromCallback(s => s.Write(b))),
                ]);
            Assert.Equal(expected, File.ReadAllBytes(path));
            using var file = GgufFile.Open(path);
            Assert.Equal(64, file.Alignment);
            Assert.Equal(0, file.DataOffset % 64);
            Assert.Equal(a, file.TensorBytes(file.GetTensor("a")).ToArray());
            Assert.Equal(b, file.TensorBytes(file.GetTensor("b")).ToArray());
        }
        finally { File.Delete(path); }
    }
}
