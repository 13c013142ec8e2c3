using Tandem.Routing;

namespace Tandem.Tests.Routing;

public sealed class DeviceStateTests
{
    static string FakeRoot(int capacity, string status, int milliCelsius, long totalKb, long availableKb)
    {
        string root = TestData.Temp("sysroot");
        var bat = Directory.CreateDirectory(Path.Combine(root, "sys/class/power_supply/BAT0")).FullName;
        File.WriteAllText(Path.Combine(bat, "type"), "Battery\n");
        File.WriteAllText(Path.Combine(bat, "capacity"), capacity + "\n");
        File.WriteAllText(Path.Combine(bat, "status"), status + "\n");
        var ac = Directory.CreateDirectory(Path.Combine(root, "sys/class/power_supply/AC")).FullName;
        File.WriteAllText(Path.Combine(ac, "type"), "Mains\n");
        var tz = Directory.CreateDirectory(Path.Combine(root, "sys/class/thermal/thermal_zone0")).FullName;
        File.WriteAllText(Path.Combine(tz, "temp"), milliCelsius + "\n");
        Directory.CreateDirectory(Path.Combine(root, "proc"));
        File.WriteAllText(Path.Combine(root, "proc/meminfo"), $"MemTotal:       {totalKb} kB\nMemFree:        1 kB\nMemAvailable:   {availableKb} kB\n");
        return root;
    }

    [Fact]
    public void Linux_ReadsBatteryThermalAndMemory()
    {
        var s = new LinuxDeviceState(FakeRoot(12, "Discharging", 85000, 8_000_000, 400_000)).Current;
        Assert.Equal(0.12, s.BatteryLevel!.Value, 6);
        Assert.False(s.Charging);
        Assert.Equal(ThermalState.Serious, s.Thermal);
        Assert.Equal(0.95, s.MemoryPressure, 6);
        Assert.True(s.LocalConstrained);

        var ok = new LinuxDeviceState(FakeRoot(80, "Charging", 45000, 8_000_000, 6_000_000)).Current;
        Assert.True(ok.Charging);
        Assert.Equal(ThermalState.Nominal, ok.Thermal);
        Assert.False(ok.LocalConstrained);
    }

    [Fact]
    public void Linux_MissingFilesGiveDefaults()
    {
        var s = new LinuxDeviceState(TestData.Temp("empty-root"), NetworkState.Metered).Current;
        Assert.Null(s.BatteryLevel);
        Assert.Equal(ThermalState.Nominal, s.Thermal);
        Assert.Equal(0, s.MemoryPressure);
        Assert.Equal(NetworkState.Metered, s.Network);
    }

    [Fact]
    public void Linux_ThisMachine_ReadsSomething()
    {
        var s = new LinuxDeviceState().Current; // real /proc/meminfo on this machine
        Assert.InRange(s.MemoryPressure, 0.0001, 1);
    }
}
