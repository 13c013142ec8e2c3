using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Tandem.Assistant;

namespace Tandem.Cli;

/// <summary><c>tandem memory add|list|search|export|forget</c>: the on-device personal memory.</summary>
public static class MemoryCommand
{
    public static readonly OptionSpec[] Options =
    [
        new("--db", null, "FILE", "the memory database (default $TANDEM_MEMORY_DB or ~/.local/share/tandem/memory.db)"),
        new("--kind", null, "KIND", "add: fact, preference or history (default fact)"),
        new("--source", null, "TEXT", "add: where the item came from (default user)"),
        new("--no-consent", null, null, "add: store it, but never use it in prompts"),
        new("--limit", null, "N", "search: at most N items (default 5)"),
        new("--all", null, null, "forget: delete every item"),
        new("--output", "-o", "FILE", "export: write the JSON to FILE instead of stdout"),
        new("--json", null, null, "list/search: print JSON lines"),
        CommonOptions.Help,
    ];

    static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string DefaultPath =>
        Environment.GetEnvironmentVariable("TANDEM_MEMORY_DB") is { Length: > 0 } p ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "tandem", "memory.db");

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("memory", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("memory")); return Program.ExitOk; }
        if (a.Positionals.Count == 0) throw new UsageException("missing subcommand: tandem memory add|list|search|export|forget");
        string sub = a.Positionals[0];
        var rest = a.Positionals.Skip(1).ToList();
        if (sub is not ("add" or "list" or "search" or "export" or "forget"))
            throw new UsageException($"unknown memory subcommand '{sub}'; expected add, list, search, export or forget");
        if (sub is "list" or "export" && rest.Count > 0) throw new UsageException($"unexpected argument '{rest[0]}' for 'tandem memory {sub}'");
        string path = a.String("--db") ?? DefaultPath;
        if (sub != "add" && !File.Exists(path)) throw new FileNotFoundException($"memory database not found: {path}", path);

        using var memory = PersonalMemory.Open(path);
        switch (sub)
        {
            case "add":
            {
                if (rest.Count != 1) throw new UsageException("tandem memory add expects one TEXT (quote it)");
                var kind = PersonalMemory.ParseKind(a.String("--kind") ?? "fact");
                var item = memory.Add(new NewMemory(kind, rest[0]) { Source = a.String("--source") ?? "user", Consent = !a.Flag("--no-consent") });
                Console.Out.WriteLine($"remembered #{item.Id} ({PersonalMemory.KindName(item.Kind)}{(item.Consent ? "" : ", not used in prompts")})");
                return Program.ExitOk;
            }
            case "list":
                foreach (var m in memory.List()) Print(m, null, a.Flag("--json"));
                return Program.ExitOk;
            case "search":
            {
                if (rest.Count != 1) throw new UsageException("tandem memory search expects one QUERY (quote it)");
                foreach (var h in memory.Search(rest[0], a.Int("--limit", 5, min: 1))) Print(h.Item, h.Score, a.Flag("--json"));
                return Program.ExitOk;
            }
            case "export":
            {
                string json = JsonSerializer.Serialize(memory.List().Select(Fields), new JsonSerializerOptions(JsonOptions) { WriteIndented = true });
                if (a.String("--output") is { } output)
                {
                    // Written beside the target and renamed, so a failed export leaves no half-written file.
                    string tmp = output + ".tmp";
                    try
                    {
                        File.WriteAllText(tmp, json + "\n");
                        File.Move(tmp, output, overwrite: true);
                    }
                    finally { File.Delete(tmp); }
                }
                else Console.Out.WriteLine(json);
                return Program.ExitOk;
            }
            default: // forget
            {
                int n;
                if (a.Flag("--all"))
                {
                    if (rest.Count > 0) throw new UsageException("give either IDs or --all, not both");
                    n = memory.ForgetAll();
                }
                else
                {
                    if (rest.Count == 0) throw new UsageException("tandem memory forget expects IDs (see 'tandem memory list') or --all");
                    var ids = rest.Select(s => long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long id) ? id
                        : throw new UsageException($"expected a memory ID (a number), got '{s}'")).ToList();
                    n = memory.Forget(ids);
                }
                Console.Out.WriteLine($"forgot {n} item(s); the database was compacted, so their bytes are gone from {path}");
                return Program.ExitOk;
            }
        }
    }

    static object Fields(MemoryItem m) => new
    {
        id = m.Id, kind = PersonalMemory.KindName(m.Kind), text = m.Text, created = m.Created.UtcDateTime.ToString("O"), source = m.Source, consent = m.Consent,
    };

    static void Print(MemoryItem m, double? score, bool json)
    {
        if (json)
            Console.Out.WriteLine(score is { } s
                ? JsonSerializer.Serialize(new { id = m.Id, kind = PersonalMemory.KindName(m.Kind), text = m.Text, score = Math.Round(s, 4) }, JsonOptions)
                : JsonSerializer.Serialize(Fields(m), JsonOptions));
        else
            Console.Out.WriteLine($"{m.Id,5}  {PersonalMemory.KindName(m.Kind),-10}  {m.Created.UtcDateTime:yyyy-MM-dd}  {(m.Consent ? "  " : "- ")}{m.Text}"
                + (score is { } s2 ? $"  (score {s2:F3})" : ""));
    }
}
