namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// <c>output = alpha * op(a) * op(b) + beta * output (+ bias)</c>, over a batch of matrices.
    /// </summary>
    /// <param name="output">[m, n] or [batch, m, n]. With <paramref name="beta"/> = 0 its old values are not read.</param>
    /// <param name="a">[m, k] (or [k, m] when <paramref name="transposeA"/>), optionally with a leading batch
    /// dimension; a rank-2 operand is shared by every batch entry (stride 0).</param>
    /// <param name="b">[k, n] (or [n, k] when <paramref name="transposeB"/>), batched like <paramref name="a"/>.
    /// A PyTorch Linear layer is <c>MatMul(y, x, weight, transposeB: true, bias: b)</c> with weight [out, in].</param>
    /// <param name="transposeA">Use a's transpose.</param>
    /// <param name="transposeB">Use b's transpose.</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="beta">Scale of the old output.</param>
    /// <param name="bias">Optional [n], added to every row (not scaled by alpha).</param>
    /// <exception cref="ArgumentException">Shapes do not agree, an operand is on another device, or alpha/beta is not finite.</exception>
    public void MatMul(Tensor output, Tensor a, Tensor b, bool transposeA = false, bool transposeB = false,
        float alpha = 1f, float beta = 0f, Tensor? bias = null)
    {
        MatMulCore(output, a, b, transposeA, transposeB, alpha, beta, bias);
    }

    /// <summary>
    /// Backward of <see cref="MatMul"/> (with its beta = 0): accumulates <c>gradA += d(alpha*op(a)op(b))/da</c>,
    /// likewise gradB, and <c>gradBias += column sums of gradOutput</c>. A shared rank-2 operand's gradient is
    /// summed over the batch.
    /// </summary>
    /// <param name="gradA">Shaped like <paramref name="a"/>, or null to skip.</param>
    /// <param name="gradB">Shaped like <paramref name="b"/>, or null to skip.</param>
    /// <param name="gradBias">[n], or null to skip.</param>
    /// <param name="gradOutput">Shaped like the forward output.</param>
    /// <param name="a">The forward's a.</param>
    /// <param name="b">The forward's b.</param>
    /// <param name="transposeA">As in the forward.</param>
    /// <param name="transposeB">As in the forward.</param>
    /// <param name="alpha">As in the forward.</param>
    /// <exception cref="ArgumentException">Shapes do not agree with the forward's.</exception>
    public void MatMulBackward(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b,
        bool transposeA = false, bool transposeB = false, float alpha = 1f)
    {
        MatMulBackwardCore(gradA, gradB, gradBias, gradOutput, a, b, transposeA, transposeB, alpha);
    }

    /// <summary>Kernel of <see cref="MatMul"/>; operands already validated.</summary>
    protected abstract void MatMulCore(Tensor output, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha, float beta, Tensor? bias);
    /// <summary>Kernel of <see cref="MatMulBackward"/>; operands already validated.</summary>
    protected abstract void MatMulBackwardCore(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha);
}
