using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using DeepScaleLM.Layers;
using DeepScaleLM.Native;
using DeepScaleLM.Training;
using DeepScaleLM.Training.Data;

namespace DeepScaleLM.Cli;

/// <summary>
/// <c>dslm bench train</c>: training throughput and memory of a model config. Each timed step is a whole
/// <see cref="Trainer.TrainStep"/> (forward, backward, global norm and clipping, AdamW) on random tokens; the
/// throughput is batch x tokens over the median step time after the warm-up steps.
/// </summary>
internal static class BenchTrain
{
    public static Command Create(TextWriter output)
    {
        // The model flags of dslm train, so a benchmarked model is given exactly as a trained one (default: its default model).
        var model = TrainCommand.ModelFlags.Create();
        var vocabulary = new Option<int?>("--vocab") { Description = $"vocabulary (default {TrainCommand.DefaultModel.Vocabulary}, or the --config's)" };
        var batch = new Option<int>("--batch") { Description = "sequences per step", DefaultValueFactory = _ => 8 };
        var tokens = new Option<int?>("--tokens") { Description = "tokens per sequence, at most the model's sequence_length (default: sequence_length)" };
        var steps = new Option<int>("--steps") { Description = "timed steps (the median is reported)", DefaultValueFactory = _ => 20 };
        var warmup = new Option<int>("--warmup") { Description = "untimed steps first", DefaultValueFactory = _ => 3 };
        var json = new Option<string?>("--json") { Description = "also write the result as JSON to this path" };
        var device = CliApp.DeviceOption();
        var threads = CliApp.ThreadsOption();
        var command = new Command("train",
            "Training throughput: tokens/s from the median time of a whole training step (forward, backward, clipping, AdamW) on random " +
            "tokens after --warmup steps, and peak memory (the model's buffers, the AdamW moments and the process peak working set). " +
            "The model is given as for dslm train (--config and the flags that override it).");
        foreach (var option in model.All.Concat([vocabulary, batch, tokens, steps, warmup, json, device, threads])) command.Options.Add(option);
        command.SetAction(parse =>
        {
            var config = model.Resolve(parse, vocabulary);
            int batchSize = parse.GetValue(batch), timed = parse.GetValue(steps), untimed = parse.GetValue(warmup);
            if (timed < 1) throw new ArgumentException($"--steps must be at least 1 (got {timed})");
            if (untimed < 0) throw new ArgumentException($"--warmup must not be negative (got {untimed})");
            var options = new TrainingOptions { Steps = untimed + timed, BatchSize = batchSize, Tokens = parse.GetValue(tokens) ?? config.SequenceLength, WarmupSteps = 0 };
            using var backend = CliApp.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            var result = Run(backend, config, options, untimed, timed);
            Report(output, backend, result, parse.GetValue(json));
            return 0;
        });
        return command;
    }

    /// <summary>What one benchmark measured.</summary>
    private sealed record Result(ModelConfig Config, TrainingOptions Options, int Warmup, long Parameters, Timing Timing, double FinalLoss,
        MemoryReport Memory, long OptimizerBytes, long PeakWorkingSetBytes, double CpuShare);

    private static Result Run(Backend backend, ModelConfig config, TrainingOptions options, int warmup, int steps)
    {
        config.Validate();
        options.Validate();
        string dataPath = Path.Combine(Path.GetTempPath(), $"dslm-bench-train-{Guid.NewGuid():N}.tokens");
        try
        {
            WriteRandomTokens(dataPath, config, options.BatchSize, options.Tokens!.Value);
            using var data = TokenFile.Open(dataPath);
            using var trainer = Trainer.Create(backend, config, options, data, TokenizerSpec.Byte);
            double loss = double.NaN;
            for (int i = 0; i < warmup; i++) trainer.TrainStep();
            // The process's CPU time over the timed steps, against wall time x threads, shows how much of the cores it
            // got: on a shared machine the tokens/s scale with that share.
            var process = Process.GetCurrentProcess();
            var cpuBefore = process.TotalProcessorTime;
            long wallBefore = Stopwatch.GetTimestamp();
            var timing = Timing.Measure(backend, () => loss = trainer.TrainStep().Loss, warmup: 0, steps);
            double wall = Stopwatch.GetElapsedTime(wallBefore).TotalSeconds;
            process.Refresh();
            double cpuShare = (process.TotalProcessorTime - cpuBefore).TotalSeconds / (wall * BenchCommands.ThreadCount(backend));
            var model = trainer.Model;
            return new Result(model.Config, options, warmup, model.ParameterCount, timing, loss, model.Memory, 2 * 4 * model.ParameterCount,
                process.PeakWorkingSet64, cpuShare);
        }
        finally
        {
            File.Delete(dataPath);
        }
    }

    /// <summary>Uniform random ids, enough for the trainer's split to hold a window of every model kind in its 10 %
    /// validation tail (an encoder-decoder window is 2T + 1 ids); a masked LM's last id is left free for the mask.</summary>
    private static void WriteRandomTokens(string path, ModelConfig config, int batchSize, int tokens)
    {
        int vocabulary = config.Kind == ModelKind.Encoder ? config.Vocabulary - 1 : config.Vocabulary;
        long count = Math.Max(16L * batchSize * (2 * tokens + 2), 1 << 16);
        var random = new Random(1);
        var ids = new int[count];
        for (long i = 0; i < count; i++) ids[i] = random.Next(vocabulary);
        TokenFile.Write(path, vocabulary, ids);
    }

    private static void Report(TextWriter output, Backend backend, Result result, string? jsonPath)
    {
        var c = result.Config;
        int tokensPerStep = result.Options.BatchSize * result.Options.Tokens!.Value;
        double median = tokensPerStep / result.Timing.MedianSeconds, best = tokensPerStep / result.Timing.BestSeconds;
        var memory = result.Memory;
        int threadCount = BenchCommands.ThreadCount(backend);
        static string MiB(long bytes) => $"{bytes / (1024.0 * 1024.0):F1}";
        output.WriteLine($"bench train: {EvalCommand.ConfigName(c.Kind)}, {c.Layers} layers, d {c.ModelWidth}, {c.Heads} heads, vocab {c.Vocabulary}, " +
            $"norm {c.Norm.ToString().ToLowerInvariant()}, init {c.Init.ToString().ToLowerInvariant()}, {c.Precision.ToString().ToLowerInvariant()}, " +
            $"recompute every {c.RecomputeEvery}; batch {result.Options.BatchSize} x {result.Options.Tokens} tokens on {backend.Device}");
        output.WriteLine($"  {result.Parameters:N0} parameters; {result.Timing.Runs} timed steps after {result.Warmup} warm-up steps");
        output.WriteLine($"  median {result.Timing.MedianSeconds * 1e3:F1} ms/step: {median:N0} tokens/s (best {best:N0}); last loss {result.FinalLoss:F3}; " +
            $"the process used {result.CpuShare:P0} of its {threadCount} threads' time (less than 100 %: other work on the machine took the rest)");
        output.WriteLine($"  memory: model {MiB(memory.TotalBytes)} MiB (parameters {MiB(memory.ParameterBytes)}, gradients {MiB(memory.GradientBytes)}, " +
            $"compute copy {MiB(memory.ComputeWeightBytes)}, activations {MiB(memory.ActivationBytes)}) + AdamW moments {MiB(result.OptimizerBytes)} MiB; " +
            $"process peak working set {MiB(result.PeakWorkingSetBytes)} MiB");
        // What recomputation buys per block: everything kept, against the kept streams plus one segment of scratch.
        output.WriteLine($"  activations per block: {memory.BlockActivationBytes / 1024.0:N1} KiB keeping every activation, " +
            $"{memory.BlockActivationBytesWithRecomputation / 1024.0:N1} KiB with --recompute-every {Math.Max(c.RecomputeEvery, 1)}; " +
            $"all activations {MiB(memory.ActivationBytesWithoutRecomputation)} MiB without recomputation");
        output.WriteLine($"  machine: {MachineInfo.Describe(threadCount)}");
        if (jsonPath is null) return;
        MachineInfo.WriteJson(jsonPath, w =>
        {
            w.WriteString("benchmark", "train");
            MachineInfo.Write(w, threadCount);
            w.WriteString("device", backend.Device.ToString());
            w.WritePropertyName("config");
            using (var configJson = JsonDocument.Parse(c.ToJson())) configJson.RootElement.WriteTo(w);
            w.WriteNumber("batch", result.Options.BatchSize);
            w.WriteNumber("tokens", result.Options.Tokens!.Value);
            w.WriteNumber("warmup_steps", result.Warmup);
            w.WriteNumber("timed_steps", result.Timing.Runs);
            w.WriteNumber("parameters", result.Parameters);
            w.WriteNumber("median_step_seconds", result.Timing.MedianSeconds);
            w.WriteNumber("best_step_seconds", result.Timing.BestSeconds);
            w.WriteNumber("tokens_per_second", median);
            w.WriteNumber("best_tokens_per_second", best);
            w.WriteNumber("last_loss", result.FinalLoss);
            w.WriteNumber("cpu_share", result.CpuShare);
            w.WriteStartObject("memory");
            w.WriteNumber("parameter_bytes", memory.ParameterBytes);
            w.WriteNumber("gradient_bytes", memory.GradientBytes);
            w.WriteNumber("compute_weight_bytes", memory.ComputeWeightBytes);
            w.WriteNumber("activation_bytes", memory.ActivationBytes);
            w.WriteNumber("activation_bytes_without_recomputation", memory.ActivationBytesWithoutRecomputation);
            w.WriteNumber("block_activation_bytes", memory.BlockActivationBytes);
            w.WriteNumber("block_activation_bytes_with_recomputation", memory.BlockActivationBytesWithRecomputation);
            w.WriteNumber("model_bytes", memory.TotalBytes);
            w.WriteNumber("optimizer_bytes", result.OptimizerBytes);
            w.WriteNumber("peak_working_set_bytes", result.PeakWorkingSetBytes);
            w.WriteEndObject();
        });
    }
}
