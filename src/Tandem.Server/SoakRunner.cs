using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;

namespace Tandem.Server;

/// <summary>What <c>tandem loadtest --soak</c> checks beyond the load itself.</summary>
public sealed record SoakOptions
{
    public required LoadTestOptions Load { get; init; }
    /// <summary>How often the server's /metrics (RSS, busy slots) is read while the load runs.</summary>
    public TimeSpan SampleInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>RSS "after warm-up" is the first sample taken once this fraction of the requests has finished.</summary>
    public double WarmupFraction { get; init; } = 0.1;
    /// <summary>RSS is flat when the end sample exceeds the after-warm-up sample by at most this much.</summary>
    public long RssGrowthBoundBytes { get; init; } = 32L << 20;
    /// <summary>After the last request, how long the busy slots and the queue may take to reach zero (cancellations land at the next step).</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>When set, RSS is read from /proc/PID/status (VmRSS) instead of the server's process_resident_memory_bytes.</summary>
    public int? ServerPid { get; init; }
}

/// <summary>One reading of the server's memory while the load ran.</summary>
public readonly record struct RssSample(double Seconds, int RequestsFinished, long Bytes);

/// <summary>The verdicts of a soak: no 5xx, no KV slot still busy afterwards, RSS flat after warm-up.</summary>
public sealed record SoakReport(
    LoadTestReport Load, long Server5xx, int Client5xx, long ServerCancelled, int BusySlotsAfter, int QueuedAfter, int SlotCount,
    IReadOnlyList<RssSample> Rss, RssSample? AfterWarmup, RssSample? End, long RssGrowthBoundBytes, string? RssProblem)
{
    public bool No5xx => Server5xx == 0 && Client5xx == 0;
    public bool NoLeakedSlots => BusySlotsAfter == 0 && QueuedAfter == 0;
    public long RssGrowthBytes => AfterWarmup is { } w && End is { } e ? e.Bytes - w.Bytes : 0;
    public bool RssFlat => RssProblem is null && RssGrowthBytes <= RssGrowthBoundBytes;
    public bool Passed => No5xx && NoLeakedSlots && RssFlat && Load.Errors == 0;

    public string Describe()
    {
        static string MiB(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB";
        static string Verdict(bool ok) => ok ? "ok" : "FAILED";
        string rss;
        if (RssProblem is not null) rss = RssProblem;
        else
        {
            var w = AfterWarmup!.Value;
            var e = End!.Value;
            var after = Rss.Where(s => s.Seconds >= w.Seconds).ToList();
            rss = $"{MiB(w.Bytes)} after warm-up ({w.RequestsFinished} requests, {w.Seconds:0} s), {MiB(e.Bytes)} at the end ({e.Seconds:0} s); "
                + $"after warm-up min {MiB(after.Min(s => s.Bytes))} max {MiB(after.Max(s => s.Bytes))}; "
                + $"growth {(RssGrowthBytes >= 0 ? "+" : "")}{MiB(RssGrowthBytes)} (bound {MiB(RssGrowthBoundBytes)}), {Rss.Count} samples";
        }
        return Load.Describe() + $"""
            cancelled  {ServerCancelled} generations stopped by the server when their client went away (the rest had finished first)
            soak 5xx   {Server5xx} in the server's /metrics, {Client5xx} seen by clients: {Verdict(No5xx)}
            kv slots   {BusySlotsAfter} of {SlotCount} busy and {QueuedAfter} queued after the run: {Verdict(NoLeakedSlots)}
            rss        {rss}: {Verdict(RssFlat)}
            soak       {(Passed ? "passed" : "FAILED")}

            """;
    }
}

/// <summary>
/// A long load against a running <c>tandem serve</c> that watches for slow failures: 5xx answers, KV slots that stay
/// busy after their requests are gone, and memory that keeps growing. Everything is read from the server's own
/// /metrics (Prometheus text), or RSS from /proc when the server's PID is given.
/// </summary>
public static class SoakRunner
{
    public static async Task<SoakReport> RunAsync(SoakOptions o, CancellationToken ct = default)
    {
        o.Load.Validate();
        if (!(o.WarmupFraction is >= 0 and < 1)) throw new ArgumentException($"warm-up fraction must be in [0, 1), got {o.WarmupFraction}");
        using var http = new HttpClient { BaseAddress = o.Load.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
        if (o.Load.ApiKey is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", o.Load.ApiKey);

        var before = await ReadMetrics(http, ct);
        long fivexxBefore = Sum5xx(before);
        var samples = new List<RssSample>();
        string? rssProblem = null;
        var progress = new LoadProgress();
        var start = Stopwatch.GetTimestamp();

        async Task Sample()
        {
            long? rss = await ReadRss(http, o.ServerPid, ct);
            if (rss is null) { rssProblem ??= RssUnavailable(o.ServerPid); return; }
            lock (samples) samples.Add(new RssSample(Stopwatch.GetElapsedTime(start).TotalSeconds, progress.Finished, rss.Value));
        }

        using var stopSampling = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sampler = Task.Run(async () =>
        {
            try
            {
                while (!stopSampling.IsCancellationRequested)
                {
                    await Sample();
                    await Task.Delay(o.SampleInterval, stopSampling.Token);
                }
            }
            catch (OperationCanceledException) when (stopSampling.IsCancellationRequested) { }
        }, ct);

        var load = await LoadGenerator.RunAsync(o.Load, progress, ct);
        stopSampling.Cancel();
        await sampler;
        int warmupCount = (int)Math.Ceiling(o.WarmupFraction * o.Load.Requests);
        // A run shorter than a few sampling intervals can finish before the timer samples past the warm-up: then the
        // reading after the load stands for "after warm-up" (it is still distinct from the end reading after the drain).
        bool sampledAfterWarmup;
        lock (samples) sampledAfterWarmup = samples.Any(s => s.RequestsFinished >= warmupCount);
        if (!sampledAfterWarmup) await Sample();

        // Cancelled requests free their slots at the next step boundary: give the server a moment, then read the gauges.
        var drainUntil = Stopwatch.GetTimestamp() + (long)(o.DrainTimeout.TotalSeconds * Stopwatch.Frequency);
        Dictionary<string, double> after;
        while (true)
        {
            after = await ReadMetrics(http, ct);
            if (SumOf(after, "tandem_active_sequences") + SumOf(after, "tandem_queue_depth") == 0 || Stopwatch.GetTimestamp() > drainUntil) break;
            await Task.Delay(100, ct);
        }
        await Sample(); // the end reading, after the drain

        RssSample? warm = samples.Where(s => s.RequestsFinished >= warmupCount).Select(s => (RssSample?)s).FirstOrDefault();
        RssSample? end = samples.Count > 0 ? samples[^1] : null;
        if (rssProblem is null && (warm is null || end is null || warm == end))
            rssProblem = "too few RSS samples after warm-up (run more requests or sample more often)";
        int client5xx = load.ErrorKinds.Where(kv => kv.Key.StartsWith("HTTP 5", StringComparison.Ordinal)).Sum(kv => kv.Value);
        long cancelled = (long)(SumOf(after, "tandem_requests_cancelled_total") - SumOf(before, "tandem_requests_cancelled_total"));
        return new SoakReport(load, Sum5xx(after) - fivexxBefore, client5xx, cancelled,
            (int)SumOf(after, "tandem_active_sequences"), (int)SumOf(after, "tandem_queue_depth"), (int)SumOf(after, "tandem_kv_slots"),
            samples, warm, end, o.RssGrowthBoundBytes, rssProblem);
    }

    static string RssUnavailable(int? pid) => pid is { } p
        ? $"no VmRSS in /proc/{p}/status (is {p} the server's process id, on Linux?)"
        : "the server's /metrics has no process_resident_memory_bytes (is it tandem serve? otherwise pass --pid)";

    static async Task<long?> ReadRss(HttpClient http, int? pid, CancellationToken ct)
    {
        if (pid is { } p)
        {
            string path = $"/proc/{p}/status";
            if (!File.Exists(path)) return null;
            foreach (string line in await File.ReadAllLinesAsync(path, ct))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
            return null;
        }
        var m = await ReadMetrics(http, ct);
        return m.TryGetValue("process_resident_memory_bytes", out double v) ? (long)v : null;
    }

    static async Task<Dictionary<string, double>> ReadMetrics(HttpClient http, CancellationToken ct)
    {
        using var response = await http.GetAsync("metrics", ct);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"GET {http.BaseAddress}metrics answered HTTP {(int)response.StatusCode}; the soak reads the server's Prometheus metrics there");
        return PrometheusText.Parse(await response.Content.ReadAsStringAsync(ct));
    }

    static double SumOf(Dictionary<string, double> m, string name) =>
        m.Where(kv => kv.Key == name || kv.Key.StartsWith(name + "{", StringComparison.Ordinal)).Sum(kv => kv.Value);

    static long Sum5xx(Dictionary<string, double> m) =>
        (long)m.Where(kv => kv.Key.StartsWith("tandem_requests_total{", StringComparison.Ordinal) && kv.Key.Contains("status=\"5", StringComparison.Ordinal)).Sum(kv => kv.Value);
}

/// <summary>Requests a load run has finished so far (read by a soak's sampler while the run goes on).</summary>
public sealed class LoadProgress
{
    int _finished;
    public int Finished => Volatile.Read(ref _finished);
    internal void RequestFinished() => Interlocked.Increment(ref _finished);
}

/// <summary>
/// Reads Prometheus' text exposition format: one sample per line, <c>name{label="value",…} number</c>; lines starting
/// with '#' are HELP/TYPE comments. The key kept is everything before the value (name and labels, as written).
/// </summary>
public static class PrometheusText
{
    public static Dictionary<string, double> Parse(string text)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            int space = line.LastIndexOf(' ');
            if (space <= 0 || !double.TryParse(line.AsSpan(space + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                throw new FormatException($"not a Prometheus sample line (expected 'name{{labels}} value'): '{line}'");
            values[line[..space]] = v;
        }
        return values;
    }
}
