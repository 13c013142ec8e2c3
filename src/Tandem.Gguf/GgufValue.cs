using System.Globalization;
using System.Text;

namespace Tandem.Gguf;

/// <summary>Metadata value types, numbered as in the GGUF specification.</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>
/// An array value. <see cref="Items"/> is a typed CLR array: byte[], sbyte[], ushort[], short[], uint[], int[],
/// float[], bool[], string[], ulong[], long[], double[], or <see cref="GgufArray"/>[] for nested arrays.
/// String arrays read from a file (a vocabulary's 150,000 tokens and merges) are kept as their UTF-8 bytes in one
/// block and decoded into a string[] only when <see cref="Items"/> is first read; <see cref="GetUtf8"/> reads an
/// element's bytes without decoding anything.
/// </summary>
public sealed record GgufArray
{
    Array? _items;
    byte[]?[]? _invalidUtf8;
    readonly Utf8Block? _utf8;

    public GgufArray(GgufValueType elementType, Array items)
    {
        ElementType = elementType;
        _items = items;
    }

    /// <summary>A string array kept as UTF-8: element i is bytes[offsets[i]..offsets[i + 1]).</summary>
    internal GgufArray(byte[] bytes, int[] offsets)
    {
        ElementType = GgufValueType.String;
        _utf8 = new Utf8Block(bytes, offsets);
    }

    sealed record Utf8Block(byte[] Bytes, int[] Offsets)
    {
        public ReadOnlySpan<byte> Element(int i) => Bytes.AsSpan(Offsets[i], Offsets[i + 1] - Offsets[i]);
    }

    public GgufValueType ElementType { get; init; }

    public Array Items
    {
        get => _items ??= DecodeStrings();
        init { _items = value; _invalidUtf8 = null; }
    }

    public int Count => _items?.Length ?? _utf8!.Offsets.Length - 1;

    /// <summary>
    /// For string arrays read from a file: the exact on-disk bytes of each element that is not valid UTF-8
    /// (its <see cref="Items"/> entry then holds the text decoded with U+FFFD replacements); null entries, or a
    /// null array, mean the element is valid UTF-8. The writer uses these bytes so such files round-trip exactly.
    /// </summary>
    public byte[]?[]? InvalidUtf8Strings
    {
        get { if (_items is null && _utf8 is not null) _items = DecodeStrings(); return _invalidUtf8; }
        init => _invalidUtf8 = value;
    }

    string[] DecodeStrings()
    {
        var block = _utf8!;
        var strings = new string[block.Offsets.Length - 1];
        byte[]?[]? invalid = null;
        for (int i = 0; i < strings.Length; i++)
        {
            var bytes = block.Element(i);
            strings[i] = Encoding.UTF8.GetString(bytes);
            if (!System.Text.Unicode.Utf8.IsValid(bytes)) (invalid ??= new byte[]?[strings.Length])[i] = bytes.ToArray();
        }
        _invalidUtf8 = invalid;
        return strings;
    }

    /// <summary>
    /// For a string array read from a file: all elements' bytes in one block, and where each starts (Count + 1 offsets,
    /// the last one the block's length) — the array's own storage, shared rather than copied, for a reader that keeps
    /// the texts (a tokenizer's vocabulary). False for arrays built in memory.
    /// </summary>
    public bool TryGetUtf8Block(out ReadOnlyMemory<byte> bytes, out ReadOnlyMemory<int> offsets)
    {
        bytes = _utf8?.Bytes;
        offsets = _utf8?.Offsets;
        return _utf8 is not null;
    }

    /// <summary>The on-disk bytes of string element <paramref name="index"/>.</summary>
    public byte[] GetStringBytes(int index) => GetUtf8(index).ToArray();

    /// <summary>
    /// The on-disk bytes of string element <paramref name="index"/> (not necessarily valid UTF-8). For an array read
    /// from a file this is a view of its bytes and decodes nothing; for one built in memory, the string's encoding.
    /// </summary>
    public ReadOnlySpan<byte> GetUtf8(int index)
    {
        if (ElementType != GgufValueType.String) throw new InvalidCastException($"GGUF array of {ElementType} does not hold strings.");
        if (_utf8 is not null) return _utf8.Element(index);
        if (Items is not string[] strings) throw new InvalidCastException($"GGUF array of {ElementType} does not hold a string[].");
        return InvalidUtf8Strings?[index] ?? Encoding.UTF8.GetBytes(strings[index]);
    }

    /// <summary>Element type and count, and every element equal (floats compared bit for bit, strings by their on-disk bytes).</summary>
    public bool ContentEquals(GgufArray other)
    {
        if (ElementType != other.ElementType || Count != other.Count) return false;
        switch (Items)
        {
            case string[] strings:
                var otherStrings = (string[])other.Items;
                for (int i = 0; i < strings.Length; i++)
                {
                    bool raw = InvalidUtf8Strings?[i] is not null || other.InvalidUtf8Strings?[i] is not null;
                    if (raw ? !GetStringBytes(i).AsSpan().SequenceEqual(other.GetStringBytes(i)) : strings[i] != otherStrings[i])
                        return false;
                }
                return true;
            case GgufArray[] nested:
                var otherNested = (GgufArray[])other.Items;
                for (int i = 0; i < nested.Length; i++)
                    if (!nested[i].ContentEquals(otherNested[i])) return false;
                return true;
            case float[] f: return BitwiseEqual(f, (float[])other.Items);
            case double[] d: return BitwiseEqual(d, (double[])other.Items);
            default:
                for (int i = 0; i < Items.Length; i++)
                    if (!Equals(Items.GetValue(i), other.Items.GetValue(i))) return false;
                return true;
        }
    }

    static bool BitwiseEqual<T>(T[] a, T[] b) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan()));

    /// <summary>The element type a CLR element type maps to (byte → UInt8, …, GgufArray → Array).</summary>
    public static GgufValueType ElementTypeOf(Type clrType) =>
        clrType == typeof(byte) ? GgufValueType.UInt8 :
        clrType == typeof(sbyte) ? GgufValueType.Int8 :
        clrType == typeof(ushort) ? GgufValueType.UInt16 :
        clrType == typeof(short) ? GgufValueType.Int16 :
        clrType == typeof(uint) ? GgufValueType.UInt32 :
        clrType == typeof(int) ? GgufValueType.Int32 :
        clrType == typeof(float) ? GgufValueType.Float32 :
        clrType == typeof(bool) ? GgufValueType.Bool :
        clrType == typeof(string) ? GgufValueType.String :
        clrType == typeof(ulong) ? GgufValueType.UInt64 :
        clrType == typeof(long) ? GgufValueType.Int64 :
        clrType == typeof(double) ? GgufValueType.Float64 :
        clrType == typeof(GgufArray) ? GgufValueType.Array :
        throw new ArgumentException($"{clrType.Name} has no GGUF value type.", nameof(clrType));

    /// <summary>The CLR type that holds one value of <paramref name="type"/> (UInt8 → byte, …, Array → GgufArray).</summary>
    public static Type ClrTypeOf(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => typeof(byte), GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort), GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint), GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float), GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string), GgufValueType.Array => typeof(GgufArray),
        GgufValueType.UInt64 => typeof(ulong), GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        _ => throw new ArgumentException($"unknown GGUF value type {(uint)type}", nameof(type)),
    };

    /// <summary>An array whose element type follows from <typeparamref name="T"/>.</summary>
    public static GgufArray Of<T>(T[] items) => new(ElementTypeOf(typeof(T)), items);
}

/// <summary>One metadata value: its on-disk type and its CLR value (boxed scalar, string or <see cref="GgufArray"/>).</summary>
public sealed record GgufValue(GgufValueType Type, object Value)
{
    public static GgufValue Of(string s) => new(GgufValueType.String, s);
    public static GgufValue Of(byte v) => new(GgufValueType.UInt8, v);
    public static GgufValue Of(sbyte v) => new(GgufValueType.Int8, v);
    public static GgufValue Of(ushort v) => new(GgufValueType.UInt16, v);
    public static GgufValue Of(short v) => new(GgufValueType.Int16, v);
    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue Of(long v) => new(GgufValueType.Int64, v);
    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Of(double v) => new(GgufValueType.Float64, v);
    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Of(GgufArray v) => new(GgufValueType.Array, v);
    public static GgufValue Of(string[] v) => new(GgufValueType.Array, new GgufArray(GgufValueType.String, v));
    public static GgufValue Of(float[] v) => new(GgufValueType.Array, new GgufArray(GgufValueType.Float32, v));
    public static GgufValue Of(int[] v) => new(GgufValueType.Array, new GgufArray(GgufValueType.Int32, v));
    /// <summary>An array value whose element type follows from <typeparamref name="T"/>.</summary>
    public static GgufValue OfArray<T>(T[] items) => new(GgufValueType.Array, GgufArray.Of(items));

    /// <summary>
    /// For a String value read from a file whose bytes are not valid UTF-8: those exact bytes
    /// (<see cref="Value"/> then holds the text decoded with U+FFFD replacements). Null otherwise.
    /// </summary>
    public byte[]? InvalidUtf8Bytes { get; init; }

    public bool IsInteger => Type is GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.UInt16 or GgufValueType.Int16
        or GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.UInt64 or GgufValueType.Int64;

    public string AsString() => Value as string ?? throw new InvalidCastException($"GGUF value of type {Type} is not a string.");

    /// <summary>The on-disk bytes of a String value.</summary>
    public byte[] GetStringBytes() => InvalidUtf8Bytes ?? Encoding.UTF8.GetBytes(AsString());

    public long AsInt64() => Type switch
    {
        GgufValueType.UInt8 => (byte)Value, GgufValueType.Int8 => (sbyte)Value,
        GgufValueType.UInt16 => (ushort)Value, GgufValueType.Int16 => (short)Value,
        GgufValueType.UInt32 => (uint)Value, GgufValueType.Int32 => (int)Value,
        GgufValueType.UInt64 => checked((long)(ulong)Value), GgufValueType.Int64 => (long)Value,
        GgufValueType.Bool => (bool)Value ? 1 : 0,
        _ => throw new InvalidCastException($"GGUF value of type {Type} is not an integer."),
    };

    public double AsDouble() => Type switch
    {
        GgufValueType.Float32 => (float)Value,
        GgufValueType.Float64 => (double)Value,
        _ when IsInteger => AsInt64(),
        _ => throw new InvalidCastException($"GGUF value of type {Type} is not a number."),
    };

    public bool AsBool() => Type == GgufValueType.Bool ? (bool)Value : AsInt64() != 0;

    public GgufArray AsArray() => Value as GgufArray ?? throw new InvalidCastException($"GGUF value of type {Type} is not an array.");

    /// <summary>Same type and same content (floats compared bit for bit, strings by their on-disk bytes, arrays element by element).</summary>
    public bool ContentEquals(GgufValue other)
    {
        if (Type != other.Type) return false;
        return (Value, other.Value) switch
        {
            (GgufArray a, GgufArray b) => a.ContentEquals(b),
            (string a, string b) => InvalidUtf8Bytes is null && other.InvalidUtf8Bytes is null
                ? a == b
                : GetStringBytes().AsSpan().SequenceEqual(other.GetStringBytes()),
            (float a, float b) => BitConverter.SingleToUInt32Bits(a) == BitConverter.SingleToUInt32Bits(b),
            (double a, double b) => BitConverter.DoubleToUInt64Bits(a) == BitConverter.DoubleToUInt64Bits(b),
            var (a, b) => Equals(a, b),
        };
    }

    public override string ToString() => Value switch
    {
        string s => s,
        GgufArray a => $"[{a.ElementType} × {a.Count}]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? "",
    };
}
