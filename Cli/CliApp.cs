using System.CommandLine;
using DeepScaleLM.Interop;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cuda;
using DeepScaleLM.Training.Checkpoints;

namespace DeepScaleLM.Cli;

/// <summary>The <c>dslm</c> command line: its commands, and the one place that turns bad input into an error message and exit code.</summary>
public static class CliApp
{
    /// <summary>Runs <c>dslm</c> with <paramref name="args"/>, writing to the given streams; returns the exit code
    /// (0 success, 1 failure at run time, 2 bad input: flags, configs, missing or corrupt files).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "dslm: train very deep transformers (DeepScaleLM). With no command it runs `dslm train` with its defaults: an " +
            "8-block DSLM byte-level decoder trained on the Brown corpus for a few minutes.");
        var train = TrainCommand.Create(output);
        foreach (var option in train.Options) root.Options.Add(option);
        root.Action = train.Action;
        root.Subcommands.Add(train);
        root.Subcommands.Add(BenchCommands.Create(output));
        root.Subcommands.Add(TheoryCommand.Create(output));
        root.Subcommands.Add(SimulateCommand.Create(output));
        root.Subcommands.Add(DataCommand.Create(output));
        root.Subcommands.Add(ValidateCommand.Create(output));
        root.Subcommands.Add(SelftestCommand.Create(output));
        root.Subcommands.Add(EvalCommand.Create(output));
        root.Subcommands.Add(GenerateCommand.Create(output));
        root.Subcommands.Add(GradCommand.Create(output));
        root.Subcommands.Add(ProfileCommand.Create(output));
        root.Subcommands.Add(PlotCommand.Create(output));
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // Unknown flags, missing arguments, values of the wrong type: bad input, like an impossible config.
            foreach (var problem in parse.Errors) error.WriteLine($"dslm: error: {problem.Message}");
            return 2;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        // A missing, truncated or corrupt input file (data, config, checkpoint) is bad input too.
        catch (Exception e) when (e is ArgumentException or FormatException or FileNotFoundException or DirectoryNotFoundException
            or CheckpointFormatException or SafeTensorsFormatException)
        {
            error.WriteLine($"dslm: error: {e.Message}");
            return 2;
        }
        // A device that fails mid-run (out of memory, a kernel fault) ends the run with the CUDA error's name;
        // checkpoints already written are untouched (they are replaced atomically).
        catch (Exception e) when (e is InvalidOperationException or IOException or NotSupportedException or CudaException)
        {
            error.WriteLine($"dslm: error: {e.Message}");
            return 1;
        }
    }

    /// <summary>The backend a --device value names (cpu, cuda or cuda:N).</summary>
    internal static Backend CreateBackend(string device, int? threads) => Backends.Create(Device.Parse(device), threads);

    /// <summary>--device, shared by every command that runs ops.</summary>
    internal static Option<string> DeviceOption() => new("--device") { Description = "cpu, cuda or cuda:N (an NVIDIA GPU: needs the driver and cuBLAS)", DefaultValueFactory = _ => "cpu" };

    /// <summary>--threads, shared by every command that runs ops on the CPU.</summary>
    internal static Option<int?> ThreadsOption() => new("--threads") { Description = "CPU threads (default: every core)" };
}
