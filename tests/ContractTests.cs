using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;

namespace DeepScaleLM.Tests;

/// <summary>The tensor core and the validation every op shares.</summary>
public sealed class ContractTests
{
    [Fact]
    public void ViewsShareStorageAndSlicesStayInside()
    {
        using var backend = new CpuBackend();
        using var t = backend.Allocate(2, 3);
        backend.Upload<float>(t, [1, 2, 3, 4, 5, 6]);
        var row = t.Slice(3, 3);
        Assert.Equal([4f, 5f, 6f], row.AsSpan<float>().ToArray());
        row.AsSpan<float>()[0] = 40;
        Assert.Equal(40f, t.View(6).AsSpan<float>()[3]);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => t.Slice(4, 3));
        Assert.Contains("[3]", ex.Message);
        Assert.Throws<ArgumentException>(() => t.View(4));
    }

    [Fact]
    public void NegativeDimensionIsRejectedWithTheShape()
    {
        using var backend = new CpuBackend();
        var ex = Assert.Throws<ArgumentException>(() => backend.Allocate(2, -1));
        Assert.Contains("[2, -1]", ex.Message);
    }

    [Fact]
    public void UploadOfWrongLengthNamesBothSizes()
    {
        using var backend = new CpuBackend();
        using var t = backend.Allocate(2, 2);
        var ex = Assert.Throws<ArgumentException>(() => backend.Upload<float>(t, [1f, 2f, 3f]));
        Assert.Contains("3 elements", ex.Message);
        Assert.Contains("[2, 2]", ex.Message);
    }

    [Fact]
    public void ReleasedTensorIsRejected()
    {
        using var backend = new CpuBackend();
        var t = backend.Allocate(4);
        var view = t.View(2, 2);
        t.Dispose();
        Assert.Throws<ArgumentException>(() => backend.Zero(view));
    }

    [Fact]
    public void ShapeCheckFormatsItsContextOnlyOnMismatch()
    {
        using var backend = new CpuBackend();
        using var t = backend.Allocate(2, 3);
        int formatted = 0;
        string Context() { formatted++; return "a [2, 3]"; }
        Check.Shape(t, "t", [2, 3], $"{Context()}");
        Assert.Equal(0, formatted);
        var ex = Assert.Throws<ArgumentException>(() => Check.Shape(t, "t", [3, 2], $"{Context()}"));
        Assert.Equal(1, formatted);
        Assert.StartsWith("operand 't' has shape [2, 3] but [3, 2] is required (a [2, 3])", ex.Message);
        Assert.Equal("t", ex.ParamName);
    }

    [Fact]
    public void FractionRejectsOneAndNaN()
    {
        Check.Fraction(0f, "p");
        Check.Fraction(0.999f, "p");
        Assert.Contains("'p' must lie in [0, 1) but is 1", Assert.Throws<ArgumentException>(() => Check.Fraction(1f, "p")).Message);
        Assert.Throws<ArgumentException>(() => Check.Fraction(float.NaN, "p"));
    }

    [Theory]
    [InlineData("cpu", DeviceKind.Cpu, 0)]
    [InlineData("cuda", DeviceKind.Cuda, 0)]
    [InlineData("CUDA:3", DeviceKind.Cuda, 3)]
    public void DeviceParses(string text, DeviceKind kind, int index)
    {
        Assert.Equal(new Device(kind, index), Device.Parse(text));
        Assert.Throws<FormatException>(() => Device.Parse("tpu"));
    }

    [Fact]
    public void WorkerPoolRunsEveryIndexOnce()
    {
        using var pool = new WorkerPool(3);
        for (int count = 0; count < 50; count++)
        {
            var hits = new int[count];
            var job = new CountJob(hits);
            pool.For(count, ref job);
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void PartitionCoversTheRangeExactly()
    {
        for (int total = 0; total < 40; total++)
            for (int parts = 1; parts < 7; parts++)
            {
                int next = 0;
                for (int p = 0; p < parts; p++)
                {
                    var (start, end) = WorkerPool.Partition(p, parts, total);
                    Assert.Equal(next, start);
                    Assert.InRange(end - start, total / parts, total / parts + 1);
                    next = end;
                }
                Assert.Equal(total, next);
            }
    }

    private readonly struct CountJob(int[] hits) : IParallelJob
    {
        public void Execute(int index) => Interlocked.Increment(ref hits[index]);
    }
}
