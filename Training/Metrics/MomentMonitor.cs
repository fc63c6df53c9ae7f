namespace DeepScaleLM.Training.Metrics;

/// <summary>One layer whose measured moment left the allowed band around the prediction.</summary>
/// <param name="Quantity">"residual variance" or "gradient variance".</param>
/// <param name="Layer">0-based index into the arrays compared.</param>
/// <param name="Measured">The measured value.</param>
/// <param name="Predicted">The theory's value.</param>
/// <param name="Ratio">Measured / predicted (NaN or infinite when the measurement is not finite).</param>
/// <param name="Factor">The band [1/Factor, Factor] the ratio left.</param>
public sealed record MomentWarning(string Quantity, int Layer, double Measured, double Predicted, double Ratio, double Factor)
{
    /// <summary>E.g. "layer 37 residual variance 4.1 is 2.3x the predicted 1.78 (allowed 1/2..2x)".</summary>
    public override string ToString() =>
        $"layer {Layer} {Quantity} {Measured:G4} is {Ratio:G3}x the predicted {Predicted:G4} (allowed 1/{Factor:G3}..{Factor:G3}x)";
}

/// <summary>The comparison of one monitoring step: per-layer ratios measured / predicted and the warnings.</summary>
/// <param name="ResidualVariance">Measured residual-stream variance per layer.</param>
/// <param name="ResidualVarianceRatio">Measured / predicted residual variance per layer.</param>
/// <param name="GradientVariance">Measured gradient variance per layer.</param>
/// <param name="GradientVarianceRatio">Measured / predicted gradient variance per layer.</param>
/// <param name="Warnings">Layers whose ratio is outside [1/f, f] or not finite, residual ones first, by layer.</param>
public sealed record MomentReport(double[] ResidualVariance, double[] ResidualVarianceRatio, double[] GradientVariance,
    double[] GradientVarianceRatio, IReadOnlyList<MomentWarning> Warnings)
{
    /// <summary><paramref name="entry"/> with this report's arrays (<c>residual_variance</c>,
    /// <c>residual_variance_ratio</c>, <c>gradient_variance</c>, <c>gradient_variance_ratio</c>) and warnings added.</summary>
    public MetricsEntry AddTo(MetricsEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var arrays = new Dictionary<string, double[]>(entry.Arrays ?? new Dictionary<string, double[]>(), StringComparer.Ordinal)
        {
            ["residual_variance"] = ResidualVariance,
            ["residual_variance_ratio"] = ResidualVarianceRatio,
            ["gradient_variance"] = GradientVariance,
            ["gradient_variance_ratio"] = GradientVarianceRatio,
        };
        var warnings = (entry.Warnings ?? []).Concat(Warnings.Select(w => w.ToString())).ToArray();
        return entry with { Arrays = arrays, Warnings = warnings.Length > 0 ? warnings : null };
    }
}

/// <summary>
/// Compares measured per-layer moments with the theory's prediction for the same model (the moment monitor of the
/// training loop): the ratio measured / predicted of the residual-stream variance and of the gradient variance, and
/// a warning for every layer whose ratio leaves [1/f, f]. A ratio is scale-free, so the same factor serves every
/// depth; f = 2 (the default) tolerates the sampling noise of a batch and the approximation error of the formulas
/// (a few percent to ~10% per component, docs/theory.md) while catching a stream that has started to drift.
/// </summary>
public sealed class MomentMonitor
{
    /// <summary>The default band factor f.</summary>
    public const double DefaultFactor = 2;

    readonly double[] _predictedResidualVariance;
    readonly double[] _predictedGradientVariance;

    /// <summary>A monitor for one model's predictions.</summary>
    /// <param name="predictedResidualVariance">Predicted residual variance per layer (positive, finite).</param>
    /// <param name="predictedGradientVariance">Predicted gradient variance per layer (positive, finite).</param>
    /// <param name="factor">f of the band [1/f, f]; &gt; 1.</param>
    /// <exception cref="ArgumentException">A prediction is not positive and finite (the message names the array and layer).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="factor"/> is not &gt; 1 and finite.</exception>
    public MomentMonitor(double[] predictedResidualVariance, double[] predictedGradientVariance, double factor = DefaultFactor)
    {
        ArgumentNullException.ThrowIfNull(predictedResidualVariance);
        ArgumentNullException.ThrowIfNull(predictedGradientVariance);
        if (!(factor > 1) || double.IsInfinity(factor)) throw new ArgumentOutOfRangeException(nameof(factor), factor, "factor must be finite and > 1");
        CheckPredictions(predictedResidualVariance, nameof(predictedResidualVariance));
        CheckPredictions(predictedGradientVariance, nameof(predictedGradientVariance));
        _predictedResidualVariance = (double[])predictedResidualVariance.Clone();
        _predictedGradientVariance = (double[])predictedGradientVariance.Clone();
        Factor = factor;
    }

    /// <summary>f of the band [1/f, f].</summary>
    public double Factor { get; }

    /// <summary>Compares one step's measurements with the predictions.</summary>
    /// <exception cref="ArgumentException">An array's length differs from its prediction's (the message names both).</exception>
    public MomentReport Compare(ReadOnlySpan<double> measuredResidualVariance, ReadOnlySpan<double> measuredGradientVariance)
    {
        var warnings = new List<MomentWarning>();
        var residualRatio = Ratios("residual variance", measuredResidualVariance, _predictedResidualVariance, nameof(measuredResidualVariance), warnings);
        var gradientRatio = Ratios("gradient variance", measuredGradientVariance, _predictedGradientVariance, nameof(measuredGradientVariance), warnings);
        return new MomentReport(measuredResidualVariance.ToArray(), residualRatio, measuredGradientVariance.ToArray(), gradientRatio, warnings);
    }

    double[] Ratios(string quantity, ReadOnlySpan<double> measured, double[] predicted, string name, List<MomentWarning> warnings)
    {
        if (measured.Length != predicted.Length)
            throw new ArgumentException($"{name} has {measured.Length} layers but the prediction has {predicted.Length}", name);
        var ratios = new double[measured.Length];
        for (int layer = 0; layer < measured.Length; layer++)
        {
            double ratio = measured[layer] / predicted[layer];
            ratios[layer] = ratio;
            // Written so that NaN fails the test too.
            if (!(ratio >= 1 / Factor && ratio <= Factor))
                warnings.Add(new MomentWarning(quantity, layer, measured[layer], predicted[layer], ratio, Factor));
        }
        return ratios;
    }

    static void CheckPredictions(double[] predicted, string name)
    {
        for (int layer = 0; layer < predicted.Length; layer++)
            if (!double.IsFinite(predicted[layer]) || predicted[layer] <= 0)
                throw new ArgumentException($"{name}[{layer}] is {predicted[layer]}; predictions must be positive and finite", name);
    }
}
