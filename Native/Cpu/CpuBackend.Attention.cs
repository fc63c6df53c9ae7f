namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void AttentionCore(Tensor output, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override void AttentionBackwardCore(Tensor? gradQuery, Tensor? gradKey, Tensor? gradValue, Tensor? gradMixAlpha, Tensor? gradMixBeta, Tensor gradOutput, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options) => throw new NotImplementedException();
}
