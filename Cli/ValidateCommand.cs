using System.CommandLine;
using DeepScaleLM.Cli.Validation;
using DeepScaleLM.Native;

namespace DeepScaleLM.Cli;

/// <summary>
/// <c>dslm validate</c>: the component formulas of Theory (dslm-theory.md 2.1-2.7) against the real CPU ops on the
/// grids of 5.1, reporting p50/p90/p99 relative errors beside the paper's table; exit 1 where one is worse.
/// </summary>
internal static class ValidateCommand
{
    public static Command Create(TextWriter output)
    {
        var quick = new Option<bool>("--quick") { Description = "a documented subset of each grid with smaller samples (seconds); the default runs the full 5.1 grids (long)" };
        var json = new Option<string?>("--json") { Description = "also write the per-component percentiles as JSON to this path" };
        var component = new Option<string[]>("--component")
        {
            Description = "run only these components (repeatable): Linear, ReLU, GeLU, LayerNorm, Dropout, \"Softmax V1\", \"Softmax V2\", SHA; default all",
            AllowMultipleArgumentsPerToken = false,
        };
        var seed = new Option<int>("--seed") { Description = "seed of the inputs, gradients, weights and dropout masks", DefaultValueFactory = _ => 42 };
        var device = CliApp.DeviceOption();
        var command = new Command("validate",
            "Run Linear, ReLU, GeLU, LayerNorm, Dropout, Softmax (both variance formulas) and single-head attention through the real ops (CPU, or --device cuda) on Gaussian token-correlated inputs and " +
            "compare the measured moments with the theory (dslm-theory.md 5.1); exits 1 where an error exceeds the paper's.")
        {
            quick, json, seed, component, device,
        };
        command.SetAction(parse =>
        {
            var selected = parse.GetValue(component) is { Length: > 0 } names ? names : null;
            foreach (string name in selected ?? [])
                if (!ComponentValidation.Components.Contains(name))
                    throw new ArgumentException($"--component must be one of {string.Join(", ", ComponentValidation.Components)} (got '{name}')");
            using var backend = CliApp.CreateBackend(parse.GetValue(device)!, threads: null);
            return Run(output, backend, parse.GetValue(quick), parse.GetValue(seed), parse.GetValue(json), components: selected);
        });
        return command;
    }

    /// <summary>Runs the validation; <paramref name="scaledComponent"/>'s predictions are multiplied by
    /// <paramref name="predictionScale"/> (a test seam for a deliberately wrong formula), and
    /// <paramref name="components"/> restricts the run (tests; default all).</summary>
    internal static int Run(TextWriter output, Backend backend, bool quick, int seed, string? jsonPath,
        string? scaledComponent = null, double predictionScale = 1, string[]? components = null)
    {
        var results = (components ?? ComponentValidation.Components)
            .Select(c => ComponentValidation.Validate(backend, c, quick, seed, c == scaledComponent ? predictionScale : 1))
            .ToArray();
        output.WriteLine($"dslm validate ({(quick ? "quick subset" : "full grids")}, seed {seed}, {backend.Device}): relative error % at p50 / p90 / p99, measured | paper (dslm-theory.md 5.1)");
        output.WriteLine(quick
            ? $"a run fails where measured > paper + {ComponentValidation.Slack(quick, "Linear"):0.##} percentage points of slack ({ComponentValidation.Slack(quick, "SHA"):0.##} for SHA): quick's samples are ~100x fewer than the paper's, so sampling noise moves its percentiles by points"
            : $"a run fails where measured > paper + {ComponentValidation.Slack(quick, "Linear"):0.##} percentage points of slack (float32 ops, LayerNorm epsilon)");
        output.WriteLine($"{"component",-10} {"settings",8}  {"quantity",-7}  {"measured",-22} | paper");
        foreach (var r in results)
            foreach (var q in r.Quantities)
                output.WriteLine($"{r.Component,-10} {r.Settings,8}  {q.Quantity,-7}  {Triple(q.Measured),-22} | {Triple(q.Paper)}" +
                    (ComponentValidation.Checked(r.Component, q.Quantity) ? "" : "  (reported, not checked: sampling-noise bound)"));
        var failures = results.SelectMany(r => ComponentValidation.Failures(r, quick)).ToArray();
        foreach (var failure in failures) output.WriteLine($"FAIL {failure}");
        output.WriteLine(failures.Length == 0 ? "all components within the paper's errors" : $"{failures.Length} percentile(s) worse than the paper");
        if (jsonPath is not null)
            MachineInfo.WriteJson(jsonPath, w =>
            {
                w.WriteBoolean("quick", quick);
                w.WriteNumber("seed", seed);
                w.WriteStartArray("components");
                foreach (var r in results)
                {
                    w.WriteStartObject();
                    w.WriteString("component", r.Component);
                    w.WriteNumber("settings", r.Settings);
                    w.WriteNumber("slack_percent", ComponentValidation.Slack(quick, r.Component));
                    w.WriteStartObject("quantities");
                    foreach (var q in r.Quantities)
                    {
                        w.WriteStartObject(q.Quantity.Replace(' ', '_'));
                        w.WriteNumber("p50", q.P50);
                        w.WriteNumber("p90", q.P90);
                        w.WriteNumber("p99", q.P99);
                        w.WriteStartArray("paper");
                        foreach (double v in q.Paper) w.WriteNumberValue(v);
                        w.WriteEndArray();
                        w.WriteEndObject();
                    }
                    w.WriteEndObject();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartArray("failures");
                foreach (var f in failures) w.WriteStringValue(f);
                w.WriteEndArray();
            });
        return failures.Length == 0 ? 0 : 1;
    }

    private static string Triple(double[] v) => $"{v[0]:0.###} / {v[1]:0.###} / {v[2]:0.###}";
}
