using DeepScaleLM.Native;

namespace DeepScaleLM.Layers;

/// <summary>A PyTorch Linear layer y = x W^T + b, weight [outputs, inputs], bias [outputs] (optional).</summary>
internal sealed class Linear(ParameterCarver take, string name, int inputs, int outputs, bool bias = true)
{
    /// <summary>[outputs, inputs]; matmuls read its compute copy.</summary>
    public Parameter Weight { get; } = take.Take(name + ".weight", decay: true, outputs, inputs);
    /// <summary>[outputs], or null.</summary>
    public Parameter? Bias { get; } = bias ? take.Take(name + ".bias", decay: false, outputs) : null;

    /// <summary>Scalars of a layer of this size.</summary>
    public static long Count(int inputs, int outputs, bool bias = true) => (long)inputs * outputs + (bias ? outputs : 0);

    /// <summary>output [..., outputs] = input [..., inputs] W^T + b.</summary>
    public void Forward(Backend backend, Tensor output, Tensor input) =>
        backend.MatMul(output, input, Weight.Compute, transposeB: true, bias: Bias?.Value);

    /// <summary>Accumulates the weight and bias gradients, and the input gradient when <paramref name="gradInput"/> is given.</summary>
    public void Backward(Backend backend, Tensor? gradInput, Tensor gradOutput, Tensor input) =>
        backend.MatMulBackward(gradInput, Weight.Gradient, Bias?.Gradient, gradOutput, input, Weight.Compute, transposeB: true);
}

/// <summary>LayerNorm's affine gain (init 1) and shift (init 0), [channels] each.</summary>
internal sealed class LayerNormWeights(ParameterCarver take, string name, int channels)
{
    /// <summary>gamma.</summary>
    public Parameter Weight { get; } = take.Take(name + ".weight", decay: false, channels);
    /// <summary>beta.</summary>
    public Parameter Bias { get; } = take.Take(name + ".bias", decay: false, channels);

    /// <summary>Scalars of a LayerNorm over <paramref name="channels"/>.</summary>
    public static long Count(int channels) => 2L * channels;
}

/// <summary>A LayerNorm's output with the row statistics its backward needs.</summary>
internal sealed class NormActivations(Carver take, int batch, int tokens, int channels)
{
    /// <summary>[batch, tokens, channels].</summary>
    public Tensor Output { get; } = take.Take(batch, tokens, channels);
    /// <summary>[batch * tokens].</summary>
    public Tensor Mean { get; } = take.Take(batch * tokens);
    /// <summary>[batch * tokens].</summary>
    public Tensor Rstd { get; } = take.Take(batch * tokens);

    /// <summary>Scalars of one set.</summary>
    public static long Count(int batch, int tokens, int channels) => (long)batch * tokens * (channels + 2);

    /// <summary>Output = LN(input) (no residual combine).</summary>
    public void Forward(Backend backend, Tensor input, LayerNormWeights weights) =>
        backend.ResidualLayerNorm(null, Output, Mean, Rstd, input, null, 1f, 1f, weights.Weight.Value, weights.Bias.Value);

    /// <summary>gradInput += dLN/dinput^T gradOutput; accumulates gamma and beta gradients.</summary>
    public void Backward(Backend backend, Tensor gradInput, Tensor gradOutput, Tensor input, LayerNormWeights weights) =>
        backend.ResidualLayerNormBackward(gradInput, null, weights.Weight.Gradient, weights.Bias.Gradient, gradOutput, null,
            input, Mean, Rstd, weights.Weight.Value, 1f, 1f, hasBranch: false);
}
