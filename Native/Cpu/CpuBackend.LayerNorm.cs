namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override void ResidualLayerNormCore(Tensor? residualOutput, Tensor normOutput, Tensor mean, Tensor rstd, Tensor x, Tensor? branch, float lambda, float beta, Tensor? weight, Tensor? bias, float epsilon) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override void ResidualLayerNormBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor? gradWeight, Tensor? gradBias, Tensor gradNormOutput, Tensor? gradResidualOutput, Tensor normInput, Tensor mean, Tensor rstd, Tensor? weight, float lambda, float beta, bool hasBranch) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override void ResidualCore(Tensor output, Tensor x, Tensor branch, float lambda, float beta) => throw new NotImplementedException();
    /// <inheritdoc/>
    protected override void ResidualBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor gradOutput, float lambda, float beta) => throw new NotImplementedException();
}
