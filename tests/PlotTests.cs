using DeepScaleLM.Cli.Plotting;

namespace DeepScaleLM.Tests;

/// <summary><see cref="LineChart"/>: PNG and SVG output headless, and clear errors for series it cannot draw.</summary>
public sealed class PlotTests
{
    private static readonly double[] Xs = [0, 1, 2, 3];

    private static LineChart Chart(bool logY = false) => new LineChart("loss", "step", "nats", logY)
        .Add(new ChartSeries("theory", Xs, [1, 2, 4, 8], Dashed: true, ColorIndex: 0))
        .Add(new ChartSeries("measured", Xs, [1.1, 2.1, 3.9, 8.2], ColorIndex: 0, Lower: [1, 2, 3.5, 7], Upper: [1.2, 2.2, 4.2, 9]));

    [Theory]
    [InlineData(".png", false)]
    [InlineData(".svg", true)]
    public void SavesTheFormatTheExtensionNames(string extension, bool logY)
    {
        string path = Path.Combine(Path.GetTempPath(), $"dslm-chart-{Guid.NewGuid():N}{extension}");
        try
        {
            Chart(logY).Save(path, 400, 300);
            var bytes = File.ReadAllBytes(path);
            if (extension == ".png") Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
            else Assert.Contains("<svg", System.Text.Encoding.UTF8.GetString(bytes));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void RejectsWhatItCannotDraw()
    {
        var chart = new LineChart("t", "x", "y", logY: true);
        Assert.Contains("2 y values", Assert.Throws<ArgumentException>(() => chart.Add(new ChartSeries("a", Xs, [1, 2]))).Message);
        Assert.Contains("<= 0", Assert.Throws<ArgumentException>(() => chart.Add(new ChartSeries("b", Xs, [1, 0, 2, 3]))).Message);
        Assert.Contains("one band edge", Assert.Throws<ArgumentException>(() => chart.Add(new ChartSeries("c", Xs, [1, 1, 2, 3], Lower: Xs))).Message);
        Assert.Contains("no series", Assert.Throws<InvalidOperationException>(() => chart.Save("unused.png")).Message);
    }
}
