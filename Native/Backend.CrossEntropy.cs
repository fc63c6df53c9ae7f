namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// Fused softmax + cross-entropy per row: <c>losses[i] = logsumexp(logits[i]) - logits[i, targets[i]]</c>,
    /// and 0 where <c>targets[i] == ignoreIndex</c>. Stable for any finite logits (the row maximum is subtracted).
    /// </summary>
    /// <param name="losses">[rows].</param>
    /// <param name="logits">[rows, classes].</param>
    /// <param name="targets">[rows], Int32 in [0, classes) or <paramref name="ignoreIndex"/>.</param>
    /// <param name="ignoreIndex">Target value whose row contributes no loss.</param>
    /// <exception cref="ArgumentException">Shapes disagree, losses overlaps logits, or a target is out of range.</exception>
    public void SoftmaxCrossEntropy(Tensor losses, Tensor logits, Tensor targets, int ignoreIndex = -100)
    {
        Check.Operand(this, losses, nameof(losses));
        CheckCrossEntropyInputs(logits, targets, ignoreIndex);
        CheckShape(losses, nameof(losses), logits, nameof(logits), null, null, logits.Shape[0]);
        Check.Disjoint(losses, nameof(losses), logits, nameof(logits));
        SoftmaxCrossEntropyCore(losses, logits, targets, ignoreIndex);
        KeepAlive(losses, logits, targets);
    }

    /// <summary>
    /// <c>gradLogits[i] += gradLosses[i] * (softmax(logits[i]) - onehot(targets[i]))</c>; ignored rows get nothing.
    /// For a mean loss pass gradLosses = 1 / (number of rows not ignored).
    /// </summary>
    /// <exception cref="ArgumentException">Shapes disagree, gradLogits overlaps an input, or a target is out of range.</exception>
    public void SoftmaxCrossEntropyBackward(Tensor gradLogits, Tensor gradLosses, Tensor logits, Tensor targets, int ignoreIndex = -100)
    {
        Check.Operand(this, gradLogits, nameof(gradLogits));
        Check.Operand(this, gradLosses, nameof(gradLosses));
        CheckCrossEntropyInputs(logits, targets, ignoreIndex);
        Check.SameShape(gradLogits, nameof(gradLogits), logits, nameof(logits));
        CheckShape(gradLosses, nameof(gradLosses), logits, nameof(logits), null, null, logits.Shape[0]);
        Check.Disjoint(gradLogits, nameof(gradLogits), logits, nameof(logits));
        Check.Disjoint(gradLogits, nameof(gradLogits), gradLosses, nameof(gradLosses));
        SoftmaxCrossEntropyBackwardCore(gradLogits, gradLosses, logits, targets, ignoreIndex);
        KeepAlive(gradLogits, gradLosses, logits, targets);
    }

    /// <summary>Kernel of <see cref="SoftmaxCrossEntropy"/>; operands already validated.</summary>
    protected abstract void SoftmaxCrossEntropyCore(Tensor losses, Tensor logits, Tensor targets, int ignoreIndex);
    /// <summary>Kernel of <see cref="SoftmaxCrossEntropyBackward"/>; operands already validated.</summary>
    protected abstract void SoftmaxCrossEntropyBackwardCore(Tensor gradLogits, Tensor gradLosses, Tensor logits, Tensor targets, int ignoreIndex);

    private void CheckCrossEntropyInputs(Tensor logits, Tensor targets, int ignoreIndex)
    {
        Check.Operand(this, logits, nameof(logits));
        Check.Operand(this, targets, nameof(targets), DType.Int32);
        Check.Rank(logits, nameof(logits), 2, 2);
        CheckShape(targets, nameof(targets), logits, nameof(logits), null, null, logits.Shape[0]);
        CheckIndices(targets, nameof(targets), ignoreIndex, logits, nameof(logits), 1);
    }
}
