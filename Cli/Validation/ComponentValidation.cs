using DeepScaleLM.Native;
using DeepScaleLM.Theory;
using DeepScaleLM.Theory.Components;

namespace DeepScaleLM.Cli.Validation;

/// <summary>The five quantities dslm-theory.md 5.1 reports per component.</summary>
internal static class Quantity
{
    public static readonly string[] All = ["x mean", "x var", "x cov", "g var", "g cov"];
}

/// <summary>The 50th/90th/99th-percentile relative errors (in %) of one quantity, measured, beside the paper's.</summary>
internal sealed record QuantityResult(string Quantity, double P50, double P90, double P99, double[] Paper)
{
    public double[] Measured => [P50, P90, P99];
}

/// <summary>All quantities of one component over its grid.</summary>
internal sealed record ComponentResult(string Component, int Settings, QuantityResult[] Quantities);

/// <summary>
/// <c>dslm validate</c>'s engine: the component grids of dslm-theory.md 5.1 run through <see cref="ComponentProbe"/>,
/// compared with the Theory formulas. Error = |actual - pred| / |actual|, or / pred variance where the prediction
/// is 0 (the official calc_err). Quick mode runs a documented subset of each grid with smaller samples.
/// </summary>
internal static class ComponentValidation
{
    /// <summary>The paper's 5.1 table: p50/p90/p99 in % per component, in <see cref="Quantity.All"/> order
    /// (LayerNorm's x cov is the token covariance); null where the table has no entry (Softmax's covariances), which
    /// is then neither reported nor checked. Softmax has a row per variance formula: V1 (approximate) and V2 (full).</summary>
    public static readonly IReadOnlyDictionary<string, double[]?[]> Paper = new Dictionary<string, double[]?[]>
    {
        ["Linear"] = [[0, 0.4, 1.3], [0.4, 1.4, 2.8], [0.4, 1.4, 2.8], [0.2, 1.0, 2.2], [0.2, 1.0, 2.2]],
        ["ReLU"] = [[0.3, 1.3, 2.3], [0.5, 1.9, 3.4], [0.3, 1.6, 3.1], [0.6, 1.5, 2.6], [0.2, 1.1, 2.3]],
        ["GeLU"] = [[0.1, 1.0, 2.4], [0.2, 0.6, 1.3], [0.1, 0.5, 1.2], [0.2, 0.6, 1.1], [0.1, 0.4, 0.9]],
        ["LayerNorm"] = [[1.4e-5, 9.3e-5, 1.4e-4], [0, 0, 0], [0.1, 0.5, 1.0], [0.4, 1.5, 3.2], [0.2, 0.9, 2.2]],
        ["Dropout"] = [[0, 0.1, 0.5], [0.1, 0.5, 1.5], [0, 0.4, 1.3], [0.1, 0.7, 1.5], [0.1, 0.5, 1.2]],
        ["Softmax V1"] = [[0, 0, 0], [0.1, 0.5, 2.6], null, [0.1, 0.6, 3.7], null],
        ["Softmax V2"] = [[0, 0, 0], [0.2, 0.9, 4.0], null, [0.1, 0.6, 4.5], null],
        ["SHA"] = [[0.2, 1.0, 2.5], [1.4, 4.1, 7.8], [1.3, 3.9, 7.4], [2.2, 13.3, 44.5], [1.6, 4.5, 8.2]],
    };

    /// <summary>
    /// Absolute slack in percentage points added to the paper's value before a run fails. Full: 0.05 (float32 ops and
    /// LayerNorm's epsilon put ~1e-3 % on quantities the paper reports as exactly 0). Quick: its samples are ~100x
    /// smaller than the paper's and its grids have 4-12 settings (p90 is close to the maximum), so sampling noise alone
    /// moves a percentile by points: over seeds 1-24 the largest excess over the paper was 4.3 points (Linear; GeLU
    /// 2.9, Dropout 2.5, the others under 1.9) and 6.6 for SHA (64 batch entries per setting). Quick allows 5 points, 8
    /// for SHA: a regression guard that still fails a formula off by 10% (tests/ValidateCommandTests.cs), not a
    /// reproduction of the table, which is the full run's job.
    /// </summary>
    public static double Slack(bool quick, string component) => !quick ? 0.05 : component == "SHA" ? 8.0 : 5.0;

    /// <summary>One grid point: input moments, incoming gradient moments, sequence length and component sizes.</summary>
    internal sealed record Setting(SignalMoments Input, GradientMoments Gradient, int Tokens, int Width, int FanOut, double Parameter)
    {
        /// <summary>SHA's sq2 (the Parameter is its sv2, FanOut its head width dk).</summary>
        public double QueryKeyVariance { get; init; }
    }

    private static double[] LogSpace(double from, double to, int count) =>
        Enumerable.Range(0, count).Select(i => Math.Pow(10, from + (to - from) * i / (count - 1))).ToArray();

    private static IEnumerable<T> Pick<T>(bool quick, T[] full, params int[] quickIndices) =>
        quick ? quickIndices.Select(i => full[i]) : full;

    /// <summary>
    /// The grid of one component: dslm-theory.md 5.1's lists, or with <paramref name="quick"/> the subset that keeps
    /// the extreme ends of the widest axes (documented in docs/theory.md "Validate"): L = 8 (the noise of every statistic is set by the batch x channel samples, not by L), the
    /// smallest widths (100), and a subset of each other axis (the Pick indices below; listed in docs/theory.md), e.g. ReLU/GeLU s in {1, sqrt 10}
    /// (at s = 1/sqrt 10 the mean is small against its sampling noise) and Dropout mu = 0 only (with mu = +-10 the
    /// token covariance is ~3% of the variance, below quick's sampling noise; the full grid keeps them).
    /// </summary>
    public static IEnumerable<Setting> Grid(string component, bool quick)
    {
        int[] lengths = quick ? [8] : [100, 1000];
        int[] widths = quick ? [100] : [100, 316, 1000];
        double[] thirds = [0, 1.0 / 3, 2.0 / 3], fifths = [0, 0.2, 0.4, 0.6, 0.8];
        double[] stds = LogSpace(-0.5, 0.5, 3);
        switch (component)
        {
            case "Linear":
                foreach (double mu in Pick(quick, LogSpace(-1, 1, 3), 1, 2))
                foreach (double s in Pick(quick, stds, 0, 2))
                foreach (double r in Pick(quick, thirds, 0, 2))
                foreach (double sw in Pick(quick, LogSpace(-1, 1, 3), 1))
                foreach (double g in Pick(quick, stds, 2))
                foreach (double rg in Pick(quick, thirds, 0, 2))
                foreach (int din in widths)
                foreach (int dout in widths)
                foreach (int l in lengths)
                    yield return new Setting(new SignalMoments(mu, s * s, r), new GradientMoments(g * g, rg), l, din, dout, sw * sw / din);
                break;
            case "ReLU" or "GeLU":
                foreach (double s in Pick(quick, stds, 1, 2))
                foreach (double r in Pick(quick, fifths, 0, 2, 4))
                foreach (double rg in Pick(quick, fifths, 0, 4))
                foreach (int l in lengths)
                    yield return new Setting(new SignalMoments(0, s * s, r), new GradientMoments(1, rg), l, 0, 0, 0);
                break;
            case "LayerNorm":
                foreach (double mu in Pick(quick, [-10, -10.0 / 3, 10.0 / 3], 0, 2))
                foreach (double r in Pick(quick, fifths, 0, 2, 4))
                foreach (double rg in Pick(quick, fifths, 0, 4))
                foreach (int d in widths)
                foreach (int l in lengths)
                    yield return new Setting(new SignalMoments(mu, 1, r), new GradientMoments(1, rg), l, d, d, 0);
                break;
            case "Dropout":
                foreach (double mu in Pick(quick, [-10.0, 0, 10], 1))
                foreach (double s in Pick(quick, stds, 2))
                foreach (double r in Pick(quick, thirds, 0, 2))
                foreach (double g in Pick(quick, stds, 2))
                foreach (double rg in Pick(quick, thirds, 0, 2))
                foreach (double p in Pick(quick, thirds, 1, 2))
                foreach (int d in widths)
                foreach (int l in lengths)
                    yield return new Setting(new SignalMoments(mu, s * s, r), new GradientMoments(g * g, rg), l, d, d, p);
                break;
            case "Softmax V1" or "Softmax V2":
                // 5.1: s in logspace(-2, 0, 5), r in fifths, L in logspace(log10 300, 4, 5), g i.i.d. (rg 0).
                foreach (double s in Pick(quick, LogSpace(-2, 0, 5), 2, 3))
                foreach (double r in Pick(quick, fifths, 0, 4))
                foreach (double l in Pick(quick, LogSpace(Math.Log10(300), 4, 5), 0))
                    yield return new Setting(new SignalMoments(0, s * s, r), new GradientMoments(1, 0), (int)Math.Round(l), 0, 0, 0);
                break;
            case "SHA":
                // 5.1: s 1, mu 0, r in thirds, sv sqrt(d) in logspace(-0.5, 0.5, 3), sq sqrt(d) in logspace(-1, log10 0.6, 3),
                // d, dk, L; p = 0 only (the op contract has no probability dropout) and, to fit this machine, d in {100, 316},
                // dk in {32, 64}, L in {300, 547} (the paper: d up to 1000, dk up to 256, L up to 1000, p up to 2/3).
                // The gradient is uncorrelated with unit variance (5.1 lists no g or rg for SHA).
                foreach (double r in Pick(quick, thirds, 1, 2))
                foreach (double sv in Pick(quick, stds, 1))
                foreach (double sq in Pick(quick, LogSpace(-1, Math.Log10(0.6), 3), 0, 2))
                foreach (int d in quick ? [100] : new[] { 100, 316 })
                foreach (int dk in quick ? [32] : new[] { 32, 64 })
                foreach (int l in quick ? [300] : new[] { 300, 547 })
                    yield return new Setting(new SignalMoments(0, 1, r), new GradientMoments(1, 0), l, d, dk, sv * sv / d) { QueryKeyVariance = sq * sq / d };
                break;
            default:
                throw new ArgumentException($"unknown component '{component}'", nameof(component));
        }
    }

    public static readonly string[] Components = ["Linear", "ReLU", "GeLU", "LayerNorm", "Dropout", "Softmax V1", "Softmax V2", "SHA"];

    /// <summary>Samples (batch x channels) per setting: ReLU/GeLU use this many channels in one batch row group;
    /// the others use batch = samples / width. Quick: 2^15; full: 2^18 (the paper: 10^4-10^5 samples or 100 runs;
    /// at 2^16 the covariances' sampling error alone exceeded the paper's p50 by tenths of a point, on an H100).</summary>
    private static int Samples(bool quick) => quick ? 1 << 15 : 1 << 18;

    private static (IMomentMap Map, MeasuredMoments Measured) Run(ComponentProbe probe, string component, Setting s, bool quick)
    {
        int samples = Samples(quick);
        switch (component)
        {
            case "Linear":
            {
                // Every batch entry draws its own W: at least the paper's 100 weight draws in the full grids (with 2^24
                // elements per tensor the L = 1000, d = 1000 settings had 16, and their mean and covariance errors
                // reached 19% and 9% at p99), within 2^27 elements per tensor (0.5 GiB); at least 2 batch rows.
                int draws = Math.Max(samples / s.Width, quick ? 0 : 100);
                int batch = Math.Max(2, Math.Min(draws, (1 << 27) / (s.Tokens * Math.Max(s.Width, s.FanOut))));
                return (new Linear(s.Width, s.FanOut, s.Parameter),
                    probe.Linear(batch, s.Tokens, s.Width, s.FanOut, s.Parameter, s.Input, s.Gradient));
            }
            case "ReLU":
                return (new Relu(), probe.Activation(ActivationFunction.Relu, samples / 256, s.Tokens, 256, s.Input, s.Gradient));
            case "GeLU":
                return (new Gelu(), probe.Activation(ActivationFunction.GeluErf, samples / 256, s.Tokens, 256, s.Input, s.Gradient));
            case "LayerNorm":
                return (new LayerNorm(s.Width), probe.LayerNorm(Math.Max(2, samples / s.Width), s.Tokens, s.Width, s.Input, s.Gradient));
            case "Dropout":
                return (new Dropout(s.Parameter), probe.Dropout(s.Parameter, Math.Max(2, samples / s.Width), s.Tokens, s.Width, s.Input, s.Gradient));
            case "Softmax V1" or "Softmax V2":
            {
                // 5.1 uses 10^4 rows; quick 2^9. Rows x L capped at 2^24 entries.
                int rows = Math.Min(quick ? 1 << 9 : 10_000, (1 << 24) / s.Tokens);
                var approximation = component == "Softmax V1" ? SoftmaxApproximation.Approximate : SoftmaxApproximation.Full;
                return (new SoftmaxMap(s.Tokens, approximation), probe.Softmax(rows, s.Tokens, s.Input, s.Gradient.Variance));
            }
            case "SHA":
                // 5.1 uses 64 runs with fresh weights; here 64 batch entries in both modes, each with its own weights.
                return (new SingleHeadAttention(s.Width, s.FanOut, s.QueryKeyVariance, s.Parameter, s.Tokens, 0),
                    probe.SingleHeadAttention(64, s.Tokens, s.Width, s.FanOut, s.QueryKeyVariance, s.Parameter, s.Input, s.Gradient));
            default:
                throw new ArgumentException($"unknown component '{component}'", nameof(component));
        }
    }

    /// <summary>The official relative error in %: |a - p| / |a|, or |a - p| / scale (the predicted variance) when the
    /// prediction is 0.
    /// A prediction below 1e-12 of the scale counts as 0 (formulas such as GeLU's covariance at r = 0 cancel to
    /// rounding noise, not to an exact 0).</summary>
    private static double Error(double actual, double predicted, double scale) =>
        100 * Math.Abs(actual - predicted) / (Math.Abs(predicted) <= 1e-12 * scale ? scale : Math.Abs(actual));

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    private static double Percentile(double[] sorted, double percent) =>
        sorted[Math.Clamp((int)Math.Ceiling(percent / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>Validates one component over its grid. <paramref name="predictionScale"/> multiplies every prediction
    /// (a test seam: a deliberately wrong formula must fail).</summary>
    public static ComponentResult Validate(Backend backend, string component, bool quick, int seed, double predictionScale = 1)
    {
        var probe = new ComponentProbe(backend, seed);
        var errors = Quantity.All.Select(_ => new List<double>()).ToArray();
        int count = 0;
        foreach (var setting in Grid(component, quick))
        {
            var (map, measured) = Run(probe, component, setting, quick);
            var fwd = map.Forward(setting.Input);
            var bwd = map.Backward(setting.Input, setting.Gradient);
            double k = predictionScale;
            var a = measured.Forward;
            var ga = measured.Backward;
            errors[0].Add(Error(a.Mean, k * fwd.Mean, fwd.Variance));
            errors[1].Add(Error(a.Variance, k * fwd.Variance, fwd.Variance));
            errors[2].Add(Error(a.Covariance, k * fwd.Covariance, fwd.Variance));
            errors[3].Add(Error(ga.Variance, k * bwd.Variance, bwd.Variance));
            errors[4].Add(Error(ga.Covariance, k * bwd.Covariance, bwd.Variance));
            count++;
        }
        var quantities = Quantity.All.Select((name, i) => (name, i)).Where(q => Paper[component][q.i] is not null).Select(q =>
        {
            var sorted = errors[q.i].Order().ToArray();
            return new QuantityResult(q.name, Percentile(sorted, 50), Percentile(sorted, 90), Percentile(sorted, 99), Paper[component][q.i]!);
        }).ToArray();
        return new ComponentResult(component, count, quantities);
    }

    /// <summary>
    /// Quantities reported but not held to the paper: SHA's output mean. Its prediction is 0, so calc_err divides the
    /// measured mean by the predicted variance, and every (batch, channel) carries one shared offset of about that variance
    /// (the tokens' common component through W_V), so the error is ~1 / sqrt(batch x dk x variance): 3-4% with this
    /// probe's 2^11 offsets, where the paper's 0.2% needs ~10^6.
    /// </summary>
    public static bool Checked(string component, string quantity) => !(component == "SHA" && quantity == "x mean");

    /// <summary>The failures of a result: "component quantity pNN measured% > paper% + slack" per exceeded percentile.</summary>
    public static IEnumerable<string> Failures(ComponentResult result, bool quick)
    {
        string[] names = ["p50", "p90", "p99"];
        foreach (var q in result.Quantities.Where(q => Checked(result.Component, q.Quantity)))
            for (int i = 0; i < 3; i++)
                if (!(q.Measured[i] <= q.Paper[i] + Slack(quick, result.Component)))
                    yield return $"{result.Component} {q.Quantity} {names[i]}: {q.Measured[i]:0.###}% > paper {q.Paper[i]:0.###}% + slack {Slack(quick, result.Component):0.##}";
    }

    /// <summary>Softmax's mean 1/L, output variance and logit-gradient variance (dslm-theory.md 2.6) as a moment map, so
    /// it runs through the same comparison; its covariances are not in the paper's table and are not compared.</summary>
    private sealed record SoftmaxMap(int Length, SoftmaxApproximation Approximation) : IMomentMap
    {
        public SignalMoments Forward(SignalMoments input) =>
            new(Softmax.OutputMean(Length), Softmax.OutputVariance(input, Length, Approximation), 0);

        public GradientMoments Backward(SignalMoments input, GradientMoments outputGradient) =>
            new(Softmax.GradientVariance(input, Length, outputGradient.Variance, Approximation), 0);
    }
}
