using System.Diagnostics;
using DeepScaleLM.Native;

namespace DeepScaleLM.Cli.Demo;

/// <summary>What a demo run measured.</summary>
/// <param name="Losses">Training loss of every step, in order.</param>
/// <param name="InitialStreamMoments">Residual-stream moments entering each block (and after the last) at init.</param>
/// <param name="TokensPerSecond">Training throughput over all steps.</param>
internal sealed record DemoResult(float[] Losses, MomentStatistics[] InitialStreamMoments, double TokensPerSecond);

/// <summary>Trains the <see cref="DemoModel"/> on the embedded text and reports loss, throughput and moments.</summary>
internal static class DemoRun
{
    public static DemoResult Run(Backend backend, DemoConfig config, TextWriter output)
    {
        using var model = new DemoModel(backend, config);
        var text = DemoText.Tokens();
        var random = new Random(config.Seed);
        int rows = config.Batch * config.Tokens;
        var tokens = new int[rows];
        var targets = new int[rows];
        output.WriteLine($"demo: {config.Layers}-block causal byte-level transformer, d = {config.Channels}, {config.Heads} heads, " +
                         $"T = {config.Tokens}, batch {config.Batch}, {model.ParameterCount:N0} parameters on {backend.Device}");
        output.WriteLine($"      DSLM residual scaling lambda = {model.Residual.Lambda:F4}, beta = {model.Residual.Beta:F4} (lambda^2 + beta^2 = 1)");

        void SampleBatch()
        {
            for (int b = 0; b < config.Batch; b++)
            {
                int start = random.Next(text.Length - config.Tokens - 1);
                for (int t = 0; t < config.Tokens; t++)
                {
                    tokens[b * config.Tokens + t] = text[start + t];
                    targets[b * config.Tokens + t] = text[start + t + 1];
                }
            }
        }

        // Moments at init, before any update: DSLM keeps the residual stream near unit variance at every depth.
        SampleBatch();
        model.Forward(tokens, targets, dropoutOffset: 0);
        var moments = model.StreamMoments();
        output.WriteLine("      residual stream at init (layer: mean, variance, token correlation):");
        for (int l = 0; l < moments.Length; l++)
            output.WriteLine($"        {l,3}: {moments[l].Mean,8:F4} {moments[l].Variance,8:F4} {moments[l].Correlation,8:F4}");

        var losses = new float[config.Steps];
        var clock = Stopwatch.StartNew();
        for (int step = 1; step <= config.Steps; step++)
        {
            SampleBatch();
            ulong offset = (ulong)step * (ulong)(2 * config.Layers);
            float loss = model.Forward(tokens, targets, offset);
            if (!float.IsFinite(loss))
                throw new InvalidOperationException($"loss became {loss} at step {step}; stopping before the weights are updated");
            model.Backward(offset);
            double norm = model.Step(step, config.LearningRate, maxNorm: 1f);
            losses[step - 1] = loss;
            if (step == 1 || step % 10 == 0 || step == config.Steps)
                output.WriteLine($"step {step,5}  loss {loss:F4}  grad norm {norm:F3}  {clock.Elapsed.TotalMilliseconds / step:F1} ms/step");
        }
        double tokensPerSecond = config.Steps == 0 ? 0 : (double)config.Steps * rows / clock.Elapsed.TotalSeconds;
        output.WriteLine($"done: {tokensPerSecond:N0} tokens/s" + (config.Steps > 0 ? $", loss {losses[0]:F4} -> {losses[^1]:F4}" : ""));
        return new DemoResult(losses, moments, tokensPerSecond);
    }
}
