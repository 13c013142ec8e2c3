using System.Globalization;

namespace Tandem.Routing;

public enum ThermalState { Nominal, Fair, Serious, Critical }
public enum NetworkState { Online, Metered, Offline }

/// <summary>What the device can afford right now. Battery is 0..1 (null when there is no battery).</summary>
public sealed record DeviceState
{
    public double? BatteryLevel { get; init; }
    public bool Charging { get; init; } = true;
    public ThermalState Thermal { get; init; } = ThermalState.Nominal;
    /// <summary>0 = plenty free, 1 = nothing left (1 − available/total).</summary>
    public double MemoryPressure { get; init; }
    public NetworkState Network { get; init; } = NetworkState.Online;

    public static DeviceState Unconstrained { get; } = new();

    /// <summary>True when running the local model would hurt: low battery not charging, hot, or out of memory.</summary>
    public bool LocalConstrained => (BatteryLevel is < 0.15 && !Charging) || Thermal >= ThermalState.Serious || MemoryPressure > 0.92;
}

/// <summary>Supplied by the host app (phone OS APIs); <see cref="LinuxDeviceState"/> reads this machine.</summary>
public interface IDeviceStateProvider
{
    DeviceState Current { get; }
}

/// <summary>A provider that returns whatever it was given (hosts that push state, tests).</summary>
public sealed class FixedDeviceState(DeviceState state) : IDeviceStateProvider
{
    public DeviceState Current { get; set; } = state;
}

/// <summary>
/// Linux: battery from /sys/class/power_supply/*/{type,capacity,status}, temperature from
/// /sys/class/thermal/thermal_zone*/temp (millidegrees C; ≥ 80 °C serious, ≥ 95 °C critical, ≥ 70 °C fair),
/// memory pressure from /proc/meminfo (MemAvailable / MemTotal). Missing files give the unconstrained defaults
/// (a server has no battery). The network state cannot be read reliably here and is taken from the constructor.
/// </summary>
public sealed class LinuxDeviceState(string root = "/", NetworkState network = NetworkState.Online) : IDeviceStateProvider
{
    public DeviceState Current => Read();

    string P(string path) => Path.Combine(root, path.TrimStart('/'));

    DeviceState Read()
    {
        double? battery = null;
        bool charging = true;
        var supplies = P("/sys/class/power_supply");
        if (Directory.Exists(supplies))
            foreach (var dir in Directory.GetDirectories(supplies))
            {
                if (ReadText(Path.Combine(dir, "type")) != "Battery") continue;
                if (int.TryParse(ReadText(Path.Combine(dir, "capacity")), CultureInfo.InvariantCulture, out int cap)) battery = Math.Clamp(cap / 100.0, 0, 1);
                charging = ReadText(Path.Combine(dir, "status")) is "Charging" or "Full" or "Not charging";
                break;
            }

        double maxC = double.NaN;
        var thermal = P("/sys/class/thermal");
        if (Directory.Exists(thermal))
            foreach (var dir in Directory.GetDirectories(thermal, "thermal_zone*"))
                if (long.TryParse(ReadText(Path.Combine(dir, "temp")), CultureInfo.InvariantCulture, out long milli))
                    maxC = double.IsNaN(maxC) ? milli / 1000.0 : Math.Max(maxC, milli / 1000.0);
        var state = double.IsNaN(maxC) || maxC < 70 ? ThermalState.Nominal : maxC < 80 ? ThermalState.Fair : maxC < 95 ? ThermalState.Serious : ThermalState.Critical;

        double pressure = 0;
        var meminfo = P("/proc/meminfo");
        if (File.Exists(meminfo))
        {
            long total = 0, available = -1;
            foreach (var line in File.ReadLines(meminfo))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal)) total = Kb(line);
                else if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)) available = Kb(line);
            }
            if (total > 0 && available >= 0) pressure = Math.Clamp(1 - (double)available / total, 0, 1);
        }
        return new DeviceState { BatteryLevel = battery, Charging = charging, Thermal = state, MemoryPressure = pressure, Network = network };
    }

    static long Kb(string line) =>
        long.TryParse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture, out long v) ? v : 0;

    static string? ReadText(string path)
    {
        try { return File.Exists(path) ? File.ReadAllText(path).Trim() : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
