using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;

namespace Tandem.Gguf;

// Layout read here (GGUF v2/v3, little-endian):
//   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count × { string key | u32 value_type | value }
//       string = u64 byte length + UTF-8 bytes (no terminator); keys and tensor names must be non-empty UTF-8,
//                string values that are not keep their raw bytes (GgufValue.InvalidUtf8Bytes) so they round-trip
//       array  = u32 element_type | u64 count | count × element (arrays may nest)
//   tensor_count × { string name | u32 n_dims | n_dims × u64 ne | u32 ggml_type | u64 offset }
//   zero padding up to general.alignment (default 32)
//   tensor data: each tensor at data_start + offset, offsets multiples of the alignment, tensors not overlapping
// The whole file is memory-mapped once; tensor data is handed out as views over the mapping, never copied. String
// arrays are copied out as one UTF-8 block each (decoded to strings only on demand), and the header's pages are then
// released from the process's memory: nothing reads them through the mapping again.

/// <summary>An opened GGUF file: metadata, tensor infos, and zero-copy tensor data over a memory mapping.</summary>
public sealed unsafe class GgufFile : IDisposable
{
    public const uint Magic = 0x46554747; // "GGUF" read as little-endian u32
    public const int DefaultAlignment = 32;
    public const int MaxDimensions = 4;

    readonly MemoryMappedFile? _map;
    readonly MemoryMappedViewAccessor? _view;
    byte* _base;

    public string Path { get; }
    public uint Version { get; }
    public long FileLength { get; }
    public int Alignment { get; }
    /// <summary>Absolute file offset of the tensor-data section.</summary>
    public long DataOffset { get; }
    /// <summary>Metadata in file order (the writer reproduces this order).</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> MetadataList { get; }
    public IReadOnlyDictionary<string, GgufValue> Metadata { get; }
    /// <summary>Tensors in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }
    readonly Dictionary<string, GgufTensorInfo> _tensorsByName;

    GgufFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePtr, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
        FileLength = length;
        var name = System.IO.Path.GetFileName(path);
        var cursor = new Cursor(name, basePtr, length);

        if (length < 4) throw new GgufFormatException(name, "magic", $"file is {length} bytes; expected at least the 4-byte magic \"GGUF\"");
        uint magic = cursor.U32("magic");
        if (magic != Magic)
            throw new GgufFormatException(name, "magic", $"expected \"GGUF\" (0x{Magic:X8}), found 0x{magic:X8}; not a GGUF file");
        Version = cursor.U32("version");
        if (Version is not (2 or 3))
        {
            bool bigEndian = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(Version) is 2 or 3;
            throw new GgufFormatException(name, "version", $"expected version 2 or 3, found {Version}"
                + (bigEndian ? " (this looks like a big-endian GGUF file, which is not supported)" : Version == 1 ? " (GGUF v1 is obsolete and not supported)" : ""));
        }
        ulong tensorCount = cursor.U64("tensor_count");
        ulong kvCount = cursor.U64("metadata_kv_count");
        // Every KV takes at least 8 (key length) + 4 (type) + 1 bytes; every tensor info at least 8 + 4 + 4 + 8.
        if (kvCount > (ulong)(length - cursor.Position) / 13)
            throw new GgufFormatException(name, "metadata_kv_count", $"{kvCount} entries cannot fit in the {length - cursor.Position} bytes left in the file");
        if (tensorCount > (ulong)(length - cursor.Position) / 24)
            throw new GgufFormatException(name, "tensor_count", $"{tensorCount} tensors cannot fit in the {length - cursor.Position} bytes left in the file");

        int kvCapacity = (int)Math.Min(kvCount, 1 << 16);
        var list = new List<KeyValuePair<string, GgufValue>>(kvCapacity);
        var dict = new Dictionary<string, GgufValue>(kvCapacity, StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = cursor.Utf8Name($"metadata[{i}].key");
            var type = (GgufValueType)cursor.U32($"metadata '{key}' value type");
            var value = cursor.Value(type, $"metadata '{key}'", depth: 0);
            if (!dict.TryAdd(key, value))
                throw new GgufFormatException(name, $"metadata '{key}'", "duplicate key; each key must appear once");
            list.Add(new(key, value));
        }
        MetadataList = list;
        Metadata = dict;

        Alignment = DefaultAlignment;
        if (dict.TryGetValue("general.alignment", out var alignValue))
        {
            if (alignValue.Type != GgufValueType.UInt32)
                throw new GgufFormatException(name, "metadata 'general.alignment'", $"expected type UInt32, found {alignValue.Type}");
            uint a = (uint)alignValue.Value;
            if (a == 0 || (a & (a - 1)) != 0 || a > 1 << 20)
                throw new GgufFormatException(name, "metadata 'general.alignment'", $"expected a power of two between 1 and 1 MiB, found {a}");
            Alignment = (int)a;
        }

        int tensorCapacity = (int)Math.Min(tensorCount, 1 << 16);
        var tensors = new List<GgufTensorInfo>(tensorCapacity);
        _tensorsByName = new Dictionary<string, GgufTensorInfo>(tensorCapacity, StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            string tname = cursor.Utf8Name($"tensor[{i}].name");
            string field = $"tensor '{tname}'";
            uint nDims = cursor.U32($"{field} n_dims");
            if (nDims > MaxDimensions)
                throw new GgufFormatException(name, $"{field} n_dims", $"expected at most {MaxDimensions} dimensions, found {nDims}");
            var dims = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++)
            {
                ulong ne = cursor.U64($"{field} ne[{d}]");
                if (ne > long.MaxValue)
                    throw new GgufFormatException(name, $"{field} ne[{d}]", $"dimension {ne} does not fit a signed 64-bit count");
                dims[d] = (long)ne;
                if (ne != 0 && elements > long.MaxValue / (long)ne)
                    throw new GgufFormatException(name, $"{field} dimensions", $"element count of shape [{string.Join(", ", dims.Take(d + 1))}] overflows 64 bits");
                elements *= (long)ne;
            }
            uint rawType = cursor.U32($"{field} type");
            if (!GgmlTypeInfo.TryGet((GgmlType)rawType, out var typeInfo))
                throw new GgufFormatException(name, $"{field} type", $"unknown or unsupported ggml type {rawType}; supported: {string.Join(", ", GgmlTypeInfo.All.Select(t => $"{t.Name}={(uint)t.Type}"))}");
            long columns = nDims > 0 ? dims[0] : 1;
            if (columns % typeInfo.BlockSize != 0)
                throw new GgufFormatException(name, $"{field} ne[0]", $"row length {columns} is not a multiple of the {typeInfo.Name} block size {typeInfo.BlockSize}");
            if (elements / typeInfo.BlockSize > long.MaxValue / typeInfo.TypeSize)
                throw new GgufFormatException(name, $"{field} dimensions", $"byte size of {elements} {typeInfo.Name} elements overflows 64 bits");
            ulong offset = cursor.U64($"{field} offset");
            if (offset % (ulong)Alignment != 0)
                throw new GgufFormatException(name, $"{field} offset", $"offset {offset} is not a multiple of the alignment {Alignment}");
            var info = new GgufTensorInfo(tname, dims, typeInfo.Type, offset);
            if (!_tensorsByName.TryAdd(tname, info))
                throw new GgufFormatException(name, field, "duplicate tensor name; each tensor must appear once");
            tensors.Add(info);
        }
        Tensors = tensors;

        long headerEnd = cursor.Position;
        DataOffset = AlignUp(headerEnd, Alignment);
        if (tensorCount > 0 && DataOffset > length)
            throw new GgufFormatException(name, "tensor data", $"file ends at {length} bytes, before the aligned start of tensor data at {DataOffset}");
        long dataBytes = length - Math.Min(length, DataOffset);
        foreach (var t in tensors)
        {
            long size = t.ByteSize;
            if (t.Offset > (ulong)dataBytes || size > dataBytes - (long)t.Offset)
                throw new GgufFormatException(name, $"tensor '{t.Name}' data",
                    $"bytes [{DataOffset + (decimal)t.Offset}, {DataOffset + (decimal)t.Offset + size}) lie outside the file of {length} bytes (truncated?)");
        }
        // Tensors must not share bytes: sorted by offset, each must start at or after the previous one's end.
        GgufTensorInfo? previous = null;
        foreach (var t in tensors.Where(t => t.ByteSize > 0).OrderBy(t => t.Offset))
        {
            if (previous is not null && (long)t.Offset < (long)previous.Offset + previous.ByteSize)
                throw new GgufFormatException(name, $"tensor '{t.Name}' offset",
                    $"data at [{t.Offset}, {(long)t.Offset + t.ByteSize}) overlaps tensor '{previous.Name}' at [{previous.Offset}, {(long)previous.Offset + previous.ByteSize})");
            previous = t;
        }
    }

    static long AlignUp(long x, int alignment) => (x + alignment - 1) / alignment * alignment;

    /// <summary>Opens and validates a GGUF file; the file is mapped read-only and stays mapped until disposed.</summary>
    public static GgufFile Open(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"GGUF file not found: {path}", path);
        long length = info.Length;
        if (length == 0)
            throw new GgufFormatException(info.Name, "magic", "file is empty; expected a GGUF header");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* ptr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref ptr);
            ptr += view.PointerOffset;
            try
            {
                var file = new GgufFile(path, map, view, ptr, length);
                // The header (metadata, tensor infos) is parsed into objects; its pages are not needed in memory
                // any more (a vocabulary's are several MB).
                MappedPages.Release(ptr, Math.Min(file.DataOffset, length));
                return file;
            }
            catch
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
                throw;
            }
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>Total number of tensor elements (weights) in the file.</summary>
    public long ParameterCount => Tensors.Sum(t => t.ElementCount);

    /// <summary>Per tensor type, in ascending type order: how many tensors, their elements and their bytes.</summary>
    public IReadOnlyList<GgufTensorTypeSummary> TensorTypeSummary =>
        Tensors.GroupBy(t => t.Type)
            .OrderBy(g => g.Key)
            .Select(g => new GgufTensorTypeSummary(g.Key, g.Count(), g.Sum(t => t.ElementCount), g.Sum(t => t.ByteSize)))
            .ToList();

    public bool TryGetTensor(string name, out GgufTensorInfo info) => _tensorsByName.TryGetValue(name, out info!);

    public GgufTensorInfo GetTensor(string name) =>
        _tensorsByName.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"{System.IO.Path.GetFileName(Path)}: tensor '{name}' not found");

    /// <summary>Pointer to a tensor's first byte inside the mapping (valid until the file is disposed).</summary>
    public byte* TensorPointer(GgufTensorInfo tensor)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        return _base + DataOffset + (long)tensor.Offset;
    }

    /// <summary>Zero-copy view of a tensor's bytes. Tensors over 2 GiB must be read through <see cref="TensorPointer"/>.</summary>
    public ReadOnlySpan<byte> TensorBytes(GgufTensorInfo tensor) => new(TensorPointer(tensor), checked((int)tensor.ByteSize));

    /// <summary>
    /// Gives back the resident mapped pages that lie wholly inside a tensor whose bytes were copied out and will not be
    /// read through the mapping again (they stay in the page cache; a later read maps them back). Pages shared with a
    /// neighbouring tensor stay.
    /// </summary>
    public void ReleasePages(GgufTensorInfo tensor) => MappedPages.Release(TensorPointer(tensor), tensor.ByteSize);

    /// <summary>The raw bytes of the whole file (for the writer's padding-faithful copy and for hashing).</summary>
    public byte* BasePointer
    {
        get { ObjectDisposedException.ThrowIf(_base == null, this); return _base; }
    }

    // ---- typed metadata accessors ----

    public bool Has(string key) => Metadata.ContainsKey(key);

    public string? GetString(string key) => Metadata.TryGetValue(key, out var v) ? Expect(key, v, GgufValueType.String).AsString() : null;

    public long? GetInt(string key) => Metadata.TryGetValue(key, out var v) ? (v.IsInteger || v.Type == GgufValueType.Bool ? v.AsInt64() : throw Mismatch(key, v, "an integer")) : null;

    public double? GetFloat(string key) => Metadata.TryGetValue(key, out var v) ? (v.Type is GgufValueType.Float32 or GgufValueType.Float64 || v.IsInteger ? v.AsDouble() : throw Mismatch(key, v, "a number")) : null;

    public bool? GetBool(string key) => Metadata.TryGetValue(key, out var v) ? (v.Type == GgufValueType.Bool || v.IsInteger ? v.AsBool() : throw Mismatch(key, v, "a bool")) : null;

    public GgufArray? GetArray(string key) => Metadata.TryGetValue(key, out var v) ? Expect(key, v, GgufValueType.Array).AsArray() : null;

    public T[]? GetArray<T>(string key)
    {
        var a = GetArray(key);
        if (a is null) return null;
        return a.Items as T[] ?? throw new GgufFormatException(System.IO.Path.GetFileName(Path), $"metadata '{key}'", $"expected an array of {typeof(T).Name}, found an array of {a.ElementType}");
    }

    public long RequireInt(string key) => GetInt(key) ?? throw Missing(key, "an integer");
    public double RequireFloat(string key) => GetFloat(key) ?? throw Missing(key, "a number");
    public string RequireString(string key) => GetString(key) ?? throw Missing(key, "a string");

    GgufValue Expect(string key, GgufValue v, GgufValueType type) => v.Type == type ? v : throw Mismatch(key, v, type.ToString());
    GgufFormatException Mismatch(string key, GgufValue v, string expected) =>
        new(System.IO.Path.GetFileName(Path), $"metadata '{key}'", $"expected {expected}, found {v.Type}");
    GgufFormatException Missing(string key, string expected) =>
        new(System.IO.Path.GetFileName(Path), $"metadata '{key}'", $"required key is missing; expected {expected}");

    public void Dispose()
    {
        if (_base == null) return;
        _base = null;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }

    /// <summary>Names a field for error messages; the text is only built when an error is raised.</summary>
    readonly struct FieldName(string name, int index = -1, string suffix = "")
    {
        public FieldName WithSuffix(string newSuffix) => new(name, index, newSuffix);
        public static implicit operator FieldName(string name) => new(name);
        public override string ToString() => index < 0 ? name + suffix : $"{name}[{index}]{suffix}";
    }

    /// <summary>Bounds-checked sequential reader over the mapping; every read names the field it is for.</summary>
    sealed class Cursor(string file, byte* start, long length)
    {
        const int MaxArrayDepth = 16;
        public long Position { get; private set; }

        long Remaining => length - Position;

        void Need(long bytes, FieldName field)
        {
            if (bytes < 0 || bytes > Remaining)
                throw new GgufFormatException(file, field.ToString(), $"file truncated: needs {bytes} bytes at offset {Position}, but only {Math.Max(0, Remaining)} remain");
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        T Read<T>(FieldName field) where T : unmanaged
        {
            Need(sizeof(T), field);
            T v = Unsafe.ReadUnaligned<T>(start + Position);
            Position += sizeof(T);
            return v;
        }

        public uint U32(string field) => Read<uint>(field);
        public ulong U64(string field) => Read<ulong>(field);

        /// <summary>Reads a string's bytes; returns the decoded text, and the raw bytes when they are not valid UTF-8.</summary>
        public string String(FieldName field, out byte[]? invalidUtf8Bytes)
        {
            ulong len = Read<ulong>(field.WithSuffix(" length"));
            if (len > (ulong)Remaining)
                throw new GgufFormatException(file, field.ToString(), $"string length {len} exceeds the {Remaining} bytes left in the file");
            if (len > int.MaxValue)
                throw new GgufFormatException(file, field.ToString(), $"string length {len} exceeds the 2 GiB limit on one string");
            var bytes = new ReadOnlySpan<byte>(start + Position, (int)len);
            invalidUtf8Bytes = Utf8.IsValid(bytes) ? null : bytes.ToArray();
            var s = Encoding.UTF8.GetString(bytes);
            Position += (long)len;
            return s;
        }

        /// <summary>A key or tensor name: must be non-empty, valid UTF-8.</summary>
        public string Utf8Name(string field)
        {
            long at = Position;
            string s = String(field, out var invalid);
            if (invalid is not null)
                throw new GgufFormatException(file, field, $"the {invalid.Length}-byte name at offset {at + 8} is not valid UTF-8");
            if (s.Length == 0)
                throw new GgufFormatException(file, field, $"the name at offset {at} is empty");
            return s;
        }

        static int ElementMinSize(GgufValueType t) => t switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => 0,
        };

        public GgufValue Value(GgufValueType type, string field, int depth) => type switch
        {
            GgufValueType.UInt8 => new(type, Read<byte>(field)),
            GgufValueType.Int8 => new(type, Read<sbyte>(field)),
            GgufValueType.UInt16 => new(type, Read<ushort>(field)),
            GgufValueType.Int16 => new(type, Read<short>(field)),
            GgufValueType.UInt32 => new(type, Read<uint>(field)),
            GgufValueType.Int32 => new(type, Read<int>(field)),
            GgufValueType.Float32 => new(type, Read<float>(field)),
            GgufValueType.Bool => new(type, Bool(field)),
            GgufValueType.String => new(type, String(field, out var invalid)) { InvalidUtf8Bytes = invalid },
            GgufValueType.UInt64 => new(type, Read<ulong>(field)),
            GgufValueType.Int64 => new(type, Read<long>(field)),
            GgufValueType.Float64 => new(type, Read<double>(field)),
            GgufValueType.Array => new(type, Array(field, depth)),
            _ => throw new GgufFormatException(file, field, $"unknown value type {(uint)type}; expected 0..12"),
        };

        bool Bool(FieldName field)
        {
            byte b = Read<byte>(field);
            if (b > 1) throw new GgufFormatException(file, field.ToString(), $"bool must be 0 or 1, found {b}");
            return b == 1;
        }

        GgufArray Array(string field, int depth)
        {
            if (depth >= MaxArrayDepth)
                throw new GgufFormatException(file, field, $"arrays nested deeper than {MaxArrayDepth} levels");
            var elemType = (GgufValueType)Read<uint>(field + " element type");
            int min = ElementMinSize(elemType);
            if (min == 0) throw new GgufFormatException(file, field + " element type", $"unknown value type {(uint)elemType}; expected 0..12");
            ulong count = Read<ulong>(field + " count");
            if (count > (ulong)(Remaining / min))
                throw new GgufFormatException(file, field + " count", $"{count} elements of {elemType} cannot fit in the {Remaining} bytes left in the file");
            if (count > (ulong)System.Array.MaxLength)
                throw new GgufFormatException(file, field + " count", $"{count} elements exceed the limit of {System.Array.MaxLength} on one array");
            int n = (int)count;
            switch (elemType)
            {
                case GgufValueType.UInt8: return new(elemType, Block<byte>(n, field));
                case GgufValueType.Int8: return new(elemType, Block<sbyte>(n, field));
                case GgufValueType.UInt16: return new(elemType, Block<ushort>(n, field));
                case GgufValueType.Int16: return new(elemType, Block<short>(n, field));
                case GgufValueType.UInt32: return new(elemType, Block<uint>(n, field));
                case GgufValueType.Int32: return new(elemType, Block<int>(n, field));
                case GgufValueType.Float32: return new(elemType, Block<float>(n, field));
                case GgufValueType.UInt64: return new(elemType, Block<ulong>(n, field));
                case GgufValueType.Int64: return new(elemType, Block<long>(n, field));
                case GgufValueType.Float64: return new(elemType, Block<double>(n, field));
                case GgufValueType.Bool:
                {
                    var a = new bool[n];
                    for (int i = 0; i < n; i++) a[i] = Bool(new FieldName(field, i));
                    return new(elemType, a);
                }
                case GgufValueType.String: return StringArray(n, field);
                default:
                {
                    var a = new GgufArray[n];
                    for (int i = 0; i < n; i++) a[i] = Array($"{field}[{i}]", depth + 1);
                    return new(elemType, a);
                }
            }
        }

        /// <summary>A string array, kept as its elements' bytes in one block (decoded only when someone asks for strings).</summary>
        GgufArray StringArray(int n, string field)
        {
            var offsets = new int[n + 1];
            long begin = Position;
            for (int i = 0; i < n; i++)
            {
                ulong len = Read<ulong>(new FieldName(field, i, " length"));
                if (len > (ulong)Remaining)
                    throw new GgufFormatException(file, new FieldName(field, i).ToString(), $"string length {len} exceeds the {Remaining} bytes left in the file");
                if (Position + (long)len - begin - 8L * (i + 1) > int.MaxValue)
                    throw new GgufFormatException(file, field, $"the array's strings exceed the 2 GiB limit on one array");
                offsets[i + 1] = offsets[i] + (int)len;
                Position += (long)len;
            }
            // second pass over the same bytes: copy each element's text, without its length prefix, into one block
            var bytes = new byte[offsets[n]];
            long at = begin;
            for (int i = 0; i < n; i++)
            {
                int len = offsets[i + 1] - offsets[i];
                new ReadOnlySpan<byte>(start + at + 8, len).CopyTo(bytes.AsSpan(offsets[i]));
                at += 8 + len;
            }
            return new GgufArray(bytes, offsets);
        }

        T[] Block<T>(int n, FieldName field) where T : unmanaged
        {
            Need((long)n * sizeof(T), field);
            var a = new T[n];
            new ReadOnlySpan<T>(start + Position, n).CopyTo(a);
            Position += (long)n * sizeof(T);
            return a;
        }
    }
}
