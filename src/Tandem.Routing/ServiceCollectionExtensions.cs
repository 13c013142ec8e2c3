using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Tandem.Routing;

/// <summary>Everything <see cref="ServiceCollectionExtensions.AddTandemHybridChat"/> needs.</summary>
public sealed record HybridChatSetup
{
    /// <summary>GGUF model answered on the device.</summary>
    public required string LocalModelPath { get; init; }
    public LocalChatClientOptions Local { get; init; } = new();
    /// <summary>The OpenAI-compatible cloud; null = local only.</summary>
    public CloudOptions? Cloud { get; init; }
    public RouterOptions Router { get; init; } = new();
    /// <summary>Router model file; null = the one shipped with Tandem.</summary>
    public string? ScorerPath { get; init; }
    /// <summary>Device state; null = <see cref="LinuxDeviceState"/> on Linux, unconstrained elsewhere.</summary>
    public IDeviceStateProvider? Device { get; init; }
}

public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Registers the hybrid router as the app's <see cref="IChatClient"/> (a singleton built on first use), so any
    /// code that takes an IChatClient gets device–cloud routing. Returns the builder to add more middleware
    /// (logging, caching, telemetry from Microsoft.Extensions.AI).
    /// </summary>
    public static ChatClientBuilder AddTandemHybridChat(this IServiceCollection services, HybridChatSetup setup) =>
        services.AddChatClient(_ => Create(setup));

    /// <summary>The router without DI.</summary>
    public static HybridChatClient Create(HybridChatSetup setup)
    {
        var scorer = setup.ScorerPath is null ? ComplexityScorer.LoadDefault() : ComplexityScorer.Load(setup.ScorerPath);
        var device = setup.Device ?? (OperatingSystem.IsLinux() ? new LinuxDeviceState() : new FixedDeviceState(DeviceState.Unconstrained));
        return new HybridChatClient(LocalChatClient.Load(setup.LocalModelPath, setup.Local), setup.Cloud?.CreateClient(), setup.Router, scorer, device);
    }
}
