using System.Diagnostics;

namespace DeepScaleLM.Native.Profiling;

/// <summary>The fastest a device can go, against which a profile's achieved rates are read as fractions.</summary>
/// <param name="FlopsPerSecond">Peak FLOP/s of the matrix products as this backend runs them (fp32 GEMMs: the
/// CUDA backend's matmuls are fp32 even when activations are rounded to bf16 or fp16); 0 when unknown.</param>
/// <param name="BytesPerSecond">Peak memory bandwidth; 0 when unknown.</param>
/// <param name="Source">Where the figures come from, in words (a datasheet, a measurement, a flag).</param>
public sealed record DevicePeak(double FlopsPerSecond, double BytesPerSecond, string Source)
{
    /// <summary>
    /// Dense datasheet peaks of the GPUs named here (NVIDIA H100 and H200 datasheets): fp32 (CUDA cores), TF32 and bf16
    /// (tensor cores, without sparsity), and HBM bandwidth. The key is matched against the driver's device name.
    /// </summary>
    public static IReadOnlyList<GpuDatasheet> Datasheets { get; } =
    [
        // "NVIDIA H100 80GB HBM3" is the SXM5 part; the PCIe card reports "NVIDIA H100 PCIe".
        new("H100 PCIe", ["H100", "PCIe"], 51.2e12, 378e12, 756e12, 2.0e12),
        new("H100 SXM", ["H100"], 67e12, 494.7e12, 989.4e12, 3.35e12),
        new("H200 SXM", ["H200"], 67e12, 494.7e12, 989.4e12, 4.8e12),
    ];

    /// <summary>The datasheet of the GPU the driver calls <paramref name="deviceName"/>, or null when it is not listed.</summary>
    public static GpuDatasheet? FindDatasheet(string deviceName)
    {
        ArgumentNullException.ThrowIfNull(deviceName);
        return Datasheets.FirstOrDefault(sheet => sheet.NameParts.All(part => deviceName.Contains(part, StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>
    /// Measures <paramref name="backend"/>: the best of five fp32 products of 512 x 512 x 512 (GFLOP/s) and the best of
    /// three copies of 64 MiB (bytes read plus written per second). A CPU has no datasheet here; this is its peak as this
    /// backend reaches it, so the fractions say how far an op is from the backend's own best, not from the silicon's.
    /// </summary>
    public static DevicePeak Measure(Backend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        const int size = 512, copyFloats = 16 << 20;
        using var a = backend.Allocate(size, size);
        using var b = backend.Allocate(size, size);
        using var c = backend.Allocate(size, size);
        double gemm = Best(5, () => backend.MatMul(c, a, b), backend);
        using var source = backend.Allocate(copyFloats);
        using var destination = backend.Allocate(copyFloats);
        double copy = Best(3, () => backend.Copy(destination, source), backend);
        return new(2.0 * size * size * size / gemm, 2.0 * copyFloats * sizeof(float) / copy,
            $"measured on this backend: best of 5 fp32 GEMMs {size}^3 and of 3 copies of {copyFloats * sizeof(float) >> 20} MiB");
    }

    /// <summary>Fastest of <paramref name="runs"/> timed runs after one untimed, each waited for (a GPU runs asynchronously).</summary>
    private static double Best(int runs, Action work, Backend backend)
    {
        work();
        backend.Synchronize();
        double best = double.PositiveInfinity;
        for (int i = 0; i < runs; i++)
        {
            long start = Stopwatch.GetTimestamp();
            work();
            backend.Synchronize();
            best = Math.Min(best, Math.Max(Stopwatch.GetElapsedTime(start).TotalSeconds, 1e-9));
        }
        return best;
    }
}

/// <summary>One GPU's datasheet peaks (dense, no sparsity).</summary>
/// <param name="Name">The part, as the datasheet names it.</param>
/// <param name="NameParts">Every one of these occurs in the driver's device name of this part.</param>
/// <param name="Fp32FlopsPerSecond">fp32 on CUDA cores.</param>
/// <param name="Tf32FlopsPerSecond">TF32 on tensor cores.</param>
/// <param name="Bf16FlopsPerSecond">bf16 on tensor cores (fp32 accumulation).</param>
/// <param name="BytesPerSecond">Memory bandwidth.</param>
public sealed record GpuDatasheet(string Name, IReadOnlyList<string> NameParts, double Fp32FlopsPerSecond, double Tf32FlopsPerSecond,
    double Bf16FlopsPerSecond, double BytesPerSecond);
