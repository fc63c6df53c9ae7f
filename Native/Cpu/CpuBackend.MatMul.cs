namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void MatMulCore(Tensor output, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha, float beta, Tensor? bias) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override void MatMulBackwardCore(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha) => throw new NotImplementedException();
}
