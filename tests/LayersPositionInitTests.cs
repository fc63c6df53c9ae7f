using DeepScaleLM.Layers;
using DeepScaleLM.Native.Cpu;

namespace DeepScaleLM.Tests;

/// <summary>
/// InitScheme.DslmPosition in Layers: its config, its plan reaching the model (causal flag and r0 included), and the
/// per-position attention rescale in the backward pass. Its effect on the residual variance is checked in
/// <see cref="SimulateTests"/>.
/// </summary>
public sealed class LayersPositionInitTests
{
    [Fact]
    public void ConfigRoundTripsWithTheTokenCorrelation()
    {
        var config = new ModelConfig { Init = InitScheme.DslmPosition, TokenCorrelation = 0.0123 };
        string json = config.ToJson();
        Assert.Contains("\"init\": \"dslm_position\"", json);
        Assert.Contains("\"token_correlation\": 0.0123", json);
        Assert.Equal(config, ModelConfig.FromJson(json));
    }

    [Theory]
    [InlineData("{\"init\": \"dslm_position\", \"kind\": \"encoder_decoder\"}", "init")]
    [InlineData("{\"init\": \"dslm_position\", \"token_correlation\": 1}", "token_correlation")]
    [InlineData("{\"init\": \"dslm_position\", \"norm\": \"none\"}", "init")]
    public void ConfigRejectsWhatThePlanCannotDescribe(string json, string field)
    {
        var error = Assert.Throws<ArgumentException>(() => ModelConfig.FromJson(json));
        Assert.Equal(field, error.ParamName);
    }

    /// <summary>
    /// Closed forms the model's plan must show: causal query position 0 attends to itself only, so its attention output
    /// is V O LN(x_0) with unit-gain V and O, variance exactly 1, and its rescale is 1 at every layer; r0 defaults to
    /// i.i.d. uniform ids, (1 / vocabulary) / 2 tables; V and O keep unit gain sqrt(1/d).
    /// </summary>
    [Fact]
    public void PlanOfTheModelIsCausalAndDesignedForUniformTokens()
    {
        var config = new ModelConfig { Kind = ModelKind.Decoder, Vocabulary = 200, Layers = 3, ModelWidth = 32, Heads = 4, SequenceLength = 16,
            Init = InitScheme.DslmPosition };
        using var backend = new CpuBackend(1);
        using var model = TransformerModel.Create(backend, config, 1, 16);
        var plan = model.TheoryPlan()!.Value.Plan;
        Assert.Equal(1.0 / 200 / 2, plan.TokenCorrelation!.Value, 15);
        Assert.Equal(3, plan.AttentionRescale!.Count);
        foreach (var layer in plan.AttentionRescale)
        {
            Assert.Equal(16, layer.Count);
            Assert.Equal(1, layer[0], 1e-9); // one key: weight 1, whatever the logits
        }
        // In block 0 (r 0.0025) position 15 averages 16 nearly uncorrelated tokens: its variance is ~0.15 before the
        // rescale (1/16, raised by the random logits' spread of the weights).
        Assert.True(plan.AttentionRescale[0][15] > 2, $"rescale {plan.AttentionRescale[0][15]:G4}");
        Assert.All(plan.ValueStd, std => Assert.Equal(Math.Sqrt(1.0 / 32), std, 12));
    }

    [Theory]
    [InlineData(ModelKind.Decoder, NormPlacement.Pre)]
    [InlineData(ModelKind.Encoder, NormPlacement.Post)]
    public void GradientsMatchFiniteDifferences(ModelKind kind, NormPlacement norm) =>
        LayersGradientTests.CheckGradients(LayersGradientTests.Tiny(kind, norm) with { Init = InitScheme.DslmPosition }, dropout: false);
}
