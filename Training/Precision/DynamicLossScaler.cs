namespace DeepScaleLM.Training.Precision;

/// <summary>What <see cref="DynamicLossScaler.Update"/> decided about one optimizer step.</summary>
public enum LossScaleOutcome
{
    /// <summary>The gradients were finite: unscale them (multiply by <see cref="DynamicLossScaler.InverseScale"/>
    /// as it was before the call) and apply the step.</summary>
    Applied,
    /// <summary>Applied, and the scale has just doubled after <see cref="LossScalerState.GrowthInterval"/> clean steps.</summary>
    AppliedAndGrew,
    /// <summary>A gradient overflowed: skip the step (no weight or moment update) and go on with the halved scale.</summary>
    SkippedOverflow,
}

/// <summary>Everything a <see cref="DynamicLossScaler"/> needs to continue exactly after a resume.</summary>
/// <param name="Scale">The current loss scale, a power of two in [<paramref name="MinimumScale"/>, <paramref name="MaximumScale"/>].</param>
/// <param name="GrowthInterval">Clean steps in a row after which the scale doubles.</param>
/// <param name="MinimumScale">The floor: an overflow at this scale is an error, not a halving.</param>
/// <param name="MaximumScale">The ceiling growth stops at.</param>
/// <param name="CleanSteps">Clean steps since the last overflow or growth.</param>
/// <param name="SkippedSteps">Steps skipped for overflow over the whole run.</param>
public sealed record LossScalerState(double Scale, int GrowthInterval, double MinimumScale, double MaximumScale, int CleanSteps, long SkippedSteps);

/// <summary>An overflow happened at the floor scale: even at the smallest allowed scale the gradients are not
/// finite, so the model has diverged (or the floor is wrong); halving further would hide it.</summary>
public sealed class LossScaleCollapsedException(string message) : InvalidOperationException(message);

/// <summary>
/// Dynamic loss scaling for fp16 training (Micikevicius et al. 2018, "Mixed Precision Training", section 3.2):
/// the loss is multiplied by <see cref="Scale"/> before backward so that small gradients survive fp16's range, the
/// gradients are divided by it before the optimizer, and the scale adapts: an overflow (a non-finite gradient
/// norm) skips the step and halves the scale; <see cref="LossScalerState.GrowthInterval"/> clean steps in a row
/// double it. The first scale comes from the theory's predicted gradient moments (<see cref="InitialScale"/>)
/// rather than a blind 2^16, so with DSLM's unit-scale gradients the first steps neither overflow nor underflow.
/// Pure logic and state: the caller computes the norm and applies or skips the step.
/// </summary>
public sealed class DynamicLossScaler
{
    /// <summary>The largest finite fp16 value, (2 - 2^-10) * 2^15.</summary>
    public const double Float16Max = 65504;

    /// <summary>Default k of the k-sigma bound in <see cref="InitialScale"/>: 8 standard deviations.</summary>
    public const double DefaultSigmaMultiple = 8;

    /// <summary>Default headroom in <see cref="InitialScale"/>: the bound must stay 4x below fp16's maximum.</summary>
    public const double DefaultHeadroom = 4;

    /// <summary>Default clean steps before the scale doubles (PyTorch's GradScaler uses the same 2000).</summary>
    public const int DefaultGrowthInterval = 2000;

    /// <summary>Default floor: at scale 1 the gradients are fp16 values as they are; an overflow there is divergence.</summary>
    public const double DefaultMinimumScale = 1;

    /// <summary>Default ceiling, 2^24: far above any useful scale, below where the scaled fp32 loss loses meaning.</summary>
    public const double DefaultMaximumScale = 1 << 24;

    // The fixed settings; the three counters that change every step live in fields, so an update allocates nothing
    // (the record is built only when a checkpoint asks for State).
    readonly LossScalerState _settings;
    double _scale;
    int _cleanSteps;
    long _skippedSteps;

    /// <summary>A scaler starting at <paramref name="initialScale"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A scale is not a positive power of two, the bounds are out of
    /// order, the initial scale is outside them, or the growth interval is below 1.</exception>
    public DynamicLossScaler(double initialScale, int growthInterval = DefaultGrowthInterval,
        double minimumScale = DefaultMinimumScale, double maximumScale = DefaultMaximumScale)
        : this(new LossScalerState(initialScale, growthInterval, minimumScale, maximumScale, 0, 0)) { }

    /// <summary>A scaler that continues from <paramref name="state"/> (from a checkpoint).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The state is inconsistent (see the other constructor; counts negative).</exception>
    public DynamicLossScaler(LossScalerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        CheckPowerOfTwo(state.MinimumScale, nameof(state.MinimumScale));
        CheckPowerOfTwo(state.MaximumScale, nameof(state.MaximumScale));
        CheckPowerOfTwo(state.Scale, nameof(state.Scale));
        if (state.MinimumScale > state.MaximumScale)
            throw new ArgumentOutOfRangeException(nameof(state), $"minimum scale {state.MinimumScale} exceeds maximum scale {state.MaximumScale}");
        if (state.Scale < state.MinimumScale || state.Scale > state.MaximumScale)
            throw new ArgumentOutOfRangeException(nameof(state), $"scale {state.Scale} is outside [{state.MinimumScale}, {state.MaximumScale}]");
        if (state.GrowthInterval < 1) throw new ArgumentOutOfRangeException(nameof(state), $"growth interval {state.GrowthInterval} must be at least 1");
        if (state.CleanSteps < 0 || state.CleanSteps >= state.GrowthInterval)
            throw new ArgumentOutOfRangeException(nameof(state), $"clean steps {state.CleanSteps} must be in [0, growth interval {state.GrowthInterval})");
        if (state.SkippedSteps < 0) throw new ArgumentOutOfRangeException(nameof(state), $"skipped steps {state.SkippedSteps} is negative");
        _settings = state;
        _scale = state.Scale;
        _cleanSteps = state.CleanSteps;
        _skippedSteps = state.SkippedSteps;
    }

    /// <summary>
    /// The first loss scale from the predicted gradient standard deviations of the tensors stored in fp16 (one per
    /// layer, unscaled, i.e. for a loss multiplied by 1): the largest power of two s with
    /// <c>s * k * max(sigma) * headroom &lt;= 65504</c>, then clamped to [minimum, maximum].
    /// </summary>
    /// <remarks>
    /// The k-sigma bound <c>k * sigma</c> stands for the largest gradient entry (8 sigma: a Gaussian entry exceeds it
    /// with probability 1.2e-15, and the bound leaves room for heavier tails); the headroom (4x) leaves room for
    /// the gradients to grow during training before the first overflow would cut the scale. Example: sigma = 1e-3
    /// gives 65504 / (8 * 4 * 1e-3) = 2,047,000, so s = 2^20.
    /// </remarks>
    /// <param name="predictedGradientStd">Per-layer predicted gradient standard deviations (all positive, finite).</param>
    /// <param name="sigmaMultiple">k of the k-sigma bound; &gt;= 1.</param>
    /// <param name="headroom">Extra factor below fp16's maximum; &gt;= 1.</param>
    /// <param name="minimumScale">Lower clamp (a power of two).</param>
    /// <param name="maximumScale">Upper clamp (a power of two).</param>
    /// <exception cref="ArgumentException">The array is empty or holds a value that is not positive and finite.</exception>
    public static double InitialScale(ReadOnlySpan<double> predictedGradientStd, double sigmaMultiple = DefaultSigmaMultiple,
        double headroom = DefaultHeadroom, double minimumScale = DefaultMinimumScale, double maximumScale = DefaultMaximumScale)
    {
        if (predictedGradientStd.IsEmpty) throw new ArgumentException("no predicted gradient standard deviation given", nameof(predictedGradientStd));
        if (!(sigmaMultiple >= 1) || double.IsInfinity(sigmaMultiple)) throw new ArgumentOutOfRangeException(nameof(sigmaMultiple), sigmaMultiple, "sigma multiple must be finite and >= 1");
        if (!(headroom >= 1) || double.IsInfinity(headroom)) throw new ArgumentOutOfRangeException(nameof(headroom), headroom, "headroom must be finite and >= 1");
        CheckPowerOfTwo(minimumScale, nameof(minimumScale));
        CheckPowerOfTwo(maximumScale, nameof(maximumScale));
        double largest = 0;
        for (int layer = 0; layer < predictedGradientStd.Length; layer++)
        {
            double sigma = predictedGradientStd[layer];
            if (!double.IsFinite(sigma) || sigma <= 0)
                throw new ArgumentException($"predicted gradient standard deviation of layer {layer} is {sigma}; it must be positive and finite", nameof(predictedGradientStd));
            largest = Math.Max(largest, sigma);
        }
        double exponent = Math.Floor(Math.Log2(Float16Max / (sigmaMultiple * headroom * largest)));
        double scale = Math.ScaleB(1.0, (int)Math.Clamp(exponent, -1000, 1000));
        // Log2 may round by an ulp across an integer; settle the exponent on the exact inequality.
        double bound = sigmaMultiple * headroom * largest;
        if (scale * bound > Float16Max) scale /= 2;
        else if (2 * scale * bound <= Float16Max) scale *= 2;
        return Math.Clamp(scale, minimumScale, maximumScale);
    }

    /// <summary>The scale to multiply the loss by for the next backward pass.</summary>
    public double Scale => _scale;

    /// <summary>1 / <see cref="Scale"/>: multiply the gradients by it before clipping and the optimizer.</summary>
    public double InverseScale => 1 / _scale;

    /// <summary>The state to store in a checkpoint.</summary>
    public LossScalerState State => _settings with { Scale = _scale, CleanSteps = _cleanSteps, SkippedSteps = _skippedSteps };

    /// <summary>Steps skipped for overflow so far.</summary>
    public long SkippedSteps => _skippedSteps;

    /// <summary>Records one step's outcome from the global norm of the scaled gradients.</summary>
    /// <param name="scaledGradientNorm">The gradient norm computed before unscaling; NaN or infinity means overflow.</param>
    /// <returns>Whether to apply or skip the step; the scale for the next step is <see cref="Scale"/>.</returns>
    /// <exception cref="LossScaleCollapsedException">The gradients overflowed at the minimum scale.</exception>
    public LossScaleOutcome Update(double scaledGradientNorm)
    {
        var s = _settings;
        if (!double.IsFinite(scaledGradientNorm))
        {
            if (_scale <= s.MinimumScale)
                throw new LossScaleCollapsedException(
                    $"gradient norm is {scaledGradientNorm} at the minimum loss scale {s.MinimumScale} (after {_skippedSteps} skipped steps): the gradients overflow even unscaled, so training has diverged");
            _scale = Math.Max(_scale / 2, s.MinimumScale);
            _cleanSteps = 0;
            _skippedSteps++;
            return LossScaleOutcome.SkippedOverflow;
        }
        if (_cleanSteps + 1 < s.GrowthInterval)
        {
            _cleanSteps++;
            return LossScaleOutcome.Applied;
        }
        _scale = Math.Min(_scale * 2, s.MaximumScale);
        _cleanSteps = 0;
        return LossScaleOutcome.AppliedAndGrew;
    }

    static void CheckPowerOfTwo(double value, string name)
    {
        // A power of two keeps scaling and unscaling exact in binary floating point.
        if (!double.IsFinite(value) || value <= 0 || Math.ScaleB(1.0, Math.ILogB(value)) != value)
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a positive power of two");
    }
}
