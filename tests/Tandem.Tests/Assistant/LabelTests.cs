using System.Security.Cryptography;
using Tandem.Assistant;

namespace Tandem.Tests.Assistant;

public class LabelTests
{
    [Fact]
    public void ModelHashIsTheFilesSha256()
    {
        string expected = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(TestData.Stories260K)));
        Assert.Equal(expected, ModelFileHash.Of(TestData.Stories260K));
        Assert.Equal(expected, ModelFileHash.Of(TestData.Stories260K)); // cached

        // A changed file is hashed again, not served from the cache.
        string copy = TestData.Temp("model.gguf");
        File.Copy(TestData.Stories260K, copy);
        Assert.Equal(expected, ModelFileHash.Of(copy));
        File.AppendAllText(copy, "x");
        Assert.NotEqual(expected, ModelFileHash.Of(copy));
    }

    [Fact]
    public void MetadataNamesGeneratorModelHashAndPlace()
    {
        var meta = GenerationMetadata.ForDeviceModel(TestData.Stories260K);
        var headers = meta.ToHeaders().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal("tandem", headers["X-Tandem-Generator"]);
        Assert.Equal("stories260K", headers["X-Tandem-Model"]);
        Assert.Equal(ModelFileHash.Of(TestData.Stories260K), headers["X-Tandem-Model-SHA256"]);
        Assert.Equal("device", headers["X-Tandem-Ran-On"]);
        Assert.Equal("cloud", (meta with { RanOn = RanOn.Cloud }).ToFields()["ran_on"]);
        Assert.Throws<FileNotFoundException>(() => ModelFileHash.Of(TestData.Temp("absent.gguf")));
    }

    [Fact]
    public void ExplicitLabelIsAddedOnItsOwnLineOrNotAtAll()
    {
        Assert.Equal("Hi there\n" + LabelOptions.DefaultText, new LabelOptions().Apply("Hi there"));
        Assert.Equal("AI\nHi", new LabelOptions { Text = "AI", Prefix = true }.Apply("Hi"));
        Assert.Equal("Hi", new LabelOptions { Enabled = false }.Apply("Hi"));
    }

    [Fact]
    public void RedactorRemovesPersonalDataAndCountsIt()
    {
        var r = Redactor.Redact("Mail li.wei@example.cn, call 138 1234 5678 or +33 6 12 34 56 78; ID 110105199003071234; " +
                                "card 4111 1111 1111 1111; order 1234567890123 stays; host 192.168.1.20; I live at 12 Rue Oberkampf",
            known: ["12 Rue Oberkampf"]);
        Assert.DoesNotContain("li.wei", r.Text);
        Assert.DoesNotContain("138 1234 5678", r.Text);
        Assert.DoesNotContain("6 12 34", r.Text);
        Assert.DoesNotContain("110105199003071234", r.Text);
        Assert.DoesNotContain("4111", r.Text);
        Assert.DoesNotContain("192.168", r.Text);
        Assert.DoesNotContain("Oberkampf", r.Text);
        Assert.Contains("order 1234567890123 stays", r.Text); // not a Luhn-valid card, not a phone
        Assert.Equal(1, r.Counts["email"]);
        Assert.Equal(2, r.Counts["phone"]);
        Assert.Equal(1, r.Counts["id_number"]);
        Assert.Equal(1, r.Counts["card"]);
        Assert.Equal(1, r.Counts["ip"]);
        Assert.Equal(1, r.Counts["personal"]);
        Assert.Equal(7, r.Total);
        Assert.Empty(Redactor.Redact("turn on the living room light").Counts);
    }
}
