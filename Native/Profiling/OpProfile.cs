namespace DeepScaleLM.Native.Profiling;

/// <summary>What <see cref="ProfilingBackend"/> measured for one op since it was made or reset.</summary>
/// <param name="Op">The op.</param>
/// <param name="Calls">Calls made.</param>
/// <param name="Seconds">Device time of those calls, summed.</param>
/// <param name="Flops">Matrix-product FLOPs of those calls (<see cref="OpCosts"/>), summed.</param>
/// <param name="Bytes">Bytes those calls had to move (<see cref="OpCosts"/>), summed.</param>
public sealed record OpProfile(ProfiledOp Op, long Calls, double Seconds, double Flops, double Bytes)
{
    /// <summary>The op's name: the name of its method on <see cref="Backend"/>.</summary>
    public string Name => Op.ToString();

    /// <summary>Achieved FLOP/s (0 when the op counts no FLOPs or took no measurable time).</summary>
    public double FlopsPerSecond => Seconds > 0 ? Flops / Seconds : 0;

    /// <summary>Achieved bytes per second (0 when no time was measured).</summary>
    public double BytesPerSecond => Seconds > 0 ? Bytes / Seconds : 0;
}
