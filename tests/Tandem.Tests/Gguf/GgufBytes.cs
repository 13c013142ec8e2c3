using System.Buffers.Binary;
using System.Text;
using Tandem.Gguf;

namespace Tandem.Tests.Gguf;

/// <summary>
/// Composes GGUF bytes by hand (little-endian), independently of <see cref="GgufWriter"/>, so tests can build
/// exact expected layouts and malformed files field by field.
/// </summary>
sealed class GgufBytes
{
    readonly MemoryStream _bytes = new();

    public long Length => _bytes.Length;

    public GgufBytes U8(byte v) { _bytes.WriteByte(v); return this; }
    public GgufBytes U16(ushort v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); _bytes.Write(b); return this; }
    public GgufBytes U32(uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); _bytes.Write(b); return this; }
    public GgufBytes U64(ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); _bytes.Write(b); return this; }
    public GgufBytes F32(float v) => U32(BitConverter.SingleToUInt32Bits(v));
    public GgufBytes Raw(ReadOnlySpan<byte> bytes) { _bytes.Write(bytes); return this; }
    public GgufBytes Zeros(int count) => Raw(new byte[count]);

    /// <summary>A GGUF string: u64 length then the UTF-8 bytes.</summary>
    public GgufBytes Str(string s) => RawStr(Encoding.UTF8.GetBytes(s));
    public GgufBytes RawStr(byte[] bytes) => U64((ulong)bytes.Length).Raw(bytes);

    public GgufBytes Header(ulong tensorCount, ulong kvCount, uint version = 3) =>
        U32(GgufFile.Magic).U32(version).U64(tensorCount).U64(kvCount);

    /// <summary>Key and value type; the caller appends the value.</summary>
    public GgufBytes Key(string key, GgufValueType type) => Str(key).U32((uint)type);

    public GgufBytes TensorInfo(string name, ulong[] dims, GgmlType type, ulong offset)
    {
        Str(name).U32((uint)dims.Length);
        foreach (var d in dims) U64(d);
        return U32((uint)type).U64(offset);
    }

    public GgufBytes PadTo(int alignment) => Zeros((int)((alignment - _bytes.Length % alignment) % alignment));

    public byte[] ToArray() => _bytes.ToArray();
}
