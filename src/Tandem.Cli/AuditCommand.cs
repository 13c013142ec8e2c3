using System.Text.Encodings.Web;
using System.Text.Json;
using Tandem.Assistant;

namespace Tandem.Cli;

/// <summary><c>tandem audit verify|list|append|repair [FILE]</c>: the hash-chained decision log.</summary>
public static class AuditCommand
{
    public static readonly OptionSpec[] Options =
    [
        new("--json", null, null, "verify/list: print JSON (verify: one object; list: one record per line)"),
        new("--head", null, "HASH", "verify: a head hash saved earlier; fails if that record is gone (records cut from the end)"),
        new("--model", null, "NAME", "append: the model that answered"),
        new("--model-file", "-m", "FILE", "append: a GGUF; its name is the model and its SHA-256 the version"),
        new("--model-version", null, "V", "append: the model's version (default: the file's SHA-256, or 'unknown')"),
        new("--ran-on", null, "WHERE", "append: device or cloud (default device)"),
        new("--policy", null, "NAME", "append: the routing policy that decided (required)"),
        new("--action", null, "NAME", "append: what was decided (default answer)"),
        new("--redaction", null, "KIND=N", "append: N items of KIND were redacted (repeatable)", Repeatable: true),
        new("--repeat", null, "N", "append: append N identical records (default 1)"),
        CommonOptions.Help,
    ];

    /// <summary>Where the log lives when no FILE is given: $TANDEM_AUDIT_LOG, else tandem/audit.jsonl under the user's data folder.</summary>
    public static string DefaultPath =>
        Environment.GetEnvironmentVariable("TANDEM_AUDIT_LOG") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "tandem", "audit.jsonl");

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("audit", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("audit")); return Program.ExitOk; }
        if (a.Positionals.Count == 0) throw new UsageException("missing subcommand: tandem audit verify|list|append|repair [FILE]");
        string sub = a.Positionals[0];
        a.AllowPositionals(2, "a subcommand and a FILE");
        string path = a.Positionals.Count > 1 ? a.Positionals[1] : DefaultPath;
        return sub switch
        {
            "verify" => Verify(path, a.String("--head"), a.Flag("--json")),
            "list" => List(path, a.Flag("--json")),
            "append" => Append(path, a),
            "repair" => Repair(path),
            _ => throw new UsageException($"unknown audit subcommand '{sub}'; expected verify, list, append or repair"),
        };
    }

    static int Verify(string path, string? head, bool json)
    {
        var r = AuditReader.Verify(path, head);
        if (json)
        {
            using var w = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            w.WriteStartObject();
            w.WriteString("file", r.Path);
            w.WriteString("status", r.Status switch { AuditStatus.Intact => "intact", AuditStatus.TruncatedTail => "truncated_tail", _ => "broken" });
            w.WriteNumber("valid_records", r.ValidRecords);
            w.WriteString("head", r.HeadHash);
            if (r.Status != AuditStatus.Intact)
            {
                w.WriteNumber("first_bad_line", r.FirstBadLine);
                if (r.FirstBadSeq is { } s) w.WriteNumber("first_bad_seq", s); else w.WriteNull("first_bad_seq");
                w.WriteString("problem", r.Problem);
            }
            w.WriteEndObject();
            w.Flush();
            Console.Out.WriteLine();
        }
        else if (r.Status == AuditStatus.Intact)
            Console.Out.WriteLine($"intact: {r.ValidRecords} records, head {r.HeadHash}");
        else
            Console.Out.WriteLine((r.Status == AuditStatus.Broken ? "BROKEN" : "truncated tail") + $": line {r.FirstBadLine}"
                + (r.FirstBadSeq is { } seq ? $" (seq {seq})" : "") + $": {r.Problem}; {r.ValidRecords} records before it verified");
        return r.Status == AuditStatus.Intact ? Program.ExitOk : Program.ExitError;
    }

    static int List(string path, bool json)
    {
        foreach (var r in AuditReader.ReadAll(path, verify: false))
        {
            string redactions = string.Join(",", r.Redactions.Select(kv => $"{kv.Key}={kv.Value}"));
            if (json)
                Console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    seq = r.Seq, time = r.Time.UtcDateTime.ToString("O"), model = r.Model, model_version = r.ModelVersion,
                    ran_on = r.RanOn, policy = r.Policy, action = r.Action, redactions = r.Redactions, hash = r.Hash,
                }, new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            else
                Console.Out.WriteLine($"{r.Seq,6}  {r.Time.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z  {r.RanOn,-6}  {r.Model}@{Short(r.ModelVersion)}  policy={r.Policy}  {r.Action}"
                    + (redactions.Length > 0 ? "  redacted " + redactions : ""));
        }
        return Program.ExitOk;
    }

    static int Append(string path, Arguments a)
    {
        string? file = a.String("--model-file");
        if (file is not null && !File.Exists(file)) throw new FileNotFoundException($"model file not found: {file}", file);
        string model = a.String("--model") ?? (file is not null ? Path.GetFileNameWithoutExtension(file)
            : throw new UsageException("missing model: --model NAME or -m FILE"));
        string version = a.String("--model-version") ?? (file is not null ? ModelFileHash.Of(file) : "unknown");
        var ranOn = a.String("--ran-on") switch
        {
            null or "device" => RanOn.Device,
            "cloud" => RanOn.Cloud,
            var other => throw new UsageException($"option --ran-on expects device or cloud, got '{other}'"),
        };
        string policy = a.String("--policy") ?? throw new UsageException("missing policy: --policy NAME");
        var redactions = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var r in a.All("--redaction"))
        {
            int eq = r.IndexOf('=');
            if (eq <= 0 || !int.TryParse(r.AsSpan(eq + 1), out int n) || n < 0)
                throw new UsageException($"option --redaction expects KIND=N with N >= 0, got '{r}'");
            redactions[r[..eq]] = redactions.GetValueOrDefault(r[..eq]) + n;
        }
        int repeat = a.Int("--repeat", 1, min: 1);
        var entry = new AuditEntry { Model = model, ModelVersion = version, RanOn = ranOn, Policy = policy, Action = a.String("--action") ?? "answer", Redactions = redactions };

        using var log = AuditLog.Open(path);
        if (log.RepairedBytes > 0) Console.Error.WriteLine($"audit: removed an incomplete last line ({log.RepairedBytes} bytes) left by an interrupted write");
        AuditRecord? last = null;
        for (int i = 0; i < repeat; i++) last = log.Append(entry);
        Console.Out.WriteLine($"appended {repeat} record(s); last seq {last!.Seq}, hash {last.Hash}");
        return Program.ExitOk;
    }

    static int Repair(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"audit log not found: {path}", path);
        using var log = AuditLog.Open(path);
        Console.Out.WriteLine(log.RepairedBytes > 0
            ? $"removed an incomplete last line ({log.RepairedBytes} bytes); {log.LastSeq} records kept"
            : $"nothing to repair; {log.LastSeq} records");
        return Program.ExitOk;
    }

    static string Short(string s) => s.Length > 12 ? s[..12] : s;
}
