namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void DropoutCore(Tensor output, Tensor input, float probability, ulong seed, ulong offset) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override void DropoutBackwardCore(Tensor gradInput, Tensor gradOutput, float probability, ulong seed, ulong offset) => throw new NotImplementedException();
}
