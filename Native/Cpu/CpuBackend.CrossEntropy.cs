namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void SoftmaxCrossEntropyCore(Tensor losses, Tensor logits, Tensor targets, int ignoreIndex) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override void SoftmaxCrossEntropyBackwardCore(Tensor gradLogits, Tensor gradLosses, Tensor logits, Tensor targets, int ignoreIndex) => throw new NotImplementedException();
}
