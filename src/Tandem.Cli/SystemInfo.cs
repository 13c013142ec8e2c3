using System.Diagnostics;
using System.Globalization;

namespace Tandem.Cli;

/// <summary>Facts about the machine and this process: physical cores, peak memory.</summary>
public static class SystemInfo
{
    /// <summary>Physical cores (distinct physical id / core id pairs in /proc/cpuinfo), at most the CPUs this process may use.</summary>
    public static int PhysicalCores()
    {
        int logical = Environment.ProcessorCount;
        try
        {
            if (!File.Exists("/proc/cpuinfo")) return logical;
            var cores = new HashSet<(string, string)>();
            string physical = "0";
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                int colon = line.IndexOf(':');
                if (colon < 0) continue;
                string key = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
                if (key == "physical id") physical = value;
                else if (key == "core id") cores.Add((physical, value));
            }
            return cores.Count == 0 ? logical : Math.Clamp(cores.Count, 1, logical);
        }
        catch (IOException) { return logical; }
        catch (UnauthorizedAccessException) { return logical; }
    }

    /// <summary>Peak resident set size in bytes: VmHWM from /proc/self/status on Linux, else the peak working set.</summary>
    public static long PeakRssBytes()
    {
        try
        {
            if (File.Exists("/proc/self/status"))
                foreach (var line in File.ReadLines("/proc/self/status"))
                    if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    {
                        var parts = line["VmHWM:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                        if (parts.Length >= 1 && long.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long kb))
                            return kb * 1024;
                    }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        using var self = Process.GetCurrentProcess();
        return Math.Max(self.PeakWorkingSet64, Environment.WorkingSet);
    }

    public static string Bytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.00} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };

    public static string Count(long n) => n switch
    {
        >= 1_000_000_000 => $"{n / 1e9:0.##}B",
        >= 1_000_000 => $"{n / 1e6:0.##}M",
        >= 1_000 => $"{n / 1e3:0.##}K",
        _ => n.ToString(CultureInfo.InvariantCulture),
    };
}
