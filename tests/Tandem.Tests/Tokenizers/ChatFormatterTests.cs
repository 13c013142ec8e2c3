using Tandem.Gguf;
using Tandem.Tokenizers;

namespace Tandem.Tests.Tokenizers;

public class ChatFormatterTokenizerTests
{
    static readonly ChatMessage[] Conversation =
    [
        new("system", "You are helpful."),
        new("user", "Turn on the light."),
        new("assistant", "Done."),
        new("user", "Thanks!"),
    ];

    [Fact]
    public void DetectsFormatFromTemplate()
    {
        Assert.Equal(ChatFormat.ChatML, ChatFormatter.Detect("{% for m in messages %}{{'<|im_start|>' + m['role'] }}{% endfor %}"));
        Assert.Equal(ChatFormat.Llama3, ChatFormatter.Detect("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"));
        Assert.Equal(ChatFormat.Plain, ChatFormatter.Detect(null));
        Assert.Equal(ChatFormat.Plain, ChatFormatter.Detect(""));
        Assert.Equal(ChatFormat.Plain, ChatFormatter.Detect("{{ bos_token }}{{ '<|user|>' }}"));
    }

    [Fact]
    public void FromGgufReadsTheTemplate()
    {
        using (var f = GgufFile.Open(TestData.Model("mini-qwen3-f32.gguf")))
        {
            var chat = ChatFormatter.FromGguf(f);
            Assert.Equal(ChatFormat.ChatML, chat.Format);
            Assert.Contains("<|im_end|>", chat.StopStrings);
        }
        using (var f = GgufFile.Open(TestData.Stories260K))
        {
            var chat = ChatFormatter.FromGguf(f);
            Assert.Equal(ChatFormat.Plain, chat.Format);
            Assert.Empty(chat.StopStrings);
        }
    }

    [Fact]
    public void RendersChatML()
    {
        var chat = ChatFormatter.For(ChatFormat.ChatML);
        Assert.Equal(
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nTurn on the light.<|im_end|>\n" +
            "<|im_start|>assistant\nDone.<|im_end|>\n<|im_start|>user\nThanks!<|im_end|>\n<|im_start|>assistant\n",
            chat.Render(Conversation, addAssistantPrompt: true));
        Assert.Equal("<|im_start|>user\nhi<|im_end|>\n", chat.Render([new("user", "hi")], false));
    }

    [Fact]
    public void ChatMLPromptTokenizesLikeTheGolden()
    {
        using var f = GgufFile.Open(TestData.Model("mini-qwen2-f32.gguf"));
        var tok = Tokenizer.FromGguf(f);
        string prompt = ChatFormatter.FromGguf(f).Render([new("user", "Turn on the living room light.")], true);
        Assert.Equal("<|im_start|>user\nTurn on the living room light.<|im_end|>\n<|im_start|>assistant\n", prompt);
        Assert.Equal([4097, 872, 198, 51, 399, 389, 279, 326, 2249, 3054, 3100, 13, 4098, 198, 4097, 395, 380, 517, 198],
            tok.Encode(prompt, addSpecial: true, parseSpecial: true));
    }

    [Fact]
    public void RendersLlama3()
    {
        var chat = ChatFormatter.For(ChatFormat.Llama3);
        Assert.Equal(
            "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            chat.Render([new("system", "You are helpful."), new("user", "  hi\n")], true));
        Assert.Contains("<|eot_id|>", chat.StopStrings);
    }

    [Fact]
    public void RendersPlain()
    {
        var chat = ChatFormatter.For(ChatFormat.Plain);
        Assert.Equal("Once upon a time", chat.Render([new("user", "Once upon a time")], true));
        Assert.Equal("You are helpful.Turn on the light.Done.Thanks!", chat.Render(Conversation, false));
    }
}
