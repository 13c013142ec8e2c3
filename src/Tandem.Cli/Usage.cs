using System.Text;

namespace Tandem.Cli;

/// <summary>Help texts, built from the commands' option lists.</summary>
public static class Usage
{
    public const string Main = """
        tandem — on-device LLM inference (GGUF models, pure .NET)

        usage:
          tandem run [-m MODEL.gguf] -p PROMPT [-n N] [options]   complete a prompt
          tandem chat [-m MODEL.gguf] [--system TEXT] [options]   chat over stdin, one message per line
          tandem inspect MODEL.gguf [--json]                      describe a model file
          tandem serve [-m MODEL.gguf]... [--port N] [options]    OpenAI-compatible server with continuous batching
          tandem loadtest URL [--concurrency N] [--requests M]    load-test a server (loopback only)

        Without -m, run and chat use the embedded stories260K.gguf (a 260K-parameter TinyStories model).
        'tandem COMMAND --help' lists a command's options.

        """;

    static readonly Dictionary<string, (string Synopsis, string About, OptionSpec[] Options)> Commands = new()
    {
        ["run"] = ("tandem run [-m MODEL.gguf] -p PROMPT [options]",
            "Completes the prompt, streaming the text to stdout; timings and peak memory go to stderr.", RunCommand.Options),
        ["chat"] = ("tandem chat [-m MODEL.gguf] [--system TEXT] [options]",
            "Multi-turn chat over stdin with the model's chat format; the KV cache is kept between turns.\nCommands: /reset, /exit.", ChatCommand.Options),
        ["inspect"] = ("tandem inspect MODEL.gguf [--json]",
            "Describes a GGUF file: architecture, hyperparameters, parameters, tensor types, tokenizer, chat template.", InspectCommand.Options),
        ["serve"] = ("tandem serve [-m MODEL.gguf]... [--host ADDR] [--port N] [options]",
            "Serves the models over HTTP with OpenAI's API (/v1/chat/completions, /v1/completions, /v1/models), /health and /metrics.", ServeCommand.Options),
        ["loadtest"] = ("tandem loadtest URL [--concurrency N] [--requests M] [--max-tokens K] [--cancel-fraction F]",
            "Sends streaming chat requests to a server on this machine and reports tokens/s, time to first token and inter-token latency.", LoadtestCommand.Options),
    };

    public static string? ForCommand(string command)
    {
        if (!Commands.TryGetValue(command, out var c)) return null;
        var b = new StringBuilder();
        b.AppendLine("usage: " + c.Synopsis).AppendLine().AppendLine(c.About).AppendLine().AppendLine("options:");
        foreach (var o in c.Options)
        {
            string names = (o.Short is null ? "    " : o.Short + ", ") + o.Long + (o.Value is null ? "" : " " + o.Value);
            b.AppendLine($"  {names,-28} {o.Help}");
        }
        return b.ToString();
    }
}
