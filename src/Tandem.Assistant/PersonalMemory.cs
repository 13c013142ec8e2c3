using Microsoft.Data.Sqlite;

namespace Tandem.Assistant;

// Database layout (SQLite, one file on the device):
//
//   memory(id INTEGER PRIMARY KEY, kind TEXT  -- 'fact' | 'preference' | 'history'
//          text TEXT, created TEXT (ISO 8601 UTC), source TEXT, consent INTEGER 0/1)
//   memory_fts  FTS5 full-text index of memory.text, rowid = memory.id (absent when SQLite lacks FTS5)
//   PRAGMA user_version = 1
//
// secure_delete is on and the journal is a rollback journal (not WAL), so deleted text is overwritten in the
// file and no copy lingers in a -wal file; Forget also rebuilds the FTS index and VACUUMs.

/// <summary>What a memory is: a fact about the user, a stated preference, or a piece of past usage.</summary>
public enum MemoryKind { Fact, Preference, History }

/// <summary>One remembered item. <see cref="Consent"/>: the user allowed it to be used in prompts.</summary>
public sealed record MemoryItem(long Id, MemoryKind Kind, string Text, DateTimeOffset Created, string Source, bool Consent);

/// <summary>A new item to remember.</summary>
public sealed record NewMemory(MemoryKind Kind, string Text)
{
    public string Source { get; init; } = "user";
    public bool Consent { get; init; } = true;
    public DateTimeOffset? Created { get; init; }
}

/// <summary>A retrieved item and its relevance (higher is better).</summary>
public sealed record MemoryHit(MemoryItem Item, double Score);

/// <summary>
/// The on-device personal memory: facts, preferences and history the user allowed, retrieved by relevance into
/// local prompts. Nothing here leaves the device; <see cref="Redactor"/> is for the cloud path.
/// </summary>
public sealed class PersonalMemory : IDisposable
{
    readonly SqliteConnection _db;

    public string Path { get; }
    /// <summary>Whether retrieval uses SQLite FTS5 with BM25 (true) or token overlap computed here (false).</summary>
    public bool HasFullTextSearch { get; }

    PersonalMemory(string path, SqliteConnection db, bool fts) { Path = path; _db = db; HasFullTextSearch = fts; }

    public static PersonalMemory Open(string path)
    {
        string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        // Pooling off: a pooled connection would keep the file open after Dispose.
        var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        try
        {
            db.Open();
            Exec(db, "PRAGMA journal_mode=DELETE; PRAGMA secure_delete=ON;");
            long version = (long)Scalar(db, "PRAGMA user_version")!;
            if (version > 1) throw new MemoryStoreException($"memory database {path} has schema version {version}; this tandem reads version 1");
            Exec(db, """
                CREATE TABLE IF NOT EXISTS memory(
                    id INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL CHECK (kind IN ('fact','preference','history')),
                    text TEXT NOT NULL,
                    created TEXT NOT NULL,
                    source TEXT NOT NULL,
                    consent INTEGER NOT NULL CHECK (consent IN (0,1)));
                PRAGMA user_version = 1;
                """);
            bool fts;
            try
            {
                Exec(db, "CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(text)");
                fts = true;
            }
            catch (SqliteException ex) when (ex.Message.Contains("no such module", StringComparison.OrdinalIgnoreCase))
            {
                fts = false;
            }
            return new PersonalMemory(path, db, fts);
        }
        catch (SqliteException ex)
        {
            db.Dispose();
            throw new MemoryStoreException($"cannot open memory database {path}: {ex.Message}");
        }
        catch
        {
            db.Dispose();
            throw;
        }
    }

    public MemoryItem Add(NewMemory m)
    {
        string text = m.Text.Trim();
        if (text.Length == 0) throw new ArgumentException("a memory needs some text");
        var created = (m.Created ?? DateTimeOffset.UtcNow).ToUniversalTime();
        using var tx = _db.BeginTransaction();
        using var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO memory(kind, text, created, source, consent) VALUES ($kind, $text, $created, $source, $consent) RETURNING id";
        cmd.Parameters.AddWithValue("$kind", KindName(m.Kind));
        cmd.Parameters.AddWithValue("$text", text);
        cmd.Parameters.AddWithValue("$created", created.UtcDateTime.ToString("O"));
        cmd.Parameters.AddWithValue("$source", m.Source);
        cmd.Parameters.AddWithValue("$consent", m.Consent ? 1 : 0);
        long id = (long)cmd.ExecuteScalar()!;
        if (HasFullTextSearch)
        {
            using var fts = _db.CreateCommand();
            fts.Transaction = tx;
            fts.CommandText = "INSERT INTO memory_fts(rowid, text) VALUES ($id, $text)";
            fts.Parameters.AddWithValue("$id", id);
            fts.Parameters.AddWithValue("$text", SpaceCjk(text));
            fts.ExecuteNonQuery();
        }
        tx.Commit();
        return new MemoryItem(id, m.Kind, text, created, m.Source, m.Consent);
    }

    /// <summary>Every item, oldest first.</summary>
    public IReadOnlyList<MemoryItem> List()
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT id, kind, text, created, source, consent FROM memory ORDER BY id";
        return Read(cmd);
    }

    /// <summary>
    /// The consented items most relevant to <paramref name="query"/>: BM25 over the FTS5 index when SQLite has it
    /// (any query word may match), otherwise the share of the query's words an item contains.
    /// </summary>
    public IReadOnlyList<MemoryHit> Search(string query, int limit = 5)
    {
        var words = Words(query);
        words.ExceptWith(StopWords);
        if (words.Count == 0 || limit <= 0) return [];
        if (HasFullTextSearch)
        {
            using var cmd = _db.CreateCommand();
            // Each word quoted, so user text cannot be read as FTS5 query syntax; OR: any word counts.
            cmd.CommandText = """
                SELECT m.id, m.kind, m.text, m.created, m.source, m.consent, bm25(memory_fts) AS rank
                FROM memory_fts JOIN memory m ON m.id = memory_fts.rowid
                WHERE memory_fts MATCH $q AND m.consent = 1
                ORDER BY rank LIMIT $limit
                """;
            cmd.Parameters.AddWithValue("$q", string.Join(" OR ", words.Select(w => "\"" + w.Replace("\"", "\"\"") + "\"")));
            cmd.Parameters.AddWithValue("$limit", limit);
            var hits = new List<MemoryHit>();
            using var r = cmd.ExecuteReader();
            while (r.Read()) hits.Add(new MemoryHit(ItemOf(r), -r.GetDouble(6))); // bm25() is lower-is-better
            return hits;
        }
        return List().Where(m => m.Consent)
            .Select(m => new MemoryHit(m, (double)Words(m.Text).Intersect(words).Count() / words.Count))
            .Where(h => h.Score > 0)
            .OrderByDescending(h => h.Score).ThenByDescending(h => h.Item.Id)
            .Take(limit).ToList();
    }

    /// <summary>A block of remembered context for a local prompt (empty when nothing is relevant).</summary>
    public string PromptContext(string query, int limit = 5)
    {
        var hits = Search(query, limit);
        if (hits.Count == 0) return "";
        var b = new System.Text.StringBuilder("What you know about the user (from their on-device memory):\n");
        foreach (var h in hits) b.Append("- ").Append(KindName(h.Item.Kind)).Append(": ").Append(h.Item.Text).Append('\n');
        return b.ToString();
    }

    /// <summary>Deletes the given items for real; returns how many existed.</summary>
    public int Forget(IReadOnlyCollection<long> ids) => ForgetWhere("id IN (SELECT value FROM json_each($ids))",
        ("$ids", "[" + string.Join(",", ids) + "]"));

    /// <summary>Deletes everything; returns how many items there were.</summary>
    public int ForgetAll() => ForgetWhere("1", null);

    /// <summary>
    /// Real deletion (PIPL's right to erasure): the rows and their FTS entries are deleted, the FTS index is
    /// rebuilt so no segment still holds the words, and VACUUM rewrites the file so the freed pages are gone.
    /// </summary>
    int ForgetWhere(string where, (string Name, string Value)? parameter)
    {
        int deleted;
        using (var tx = _db.BeginTransaction())
        {
            if (HasFullTextSearch)
            {
                using var fts = _db.CreateCommand();
                fts.Transaction = tx;
                fts.CommandText = $"DELETE FROM memory_fts WHERE rowid IN (SELECT id FROM memory WHERE {where})";
                if (parameter is { } p) fts.Parameters.AddWithValue(p.Name, p.Value);
                fts.ExecuteNonQuery();
            }
            using var cmd = _db.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = $"DELETE FROM memory WHERE {where}";
            if (parameter is { } q) cmd.Parameters.AddWithValue(q.Name, q.Value);
            deleted = cmd.ExecuteNonQuery();
            if (HasFullTextSearch)
            {
                using var optimize = _db.CreateCommand();
                optimize.Transaction = tx;
                // 'rebuild' would re-read the content table; the index is contentful, so merge its segments instead,
                // which drops the deleted entries' postings.
                optimize.CommandText = "INSERT INTO memory_fts(memory_fts) VALUES ('optimize')";
                optimize.ExecuteNonQuery();
            }
            tx.Commit();
        }
        Exec(_db, "VACUUM");
        return deleted;
    }

    public void Dispose() => _db.Dispose();

    public static string KindName(MemoryKind k) => k switch { MemoryKind.Fact => "fact", MemoryKind.Preference => "preference", _ => "history" };

    public static MemoryKind ParseKind(string s) => s switch
    {
        "fact" => MemoryKind.Fact,
        "preference" => MemoryKind.Preference,
        "history" => MemoryKind.History,
        _ => throw new ArgumentException($"unknown memory kind '{s}'; expected fact, preference or history"),
    };

    /// <summary>Query words too common to say anything about relevance (English and French; Chinese is matched per character).</summary>
    static readonly HashSet<string> StopWords = new(StringComparer.Ordinal)
    {
        "a", "an", "the", "i", "me", "my", "you", "your", "we", "it", "is", "am", "are", "was", "be", "do", "does", "can",
        "to", "of", "in", "on", "at", "for", "and", "or", "what", "how", "please", "with",
        "je", "tu", "il", "elle", "le", "la", "les", "un", "une", "de", "des", "du", "et", "ou", "à", "est", "mon", "ma", "mes",
        "的", "了", "我", "你", "是",
    };

    /// <summary>Lower-cased words (letters and digits); each CJK character counts as a word, since Chinese has no spaces.</summary>
    internal static HashSet<string> Words(string text)
    {
        var words = new HashSet<string>(StringComparer.Ordinal);
        int start = -1;
        for (int i = 0; i <= text.Length; i++)
        {
            char c = i < text.Length ? text[i] : ' ';
            bool cjk = c >= '\u3400' && c <= '\u9fff';
            if (char.IsLetterOrDigit(c) && !cjk) { if (start < 0) start = i; continue; }
            if (start >= 0) { words.Add(text[start..i].ToLowerInvariant()); start = -1; }
            if (cjk) words.Add(c.ToString());
        }
        return words;
    }

    /// <summary>The text with a space around each CJK character, so FTS5's unicode61 tokenizer indexes each one as a word
    /// (it would otherwise index a whole run of Chinese as one token, and no query could match part of it).</summary>
    static string SpaceCjk(string text)
    {
        var b = new System.Text.StringBuilder(text.Length * 2);
        foreach (char c in text)
        {
            if (c >= '\u3400' && c <= '\u9fff') b.Append(' ').Append(c).Append(' ');
            else b.Append(c);
        }
        return b.ToString();
    }

    static List<MemoryItem> Read(SqliteCommand cmd)
    {
        var items = new List<MemoryItem>();
        using var r = cmd.ExecuteReader();
        while (r.Read()) items.Add(ItemOf(r));
        return items;
    }

    static MemoryItem ItemOf(SqliteDataReader r) => new(r.GetInt64(0), ParseKind(r.GetString(1)), r.GetString(2),
        DateTimeOffset.Parse(r.GetString(3), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind),
        r.GetString(4), r.GetInt64(5) == 1);

    static void Exec(SqliteConnection db, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    static object? Scalar(SqliteConnection db, string sql)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }
}

/// <summary>A memory database that cannot be used (not SQLite, newer schema). An IOException: it is a file problem.</summary>
public sealed class MemoryStoreException(string message) : IOException(message);
