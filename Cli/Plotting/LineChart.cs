using ScottPlot;

namespace DeepScaleLM.Cli.Plotting;

/// <summary>One named line of a <see cref="LineChart"/>.</summary>
/// <param name="Name">The legend text.</param>
/// <param name="Xs">The x values.</param>
/// <param name="Ys">The y values, as many as <paramref name="Xs"/>.</param>
/// <param name="Dashed">Dashed (by convention a theory prediction) rather than solid (a measurement).</param>
/// <param name="ColorIndex">Which palette colour; series of the same quantity (theory and measurement) share one.
/// Null takes the series' position in the chart.</param>
/// <param name="Lower">An optional band drawn shaded from Lower to Upper (e.g. the spread over seeds), as many as Xs.</param>
/// <param name="Upper">The band's upper edge.</param>
internal sealed record ChartSeries(string Name, IReadOnlyList<double> Xs, IReadOnlyList<double> Ys, bool Dashed = false,
    int? ColorIndex = null, IReadOnlyList<double>? Lower = null, IReadOnlyList<double>? Upper = null);

/// <summary>
/// A line chart saved as PNG, or SVG when the path ends in .svg: a title, axis labels, an optional logarithmic y axis,
/// several named series (dashed for theory, solid for measurement) with optional shaded bands. One small surface over
/// ScottPlot 5 for every figure dslm draws: theory per layer, theory against simulation, training loss curves.
/// ScottPlot draws with SkiaSharp's self-contained Linux build, so it needs no display and no system fonts.
/// </summary>
internal sealed class LineChart(string title, string xLabel, string yLabel, bool logY = false)
{
    private readonly List<ChartSeries> _series = [];

    /// <summary>The series added so far.</summary>
    public IReadOnlyList<ChartSeries> Series => _series;

    /// <summary>Adds a series.</summary>
    /// <exception cref="ArgumentException">The lengths disagree, a band edge is missing, or (with a log y axis) a value is not positive.</exception>
    public LineChart Add(ChartSeries series)
    {
        if (series.Xs.Count != series.Ys.Count)
            throw new ArgumentException($"Series '{series.Name}' has {series.Xs.Count} x values but {series.Ys.Count} y values.", nameof(series));
        if ((series.Lower is null) != (series.Upper is null))
            throw new ArgumentException($"Series '{series.Name}' gives one band edge without the other.", nameof(series));
        if (series.Lower is not null && (series.Lower.Count != series.Xs.Count || series.Upper!.Count != series.Xs.Count))
            throw new ArgumentException($"Series '{series.Name}' has a band of a different length than its {series.Xs.Count} points.", nameof(series));
        if (logY && Values(series).Any(value => !(value > 0)))
            throw new ArgumentException($"Series '{series.Name}' has a value <= 0, which a logarithmic y axis cannot show.", nameof(series));
        _series.Add(series);
        return this;
    }

    /// <summary>Draws the chart and writes it to <paramref name="path"/>: SVG if it ends in .svg, else PNG.</summary>
    /// <param name="path">The output file; its folder must exist.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <exception cref="InvalidOperationException">The chart has no series.</exception>
    public void Save(string path, int width = 900, int height = 540)
    {
        if (_series.Count == 0) throw new InvalidOperationException($"Chart '{title}' has no series to draw.");
        var plot = new Plot();
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(logY ? $"{yLabel} (log scale)" : yLabel);
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < _series.Count; i++)
        {
            var series = _series[i];
            var color = palette.GetColor(series.ColorIndex ?? i);
            double[] xs = [.. series.Xs];
            if (series.Lower is not null)
            {
                var band = plot.Add.FillY(xs, Transform(series.Lower), Transform(series.Upper!));
                band.FillStyle.Color = color.WithAlpha(0.2);
                band.LineStyle.Width = 0;
            }
            var line = plot.Add.ScatterLine(xs, Transform(series.Ys));
            line.LegendText = series.Name;
            line.Color = color;
            line.LineWidth = 2;
            line.LinePattern = series.Dashed ? LinePattern.Dashed : LinePattern.Solid;
        }
        if (logY)
        {
            // ScottPlot 5 draws log scales as log10 of the data with ticks labelled back in the original units.
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
                LabelFormatter = exponent => Math.Pow(10, exponent).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
            };
        }
        plot.ShowLegend();
        if (path.EndsWith(".svg", StringComparison.OrdinalIgnoreCase)) plot.SaveSvg(path, width, height);
        else plot.SavePng(path, width, height);
    }

    private double[] Transform(IReadOnlyList<double> values) => logY ? values.Select(Math.Log10).ToArray() : [.. values];

    private static IEnumerable<double> Values(ChartSeries series) =>
        series.Ys.Concat(series.Lower ?? []).Concat(series.Upper ?? []);
}
