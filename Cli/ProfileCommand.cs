using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DeepScaleLM.Layers;
using DeepScaleLM.Native;
using DeepScaleLM.Native.Cuda;
using DeepScaleLM.Native.Profiling;
using DeepScaleLM.Training;
using DeepScaleLM.Training.Data;

namespace DeepScaleLM.Cli;

/// <summary>
/// <c>dslm profile</c>: trains a decoder for a few steps on a <see cref="ProfilingBackend"/> and prints where the time
/// went, op by op (calls, time, share, achieved FLOP/s and GB/s against the device's peak), with tokens/s and MFU in
/// the convention <see cref="ModelFlops.Formula"/> (docs/profiling.md).
/// </summary>
internal static class ProfileCommand
{
    /// <summary>The row the op table gives the step time no op accounts for (host work between ops, idle device).</summary>
    public const string OutsideOps = "(outside ops)";

    /// <summary>The flags that choose the run and the device (the model flags are dslm train's).</summary>
    private sealed record Flags(Option<int?> Vocabulary, Option<int> Batch, Option<int> Steps, Option<int> Warmup, Option<double?> PeakGflops,
        Option<double?> PeakBandwidth, Option<string?> Json);

    public static Command Create(TextWriter output)
    {
        // The model flags of dslm train, so a profiled model is given exactly as a trained one (default: its default model).
        var model = TrainCommand.ModelFlags.Create();
        var flags = new Flags(
            new Option<int?>("--vocab") { Description = $"vocabulary size, at least 256 (default {TrainCommand.DefaultModel.Vocabulary}; 50304 for GPT-2's shape)" },
            new Option<int>("--batch") { Description = "sequences per step", DefaultValueFactory = _ => 8 },
            new Option<int>("--steps") { Description = "profiled training steps", DefaultValueFactory = _ => 10 },
            new Option<int>("--warmup") { Description = "steps run first and not profiled (JIT, caches, allocator)", DefaultValueFactory = _ => 2 },
            new Option<double?>("--peak-gflops") { Description = "the device's peak GFLOP/s for the fractions and MFU (default: a GPU's datasheet; the CPU backend measured)" },
            new Option<double?>("--peak-gbs") { Description = "the device's peak memory bandwidth in GB/s (default as --peak-gflops)" },
            new Option<string?>("--json") { Description = "also write the table and the totals as JSON to this file" });
        var device = CliApp.DeviceOption();
        var threads = CliApp.ThreadsOption();
        var command = new Command("profile", "Train a decoder for a few steps and print the time per op (calls, total, share, achieved FLOP/s and " +
            $"GB/s against the device's peak), tokens/s and MFU with FLOPs per token = {ModelFlops.Formula} (docs/profiling.md).");
        foreach (var option in model.All.Concat([flags.Vocabulary, flags.Batch, flags.Steps, flags.Warmup, flags.PeakGflops, flags.PeakBandwidth, flags.Json, device, threads]))
            command.Options.Add(option);
        command.SetAction(parse =>
        {
            var config = model.Resolve(parse, flags.Vocabulary);
            int batch = parse.GetValue(flags.Batch), steps = parse.GetValue(flags.Steps), warmup = parse.GetValue(flags.Warmup);
            if (steps < 1) throw new ArgumentException($"--steps must be at least 1 (got {steps})", "--steps");
            if (warmup < 0) throw new ArgumentException($"--warmup must be at least 0 (got {warmup})", "--warmup");
            if (batch < 1) throw new ArgumentException($"--batch must be at least 1 (got {batch})", "--batch");
            if (config.Vocabulary < ByteTokenizer.Instance.VocabularySize)
                throw new ArgumentException($"--vocab must be at least {ByteTokenizer.Instance.VocabularySize}: the profile trains on byte tokens (got {config.Vocabulary})", "--vocab");
            using var inner = Backends.Create(Device.Parse(parse.GetValue(device)!), parse.GetValue(threads));
            var peak = Peak(inner, parse.GetValue(flags.PeakGflops), parse.GetValue(flags.PeakBandwidth));
            using var profiler = new ProfilingBackend(inner);
            var result = Run(profiler, config, batch, steps, warmup);
            Print(output, result, peak);
            if (parse.GetValue(flags.Json) is string path) WriteJson(path, result, peak);
            return 0;
        });
        return command;
    }

    /// <summary>What one profile measured.</summary>
    private sealed record ProfileResult(ModelConfig Config, string Device, string Timing, bool NvtxRanges, int Batch, int Steps, int Warmup,
        long Tokens, double Seconds, IReadOnlyList<OpProfile> Ops, long ParametersTotal, long ParametersCounted)
    {
        public double TokensPerSecond => Tokens / Seconds;
        public double OpSeconds => Ops.Sum(op => op.Seconds);
        public double OpFlops => Ops.Sum(op => op.Flops);
        public double FlopsPerToken => ModelFlops.PerToken(ParametersCounted, Config.Layers, Config.ModelWidth, Config.SequenceLength);
    }

    /// <summary>Runs <paramref name="warmup"/> unprofiled and <paramref name="steps"/> profiled training steps of a fresh
    /// decoder on the Brown corpus excerpt (byte tokens).</summary>
    private static ProfileResult Run(ProfilingBackend profiler, ModelConfig config, int batch, int steps, int warmup)
    {
        string data = WriteExcerptTokens(config.SequenceLength);
        try
        {
            using var tokens = TokenFile.Open(data);
            var options = new TrainingOptions { Steps = warmup + steps, BatchSize = batch, Tokens = config.SequenceLength };
            using var trainer = Trainer.Create(profiler, config, options, tokens, TokenizerSpec.Byte);
            for (int step = 0; step < warmup; step++) trainer.TrainStep();
            profiler.Synchronize();
            profiler.Reset();
            long start = Stopwatch.GetTimestamp();
            for (int step = 0; step < steps; step++)
            {
                profiler.PushRange("train step");
                trainer.TrainStep();
                profiler.PopRange();
                // Between steps, not inside one: reads the step's CUDA events so the pool stays one step large.
                profiler.Collect();
            }
            profiler.Synchronize();
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            var model = trainer.Model;
            return new ProfileResult(config, profiler.Device.ToString(), profiler.TimingMethod, profiler.NvtxRanges, batch, steps, warmup,
                (long)steps * batch * model.Tokens, seconds, profiler.Profile(), model.ParameterCount, CountedParameters(model));
        }
        finally
        {
            File.Delete(data);
        }
    }

    /// <summary>
    /// N of the MFU formula: every parameter a matrix product multiplies by, i.e. all of them except the position table
    /// (a lookup, as nanoGPT's non-embedding count has it) and, when the head is not tied to it, the token table (also
    /// only a lookup; a tied table is the head's weight and counts).
    /// </summary>
    private static long CountedParameters(TransformerModel model)
    {
        long counted = 0;
        foreach (var parameter in model.NamedParameters)
        {
            bool lookupOnly = parameter.Name.EndsWith("position_embedding.weight", StringComparison.Ordinal)
                || (!model.Config.TiedHead && parameter.Name == "token_embedding.weight");
            if (!lookupOnly) counted += parameter.Value.ElementCount;
        }
        return counted;
    }

    /// <summary>The embedded Brown excerpt as byte tokens in a temporary token file, repeated until its validation tail
    /// (a tenth) holds two windows of <paramref name="sequenceLength"/> + 1 tokens.</summary>
    private static string WriteExcerptTokens(int sequenceLength)
    {
        int[] excerpt = ByteTokenizer.Instance.Encode(BrownCorpus.Excerpt());
        long needed = Math.Max(excerpt.Length, 20L * (sequenceLength + 1));
        var tokens = new int[checked((int)((needed + excerpt.Length - 1) / excerpt.Length * excerpt.Length))];
        for (int at = 0; at < tokens.Length; at += excerpt.Length) excerpt.CopyTo(tokens, at);
        string path = Path.Combine(Path.GetTempPath(), $"dslm-profile-{Path.GetRandomFileName()}.tokens");
        TokenFile.Write(path, ByteTokenizer.Instance.VocabularySize, tokens);
        return path;
    }

    /// <summary>The peak the fractions are read against: the flags, else a GPU's datasheet (fp32 GEMMs, as the CUDA
    /// backend runs them; TF32 when it may) or a measurement of the CPU backend.</summary>
    private static DevicePeak Peak(Backend backend, double? gflops, double? bandwidth)
    {
        if (gflops is <= 0 || bandwidth is <= 0)
            throw new ArgumentException($"--peak-gflops and --peak-gbs must be positive (got {gflops}, {bandwidth})");
        if (gflops is double given && bandwidth is double givenBandwidth)
            return new DevicePeak(given * 1e9, givenBandwidth * 1e9, "given by --peak-gflops and --peak-gbs");
        var found = backend switch
        {
            CudaBackend cuda when DevicePeak.FindDatasheet(cuda.Name) is { } sheet =>
                new DevicePeak(cuda.AllowTf32 ? sheet.Tf32FlopsPerSecond : sheet.Fp32FlopsPerSecond, sheet.BytesPerSecond,
                    $"{sheet.Name} datasheet, dense {(cuda.AllowTf32 ? "TF32" : "fp32")}: the backend's GEMMs run in fp32 " +
                    $"(bf16 tensor-core peak {sheet.Bf16FlopsPerSecond / 1e12:F0} TFLOP/s)"),
            CudaBackend cuda => new DevicePeak(0, 0, $"no datasheet for {cuda.Name}: pass --peak-gflops and --peak-gbs"),
            _ => DevicePeak.Measure(backend),
        };
        if (gflops is null && bandwidth is null) return found;
        return new DevicePeak(gflops * 1e9 ?? found.FlopsPerSecond, bandwidth * 1e9 ?? found.BytesPerSecond,
            $"{(gflops is null ? "--peak-gbs" : "--peak-gflops")} given; the rest {found.Source}");
    }

    private static void Print(TextWriter output, ProfileResult r, DevicePeak peak)
    {
        var c = r.Config;
        output.WriteLine($"profile: decoder, {c.Layers} layers, d {c.ModelWidth}, {c.Heads} heads, T {c.SequenceLength}, vocab {c.Vocabulary}, " +
            $"norm {c.Norm.ToString().ToLowerInvariant()}, init {c.Init.ToString().ToLowerInvariant()}, {c.Precision.ToString().ToLowerInvariant()}, batch {r.Batch} on {r.Device}");
        output.WriteLine($"timing: {r.Timing}; {r.Steps} steps after {r.Warmup} warmup; NVTX ranges {(r.NvtxRanges ? "on" : "off (libnvToolsExt not found)")}");
        bool tera = r.Ops.Any(op => op.FlopsPerSecond >= 1e12);
        string flopsUnit = tera ? "TFLOP/s" : "GFLOP/s";
        double flopsScale = tera ? 1e12 : 1e9;
        output.WriteLine($"{"op",-28} {"calls",8} {"total ms",10} {"share %",8} {"ms/call",9} {flopsUnit,8} {"% peak",7} {"GB/s",8} {"% peak",7}");
        foreach (var op in r.Ops)
        {
            string flops = op.Flops > 0 ? $"{op.FlopsPerSecond / flopsScale,8:F1} {Percent(op.FlopsPerSecond, peak.FlopsPerSecond),7}" : $"{"",8} {"",7}";
            output.WriteLine($"{op.Name,-28} {op.Calls,8} {op.Seconds * 1e3,10:F2} {100 * op.Seconds / r.Seconds,8:F1} {op.Seconds * 1e3 / op.Calls,9:F4} " +
                $"{flops} {op.BytesPerSecond / 1e9,8:F1} {Percent(op.BytesPerSecond, peak.BytesPerSecond),7}");
        }
        double outside = r.Seconds - r.OpSeconds;
        output.WriteLine($"{OutsideOps,-28} {"",8} {outside * 1e3,10:F2} {100 * outside / r.Seconds,8:F1}");
        output.WriteLine($"{"step total",-28} {"",8} {r.Seconds * 1e3,10:F2} {100.0,8:F1}  ({r.Seconds * 1e3 / r.Steps:F2} ms/step)");
        output.WriteLine($"peak: {Rate(peak.FlopsPerSecond, flopsScale, flopsUnit)}, {Rate(peak.BytesPerSecond, 1e9, "GB/s")} ({peak.Source})");
        output.WriteLine($"throughput: {r.TokensPerSecond.ToString("N0", CultureInfo.InvariantCulture)} tokens/s ({r.Tokens} tokens in {r.Seconds:F3} s)");
        output.WriteLine($"MFU: FLOPs per token = {ModelFlops.Formula} = {r.FlopsPerToken:E4} with N = {r.ParametersCounted} parameters " +
            $"(all {r.ParametersTotal} less the lookup-only embedding tables: the position table, and the token table unless tied to the head), " +
            $"L = {c.Layers}, d = {c.ModelWidth}, T = {c.SequenceLength}; 6*L*d*T is attention with the causal half (llm.c; PaLM's 12*L*d*T without it); " +
            "recomputation is not counted");
        double modelRate = r.FlopsPerToken * r.TokensPerSecond;
        output.WriteLine($"model FLOP/s: {Rate(modelRate, flopsScale, flopsUnit)}, MFU {Percent(modelRate, peak.FlopsPerSecond)} % of peak; " +
            $"op FLOP/s (every matmul and attention call counted, recomputation included): {Rate(r.OpFlops / r.Seconds, flopsScale, flopsUnit)}");
    }

    private static string Percent(double rate, double peak) => peak > 0 ? (100 * rate / peak).ToString("F1", CultureInfo.InvariantCulture) : "n/a";

    private static string Rate(double rate, double scale, string unit) => rate > 0 ? $"{(rate / scale).ToString("F2", CultureInfo.InvariantCulture)} {unit}" : $"n/a {unit}";

    private static void WriteJson(string path, ProfileResult r, DevicePeak peak) => MachineInfo.WriteJson(path, w =>
    {
        var c = r.Config;
        w.WriteString("command", "profile");
        w.WriteString("device", r.Device);
        w.WriteString("timing", r.Timing);
        w.WriteBoolean("nvtx_ranges", r.NvtxRanges);
        w.WriteStartObject("model");
        w.WriteString("kind", "decoder");
        w.WriteNumber("layers", c.Layers);
        w.WriteNumber("d_model", c.ModelWidth);
        w.WriteNumber("heads", c.Heads);
        w.WriteNumber("seq_len", c.SequenceLength);
        w.WriteNumber("vocab", c.Vocabulary);
        w.WriteString("norm", c.Norm.ToString().ToLowerInvariant());
        w.WriteString("init", c.Init.ToString().ToLowerInvariant());
        w.WriteString("precision", c.Precision.ToString().ToLowerInvariant());
        w.WriteNumber("recompute_every", c.RecomputeEvery);
        w.WriteEndObject();
        w.WriteNumber("batch", r.Batch);
        w.WriteNumber("steps", r.Steps);
        w.WriteNumber("warmup", r.Warmup);
        w.WriteNumber("tokens", r.Tokens);
        w.WriteNumber("seconds", r.Seconds);
        w.WriteNumber("op_seconds", r.OpSeconds);
        w.WriteNumber("outside_ops_seconds", r.Seconds - r.OpSeconds);
        w.WriteNumber("tokens_per_second", r.TokensPerSecond);
        w.WriteStartObject("peak");
        w.WriteNumber("flops_per_second", peak.FlopsPerSecond);
        w.WriteNumber("bytes_per_second", peak.BytesPerSecond);
        w.WriteString("source", peak.Source);
        w.WriteEndObject();
        w.WriteStartObject("mfu");
        w.WriteString("formula", ModelFlops.Formula);
        w.WriteNumber("parameters_counted", r.ParametersCounted);
        w.WriteNumber("parameters_total", r.ParametersTotal);
        w.WriteString("parameters_counted_are", "all parameters less the position table, and less the token table unless it is tied to the head");
        w.WriteNumber("flops_per_token", r.FlopsPerToken);
        w.WriteNumber("model_flops_per_second", r.FlopsPerToken * r.TokensPerSecond);
        WriteFraction(w, "utilization", r.FlopsPerToken * r.TokensPerSecond, peak.FlopsPerSecond);
        w.WriteNumber("op_flops_per_second", r.OpFlops / r.Seconds);
        w.WriteEndObject();
        w.WriteStartArray("ops");
        foreach (var op in r.Ops)
        {
            w.WriteStartObject();
            w.WriteString("op", op.Name);
            w.WriteNumber("calls", op.Calls);
            w.WriteNumber("seconds", op.Seconds);
            w.WriteNumber("share", op.Seconds / r.Seconds);
            w.WriteNumber("flops", op.Flops);
            w.WriteNumber("bytes", op.Bytes);
            w.WriteNumber("flops_per_second", op.FlopsPerSecond);
            w.WriteNumber("bytes_per_second", op.BytesPerSecond);
            WriteFraction(w, "flops_fraction_of_peak", op.Flops > 0 ? op.FlopsPerSecond : 0, peak.FlopsPerSecond);
            WriteFraction(w, "bytes_fraction_of_peak", op.BytesPerSecond, peak.BytesPerSecond);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });

    /// <summary>rate / peak, or null when the peak is unknown.</summary>
    private static void WriteFraction(Utf8JsonWriter w, string name, double rate, double peak)
    {
        if (peak > 0) w.WriteNumber(name, rate / peak);
        else w.WriteNull(name);
    }
}
