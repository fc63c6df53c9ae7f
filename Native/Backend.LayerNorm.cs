namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// The residual combine fused with layer norm: <c>s = lambda * x + beta * branch</c>, then
    /// <c>normOutput = (s - mean(s)) * rstd(s) * weight + bias</c> over the last dimension. Pre-LN blocks keep
    /// <c>s</c> as the residual stream and feed <c>normOutput</c> to the next sublayer; Post-LN blocks keep
    /// <c>normOutput</c>. With <paramref name="branch"/> null it is a plain layer norm of <paramref name="x"/>
    /// (lambda and beta unused, <paramref name="residualOutput"/> must be null). The variance is the biased one
    /// (divided by channels), computed in two passes; outputs may not overlap any operand. Rows run in parallel.
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
    /// <param name="epsilon">Added to the variance; finite and positive.</param>
    /// <exception cref="ArgumentException">Shapes disagree, residualOutput is given without a branch or missing with
    /// one, a scalar is not finite, epsilon is not positive, or an output overlaps another operand.</exception>
    public void ResidualLayerNorm(Tensor? residualOutput, Tensor normOutput, Tensor mean, Tensor rstd,
        Tensor x, Tensor? branch, float lambda, float beta, Tensor? weight, Tensor? bias, float epsilon = 1e-5f)
    {
        int rows = CheckRows(x, nameof(x));
        Check.Operand(this, normOutput, nameof(normOutput));
        Check.SameShape(normOutput, nameof(normOutput), x, nameof(x));
        Check.Optional(this, branch, nameof(branch));
        if (branch is not null) Check.SameShape(branch, nameof(branch), x, nameof(x));
        if (branch is not null && residualOutput is null)
            throw new ArgumentException($"operand 'residualOutput' is null, but a branch {branch.Shape} is given: the backward reads s = lambda * x + beta * branch", nameof(residualOutput));
        if (branch is null && residualOutput is not null)
            throw new ArgumentException($"operand 'residualOutput' {residualOutput.Shape} is given, but there is no branch to combine", nameof(residualOutput));
        Check.Optional(this, residualOutput, nameof(residualOutput));
        if (residualOutput is not null) Check.SameShape(residualOutput, nameof(residualOutput), x, nameof(x));
        CheckRowStatistics(mean, nameof(mean), rstd, nameof(rstd), x, nameof(x), rows);
        CheckChannelVector(weight, nameof(weight), x, nameof(x));
        CheckChannelVector(bias, nameof(bias), x, nameof(x));
        CheckBranchWeights(branch is not null, lambda, beta);
        if (!(epsilon > 0f && float.IsFinite(epsilon)))
            throw new ArgumentException($"'{nameof(epsilon)}' must be finite and positive but is {epsilon}", nameof(epsilon));
        ReadOnlySpan<(Tensor?, string)> reads = [(x, nameof(x)), (branch, nameof(branch)), (weight, nameof(weight)), (bias, nameof(bias))];
        CheckDisjoint(residualOutput, nameof(residualOutput), reads, [(normOutput, nameof(normOutput)), (mean, nameof(mean)), (rstd, nameof(rstd))]);
        CheckDisjoint(normOutput, nameof(normOutput), reads, [(mean, nameof(mean)), (rstd, nameof(rstd))]);
        CheckDisjoint(mean, nameof(mean), reads, [(rstd, nameof(rstd))]);
        CheckDisjoint(rstd, nameof(rstd), reads, []);
        ResidualLayerNormCore(residualOutput, normOutput, mean, rstd, x, branch, lambda, beta, weight, bias, epsilon);
        KeepAlive(residualOutput, normOutput, mean, rstd, x, branch, weight, bias);
    }

    /// <summary>
    /// Backward of <see cref="ResidualLayerNorm"/>. With <c>ds = gradResidualOutput + dLayerNorm/ds</c> it
    /// accumulates <c>gradX += lambda * ds</c>, <c>gradBranch += beta * ds</c> (without a branch:
    /// <c>gradX += ds</c>), <c>gradWeight += sum(gradNormOutput * xhat)</c>, <c>gradBias += sum(gradNormOutput)</c>
    /// (summed over rows in a fixed order: bit-identical across runs and thread counts).
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
    /// <param name="hasBranch">Whether the forward combined a branch; without one, gradBranch and
    /// gradResidualOutput must be null.</param>
    /// <exception cref="ArgumentException">Shapes disagree with the forward's, a branch gradient is given without a
    /// branch, a scalar is not finite, a gradient overlaps a tensor the backward reads, or two gradients partly
    /// overlap (the very same view twice is allowed).</exception>
    public void ResidualLayerNormBackward(Tensor? gradX, Tensor? gradBranch, Tensor? gradWeight, Tensor? gradBias,
        Tensor gradNormOutput, Tensor? gradResidualOutput, Tensor normInput, Tensor mean, Tensor rstd, Tensor? weight,
        float lambda, float beta, bool hasBranch)
    {
        int rows = CheckRows(normInput, nameof(normInput));
        Check.Operand(this, gradNormOutput, nameof(gradNormOutput));
        Check.SameShape(gradNormOutput, nameof(gradNormOutput), normInput, nameof(normInput));
        if (!hasBranch && (gradBranch ?? gradResidualOutput) is Tensor stray)
        {
            string name = gradBranch is null ? nameof(gradResidualOutput) : nameof(gradBranch);
            throw new ArgumentException($"operand '{name}' {stray.Shape} is given, but the forward had no branch (hasBranch is false)", name);
        }
        CheckSameShapeOptional(gradResidualOutput, nameof(gradResidualOutput), normInput, nameof(normInput));
        CheckRowStatistics(mean, nameof(mean), rstd, nameof(rstd), normInput, nameof(normInput), rows);
        CheckChannelVector(weight, nameof(weight), normInput, nameof(normInput));
        CheckSameShapeOptional(gradX, nameof(gradX), normInput, nameof(normInput));
        CheckSameShapeOptional(gradBranch, nameof(gradBranch), normInput, nameof(normInput));
        CheckChannelVector(gradWeight, nameof(gradWeight), normInput, nameof(normInput));
        CheckChannelVector(gradBias, nameof(gradBias), normInput, nameof(normInput));
        CheckBranchWeights(hasBranch, lambda, beta);
        ReadOnlySpan<(Tensor?, string)> reads = [(gradNormOutput, nameof(gradNormOutput)), (gradResidualOutput, nameof(gradResidualOutput)),
            (normInput, nameof(normInput)), (mean, nameof(mean)), (rstd, nameof(rstd)), (weight, nameof(weight))];
        CheckDisjoint(gradX, nameof(gradX), reads, []);
        CheckDisjoint(gradBranch, nameof(gradBranch), reads, []);
        CheckDisjoint(gradWeight, nameof(gradWeight), reads, []);
        CheckDisjoint(gradBias, nameof(gradBias), reads, []);
        // Rows are written by several threads: gradients may be one view twice, never partly overlap.
        Check.OutputsApart([(gradX, nameof(gradX)), (gradBranch, nameof(gradBranch)), (gradWeight, nameof(gradWeight)), (gradBias, nameof(gradBias))]);
        ResidualLayerNormBackwardCore(gradX, gradBranch, gradWeight, gradBias, gradNormOutput, gradResidualOutput, normInput, mean, rstd, weight, lambda, beta, hasBranch);
        KeepAlive(gradX, gradBranch, gradWeight, gradBias, gradNormOutput, gradResidualOutput, normInput, mean, rstd, weight);
    }

    /// <summary>The residual combine alone: <c>output = lambda * x + beta * branch</c> (no norm: vanilla or final blocks).</summary>
    /// <exception cref="ArgumentException">Shapes differ, a scalar is not finite, or the output overlaps an input.</exception>
    public void Residual(Tensor output, Tensor x, Tensor branch, float lambda, float beta)
    {
        Check.Operand(this, output, nameof(output));
        Check.Operand(this, x, nameof(x));
        Check.Operand(this, branch, nameof(branch));
        Check.SameShape(branch, nameof(branch), x, nameof(x));
        Check.SameShape(output, nameof(output), x, nameof(x));
        Check.Finite(lambda, nameof(lambda));
        Check.Finite(beta, nameof(beta));
        Check.Disjoint(output, nameof(output), x, nameof(x));
        Check.Disjoint(output, nameof(output), branch, nameof(branch));
        ResidualCore(output, x, branch, lambda, beta);
        KeepAlive(output, x, branch);
    }

    /// <summary>Backward of <see cref="Residual"/>: <c>gradX += lambda * gradOutput</c>, <c>gradBranch += beta * gradOutput</c>.</summary>
    /// <exception cref="ArgumentException">Shapes differ, a scalar is not finite, a gradient overlaps gradOutput, or
    /// the gradients partly overlap each other.</exception>
    public void ResidualBackward(Tensor? gradX, Tensor? gradBranch, Tensor gradOutput, float lambda, float beta)
    {
        Check.Operand(this, gradOutput, nameof(gradOutput));
        CheckSameShapeOptional(gradX, nameof(gradX), gradOutput, nameof(gradOutput));
        CheckSameShapeOptional(gradBranch, nameof(gradBranch), gradOutput, nameof(gradOutput));
        Check.Finite(lambda, nameof(lambda));
        Check.Finite(beta, nameof(beta));
        CheckDisjoint(gradX, nameof(gradX), [(gradOutput, nameof(gradOutput))], []);
        CheckDisjoint(gradBranch, nameof(gradBranch), [(gradOutput, nameof(gradOutput))], []);
        Check.OutputsApart([(gradX, nameof(gradX)), (gradBranch, nameof(gradBranch))]);
        ResidualBackwardCore(gradX, gradBranch, gradOutput, lambda, beta);
        KeepAlive(gradX, gradBranch, gradOutput);
    }

    /// <summary>Kernel of <see cref="ResidualLayerNorm"/>; operands already validated.</summary>
    protected abstract void ResidualLayerNormCore(Tensor? residualOutput, Tensor normOutput, Tensor mean, Tensor rstd, Tensor x, Tensor? branch, float lambda, float beta, Tensor? weight, Tensor? bias, float epsilon);
    /// <summary>Kernel of <see cref="ResidualLayerNormBackward"/>; operands already validated.</summary>
    protected abstract void ResidualLayerNormBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor? gradWeight, Tensor? gradBias, Tensor gradNormOutput, Tensor? gradResidualOutput, Tensor normInput, Tensor mean, Tensor rstd, Tensor? weight, float lambda, float beta, bool hasBranch);
    /// <summary>Kernel of <see cref="Residual"/>; operands already validated.</summary>
    protected abstract void ResidualCore(Tensor output, Tensor x, Tensor branch, float lambda, float beta);
    /// <summary>Kernel of <see cref="ResidualBackward"/>; operands already validated.</summary>
    protected abstract void ResidualBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor gradOutput, float lambda, float beta);

    /// <summary>lambda and beta are finite where a branch uses them (without one they are ignored).</summary>
    private static void CheckBranchWeights(bool hasBranch, float lambda, float beta)
    {
        if (!hasBranch) return;
        Check.Finite(lambda, nameof(lambda));
        Check.Finite(beta, nameof(beta));
    }

    /// <summary>Validates the normalised tensor [..., channels] (channels &gt; 0) and returns its row count.</summary>
    private int CheckRows(Tensor tensor, string name)
    {
        Check.Operand(this, tensor, name);
        Check.Rank(tensor, name, 1, int.MaxValue);
        if (tensor.Shape[-1] == 0)
            throw new ArgumentException($"operand '{name}' {tensor.Shape} has no channels to normalise over", name);
        long rows = tensor.ElementCount / tensor.Shape[-1];
        if (rows > int.MaxValue)
            throw new ArgumentException($"operand '{name}' {tensor.Shape} has {rows} rows; at most {int.MaxValue} are supported", name);
        return (int)rows;
    }

    private void CheckRowStatistics(Tensor mean, string meanName, Tensor rstd, string rstdName, Tensor input, string inputName, int rows)
    {
        Check.Operand(this, mean, meanName);
        Check.Operand(this, rstd, rstdName);
        Check.Shape(mean, meanName, [rows], $"one per row of {inputName} {input.Shape}");
        Check.Shape(rstd, rstdName, [rows], $"one per row of {inputName} {input.Shape}");
    }

    /// <summary>An optional [channels] vector.</summary>
    private void CheckChannelVector(Tensor? vector, string name, Tensor input, string inputName)
    {
        if (vector is null) return;
        Check.Operand(this, vector, name);
        Check.Shape(vector, name, [input.Shape[-1]], $"one per channel of {inputName} {input.Shape}");
    }

    private void CheckSameShapeOptional(Tensor? tensor, string name, Tensor reference, string referenceName)
    {
        if (tensor is null) return;
        Check.Operand(this, tensor, name);
        Check.SameShape(tensor, name, reference, referenceName);
    }

    /// <summary>A written tensor (null: skipped) overlaps none of the tensors in either list (null entries skipped).</summary>
    private static void CheckDisjoint(Tensor? written, string name, ReadOnlySpan<(Tensor? Tensor, string Name)> reads, ReadOnlySpan<(Tensor? Tensor, string Name)> writes)
    {
        if (written is null) return;
        foreach (var (tensor, other) in reads)
            if (tensor is not null) Check.Disjoint(written, name, tensor, other);
        foreach (var (tensor, other) in writes)
            if (tensor is not null) Check.Disjoint(written, name, tensor, other);
    }
}
