using System.Diagnostics;
using DeepScaleLM.Cli.Display;
using DeepScaleLM.Cli.Plotting;
using DeepScaleLM.Training;
using DeepScaleLM.Training.Evaluation;
using DeepScaleLM.Training.Metrics;

namespace DeepScaleLM.Cli;

/// <summary>
/// Drives a <see cref="Trainer"/> to its last step for <c>dslm train</c>: the display, a metrics line every
/// <see cref="TrainingOptions.LogEvery"/> steps, validation every <see cref="TrainingOptions.EvalEvery"/>, the
/// moment monitor every <see cref="TrainingOptions.MonitorEvery"/>, a checkpoint every
/// <see cref="TrainingOptions.CheckpointEvery"/> and at the end, and the loss curve.
/// </summary>
internal static class TrainingLoop
{
    /// <summary>Trains until the last step, step <paramref name="stopAt"/>, or <paramref name="interrupt"/> (Ctrl-C),
    /// whichever comes first; an early stop saves a checkpoint that <c>--resume</c> continues exactly.</summary>
    public static void Run(Trainer trainer, string folder, TextWriter output, long? stopAt, CancellationToken interrupt)
    {
        var options = trainer.Options;
        var config = trainer.Model.Config;
        string checkpoint = Path.Combine(folder, TrainCommand.CheckpointFolder);
        string metricsPath = Path.Combine(folder, TrainCommand.MetricsFile);
        output.WriteLine($"model: {config.Kind.ToString().ToLowerInvariant()}, {config.Layers} blocks, d = {config.ModelWidth}, {config.Heads} heads, " +
            $"{config.Norm.ToString().ToLowerInvariant()}-norm, {config.Init.ToString().ToLowerInvariant()} init, {config.Precision.ToString().ToLowerInvariant()}, " +
            $"{trainer.Model.ParameterCount:N0} parameters, {trainer.Model.Memory.TotalBytes / 1048576.0:F1} MiB on {trainer.Model.Backend.Device}");
        output.WriteLine(trainer.Step > 0
            ? $"resuming at step {trainer.Step} of {options.Steps}"
            : $"run: {options.Steps} steps of {options.AccumulationSteps} x {options.BatchSize} x {trainer.Model.Tokens} tokens, lr {options.LearningRate} ({options.Schedule.ToString().ToLowerInvariant()}), seed {options.Seed}");
        output.WriteLine($"output: {folder} ({TrainCommand.MetricsFile}, {TrainCommand.CheckpointFolder}/)");
        var monitor = options.MonitorEvery > 0 ? MomentPredictions.Monitor(trainer.Model, options.MonitorFactor, trainer.DataTokenCorrelation) : null;

        // The last step always evaluates; its result is the final report (evaluated again only if no step ran).
        EvaluationMetrics? latest = null;
        using var log = trainer.Step > 0 && File.Exists(metricsPath) ? MetricsLog.Resume(metricsPath, trainer.Step) : MetricsLog.Create(metricsPath);
        using (var display = ReferenceEquals(output, Console.Out) ? TrainingDisplay.Create(options.LogEvery) : TrainingDisplay.Plain(output, options.LogEvery))
        {
            var interval = Stopwatch.StartNew();
            long intervalTokens = 0;
            while (!trainer.Finished && trainer.Step < (stopAt ?? long.MaxValue) && !interrupt.IsCancellationRequested)
            {
                var result = trainer.TrainStep();
                intervalTokens += result.Tokens;
                long step = result.Step;
                double? validation = null;
                if ((options.EvalEvery > 0 && step % options.EvalEvery == 0) || trainer.Finished)
                {
                    latest = trainer.Evaluate();
                    validation = latest.Value.MeanLoss;
                }
                double tokensPerSecond = intervalTokens / Math.Max(interval.Elapsed.TotalSeconds, 1e-9);
                display.Update(new TrainingUpdate(step, options.Steps, result.Loss, validation, tokensPerSecond, TimeSpan.FromSeconds(trainer.ElapsedSeconds)));
                bool monitorNow = monitor is not null && (step == 1 || step % options.MonitorEvery == 0);
                if (step % options.LogEvery == 0 || trainer.Finished || validation is not null || monitorNow || result.Skipped)
                {
                    var entry = new MetricsEntry(step, result.Loss, result.LearningRate, result.GradientNorm, tokensPerSecond, result.LossScale,
                        trainer.ElapsedSeconds) { ValidationLoss = validation };
                    if (monitorNow)
                    {
                        var report = MomentPredictions.Measure(trainer.Model, monitor!);
                        entry = report.AddTo(entry);
                        // One line per monitor step on the console (every warning is in the metrics line): training moves
                        // the moments away from their init-time prediction, so several blocks at once is the usual case.
                        if (report.Warnings.Count > 0)
                        {
                            var worst = report.Warnings.MaxBy(w => Math.Abs(Math.Log(Math.Abs(w.Ratio))))!;
                            output.WriteLine($"monitor: step {step}: {report.Warnings.Count} moment(s) of {2 * report.ResidualVariance.Length} " +
                                $"outside 1/{monitor!.Factor:G3}..{monitor.Factor:G3}x the theory; furthest: {worst}");
                        }
                    }
                    log.Append(entry);
                    interval.Restart();
                    intervalTokens = 0;
                }
                if ((options.CheckpointEvery > 0 && step % options.CheckpointEvery == 0) || trainer.Finished)
                    trainer.SaveCheckpoint(checkpoint);
            }
        }
        if (!trainer.Finished)
        {
            trainer.SaveCheckpoint(checkpoint);
            output.WriteLine($"stopped at step {trainer.Step} of {options.Steps} ({(interrupt.IsCancellationRequested ? "interrupted" : "--stop-at")}); " +
                $"continue with: dslm train --resume {checkpoint} --out {folder}");
            return;
        }
        string lossPlot = Path.Combine(folder, TrainCommand.LossPlotFile);
        LossCurve(MetricsLog.Read(metricsPath), $"{config.Layers}-block {config.Init.ToString().ToLowerInvariant()} {config.Norm.ToString().ToLowerInvariant()}-norm {config.Kind.ToString().ToLowerInvariant()}")
            .Save(lossPlot);
        var final = latest ?? trainer.Evaluate();
        output.WriteLine($"done: step {trainer.Step}, validation loss {final.MeanLoss:F4} nats, perplexity {final.Perplexity:F2}, " +
            $"{final.BitsPerByte:F3} bits per byte; {trainer.TokensSeen:N0} tokens in {trainer.ElapsedSeconds:F1} s; checkpoint {checkpoint}; loss curve {lossPlot}");
    }

    /// <summary>Training and validation loss against the step, from a metrics log (the lines of every resumed part).</summary>
    public static LineChart LossCurve(IReadOnlyList<MetricsEntry> log, string title)
    {
        var chart = new LineChart($"loss: {title}", "step", "loss (nats per token)");
        chart.Add(new ChartSeries("training", [.. log.Select(e => (double)e.Step)], [.. log.Select(e => e.Loss)]));
        var validation = log.Where(e => e.ValidationLoss is not null).ToList();
        if (validation.Count > 0)
            chart.Add(new ChartSeries("validation", [.. validation.Select(e => (double)e.Step)], [.. validation.Select(e => e.ValidationLoss!.Value)], Dashed: true));
        return chart;
    }
}
