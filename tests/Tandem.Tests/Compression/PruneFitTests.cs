using Tandem.Compression.Pruning;
using Tandem.Engine;

namespace Tandem.Tests.Compression;

/// <summary><c>tandem fit</c>'s arithmetic: profiles, memory of a model, and the plan proposed when it does not fit.</summary>
public class PruneFitTests
{
    [Fact]
    public void BuiltinProfiles_AreShipped()
    {
        var names = DeviceProfile.Builtin.Select(p => p.Name).ToList();
        Assert.Equal(["coreml-guideline", "phone-8gb", "phone-12gb", "laptop-16gb"], names);
        var coreml = DeviceProfile.Resolve("coreml-guideline");
        Assert.Equal(1_500_000_000, coreml.MemoryBytes);
        Assert.Equal(0.4, coreml.TtftSeconds);
    }

    [Fact]
    public void Qwen25_1_5B_DoesNotFitCoreMl_ButTheProposedPlanDoes()
    {
        var profile = DeviceProfile.Resolve("coreml-guideline");
        var r = DeviceFit.CheckPreset(ModelShape.Qwen25_1_5B, profile, 4096);
        Assert.Equal(1_543_714_304, r.Model.Parameters(r.Model.Prunable)); // Qwen2.5-1.5B's published count, embeddings tied
        Assert.False(r.MemoryFits);
        var plan = Assert.IsType<FitPlan>(r.Proposal);
        Assert.True(plan.TotalBytes <= profile.MemoryBytes, $"plan needs {plan.TotalBytes} bytes");
        Assert.Equal(plan.WeightBytes + plan.KvBytes + plan.RuntimeBytes, plan.TotalBytes);
        Assert.Equal(ModelShape.Qwen25_1_5B.Parameters(plan.Shape), plan.Parameters);
        // quantization comes before pruning: the plan is at most 4.9 bits per weight only because 8 bits did not fit
        Assert.True(plan.Format.BitsPerWeight < 8.5);
    }

    [Fact]
    public void SmallModel_FitsALaptop_WithMeasuredTimings()
    {
        using var model = Model.Load(TestData.Stories260K);
        var r = DeviceFit.Check(model, DeviceProfile.Resolve("laptop-16gb"), 256, 1);
        Assert.True(r.MemoryFits);
        if (r.Fits) Assert.Null(r.Proposal); // a plan only for what does not fit (whether TTFT fits depends on this machine's load)
        Assert.Equal(model.WeightBytes, r.WeightBytes);
        Assert.Equal(2L * 5 * 256 * 4 * 8 * 2, r.KvBytes); // K and V, 5 blocks, 256 positions, 4 KV heads of 8, F16
        var t = Assert.IsType<FitTimings>(r.Timings);
        Assert.True(t.TtftSeconds > 0 && t.DecodeTokensPerSecond > 0);
    }

    [Fact]
    public void FitCommand_Preset_Json_ProposesAPlanUnderTheBudget()
    {
        var r = Tandem.Tests.Cli.TandemProcess.Run("fit", "--preset", "qwen2.5-1.5b", "--device", "coreml-guideline", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = System.Text.Json.JsonDocument.Parse(r.Stdout);
        var j = doc.RootElement;
        Assert.False(j.GetProperty("memory_fits").GetBoolean());
        Assert.True(j.GetProperty("plan").GetProperty("total_bytes").GetInt64() <= j.GetProperty("budget_bytes").GetInt64());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, j.GetProperty("timings").ValueKind);
    }

    [Fact]
    public void UserProfile_FromJson_AndBadOnes_AreExplained()
    {
        string path = TestData.Temp("profile.json");
        try
        {
            File.WriteAllText(path, """{"name": "watch", "memory_bytes": 1000000, "speed_factor": 0.1}""");
            var p = DeviceProfile.Resolve(path);
            Assert.Equal(("watch", 1_000_000L, 0.1, (double?)null), (p.Name, p.MemoryBytes, p.SpeedFactor, p.TtftSeconds));
            var r = DeviceFit.CheckPreset(ModelShape.Qwen25_1_5B, p, 4096);
            Assert.False(r.Fits);
            Assert.Null(r.Proposal); // a 1.5B model cannot be pruned into 1 MB

            File.WriteAllText(path, """{"name": "broken"}""");
            Assert.Contains("memory_bytes", Assert.Throws<ArgumentException>(() => DeviceProfile.Resolve(path)).Message);
        }
        finally { File.Delete(path); }
        Assert.Contains("unknown device profile", Assert.Throws<ArgumentException>(() => DeviceProfile.Resolve("toaster")).Message);
    }
}
