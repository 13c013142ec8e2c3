using Tandem.Routing;

namespace Tandem.Tests.Routing;

public sealed class PrivacyDetectorTests
{
    // 11010519491231002X: the standard's worked example (Beijing, born 1949-12-31, check character X)
    [Theory]
    [InlineData("11010519491231002X", true)]
    [InlineData("110105194912310021", false)] // wrong check character
    [InlineData("110105194913310027", false)] // month 13
    public void ChinaResidentId_NeedsChecksumAndDate(string id, bool valid) => Assert.Equal(valid, PrivacyDetector.IsValidChinaResidentId(id));

    [Theory]
    [InlineData("4111 1111 1111 1111", true)]
    [InlineData("4111 1111 1111 1112", false)]
    [InlineData("5500-0000-0000-0004", true)]
    public void BankCard_Luhn(string card, bool valid) => Assert.Equal(valid, PrivacyDetector.PassesLuhn(card));

    [Theory]
    [InlineData("write to alice.smith@example.org today", PiiKind.Email, "alice.smith@example.org")]
    [InlineData("我的手机号是13812345678，请记住", PiiKind.Phone, "13812345678")]
    [InlineData("appelle-moi au 06 12 34 56 78 demain", PiiKind.Phone, "06 12 34 56 78")]
    [InlineData("call (415) 555-0132 now", PiiKind.Phone, "(415) 555-0132")]
    [InlineData("身份证号 11010519491231002X 已提交", PiiKind.ChinaResidentId, "11010519491231002X")]
    [InlineData("pay with 4111 1111 1111 1111 please", PiiKind.BankCard, "4111 1111 1111 1111")]
    [InlineData("ship it to 221 Baker Street tomorrow", PiiKind.Address, "221 Baker Street")]
    [InlineData("地址：北京市朝阳区建国路88号", PiiKind.Address, "北京市朝阳区建国路88号")]
    [InlineData("my name is John Carter and I need help", PiiKind.Name, "John Carter")]
    [InlineData("你好，我叫王小明", PiiKind.Name, "王小明")]
    public void Detects(string text, PiiKind kind, string span)
    {
        var f = Assert.Single(PrivacyDetector.Detect(text));
        Assert.Equal(kind, f.Kind);
        Assert.Equal(span, text.Substring(f.Start, f.Length));
    }

    [Theory]
    [InlineData("Set an alarm for 6:30 tomorrow morning")]
    [InlineData("x+y=4z, xy=4z^2, express x-y in terms of z")]
    [InlineData("find all primes below 1000")]
    [InlineData("110105194912310021 is just a number")] // bad checksum: not an ID (and not Luhn-valid)
    public void NoFalsePositives(string text) => Assert.Empty(PrivacyDetector.Detect(text));

    [Fact]
    public void Redact_ReplacesEveryFindingAndKeepsTheRest()
    {
        string r = PrivacyDetector.Redact("Mail bob@example.com or call 13812345678, ID 11010519491231002X.");
        Assert.Equal("Mail [EMAIL] or call [PHONE], ID [ID].", r);
    }
}
