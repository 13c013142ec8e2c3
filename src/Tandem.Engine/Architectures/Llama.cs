using Tandem.Gguf;

namespace Tandem.Engine.Architectures;

/// <summary>
/// Llama (Llama 1–3, TinyLlama, stories260K, Mistral-style): RMSNorm, RoPE on adjacent pairs (the GGUF converter
/// permutes Q/K rows for it), GQA, SwiGLU, untied or tied output, optional rope_freqs (Llama-3.1 scaling).
/// </summary>
public sealed class Llama : IArchitecture
{
    public string Name => "llama";

    public ModelConfig ReadConfig(GgufFile file) =>
        ModelConfig.Read(file, file.GetString("general.architecture") ?? Name, RopeLayout.Normal);

    public TransformerWeights LoadWeights(GgufFile file, ModelConfig config) =>
        TransformerLoader.Load(file, config, new TransformerLoader.Parts());
}
