using System.Globalization;

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
/// </summary>
public sealed record GgufArray(GgufValueType ElementType, Array Items)
{
    public int Count => Items.Length;
}

/// <summary>One metadata value: its on-disk type and its CLR value (boxed scalar, string or <see cref="GgufArray"/>).</summary>
public sealed record GgufValue(GgufValueType Type, object Value)
{
    public static GgufValue Of(string s) => new(GgufValueType.String, s);
    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Of(string[] v) => new(GgufValueType.Array, new GgufArray(GgufValueType.String, v));
    public static GgufValue Of(float[] v) => new(GgufValueType.Array, new GgufArray(GgufValueType.Float32, v));
    public static GgufValue Of(int[] v) => new(GgufValueType.Array, new GgufArray(GgufValueType.Int32, v));

    public bool IsInteger => Type is GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.UInt16 or GgufValueType.Int16
        or GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.UInt64 or GgufValueType.Int64;

    public string AsString() => Value as string ?? throw new InvalidCastException($"GGUF value of type {Type} is not a string.");

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

    public override string ToString() => Value switch
    {
        string s => s,
        GgufArray a => $"[{a.ElementType} × {a.Count}]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? "",
    };
}
