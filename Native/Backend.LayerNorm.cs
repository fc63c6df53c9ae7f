namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// The residual combine fused with layer norm: <c>s = lambda * x + beta * branch</c>, then
    /// <c>normOutput = (s - mean(s)) * rstd(s) * weight + bias</c> over the last dimension. Pre-LN blocks keep
    /// <c>s</c> as the residual stream and feed <c>normOutput</c> to the next sublayer; Post-LN blocks keep
    /// <c>normOutput</c>. With <paramref name="branch"/> null it is a plain layer norm of <paramref name="x"/>
    /// (lambda and beta unused, <paramref name="residualOutput"/> must be null).
    /// </summary>
    /// <param name="residualOutput">s, shaped like x; required when branch is given (backward reads it).</param>
    /// <param name="normOutput">Shaped like x.</param>
    /// <param name="mean">[rows] (rows = elements / channels): saved for backward.</param>
    /// <param name="rstd">[rows]: 1 / sqrt(var + epsilon), saved for backward.</param>
    /// <param name="x">[..., channels]: the residual stream.</param>
    /// <param name="branch">Shaped like x: the sublayer output f(x), or null.</param>
    /// <param name="lambda">Weight of the skip (DSLM: lambda^2 + beta^2 = 1).</param>
    /// <param name="beta">Weight of the branch.</param>
    /// <param name="weight">Optional [channels] gain (affine).</param>
    /// <param name="bias">Optional [channels] shift (affine).</param>
    /// <param name="epsilon">Added to the variance.</param>
    public void ResidualLayerNorm(Tensor? residualOutput, Tensor normOutput, Tensor mean, Tensor rstd,
        Tensor x, Tensor? branch, float lambda, float beta, Tensor? weight, Tensor? bias, float epsilon = 1e-5f)
    {
        ResidualLayerNormCore(residualOutput, normOutput, mean, rstd, x, branch, lambda, beta, weight, bias, epsilon);
    }

    /// <summary>
    /// Backward of <see cref="ResidualLayerNorm"/>. With <c>ds = gradResidualOutput + dLayerNorm/ds</c> it
    /// accumulates <c>gradX += lambda * ds</c>, <c>gradBranch += beta * ds</c> (without a branch:
    /// <c>gradX += ds</c>), <c>gradWeight += sum(gradNormOutput * xhat)</c>, <c>gradBias += sum(gradNormOutput)</c>.
    /// </summary>
    /// <param name="gradX">Shaped like x, or null.</param>
    /// <param name="gradBranch">Shaped like x, or null.</param>
    /// <param name="gradWeight">[channels], or null.</param>
    /// <param name="gradBias">[channels], or null.</param>
    /// <param name="gradNormOutput">Gradient at normOutput.</param>
    /// <param name="gradResidualOutput">Gradient arriving at s directly (Pre-LN residual stream), or null.</param>
    /// <param name="normInput">What was normalised: the forward's residualOutput, or x when there was no branch.</param>
    /// <param name="mean">Saved by the forward.</param>
    /// <param name="rstd">Saved by the forward.</param>
    /// <param name="weight">The forward's weight, or null.</param>
    /// <param name="lambda">As in the forward.</param>
    /// <param name="beta">As in the forward.</param>
    /// <param name="hasBranch">Whether the forward combined a branch.</param>
    public void ResidualLayerNormBackward(Tensor? gradX, Tensor? gradBranch, Tensor? gradWeight, Tensor? gradBias,
        Tensor gradNormOutput, Tensor? gradResidualOutput, Tensor normInput, Tensor mean, Tensor rstd, Tensor? weight,
        float lambda, float beta, bool hasBranch)
    {
        ResidualLayerNormBackwardCore(gradX, gradBranch, gradWeight, gradBias, gradNormOutput, gradResidualOutput, normInput, mean, rstd, weight, lambda, beta, hasBranch);
    }

    /// <summary>The residual combine alone: <c>output = lambda * x + beta * branch</c> (no norm: vanilla or final blocks).</summary>
    public void Residual(Tensor output, Tensor x, Tensor branch, float lambda, float beta)
    {
        ResidualCore(output, x, branch, lambda, beta);
    }

    /// <summary>Backward of <see cref="Residual"/>: <c>gradX += lambda * gradOutput</c>, <c>gradBranch += beta * gradOutput</c>.</summary>
    public void ResidualBackward(Tensor? gradX, Tensor? gradBranch, Tensor gradOutput, float lambda, float beta)
    {
        ResidualBackwardCore(gradX, gradBranch, gradOutput, lambda, beta);
    }

    /// <summary>Kernel of <see cref="ResidualLayerNorm"/>; operands already validated.</summary>
    protected abstract void ResidualLayerNormCore(Tensor? residualOutput, Tensor normOutput, Tensor mean, Tensor rstd, Tensor x, Tensor? branch, float lambda, float beta, Tensor? weight, Tensor? bias, float epsilon);
    /// <summary>Kernel of <see cref="ResidualLayerNormBackward"/>; operands already validated.</summary>
    protected abstract void ResidualLayerNormBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor? gradWeight, Tensor? gradBias, Tensor gradNormOutput, Tensor? gradResidualOutput, Tensor normInput, Tensor mean, Tensor rstd, Tensor? weight, float lambda, float beta, bool hasBranch);
    /// <summary>Kernel of <see cref="Residual"/>; operands already validated.</summary>
    protected abstract void ResidualCore(Tensor output, Tensor x, Tensor branch, float lambda, float beta);
    /// <summary>Kernel of <see cref="ResidualBackward"/>; operands already validated.</summary>
    protected abstract void ResidualBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor gradOutput, float lambda, float beta);
}
