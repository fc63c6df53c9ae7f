using System.CommandLine;
using DeepScaleLM.Cli.Demo;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;

namespace DeepScaleLM.Cli;

/// <summary>The <c>dslm</c> command line: its commands, and the one place that turns bad input into an error message and exit code.</summary>
public static class CliApp
{
    /// <summary>Runs <c>dslm</c> with <paramref name="args"/>, writing to the given streams; returns the exit code
    /// (0 success, 1 failure at run time, 2 bad input).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "dslm: train very deep transformers (DeepScaleLM). With no command it runs the built-in demo: a small " +
            "byte-level transformer trained on an embedded text through every op of the CPU backend.");
        var demo = DemoCommand(output);
        foreach (var option in demo.Options) root.Options.Add(option);
        root.Action = demo.Action;
        root.Subcommands.Add(demo);
        root.Subcommands.Add(BenchCommands.Create(output));
        root.Subcommands.Add(TheoryCommand.Create(output));
        root.Subcommands.Add(DataCommand.Create(output));
        root.Subcommands.Add(ValidateCommand.Create(output));
        root.Subcommands.Add(EvalCommand.Create(output));
        root.Subcommands.Add(GenerateCommand.Create(output));
        root.Subcommands.Add(GradCommand.Create(output));
        try
        {
            return root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            error.WriteLine($"dslm: error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or NotSupportedException)
        {
            error.WriteLine($"dslm: error: {e.Message}");
            return 1;
        }
    }

    /// <summary>The backend a --device value names.</summary>
    internal static Backend CreateBackend(string device, int? threads)
    {
        var parsed = Device.Parse(device);
        return parsed.Kind switch
        {
            DeviceKind.Cpu => new CpuBackend(threads),
            _ => throw new NotSupportedException($"device {parsed} is not available in this build: the CUDA backend has not landed yet"),
        };
    }

    /// <summary>--device, shared by every command that runs ops.</summary>
    internal static Option<string> DeviceOption() => new("--device") { Description = "cpu (the CUDA backend lands later)", DefaultValueFactory = _ => "cpu" };

    /// <summary>--threads, shared by every command that runs ops on the CPU.</summary>
    internal static Option<int?> ThreadsOption() => new("--threads") { Description = "CPU threads (default: every core)" };

    private static Command DemoCommand(TextWriter output)
    {
        var defaults = new DemoConfig();
        var layers = new Option<int>("--layers") { Description = "transformer blocks", DefaultValueFactory = _ => defaults.Layers };
        var channels = new Option<int>("--channels") { Description = "model width d", DefaultValueFactory = _ => defaults.Channels };
        var heads = new Option<int>("--heads") { Description = "attention heads", DefaultValueFactory = _ => defaults.Heads };
        var tokens = new Option<int>("--tokens") { Description = "context length", DefaultValueFactory = _ => defaults.Tokens };
        var batch = new Option<int>("--batch") { Description = "sequences per step", DefaultValueFactory = _ => defaults.Batch };
        var steps = new Option<int>("--steps") { Description = "optimizer steps", DefaultValueFactory = _ => defaults.Steps };
        var learningRate = new Option<float>("--lr") { Description = "AdamW learning rate", DefaultValueFactory = _ => defaults.LearningRate };
        var dropout = new Option<float>("--dropout") { Description = "dropout on branch outputs", DefaultValueFactory = _ => defaults.Dropout };
        var seed = new Option<int>("--seed") { Description = "seed for init, data and dropout", DefaultValueFactory = _ => defaults.Seed };
        var device = DeviceOption();
        var threads = ThreadsOption();
        var command = new Command("demo", "Train a small DSLM-scaled byte-level transformer on an embedded text through every op of the backend (the default command).")
        {
            layers, channels, heads, tokens, batch, steps, learningRate, dropout, seed, device, threads,
        };
        command.SetAction(parse =>
        {
            var config = new DemoConfig(parse.GetValue(layers), parse.GetValue(channels), parse.GetValue(heads), parse.GetValue(tokens),
                parse.GetValue(batch), parse.GetValue(steps), parse.GetValue(learningRate), parse.GetValue(dropout), parse.GetValue(seed));
            config.Validate();
            using var backend = CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            DemoRun.Run(backend, config, output);
            return 0;
        });
        return command;
    }
}
