using System.Text.Json;
using DeepScaleLM.Layers;
using static DeepScaleLM.Tests.CliTests;

namespace DeepScaleLM.Tests;

/// <summary><c>dslm bench train</c> through <c>CliApp.Run</c>: the JSON it writes (not the speed, which a test cannot pin).
/// Alone (<see cref="ProcessCpuCollection"/>): its cpu_share is the process's CPU time over wall time, which tests running
/// beside it in the same process would inflate past 1.</summary>
[Collection(ProcessCpuCollection.Name)]
public sealed class BenchTrainTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void BenchTrainWritesThroughputAndMemoryAsJson()
    {
        string json = _folder.File("train.json");
        var (code, output, error) = Dslm("bench", "train", "--layers", "2", "--d-model", "16", "--heads", "2", "--vocab", "64",
            "--batch", "2", "--seq-len", "8", "--steps", "3", "--warmup", "1", "--norm", "post", "--json", json);
        Assert.True(code == 0, error);
        Assert.Contains("tokens/s", output);
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var root = document.RootElement;
        Assert.Equal("train", root.GetProperty("benchmark").GetString());
        var config = ModelConfig.FromJson(root.GetProperty("config").GetRawText());
        Assert.Equal(new ModelConfig { Layers = 2, ModelWidth = 16, Heads = 2, Vocabulary = 64, SequenceLength = 8, Norm = NormPlacement.Post }, config);
        Assert.Equal(2, root.GetProperty("batch").GetInt32());
        Assert.Equal(8, root.GetProperty("tokens").GetInt32());
        Assert.Equal(3, root.GetProperty("timed_steps").GetInt32());
        Assert.Equal(1, root.GetProperty("warmup_steps").GetInt32());
        // The tied model: 64 x 16 token table, 8 x 16 positions, per block 2 layer norms (2 x 32), attention
        // (4 x (16 x 16 + 16)) and feed-forward (16 x 64 + 64 + 64 x 16 + 16); Post-LN has no final norm.
        long parameters = 64 * 16 + 8 * 16 + 2 * (2 * 32 + 4 * (16 * 16 + 16) + (16 * 64 + 64 + 64 * 16 + 16));
        Assert.Equal(parameters, root.GetProperty("parameters").GetInt64());
        double seconds = root.GetProperty("median_step_seconds").GetDouble();
        Assert.True(seconds > 0);
        Assert.Equal(2 * 8 / seconds, root.GetProperty("tokens_per_second").GetDouble(), 1e-9 * (2 * 8 / seconds));
        Assert.True(root.GetProperty("best_tokens_per_second").GetDouble() >= root.GetProperty("tokens_per_second").GetDouble());
        Assert.True(double.IsFinite(root.GetProperty("last_loss").GetDouble()));
        // CPU time over wall time x threads: positive, and at most a little over 1 (timer granularity).
        Assert.InRange(root.GetProperty("cpu_share").GetDouble(), 1e-6, 1.5);
        var memory = root.GetProperty("memory");
        Assert.Equal(4 * parameters, memory.GetProperty("parameter_bytes").GetInt64());
        Assert.Equal(4 * parameters, memory.GetProperty("gradient_bytes").GetInt64());
        Assert.Equal(8 * parameters, memory.GetProperty("optimizer_bytes").GetInt64());
        var estimate = TransformerModel.EstimateMemory(config, 2, 8);
        Assert.Equal(estimate.TotalBytes, memory.GetProperty("model_bytes").GetInt64());
        Assert.Equal(estimate.BlockActivationBytes, memory.GetProperty("block_activation_bytes").GetInt64());
        Assert.Equal(estimate.BlockActivationBytesWithRecomputation, memory.GetProperty("block_activation_bytes_with_recomputation").GetInt64());
        Assert.True(memory.GetProperty("peak_working_set_bytes").GetInt64() > memory.GetProperty("model_bytes").GetInt64());
        Assert.True(root.GetProperty("machine").GetProperty("logical_cores").GetInt32() >= 1);
    }

    [Fact]
    public void AConfigFileSetsTheModelAndFlagsOverrideIt()
    {
        string configPath = _folder.File("config.json"), json = _folder.File("config-run.json");
        File.WriteAllText(configPath, new ModelConfig { Kind = ModelKind.Encoder, Vocabulary = 33, Layers = 3, ModelWidth = 8, Heads = 2, SequenceLength = 6 }.ToJson());
        var (code, _, error) = Dslm("bench", "train", "--config", configPath, "--layers", "1", "--batch", "1", "--steps", "1", "--warmup", "0", "--json", json);
        Assert.True(code == 0, error);
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var config = ModelConfig.FromJson(document.RootElement.GetProperty("config").GetRawText());
        Assert.Equal(ModelKind.Encoder, config.Kind);
        Assert.Equal(1, config.Layers);
        Assert.Equal(6, document.RootElement.GetProperty("tokens").GetInt32());
    }

    [Theory]
    [InlineData("--steps 0", "--steps must be at least 1")]
    [InlineData("--warmup -1", "--warmup must not be negative")]
    [InlineData("--norm sideways", "--norm: 'sideways' is not one of pre, post, none")]
    [InlineData("--d-model 10 --heads 3", "heads (3) must be a positive divisor of model_width (10)")]
    [InlineData("--seq-len 8 --tokens 9", "tokens 9 exceeds the model's sequence_length 8")]
    [InlineData("--layers 0", "layers must be at least 1")]
    [InlineData("--norm none", "must be espa exactly when norm is none")]
    public void BadSettingsAreNamed(string arguments, string message)
    {
        var (code, _, error) = Dslm(["bench", "train", .. arguments.Split(' ')]);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
    }
}

/// <summary>Tests that read the whole process's CPU time: run after the others, not beside them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessCpuCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "process CPU time";
}
