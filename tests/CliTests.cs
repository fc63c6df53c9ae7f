using System.Text.Json;
using DeepScaleLM.Cli;
using DeepScaleLM.Training.Data;
using DeepScaleLM.Training.Metrics;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Training.Evaluation;

namespace DeepScaleLM.Tests;

/// <summary>The <c>dslm</c> command line end to end: training runs and resumes, bad input gets a clear error, benchmarks write JSON.</summary>
public sealed class CliTests
{
    internal static (int Code, string Output, string Error) Dslm(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static readonly string[] TinyRun =
        ["--data", "excerpt", "--layers", "2", "--d-model", "32", "--heads", "2", "--seq-len", "32", "--batch", "4", "--log-every", "5"];

    [Fact]
    public void TrainingFromTheCommandLineLearnsMoreThanTheByteFrequenciesAndWritesItsOutputs()
    {
        using var folder = new TempFolder();
        var (code, output, error) = Dslm([.. TinyRun, "--steps", "120", "--lr", "0.01", "--eval-every", "60", "--monitor-every", "60", "--out", folder.Path]);
        Assert.True(code == 0, error + output);
        Assert.Contains("step 120/120", output);
        // A model that only learned the byte frequencies would sit at the text's unigram entropy: training must go below it.
        double unigram = UnigramBaseline.BitsPerByte(new ByteTokenizer().Encode(BrownCorpus.Excerpt()));
        var done = System.Text.RegularExpressions.Regex.Match(output, @"([0-9.]+) bits per byte");
        Assert.True(done.Success, output);
        Assert.True(double.Parse(done.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) < unigram, output);
        var log = MetricsLog.Read(Path.Combine(folder.Path, "metrics.jsonl"));
        Assert.Equal(120, log[^1].Step);
        Assert.NotNull(log.First(e => e.Step == 60).ValidationLoss);
        Assert.Equal(2, log.First(e => e.Step == 60).Arrays!["residual_variance"].Length);
        // The console gets at most one monitor line per monitor step (steps 1, 60, 120); the details are in the log.
        Assert.InRange(output.Split('\n').Count(line => line.StartsWith("monitor: step ", StringComparison.Ordinal)), 0, 3);
        Assert.True(File.Exists(Path.Combine(folder.Path, "checkpoint", "model.safetensors")));
        var png = File.ReadAllBytes(Path.Combine(folder.Path, "loss.png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
    }

    [Fact]
    public void ACommandLineResumeContinuesTheLossesOfAnUninterruptedRun()
    {
        using var straight = new TempFolder();
        using var split = new TempFolder();
        Assert.Equal(0, Dslm([.. TinyRun, "--steps", "10", "--out", straight.Path]).Code);
        var (stopCode, stopOutput, _) = Dslm([.. TinyRun, "--steps", "10", "--stop-at", "5", "--out", split.Path]);
        Assert.Equal(0, stopCode);
        Assert.Contains("stopped at step 5 of 10", stopOutput);
        var (code, _, error) = Dslm(["--data", "excerpt", "--resume", Path.Combine(split.Path, "checkpoint"), "--out", split.Path]);
        Assert.True(code == 0, error);
        var expected = MetricsLog.Read(Path.Combine(straight.Path, "metrics.jsonl")).Select(e => (e.Step, e.Loss));
        var resumed = MetricsLog.Read(Path.Combine(split.Path, "metrics.jsonl")).Select(e => (e.Step, e.Loss));
        Assert.Equal(expected, resumed);
    }

    [Theory]
    [InlineData("--d-model 30 --heads 4", "heads")]
    [InlineData("--layers 0", "layers")]
    [InlineData("--norm sideways", "--norm: 'sideways' is not one of pre, post, none")]
    [InlineData("--data /no/such/corpus", "'/no/such/corpus' is neither")]
    [InlineData("--steps 0", "steps")]
    [InlineData("--no-such-flag", "--no-such-flag")]
    [InlineData("--resume /no/such/checkpoint", "no checkpoint at '/no/such/checkpoint'")]
    public void BadTrainingInputNamesTheProblem(string arguments, string message)
    {
        using var folder = new TempFolder();
        string[] data = arguments.Contains("--data") ? [] : ["--data", "excerpt"];
        var (code, _, error) = Dslm(["train", .. data, "--out", folder.Path, .. arguments.Split(' ')]);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
    }

    [Fact]
    public void UnavailableDeviceIsAnErrorNotACrash()
    {
        var (code, _, error) = Dslm("train", "--data", "excerpt", "--device", "cuda:0", "--steps", "1", "--out", Path.GetTempPath());
        Assert.Equal(1, code);
        Assert.Contains("no CUDA device", error);
        var (badCode, _, badError) = Dslm("train", "--device", "tpu");
        Assert.Equal(2, badCode);
        Assert.Contains("'tpu' is not a device", badError);
    }

    [Theory]
    [InlineData("gemm --m 0", "--m, --n and --k must be positive")]
    [InlineData("gemm --runs 0", "--runs must be positive")]
    [InlineData("ops --channels 10 --heads 3", "--channels (10) must be a multiple of --heads (3)")]
    [InlineData("ops --vocab -1", "must be positive")]
    public void BadBenchSettingNamesTheOption(string arguments, string message)
    {
        var (code, _, error) = Dslm(["bench", .. arguments.Split(' ')]);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
    }

    [Fact]
    public void BenchGemmWritesJson()
    {
        string path = Path.Combine(Path.GetTempPath(), $"dslm-gemm-{Guid.NewGuid():N}.json");
        try
        {
            var (code, output, error) = Dslm("bench", "gemm", "--m", "64", "--n", "48", "--k", "32", "--runs", "3", "--json", path);
            Assert.True(code == 0, error);
            Assert.Contains("GFLOP/s", output);
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            var root = json.RootElement;
            Assert.Equal("gemm", root.GetProperty("benchmark").GetString());
            Assert.Equal(64, root.GetProperty("m").GetInt32());
            Assert.True(root.GetProperty("median_gflops").GetDouble() > 0);
            Assert.True(root.GetProperty("machine").GetProperty("logical_cores").GetInt32() >= 1);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void BenchOpsTimesEveryOp()
    {
        string path = Path.Combine(Path.GetTempPath(), $"dslm-ops-{Guid.NewGuid():N}.json");
        try
        {
            var (code, _, error) = Dslm("bench", "ops", "--batch", "1", "--tokens", "8", "--channels", "16", "--heads", "2", "--vocab", "32", "--runs", "1", "--json", path);
            Assert.True(code == 0, error);
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            var names = json.RootElement.GetProperty("ops").EnumerateArray().Select(o => o.GetProperty("op").GetString()).ToList();
            foreach (var op in new[] { "matmul+bias forward", "attention backward", "residual+layernorm forward", "dropout forward",
                         "embedding backward", "softmax+xent forward", "adamw step", "global norm", "moments", "GeluErf backward" })
                Assert.Contains(op, names);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
