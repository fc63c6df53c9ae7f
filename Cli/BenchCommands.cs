using System.CommandLine;
using System.Text.Json;
using DeepScaleLM.Native;

namespace DeepScaleLM.Cli;

/// <summary><c>dslm bench gemm</c> and <c>dslm bench ops</c>: throughput of the backend's ops, median over repeated runs.</summary>
internal static class BenchCommands
{
    public static Command Create(TextWriter output)
    {
        var bench = new Command("bench", "Measure the backend: GEMM GFLOP/s, and the time and bandwidth of every other op.");
        bench.Subcommands.Add(Gemm(output));
        bench.Subcommands.Add(Ops(output));
        bench.Subcommands.Add(BenchTrain.Create(output));
        return bench;
    }

    private static Command Gemm(TextWriter output)
    {
        var m = new Option<int>("--m") { Description = "rows of C", DefaultValueFactory = _ => 1024 };
        var n = new Option<int>("--n") { Description = "columns of C", DefaultValueFactory = _ => 1024 };
        var k = new Option<int>("--k") { Description = "inner dimension", DefaultValueFactory = _ => 1024 };
        var transposeA = new Option<bool>("--transpose-a") { Description = "A stored as [k, m]" };
        var transposeB = new Option<bool>("--transpose-b") { Description = "B stored as [n, k]" };
        var runs = new Option<int>("--runs") { Description = "timed runs (the median is reported)", DefaultValueFactory = _ => 20 };
        var json = new Option<string?>("--json") { Description = "also write the result as JSON to this path" };
        var device = CliApp.DeviceOption();
        var threads = CliApp.ThreadsOption();
        var command = new Command("gemm", "fp32 C = A * B through the backend's MatMul; prints the median GFLOP/s (2*m*n*k flops per run).")
        {
            m, n, k, transposeA, transposeB, runs, json, device, threads,
        };
        command.SetAction(parse =>
        {
            int rows = parse.GetValue(m), cols = parse.GetValue(n), inner = parse.GetValue(k), timedRuns = parse.GetValue(runs);
            bool ta = parse.GetValue(transposeA), tb = parse.GetValue(transposeB);
            if (rows < 1 || cols < 1 || inner < 1) throw new ArgumentException($"--m, --n and --k must be positive (got {rows}, {cols}, {inner})");
            if (timedRuns < 1) throw new ArgumentException($"--runs must be positive (got {timedRuns})");
            using var backend = CliApp.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            int threadCount = ThreadCount(backend);
            using var a = Random(backend, 1, ta ? [inner, rows] : [rows, inner]);
            using var b = Random(backend, 2, tb ? [cols, inner] : [inner, cols]);
            using var c = backend.Allocate(rows, cols);
            var timing = Timing.Measure(backend, () => backend.MatMul(c, a, b, ta, tb), warmup: 3, timedRuns);
            double flops = 2.0 * rows * cols * inner;
            output.WriteLine($"gemm {rows} x {cols} x {inner} (transpose a: {ta}, b: {tb}) on {backend.Device}");
            output.WriteLine($"  median {flops / timing.MedianSeconds / 1e9:F1} GFLOP/s ({timing.MedianSeconds * 1e3:F3} ms), best {flops / timing.BestSeconds / 1e9:F1} GFLOP/s, {timing.Runs} runs");
            output.WriteLine($"  machine: {MachineInfo.Describe(threadCount)}");
            var path = parse.GetValue(json);
            if (path is not null)
                MachineInfo.WriteJson(path, w =>
                {
                    w.WriteString("benchmark", "gemm");
                    MachineInfo.Write(w, threadCount);
                    w.WriteString("device", backend.Device.ToString());
                    w.WriteNumber("m", rows);
                    w.WriteNumber("n", cols);
                    w.WriteNumber("k", inner);
                    w.WriteBoolean("transpose_a", ta);
                    w.WriteBoolean("transpose_b", tb);
                    w.WriteNumber("runs", timing.Runs);
                    w.WriteNumber("median_seconds", timing.MedianSeconds);
                    w.WriteNumber("median_gflops", flops / timing.MedianSeconds / 1e9);
                    w.WriteNumber("best_gflops", flops / timing.BestSeconds / 1e9);
                });
            return 0;
        });
        return command;
    }

    private static Command Ops(TextWriter output)
    {
        var batch = new Option<int>("--batch") { Description = "sequences", DefaultValueFactory = _ => 4 };
        var tokens = new Option<int>("--tokens") { Description = "tokens per sequence", DefaultValueFactory = _ => 512 };
        var channels = new Option<int>("--channels") { Description = "model width d", DefaultValueFactory = _ => 768 };
        var heads = new Option<int>("--heads") { Description = "attention heads", DefaultValueFactory = _ => 12 };
        var vocabulary = new Option<int>("--vocab") { Description = "classes of the softmax cross-entropy and rows of the embedding", DefaultValueFactory = _ => 50304 };
        var runs = new Option<int>("--runs") { Description = "timed runs per op (the median is reported)", DefaultValueFactory = _ => 10 };
        var json = new Option<string?>("--json") { Description = "also write the results as JSON to this path" };
        var device = CliApp.DeviceOption();
        var threads = CliApp.ThreadsOption();
        var command = new Command("ops", "Time every op of the contract, forward and backward, at a transformer-sized shape; prints ms, GB/s and (for matmul and attention) GFLOP/s.")
        {
            batch, tokens, channels, heads, vocabulary, runs, json, device, threads,
        };
        command.SetAction(parse =>
        {
            var shape = new OpBenchShape(parse.GetValue(batch), parse.GetValue(tokens), parse.GetValue(channels), parse.GetValue(heads), parse.GetValue(vocabulary));
            shape.Validate();
            int timedRuns = parse.GetValue(runs);
            if (timedRuns < 1) throw new ArgumentException($"--runs must be positive (got {timedRuns})");
            using var backend = CliApp.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            int threadCount = ThreadCount(backend);
            output.WriteLine($"ops at batch {shape.Batch}, tokens {shape.Tokens}, d {shape.Channels}, heads {shape.Heads}, vocab {shape.Vocabulary} on {backend.Device}");
            output.WriteLine($"machine: {MachineInfo.Describe(threadCount)}");
            output.WriteLine($"{"op",-28} {"shape",-22} {"median ms",10} {"GB/s",8} {"GFLOP/s",8}");
            var results = new List<(OpBenchCase Case, Timing Timing)>();
            using var bench = new OpBench(backend, shape);
            foreach (var item in bench.Cases())
            {
                var timing = Timing.Measure(backend, item.Run, warmup: 2, timedRuns);
                results.Add((item, timing));
                string flops = item.Flops > 0 ? $"{item.Flops / timing.MedianSeconds / 1e9,8:F1}" : $"{"",8}";
                output.WriteLine($"{item.Name,-28} {item.Shape,-22} {timing.MedianSeconds * 1e3,10:F3} {item.Bytes / timing.MedianSeconds / 1e9,8:F1} {flops}");
            }
            var path = parse.GetValue(json);
            if (path is not null)
                MachineInfo.WriteJson(path, w =>
                {
                    w.WriteString("benchmark", "ops");
                    MachineInfo.Write(w, threadCount);
                    w.WriteString("device", backend.Device.ToString());
                    w.WriteStartArray("ops");
                    foreach (var (item, timing) in results)
                    {
                        w.WriteStartObject();
                        w.WriteString("op", item.Name);
                        w.WriteString("shape", item.Shape);
                        w.WriteNumber("median_seconds", timing.MedianSeconds);
                        w.WriteNumber("gbps", item.Bytes / timing.MedianSeconds / 1e9);
                        if (item.Flops > 0) w.WriteNumber("gflops", item.Flops / timing.MedianSeconds / 1e9);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                });
            return 0;
        });
        return command;
    }

    internal static int ThreadCount(Backend backend) => backend is Native.Cpu.CpuBackend cpu ? cpu.ThreadCount : 1;

    internal static Tensor Random(Backend backend, int seed, int[] dims, float scale = 1f)
    {
        var tensor = backend.Allocate(dims);
        var values = new float[tensor.ElementCount];
        var random = new Random(seed);
        for (int i = 0; i < values.Length; i++) values[i] = scale * (float)(2 * random.NextDouble() - 1);
        backend.Upload<float>(tensor, values);
        return tensor;
    }
}
