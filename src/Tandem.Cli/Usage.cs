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
          tandem quantize IN.gguf OUT.gguf TYPE [-t N]            quantize an F32/F16/BF16 model (llama.cpp types)
          tandem synth --preset NAME --type TYPE -o OUT.gguf      write a random-weight model of a real shape
          tandem bench [-m MODEL.gguf] [-p 512] [-n 128] [-r 3]   prompt and generation speed (llama-bench style)
          tandem perplexity -m MODEL -f TEXT [--ctx N]            perplexity as llama-perplexity measures it
          tandem kl -m BASE -m2 CANDIDATE -f TEXT [--ctx N]       KL divergence and top-1 agreement
          tandem prune IN OUT [--drop-layers N] [--heads-keep F]  structured pruning to a smaller GGUF
          tandem fit -m MODEL --device PROFILE [--apply OUT]      does it meet a device's budget? (plan if not)
          tandem convert HF_DIR OUT.gguf [--type TYPE]            Hugging Face checkpoint (llama, qwen2, qwen3) to GGUF
          tandem export IN.gguf OUT_DIR                           GGUF to a Hugging Face checkpoint (safetensors)
          tandem compression-report [-m MODEL] [--plot OUT.svg]   size vs KL vs perplexity of prune/quantize combinations
          tandem fingerprint A.gguf B.gguf [C…] [--json] [--plot OUT.svg]   was one model built from another?
          tandem fingerprint-eval [--json]                        score the provenance methods on a benchmark set
          tandem serve [-m MODEL.gguf]... [--port N] [options]    OpenAI-compatible server with continuous batching
          tandem serve --hybrid --cloud URL --cloud-model M       the device–cloud router as one OpenAI-compatible URL
          tandem loadtest URL [--concurrency N] [--requests M]    load-test a server (loopback only)
          tandem ask "QUESTION" [--cloud URL --cloud-model M] [--mode MODE] [--explain]   answer on the device or in the cloud
          tandem train-router --data FILE -o MODEL.json [--test FILE]   train the device/cloud complexity scorer
          tandem route-eval DATA.jsonl [--plot OUT.svg] [--json]  accuracy, cost/quality curve and latency of the router
          tandem audit verify|list|append|repair [FILE] [--json]  the hash-chained audit log of decisions
          tandem memory add|list|search|export|forget [--db FILE] the on-device personal memory
          tandem assist-eval FILE [-m MODEL] [--json]             voice commands → tool calls: accuracy and latency
          tandem constraint-bench --tokenizer FILE [--json]       cost of constrained decoding per token over a vocabulary

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
        ["quantize"] = ("tandem quantize IN.gguf OUT.gguf TYPE [options]",
            "Writes IN (F32, F16 or BF16 weights) quantized to TYPE, with llama-quantize's per-tensor types and bytes.\nTYPE: " + Tandem.Compression.QuantizationType.NameList + ".", QuantizeCommand.Options),
        ["synth"] = ("tandem synth --preset NAME --type TYPE -o OUT.gguf [--seed S] [options]",
            "Writes a model of a real shape with random weights (deterministic by seed) and Qwen's tokenizer, quantized\nwhile streaming (the model is never whole in memory). For benchmarks: its text is meaningless.", SynthCommand.Options),
        ["bench"] = ("tandem bench [-m MODEL.gguf] [-p 512] [-n 128] [-t 2] [-r 3] [--json]",
            "Measures like llama-bench: pp = prompt tokens/s of a P-token batch from an empty cache, tg = tokens/s of N\nsingle-token decodes; also time to first token, weight bandwidth (GB/s) and peak RSS. Mean ± stddev over r runs.", BenchCommand.Options),
        ["perplexity"] = ("tandem perplexity -m MODEL -f TEXT [--ctx 512] [--json]",
            "llama-perplexity's method: non-overlapping windows with BOS in front, the second half of each scored.", PerplexityCommand.Options),
        ["kl"] = ("tandem kl -m BASE -m2 CANDIDATE -f TEXT [--ctx 512] [--json]",
            "Mean KL(base || candidate) and top-1 agreement of next-token distributions over the same scored positions.", KlCommand.Options),
        ["prune"] = ("tandem prune IN OUT [--drop-layers N] [--heads-keep F] [--ffn-keep F] [--target-params N | --target-bytes N] [--calib FILE] [--json]",
            "Structured pruning: drops whole layers, attention heads (by GQA group) and FFN channels ranked on calibration text;\nwrites a smaller GGUF of the same architecture.", PruneCommand.Options),
        ["fit"] = ("tandem fit (-m MODEL | --preset NAME) --device PROFILE [--ctx N] [--apply OUT.gguf] [--json]",
            "Weights + KV cache + runtime memory against a device profile, TTFT and decode speed measured here and scaled to the\ndevice; when it does not fit, a plan (quantization type, blocks, heads, FFN) with its predicted size. --apply runs the\nplan and reports the result's real size and its KL divergence from the model on the calibration text.", FitCommand.Options),
        ["convert"] = ("tandem convert HF_DIR OUT.gguf [--type TYPE] [--name NAME] [--json]",
            "Converts a Hugging Face checkpoint (config.json, model.safetensors or shards, tokenizer.json, tokenizer_config.json)\nof a llama, qwen2 or qwen3 model to GGUF with llama.cpp's tensor names, metadata keys and q/k layout.", ConvertCommand.Options),
        ["export"] = ("tandem export IN.gguf OUT_DIR [--shard-size BYTES] [--json]",
            "Writes a llama, qwen2 or qwen3 GGUF as a Hugging Face checkpoint: config.json, safetensors (quantized weights as F32),\ntokenizer.json and tokenizer_config.json. 'tandem convert' reads it back.", ConvertCommand.ExportOptions),
        ["compression-report"] = ("tandem compression-report [-m MODEL] [--calib FILE] [--ctx 128] [--chunks N] [--plot OUT.svg] [--json]",
            "Prunes and quantizes the model in a fixed set of combinations (docs/COMPRESSION.md), measures each against the model\n(tensor bytes, mean KL, top-1 agreement, perplexity) and prints a Markdown table; --plot draws size vs KL and perplexity.", CompressionReportCommand.Options),
        ["fingerprint"] = ("tandem fingerprint A.gguf B.gguf [C.gguf…] [--json] [--plot OUT.svg]",
            "Compares every pair of models from their weights (HonestAGI statistic raw and centered, norm/bias vectors,\npermutation-invariant layer signatures, embeddings of shared tokens) and says derived, unrelated or inconclusive.", FingerprintCommand.Options),
        ["fingerprint-eval"] = ("tandem fingerprint-eval [--json]",
            "Builds a benchmark of derived and unrelated models from the shipped ones (in a temp directory) and prints\neach method's confusion matrix and ROC AUC, and the raw HonestAGI statistic's false-positive rate.", FingerprintCommand.EvalOptions),
        ["serve"] = ("tandem serve [-m MODEL.gguf]... [--host ADDR] [--port N] [options]\n       tandem serve --hybrid [-m MODEL.gguf] --cloud URL --cloud-model M [--mode MODE] [--privacy POLICY] [--memory DB]",
            "Serves the models over HTTP with OpenAI's API (/v1/chat/completions, /v1/completions, /v1/models), /health and /metrics.\n" +
            "With --hybrid it serves the device–cloud router instead (POST /v1/chat/completions): one local model, the cloud behind\n" +
            "it, and X-Tandem-* headers saying where each answer came from.", ServeCommand.Options),
        ["loadtest"] = ("tandem loadtest URL [--concurrency N] [--requests M] [--max-tokens K] [--cancel-fraction F] [--soak]",
            "Sends streaming chat requests to a server on this machine and reports tokens/s, time to first token and inter-token latency.\n"
            + "With --soak it also reads the server's /metrics during and after the run: 5xx answers, KV slots still busy, RSS after warm-up vs at the end.", LoadtestCommand.Options),
        ["ask"] = ("tandem ask \"QUESTION\" [-m MODEL.gguf] [--cloud URL --cloud-model M] [--mode MODE] [--privacy POLICY] [--explain] [--json]",
            "Routes the question to the local model or an OpenAI-compatible cloud (complexity, personal data, device state, budgets),\nstreams the answer, and with --explain says why it went where it went.", AskCommand.Options),
        ["train-router"] = ("tandem train-router --data FILE -o MODEL.json [--test FILE] [--threshold T] [--cv K] [--balance B] [--l2 L]",
            "Trains the complexity scorer (logistic regression over hashed n-grams and request features) on labelled JSON lines.", TrainRouterCommand.Options),
        ["route-eval"] = ("tandem route-eval DATA.jsonl [--router-model FILE] [--threshold T] [--plot OUT.svg] [--json]",
            "Evaluates the router's decision on labelled JSON lines {\"prompt\", \"label\": \"local\"|\"cloud\"} (optional \"lang\", \"source\"):\naccuracy, share kept on the device, confusion matrix, the best length-only rule and the prompts where length misleads,\na cost/quality curve over thresholds, and the decision latency p50/p99.", RouteEvalCommand.Options),
        ["audit"] = ("tandem audit verify|list|append|repair [FILE] [options]",
            "The append-only audit log (JSON lines, each record hash-chained to the one before). verify checks every record and\nnames the first bad one (exit 1); list prints the records; append records a decision; repair removes an incomplete\nlast line left by a crash. FILE defaults to $TANDEM_AUDIT_LOG or ~/.local/share/tandem/audit.jsonl.", AuditCommand.Options),
        ["memory"] = ("tandem memory add TEXT|list|search QUERY|export|forget ID...|forget --all [--db FILE] [options]",
            "The on-device personal memory (SQLite): facts, preferences and history the user allowed. forget deletes for real:\nthe row, its search index entry, and the freed bytes (VACUUM). --db defaults to $TANDEM_MEMORY_DB or\n~/.local/share/tandem/memory.db.", MemoryCommand.Options),
        ["assist-eval"] = ("tandem assist-eval FILE [-m MODEL.gguf] [--threshold X] [--no-model] [--json]",
            "Runs each utterance of FILE (JSON lines: lang, text, name, args) through the voice-command path: the fast matcher,\nthen, when it is unsure, the local model constrained to a valid device call. Prints accuracy (per language and per\nexpected function) and end-to-end latency p50/p95.", AssistEvalCommand.Options),
        ["constraint-bench"] = ("tandem constraint-bench --tokenizer FILE [--schema FILE --example FILE] [--generations N] [--steps N] [--json]",
            "Measures constrained decoding over a real vocabulary: the time per token a JSON-Schema constraint adds to greedy and\nsampled decoding, with random logits (worst case) and with logits that mostly follow a valid example, and the\ntime of one full-vocabulary mask.", ConstraintBenchCommand.Options),
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
