using Tandem.Engine;
using Tandem.Engine.Generation;
using Tandem.Engine.Sampling;
using Tandem.Tokenizers;

namespace Tandem.Cli;

/// <summary>What <c>tandem chat</c> was asked to do.</summary>
public sealed record ChatOptions(ModelSettings Model, string? SystemPrompt, int MaxTokens, SamplerOptions Sampling, bool Stats);

/// <summary>
/// <c>tandem chat</c>: a multi-turn conversation over stdin, one user message per line.
/// The KV cache is kept between turns: each turn evaluates only the text that was not evaluated yet.
/// </summary>
public static class ChatCommand
{
    public static readonly OptionSpec[] Options =
    [
        CommonOptions.Model,
        new("--system", "-s", "TEXT", "system prompt"),
        new("--n-predict", "-n", "N", "at most N tokens per reply (default: until the model ends its turn)"),
        CommonOptions.Threads,
        CommonOptions.Context,
        .. CommonOptions.Sampling,
        new("--stats", null, null, "print timings to stderr after each reply"),
        CommonOptions.Help,
    ];

    public static ChatOptions Read(Arguments a)
    {
        a.AllowPositionals(0, "");
        return new ChatOptions(CommonOptions.ReadModel(a), a.String("--system"), a.Int("--n-predict", int.MaxValue, min: 1),
            CommonOptions.ReadSampler(a), a.Flag("--stats"));
    }

    /// <summary>Text that is in the KV cache up to <see cref="Position"/>.</summary>
    readonly record struct Checkpoint(string Text, int Position);

    public static int Execute(string[] args)
    {
        var a = Arguments.Parse("chat", args, Options);
        if (a.Flag("--help")) { Console.Out.Write(Usage.ForCommand("chat")); return Program.ExitOk; }
        var o = Read(a);

        using var loaded = CommonOptions.Load(o.Model);
        var session = loaded.Session;
        var chat = loaded.Model.Chat;
        var sampler = new Sampler(session.VocabSize, o.Sampling);
        var generator = new TextGenerator(loaded.Model, session, sampler);
        bool interactive = !Console.IsInputRedirected;
        var stdout = Console.Out;

        var messages = new List<ChatMessage>();
        var checkpoints = new List<Checkpoint>();
        void Reset()
        {
            messages.Clear();
            if (o.SystemPrompt is not null) messages.Add(new ChatMessage("system", o.SystemPrompt));
            checkpoints.Clear();
            checkpoints.Add(new Checkpoint("", 0));
            session.Truncate(0);
        }
        Reset();
        if (interactive)
            Console.Error.WriteLine($"tandem chat: {Path.GetFileName(o.Model.Path)} ({chat.Format}), context {session.ContextLength}. /reset starts over, /exit or Ctrl-D quits.");

        while (true)
        {
            if (interactive) { stdout.Write("> "); stdout.Flush(); }
            string? line = Console.In.ReadLine();
            if (line is null) break;
            string input = line.Trim();
            if (input.Length == 0) continue;
            if (input is "/exit" or "/quit") break;
            if (input == "/reset") { Reset(); continue; }

            messages.Add(new ChatMessage("user", line));
            string rendered = chat.Render(messages, addAssistantPrompt: true);

            // Continue from the latest state whose text the new rendering extends; forget what follows it.
            var from = checkpoints.FindLast(c => c.Text.Length < rendered.Length && rendered.StartsWith(c.Text, StringComparison.Ordinal));
            checkpoints.RemoveAll(c => c.Position > from.Position);
            session.Truncate(from.Position);

            var request = new GenerationRequest
            {
                Prompt = rendered[from.Text.Length..],
                AddSpecial = from.Position == 0,
                ParseSpecial = true,
                MaxTokens = o.MaxTokens,
                StopStrings = chat.StopStrings,
            };
            GenerationResult result;
            try
            {
                result = generator.Generate(request, piece => { stdout.Write(piece); stdout.Flush(); });
            }
            catch (ContextOverflowException ex)
            {
                Console.Error.WriteLine($"tandem: {ex.Message}; use /reset to start a new conversation");
                messages.RemoveAt(messages.Count - 1);
                session.Truncate(from.Position);
                continue;
            }
            stdout.WriteLine();

            int promptEnd = from.Position + result.PromptTokens.Count;
            checkpoints.Add(new Checkpoint(rendered, promptEnd));
            messages.Add(new ChatMessage("assistant", result.Text));
            // After an end-of-turn token every reply token has been evaluated: the cache holds exactly the reply.
            if (result.StopReason == StopReason.EndOfGeneration && session.Position == promptEnd + result.Tokens.Count)
                checkpoints.Add(new Checkpoint(rendered + result.Text, session.Position));
            if (result.StopReason == StopReason.ContextFull)
                Console.Error.WriteLine("tandem: the context is full; use /reset to start a new conversation");
            if (o.Stats)
                Console.Error.Write(RunCommand.Summary(Path.GetFileName(o.Model.Path), loaded.LoadMs, sampler.Seed, result, SystemInfo.PeakRssBytes()));
        }
        return Program.ExitOk;
    }
}
