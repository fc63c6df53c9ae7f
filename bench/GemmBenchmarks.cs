using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using DeepScaleLM.Native.Cpu;

namespace DeepScaleLM.Bench;

/// <summary>One GEMM shape: op(A) [M, K] * op(B) [K, N], written M x K x N as in (B*T) x d x 4d.</summary>
public sealed record GemmShape(int M, int K, int N, bool TransA = false, bool TransB = false)
{
    /// <summary>Floating-point operations of one product (a multiply-add counts 2).</summary>
    public double Flops => 2.0 * M * N * K;

    /// <summary>Like <c>2048x768x3072 NN</c>.</summary>
    public override string ToString() => $"{M}x{K}x{N} {(TransA ? 'T' : 'N')}{(TransB ? 'T' : 'N')}";
}

/// <summary>
/// Throughput of <see cref="CpuGemm.Multiply"/> on every core: 1024^3 in all four transpose combinations, the
/// transformer MLP shapes (B*T) x d x 4d and back, and thin attention-sized shapes with d = 64..256. Run with
/// <c>dotnet run -c Release --project bench -- --filter '*Gemm*'</c>; the GFLOP/s column is 2*M*N*K / mean.
/// </summary>
[Config(typeof(GflopsConfig))]
public unsafe class GemmBenchmarks
{
    private WorkerPool? _pool;
    private CpuGemm? _gemm;
    private float* _a, _b, _c;

    /// <summary>The shapes measured.</summary>
    public static IEnumerable<GemmShape> Shapes =>
    [
        new(1024, 1024, 1024), new(1024, 1024, 1024, false, true), new(1024, 1024, 1024, true, false), new(1024, 1024, 1024, true, true),
        new(2048, 768, 3072), new(2048, 3072, 768),
        new(4096, 64, 64), new(4096, 256, 256), new(1024, 1024, 64), new(1024, 64, 1024, false, true),
    ];

    /// <summary>The shape of this run.</summary>
    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; } = new(1, 1, 1);

    /// <summary>Allocates 64-byte aligned operands with values in [-0.5, 0.5) and a pool over every core.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _pool = new WorkerPool(Environment.ProcessorCount);
        _gemm = new CpuGemm(_pool);
        var random = new Random(1);
        _a = Allocate((long)Shape.M * Shape.K, random);
        _b = Allocate((long)Shape.K * Shape.N, random);
        _c = Allocate((long)Shape.M * Shape.N, random);
    }

    /// <summary>One product, C = op(A) op(B).</summary>
    [Benchmark]
    public void Multiply()
    {
        var s = Shape;
        _gemm!.Multiply(s.TransA, s.TransB, s.M, s.N, s.K, 1f, _a, s.TransA ? s.M : s.K, _b, s.TransB ? s.K : s.N, 0f, _c, s.N);
    }

    /// <summary>Frees the operands and stops the pool.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_a);
        NativeMemory.AlignedFree(_b);
        NativeMemory.AlignedFree(_c);
        _pool?.Dispose();
    }

    private static float* Allocate(long count, Random random)
    {
        var values = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        for (long i = 0; i < count; i++) values[i] = (float)random.NextDouble() - 0.5f;
        return values;
    }

    private sealed class GflopsConfig : ManualConfig
    {
        public GflopsConfig() => AddColumn(new GflopsColumn());
    }

    /// <summary>GFLOP/s from the mean time of a run and its <see cref="GemmShape"/>.</summary>
    private sealed class GflopsColumn : IColumn
    {
        public string Id => nameof(GflopsColumn);
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "2*M*N*K / mean time, in 1e9 floating-point operations a second";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            double? nanoseconds = summary[benchmarkCase]?.ResultStatistics?.Mean;
            return nanoseconds is > 0 && benchmarkCase.Parameters["Shape"] is GemmShape shape
                ? (shape.Flops / nanoseconds.Value).ToString("F1")
                : "-";
        }
    }
}
