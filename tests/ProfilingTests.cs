using System.Text.Json;
using DeepScaleLM.Layers;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Native.Profiling;
using DeepScaleLM.Tests.Support;
using DeepScaleLM.Training;
using DeepScaleLM.Training.Data;

namespace DeepScaleLM.Tests;

/// <summary>
/// The profiling decorator (Native/Profiling) and <c>dslm profile</c>: results pass through bit for bit, call counts
/// and FLOPs match what the architecture prescribes, the cost formulas match hand counts. Timings are never asserted.
/// </summary>
public sealed class ProfilingTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly TokenFileReader _data;

    public ProfilingTests()
    {
        string path = _folder.File("brown.tokens");
        TokenFile.Write(path, 256, new ByteTokenizer().Encode(BrownCorpus.Excerpt()));
        _data = TokenFile.Open(path);
    }

    public void Dispose()
    {
        _data.Dispose();
        _folder.Dispose();
    }

    private static ModelConfig Tiny(int layers, NormPlacement norm = NormPlacement.Pre, InitScheme init = InitScheme.Dslm, float dropout = 0f,
        ComputePrecision precision = ComputePrecision.Fp32) => new()
        {
            Vocabulary = 256, Layers = layers, ModelWidth = 16, Heads = 2, SequenceLength = 8, Norm = norm, Init = init,
            Dropout = dropout, Precision = precision,
            Activation = init == InitScheme.Espa ? FeedForwardActivation.LeakyRelu : FeedForwardActivation.Relu,
        };

    private static readonly TrainingOptions TwoSteps = new() { Steps = 2, BatchSize = 2, WarmupSteps = 1 };

    /// <summary>Losses of two training steps, then the gradients and parameters, all as raw bits.</summary>
    private (double[] Losses, float[] Gradients, float[] Parameters) Train(Backend backend, ModelConfig config)
    {
        using var trainer = Trainer.Create(backend, config, TwoSteps, _data, TokenizerSpec.Byte);
        var losses = new[] { trainer.TrainStep().Loss, trainer.TrainStep().Loss };
        var gradients = new float[trainer.Model.ParameterCount];
        var parameters = new float[trainer.Model.ParameterCount];
        backend.Download<float>(gradients, trainer.Model.Gradients);
        backend.Download<float>(parameters, trainer.Model.Parameters);
        return (losses, gradients, parameters);
    }

    public static TheoryData<NormPlacement, InitScheme, float, ComputePrecision> Models => new()
    {
        { NormPlacement.Pre, InitScheme.Dslm, 0.1f, ComputePrecision.Fp32 },
        { NormPlacement.Post, InitScheme.Dslm, 0f, ComputePrecision.Bf16 },
        { NormPlacement.None, InitScheme.Espa, 0f, ComputePrecision.Fp32 },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void TrainingThroughTheProfilerGivesTheSameLossesGradientsAndWeightsBitForBit(NormPlacement norm, InitScheme init, float dropout,
        ComputePrecision precision)
    {
        var config = Tiny(2, norm, init, dropout, precision);
        using var direct = new CpuBackend(1);
        using var profiler = new ProfilingBackend(new CpuBackend(1), ownsInner: true);
        var expected = Train(direct, config);
        var actual = Train(profiler, config);
        Assert.Equal(expected.Losses.Select(BitConverter.DoubleToInt64Bits), actual.Losses.Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(expected.Gradients.Select(BitConverter.SingleToInt32Bits), actual.Gradients.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(expected.Parameters.Select(BitConverter.SingleToInt32Bits), actual.Parameters.Select(BitConverter.SingleToInt32Bits));
        Assert.Contains(profiler.Profile(), op => op.Op == ProfiledOp.AttentionBackward && op.Calls == 2 * config.Layers);
    }

    [Fact]
    public void ATrainingStepCallsEachOpAsOftenAsThePreLayerNormDecoderPrescribes()
    {
        const int layers = 3, width = 16, tokens = 8, batch = 2, vocabulary = 256;
        using var profiler = new ProfilingBackend(new CpuBackend(1), ownsInner: true);
        using var trainer = Trainer.Create(profiler, Tiny(layers), TwoSteps, _data, TokenizerSpec.Byte);
        profiler.Reset();
        trainer.TrainStep();
        var calls = profiler.Profile().ToDictionary(op => op.Op, op => op.Calls);
        // Per block: 4 attention + 2 feed-forward Linears, one attention, a norm and a residual per sublayer, one
        // activation; the model adds the LM head's matmul, the final norm, the embedding with its dropout, the loss; the
        // trainer one global norm and one AdamW per named parameter (16 per block: 6 Linears and 2 norms with weight and
        // bias each; the token and position tables, the final norm's 2). Uploads: tokens, targets, loss gradients;
        // zeroes: gradients, logit gradient, head-input gradient, last stream before the final norm, 2 per block,
        // embedding gradient.
        var expected = new Dictionary<ProfiledOp, long>
        {
            [ProfiledOp.MatMul] = 6 * layers + 1, [ProfiledOp.MatMulBackward] = 6 * layers + 1,
            [ProfiledOp.Attention] = layers, [ProfiledOp.AttentionBackward] = layers,
            [ProfiledOp.ResidualLayerNorm] = 2 * layers + 1, [ProfiledOp.ResidualLayerNormBackward] = 2 * layers + 1,
            [ProfiledOp.Residual] = 2 * layers, [ProfiledOp.ResidualBackward] = 2 * layers,
            [ProfiledOp.Activation] = layers, [ProfiledOp.ActivationBackward] = layers,
            [ProfiledOp.Embedding] = 1, [ProfiledOp.EmbeddingBackward] = 1, [ProfiledOp.Dropout] = 1, [ProfiledOp.DropoutBackward] = 1,
            [ProfiledOp.SoftmaxCrossEntropy] = 1, [ProfiledOp.SoftmaxCrossEntropyBackward] = 1,
            [ProfiledOp.Upload] = 3, [ProfiledOp.Download] = 1, [ProfiledOp.Zero] = 2 * layers + 5,
            [ProfiledOp.GlobalNorm] = 1, [ProfiledOp.AdamW] = 16 * layers + 4,
        };
        Assert.Equal(expected.OrderBy(p => p.Key), calls.OrderBy(p => p.Key));

        // FLOPs: every Linear and the tied head multiply each of the B*T rows by their weight matrix (2 FLOPs per weight),
        // and backward does it twice (input and weight gradients); attention's two products per layer are 2*B*T*T*d
        // each, halved by the causal mask, and twice that in backward.
        var profile = profiler.Profile().ToDictionary(op => op.Op);
        double rows = batch * tokens, matrixWeights = layers * 12.0 * width * width + (double)vocabulary * width;
        Assert.Equal(2 * rows * matrixWeights, profile[ProfiledOp.MatMul].Flops);
        Assert.Equal(4 * rows * matrixWeights, profile[ProfiledOp.MatMulBackward].Flops);
        Assert.Equal(layers * 2.0 * batch * tokens * tokens * width, profile[ProfiledOp.Attention].Flops);
        Assert.Equal(layers * 4.0 * batch * tokens * tokens * width, profile[ProfiledOp.AttentionBackward].Flops);
        // Which is the MFU convention's 6N + 6LdT per token with N the matrix weights alone.
        double opFlopsPerToken = profile.Values.Sum(op => op.Flops) / rows;
        Assert.Equal(ModelFlops.PerToken((long)matrixWeights, layers, width, tokens), opFlopsPerToken, 6);
    }

    [Fact]
    public void MatMulCostsAreTwoFlopsPerMultiplyAddAndEachOperandOnce()
    {
        using var cpu = new CpuBackend(1);
        using var a = cpu.Allocate(3, 4, 5);    // [batch, m, k]
        using var b = cpu.Allocate(6, 5);       // [n, k], shared by the batch, used transposed
        using var bias = cpu.Allocate(6);
        using var output = cpu.Allocate(3, 4, 6);
        var forward = OpCosts.MatMul(output, a, b, transposeA: false, transposeB: true, beta: 0f, bias);
        Assert.Equal(2.0 * 3 * 4 * 6 * 5, forward.Flops);
        Assert.Equal(4.0 * (60 + 30 + 6 + 72), forward.Bytes);
        // beta != 0 reads the old output too.
        Assert.Equal(4.0 * (60 + 30 + 6 + 2 * 72), OpCosts.MatMul(output, a, b, false, true, beta: 1f, bias).Bytes);

        using var gradA = cpu.Allocate(3, 4, 5);
        using var gradB = cpu.Allocate(6, 5);
        var both = OpCosts.MatMulBackward(gradA, gradB, null, output, a, b, false, true);
        Assert.Equal(2 * 720.0, both.Flops);
        Assert.Equal(4.0 * (72 + 60 + 30 + 2 * 60 + 2 * 30), both.Bytes);
        // Only the input gradient: one product, which reads b but not a.
        var inputOnly = OpCosts.MatMulBackward(gradA, null, null, output, a, b, false, true);
        Assert.Equal(720.0, inputOnly.Flops);
        Assert.Equal(4.0 * (72 + 30 + 2 * 60), inputOnly.Bytes);
    }

    [Fact]
    public void AttentionCostsCountTwoProductsForwardAndUpToFourBackwardHalvedWhenCausal()
    {
        using var cpu = new CpuBackend(1);
        // batch 2, 8 query tokens, 5 key tokens, 4 heads of 4 channels.
        using var query = cpu.Allocate(2, 8, 16);
        using var key = cpu.Allocate(2, 5, 16);
        using var value = cpu.Allocate(2, 5, 16);
        using var probabilities = cpu.Allocate(2, 4, 8, 5);
        using var output = cpu.Allocate(2, 8, 16);
        var cross = new AttentionOptions { Heads = 4 };
        // 4 * B * H * Tq * Tk * headDim.
        double forwardFlops = 4.0 * 2 * 4 * 8 * 5 * 4;
        var forward = OpCosts.Attention(output, probabilities, query, key, value, cross);
        Assert.Equal(forwardFlops, forward.Flops);
        Assert.Equal(4.0 * (256 + 160 + 160 + 256 + 320), forward.Bytes);
        using var gradQuery = cpu.Allocate(2, 8, 16);
        using var gradKey = cpu.Allocate(2, 5, 16);
        using var gradValue = cpu.Allocate(2, 5, 16);
        Assert.Equal(2 * forwardFlops, OpCosts.AttentionBackward(gradQuery, gradKey, gradValue, null, null, output, probabilities, query, key, value, cross).Flops);
        // dV = P^T dO alone is one of the four products.
        Assert.Equal(forwardFlops / 2, OpCosts.AttentionBackward(null, null, gradValue, null, null, output, probabilities, query, key, value, cross).Flops);
        // dQ needs dP = dO V^T and dS K: two products.
        Assert.Equal(forwardFlops, OpCosts.AttentionBackward(gradQuery, null, null, null, null, output, probabilities, query, key, value, cross).Flops);

        using var selfKey = cpu.Allocate(2, 8, 16);
        using var selfProbabilities = cpu.Allocate(2, 4, 8, 8);
        var causal = new AttentionOptions { Heads = 4, Causal = true };
        Assert.Equal(4.0 * 2 * 4 * 8 * 8 * 4 / 2, OpCosts.Attention(output, selfProbabilities, query, selfKey, selfKey, causal).Flops);
    }

    [Fact]
    public void ElementWiseCostsAreReadsPlusWritesWithAccumulatedGradientsReadAndWritten()
    {
        using var cpu = new CpuBackend(1);
        using var x = cpu.Allocate(4, 8);
        using var y = cpu.Allocate(4, 8);
        using var gradX = cpu.Allocate(4, 8);
        using var statistics = cpu.Allocate(4);
        using var gain = cpu.Allocate(8);
        Assert.Equal(new OpCost(0, 4.0 * 64), OpCosts.Map(y, x));
        Assert.Equal(new OpCost(0, 4.0 * 64), OpCosts.Dropout(y, x, 0f));
        Assert.Equal(new OpCost(0, 4.0 * 64), OpCosts.Dropout(x, x, 0.1f));
        // Probability 0 in place is the identity: nothing to move.
        Assert.Equal(new OpCost(0, 0), OpCosts.Dropout(x, x, 0f));
        // ActivationBackward: reads dy and x, gradX += ...: 4 passes of 32 floats.
        Assert.Equal(new OpCost(0, 4.0 * 128), OpCosts.MapBackward(gradX, y, x));
        Assert.Equal(new OpCost(0, 4.0 * 96), OpCosts.Residual(y, x, x));
        // Layer norm of x with gain and shift: reads 32 + 8 + 8, writes 32 + 4 + 4.
        Assert.Equal(new OpCost(0, 4.0 * 88), OpCosts.ResidualLayerNorm(null, y, statistics, statistics, x, null, gain, gain));
        // AdamW: reads gradients, parameters and both moments, writes the last three.
        Assert.Equal(new OpCost(0, 4.0 * 7 * 32), OpCosts.AdamW(x, y, gradX, gradX));
        Assert.Equal(new OpCost(0, 4.0 * 3 * 64), OpCosts.ClipByGlobalNorm([x, y], scaled: true));
    }

    [Fact]
    public void WarmOpsThroughTheProfilerAllocateNothing()
    {
        using var profiler = new ProfilingBackend(new CpuBackend(1), ownsInner: true);
        using var x = profiler.Allocate(16, 32);
        using var weight = profiler.Allocate(24, 32);
        using var y = profiler.Allocate(16, 24);
        using var gradX = profiler.Allocate(16, 32);
        using var gradWeight = profiler.Allocate(24, 32);
        Allocations.AssertWarmCallAllocatesNothing(() =>
        {
            profiler.MatMul(y, x, weight, transposeB: true);
            profiler.Activation(y, y, ActivationFunction.GeluErf);
            profiler.MatMulBackward(gradX, gradWeight, null, y, x, weight, transposeB: true);
            profiler.ClipByGlobalNorm(1f, gradX, gradWeight);
        });
    }

    [Fact]
    public void ATokenOutsideTheVocabularyIsStillRejectedNamingTheOperand()
    {
        using var profiler = new ProfilingBackend(new CpuBackend(1), ownsInner: true);
        using var tokens = profiler.Allocate(DType.Int32, 1, 2);
        using var table = profiler.Allocate(4, 8);
        using var output = profiler.Allocate(1, 2, 8);
        profiler.Upload<int>(tokens, [1, 7]);
        var error = Assert.Throws<ArgumentException>(() => profiler.Embedding(output, tokens, table, null));
        Assert.Equal("tokens", error.ParamName);
        Assert.Contains("outside [0, 4)", error.Message);
        Assert.Throws<ArgumentException>(() => new ProfilingBackend(profiler));
    }

    [Theory]
    [InlineData("NVIDIA H100 80GB HBM3", "H100 SXM")]
    [InlineData("NVIDIA H100 PCIe", "H100 PCIe")]
    [InlineData("NVIDIA H200", "H200 SXM")]
    [InlineData("Tesla T4", null)]
    public void AGpuNameFindsItsDatasheet(string deviceName, string? part) => Assert.Equal(part, DevicePeak.FindDatasheet(deviceName)?.Name);

    [Fact]
    public void TheProfileCommandPrintsTheTableAndWritesItsFieldsAsJson()
    {
        const int layers = 1, width = 16, tokens = 8, vocabulary = 256, batch = 2, steps = 2;
        string json = _folder.File("profile.json");
        var (code, output, error) = CliTests.Dslm("profile", "--layers", "1", "--d-model", "16", "--heads", "2", "--seq-len", "8", "--batch", "2",
            "--steps", "2", "--warmup", "1", "--threads", "1", "--peak-gflops", "100", "--peak-gbs", "10", "--json", json);
        Assert.True(code == 0, error + output);
        Assert.Contains("6N + 6*L*d*T", output);
        Assert.Contains("MatMulBackward", output);
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var root = document.RootElement;
        Assert.Equal(steps * batch * tokens, root.GetProperty("tokens").GetInt64());
        var mfu = root.GetProperty("mfu");
        Assert.Equal("6N + 6*L*d*T", mfu.GetProperty("formula").GetString());
        // N: 12 d^2 + 13 d per block (6 Linears' weights and biases, 2 norms), the final norm's 2d, the tied token table.
        long counted = layers * (12L * width * width + 13L * width) + 2L * width + (long)vocabulary * width;
        Assert.Equal(counted, mfu.GetProperty("parameters_counted").GetInt64());
        Assert.Equal(counted + (long)tokens * width, mfu.GetProperty("parameters_total").GetInt64());
        double flopsPerToken = 6.0 * counted + 6.0 * layers * width * tokens;
        Assert.Equal(flopsPerToken, mfu.GetProperty("flops_per_token").GetDouble());
        double tokensPerSecond = root.GetProperty("tokens_per_second").GetDouble();
        Assert.Equal(flopsPerToken * tokensPerSecond / 100e9, mfu.GetProperty("utilization").GetDouble(), 12);
        Assert.Equal(100e9, root.GetProperty("peak").GetProperty("flops_per_second").GetDouble());
        var ops = root.GetProperty("ops").EnumerateArray().ToDictionary(op => op.GetProperty("op").GetString()!);
        Assert.Equal(steps * (6 * layers + 1), ops["MatMul"].GetProperty("calls").GetInt64());
        Assert.Equal(steps * 2.0 * batch * tokens * (12.0 * width * width + vocabulary * width), ops["MatMul"].GetProperty("flops").GetDouble());
        var attention = ops["Attention"];
        Assert.Equal(attention.GetProperty("flops_per_second").GetDouble() / 100e9, attention.GetProperty("flops_fraction_of_peak").GetDouble(), 12);
        Assert.Equal(1.0, ops.Values.Sum(op => op.GetProperty("share").GetDouble()) + root.GetProperty("outside_ops_seconds").GetDouble() / root.GetProperty("seconds").GetDouble(), 9);
    }

    [Fact]
    public void TheProfileCommandRejectsAStepCountBelowOne()
    {
        var (code, _, error) = CliTests.Dslm("profile", "--steps", "0", "--peak-gflops", "1", "--peak-gbs", "1");
        Assert.Equal(2, code);
        Assert.Contains("--steps must be at least 1", error);
    }
}
