using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Tandem.Assistant;

/// <summary>Outcome of checking an audit log (see <see cref="AuditLog"/> for the layout).</summary>
public enum AuditStatus
{
    /// <summary>Every line is a complete record and the chain is unbroken.</summary>
    Intact,
    /// <summary>Every complete record is intact, but the last line is incomplete (an interrupted write); the next open for appending removes it.</summary>
    TruncatedTail,
    /// <summary>A record was edited, removed, reordered or damaged.</summary>
    Broken,
}

/// <summary>What <see cref="AuditReader.Verify"/> found. <see cref="FirstBadLine"/> is 1-based; 0 when there is none.</summary>
public sealed record AuditReport(string Path, AuditStatus Status, long ValidRecords, string HeadHash,
    int FirstBadLine, long? FirstBadSeq, string? Problem);

/// <summary>Reads and verifies audit logs.</summary>
public static class AuditReader
{
    /// <summary>
    /// Checks every record's hash, sequence number and link to the previous record; stops at the first problem.
    /// <paramref name="anchor"/>: a head hash saved earlier (elsewhere); the chain must still contain that record,
    /// which is how removal of whole records from the end is detected (the chain alone cannot see it).
    /// </summary>
    public static AuditReport Verify(string path, string? anchor = null)
    {
        var report = VerifyChain(path, anchor?.Trim().ToLowerInvariant(), out bool anchorSeen);
        if (anchor is not null && !anchorSeen && report.Status != AuditStatus.Broken && anchor.Trim() != AuditLog.GenesisHash)
            return report with
            {
                Status = AuditStatus.Broken, FirstBadLine = (int)report.ValidRecords + 1, FirstBadSeq = null,
                Problem = $"the record with hash {Short(anchor.Trim())} (the saved head) is not in the log: records were removed from its end",
            };
        return report;
    }

    static AuditReport VerifyChain(string path, string? anchor, out bool anchorSeen)
    {
        anchorSeen = false;
        byte[] bytes = ReadAll(path);
        long valid = 0;
        string head = AuditLog.GenesisHash;
        int lineNo = 0, start = 0;
        while (start < bytes.Length)
        {
            lineNo++;
            int nl = bytes.AsSpan(start).IndexOf((byte)'\n');
            if (nl < 0 && !AuditLog.LooksLikeRecordStart(bytes.AsSpan(start, Math.Min(bytes.Length - start, 16))))
                return Broken(path, valid, head, lineNo, null, $"line {lineNo} is incomplete and is not the start of a record ({bytes.Length - start} bytes)");
            if (nl < 0)
                return new AuditReport(path, AuditStatus.TruncatedTail, valid, head, lineNo, null,
                    $"line {lineNo} is incomplete ({bytes.Length - start} bytes, no end of line): an interrupted write; the {valid} records before it are intact");
            var line = bytes.AsSpan(start, nl);
            start += nl + 1;

            var record = ParseLine(line, out string? error);
            if (record is null)
                return Broken(path, valid, head, lineNo, TrySeq(line), error!);
            if (record.Seq != valid + 1)
                return Broken(path, valid, head, lineNo, record.Seq,
                    record.Seq > valid + 1 ? $"expected seq {valid + 1}, found {record.Seq}: {record.Seq - valid - 1} record(s) missing before it"
                                           : $"expected seq {valid + 1}, found {record.Seq}: records repeated or out of order");
            if (record.Prev != head)
                return Broken(path, valid, head, lineNo, record.Seq,
                    $"prev hash {Short(record.Prev)} does not match the previous record's hash {Short(head)}: the previous record was changed or removed");
            valid++;
            head = record.Hash;
            if (head == anchor) anchorSeen = true;
        }
        return new AuditReport(path, AuditStatus.Intact, valid, head, 0, null, null);
    }

    /// <summary>The complete records of a log (an incomplete last line is skipped); fails on a damaged record.</summary>
    public static IReadOnlyList<AuditRecord> ReadAll(string path, bool verify)
    {
        if (verify && Verify(path) is { Status: AuditStatus.Broken } bad)
            throw new AuditLogException($"audit log {path}: line {bad.FirstBadLine}: {bad.Problem}");
        byte[] bytes = ReadAll(path);
        var records = new List<AuditRecord>();
        int start = 0, lineNo = 0;
        while (start < bytes.Length)
        {
            lineNo++;
            int nl = bytes.AsSpan(start).IndexOf((byte)'\n');
            if (nl < 0) break;
            var record = ParseLine(bytes.AsSpan(start, nl), out string? error)
                ?? throw new AuditLogException($"audit log {path}: line {lineNo}: {error}");
            records.Add(record);
            start += nl + 1;
        }
        return records;
    }

    static byte[] ReadAll(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"audit log not found: {path}", path);
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[f.Length];
        f.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Parses one line (without '\n') and checks its own hash; null with a reason when it is not a valid record.</summary>
    public static AuditRecord? ParseLine(ReadOnlySpan<byte> line, out string? error)
    {
        const string marker = ",\"hash\":\"";
        if (line.Length < AuditLog.HashSuffixLength + 2 || line[^1] != (byte)'}' || line[^2] != (byte)'"'
            || !line[^AuditLog.HashSuffixLength..].StartsWith(Encoding.ASCII.GetBytes(marker)))
        {
            error = "not a record: it does not end with the hash field";
            return null;
        }
        string storedHash = Encoding.ASCII.GetString(line[^66..^2]);
        var body = new byte[line.Length - AuditLog.HashSuffixLength + 1];
        line[..^AuditLog.HashSuffixLength].CopyTo(body);
        body[^1] = (byte)'}';
        string actual = Convert.ToHexStringLower(SHA256.HashData(body));
        if (actual != storedHash)
        {
            error = $"hash mismatch (stored {Short(storedHash)}, content hashes to {Short(actual)}): the record was edited";
            return null;
        }
        try
        {
            using var doc = JsonDocument.Parse(body);
            var r = doc.RootElement;
            var redactions = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var p in r.GetProperty("redactions").EnumerateObject()) redactions[p.Name] = p.Value.GetInt32();
            error = null;
            return new AuditRecord(
                r.GetProperty("seq").GetInt64(),
                DateTimeOffset.Parse(r.GetProperty("time").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                r.GetProperty("model").GetString()!, r.GetProperty("model_version").GetString()!,
                r.GetProperty("ran_on").GetString()!, r.GetProperty("policy").GetString()!, r.GetProperty("action").GetString()!,
                redactions, r.GetProperty("prev").GetString()!, storedHash);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            error = "malformed record: " + ex.Message;
            return null;
        }
    }

    static AuditReport Broken(string path, long valid, string head, int line, long? seq, string problem) =>
        new(path, AuditStatus.Broken, valid, head, line, seq, problem);

    /// <summary>The seq a damaged line claims, if it can still be read, to help find it.</summary>
    static long? TrySeq(ReadOnlySpan<byte> line)
    {
        var reader = new Utf8JsonReader(line);
        try
        {
            while (reader.Read())
                if (reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("seq") && reader.Read() && reader.TryGetInt64(out long s))
                    return s;
        }
        catch (JsonException) { }
        return null;
    }

    static string Short(string hash) => hash.Length > 12 ? hash[..12] + "…" : hash;
}

/// <summary>An audit log that cannot be appended to or read: damaged records. An IOException so callers report it as a file problem.</summary>
public sealed class AuditLogException(string message) : IOException(message);
