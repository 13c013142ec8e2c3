using System.Diagnostics;

namespace Tandem.Tests.Cli;

public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>Runs the built <c>tandem</c> as a real process: <c>dotnet tandem.dll args…</c>.</summary>
public static class TandemProcess
{
    /// <summary>tandem.dll in src/Tandem.Cli/bin/&lt;Configuration&gt;/&lt;tfm&gt;/, where the embedded model sits beside it.</summary>
    public static string DllPath { get; } = Locate();

    static string Locate()
    {
        // this assembly lives in tests/Tandem.Tests/bin/<Configuration>/<tfm>/
        var outDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string tfm = outDir.Name, configuration = outDir.Parent?.Name ?? "Debug";
        string beside = Path.Combine(TestData.Root, "src", "Tandem.Cli", "bin", configuration, tfm, "tandem.dll");
        if (File.Exists(beside)) return beside;
        string copied = Path.Combine(AppContext.BaseDirectory, "tandem.dll");
        if (File.Exists(copied)) return copied;
        throw new FileNotFoundException($"tandem.dll not found at {beside} or {copied}; build the solution first");
    }

    static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    public static CliResult Run(params string[] args) => RunWithInput(null, args);

    public static CliResult RunWithInput(string? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo(DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = System.Text.Encoding.UTF8,
            StandardErrorEncoding = System.Text.Encoding.UTF8,
        };
        psi.ArgumentList.Add(DllPath);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("TANDEM_DEBUG");

        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"tandem {string.Join(' ', args)} did not finish within 2 minutes");
        }
        return new CliResult(p.ExitCode, stdout.Result, stderr.Result);
    }
}
