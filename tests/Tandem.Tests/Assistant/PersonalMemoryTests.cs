using System.Text;
using System.Text.Json;
using Tandem.Assistant;
using Tandem.Tests.Cli;

namespace Tandem.Tests.Assistant;

public class PersonalMemoryTests
{
    static bool FileContains(string path, string text)
    {
        byte[] bytes = File.ReadAllBytes(path), needle = Encoding.UTF8.GetBytes(text);
        return bytes.AsSpan().IndexOf(needle) >= 0;
    }

    [Fact]
    public void StoresListsAndRetrievesByRelevance()
    {
        string db = TestData.Temp("memory.db");
        using var m = PersonalMemory.Open(db);
        Assert.True(m.HasFullTextSearch, "the bundled SQLite should have FTS5");
        var peanuts = m.Add(new NewMemory(MemoryKind.Fact, "I am allergic to peanuts"));
        m.Add(new NewMemory(MemoryKind.Preference, "I like the living room lights dim in the evening"));
        m.Add(new NewMemory(MemoryKind.History, "Asked for a 7am alarm on weekdays") { Source = "assistant" });
        m.Add(new NewMemory(MemoryKind.Preference, "我喜欢喝绿茶"));
        m.Add(new NewMemory(MemoryKind.Fact, "My peanuts password hint is hidden") { Consent = false });

        var all = m.List();
        Assert.Equal(5, all.Count);
        Assert.Equal("assistant", all[2].Source);
        Assert.False(all[4].Consent);

        var hits = m.Search("can I eat peanuts?");
        Assert.Equal(peanuts.Id, Assert.Single(hits).Item.Id); // the unconsented item is never retrieved
        Assert.Equal("preference", PersonalMemory.KindName(m.Search("dim the lights")[0].Item.Kind));
        Assert.Equal("我喜欢喝绿茶", Assert.Single(m.Search("推荐一种茶")).Item.Text);
        Assert.Empty(m.Search("quantum chromodynamics"));

        string context = m.PromptContext("set an alarm");
        Assert.Contains("- history: Asked for a 7am alarm on weekdays", context);
        Assert.DoesNotContain("peanuts", context);
        Assert.Equal("", m.PromptContext("quantum"));
        Assert.Throws<ArgumentException>(() => m.Add(new NewMemory(MemoryKind.Fact, "   ")));
    }

    [Fact]
    public void ForgetDeletesTheBytesFromTheDatabaseFile()
    {
        string db = TestData.Temp("memory.db");
        long keep, gone;
        using (var m = PersonalMemory.Open(db))
        {
            keep = m.Add(new NewMemory(MemoryKind.Fact, "My cat is called Biscuit")).Id;
            gone = m.Add(new NewMemory(MemoryKind.Fact, "My bank PIN hint is zanzibar4471 quokka")).Id;
            for (int i = 0; i < 50; i++) m.Add(new NewMemory(MemoryKind.History, $"routine entry number {i} about the thermostat"));
        }
        Assert.True(FileContains(db, "zanzibar4471"));

        using (var m = PersonalMemory.Open(db))
        {
            Assert.Equal(1, m.Forget([gone, 999_999]));
            Assert.Empty(m.Search("zanzibar4471 quokka"));
            Assert.Equal(keep, m.Search("cat")[0].Item.Id);
            Assert.Equal(51, m.List().Count);
        }
        Assert.False(FileContains(db, "zanzibar4471"), "the forgotten text is still in the database file");
        Assert.False(FileContains(db, "quokka"), "a forgotten word is still in the full-text index");
        Assert.True(FileContains(db, "Biscuit"));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(db)!, Path.GetFileName(db) + "-*")); // no journal or WAL left

        using (var m = PersonalMemory.Open(db))
        {
            Assert.Equal(51, m.ForgetAll());
            Assert.Empty(m.List());
        }
        Assert.False(FileContains(db, "Biscuit"));
        Assert.False(FileContains(db, "thermostat"));
    }

    [Fact]
    public void NotADatabaseIsAClearErrorAndIsLeftAlone()
    {
        string path = TestData.Temp("memory.db");
        File.WriteAllText(path, "this is not sqlite, it is a plain text file of some length to look like a header");
        byte[] before = File.ReadAllBytes(path);
        var ex = Assert.Throws<MemoryStoreException>(() => PersonalMemory.Open(path).Dispose());
        Assert.Contains(path, ex.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void CliAddListExportForget()
    {
        string db = TestData.Temp("memory.db");
        var add = TandemProcess.Run("memory", "add", "Prefers 20 degrees at night", "--kind", "preference", "--db", db);
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Equal(0, TandemProcess.Run("memory", "add", "Lives with a dog called Pepper", "--db", db).ExitCode);

        var list = TandemProcess.Run("memory", "list", "--json", "--db", db);
        Assert.True(list.ExitCode == 0, list.ToString());
        var items = list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(2, items.Count);
        Assert.Equal("preference", items[0].GetProperty("kind").GetString());

        string export = TestData.Temp("memory.json");
        Assert.Equal(0, TandemProcess.Run("memory", "export", "-o", export, "--db", db).ExitCode);
        using (var doc = JsonDocument.Parse(File.ReadAllText(export)))
            Assert.Equal("Lives with a dog called Pepper", doc.RootElement[1].GetProperty("text").GetString());

        var forget = TandemProcess.Run("memory", "forget", items[1].GetProperty("id").GetInt64().ToString(), "--db", db);
        Assert.True(forget.ExitCode == 0, forget.ToString());
        Assert.Contains("forgot 1 item", forget.Stdout);
        Assert.False(FileContains(db, "Pepper"));

        var badKind = TandemProcess.Run("memory", "add", "x", "--kind", "secret", "--db", db);
        Assert.Equal(1, badKind.ExitCode);
        Assert.Contains("unknown memory kind 'secret'", badKind.Stderr);
        var badId = TandemProcess.Run("memory", "forget", "abc", "--db", db);
        Assert.Equal(2, badId.ExitCode);
        var all = TandemProcess.Run("memory", "forget", "--all", "--db", db);
        Assert.Contains("forgot 1 item", all.Stdout);
        Assert.False(FileContains(db, "20 degrees"));
    }
}
