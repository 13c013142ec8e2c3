using Tandem.Gguf;

namespace Tandem.Engine.Architectures;

/// <summary>Qwen3 (dense): no attention biases, per-head RMSNorm of queries and keys before NEOX RoPE, explicit head size.</summary>
public sealed class Qwen3 : IArchitecture
{
    public string Name => "qwen3";

    public ModelConfig ReadConfig(GgufFile file) => ModelConfig.Read(file, Name, RopeLayout.Neox);

    public TransformerWeights LoadWeights(GgufFile file, ModelConfig config) =>
        TransformerLoader.Load(file, config, new TransformerLoader.Parts(QueryKeyNorm: true));
}
