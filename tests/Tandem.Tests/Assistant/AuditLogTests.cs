using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Tandem.Assistant;
using Tandem.Tests.Cli;

namespace Tandem.Tests.Assistant;

/// <summary>The hash-chained audit log: appends, verification, tampering, crash repair, and a real kill -9.</summary>
public class AuditLogTests
{
    static AuditEntry Entry(int i) => new()
    {
        Model = "stories260K", ModelVersion = "v" + i, RanOn = i % 2 == 0 ? RanOn.Device : RanOn.Cloud, Policy = "local-first",
        Redactions = new Dictionary<string, int> { ["phone"] = i, ["email"] = 1 },
        Time = new DateTimeOffset(2026, 11, 23, 12, 0, i, TimeSpan.Zero),
    };

    static string WriteLog(int records)
    {
        string path = TestData.Temp("audit.jsonl");
        using var log = AuditLog.Open(path);
        for (int i = 1; i <= records; i++) log.Append(Entry(i));
        return path;
    }

    static string[] Lines(string path) => File.ReadAllText(path).Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void AppendedRecordsFormAnIntactChainAndReadBack()
    {
        string path = WriteLog(5);
        var report = AuditReader.Verify(path);
        Assert.Equal(AuditStatus.Intact, report.Status);
        Assert.Equal(5, report.ValidRecords);

        var records = AuditReader.ReadAll(path, verify: true);
        Assert.Equal([1L, 2, 3, 4, 5], records.Select(r => r.Seq));
        Assert.Equal(AuditLog.GenesisHash, records[0].Prev);
        for (int i = 1; i < records.Count; i++) Assert.Equal(records[i - 1].Hash, records[i].Prev);
        Assert.Equal(records[^1].Hash, report.HeadHash);
        Assert.Equal("cloud", records[0].RanOn);
        Assert.Equal(3, records[2].Redactions["phone"]);
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 12, 0, 3, TimeSpan.Zero), records[2].Time);

        // Reopening continues the chain where it ended.
        using (var log = AuditLog.Open(path))
        {
            Assert.Equal(0, log.RepairedBytes);
            var r6 = log.Append(Entry(6));
            Assert.Equal(6, r6.Seq);
            Assert.Equal(report.HeadHash, r6.Prev);
        }
        Assert.Equal(6, AuditReader.Verify(path).ValidRecords);
    }

    [Fact]
    public void RecordsHoldCountsNeverTheRedactedText()
    {
        string path = TestData.Temp("audit.jsonl");
        var redaction = Redactor.Redact("call me at 13812345678 or mail li.wei@example.cn");
        using (var log = AuditLog.Open(path))
            log.Append(new AuditEntry { Model = "m", ModelVersion = "1", RanOn = RanOn.Cloud, Policy = "redact-then-cloud", Redactions = redaction.Counts });
        string text = File.ReadAllText(path);
        Assert.DoesNotContain("13812345678", text);
        Assert.DoesNotContain("li.wei", text);
        Assert.Contains("\"redactions\":{\"email\":1,\"phone\":1}", text);
    }

    [Fact]
    public void OnlyOneWriterAtATime()
    {
        string path = WriteLog(1);
        using (var first = AuditLog.Open(path))
        {
            var ex = Assert.Throws<AuditLogException>(() => AuditLog.Open(path).Dispose());
            Assert.Contains("open for writing by another process", ex.Message);
            Assert.Equal(AuditStatus.Intact, AuditReader.Verify(path).Status); // readers are not blocked
            first.Append(Entry(2));
        }
        using (var again = AuditLog.Open(path)) Assert.Equal(2, again.LastSeq);
    }

    [Fact]
    public void EditedRecordIsDetected()
    {
        string path = WriteLog(4);
        var lines = Lines(path);
        lines[2] = lines[2].Replace("\"policy\":\"local-first\"", "\"policy\":\"cloud-allowed\"");
        File.WriteAllText(path, string.Join("\n", lines) + "\n");

        var report = AuditReader.Verify(path);
        Assert.Equal(AuditStatus.Broken, report.Status);
        Assert.Equal(3, report.FirstBadLine);
        Assert.Equal(3, report.FirstBadSeq);
        Assert.Equal(2, report.ValidRecords);
        Assert.Contains("hash mismatch", report.Problem);
    }

    [Fact]
    public void EditedRecordWithItsHashRecomputedBreaksTheNextLink()
    {
        string path = WriteLog(4);
        var lines = Lines(path);
        // A forger who edits record 2 and fixes its own hash still cannot fix record 3's prev without rewriting the rest.
        string body = lines[1][..^AuditLog.HashSuffixLength].Replace("\"model_version\":\"v2\"", "\"model_version\":\"v9\"") + "}";
        string hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(body)));
        lines[1] = body[..^1] + $",\"hash\":\"{hash}\"}}";
        File.WriteAllText(path, string.Join("\n", lines) + "\n");

        var report = AuditReader.Verify(path);
        Assert.Equal(AuditStatus.Broken, report.Status);
        Assert.Equal(3, report.FirstBadLine);
        Assert.Contains("prev hash", report.Problem);
    }

    [Fact]
    public void DeletedRecordIsDetected()
    {
        string path = WriteLog(5);
        var lines = Lines(path).ToList();
        lines.RemoveAt(2);
        File.WriteAllText(path, string.Join("\n", lines) + "\n");

        var report = AuditReader.Verify(path);
        Assert.Equal(AuditStatus.Broken, report.Status);
        Assert.Equal(3, report.FirstBadLine);
        Assert.Equal(4, report.FirstBadSeq);
        Assert.Contains("missing", report.Problem);
    }

    [Fact]
    public void RecordsCutFromTheEndAreDetectedAgainstASavedHead()
    {
        string path = WriteLog(5);
        string savedHead = AuditReader.Verify(path).HeadHash;
        Assert.Equal(AuditStatus.Intact, AuditReader.Verify(path, savedHead).Status);
        using (var log = AuditLog.Open(path)) log.Append(Entry(6));
        Assert.Equal(AuditStatus.Intact, AuditReader.Verify(path, savedHead).Status); // later appends are fine

        var lines = Lines(path);
        File.WriteAllText(path, string.Join("\n", lines[..3]) + "\n");
        Assert.Equal(AuditStatus.Intact, AuditReader.Verify(path).Status); // the chain alone cannot see it
        var report = AuditReader.Verify(path, savedHead);
        Assert.Equal(AuditStatus.Broken, report.Status);
        Assert.Equal(3, report.ValidRecords);
        Assert.Contains("removed from its end", report.Problem);

        var cli = TandemProcess.Run("audit", "verify", path, "--head", savedHead);
        Assert.Equal(1, cli.ExitCode);
        Assert.Contains("removed from its end", cli.Stdout);
    }

    [Fact]
    public void TruncatedTailIsDetectedAndRepairedWithoutTouchingEarlierRecords()
    {
        string path = WriteLog(3);
        byte[] intact = File.ReadAllBytes(path);
        string fourth;
        using (var log = AuditLog.Open(path)) log.Append(Entry(4));
        fourth = Lines(path)[3];
        // Simulate a write cut short: the first half of record 4, no end of line.
        File.WriteAllBytes(path, [.. intact, .. Encoding.UTF8.GetBytes(fourth[..(fourth.Length / 2)])]);

        var report = AuditReader.Verify(path);
        Assert.Equal(AuditStatus.TruncatedTail, report.Status);
        Assert.Equal(3, report.ValidRecords);
        Assert.Equal(4, report.FirstBadLine);
        Assert.Equal(3, AuditReader.ReadAll(path, verify: true).Count);

        using (var log = AuditLog.Open(path))
        {
            Assert.Equal(fourth.Length / 2, log.RepairedBytes);
            Assert.Equal(3, log.LastSeq);
            Assert.Equal(intact, File.ReadAllBytes(path));
            log.Append(Entry(4));
        }
        var after = AuditReader.Verify(path);
        Assert.Equal(AuditStatus.Intact, after.Status);
        Assert.Equal(4, after.ValidRecords);
        Assert.Equal(intact, File.ReadAllBytes(path)[..intact.Length]);
    }

    [Fact]
    public void DamagedCompleteLastRecordIsNotSilentlyRepaired()
    {
        string path = WriteLog(2);
        File.AppendAllText(path, "{\"seq\":3,\"garbage\":true}\n");
        byte[] before = File.ReadAllBytes(path);
        var ex = Assert.Throws<AuditLogException>(() => AuditLog.Open(path).Dispose());
        Assert.Contains("damaged", ex.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        var report = AuditReader.Verify(path);
        Assert.Equal(AuditStatus.Broken, report.Status);
        Assert.Equal(3, report.FirstBadLine);
        Assert.Equal(3, report.FirstBadSeq);
    }

    [Fact]
    public void AFileThatIsNotAnAuditLogIsNeverTruncated()
    {
        string path = WriteLog(2);
        File.AppendAllText(path, "some other program's data without an end of line");
        byte[] before = File.ReadAllBytes(path);
        var ex = Assert.Throws<AuditLogException>(() => AuditLog.Open(path).Dispose());
        Assert.Contains("nothing was changed", ex.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(AuditStatus.Broken, AuditReader.Verify(path).Status);

        string binary = TestData.Temp("model.gguf");
        File.Copy(TestData.Stories260K, binary);
        before = File.ReadAllBytes(binary);
        Assert.Throws<AuditLogException>(() => AuditLog.Open(binary).Dispose());
        Assert.Equal(before, File.ReadAllBytes(binary));
    }

    [Fact]
    public void KillNineMidStreamKeepsEveryCompleteRecord()
    {
        string path = TestData.Temp("audit-kill.jsonl");
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet")
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (var a in new[] { TandemProcess.DllPath, "audit", "append", path, "--model", "stories260K", "--policy", "local-only", "--redaction", "phone=2", "--repeat", "100000000" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        try
        {
            // Wait until it is well into its loop (records being written and fsync'd), then SIGKILL it.
            var deadline = DateTime.UtcNow.AddMinutes(1);
            while ((!File.Exists(path) || CountNewlines(path) < 40) && !p.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(20);
            Assert.False(p.HasExited, "the appending process ended before it was killed");
        }
        finally
        {
            if (!p.HasExited) p.Kill(); // Process.Kill is SIGKILL on Unix
            p.WaitForExit();
        }
        Assert.NotEqual(0, p.ExitCode);

        long complete = CountNewlines(path);
        Assert.True(complete >= 40, $"only {complete} records were written");
        var report = AuditReader.Verify(path);
        Assert.NotEqual(AuditStatus.Broken, report.Status);
        Assert.Equal(complete, report.ValidRecords);

        var records = AuditReader.ReadAll(path, verify: true);
        Assert.Equal(complete, records.Count);
        Assert.All(records, r => Assert.Equal(2, r.Redactions["phone"]));

        using (var log = AuditLog.Open(path))
        {
            Assert.Equal(complete, log.LastSeq);
            log.Append(Entry(1));
        }
        var after = AuditReader.Verify(path);
        Assert.Equal(AuditStatus.Intact, after.Status);
        Assert.Equal(complete + 1, after.ValidRecords);
    }

    static long CountNewlines(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[f.Length];
        f.ReadExactly(bytes);
        return bytes.AsSpan().Count((byte)'\n');
    }

    [Fact]
    public void CliVerifyReportsTheFirstBadRecordAndListPrintsRecords()
    {
        string path = WriteLog(3);
        var ok = TandemProcess.Run("audit", "verify", path, "--json");
        Assert.True(ok.ExitCode == 0, ok.ToString());
        using (var doc = JsonDocument.Parse(ok.Stdout))
        {
            Assert.Equal("intact", doc.RootElement.GetProperty("status").GetString());
            Assert.Equal(3, doc.RootElement.GetProperty("valid_records").GetInt32());
        }
        var list = TandemProcess.Run("audit", "list", path, "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        var listed = list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, listed.Length);
        using (var doc = JsonDocument.Parse(listed[1])) Assert.Equal("v2", doc.RootElement.GetProperty("model_version").GetString());

        var lines = Lines(path);
        lines[1] = lines[1].Replace("\"ran_on\":\"device\"", "\"ran_on\":\"cloud\"");
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        var bad = TandemProcess.Run("audit", "verify", path);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("BROKEN: line 2 (seq 2)", bad.Stdout);

        var missing = TandemProcess.Run("audit", "verify", path + ".nope");
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith("tandem: audit log not found", missing.Stderr);
    }
}
