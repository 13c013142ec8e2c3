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
    [InlineData("Create a Ruby method to convert a given string to snake case.", true)]
    [InlineData("编写函数反转一个链表", true)]
    public void LengthMisleads_ScorerDoesNot(string prompt, bool cloud) => Assert.Equal(cloud, Shipped.NeedsCloud(prompt));

    // The third round's two features: software vocabulary (languages, formats, data structures) and a making or
    // explaining verb at the start. Device commands, shopping lists and French weather requests carry neither.
    [Theory]
    [InlineData("Create an HTML page with a text input form and a submit button.", true, true)]
    [InlineData("Write a python function to find the first repeated character in a given string.", true, true)]
    [InlineData("编写一个函数square(x)，返回该数字的平方值。", true, true)]
    [InlineData("Écrivez une fonction qui renvoie la chaîne de caractères inversée", true, true)]
    [InlineData("Add milk to my shopping list", false, false)]
    [InlineData("Donne-moi la vitesse du vent à Brest", false, false)]
    [InlineData("打开客厅的灯", false, false)]
    public void SoftwareVocabulary_AndTaskOpeners(string prompt, bool software, bool taskOpener)
    {
        var f = RequestFeatures.Extract(prompt, 1, 1 << 14);
        int Index(string name) => RequestFeatures.DenseNames.ToList().IndexOf(name);
        Assert.Equal(software, f.Dense[Index("cue_software")] > 0);
        Assert.Equal(taskOpener, f.Dense[Index("opens_with_task")] == 1);
    }

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
    public void ShippedWeights_OnThirdHeldOutPublicData()
    {
        // the third held-out set (MBPP, SVAMP, BELLE's Chinese eval set, unused remainders of the command partitions),
        // frozen before the third round and scored once after all choices were made by cross-validation on the training
        // data. What ships: 98.8 % (en 99.4, fr 93.3, zh 98.5), 96.8 % where length misleads — both goals met on this set;
        // these bounds sit just under it to catch regressions
        var held = LabelledPrompt.ReadJsonLines(Data("public/public-heldout3.jsonl"));
        var r = RouteEvaluation.Run(held, Shipped, new RouteEvaluationOptions { LatencyPasses = 1 });
        Assert.True(r.Confusion.Accuracy >= 0.985, $"accuracy {r.Confusion.Accuracy:P1}");
        Assert.True(r.Confusion.Accuracy > r.LengthBaseline.Accuracy + 0.05, $"scorer {r.Confusion.Accuracy:P1} vs length {r.LengthBaseline.Accuracy:P1}");
        Assert.True(r.LengthMisleads.Count >= 150 && r.LengthMisleads.Accuracy >= 0.96, $"length misleads: {r.LengthMisleads}");
        Assert.Equal(["en", "fr", "zh"], r.ByLanguage.Select(l => l.Name));
        var floor = new Dictionary<string, double> { ["en"] = 0.99, ["fr"] = 0.93, ["zh"] = 0.98 };
        foreach (var l in r.ByLanguage) Assert.True(l.Accuracy >= floor[l.Name], $"{l.Name}: {l.Accuracy:P1}");
        Assert.Superset(new HashSet<string> { "mbpp-en", "svamp-en", "belle-eval-zh-code-math", "belle-eval-zh", "ha-intents-fr-rest2-long", "slurp-test-rest2-long" },
            r.BySource.Select(s => s.Name).ToHashSet());
    }

    [Fact]
    public void ShippedWeights_OnSecondHeldOutPublicData_NowDevelopmentData()
    {
        // development data since the third round: its MGSM, CMATH, CodeAlpaca and DoReMiTI rows are trained on
        // (public-dev-train2.jsonl); it was scored once unseen in the second round (97.2 %, 79.6 % where length
        // misleads). Bounds just under what ships now (99.1 %, 95.8 %; en 99.0, fr 98.0, zh 100)
        var held = LabelledPrompt.ReadJsonLines(Data("public/public-heldout2.jsonl"));
        var r = RouteEvaluation.Run(held, Shipped, new RouteEvaluationOptions { LatencyPasses = 1 });
        Assert.True(r.Confusion.Accuracy >= 0.985, $"accuracy {r.Confusion.Accuracy:P1}");
        Assert.True(r.LengthMisleads.Count >= 150 && r.LengthMisleads.Accuracy >= 0.95, $"length misleads: {r.LengthMisleads}");
        var floor = new Dictionary<string, double> { ["en"] = 0.985, ["fr"] = 0.975, ["zh"] = 0.995 };
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
