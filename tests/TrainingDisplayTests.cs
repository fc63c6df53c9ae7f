using DeepScaleLM.Cli.Display;
using Spectre.Console;

namespace DeepScaleLM.Tests;

/// <summary>The training display: the plain (redirected) mode writes exactly the expected line per log interval,
/// with an ETA from the pace since the first update; the live mode renders the same text through Spectre.Console.</summary>
public sealed class TrainingDisplayTests
{
    static TrainingUpdate At(long step, double seconds, double? validation = null) =>
        new(step, 100, 5 - step / 100.0, validation, 12345.6, TimeSpan.FromSeconds(seconds));

    [Fact]
    public void PlainModeWritesOneLinePerLogIntervalTheLastStepAndValidation()
    {
        var output = new StringWriter();
        using (var display = TrainingDisplay.Plain(output, logInterval: 25))
        {
            // A run resumed at step 40 after 400 s, then 2 s per step.
            for (int step = 41; step <= 100; step++) display.Update(At(step, 400 + 2 * (step - 40), step == 60 ? 4.5 : null));
        }
        // ETA at step s: 2 s/step * (100 - s) steps left, measured from step 41 (not from step 0 at 0 s).
        Assert.Equal(
            "step 50/100  loss 4.5000  12,346 tok/s  elapsed 0:07:00  ETA 0:01:40\n" +
            "step 60/100  loss 4.4000  val 4.5000  12,346 tok/s  elapsed 0:07:20  ETA 0:01:20\n" +
            "step 75/100  loss 4.2500  12,346 tok/s  elapsed 0:07:50  ETA 0:00:50\n" +
            "step 100/100  loss 4.0000  12,346 tok/s  elapsed 0:08:40  ETA 0:00:00\n",
            output.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void FirstUpdateHasNoEtaAndLongRunsShowHours()
    {
        Assert.Equal("step 1/100  loss 4.9900  12,346 tok/s  elapsed 26:00:05  ETA --",
            TrainingDisplay.Describe(At(1, 26 * 3600 + 5), remaining: null));
    }

    [Fact]
    public void StepOutsideTheRunIsRejected()
    {
        using var display = TrainingDisplay.Plain(new StringWriter(), 1);
        Assert.Contains("step 101 is outside [1, 100]", Assert.Throws<ArgumentException>(() => display.Update(At(101, 1))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TrainingDisplay.Plain(new StringWriter(), 0));
    }

    [Fact]
    public void LiveModeRendersTheProgressThroughSpectre()
    {
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = AnsiSupport.Yes,
            Interactive = InteractionSupport.Yes,
            ColorSystem = ColorSystemSupport.NoColors,
        });
        console.Profile.Width = 160;
        using (var display = TrainingDisplay.Live(console))
        {
            display.Update(At(10, 10));
            display.Update(At(20, 30));
        }
        string text = output.ToString();
        Assert.Contains("step 20/100  loss 4.8000  12,346 tok/s  elapsed 0:00:30  ETA 0:02:40", text);
        Assert.Contains("20%", text);
    }
}
