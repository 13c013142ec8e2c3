using Tandem.Routing;

namespace Tandem.Tests.Routing;

public sealed class ComplexityScorerTests
{
    static string Data(string name) => Path.Combine(TestData.Root, "src", "Tandem.Routing", "Data", name);
    static readonly ComplexityScorer Shipped = ComplexityScorer.Load(Data("router-weights.json"));

    [Fact]
    public void ShippedWeights_HeldOutAccuracy()
    {
        var held = LabelledPrompt.ReadJsonLines(Data("router-heldout.jsonl"));
        Assert.Equal(48, held.Count);
        var e = ScorerEvaluation.Of(Shipped, held);
        Assert.True(e.Accuracy >= 0.95, e.ToString());
    }

    [Fact]
    public void ShippedWeights_AreWhatTrainingTheShippedDataGives()
    {
        var retrained = ComplexityScorer.Train([.. LabelledPrompt.ReadJsonLines(Data("router-train.jsonl")), .. LabelledPrompt.ReadJsonLines(Data("public/public-train.jsonl")),
            .. LabelledPrompt.ReadJsonLines(Data("public/public-dev-train.jsonl")), .. LabelledPrompt.ReadJsonLines(Data("public/public-dev-train2.jsonl"))]);
        foreach (var p in LabelledPrompt.ReadJsonLines(Data("router-heldout.jsonl")))
            Assert.Equal(Shipped.Score(p.Prompt), retrained.Score(p.Prompt), 3);
    }

    // where length misleads: short hard requests and long, wordy device commands (none of them in the training set).
    // Since the weights were retrained with the public data, "Prove there are infinitely many primes" is a miss (routed
    // local), reported in the README rather than hidden. The public held-out numbers are asserted below.
    [Theory]
    [InlineData("写一个冒泡排序", true)]
    [InlineData("x-y=2z, x²+y²=10z², find xy", true)]
    [InlineData("Écris un tri par fusion", true)]
    [InlineData("Could you please, when you get a moment, switch the phone to silent mode and also turn off the Wi-Fi because I am going into a long meeting now", false)]
    [InlineData("我马上要开一个很长的会议，麻烦你把手机调成静音，然后把蓝牙也关掉，会议结束以后再提醒我打开", false)]
    [InlineData("Turn on the flashlight please", false)]
    public void LengthMisleads_ScorerDoesNot(string prompt, bool cloud) => Assert.Equal(cloud, Shipped.NeedsCloud(prompt));

    [Fact]
    public void SaveLoad_RoundTripsScores_AndBadFilesAreRejected()
    {
        string path = TestData.Temp("router.json");
        Shipped.Save(path);
        var loaded = ComplexityScorer.Load(path);
        Assert.Equal(Shipped.Score("写一个快速排序"), loaded.Score("写一个快速排序"), 4);
        File.WriteAllText(path, "{\"version\":2}");
        var ex = Assert.Throws<FormatException>(() => ComplexityScorer.Load(path));
        Assert.Contains("version-1 router model", ex.Message);
        File.WriteAllText(path, "{\"prompt\":\"hi\",\"label\":\"maybe\"}\n");
        ex = Assert.Throws<FormatException>(() => LabelledPrompt.ReadJsonLines(path));
        Assert.Contains(":1:", ex.Message);
    }

    [Fact]
    public void Threshold_IsTunable()
    {
        double s = Shipped.Score("写一个快速排序");
        var strict = ComplexityScorer.Load(Data("router-weights.json"));
        strict.Threshold = Math.Min(1, s + 0.01);
        Assert.False(strict.NeedsCloud("写一个快速排序"));
        strict.Threshold = s;
        Assert.True(strict.NeedsCloud("写一个快速排序"));
    }

    [Fact]
    public void ShippedWeights_OnSecondHeldOutPublicData()
    {
        // the second held-out set (new sources and unused partitions), frozen before the second round and scored once
        // after all choices were made by cross-validation on the training data. The goals are 98 % overall and 90 % where
        // length misleads; what ships is under both (97.2 %, 79.6 %; en 94.8, fr 97.7, zh 100), and these bounds sit just
        // under it to catch regressions
        var held = LabelledPrompt.ReadJsonLines(Data("public/public-heldout2.jsonl"));
        var r = RouteEvaluation.Run(held, Shipped, new RouteEvaluationOptions { LatencyPasses = 1 });
        Assert.True(r.Confusion.Accuracy >= 0.97, $"accuracy {r.Confusion.Accuracy:P1}");
        Assert.True(r.Confusion.Accuracy > r.LengthBaseline.Accuracy + 0.05, $"scorer {r.Confusion.Accuracy:P1} vs length {r.LengthBaseline.Accuracy:P1}");
        Assert.True(r.LengthMisleads.Count >= 150 && r.LengthMisleads.Accuracy >= 0.79, $"length misleads: {r.LengthMisleads}");
        Assert.Equal(["en", "fr", "zh"], r.ByLanguage.Select(l => l.Name));
        var floor = new Dictionary<string, double> { ["en"] = 0.945, ["fr"] = 0.975, ["zh"] = 0.995 };
        foreach (var l in r.ByLanguage) Assert.True(l.Accuracy >= floor[l.Name], $"{l.Name}: {l.Accuracy:P1}");
        Assert.Superset(new HashSet<string> { "mgsm-fr", "mgsm-zh", "cmath-dev", "codealpaca-en", "gt-doremiti-fr", "ha-intents-fr-rest" },
            r.BySource.Select(s => s.Name).ToHashSet());
    }

    [Fact]
    public void ShippedWeights_OnFirstHeldOutPublicData_NowDevelopmentData()
    {
        // the first held-out set is development data since the second round: its OASST, Vigogne, Chinese Alpaca, Ape210K
        // and HumanEval rows (public-dev-train.jsonl) are trained on, so this is no longer an unseen-data measurement;
        // bounds just under what ships (98.7 %, 96.6 % where length misleads; en 99.4, fr 97.1, zh 98.9)
        var held = LabelledPrompt.ReadJsonLines(Data("public/public-heldout.jsonl"));
        var r = RouteEvaluation.Run(held, Shipped, new RouteEvaluationOptions { LatencyPasses = 1 });
        Assert.True(r.Confusion.Accuracy >= 0.98, $"accuracy {r.Confusion.Accuracy:P1}");
        Assert.True(r.LengthMisleads.Count >= 150 && r.LengthMisleads.Accuracy >= 0.96, $"length misleads: {r.LengthMisleads}");
        var floor = new Dictionary<string, double> { ["en"] = 0.99, ["fr"] = 0.965, ["zh"] = 0.985 };
        foreach (var l in r.ByLanguage) Assert.True(l.Accuracy >= floor[l.Name], $"{l.Name}: {l.Accuracy:P1}");
    }

    [Fact]
    public void HeldOutPublicData_SharesNoPromptWithTraining()
    {
        var train = new HashSet<string>(LabelledPrompt.ReadJsonLines(Data("public/public-train.jsonl")).Select(p => p.Prompt));
        train.UnionWith(LabelledPrompt.ReadJsonLines(Data("router-train.jsonl")).Select(p => p.Prompt));
        var leaked = LabelledPrompt.ReadJsonLines(Data("public/public-heldout.jsonl")).Where(p => train.Contains(p.Prompt)).ToList();
        Assert.Empty(leaked);
        // the second held-out set shares nothing with any other file, the first held-out set (now partly trained on) included
        var dev = LabelledPrompt.ReadJsonLines(Data("public/public-dev-train.jsonl"));
        Assert.NotEmpty(dev);
        train.UnionWith(dev.Select(p => p.Prompt));
        train.UnionWith(LabelledPrompt.ReadJsonLines(Data("public/public-heldout.jsonl")).Select(p => p.Prompt));
        train.UnionWith(LabelledPrompt.ReadJsonLines(Data("router-heldout.jsonl")).Select(p => p.Prompt));
        var leaked2 = LabelledPrompt.ReadJsonLines(Data("public/public-heldout2.jsonl")).Where(p => train.Contains(p.Prompt)).ToList();
        Assert.Empty(leaked2);
        // the third held-out set shares nothing with any other file either: every training file (whatever its name) and
        // both earlier held-out sets, which are development data since the rounds after them
        var dataDir = Data("public");
        foreach (var file in Directory.GetFiles(dataDir, "*.jsonl").Where(f => !f.EndsWith("public-heldout3.jsonl")))
            train.UnionWith(LabelledPrompt.ReadJsonLines(file).Select(p => p.Prompt));
        var heldout3 = LabelledPrompt.ReadJsonLines(Data("public/public-heldout3.jsonl"));
        Assert.True(heldout3.Count > 1000);
        Assert.Empty(heldout3.Where(p => train.Contains(p.Prompt)).ToList());
    }

    [Fact]
    public void CrossValidation_ScoresEveryPromptOutOfFold_AndKeepsGroupsTogether()
    {
        // Made-up words with random labels: nothing generalises, so only memorising a prompt seen in training can beat
        // chance. Each word appears three times; without groups the copies land in other folds and are memorised, with
        // groups they stay in one fold and the out-of-fold accuracy falls to about chance.
        var rng = new Random(5);
        var words = Enumerable.Range(0, 60).Select(_ => new string(Enumerable.Range(0, 8).Select(_ => (char)('a' + rng.Next(26))).ToArray())).ToList();
        var labels = words.Select(_ => rng.Next(2) == 0 ? "cloud" : "local").ToList();
        List<LabelledPrompt> MadeUp(bool grouped) => [.. Enumerable.Range(0, 180).Select(i =>
            new LabelledPrompt(words[i % 60], labels[i % 60], "en", "made-up", grouped ? words[i % 60] : null))];
        var options = new ScorerTrainingOptions { Epochs = 40, Threshold = 0.5, Balance = ClassBalance.None };

        var leaky = ScorerCrossValidation.Run(MadeUp(grouped: false), 3, options);
        var grouped = ScorerCrossValidation.Run(MadeUp(grouped: true), 3, options);
        Assert.Equal(180, leaky.Confusion.Total);
        Assert.Equal(3, grouped.FoldAccuracies.Count);
        Assert.True(leaky.Confusion.Accuracy > 0.9, leaky.ToString());
        Assert.True(grouped.Confusion.Accuracy < 0.7 && grouped.Confusion.Accuracy < leaky.Confusion.Accuracy - 0.25, grouped.ToString());
        Assert.Equal(180 - (int)Math.Round(grouped.Confusion.Accuracy * 180), grouped.Misses.Count);
        Assert.Throws<ArgumentException>(() => ScorerCrossValidation.Run(MadeUp(true), 1, options));
    }

    [Fact]
    public void CrossValidation_OnTheHandWrittenSet_BeatsLength()
    {
        var train = LabelledPrompt.ReadJsonLines(Data("router-train.jsonl"));
        var r = ScorerCrossValidation.Run(train, 4);
        Assert.Equal(train.Count, r.Confusion.Total);
        Assert.Equal(["en", "fr", "zh"], r.ByLanguage.Select(l => l.Name));
        Assert.True(r.Confusion.Accuracy > r.LengthBaseline.Accuracy + 0.05, r.ToString());
        Assert.Contains("4-fold cross-validation over 192 training prompts", r.ToString());
    }

    [Fact]
    public void LanguageLabelBalance_ChangesTheModel_NoneKeepsUnitWeights()
    {
        // 30 English local, 3 English cloud: balancing gives the cloud side ten times the weight, so its score rises
        List<LabelledPrompt> data = [.. Enumerable.Range(0, 30).Select(i => new LabelledPrompt($"turn on light {i}", "local", "en")),
            .. Enumerable.Range(0, 3).Select(i => new LabelledPrompt($"prove theorem {i}", "cloud", "en"))];
        var plain = ComplexityScorer.Train(data, new ScorerTrainingOptions { Balance = ClassBalance.None, Epochs = 10 });
        var balanced = ComplexityScorer.Train(data, new ScorerTrainingOptions { Balance = ClassBalance.LanguageLabel, Epochs = 10 });
        Assert.True(balanced.Score("prove theorem 7") > plain.Score("prove theorem 7"));
    }
}
