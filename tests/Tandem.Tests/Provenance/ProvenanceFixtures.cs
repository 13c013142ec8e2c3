using Tandem.Gguf;
using Tandem.Provenance;

namespace Tandem.Tests.Provenance;

/// <summary>Signatures of stories260K and of models made from it (written with GgufWriter, then read back), shared by the tests.</summary>
public sealed class StoriesFamily : IDisposable
{
    public EditableModel Base { get; } = EditableModel.Load(TestData.Stories260K);
    public string[] Probes { get; }
    public ModelSignature Original { get; }
    public ModelSignature Noisy { get; }
    public ModelSignature Permuted { get; }
    public ModelSignature Dropped { get; }
    public ModelSignature Unrelated { get; }
    public string PermutedPath { get; } = TestData.Temp("stories-permuted.gguf");

    public StoriesFamily()
    {
        using (var r = WeightReader.Open(TestData.Stories260K))
            Probes = ProbeSet.Choose(ProbeSet.Shared(r.Tokens), 128);
        Original = ModelSignature.Extract(TestData.Stories260K, Probes);
        Noisy = Sign(ModelEdits.AddNoise(Base, 0.05, 1), "noisy");
        ModelEdits.Permute(Base, 3).Write(PermutedPath);
        Permuted = ModelSignature.Extract(PermutedPath, Probes);
        Dropped = Sign(ModelEdits.DropLayer(Base, 2), "dropped");
        Unrelated = Sign(ModelEdits.Unrelated(Base, 42), "unrelated");
    }

    ModelSignature Sign(EditableModel m, string name, GgmlType type = GgmlType.F32)
    {
        string path = TestData.Temp($"stories-{name}.gguf");
        try
        {
            m.Write(path, type);
            return ModelSignature.Extract(path, Probes);
        }
        finally { File.Delete(path); }
    }

    public void Dispose() => File.Delete(PermutedPath);
}
