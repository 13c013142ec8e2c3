using Tandem.Gguf;

namespace Tandem.Engine.Architectures;

/// <summary>Qwen2 / Qwen2.5: the llama block with q/k/v biases, NEOX RoPE, and usually tied embeddings.</summary>
public sealed class Qwen2 : IArchitecture
{
    public string Name => "qwen2";

    public ModelConfig ReadConfig(GgufFile file) => ModelConfig.Read(file, Name, RopeLayout.Neox);

    public TransformerWeights LoadWeights(GgufFile file, ModelConfig config) =>
        TransformerLoader.Load(file, config, new TransformerLoader.Parts(AttentionBiases: true));
}
