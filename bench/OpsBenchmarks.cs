using BenchmarkDotNet.Attributes;
using DeepScaleLM.Cli;
using DeepScaleLM.Native.Cpu;

namespace DeepScaleLM.Bench;

/// <summary>
/// Every op of the contract at a transformer-sized shape (batch 4, 512 tokens, d 768, 12 heads, vocabulary
/// 50304), timed by BenchmarkDotNet. The cases are those of <c>dslm bench ops</c>, so both report the same calls.
/// </summary>
[MemoryDiagnoser]
public class OpsBenchmarks
{
    private CpuBackend _backend = null!;
    private OpBench _bench = null!;
    private Action _run = null!;

    /// <summary>The op to time, by its name in <c>dslm bench ops</c>.</summary>
    [ParamsSource(nameof(OpNames))]
    public string Op { get; set; } = "";

    /// <summary>Every op name (listed from a tiny shape: the names do not depend on it).</summary>
    public static IEnumerable<string> OpNames()
    {
        using var backend = new CpuBackend(threadCount: 1);
        using var bench = new OpBench(backend, new OpBenchShape(Batch: 1, Tokens: 2, Channels: 2, Heads: 1, Vocabulary: 2));
        return bench.Cases().Select(c => c.Name).ToList();
    }

    private static OpBenchShape Shape => new(Batch: 4, Tokens: 512, Channels: 768, Heads: 12, Vocabulary: 50304);

    /// <summary>Allocates the inputs once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        _bench = new OpBench(_backend, Shape);
        _run = _bench.Cases().First(c => c.Name == Op).Run;
    }

    /// <summary>One call of the op.</summary>
    [Benchmark]
    public void Run() => _run();

    /// <summary>Frees the inputs and the worker threads.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _bench.Dispose();
        _backend.Dispose();
    }
}
