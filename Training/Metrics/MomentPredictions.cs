using DeepScaleLM.Layers;
using DeepScaleLM.Theory;

namespace DeepScaleLM.Training.Metrics;

/// <summary>
/// The moment monitor's link between a model and the theory: what each monitored block's output should measure at
/// init, and the measurement itself. Pre-LN stacks are predicted by Theory's <see cref="DepthRecursion"/> for the
/// model's own init plan and attention (causal or bidirectional, over the run's context). Post-LN block outputs are LayerNorm outputs and vanilla E-SPA streams are unit-variance by
/// construction, so their residual prediction is 1, and their gradient prediction is DSLM's flat target (section 4 of
/// dslm-theory.md): a Post-LN Xavier model, whose gradients the theory says decay with depth, warns — as it should.
/// Gradient variances are compared as profiles over depth: both the prediction and the measurement are divided by
/// their value at the last monitored block, since the absolute scale depends on the batch (the loss is a mean).
/// </summary>
public static class MomentPredictions
{
    /// <summary>A monitor for <paramref name="model"/>'s monitored blocks (<see cref="TransformerModel.MonitoredBlocks"/>).</summary>
    /// <param name="model">The model at init.</param>
    /// <param name="factor">How far (as a ratio either way) a measurement may be from its prediction.</param>
    /// <param name="tokenCorrelation">r0 of the data the model sees (<see cref="Trainer.DataTokenCorrelation"/>): the
    /// theory's input, which an init designed for another r0 (the official 0.221) does not change.</param>
    public static MomentMonitor Monitor(TransformerModel model, double factor, double tokenCorrelation)
    {
        ArgumentNullException.ThrowIfNull(model);
        var blocks = model.MonitoredBlocks;
        var residual = new double[blocks.Count];
        var gradient = new double[blocks.Count];
        Array.Fill(residual, 1.0);
        Array.Fill(gradient, 1.0);
        if (model.Config.Norm == Layers.NormPlacement.Pre && model.TheoryPlan() is { } theory)
        {
            // The model's own attention: causal unless it is an encoder; the op has no dropout on the probabilities.
            var shape = theory.Shape with { Causal = model.Config.Kind != ModelKind.Encoder, AttentionDropout = 0 };
            var layers = DepthRecursion.Predict(shape, theory.Plan, Theory.NormPlacement.PreLayerNorm, tokenCorrelation).Layers.ToArray();
            for (int i = 0; i < blocks.Count; i++)
            {
                // Only the main (last) stack is predicted; an encoder's blocks keep the unit targets.
                if (!blocks[i].StartsWith(MainStack(model), StringComparison.Ordinal)) continue;
                int layer = BlockIndex(blocks[i]);
                residual[i] = layers[layer].Stream.Variance;
                gradient[i] = layers[layer].StreamGradient.Variance;
            }
        }
        Normalize(gradient);
        return new MomentMonitor(residual, gradient, factor);
    }

    /// <summary>Measures the last forward and backward of <paramref name="model"/> and compares them with <paramref name="monitor"/>.</summary>
    public static MomentReport Measure(TransformerModel model, MomentMonitor monitor)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(monitor);
        var residual = model.ForwardMoments().Select(m => m.Variance).ToArray();
        var gradient = model.GradientMoments().Select(m => m.Variance).ToArray();
        Normalize(gradient);
        return monitor.Compare(residual, gradient);
    }

    private static string MainStack(TransformerModel model) => model.Config.Kind == ModelKind.Encoder ? "encoder." : "decoder.";

    private static int BlockIndex(string name) => int.Parse(name[(name.LastIndexOf('.') + 1)..], System.Globalization.CultureInfo.InvariantCulture);

    // Divide by the last entry (a zero or non-finite last entry leaves the profile as measured, and the monitor flags it).
    private static void Normalize(double[] values)
    {
        double last = values.Length > 0 ? values[^1] : 1;
        if (last > 0 && double.IsFinite(last))
            for (int i = 0; i < values.Length; i++) values[i] /= last;
    }
}
