using DeepScaleLM.Layers;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;
using DeepScaleLM.Training;
using DeepScaleLM.Training.Data;
using DeepScaleLM.Training.Evaluation;

namespace DeepScaleLM.Tests;

/// <summary>The README's C# examples are this file's <see cref="Example"/> and <see cref="TrainingExample"/>, verbatim, and they run.</summary>
public sealed class ReadmeExampleTests
{
    private static MomentStatistics Example()
    {
        // README-BEGIN
        using var backend = new CpuBackend();                 // the C# backend on every core
        using var x = backend.Allocate(8, 64);                // activations [rows, in]
        using var weight = backend.Allocate(256, 64);         // Linear weight [out, in], PyTorch layout
        using var y = backend.Allocate(8, 256);
        var random = new Random(0);
        backend.Upload<float>(x, Enumerable.Range(0, 8 * 64).Select(_ => (float)random.NextDouble() - 0.5f).ToArray());
        backend.Upload<float>(weight, Enumerable.Range(0, 256 * 64).Select(_ => 0.2f * ((float)random.NextDouble() - 0.5f)).ToArray());

        backend.MatMul(y, x, weight, transposeB: true);       // y = x * weight^T
        backend.Activation(y, y, ActivationFunction.GeluErf); // in place
        var moments = backend.Moments(y.View(1, 8, 256));     // [batch, tokens, channels]
        Console.WriteLine($"mean {moments.Mean:F4}, variance {moments.Variance:F4}, token correlation {moments.Correlation:F4}");
        // README-END
        return moments;
    }

    private static EvaluationMetrics TrainingExample()
    {
        // README-TRAIN-BEGIN
        using var backend = new CpuBackend();
        string tokens = Path.Combine(Path.GetTempPath(), "dslm-readme-excerpt.tokens");
        TokenFile.Write(tokens, 256, new ByteTokenizer().Encode(BrownCorpus.Excerpt())); // the text that ships inside
        using var data = TokenFile.Open(tokens);
        var model = new ModelConfig { Layers = 2, ModelWidth = 32, Heads = 2, SequenceLength = 32 }; // DSLM Pre-LN decoder
        var run = new TrainingOptions { Steps = 120, BatchSize = 4, LearningRate = 1e-2, MinLearningRate = 1e-3 };
        using var trainer = Trainer.Create(backend, model, run, data, TokenizerSpec.Byte);
        while (!trainer.Finished) trainer.TrainStep();      // AdamW, warmup + cosine, clipping; deterministic
        var metrics = trainer.Evaluate();                   // on the tail 10% of the tokens
        Console.WriteLine($"validation: {metrics.MeanLoss:F3} nats per byte, {metrics.BitsPerByte:F3} bits per byte");
        // README-TRAIN-END
        return metrics;
    }

    [Theory]
    [InlineData("README")]
    [InlineData("README-TRAIN")]
    public void ReadmeShowsTheExampleVerbatim(string marker)
    {
        string source = File.ReadAllText(Path.Combine(RepositoryRoot(), "tests", "ReadmeExampleTests.cs"));
        string readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        var lines = source.Split('\n').SkipWhile(l => !l.Contains(marker + "-BEGIN")).Skip(1).TakeWhile(l => !l.Contains(marker + "-END"))
            .Select(l => l.Length >= 8 ? l[8..].TrimEnd() : l.Trim()).ToList();
        Assert.NotEmpty(lines);
        Assert.Contains(string.Join('\n', lines), readme.Replace("\r\n", "\n"));
    }

    [Fact]
    public void TrainingExampleLearnsMoreThanTheByteFrequencies()
    {
        var metrics = TrainingExample();
        // A model that learned only the byte frequencies would score the text's unigram entropy; the example must beat it.
        double unigram = UnigramBaseline.BitsPerByte(new ByteTokenizer().Encode(BrownCorpus.Excerpt()));
        Assert.True(metrics.BitsPerByte < unigram, $"{metrics.BitsPerByte:F3} bits per byte is not below the unigram {unigram:F3}");
    }

    [Fact]
    public void ExampleComputesWhatItSays()
    {
        var moments = Example();
        // The same inputs (the same Random(0) draws, in the same order) through y = gelu(x weight^T) in float64.
        var random = new Random(0);
        var x = Enumerable.Range(0, 8 * 64).Select(_ => (double)((float)random.NextDouble() - 0.5f)).ToArray();
        var weight = Enumerable.Range(0, 256 * 64).Select(_ => (double)(0.2f * ((float)random.NextDouble() - 0.5f))).ToArray();
        var y = new double[8 * 256];
        for (int i = 0; i < 8; i++)
            for (int o = 0; o < 256; o++)
            {
                double sum = 0;
                for (int k = 0; k < 64; k++) sum += x[i * 64 + k] * weight[o * 64 + k];
                y[i * 256 + o] = sum * Gaussian.Cdf(sum);
            }
        double mean = y.Average(), variance = y.Select(v => (v - mean) * (v - mean)).Average();
        Assert.Equal(mean, moments.Mean, 5);
        Assert.Equal(variance, moments.Variance, 5);
    }

    internal static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "DeepScaleLM.Native.sln")))
            directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("the tests run outside the repository");
    }
}
