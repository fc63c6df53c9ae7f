namespace DeepScaleLM.Native;

/// <summary>The kind of processor a <see cref="Device"/> names.</summary>
public enum DeviceKind
{
    /// <summary>The host CPU (the C# backend).</summary>
    Cpu,
    /// <summary>An NVIDIA GPU through the CUDA backend.</summary>
    Cuda,
}

/// <summary>Where a tensor lives and where its operations run: <c>cpu</c> or <c>cuda:N</c>.</summary>
/// <param name="Kind">The processor kind.</param>
/// <param name="Index">The device ordinal (always 0 for the CPU).</param>
public readonly record struct Device(DeviceKind Kind, int Index = 0)
{
    /// <summary>The host CPU.</summary>
    public static Device Cpu => new(DeviceKind.Cpu);

    /// <summary>The CUDA device with ordinal <paramref name="index"/>.</summary>
    public static Device Cuda(int index = 0) => new(DeviceKind.Cuda, index);

    /// <summary>Parses <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    /// <exception cref="FormatException">The text names no device.</exception>
    public static Device Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return Cpu;
        if (t == "cuda") return Cuda(0);
        if (t.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(t.AsSpan(5), out var index) && index >= 0)
            return Cuda(index);
        throw new FormatException($"'{text}' is not a device: expected cpu, cuda or cuda:N");
    }

    /// <inheritdoc/>
    public override string ToString() => Kind == DeviceKind.Cpu ? "cpu" : $"cuda:{Index}";
}
