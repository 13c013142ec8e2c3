using System.Text.Json;
using Tandem.Gguf;
using Tandem.Tokenizers;
using Tandem.Tokenizers.Templates;

namespace Tandem.Tests.Templates;

/// <summary>
/// Real chat templates rendered as transformers' apply_chat_template renders them. Every expected string was derived
/// by hand by walking the template (the comments say how), not produced by this engine.
/// </summary>
public class ChatTemplateTests
{
    static readonly string QwenConfig = Path.Combine(TestData.Tokenizers, "qwen", "tokenizer_config.json");

    sealed class FixedClock : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(2026, 7, 26, 12, 0, 0, TimeSpan.Zero);
        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }

    static ChatTemplate Qwen3() => ChatTemplate.FromTokenizerConfig(QwenConfig) ?? throw new InvalidOperationException("no template");

    static readonly ChatTemplateMessage[] Conversation =
    [
        new("system", "You are helpful."),
        new("user", "Turn on the light."),
        new("assistant", "Done."),
        new("user", "Thanks!"),
    ];

    static object Tool(string name, string parametersJson) => JsonDocument.Parse(
        "{\"type\": \"function\", \"function\": {\"name\": \"" + name + "\", \"description\": \"Switch a light\", \"parameters\": " + parametersJson + "}}").RootElement;

    const string SetLightParameters = """{"type": "object", "properties": {"room": {"type": "string"}, "on": {"type": "boolean"}}, "required": ["room", "on"]}""";

    static Dictionary<string, object?> Args(params (string Key, object? Value)[] pairs) => pairs.ToDictionary(p => p.Key, p => p.Value);

    // ---------------- Qwen3 (testdata/tokenizers/qwen/tokenizer_config.json) ----------------

    [Fact]
    public void Qwen3ConfigProvidesTemplateAndSpecialTokens()
    {
        var t = Qwen3();
        Assert.Equal("<|im_end|>", t.SpecialTokens["eos_token"]);
        Assert.False(t.SpecialTokens.ContainsKey("bos_token")); // "bos_token": null in the config
        Assert.Contains("enable_thinking", t.Source);
    }

    [Fact]
    public void Qwen3MultiTurnWithSystemPrompt()
    {
        // No tools: the system message is written first in ChatML. The loop skips it (system and loop.first). The last
        // user query is index 3, so the assistant at index 2 is history: its content without a <think> block.
        const string expected =
            "<|im_start|>system\nYou are helpful.<|im_end|>\n" +
            "<|im_start|>user\nTurn on the light.<|im_end|>\n" +
            "<|im_start|>assistant\nDone.<|im_end|>\n" +
            "<|im_start|>user\nThanks!<|im_end|>\n";
        var t = Qwen3();
        Assert.Equal(expected, t.Render(Conversation));
        // add_generation_prompt opens the assistant's turn; enable_thinking undefined or true adds nothing more.
        Assert.Equal(expected + "<|im_start|>assistant\n", t.Render(Conversation, new() { AddGenerationPrompt = true }));
        Assert.Equal(expected + "<|im_start|>assistant\n", t.Render(Conversation, new() { AddGenerationPrompt = true, EnableThinking = true }));
        // enable_thinking false (defined and false) pre-fills an empty think block.
        Assert.Equal(expected + "<|im_start|>assistant\n<think>\n\n</think>\n\n",
            t.Render(Conversation, new() { AddGenerationPrompt = true, EnableThinking = false }));
    }

    [Fact]
    public void Qwen3ThinkingContent()
    {
        ChatTemplateMessage[] messages =
        [
            new("user", "Q1"),
            new("assistant", "A1") { ReasoningContent = "R1" },
            new("user", "Q2"),
            new("assistant", "<think>R2</think>A2"),
        ];
        // Last user query: index 2. The assistant at index 1 is before it, so its reasoning_content is dropped. The one
        // at index 3 has no reasoning_content: the template splits its content at </think> (content "A2", reasoning
        // "R2" after '<think>'), and as it comes after the last query and is loop.last it is written with its think
        // block: '\n<think>\n' + 'R2' + '\n</think>\n\n' + 'A2'.
        Assert.Equal(
            "<|im_start|>user\nQ1<|im_end|>\n" +
            "<|im_start|>assistant\nA1<|im_end|>\n" +
            "<|im_start|>user\nQ2<|im_end|>\n" +
            "<|im_start|>assistant\n<think>\nR2\n</think>\n\nA2<|im_end|>\n",
            Qwen3().Render(messages));
    }

    [Fact]
    public void Qwen3ToolsToolCallsAndToolResponses()
    {
        ChatTemplateMessage[] messages =
        [
            new("system", "You control the home."),
            new("user", "Turn on the kitchen light"),
            new("assistant", "") { ToolCalls = [new("set_light", Args(("room", "kitchen"), ("on", true)))] },
            new("tool", "{\"ok\": true}"),
            new("assistant", "The kitchen light is on."),
        ];
        // With tools the system turn holds the system message, '\n\n', the tools preamble, each tool as tojson
        // (json.dumps: ", " and ": " separators, key order kept) on its own line, and the tool-call instructions.
        const string tool = """{"type": "function", "function": {"name": "set_light", "description": "Switch a light", "parameters": {"type": "object", "properties": {"room": {"type": "string"}, "on": {"type": "boolean"}}, "required": ["room", "on"]}}}""";
        string expected =
            "<|im_start|>system\nYou control the home.\n\n" +
            "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" + tool + "\n</tools>\n\n" +
            "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
            "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\nTurn on the kitchen light<|im_end|>\n" +
            // Index 2 is after the last query (index 1) but not last and without reasoning: plain header + '' content.
            // Its first call gets no leading newline (content is empty); arguments (a mapping) go through tojson.
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"set_light\", \"arguments\": {\"room\": \"kitchen\", \"on\": true}}\n</tool_call><|im_end|>\n" +
            // A tool message after a non-tool one opens a user turn; the next message is not a tool, so it closes.
            "<|im_start|>user\n<tool_response>\n{\"ok\": true}\n</tool_response><|im_end|>\n" +
            // The final assistant message is after the last query and loop.last: an (empty) think block is written.
            "<|im_start|>assistant\n<think>\n\n</think>\n\nThe kitchen light is on.<|im_end|>\n";
        Assert.Equal(expected, Qwen3().Render(messages, new() { Tools = [Tool("set_light", SetLightParameters)] }));
    }

    [Fact]
    public void Qwen3ParallelCallsStringArgumentsAndGroupedToolResponses()
    {
        ChatTemplateMessage[] messages =
        [
            new("user", "Weather in Paris and Lyon?"),
            new("assistant", "Let me check.") { ToolCalls = [new("get_weather", "{\"city\": \"Paris\"}"), new("get_weather", Args(("city", "Lyon")))] },
            new("tool", "18C"),
            new("tool", "21C"),
        ];
        // No system message and no tools: nothing before the first user turn. Both calls follow a newline (the first
        // because content is non-empty); string arguments are written as they are. Consecutive tool messages share one
        // user turn, closed after the last. Then the generation prompt.
        Assert.Equal(
            "<|im_start|>user\nWeather in Paris and Lyon?<|im_end|>\n" +
            "<|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>" +
            "\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lyon\"}}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\n<tool_response>\n18C\n</tool_response>\n<tool_response>\n21C\n</tool_response><|im_end|>\n" +
            "<|im_start|>assistant\n",
            Qwen3().Render(messages, new() { AddGenerationPrompt = true }));
    }

    // ---------------- Qwen2.5 ----------------

    [Fact]
    public void Qwen25DefaultSystemPromptAndToolCalls()
    {
        var t = new ChatTemplate(KnownTemplates.Qwen25, new Dictionary<string, string> { ["eos_token"] = "<|im_end|>" });
        // Without a system message Qwen2.5 writes its default one.
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            t.Render([new ChatTemplateMessage("user", "Hi")], new() { AddGenerationPrompt = true }));

        ChatTemplateMessage[] messages =
        [
            new("user", "Kitchen light on"),
            new("assistant", null) { ToolCalls = [new("set_light", Args(("room", "kitchen"), ("on", true)))] },
            new("tool", "ok"),
        ];
        // With tools: default system text, '\n\n# Tools…', the tools, the instructions. The assistant with tool_calls
        // writes its header, no content (None is falsy), then '\n<tool_call>…' per call.
        const string tool = """{"type": "function", "function": {"name": "set_light", "description": "Switch a light", "parameters": {"type": "object", "properties": {"room": {"type": "string"}, "on": {"type": "boolean"}}, "required": ["room", "on"]}}}""";
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n" +
            "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" + tool + "\n</tools>\n\n" +
            "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
            "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\nKitchen light on<|im_end|>\n" +
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"set_light\", \"arguments\": {\"room\": \"kitchen\", \"on\": true}}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\n<tool_response>\nok\n</tool_response><|im_end|>\n" +
            "<|im_start|>assistant\n",
            t.Render(messages, new() { AddGenerationPrompt = true, Tools = [Tool("set_light", SetLightParameters)] }));
    }

    // ---------------- Llama 3.2 ----------------

    static ChatTemplate Llama32() => new(KnownTemplates.Llama32, new Dictionary<string, string> { ["bos_token"] = "<|begin_of_text|>", ["eos_token"] = "<|eot_id|>" });

    [Fact]
    public void Llama32SystemPromptAndDate()
    {
        // bos_token, then the system header with the knowledge cutoff and today's date (strftime_now("%d %b %Y")),
        // the trimmed system message, each message with its header and trimmed content, the assistant header.
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2026\n\n" +
            "You are helpful.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nTurn on the light.<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\nDone.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nThanks!<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            Llama32().Render(Conversation, new() { AddGenerationPrompt = true, Clock = new FixedClock() }));
    }

    [Fact]
    public void Llama32ToolsGoInTheFirstUserMessage()
    {
        ChatTemplateMessage[] messages =
        [
            new("user", "What time is it?"),
            new("assistant", null) { ToolCalls = [new("get_time", new Dictionary<string, object?>())] },
            new("tool", "12:00"),
        ];
        var tool = JsonDocument.Parse("""{"type": "function", "function": {"name": "get_time", "parameters": {}}}""").RootElement;
        // Tools present: "Environment: ipython" in the system header; no system message, so it is empty. The tools
        // (tojson(indent=4): one key per line, "," at line ends, "{}" for an empty mapping) go into the first user
        // message, which is then removed from the loop. The tool call is written as {"name": …, "parameters": …}. The
        // tool result "12:00" is a string, and a string "is iterable", so the template writes it through tojson: quoted.
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
            "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2026\n\n<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\n" +
            "Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n" +
            "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n" +
            "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_time\",\n        \"parameters\": {}\n    }\n}\n\n" +
            "What time is it?<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_time\", \"parameters\": {}}<|eot_id|>" +
            "<|start_header_id|>ipython<|end_header_id|>\n\n\"12:00\"<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            Llama32().Render(messages, new() { AddGenerationPrompt = true, Tools = [tool], Clock = new FixedClock() }));
    }

    // ---------------- Mistral, Phi-3, ChatML ----------------

    [Fact]
    public void MistralInstructAlternatesAndRejectsSystem()
    {
        var t = new ChatTemplate(KnownTemplates.Mistral, new Dictionary<string, string> { ["bos_token"] = "<s>", ["eos_token"] = "</s>" });
        // bos, then '[INST] ' + user + ' [/INST]', the assistant's reply + eos.
        Assert.Equal("<s>[INST] Turn on the light. [/INST]Done.</s>[INST] Thanks! [/INST]", t.Render(Conversation[1..]));
        // A system message first breaks the user/assistant alternation check: the template raises its own error.
        var e = Assert.Throws<TemplateRaisedException>(() => t.Render(Conversation));
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", e.Reason);
    }

    [Fact]
    public void Phi3()
    {
        var t = new ChatTemplate(KnownTemplates.Phi3, new Dictionary<string, string> { ["eos_token"] = "<|endoftext|>" });
        const string turns = "<|system|>\nYou are helpful.<|end|>\n<|user|>\nTurn on the light.<|end|>\n<|assistant|>\nDone.<|end|>\n<|user|>\nThanks!<|end|>\n";
        // The generation prompt opens the assistant's turn; without it the template ends with eos_token.
        Assert.Equal(turns + "<|assistant|>\n", t.Render(Conversation, new() { AddGenerationPrompt = true }));
        Assert.Equal(turns + "<|endoftext|>", t.Render(Conversation));
    }

    [Fact]
    public void ChatML()
    {
        var t = new ChatTemplate(KnownTemplates.ChatML);
        Assert.Equal(
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nTurn on the light.<|im_end|>\n" +
            "<|im_start|>assistant\nDone.<|im_end|>\n<|im_start|>user\nThanks!<|im_end|>\n<|im_start|>assistant\n",
            t.Render(Conversation, new() { AddGenerationPrompt = true }));
    }

    [Fact]
    public void MiniModelTemplateMatchesTheChatFormatter()
    {
        using var f = GgufFile.Open(TestData.Model("mini-qwen2-f32.gguf"));
        var template = ChatTemplate.FromGguf(f) ?? throw new InvalidOperationException("the mini model has a chat template");
        var formatter = ChatFormatter.FromGguf(f);
        ChatMessage[] messages = [new("system", "You are helpful."), new("user", "Turn on the light."), new("assistant", "Done."), new("user", "Thanks!")];
        foreach (bool prompt in new[] { true, false })
            Assert.Equal(formatter.Render(messages, prompt), template.Render(messages, prompt));
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", template.Render([new ChatMessage("user", "hi")], true));
    }

    [Fact]
    public void ModelsWithoutATemplateGiveNull()
    {
        using var f = GgufFile.Open(TestData.Stories260K);
        Assert.Null(ChatTemplate.FromGguf(f));
        Assert.Null(ChatFormatter.FromGguf(f).Template);
    }

    [Fact]
    public void ChatFormatterCarriesTheModelsTemplate()
    {
        using var f = GgufFile.Open(TestData.Model("mini-qwen3-f32.gguf"));
        var chat = ChatFormatter.FromGguf(f);
        Assert.Equal(ChatFormat.ChatML, chat.Format);
        Assert.NotNull(chat.Template);
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", chat.Template!.Render([new ChatMessage("user", "hi")], true));
    }

    [Fact]
    public void TokenizerConfigWithNamedTemplatesAndTokenObjects()
    {
        // Some configs list several named templates (the "default" one is used) and give tokens as {"content": …}.
        string path = TestData.Temp("tokenizer_config.json");
        File.WriteAllText(path, """
            {"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
             "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}]}
            """);
        try
        {
            var t = ChatTemplate.FromTokenizerConfig(path)!;
            Assert.Equal("<s>hi</s>", t.Render([new ChatTemplateMessage("user", "hi")]));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void BrokenTemplateFailsWhenLoadedWithItsPosition()
    {
        var e = Assert.Throws<TemplateException>(() => new ChatTemplate("{% for m in messages %}{{ m.content | shout }}{% endfor %}"));
        Assert.Equal("unknown filter 'shout'", e.Reason);
        Assert.Equal((1, 39), (e.Line, e.Column));
    }
}
