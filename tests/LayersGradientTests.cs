using DeepScaleLM.Layers;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>Whole-model gradients of every block type and model kind against central finite differences of the loss.</summary>
public sealed class LayersGradientTests
{
    /// <summary>The tiny model of the checks: d = 8, 2 heads, 2 layers, vocabulary 11, 5 tokens, batch 2.</summary>
    internal static ModelConfig Tiny(ModelKind kind, NormPlacement norm, bool tied = true, float dropout = 0f) => new()
    {
        Kind = kind, Vocabulary = 11, Layers = 2, ModelWidth = 8, Heads = 2, SequenceLength = 6, Norm = norm,
        Activation = FeedForwardActivation.Gelu, Dropout = dropout, TiedHead = tied, Init = norm == NormPlacement.None ? InitScheme.Espa : InitScheme.Dslm,
        Seed = 7,
    };

    /// <summary>A batch for <paramref name="config"/>: tokens, targets (next tokens for decoders, a few masked positions
    /// for encoders, some -100 either way) and source tokens for encoder-decoder models.</summary>
    internal static (int[] Tokens, int[] Targets, int[] Source) Batch(ModelConfig config, int batch, int tokens, int seed)
    {
        var ids = TestData.Integers(seed, batch * (tokens + 1), config.Vocabulary);
        var tokenIds = new int[batch * tokens];
        var targets = new int[batch * tokens];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < tokens; t++)
            {
                tokenIds[b * tokens + t] = ids[b * (tokens + 1) + t];
                targets[b * tokens + t] = config.Kind == ModelKind.Encoder ? ((b + t) % 2 == 0 ? ids[b * (tokens + 1) + t + 1] : -100)
                    : ids[b * (tokens + 1) + t + 1];
            }
        targets[1] = -100;
        var source = config.Kind == ModelKind.EncoderDecoder ? TestData.Integers(seed + 1, batch * tokens, config.Vocabulary) : [];
        return (tokenIds, targets, source);
    }

    public static TheoryData<ModelKind, NormPlacement, bool> Models()
    {
        var data = new TheoryData<ModelKind, NormPlacement, bool>();
        foreach (var kind in Enum.GetValues<ModelKind>())
            foreach (var norm in Enum.GetValues<NormPlacement>())
                foreach (bool tied in new[] { true, false })
                    data.Add(kind, norm, tied);
        return data;
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void GradientsMatchFiniteDifferences(ModelKind kind, NormPlacement norm, bool tied) =>
        CheckGradients(Tiny(kind, norm, tied), dropout: false);

    [Theory]
    [InlineData(ModelKind.Decoder, NormPlacement.Pre)]
    [InlineData(ModelKind.EncoderDecoder, NormPlacement.Post)]
    [InlineData(ModelKind.Encoder, NormPlacement.None)]
    public void GradientsWithDropoutMatchFiniteDifferences(ModelKind kind, NormPlacement norm) =>
        CheckGradients(Tiny(kind, norm, dropout: 0.2f), dropout: true);

    /// <summary>
    /// <see cref="TransformerModel.BackwardFromHeadInput"/> with a fixed R is the gradient of sum(R * head input): the
    /// same finite-difference check with that sum as the objective (the head weight, which it does not read, gets 0).
    /// </summary>
    [Theory]
    [InlineData(ModelKind.Decoder, NormPlacement.Pre, true)]
    [InlineData(ModelKind.Encoder, NormPlacement.None, false)]
    [InlineData(ModelKind.EncoderDecoder, NormPlacement.Post, true)]
    public void BackwardFromHeadInputIsTheGradientOfItsInnerProduct(ModelKind kind, NormPlacement norm, bool tied) =>
        CheckGradients(Tiny(kind, norm, tied), dropout: false, headInputProbe: true);

    /// <summary>
    /// Perturbs the init a little (so no path is exactly dead, e.g. E-SPA's zero queries), then compares the gradient
    /// of two random elements of every named parameter with (L(w + h) - L(w - h)) / 2h at h = 1e-2. The loss is fp32
    /// (rounding noise ~1e-5 in the quotient) and h^2 truncation terms are ~1e-4 relative: 2% + 3e-4 absolute. With
    /// <paramref name="headInputProbe"/> the objective is sum(R * head input) for a fixed random R, back-propagated by
    /// <see cref="TransformerModel.BackwardFromHeadInput"/>.
    /// </summary>
    internal static void CheckGradients(ModelConfig config, bool dropout, bool headInputProbe = false)
    {
        const int BatchSize = 2, Tokens = 5;
        const float Step = 1e-2f;
        using var backend = new CpuBackend(1);
        using var model = TransformerModel.Create(backend, config, BatchSize, Tokens);
        var (tokens, targets, source) = Batch(config, BatchSize, Tokens, 3);
        var parameters = model.Parameters.AsSpan<float>();
        var noise = TestData.Normal(11, parameters.Length, 0.05);
        for (int i = 0; i < parameters.Length; i++) parameters[i] += (float)noise[i];
        var probe = TestData.Normal(17, BatchSize * Tokens * config.ModelWidth, 1).Select(v => (float)v).ToArray();
        var headInput = new float[probe.Length];
        double Loss()
        {
            float loss = model.Forward(tokens, targets, source, training: dropout, dropoutSeed: 5, dropoutOffset: 9);
            if (!headInputProbe) return loss;
            model.HeadInput(headInput);
            double sum = 0;
            for (int i = 0; i < probe.Length; i++) sum += (double)probe[i] * headInput[i];
            return sum;
        }
        Loss();
        if (headInputProbe) model.BackwardFromHeadInput(probe);
        else model.Backward();
        var gradients = model.Gradients.AsSpan<float>().ToArray();
        var random = new Random(13);
        int checkedCount = 0;
        foreach (var parameter in model.NamedParameters)
        {
            long first = parameter.Value.Offset - model.Parameters.Offset;
            for (int sample = 0; sample < 2; sample++)
            {
                int index = (int)(first + random.NextInt64(parameter.Value.ElementCount));
                float original = parameters[index];
                parameters[index] = original + Step;
                double plus = Loss();
                parameters[index] = original - Step;
                double minus = Loss();
                parameters[index] = original;
                double numeric = (plus - minus) / (2 * Step), analytic = gradients[index];
                Assert.True(Math.Abs(numeric - analytic) <= 2e-2 * Math.Abs(numeric) + 3e-4,
                    $"{config.Kind}/{config.Norm}/tied {config.TiedHead}: {parameter.Name} element {index - first}: backward {analytic:G6}, finite difference {numeric:G6}");
                checkedCount++;
            }
        }
        Assert.True(checkedCount >= 40);
    }
}
