using System.Buffers;
using System.Buffers.Binary;
using System.Text.Unicode;

namespace Tandem.Gguf;

// Layout written here (GGUF v3 by default, v2 on request; both little-endian and laid out alike):
//   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count × { string key | u32 value_type | value }   (in the order given)
//       string = u64 byte length + UTF-8 bytes; array = u32 element_type | u64 count | elements
//   tensor_count × { string name | u32 n_dims | n_dims × u64 ne | u32 ggml_type | u64 offset }
//   if there are tensors: zero padding to general.alignment (default 32), then each tensor's data in the
//   order given, each starting at an aligned offset, zero padding after each (including the last).
// The file is written to a temporary file beside the destination and renamed over it only when complete.

/// <summary>Options for <see cref="GgufWriter"/>.</summary>
public sealed record GgufWriterOptions
{
    /// <summary>GGUF version to write: 3 (default) or 2.</summary>
    public uint Version { get; init; } = 3;
    /// <summary>Replace an existing destination file (default). When false, an existing file is an error.</summary>
    public bool Overwrite { get; init; } = true;
    /// <summary>Flush the file to disk before renaming it into place (default), so a crash never leaves a partial file.</summary>
    public bool FlushToDisk { get; init; } = true;
}

/// <summary>Where a tensor's bytes come from: a buffer, or a callback that writes them into a stream.</summary>
public sealed class GgufTensorData
{
    readonly ReadOnlyMemory<byte> _bytes;
    readonly Action<Stream>? _writeTo;

    GgufTensorData(ReadOnlyMemory<byte> bytes, Action<Stream>? writeTo)
    {
        _bytes = bytes;
        _writeTo = writeTo;
    }

    /// <summary>The tensor's bytes, already in memory (not copied; must stay unchanged until the write ends).</summary>
    public static GgufTensorData FromBytes(ReadOnlyMemory<byte> bytes) => new(bytes, null);

    /// <summary>
    /// A callback that writes exactly the tensor's bytes into the stream it is given. It is called once, when the
    /// writer reaches this tensor, so tensors can be produced one at a time without holding them all in memory.
    /// </summary>
    public static GgufTensorData FromCallback(Action<Stream> writeTo) => new(default, writeTo ?? throw new ArgumentNullException(nameof(writeTo)));

    public static implicit operator GgufTensorData(byte[] bytes) => FromBytes(bytes);

    /// <summary>Length of the in-memory bytes; null for a callback (its length is checked as it writes).</summary>
    internal long? KnownLength => _writeTo is null ? _bytes.Length : null;

    internal void WriteTo(Stream stream)
    {
        if (_writeTo is null) stream.Write(_bytes.Span);
        else _writeTo(stream);
    }
}

/// <summary>A tensor to write: name, dimensions in ggml order (ne[0] innermost), element type and data.</summary>
public sealed record GgufTensorToWrite(string Name, long[] Dimensions, GgmlType Type, GgufTensorData Data)
{
    /// <summary>Bytes of data the dimensions and type call for.</summary>
    public long ByteSize => new GgufTensorInfo(Name, Dimensions, Type, 0).ByteSize;
}

/// <summary>Writes GGUF files atomically from an ordered metadata list and an ordered tensor list.</summary>
public static class GgufWriter
{
    const int MaxArrayDepth = 16;
    const int MaxAlignment = 1 << 20;

    /// <summary>
    /// Writes <paramref name="metadata"/> (in order) and <paramref name="tensors"/> (in order, packed at aligned
    /// offsets) to <paramref name="path"/>. Inputs are validated before anything is written; on any failure no
    /// file is left at <paramref name="path"/> (an existing one is kept) and the temporary file is deleted.
    /// </summary>
    public static void Write(string path, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufTensorToWrite> tensors,
        GgufWriterOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(tensors);
        options ??= new GgufWriterOptions();
        if (options.Version is not (2 or 3))
            throw new ArgumentException($"GGUF version {options.Version} cannot be written; expected 2 or 3.", nameof(options));

        int alignment = ValidateMetadata(metadata);
        var layout = ValidateTensors(tensors, alignment);
        var header = BuildHeader(options.Version, metadata, tensors, layout); // also checks every string encodes as UTF-8

        var fullPath = System.IO.Path.GetFullPath(path);
        if (!options.Overwrite && File.Exists(fullPath))
            throw new IOException($"{fullPath} already exists (GgufWriterOptions.Overwrite is false).");
        var directory = System.IO.Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"{path} has no directory.", nameof(path));
        var tempPath = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                stream.Write(header.WrittenSpan);
                if (tensors.Count > 0)
                {
                    long dataStart = AlignUp(stream.Position, alignment);
                    WriteZeros(stream, dataStart - stream.Position);
                    for (int i = 0; i < tensors.Count; i++)
                    {
                        WriteZeros(stream, dataStart + layout.Offsets[i] - stream.Position);
                        WriteTensorData(stream, tensors[i], layout.Sizes[i]);
                    }
                    WriteZeros(stream, AlignUp(stream.Position - dataStart, alignment) + dataStart - stream.Position);
                }
                stream.Flush(flushToDisk: options.FlushToDisk);
            }
            File.Move(tempPath, fullPath, overwrite: options.Overwrite);
        }
        catch
        {
            try { File.Delete(tempPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Writes <paramref name="source"/>'s metadata and tensors as they are (same version unless the options say otherwise).</summary>
    public static void Copy(GgufFile source, string path, GgufWriterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        options ??= new GgufWriterOptions { Version = source.Version };
        Write(path, source.MetadataList, TensorsOf(source), options);
    }

    /// <summary>The tensors of an open file as writer input whose data is streamed from the file's mapping.</summary>
    public static IReadOnlyList<GgufTensorToWrite> TensorsOf(GgufFile source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.Tensors.Select(t => new GgufTensorToWrite(t.Name, t.Dimensions, t.Type, TensorDataOf(source, t))).ToList();
    }

    /// <summary>Data of one tensor of an open file, streamed from its mapping (works for tensors over 2 GiB).</summary>
    public static GgufTensorData TensorDataOf(GgufFile source, GgufTensorInfo tensor) =>
        GgufTensorData.FromCallback(stream => CopyFromMapping(source, tensor, stream));

    static unsafe void CopyFromMapping(GgufFile source, GgufTensorInfo tensor, Stream stream)
    {
        byte* p = source.TensorPointer(tensor);
        const int chunk = 1 << 30;
        for (long done = 0, size = tensor.ByteSize; done < size; done += chunk)
            stream.Write(new ReadOnlySpan<byte>(p + done, (int)Math.Min(chunk, size - done)));
    }

    // ---- validation ----

    sealed record Layout(long[] Offsets, long[] Sizes);

    static int ValidateMetadata(IReadOnlyList<KeyValuePair<string, GgufValue>> metadata)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int alignment = GgufFile.DefaultAlignment;
        foreach (var (key, value) in metadata)
        {
            if (string.IsNullOrEmpty(key)) throw new ArgumentException("A metadata key is null or empty.", nameof(metadata));
            if (!seen.Add(key)) throw new ArgumentException($"Duplicate metadata key '{key}'; each key must appear once.", nameof(metadata));
            if (value is null) throw new ArgumentException($"Metadata '{key}' has a null value.", nameof(metadata));
            ValidateValue(value.Type, value.Value, $"metadata '{key}'", depth: 0);
            if (key == "general.alignment")
            {
                if (value.Type != GgufValueType.UInt32)
                    throw new ArgumentException($"Metadata 'general.alignment' must be UInt32, found {value.Type}.", nameof(metadata));
                uint a = (uint)value.Value;
                if (a == 0 || (a & (a - 1)) != 0 || a > MaxAlignment)
                    throw new ArgumentException($"Metadata 'general.alignment' must be a power of two between 1 and 1 MiB, found {a}.", nameof(metadata));
                alignment = (int)a;
            }
        }
        return alignment;
    }

    static void ValidateValue(GgufValueType type, object? value, string field, int depth)
    {
        if (value is null) throw new ArgumentException($"{field}: value is null.");
        Type expected;
        try { expected = GgufArray.ClrTypeOf(type); }
        catch (ArgumentException) { throw new ArgumentException($"{field}: unknown value type {(uint)type}; expected 0..12."); }
        if (value.GetType() != expected)
            throw new ArgumentException($"{field}: a {type} value must hold a {expected.Name}, found a {value.GetType().Name}.");
        if (value is not GgufArray array) return;
        if (depth >= MaxArrayDepth) throw new ArgumentException($"{field}: arrays nested deeper than {MaxArrayDepth} levels.");
        if (array.Items is null) throw new ArgumentException($"{field}: array items are null.");
        Type expectedItems;
        try { expectedItems = GgufArray.ClrTypeOf(array.ElementType).MakeArrayType(); }
        catch (ArgumentException) { throw new ArgumentException($"{field}: unknown array element type {(uint)array.ElementType}; expected 0..12."); }
        if (array.Items.GetType() != expectedItems)
            throw new ArgumentException($"{field}: an array of {array.ElementType} must hold a {expectedItems.Name}, found a {array.Items.GetType().Name}.");
        if (array.InvalidUtf8Strings is { } raw && raw.Length != array.Count)
            throw new ArgumentException($"{field}: InvalidUtf8Strings has {raw.Length} entries for {array.Count} strings.");
        if (array.Items is string[] strings)
        {
            for (int i = 0; i < strings.Length; i++)
                if (strings[i] is null) throw new ArgumentException($"{field}[{i}]: string is null.");
        }
        else if (array.Items is GgufArray[] nested)
        {
            for (int i = 0; i < nested.Length; i++) ValidateValue(GgufValueType.Array, nested[i], $"{field}[{i}]", depth + 1);
        }
    }

    static Layout ValidateTensors(IReadOnlyList<GgufTensorToWrite> tensors, int alignment)
    {
        var offsets = new long[tensors.Count];
        var sizes = new long[tensors.Count];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long next = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i] ?? throw new ArgumentException($"Tensor {i} is null.", nameof(tensors));
            if (string.IsNullOrEmpty(t.Name)) throw new ArgumentException($"Tensor {i} has no name.", nameof(tensors));
            string field = $"tensor '{t.Name}'";
            if (!seen.Add(t.Name)) throw new ArgumentException($"Duplicate tensor name '{t.Name}'; each tensor must appear once.", nameof(tensors));
            if (t.Dimensions is null) throw new ArgumentException($"{field}: dimensions are null.", nameof(tensors));
            if (t.Dimensions.Length > GgufFile.MaxDimensions)
                throw new ArgumentException($"{field}: {t.Dimensions.Length} dimensions; at most {GgufFile.MaxDimensions} are allowed.", nameof(tensors));
            if (t.Data is null) throw new ArgumentException($"{field}: data is null.", nameof(tensors));
            if (!GgmlTypeInfo.TryGet(t.Type, out var typeInfo))
                throw new ArgumentException($"{field}: unknown or unsupported ggml type {(uint)t.Type}.", nameof(tensors));
            long elements = 1;
            foreach (long d in t.Dimensions)
            {
                if (d < 0) throw new ArgumentException($"{field}: negative dimension in shape [{string.Join(", ", t.Dimensions)}].", nameof(tensors));
                if (d != 0 && elements > long.MaxValue / d)
                    throw new ArgumentException($"{field}: element count of shape [{string.Join(", ", t.Dimensions)}] overflows 64 bits.", nameof(tensors));
                elements *= d;
            }
            long columns = t.Dimensions.Length > 0 ? t.Dimensions[0] : 1;
            if (columns % typeInfo.BlockSize != 0)
                throw new ArgumentException($"{field}: row length {columns} is not a multiple of the {typeInfo.Name} block size {typeInfo.BlockSize}.", nameof(tensors));
            if (elements / typeInfo.BlockSize > long.MaxValue / typeInfo.TypeSize)
                throw new ArgumentException($"{field}: byte size of {elements} {typeInfo.Name} elements overflows 64 bits.", nameof(tensors));
            long size = elements / typeInfo.BlockSize * typeInfo.TypeSize;
            if (t.Data.KnownLength is long given && given != size)
                throw new ArgumentException($"{field}: data is {given} bytes, but shape {ShapeText(t.Dimensions)} of {typeInfo.Name} needs {size} bytes.", nameof(tensors));
            offsets[i] = next;
            sizes[i] = size;
            if (size > long.MaxValue - next - alignment)
                throw new ArgumentException($"{field}: tensor data would extend past 2^63 bytes.", nameof(tensors));
            next = AlignUp(next + size, alignment);
        }
        return new Layout(offsets, sizes);
    }

    static string ShapeText(long[] dims) => "[" + string.Join(", ", dims) + "]";

    static long AlignUp(long x, int alignment) => (x + alignment - 1) / alignment * alignment;

    // ---- writing ----

    /// <summary>Everything before the tensor data, built in memory so that no file is created for input that cannot be encoded.</summary>
    static ArrayBufferWriter<byte> BuildHeader(uint version, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata,
        IReadOnlyList<GgufTensorToWrite> tensors, Layout layout)
    {
        var output = new HeaderWriter();
        output.U32(GgufFile.Magic);
        output.U32(version);
        output.U64((ulong)tensors.Count);
        output.U64((ulong)metadata.Count);
        foreach (var (key, value) in metadata)
        {
            output.Text(key, $"metadata key '{key}'");
            output.U32((uint)value.Type);
            string field = $"metadata '{key}'";
            switch (value.Type)
            {
                case GgufValueType.String:
                    if (value.InvalidUtf8Bytes is { } raw) output.RawText(raw);
                    else output.Text((string)value.Value, field);
                    break;
                case GgufValueType.Array: WriteArray(output, (GgufArray)value.Value, field); break;
                default: WriteScalar(output, value.Type, value.Value); break;
            }
        }
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            output.Text(t.Name, $"tensor '{t.Name}' name");
            output.U32((uint)t.Dimensions.Length);
            foreach (long d in t.Dimensions) output.U64((ulong)d);
            output.U32((uint)t.Type);
            output.U64((ulong)layout.Offsets[i]);
        }
        return output.Buffer;
    }

    static void WriteScalar(HeaderWriter output, GgufValueType type, object value)
    {
        switch (type)
        {
            case GgufValueType.UInt8: output.U8((byte)value); break;
            case GgufValueType.Int8: output.U8((byte)(sbyte)value); break;
            case GgufValueType.Bool: output.U8((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.UInt16: output.U16((ushort)value); break;
            case GgufValueType.Int16: output.U16((ushort)(short)value); break;
            case GgufValueType.UInt32: output.U32((uint)value); break;
            case GgufValueType.Int32: output.U32((uint)(int)value); break;
            case GgufValueType.Float32: output.U32(BitConverter.SingleToUInt32Bits((float)value)); break;
            case GgufValueType.UInt64: output.U64((ulong)value); break;
            case GgufValueType.Int64: output.U64((ulong)(long)value); break;
            case GgufValueType.Float64: output.U64(BitConverter.DoubleToUInt64Bits((double)value)); break;
            default: throw new InvalidOperationException($"{type} is not a scalar type.");
        }
    }

    static void WriteArray(HeaderWriter output, GgufArray array, string field)
    {
        output.U32((uint)array.ElementType);
        output.U64((ulong)array.Count);
        switch (array.Items)
        {
            case string[] strings:
                for (int i = 0; i < strings.Length; i++)
                {
                    if (array.InvalidUtf8Strings?[i] is { } raw) output.RawText(raw);
                    else output.Text(strings[i], field, i);
                }
                break;
            case GgufArray[] nested:
                for (int i = 0; i < nested.Length; i++) WriteArray(output, nested[i], $"{field}[{i}]");
                break;
            case bool[] bools:
                foreach (bool b in bools) output.U8(b ? (byte)1 : (byte)0);
                break;
            case byte[] a: output.Block(a); break;
            case sbyte[] a: output.Block(a); break;
            case ushort[] a: output.Block(a); break;
            case short[] a: output.Block(a); break;
            case uint[] a: output.Block(a); break;
            case int[] a: output.Block(a); break;
            case float[] a: output.Block(a); break;
            case ulong[] a: output.Block(a); break;
            case long[] a: output.Block(a); break;
            case double[] a: output.Block(a); break;
            default: throw new InvalidOperationException($"array of {array.ElementType} holds {array.Items.GetType().Name}.");
        }
    }

    static void WriteTensorData(Stream stream, GgufTensorToWrite tensor, long size)
    {
        var counted = new ExactLengthStream(stream, size, tensor.Name);
        tensor.Data.WriteTo(counted);
        if (counted.Written != size)
            throw new InvalidOperationException($"tensor '{tensor.Name}': the data callback wrote {counted.Written} bytes, but shape {ShapeText(tensor.Dimensions)} of {tensor.Type} needs {size} bytes.");
    }

    static void WriteZeros(Stream stream, long count)
    {
        Span<byte> zeros = stackalloc byte[256];
        zeros.Clear();
        while (count > 0)
        {
            int n = (int)Math.Min(count, zeros.Length);
            stream.Write(zeros[..n]);
            count -= n;
        }
    }

    /// <summary>Little-endian primitives and GGUF strings into a growing in-memory buffer.</summary>
    sealed class HeaderWriter
    {
        public ArrayBufferWriter<byte> Buffer { get; } = new(1 << 16);

        public void U8(byte v) { Buffer.GetSpan(1)[0] = v; Buffer.Advance(1); }
        public void U16(ushort v) { BinaryPrimitives.WriteUInt16LittleEndian(Buffer.GetSpan(2), v); Buffer.Advance(2); }
        public void U32(uint v) { BinaryPrimitives.WriteUInt32LittleEndian(Buffer.GetSpan(4), v); Buffer.Advance(4); }
        public void U64(ulong v) { BinaryPrimitives.WriteUInt64LittleEndian(Buffer.GetSpan(8), v); Buffer.Advance(8); }

        /// <summary>A GGUF string from text; text that cannot be encoded (an unpaired surrogate) is an error naming the field.</summary>
        public void Text(string text, string field, int index = -1)
        {
            var span = Buffer.GetSpan(8 + checked(text.Length * 3));
            var status = Utf8.FromUtf16(text, span[8..], out int charsRead, out int bytesWritten, replaceInvalidSequences: false);
            if (status != OperationStatus.Done)
                throw new ArgumentException($"{(index < 0 ? field : $"{field}[{index}]")}: string cannot be encoded as UTF-8 (unpaired surrogate at character {charsRead}).");
            BinaryPrimitives.WriteUInt64LittleEndian(span, (ulong)bytesWritten);
            Buffer.Advance(8 + bytesWritten);
        }

        /// <summary>A GGUF string from its exact bytes.</summary>
        public void RawText(byte[] bytes)
        {
            U64((ulong)bytes.Length);
            Buffer.Write(bytes);
        }

        /// <summary>An array of fixed-size numbers, in little-endian order.</summary>
        public void Block<T>(T[] items) where T : unmanaged
        {
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(items.AsSpan());
            var target = Buffer.GetSpan(bytes.Length)[..bytes.Length];
            bytes.CopyTo(target);
            if (!BitConverter.IsLittleEndian && items.Length > 0)
            {
                int size = bytes.Length / items.Length;
                for (int i = 0; i < bytes.Length; i += size) target.Slice(i, size).Reverse();
            }
            Buffer.Advance(bytes.Length);
        }
    }

    /// <summary>Write-only pass-through that refuses to take more than the tensor's size and counts what it took.</summary>
    sealed class ExactLengthStream(Stream inner, long expected, string tensorName) : Stream
    {
        public long Written { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Written;
        public override long Position { get => Written; set => throw new NotSupportedException("GGUF tensor data streams cannot seek."); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("GGUF tensor data streams cannot seek.");
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (buffer.Length > expected - Written)
                throw new InvalidOperationException($"tensor '{tensorName}': the data callback wrote more than the {expected} bytes its shape and type call for.");
            inner.Write(buffer);
            Written += buffer.Length;
        }

        public override void WriteByte(byte value) => Write([value]);
    }
}
