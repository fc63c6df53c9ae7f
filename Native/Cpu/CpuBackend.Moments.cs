namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override MomentStatistics MomentsCore(Tensor activations) => throw new NotImplementedException();
}
