using Tandem.Gguf;

namespace Tandem.Tests;

public class GgufSmokeTests
{
    [Fact]
    public void OpensEveryShippedModel()
    {
        foreach (var path in Directory.GetFiles(TestData.Models, "*.gguf").Append(TestData.Stories260K))
        {
            using var f = GgufFile.Open(path);
            Assert.NotEmpty(f.Tensors);
            Assert.NotNull(f.GetString("general.architecture"));
        }
    }
}
