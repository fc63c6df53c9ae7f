using System.Globalization;
using Spectre.Console;

namespace DeepScaleLM.Cli.Display;

/// <summary>What the training loop reports to the display after a step.</summary>
/// <param name="Step">Steps completed (1-based).</param>
/// <param name="TotalSteps">Steps the run will do in all.</param>
/// <param name="Loss">Training loss of the step (nats per token).</param>
/// <param name="ValidationLoss">Validation loss when it was just measured, else null.</param>
/// <param name="TokensPerSecond">Recent training throughput.</param>
/// <param name="Elapsed">Training time so far (across resumes).</param>
internal sealed record TrainingUpdate(long Step, long TotalSteps, double Loss, double? ValidationLoss, double TokensPerSecond, TimeSpan Elapsed);

/// <summary>
/// Shows training progress: on an interactive terminal a Spectre.Console live progress bar (<see cref="Live"/>),
/// otherwise (output redirected, CI, tests) one plain line per log interval (<see cref="Plain"/>). Both show step /
/// total, loss, validation loss when known, tokens/s, elapsed time and the ETA. The ETA extrapolates the time per
/// step measured since the display's first update, so a resumed run estimates from its own pace, not from zero.
/// </summary>
internal abstract class TrainingDisplay : IDisposable
{
    TrainingUpdate? _first;

    /// <summary>The live display when standard output is an interactive terminal, else the plain one on standard output.</summary>
    public static TrainingDisplay Create(int logInterval) =>
        !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive ? Live(AnsiConsole.Console) : Plain(Console.Out, logInterval);

    /// <summary>Writes a line to <paramref name="writer"/> at every <paramref name="logInterval"/>-th step, at the
    /// last step, and whenever a validation loss comes in.</summary>
    public static TrainingDisplay Plain(TextWriter writer, int logInterval)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentOutOfRangeException.ThrowIfLessThan(logInterval, 1);
        return new PlainDisplay(writer, logInterval);
    }

    /// <summary>A live progress bar on <paramref name="console"/>, redrawn on every update; <see cref="Dispose"/> ends it.</summary>
    public static TrainingDisplay Live(IAnsiConsole console)
    {
        ArgumentNullException.ThrowIfNull(console);
        return new LiveDisplay(console);
    }

    /// <summary>Shows <paramref name="update"/>.</summary>
    /// <exception cref="ArgumentException">The step is outside [1, total].</exception>
    public void Update(TrainingUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        if (update.Step < 1 || update.Step > update.TotalSteps)
            throw new ArgumentException($"step {update.Step} is outside [1, {update.TotalSteps}]", nameof(update));
        _first ??= update;
        Show(update, Describe(update, EstimateRemaining(_first, update)));
    }

    /// <summary>Ends the display (the live bar stays on screen in its final state).</summary>
    public abstract void Dispose();

    /// <summary>Shows one update whose text is <paramref name="text"/>.</summary>
    protected abstract void Show(TrainingUpdate update, string text);

    /// <summary>Remaining time at the pace since <paramref name="first"/>; null before a second step is seen.</summary>
    static TimeSpan? EstimateRemaining(TrainingUpdate first, TrainingUpdate current)
    {
        long steps = current.Step - first.Step;
        if (steps <= 0) return null;
        double secondsPerStep = (current.Elapsed - first.Elapsed).TotalSeconds / steps;
        return TimeSpan.FromSeconds(Math.Max(0, secondsPerStep * (current.TotalSteps - current.Step)));
    }

    /// <summary>E.g. "step 200/1000  loss 3.2145  val 3.4012  12,345 tok/s  elapsed 0:01:23  ETA 0:05:32".</summary>
    internal static string Describe(TrainingUpdate update, TimeSpan? remaining)
    {
        var text = FormattableString.Invariant($"step {update.Step}/{update.TotalSteps}  loss {update.Loss:F4}");
        if (update.ValidationLoss is double validation) text += FormattableString.Invariant($"  val {validation:F4}");
        return text + FormattableString.Invariant($"  {update.TokensPerSecond:N0} tok/s  elapsed {Clock(update.Elapsed)}  ETA {(remaining is { } r ? Clock(r) : "--")}");
    }

    static string Clock(TimeSpan time) => ((long)time.TotalHours).ToString(CultureInfo.InvariantCulture) + time.ToString(@"\:mm\:ss", CultureInfo.InvariantCulture);

    sealed class PlainDisplay(TextWriter writer, int logInterval) : TrainingDisplay
    {
        protected override void Show(TrainingUpdate update, string text)
        {
            if (update.Step % logInterval == 0 || update.Step == update.TotalSteps || update.ValidationLoss is not null)
            {
                writer.WriteLine(text);
                writer.Flush();
            }
        }

        public override void Dispose() => writer.Flush();
    }

    /// <summary>Spectre's progress display runs its own refresh loop inside a callback; it runs on a background
    /// task that waits until <see cref="Dispose"/>, and updates set the shared task's value and description.</summary>
    sealed class LiveDisplay : TrainingDisplay
    {
        readonly TaskCompletionSource<ProgressTask> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly Task _run;

        public LiveDisplay(IAnsiConsole console)
        {
            _run = console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn())
                .StartAsync(async context =>
                {
                    var task = context.AddTask("starting", autoStart: true, maxValue: 1);
                    _started.SetResult(task);
                    await _finished.Task.ConfigureAwait(false);
                    task.StopTask();
                });
        }

        protected override void Show(TrainingUpdate update, string text)
        {
            Task.WhenAny(_started.Task, _run).GetAwaiter().GetResult();
            if (!_started.Task.IsCompleted) _run.GetAwaiter().GetResult(); // the display failed to start: rethrow why
            var task = _started.Task.Result;
            task.MaxValue = update.TotalSteps;
            task.Value = update.Step;
            task.Description = Markup.Escape(text);
        }

        public override void Dispose()
        {
            _finished.TrySetResult();
            _run.GetAwaiter().GetResult();
        }
    }
}
