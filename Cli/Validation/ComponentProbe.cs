using DeepScaleLM.Native;
using DeepScaleLM.Theory;

namespace DeepScaleLM.Cli.Validation;

/// <summary>One measured setting: the moments of a component's output and of the gradient at its input.</summary>
/// <param name="Forward">Mean, variance and cross-token correlation of the output (Backend.Moments, float64).</param>
/// <param name="Backward">Variance and cross-token correlation of the gradient at the input (Backend.Moments on it).</param>
internal readonly record struct MeasuredMoments(SignalMoments Forward, GradientMoments Backward);

/// <summary>
/// Runs one component's real backend ops (forward and backward) on Gaussian inputs with a given mean, variance and
/// cross-token correlation, and a random incoming gradient with its own variance and correlation, as the DSLM
/// simulations do (dslm-theory.md 1). Tensors are [batch, tokens, channels]; one sample = one (batch, channel) pair,
/// whose tokens share a correlated component: x_t = mu + s (sqrt(r) z + sqrt(1 - r) e_t). The incoming gradient is
/// drawn independently of the forward input. Statistics come from <see cref="Backend.Moments"/> (float64
/// accumulation, correlation measured as section 1 says). Reusable by a future <c>dslm simulate</c>.
/// </summary>
internal sealed class ComponentProbe(Backend backend, int seed)
{
    private readonly GaussianSampler gaussian = new(new Random(seed));

    private double Normal() => gaussian.Next();

    /// <summary>A [batch, tokens, channels] tensor of token-correlated Gaussians with the given moments.</summary>
    public Tensor Correlated(int batch, int tokens, int channels, double mean, double std, double correlation)
    {
        var values = new float[batch * tokens * channels];
        double shared = Math.Sqrt(correlation), own = Math.Sqrt(1 - correlation);
        var z = new double[channels];
        for (int b = 0; b < batch; b++)
        {
            for (int c = 0; c < channels; c++) z[c] = Normal();
            for (int t = 0; t < tokens; t++)
            {
                int row = (b * tokens + t) * channels;
                for (int c = 0; c < channels; c++)
                    values[row + c] = (float)(mean + std * (shared * z[c] + own * Normal()));
            }
        }
        var tensor = backend.Allocate(batch, tokens, channels);
        backend.Upload<float>(tensor, values);
        return tensor;
    }

    /// <summary>A tensor of independent N(0, std^2) entries with the given shape.</summary>
    public Tensor Gaussian(double std, params int[] dims)
    {
        var tensor = backend.Allocate(dims);
        var values = new float[tensor.ElementCount];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(std * Normal());
        backend.Upload<float>(tensor, values);
        return tensor;
    }

    private MeasuredMoments Measure(Tensor output, Tensor gradInput)
    {
        var forward = backend.Moments(output);
        var backward = backend.Moments(gradInput);
        return new MeasuredMoments(new SignalMoments(forward.Mean, forward.Variance, forward.Correlation),
            new GradientMoments(backward.Variance, backward.Correlation));
    }

    /// <summary>y = x W with W ~ N(0, sw2): <see cref="Backend.MatMul"/> and its backward. Every batch entry draws
    /// its own W [fanIn, fanOut] (a batched operand), so the statistics average over weights as the theory's
    /// expectations do (the paper: 100 runs with fresh weights).</summary>
    public MeasuredMoments Linear(int batch, int tokens, int fanIn, int fanOut, double weightVariance,
        SignalMoments input, GradientMoments gradient)
    {
        using var x = Correlated(batch, tokens, fanIn, input.Mean, Math.Sqrt(input.Variance), input.Correlation);
        using var w = Gaussian(Math.Sqrt(weightVariance), batch, fanIn, fanOut);
        using var y = backend.Allocate(batch, tokens, fanOut);
        backend.MatMul(y, x, w);
        using var gy = Correlated(batch, tokens, fanOut, 0, Math.Sqrt(gradient.Variance), gradient.Correlation);
        using var gx = backend.Allocate(batch, tokens, fanIn);
        backend.MatMulBackward(gx, null, null, gy, x, w);
        return Measure(y, gx);
    }

    /// <summary>An elementwise activation: <see cref="Backend.Activation"/> and its backward.</summary>
    public MeasuredMoments Activation(ActivationFunction function, int batch, int tokens, int channels,
        SignalMoments input, GradientMoments gradient)
    {
        using var x = Correlated(batch, tokens, channels, input.Mean, Math.Sqrt(input.Variance), input.Correlation);
        using var y = backend.Allocate(batch, tokens, channels);
        backend.Activation(y, x, function);
        using var gy = Correlated(batch, tokens, channels, 0, Math.Sqrt(gradient.Variance), gradient.Correlation);
        using var gx = backend.Allocate(batch, tokens, channels);
        backend.ActivationBackward(gx, gy, x, function);
        return Measure(y, gx);
    }

    /// <summary>Layer norm over channels without affine: <see cref="Backend.ResidualLayerNorm"/> with no branch, and its backward.</summary>
    public MeasuredMoments LayerNorm(int batch, int tokens, int channels, SignalMoments input, GradientMoments gradient)
    {
        using var x = Correlated(batch, tokens, channels, input.Mean, Math.Sqrt(input.Variance), input.Correlation);
        using var y = backend.Allocate(batch, tokens, channels);
        using var mean = backend.Allocate(batch * tokens);
        using var rstd = backend.Allocate(batch * tokens);
        backend.ResidualLayerNorm(null, y, mean, rstd, x, null, 1f, 0f, null, null);
        using var gy = Correlated(batch, tokens, channels, 0, Math.Sqrt(gradient.Variance), gradient.Correlation);
        using var gx = backend.Allocate(batch, tokens, channels);
        backend.ResidualLayerNormBackward(gx, null, null, null, gy, null, x, mean, rstd, null, 1f, 0f, hasBranch: false);
        return Measure(y, gx);
    }

    /// <summary>Inverted dropout: <see cref="Backend.Dropout"/> and its backward with the same mask.</summary>
    public MeasuredMoments Dropout(double probability, int batch, int tokens, int channels,
        SignalMoments input, GradientMoments gradient)
    {
        using var x = Correlated(batch, tokens, channels, input.Mean, Math.Sqrt(input.Variance), input.Correlation);
        using var y = backend.Allocate(batch, tokens, channels);
        ulong maskSeed = (ulong)gaussian.Random.NextInt64();
        backend.Dropout(y, x, (float)probability, maskSeed, 0);
        using var gy = Correlated(batch, tokens, channels, 0, Math.Sqrt(gradient.Variance), gradient.Correlation);
        using var gx = backend.Allocate(batch, tokens, channels);
        backend.DropoutBackward(gx, gy, (float)probability, maskSeed, 0);
        return Measure(y, gx);
    }
}
