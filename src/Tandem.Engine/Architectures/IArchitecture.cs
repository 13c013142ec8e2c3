using Tandem.Gguf;

namespace Tandem.Engine.Architectures;

/// <summary>An architecture reads its hyperparameters and binds its tensors; the forward pass is shared.</summary>
public interface IArchitecture
{
    /// <summary>The <c>general.architecture</c> value this builder handles.</summary>
    string Name { get; }
    ModelConfig ReadConfig(GgufFile file);
    TransformerWeights LoadWeights(GgufFile file, ModelConfig config);
}

/// <summary>Maps <c>general.architecture</c> (and aliases) to the builder for it. A new architecture is one file and one line here.</summary>
public static class ArchitectureRegistry
{
    static readonly Dictionary<string, IArchitecture> Builders = new(StringComparer.Ordinal)
    {
        ["llama"] = new Llama(),
        ["qwen2"] = new Qwen2(),
        ["qwen3"] = new Qwen3(),
        // Aliases: same graph, different name in general.architecture.
        ["mistral"] = new Llama(),
    };

    public static IReadOnlyCollection<string> Names => Builders.Keys;

    public static IArchitecture Get(GgufFile file)
    {
        string arch = file.GetString("general.architecture")
            ?? throw new GgufFormatException(System.IO.Path.GetFileName(file.Path), "metadata 'general.architecture'", "required key is missing");
        return Builders.TryGetValue(arch, out var builder) ? builder
            : throw new NotSupportedException($"{System.IO.Path.GetFileName(file.Path)}: architecture '{arch}' is not supported; supported: {string.Join(", ", Builders.Keys)}");
    }
}
