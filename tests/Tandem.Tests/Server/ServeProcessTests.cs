using System.Diagnostics;
using Tandem.Tests.Cli;

namespace Tandem.Tests.Server;

/// <summary>The real <c>tandem serve</c> and <c>tandem loadtest</c> processes talking over loopback.</summary>
public sealed class ServeProcessTests
{
    [Fact]
    public async Task Serve_AnswersLoadtest_AndStopsCleanlyOnSigterm()
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { TandemProcess.DllPath, "serve", "--port", "0", "-t", "1", "--ctx", "128", "--parallel", "2" }) psi.ArgumentList.Add(a);
        using var server = Process.Start(psi)!;
        try
        {
            string? url = null;
            var stderr = new List<string>();
            while (await server.StandardError.ReadLineAsync() is { } line)
            {
                stderr.Add(line);
                if (line.StartsWith("tandem: ready: ", StringComparison.Ordinal)) { url = line["tandem: ready: ".Length..].Split(' ')[0]; break; }
            }
            Assert.True(url is not null, string.Join('\n', stderr));
            Assert.EndsWith("/v1", url);
            string baseUrl = url![..^3];

            var load = await Task.Run(() => TandemProcess.Run("loadtest", baseUrl, "--concurrency", "2", "--requests", "4", "--max-tokens", "8"));
            Assert.True(load.ExitCode == 0, load.ToString());
            Assert.Contains("4 completed", load.Stdout);
            Assert.Contains("0 errors", load.Stdout);
            Assert.Contains("tok/s", load.Stdout);
            Assert.Matches(@"ttft\s+p50 [0-9.]+ ms\s+p95 [0-9.]+ ms\s+p99 [0-9.]+ ms", load.Stdout);

            using (var kill = Process.Start("kill", ["-TERM", server.Id.ToString()])) await kill.WaitForExitAsync();
            string rest = await server.StandardError.ReadToEndAsync();
            await server.WaitForExitAsync();
            Assert.Equal(0, server.ExitCode);
            Assert.Contains("tandem: stopped", rest);
        }
        finally
        {
            if (!server.HasExited) server.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public void Loadtest_RefusesRemoteHosts_AndServeHelpListsOptions()
    {
        var remote = TandemProcess.Run("loadtest", "http://example.com:8080");
        Assert.Equal(2, remote.ExitCode);
        Assert.Contains("only targets servers on this machine", remote.Stderr);
        var help = TandemProcess.Run("serve", "--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var option in new[] { "--model", "--host", "--port", "--threads", "--ctx", "--parallel", "--api-key" }) Assert.Contains(option, help.Stdout);
        var missing = TandemProcess.Run("serve", "-m", "no-such-model.gguf", "--port", "0");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("model file not found: no-such-model.gguf", missing.Stderr);
    }
}
