using System.CommandLine;
using DeepScaleLM.Interop;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Native.Cuda;

namespace DeepScaleLM.Cli;

/// <summary>
/// <c>dslm selftest [--device cuda:N|cpu] [--json PATH]</c>: the op conformance suite (Native/Cuda/Conformance.cs),
/// every op forward and backward on the device against the CPU backend, as a table; exit 0 when every check is
/// within its tolerance, 1 when one is not (or the GPU exists but cannot be opened), 2 without a CUDA device
/// ("no CUDA device: ..."). <c>--device cpu</c> runs the same checks with a one-thread CPU backend as the reference
/// and an all-cores one as the candidate: a sanity check of the suite and of the CPU's thread-count independence
/// that needs no GPU.
/// </summary>
internal static class SelftestCommand
{
    public static Command Create(TextWriter output)
    {
        var device = new Option<string>("--device") { Description = "cuda[:N] to check a GPU against the CPU backend, or cpu (1 thread against all cores)", DefaultValueFactory = _ => "cuda:0" };
        var json = new Option<string?>("--json") { Description = "also write every check's errors and the device as JSON to this path" };
        var seed = new Option<int>("--seed") { Description = "seed of the random inputs", DefaultValueFactory = _ => 1 };
        var command = new Command("selftest",
            "Run every op forward and backward on the device and on the CPU backend with the same inputs and compare " +
            "(fp32 tolerances); exits 0 when all agree, 1 when one does not, 2 when there is no CUDA device.")
        {
            device, json, seed,
        };
        command.SetAction(parse => Run(output, Device.Parse(parse.GetValue(device)!), parse.GetValue(json), parse.GetValue(seed)));
        return command;
    }

    internal static int Run(TextWriter output, Device device, string? jsonPath, int seed)
    {
        using var reference = new CpuBackend(1);
        Backend candidate;
        string description;
        if (device.Kind == DeviceKind.Cpu)
        {
            var cpu = new CpuBackend();
            (candidate, description) = (cpu, $"cpu ({cpu.ThreadCount} threads) against cpu (1 thread)");
        }
        else if (CudaBackend.TryCreate(device.Index, out var cuda, out var reason))
            (candidate, description) = (cuda!, $"{cuda} against cpu (1 thread), driver {DriverVersion()}");
        else
        {
            output.WriteLine($"dslm selftest: {reason}");
            return reason!.StartsWith("no CUDA device", StringComparison.Ordinal) ? 2 : 1;
        }
        using (candidate)
        {
            output.WriteLine($"dslm selftest: {description}, seed {seed}");
            output.WriteLine($"{"op",-28} {"max error",10} {"max |diff|",10} {"tolerance",10}  result");
            var results = new List<ConformanceResult>();
            foreach (string name in Conformance.Names)
            {
                var result = Conformance.Run(name, reference, candidate, seed);
                results.Add(result);
                output.WriteLine($"{result.Name,-28} {result.MaxError,10:0.00E+00} {result.MaxAbsoluteError,10:0.00E+00} {result.Tolerance,10:0.0E+00}  " +
                    (result.Passed ? "pass" : $"FAIL at {result.WorstOutput}{(result.Failure is null ? "" : ": " + result.Failure)}"));
            }
            int failures = results.Count(r => !r.Passed);
            output.WriteLine(failures == 0 ? $"all {results.Count} checks pass" : $"{failures} of {results.Count} checks fail");
            if (jsonPath is not null)
                MachineInfo.WriteJson(jsonPath, w =>
                {
                    w.WriteString("device", description);
                    w.WriteNumber("seed", seed);
                    w.WriteStartArray("checks");
                    foreach (var r in results)
                    {
                        w.WriteStartObject();
                        w.WriteString("op", r.Name);
                        w.WriteNumber("max_error", r.MaxError);
                        w.WriteNumber("max_absolute_error", double.IsFinite(r.MaxAbsoluteError) ? r.MaxAbsoluteError : -1);
                        w.WriteNumber("tolerance", r.Tolerance);
                        w.WriteString("worst_output", r.WorstOutput);
                        w.WriteBoolean("passed", r.Passed);
                        if (r.Failure is not null) w.WriteString("failure", r.Failure);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    MachineInfo.Write(w, reference.ThreadCount);
                });
            return failures == 0 ? 0 : 1;
        }
    }

    /// <summary>The driver's CUDA version, like 12.6.</summary>
    private static string DriverVersion() =>
        CudaDriver.cuDriverGetVersion(out int version) == CudaDriver.Success ? $"CUDA {version / 1000}.{version % 1000 / 10}" : "unknown";
}
