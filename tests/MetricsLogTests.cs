using DeepScaleLM.Training.Metrics;

namespace DeepScaleLM.Tests;

/// <summary>The JSONL metrics log: exact line format, round trip through the reader (incl. non-finite numbers and
/// arrays), resume truncation (no duplicate steps, torn line dropped), and errors naming file and line; and the
/// moment monitor's ratios and warnings on hand-made arrays.</summary>
public sealed class MetricsLogTests
{
    static MetricsEntry Entry(long step, double loss = 2.5) => new(step, loss, 1e-3, 0.75, 1000, 1024, step * 0.5);

    [Fact]
    public void EachEntryIsOneFlushedJsonLine()
    {
        using var folder = new TempFolder();
        string path = folder.File("metrics.jsonl");
        using var log = MetricsLog.Create(path);
        log.Append(Entry(1));
        // Flushed per line: another reader sees it while the log is still open.
        string expected = "{\"step\":1,\"loss\":2.5,\"lr\":0.001,\"grad_norm\":0.75,\"tokens_per_second\":1000,\"loss_scale\":1024,\"elapsed\":0.5}\n";
        using (var reader = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            Assert.Equal(expected, new StreamReader(reader).ReadToEnd());

        log.Append(Entry(2) with { GradientNorm = double.PositiveInfinity, ValidationLoss = 2.25, Warnings = ["w1"], Arrays = new Dictionary<string, double[]> { ["a"] = [1, double.NaN] } });
        log.Dispose();
        Assert.Equal(expected + "{\"step\":2,\"loss\":2.5,\"lr\":0.001,\"grad_norm\":\"Infinity\",\"tokens_per_second\":1000,\"loss_scale\":1024,\"elapsed\":1,\"validation_loss\":2.25,\"warnings\":[\"w1\"],\"a\":[1,\"NaN\"]}\n",
            File.ReadAllText(path));
    }

    [Fact]
    public void ReaderReturnsWhatWasWritten()
    {
        using var folder = new TempFolder();
        string path = folder.File("metrics.jsonl");
        var second = Entry(2, loss: double.NaN) with
        {
            GradientNorm = double.NegativeInfinity,
            ValidationLoss = 1.0 / 3,
            Warnings = ["layer 3 drifted", "é ✓"],
            Arrays = new Dictionary<string, double[]> { ["ratio"] = [0.1, 1e-300, 7.25], ["empty"] = [] },
        };
        using (var log = MetricsLog.Create(path))
        {
            log.Append(Entry(1));
            log.Append(second);
        }
        var entries = MetricsLog.Read(path);
        Assert.Equal(2, entries.Count);
        Assert.Equal(Entry(1), entries[0]);
        var read = entries[1];
        Assert.Equal(second with { Arrays = null, Warnings = null }, read with { Arrays = null, Warnings = null });
        Assert.Equal(second.Warnings, read.Warnings);
        Assert.Equal(["ratio", "empty"], read.Arrays!.Keys);
        Assert.Equal([0.1, 1e-300, 7.25], read.Arrays["ratio"]);
        Assert.Empty(read.Arrays["empty"]);
    }

    [Fact]
    public void ResumeDropsLinesAfterTheResumedStepAndATornLine()
    {
        using var folder = new TempFolder();
        string path = folder.File("metrics.jsonl");
        using (var log = MetricsLog.Create(path))
            for (int step = 1; step <= 6; step++) log.Append(Entry(step));
        File.AppendAllText(path, "{\"step\":7,\"lo"); // a crash mid-line

        using (var log = MetricsLog.Resume(path, resumedStep: 4))
        {
            log.Append(Entry(5, loss: 9));
            log.Append(Entry(6, loss: 9));
        }
        var entries = MetricsLog.Read(path);
        Assert.Equal([1, 2, 3, 4, 5, 6], entries.Select(e => e.Step));
        Assert.Equal([2.5, 2.5, 2.5, 2.5, 9, 9], entries.Select(e => e.Loss));

        // Resuming at the last step keeps everything; a missing file starts a new log.
        using (MetricsLog.Resume(path, resumedStep: 6)) { }
        Assert.Equal(6, MetricsLog.Read(path).Count);
        string fresh = folder.File("new.jsonl");
        using (var log = MetricsLog.Resume(fresh, 100)) log.Append(Entry(101));
        Assert.Equal([101L], MetricsLog.Read(fresh).Select(e => e.Step));
    }

    [Theory]
    [InlineData("{\"step\":1,\"loss\":1,\"lr\":1,\"grad_norm\":1,\"tokens_per_second\":1,\"loss_scale\":1,\"elapsed\":1}\nnot json\n", "line 2: not valid JSON")]
    [InlineData("[1]\n", "line 1: not a JSON object")]
    [InlineData("{\"loss\":1}\n", "line 1: missing or non-integer 'step'")]
    [InlineData("{\"step\":1,\"lr\":1,\"grad_norm\":1,\"tokens_per_second\":1,\"loss_scale\":1,\"elapsed\":1}\n", "line 1: missing 'loss'")]
    [InlineData("{\"step\":1,\"loss\":\"high\",\"lr\":1,\"grad_norm\":1,\"tokens_per_second\":1,\"loss_scale\":1,\"elapsed\":1}\n", "line 1: 'loss' is not a number")]
    [InlineData("{\"step\":1,\"loss\":1,\"lr\":1,\"grad_norm\":1,\"tokens_per_second\":1,\"loss_scale\":1,\"elapsed\":1,\"a\":3}\n", "line 1: 'a' is not an array of numbers")]
    public void CorruptLinesAreErrorsNamingFileAndLine(string content, string message)
    {
        using var folder = new TempFolder();
        string path = folder.File("metrics.jsonl");
        File.WriteAllText(path, content);
        var e = Assert.Throws<InvalidDataException>(() => MetricsLog.Read(path));
        Assert.StartsWith(path + " ", e.Message);
        Assert.Contains(message, e.Message);
        Assert.Throws<InvalidDataException>(() => MetricsLog.Resume(path, 10).Dispose());
    }

    [Fact]
    public void ArrayNamedLikeAFixedKeyIsRejected()
    {
        using var folder = new TempFolder();
        using var log = MetricsLog.Create(folder.File("m.jsonl"));
        var e = Assert.Throws<ArgumentException>(() => log.Append(Entry(1) with { Arrays = new Dictionary<string, double[]> { ["loss"] = [1] } }));
        Assert.Contains("'loss' is a fixed key", e.Message);
    }

    [Fact]
    public void MomentMonitorGivesRatiosAndWarnsOutsideTheBand()
    {
        var monitor = new MomentMonitor(predictedResidualVariance: [1, 2, 4, 8], predictedGradientVariance: [0.5, 0.25]);
        var report = monitor.Compare(measuredResidualVariance: [1.5, 1, 8.5, double.NaN], measuredGradientVariance: [0.25, 0.26]);

        Assert.Equal([1.5, 0.5, 2.125, double.NaN], report.ResidualVarianceRatio);
        Assert.Equal([0.5, 1.04], report.GradientVarianceRatio);
        // 0.5 and 0.5 sit on the band's edge 1/2 (allowed); 2.125 > 2 and NaN are not.
        Assert.Equal([("residual variance", 2), ("residual variance", 3)], report.Warnings.Select(w => (w.Quantity, w.Layer)));
        Assert.Equal("layer 2 residual variance 8.5 is 2.12x the predicted 4 (allowed 1/2..2x)", report.Warnings[0].ToString());

        var strict = new MomentMonitor([1, 2, 4, 8], [0.5, 0.25], factor: 1.25);
        Assert.Equal([0, 1, 2, 3, 0], strict.Compare([1.5, 1, 8.5, double.NaN], [0.25, 0.26]).Warnings.Select(w => w.Layer));
    }

    [Fact]
    public void MomentReportBecomesMetricsArraysAndWarnings()
    {
        var report = new MomentMonitor([1, 1], [1]).Compare([1, 3], [1]);
        var entry = report.AddTo(Entry(7) with { Warnings = ["earlier"] });
        Assert.Equal([1.0, 3.0], entry.Arrays!["residual_variance"]);
        Assert.Equal([1.0, 3.0], entry.Arrays["residual_variance_ratio"]);
        Assert.Equal([1.0], entry.Arrays["gradient_variance"]);
        Assert.Equal([1.0], entry.Arrays["gradient_variance_ratio"]);
        Assert.Equal(["earlier", "layer 1 residual variance 3 is 3x the predicted 1 (allowed 1/2..2x)"], entry.Warnings);
    }

    [Fact]
    public void MomentMonitorRejectsBadInput()
    {
        Assert.Contains("predictedGradientVariance[1] is 0", Assert.Throws<ArgumentException>(() => new MomentMonitor([1], [1, 0])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MomentMonitor([1], [1], factor: 1));
        var monitor = new MomentMonitor([1, 1], [1]);
        Assert.Contains("measuredResidualVariance has 3 layers but the prediction has 2",
            Assert.Throws<ArgumentException>(() => monitor.Compare([1, 1, 1], [1])).Message);
    }
}
