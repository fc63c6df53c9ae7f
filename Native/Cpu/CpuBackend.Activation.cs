namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void ActivationCore(Tensor output, Tensor input, ActivationFunction function) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override void ActivationBackwardCore(Tensor gradInput, Tensor gradOutput, Tensor input, ActivationFunction function) => throw new NotImplementedException();
}
