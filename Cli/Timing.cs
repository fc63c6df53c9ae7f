using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text.Json;
using DeepScaleLM.Native;

namespace DeepScaleLM.Cli;

/// <summary>Median and best wall time of repeated runs of one piece of work.</summary>
/// <param name="MedianSeconds">Median over the timed runs.</param>
/// <param name="BestSeconds">Fastest timed run.</param>
/// <param name="Runs">Timed runs (after warm-up).</param>
internal readonly record struct Timing(double MedianSeconds, double BestSeconds, int Runs)
{
    /// <summary>
    /// Runs <paramref name="work"/> <paramref name="warmup"/> times untimed (JIT tiers, caches, page faults, PTX JIT),
    /// then <paramref name="runs"/> times timed, waiting for <paramref name="backend"/> after each run so that an
    /// asynchronous device's time is the work's, not its launches'.
    /// </summary>
    public static Timing Measure(Backend backend, Action work, int warmup, int runs)
    {
        for (int i = 0; i < warmup; i++) work();
        backend.Synchronize();
        var seconds = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            long start = Stopwatch.GetTimestamp();
            work();
            backend.Synchronize();
            // A run shorter than the timer's resolution counts as one tick, so rates stay finite (a lower bound).
            seconds[i] = Math.Max(Stopwatch.GetTimestamp() - start, 1) / (double)Stopwatch.Frequency;
        }
        Array.Sort(seconds);
        double median = runs % 2 == 1 ? seconds[runs / 2] : 0.5 * (seconds[runs / 2 - 1] + seconds[runs / 2]);
        return new Timing(median, seconds[0], runs);
    }
}

/// <summary>The machine a benchmark ran on, recorded beside every figure.</summary>
internal static class MachineInfo
{
    public static string Processor()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal))
                    return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    public static string Describe(int threads) =>
        $"{Processor()}, {Environment.ProcessorCount} logical cores, {threads} threads, " +
        $"{(Vector512.IsHardwareAccelerated ? "AVX-512" : Vector256.IsHardwareAccelerated ? "AVX2" : "no wide SIMD")}, " +
        $"{RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}";

    public static void Write(Utf8JsonWriter json, int threads)
    {
        json.WriteStartObject("machine");
        json.WriteString("processor", Processor());
        json.WriteNumber("logical_cores", Environment.ProcessorCount);
        json.WriteNumber("threads", threads);
        json.WriteBoolean("avx512", Vector512.IsHardwareAccelerated);
        json.WriteString("runtime", RuntimeInformation.FrameworkDescription);
        json.WriteString("os", RuntimeInformation.OSDescription);
        json.WriteEndObject();
    }

    /// <summary>Writes a JSON document to <paramref name="path"/> atomically (temporary file, then rename).</summary>
    public static void WriteJson(string path, Action<Utf8JsonWriter> body)
    {
        string full = Path.GetFullPath(path);
        string temporary = full + ".tmp";
        using (var stream = File.Create(temporary))
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            body(json);
            json.WriteEndObject();
        }
        File.Move(temporary, full, overwrite: true);
    }
}
