using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Tandem.Assistant;

// Audit log file layout (JSON lines, UTF-8). One record per line, each line ends with '\n':
//
//   {"seq":1,"time":"2026-11-23T12:00:00.0000000Z","model":"qwen2.5-0.5b","model_version":"<sha256 of the GGUF>",
//    "ran_on":"device","policy":"local-only","action":"answer","redactions":{"email":1},
//    "prev":"<64 hex>","hash":"<64 hex>"}
//
// - seq counts from 1 without gaps; prev is the previous record's hash (64 zeros for the first record).
// - hash = SHA-256 of the line's own bytes without the hash field, i.e. of
//   line[..^76] + "}"  (the last 75 characters before '\n' are always ,"hash":"<64 hex>"} ).
//   Hashing the stored bytes, not a re-serialization, means the verifier needs no canonical JSON.
// - redactions holds counts per kind of personal data removed (never the data itself); keys are sorted.
// - A record is appended with one write of the whole line and fsync'd, so a crash (kill -9, power loss) can at
//   worst leave an incomplete LAST line without '\n'. The verifier reports it; the writer truncates it on open.

/// <summary>One decision to record: what answered, where, under which policy, and what was redacted (counts only).</summary>
public sealed record AuditEntry
{
    public required string Model { get; init; }
    /// <summary>The model's version: its file hash for a local model, the provider's version string for a cloud one.</summary>
    public required string ModelVersion { get; init; }
    public required RanOn RanOn { get; init; }
    public required string Policy { get; init; }
    public string Action { get; init; } = "answer";
    public IReadOnlyDictionary<string, int> Redactions { get; init; } = new Dictionary<string, int>();
    /// <summary>When the decision was made; now (UTC) when not given.</summary>
    public DateTimeOffset? Time { get; init; }
}

/// <summary>A record as stored: the entry plus its place in the chain.</summary>
public sealed record AuditRecord(long Seq, DateTimeOffset Time, string Model, string ModelVersion, string RanOn, string Policy,
    string Action, IReadOnlyDictionary<string, int> Redactions, string Prev, string Hash);

/// <summary>
/// Append-only, hash-chained audit log (layout above). One writer per file; appends are serialized and each is
/// durable (fsync) when <see cref="Append"/> returns.
/// </summary>
public sealed class AuditLog : IDisposable
{
    public const string GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";
    public const int HashSuffixLength = 75; // ,"hash":"<64 hex>"}

    readonly FileStream _file, _writerLock;
    readonly Lock _lock = new();
    long _lastSeq;
    string _lastHash;

    public string Path { get; }
    /// <summary>Bytes of an incomplete last line removed when the log was opened (0 when the file ended cleanly).</summary>
    public long RepairedBytes { get; }
    public long LastSeq => _lastSeq;
    public string LastHash => _lastHash;

    AuditLog(string path, FileStream file, FileStream writerLock, long repaired, long lastSeq, string lastHash)
    {
        Path = path; _file = file; _writerLock = writerLock; RepairedBytes = repaired; _lastSeq = lastSeq; _lastHash = lastHash;
    }

    /// <summary>Opens (or creates) a log for appending. An incomplete last line left by a crash is truncated away;
    /// earlier records are not touched. A complete last line that is not a valid record is an error.</summary>
    public static AuditLog Open(string path)
    {
        string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        // One writer at a time: an exclusive lock on a side file (the log itself stays readable by verify and list).
        FileStream writerLock;
        try { writerLock = new FileStream(path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException ex) { throw new AuditLogException($"audit log {path} is open for writing by another process ({ex.Message})"); }
        // bufferSize 0: every Write goes straight to one write(2) of the whole line.
        FileStream file;
        try { file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0); }
        catch { writerLock.Dispose(); throw; }
        try
        {
            long length = file.Length;
            long end = CompleteLength(file, length);
            if (end < length)
            {
                // Only what an interrupted append can leave is removed: the beginning of a record. Anything else
                // (this is not an audit log, or it was damaged) is refused, so a wrong path is never truncated.
                byte[] tail = new byte[Math.Min(length - end, 16)];
                file.Seek(end, SeekOrigin.Begin);
                file.ReadExactly(tail);
                if (!LooksLikeRecordStart(tail) || length - end > MaxRecordBytes)
                    throw new AuditLogException($"{path} does not end like an audit log (its last {length - end} bytes are not the start of a record); nothing was changed");
                file.SetLength(end);
                file.Flush(flushToDisk: true);
            }
            long seq = 0;
            string hash = GenesisHash;
            if (end > 0)
            {
                byte[] last = ReadLastLine(file, end);
                var record = AuditReader.ParseLine(last, out string? error)
                    ?? throw new AuditLogException($"audit log {path}: the last record is damaged ({error}); run 'tandem audit verify {path}'");
                seq = record.Seq; hash = record.Hash;
            }
            file.Seek(0, SeekOrigin.End);
            return new AuditLog(path, file, writerLock, length - end, seq, hash);
        }
        catch
        {
            file.Dispose();
            writerLock.Dispose();
            throw;
        }
    }

    /// <summary>Appends one record (a single write of the full line, then fsync) and returns it.</summary>
    public AuditRecord Append(AuditEntry entry)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(entry.Model, nameof(entry.Model));
        ArgumentException.ThrowIfNullOrWhiteSpace(entry.Policy, nameof(entry.Policy));
        foreach (var (kind, count) in entry.Redactions)
            if (count < 0) throw new ArgumentException($"redaction count for '{kind}' is negative ({count})");
        lock (_lock)
        {
            var time = (entry.Time ?? DateTimeOffset.UtcNow).ToUniversalTime();
            var redactions = new SortedDictionary<string, int>(entry.Redactions.ToDictionary(), StringComparer.Ordinal);
            string ranOn = entry.RanOn == RanOn.Device ? "device" : "cloud";
            long seq = _lastSeq + 1;

            var body = new MemoryStream();
            using (var w = new Utf8JsonWriter(body, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                w.WriteStartObject();
                w.WriteNumber("seq", seq);
                w.WriteString("time", time.UtcDateTime.ToString("O"));
                w.WriteString("model", entry.Model);
                w.WriteString("model_version", entry.ModelVersion);
                w.WriteString("ran_on", ranOn);
                w.WriteString("policy", entry.Policy);
                w.WriteString("action", entry.Action);
                w.WriteStartObject("redactions");
                foreach (var (kind, count) in redactions) w.WriteNumber(kind, count);
                w.WriteEndObject();
                w.WriteString("prev", _lastHash);
                w.WriteEndObject();
            }
            byte[] bodyBytes = body.ToArray();
            string hash = Convert.ToHexStringLower(SHA256.HashData(bodyBytes));

            // The line: the body without its closing '}', then ,"hash":"…"} and '\n'.
            byte[] suffix = Encoding.ASCII.GetBytes($",\"hash\":\"{hash}\"}}\n");
            byte[] line = new byte[bodyBytes.Length - 1 + suffix.Length];
            bodyBytes.AsSpan(0, bodyBytes.Length - 1).CopyTo(line);
            suffix.CopyTo(line.AsSpan(bodyBytes.Length - 1));

            _file.Write(line);
            _file.Flush(flushToDisk: true);
            string prev = _lastHash;
            _lastSeq = seq; _lastHash = hash;
            return new AuditRecord(seq, time, entry.Model, entry.ModelVersion, ranOn, entry.Policy, entry.Action, redactions, prev, hash);
        }
    }

    public void Dispose()
    {
        _file.Dispose();
        _writerLock.Dispose();
    }

    /// <summary>Longer than any record this writer produces (model names and policies are short).</summary>
    public const int MaxRecordBytes = 64 * 1024;
    static readonly byte[] RecordStart = "{\"seq\":"u8.ToArray();

    /// <summary>Whether an incomplete line can be the beginning of a record: it starts with <c>{"seq":</c>, or is a prefix of it.</summary>
    public static bool LooksLikeRecordStart(ReadOnlySpan<byte> tail) =>
        tail.Length >= RecordStart.Length ? tail.StartsWith(RecordStart) : RecordStart.AsSpan().StartsWith(tail);

    /// <summary>Length of the file up to and including its last '\n' (0 when there is none).</summary>
    static long CompleteLength(FileStream file, long length)
    {
        var buffer = new byte[4096];
        long pos = length;
        while (pos > 0)
        {
            int n = (int)Math.Min(buffer.Length, pos);
            pos -= n;
            file.Seek(pos, SeekOrigin.Begin);
            file.ReadExactly(buffer, 0, n);
            int i = buffer.AsSpan(0, n).LastIndexOf((byte)'\n');
            if (i >= 0) return pos + i + 1;
        }
        return 0;
    }

    /// <summary>The bytes of the last line of a file whose first <paramref name="end"/> bytes end with '\n' (without it).</summary>
    static byte[] ReadLastLine(FileStream file, long end)
    {
        long start = CompleteLength(file, end - 1);
        var line = new byte[end - 1 - start];
        file.Seek(start, SeekOrigin.Begin);
        file.ReadExactly(line);
        return line;
    }
}
