namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void AdamWCore(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWOptions options, int step, float gradientScale) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override double GlobalNormCore(ReadOnlySpan<Tensor> tensors) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override double ClipByGlobalNormCore(float maxNorm, ReadOnlySpan<Tensor> tensors) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override void ScaleCore(Tensor tensor, float factor) => throw new NotImplementedException();
}
