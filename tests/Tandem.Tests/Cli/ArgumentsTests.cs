using Tandem.Cli;

namespace Tandem.Tests.Cli;

public class ArgumentsTests
{
    static readonly OptionSpec[] Specs =
    [
        new("--prompt", "-p", "TEXT", ""),
        new("--n-predict", "-n", "N", ""),
        new("--temp", null, "T", ""),
        new("--stop", null, "TEXT", "", Repeatable: true),
        new("--json", null, null, ""),
    ];

    static Arguments Parse(params string[] args) => Arguments.Parse("run", args, Specs);

    [Fact]
    public void LongShortAndInlineValues()
    {
        var a = Parse("-p", "hello world", "--n-predict=12", "--temp", "0.5", "--json");
        Assert.Equal("hello world", a.String("--prompt"));
        Assert.Equal(12, a.Int("--n-predict", 0));
        Assert.Equal(0.5f, a.Float("--temp", 1));
        Assert.True(a.Flag("--json"));
        Assert.Empty(a.Positionals);
    }

    [Fact]
    public void ValuesMayStartWithADash()
    {
        var a = Parse("-p", "-not an option", "--temp", "-1");
        Assert.Equal("-not an option", a.String("--prompt"));
        Assert.Equal(-1f, a.Float("--temp", 1));
    }

    [Fact]
    public void DefaultsWhenAbsent()
    {
        var a = Parse();
        Assert.Null(a.String("--prompt"));
        Assert.Equal(128, a.Int("--n-predict", 128));
        Assert.False(a.Flag("--json"));
        Assert.Empty(a.All("--stop"));
    }

    [Fact]
    public void RepeatableOptionsCollectEveryValue()
    {
        Assert.Equal(["a", "b"], Parse("--stop", "a", "--stop=b").All("--stop"));
        Assert.Throws<UsageException>(() => Parse("-p", "x", "-p", "y"));
    }

    [Fact]
    public void DoubleDashEndsOptions()
    {
        var a = Parse("--", "--json", "-p");
        Assert.Equal(["--json", "-p"], a.Positionals);
        Assert.False(a.Flag("--json"));
    }

    [Fact]
    public void ErrorsNameTheOption()
    {
        Assert.Contains("--bogus", Assert.Throws<UsageException>(() => Parse("--bogus")).Message);
        Assert.Contains("--prompt", Assert.Throws<UsageException>(() => Parse("-p")).Message);
        Assert.Contains("--json", Assert.Throws<UsageException>(() => Parse("--json=yes")).Message);
        Assert.Contains("'many'", Assert.Throws<UsageException>(() => Parse("-n", "many").Int("--n-predict", 0)).Message);
        Assert.Contains("at least 0", Assert.Throws<UsageException>(() => Parse("-n", "-3").Int("--n-predict", 0, min: 0)).Message);
        Assert.Contains("--temp", Assert.Throws<UsageException>(() => Parse("--temp", "2").Float("--temp", 0, max: 1)).Message);
    }

    [Fact]
    public void ExtraPositionalsAreRejected()
    {
        var a = Parse("model.gguf", "other");
        a.AllowPositionals(2, "two");
        Assert.Contains("'other'", Assert.Throws<UsageException>(() => a.AllowPositionals(1, "one model file")).Message);
    }
}
