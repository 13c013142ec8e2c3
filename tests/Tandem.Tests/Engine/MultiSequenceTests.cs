using Tandem.Engine;

namespace Tandem.Tests.Engine;

/// <summary>Several sequences in one session, sharing passes over the weights (what a server's continuous batching needs).</summary>
public class MultiSequenceTests
{
    static readonly int[] StoryA = [1, 403, 407, 261, 378, 432, 383, 286];
    static readonly int[] StoryB = [1, 291, 280, 294, 262, 294, 353, 265];

    [Fact]
    public void SequencesDoNotSeeEachOther()
    {
        using var model = Model.Load(TestData.Stories260K);
        // Same batch shape both times; only sequence 1's tokens differ. Sequence 0's logits must be bit-identical.
        float[] RunWith(int[] other)
        {
            using var s = model.CreateSession(new SessionOptions(64, 2) { Sequences = 2 });
            var batch = new BatchToken[StoryA.Length * 2];
            for (int i = 0; i < StoryA.Length; i++)
            {
                batch[2 * i] = new BatchToken(0, StoryA[i], Logits: true);
                batch[2 * i + 1] = new BatchToken(1, other[i]);
            }
            var logits = s.Evaluate(batch).ToArray();
            Assert.Equal(StoryA.Length, s.PositionOf(0));
            Assert.Equal(StoryA.Length, s.PositionOf(1));
            return logits;
        }
        Assert.Equal(RunWith(StoryB), RunWith([.. StoryB.Reverse()]));
    }

    [Fact]
    public void BatchedDecodeOfSeveralSequencesAgreesWithSeparateSessions()
    {
        using var model = Model.Load(TestData.Stories260K);
        int vocab = model.Config.VocabSize;
        int[][] prompts = [StoryA, StoryB, [1, 403, 407]];
        using var shared = model.CreateSession(new SessionOptions(64, 2) { Sequences = prompts.Length });
        var separate = prompts.Select(_ => model.CreateSession(new SessionOptions(64, 2))).ToArray();
        try
        {
            var next = new int[prompts.Length];
            for (int s = 0; s < prompts.Length; s++)
            {
                var items = prompts[s].Select((t, i) => new BatchToken(s, t, Logits: i == prompts[s].Length - 1)).ToArray();
                var joint = shared.Evaluate(items).ToArray();
                var alone = separate[s].Evaluate(prompts[s]).ToArray();
                LogitAssert.Close(alone, joint);
                next[s] = LogitAssert.ArgMax(joint);
            }
            for (int step = 0; step < 12; step++)
            {
                var batch = next.Select((t, s) => new BatchToken(s, t, Logits: true)).ToArray();
                var joint = shared.Evaluate(batch).ToArray();
                for (int s = 0; s < prompts.Length; s++)
                {
                    var alone = separate[s].Evaluate([next[s]]).ToArray();
                    var mine = joint.AsSpan(s * vocab, vocab).ToArray();
                    LogitAssert.Close(alone, mine);
                    next[s] = LogitAssert.ArgMax(mine);
                    Assert.Equal(separate[s].Position, shared.PositionOf(s));
                }
            }
        }
        finally
        {
            foreach (var s in separate) s.Dispose();
        }
    }

    [Fact]
    public void CopiedPrefixContinuesLikeTheOriginal()
    {
        using var model = Model.Load(TestData.Stories260K);
        using var s = model.CreateSession(new SessionOptions(64, 1) { Sequences = 2 });
        s.Evaluate(StoryA.AsSpan(0, 5).ToArray().Select(t => new BatchToken(0, t)).ToArray());
        s.CopyPrefix(from: 0, to: 1, length: 5);
        Assert.Equal(5, s.PositionOf(1));
        var both = s.Evaluate([new BatchToken(0, StoryA[5], true), new BatchToken(1, StoryA[5], true)]).ToArray();
        int vocab = model.Config.VocabSize;
        Assert.Equal(both.AsSpan(0, vocab).ToArray(), both.AsSpan(vocab, vocab).ToArray());
    }

    [Fact]
    public void BadStepsAreRejectedBeforeAnythingIsEvaluated()
    {
        using var model = Model.Load(TestData.Stories260K);
        using var s = model.CreateSession(new SessionOptions(4, 1) { Sequences = 2, BatchSize = 4 });
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Evaluate([new BatchToken(2, 1)]));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Evaluate([new BatchToken(0, 1), new BatchToken(1, 9999)]));
        Assert.Throws<ArgumentException>(() => s.Evaluate(Enumerable.Repeat(new BatchToken(0, 1), 5).ToArray()));
        s.Evaluate([new BatchToken(0, 1), new BatchToken(0, 2), new BatchToken(0, 3)]);
        var e = Assert.Throws<ContextOverflowException>(() => s.Evaluate([new BatchToken(1, 1), new BatchToken(0, 4), new BatchToken(0, 5)]));
        Assert.Contains("sequence 0", e.Message);
        Assert.Equal((3, 0), (s.PositionOf(0), s.PositionOf(1)));
        s.Truncate(0, 0);
        Assert.Equal(0, s.PositionOf(0));
    }
}
