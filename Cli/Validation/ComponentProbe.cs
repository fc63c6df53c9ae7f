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
/// simulations do (dslm-theory.md 1), drawn on the backend's own device (<see cref="Backend.RandomNormal"/>: the full
/// grids draw ~1e11 values, hours on the host). Tensors are [batch, tokens, channels]; one sample = one (batch, channel) pair,
/// whose tokens share a correlated component: x_t = mu + s (sqrt(r) z + sqrt(1 - r) e_t). The incoming gradient is
/// drawn independently of the forward input. Statistics come from <see cref="Backend.Moments"/> (float64
/// accumulation, correlation measured as section 1 says).
/// </summary>
internal sealed class ComponentProbe(Backend backend, int seed)
{
    private readonly ulong _seed = unchecked((ulong)seed);
    private ulong _stream;

    /// <summary>A fresh Philox stream for each draw: (seed, 0), (seed, 1), ... in the order of the draws.</summary>
    private ulong NextStream() => _stream++;

    /// <summary>
    /// A [batch, tokens, channels] tensor of token-correlated Gaussians with the given moments, drawn on the backend's
    /// device: e ~ N(0, s^2 (1 - r)) per element, then x = 1_T z + e + mu with z ~ N(0, s^2 r) per (batch, channel),
    /// broadcast over the tokens by a k = 1 product into e (beta = 1, the mean as its bias).
    /// </summary>
    public Tensor Correlated(int batch, int tokens, int channels, double mean, double std, double correlation)
    {
        var tensor = backend.Allocate(batch, tokens, channels);
        backend.RandomNormal(tensor, _seed, NextStream(), 0f, (float)(std * Math.Sqrt(1 - correlation)));
        using var shared = backend.Allocate(batch, 1, channels);
        backend.RandomNormal(shared, _seed, NextStream(), 0f, (float)(std * Math.Sqrt(correlation)));
        using var ones = Filled(1f, tokens, 1);
        using var means = Filled((float)mean, channels);
        backend.MatMul(tensor, ones, shared, beta: 1f, bias: means);
        return tensor;
    }

    /// <summary>A tensor of independent N(0, std^2) entries with the given shape, drawn on the backend's device.</summary>
    public Tensor Gaussian(double std, params int[] dims)
    {
        var tensor = backend.Allocate(dims);
        backend.RandomNormal(tensor, _seed, NextStream(), 0f, (float)std);
        return tensor;
    }

    private Tensor Filled(float value, params int[] dims)
    {
        var tensor = backend.Allocate(dims);
        var values = new float[tensor.ElementCount];
        Array.Fill(values, value);
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
        ulong maskStream = NextStream();
        backend.Dropout(y, x, (float)probability, _seed, maskStream);
        using var gy = Correlated(batch, tokens, channels, 0, Math.Sqrt(gradient.Variance), gradient.Correlation);
        using var gx = backend.Allocate(batch, tokens, channels);
        backend.DropoutBackward(gx, gy, (float)probability, _seed, maskStream);
        return Measure(y, gx);
    }

    /// <summary>
    /// Softmax over L logits through the real <see cref="Backend.Attention"/> op: one query of width 1 equal to 1 and
    /// keys equal to the logits make the scores the logits (scale 1), so the saved probabilities are softmax(x) per row;
    /// values drawn as the incoming gradient g and a unit output gradient make dP = g, so the key gradient is the
    /// gradient at the logits (P (g - sum P g)). Rows: <paramref name="rows"/> batch entries, one shared component each.
    /// </summary>
    public MeasuredMoments Softmax(int rows, int length, SignalMoments logits, double gradientVariance)
    {
        using var query = Filled(1f, rows, 1, 1);
        using var key = Correlated(rows, length, 1, 0, Math.Sqrt(logits.Variance), logits.Correlation);
        using var value = Gaussian(Math.Sqrt(gradientVariance), rows, length, 1);
        using var output = backend.Allocate(rows, 1, 1);
        using var probabilities = backend.Allocate(rows, 1, 1, length);
        var options = new AttentionOptions { Heads = 1, Scale = 1 };
        backend.Attention(output, probabilities, query, key, value, options);
        using var gradOutput = Filled(1f, rows, 1, 1);
        using var gradKey = backend.Allocate(rows, length, 1);
        backend.AttentionBackward(null, gradKey, null, null, null, gradOutput, probabilities, query, key, value, options);
        using var entries = probabilities.View(rows, length, 1); // [rows, 1, 1, L] -> [rows, L tokens, 1 channel]
        return Measure(entries, gradKey);
    }

    /// <summary>
    /// One head of bidirectional scaled dot-product attention with a value projection (dslm-theory.md 2.7): Q, K, V =
    /// x W with fresh W per batch entry (W_Q, W_K ~ N(0, sq2), W_V ~ N(0, sv2), [d, dk]), the real
    /// <see cref="Backend.Attention"/> op (no probability dropout: the op contract has none), and the gradient to x
    /// through V only, as the formula and the official simulation take it (gx = gV W_V^T).
    /// </summary>
    public MeasuredMoments SingleHeadAttention(int batch, int tokens, int width, int headWidth, double queryKeyVariance,
        double valueVariance, SignalMoments input, GradientMoments gradient)
    {
        using var x = Correlated(batch, tokens, width, input.Mean, Math.Sqrt(input.Variance), input.Correlation);
        using var weightQuery = Gaussian(Math.Sqrt(queryKeyVariance), batch, width, headWidth);
        using var weightKey = Gaussian(Math.Sqrt(queryKeyVariance), batch, width, headWidth);
        using var weightValue = Gaussian(Math.Sqrt(valueVariance), batch, width, headWidth);
        using var query = backend.Allocate(batch, tokens, headWidth);
        using var key = backend.Allocate(batch, tokens, headWidth);
        using var value = backend.Allocate(batch, tokens, headWidth);
        backend.MatMul(query, x, weightQuery);
        backend.MatMul(key, x, weightKey);
        backend.MatMul(value, x, weightValue);
        using var output = backend.Allocate(batch, tokens, headWidth);
        using var probabilities = backend.Allocate(batch, 1, tokens, tokens);
        var options = new AttentionOptions { Heads = 1 };
        backend.Attention(output, probabilities, query, key, value, options);
        using var gradOutput = Correlated(batch, tokens, headWidth, 0, Math.Sqrt(gradient.Variance), gradient.Correlation);
        using var gradValue = backend.Allocate(batch, tokens, headWidth);
        backend.AttentionBackward(null, null, gradValue, null, null, gradOutput, probabilities, query, key, value, options);
        using var gradInput = backend.Allocate(batch, tokens, width);
        backend.MatMulBackward(gradInput, null, null, gradValue, x, weightValue);
        return Measure(output, gradInput);
    }
}
