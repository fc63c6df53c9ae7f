using DeepScaleLM.Training.Data;
using DeepScaleLM.Training.Metrics;

namespace DeepScaleLM.Tests;

/// <summary><c>dslm plot</c>: overlays runs' metrics logs into a PNG, prints each run's last and best value and the unigram
/// baseline of a validation tail, and names the problem when a run, a quantity or a label list is wrong.</summary>
public sealed class PlotCommandTests
{
    /// <summary>Writes a metrics log into <paramref name="folder"/>/<paramref name="run"/>: one line per (step, loss, validation).</summary>
    private static string Run(TempFolder folder, string run, params (long Step, double Loss, double? Validation)[] lines)
    {
        string path = folder.File(Path.Combine(run, "metrics.jsonl"));
        using var log = MetricsLog.Create(path);
        foreach (var (step, loss, validation) in lines)
            log.Append(new MetricsEntry(step, loss, LearningRate: 1e-3, GradientNorm: 1, TokensPerSecond: 100, LossScale: 1, ElapsedSeconds: step) { ValidationLoss = validation });
        return Path.GetDirectoryName(path)!;
    }

    [Fact]
    public void OverlaysRunsIntoAPngAndPrintsTheirLastAndBestValues()
    {
        using var folder = new TempFolder();
        string deep = Run(folder, "deep", (10, 3.0, 2.9), (20, 2.0, 2.25), (30, 2.5, null));
        string wide = Run(folder, "wide", (10, 3.1, null), (20, double.NaN, 2.75), (30, 2.4, 2.5));
        string png = Path.Combine(folder.Path, "charts", "validation.png");

        var (code, output, error) = CliTests.Dslm("plot", deep, wide, "--out", png, "--labels", "deep one,wide one");

        Assert.True(code == 0, error + output);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(png)[..4]);
        // Validation (the default quantity) only where it was measured: deep at 10 and 20, wide at 20 and 30.
        Assert.Contains("deep one: validation at step 20 = 2.2500, best 2.2500 (step 20)", output);
        Assert.Contains("wide one: validation at step 30 = 2.5000, best 2.5000 (step 30)", output);

        (code, output, error) = CliTests.Dslm("plot", deep, wide, "--out", png, "--quantity", "loss", "--log-y");
        Assert.True(code == 0, error + output);
        Assert.Contains("deep: loss at step 30 = 2.5000, best 2.0000 (step 20)", output);
        // The diverged point cannot be drawn; it is reported instead of silently dropped.
        Assert.Contains("wide: 1 non-finite value(s) not drawn, the first at step 20", output);
    }

    [Fact]
    public void PrintsAndDrawsTheUnigramBaselineOfTheValidationTail()
    {
        using var folder = new TempFolder();
        string run = Run(folder, "run", (10, 2.0, 1.5));
        // 20 byte tokens; the last 20% (4 tokens) are validation: four distinct bytes, 2 bits per byte = 2 ln 2 nats.
        // The training part repeats one byte, so a baseline over the whole file would be far lower.
        string tokens = folder.File("data.tokens");
        TokenFile.Write(tokens, 256, [.. Enumerable.Repeat(7, 16), 1, 2, 3, 4]);

        var (code, output, error) = CliTests.Dslm("plot", run, "--out", folder.File("v.png"), "--unigram", tokens, "--validation-fraction", "0.2");

        Assert.True(code == 0, error + output);
        Assert.Contains("unigram baseline: 2.0000 bits per byte (1.3863 nats)", output);
        Assert.Contains("(4 bytes)", output);
    }

    [Fact]
    public void BadInputNamesTheProblem()
    {
        using var folder = new TempFolder();
        string run = Run(folder, "run", (10, 2.0, 1.5));
        string unvalidated = Run(folder, "unvalidated", (10, 2.0, null));
        string empty = Directory.CreateDirectory(Path.Combine(folder.Path, "empty")).FullName;
        string missing = Path.Combine(folder.Path, "missing");
        string png = Path.Combine(folder.Path, "out.png");
        string wideTokens = folder.File("bpe.tokens");
        TokenFile.Write(wideTokens, 1000, [1, 2, 3, 999]);

        Assert.Contains($"run '{missing}': no such folder", Error(2, "plot", run, missing, "--out", png));
        Assert.Contains($"run '{empty}': no metrics.jsonl", Error(2, "plot", empty, "--out", png));
        Assert.Contains("--quantity: 'speed' is not one of loss, validation, grad_norm", Error(2, "plot", run, "--quantity", "speed", "--out", png));
        Assert.Contains("--labels: 2 label(s) for 1 run(s)", Error(2, "plot", run, "--labels", "a,b", "--out", png));
        Assert.Contains("has no finite validation value", Error(2, "plot", run, unvalidated, "--out", png));
        Assert.Contains("vocabulary of 1000", Error(2, "plot", run, "--quantity", "loss", "--unigram", wideTokens, "--out", png));
        Assert.False(File.Exists(png));
    }

    private static string Error(int expectedCode, params string[] args)
    {
        var (code, output, error) = CliTests.Dslm(args);
        Assert.True(code == expectedCode, $"exit code {code}: {output}{error}");
        return error;
    }
}
