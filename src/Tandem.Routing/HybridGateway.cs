using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;

namespace Tandem.Routing;

/// <summary>
/// The router as an OpenAI-compatible endpoint (POST /v1/chat/completions, streaming or not), so an app talks to one
/// URL and the device–cloud decision happens behind it. The route travels in response headers: X-Tandem-Decision
/// (known before answering, so streams get it too), and for whole responses X-Tandem-Answered-By, X-Tandem-Degraded
/// and X-Tandem-Route (the trace as ASCII JSON). A stream's last chunk carries the trace as "tandem_route".
/// </summary>
public static class HybridGateway
{
    static readonly JsonSerializerOptions AsciiJson = new(); // the default encoder escapes non-ASCII: safe in a header

    public static IEndpointRouteBuilder MapHybridChat(this IEndpointRouteBuilder app, HybridChatClient router)
    {
        app.MapPost("/v1/chat/completions", (HttpContext ctx) => Handle(ctx, router));
        return app;
    }

    /// <summary>Starts a gateway on host:port (0 = a free port); returns the app (its Urls say where).</summary>
    public static async Task<WebApplication> StartAsync(HybridChatClient router, string host = "127.0.0.1", int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{host}:{port}");
        var app = builder.Build();
        app.MapHybridChat(router);
        await app.StartAsync();
        return app;
    }

    static async Task Error(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        await ctx.Response.WriteAsJsonAsync(new { error = new { message, type = status == 400 ? "invalid_request_error" : "server_error" } });
    }

    static async Task Handle(HttpContext ctx, HybridChatClient router)
    {
        List<ChatMessage> messages;
        ChatOptions options;
        bool stream;
        try { (messages, options, stream) = Parse(await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted)); }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException or ArgumentException)
        {
            await Error(ctx, 400, "bad request: " + ex.Message);
            return;
        }
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N")[..16];
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        ctx.Response.Headers["X-Tandem-Decision"] = router.Decide(messages, options).Decision;
        try
        {
            if (!stream)
            {
                var r = await router.GetResponseAsync(messages, options, ctx.RequestAborted);
                var trace = r.AdditionalProperties?[RouteTrace.Key] as RouteTrace;
                if (trace is not null)
                {
                    ctx.Response.Headers["X-Tandem-Answered-By"] = trace.AnsweredBy;
                    ctx.Response.Headers["X-Tandem-Degraded"] = trace.Degraded ? "true" : "false";
                    ctx.Response.Headers["X-Tandem-Route"] = JsonSerializer.Serialize(trace, AsciiJson);
                }
                await ctx.Response.WriteAsJsonAsync(new
                {
                    id, @object = "chat.completion", created, model = r.ModelId ?? "tandem-hybrid",
                    choices = new[] { new { index = 0, message = new { role = "assistant", content = r.Text }, finish_reason = Finish(r.FinishReason) } },
                    usage = new { prompt_tokens = r.Usage?.InputTokenCount ?? 0, completion_tokens = r.Usage?.OutputTokenCount ?? 0, total_tokens = r.Usage?.TotalTokenCount ?? 0 },
                    tandem_route = trace,
                });
                return;
            }
            ctx.Response.ContentType = "text/event-stream";
            ctx.Response.Headers.CacheControl = "no-cache";
            bool first = true;
            ChatFinishReason? finish = null;
            RouteTrace? last = null;
            await foreach (var u in router.GetStreamingResponseAsync(messages, options, ctx.RequestAborted))
            {
                finish ??= u.FinishReason;
                if (u.AdditionalProperties?.TryGetValue(RouteTrace.Key, out var t) == true) last = t as RouteTrace;
                string text = u.Text;
                if (text.Length == 0 && !first) continue;
                var delta = first ? new JsonObject { ["role"] = "assistant", ["content"] = text } : new JsonObject { ["content"] = text };
                first = false;
                await Event(ctx, Chunk(id, created, delta, null));
            }
            var end = Chunk(id, created, new JsonObject(), Finish(finish ?? ChatFinishReason.Stop));
            end["tandem_route"] = last is null ? null : JsonSerializer.SerializeToNode(last);
            await Event(ctx, end);
            await ctx.Response.WriteAsync("data: [DONE]\n\n", ctx.RequestAborted);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested) { } // the client left
        catch (Exception ex) when (!ctx.Response.HasStarted)
        {
            await Error(ctx, 503, "no side could answer: " + ex.Message);
        }
        catch (Exception) { ctx.Abort(); } // mid-stream: all that is left is to end the connection
    }

    static JsonObject Chunk(string id, long created, JsonObject delta, string? finish) => new()
    {
        ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = "tandem-hybrid",
        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
    };

    static async Task Event(HttpContext ctx, JsonNode chunk)
    {
        await ctx.Response.WriteAsync("data: " + chunk.ToJsonString() + "\n\n", ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    static string Finish(ChatFinishReason? r) => r == ChatFinishReason.Length ? "length" : "stop";

    static (List<ChatMessage>, ChatOptions, bool) Parse(JsonNode? body)
    {
        if (body is not JsonObject o) throw new FormatException("the body must be a JSON object");
        if (o["messages"] is not JsonArray array || array.Count == 0) throw new FormatException("'messages' must be a non-empty array");
        var messages = new List<ChatMessage>();
        foreach (var m in array)
        {
            string role = m?["role"]?.GetValue<string>() ?? throw new FormatException("every message needs a 'role'");
            string content = m["content"] switch
            {
                JsonValue v => v.GetValue<string>(),
                JsonArray parts => string.Concat(parts.Select(p => p?["text"]?.GetValue<string>() ?? "")),
                _ => "",
            };
            messages.Add(new ChatMessage(new ChatRole(role), content));
        }
        var options = new ChatOptions
        {
            MaxOutputTokens = (o["max_completion_tokens"] ?? o["max_tokens"])?.GetValue<int>(),
            Temperature = o["temperature"]?.GetValue<float>(),
            TopP = o["top_p"]?.GetValue<float>(),
            Seed = o["seed"]?.GetValue<long>(),
            StopSequences = o["stop"] switch
            {
                JsonValue v => [v.GetValue<string>()],
                JsonArray a => a.Select(x => x!.GetValue<string>()).ToList(),
                _ => null,
            },
        };
        return (messages, options, o["stream"]?.GetValue<bool>() == true);
    }
}
