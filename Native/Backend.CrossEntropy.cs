namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// Fused softmax + cross-entropy per row: <c>losses[i] = logsumexp(logits[i]) - logits[i, targets[i]]</c>,
    /// and 0 where <c>targets[i] == ignoreIndex</c>.
    /// </summary>
    /// <param name="losses">[rows].</param>
    /// <param name="logits">[rows, classes].</param>
    /// <param name="targets">[rows], Int32 in [0, classes) or <paramref name="ignoreIndex"/>.</param>
    /// <param name="ignoreIndex">Target value whose row contributes no loss.</param>
    /// <exception cref="ArgumentException">Shapes disagree, or a target is out of range.</exception>
    public void SoftmaxCrossEntropy(Tensor losses, Tensor logits, Tensor targets, int ignoreIndex = -100)
    {
        SoftmaxCrossEntropyCore(losses, logits, targets, ignoreIndex);
    }

    /// <summary>
    /// <c>gradLogits[i] += gradLosses[i] * (softmax(logits[i]) - onehot(targets[i]))</c>; ignored rows get nothing.
    /// For a mean loss pass gradLosses = 1 / (number of rows not ignored).
    /// </summary>
    public void SoftmaxCrossEntropyBackward(Tensor gradLogits, Tensor gradLosses, Tensor logits, Tensor targets, int ignoreIndex = -100)
    {
        SoftmaxCrossEntropyBackwardCore(gradLogits, gradLosses, logits, targets, ignoreIndex);
    }

    /// <summary>Kernel of <see cref="SoftmaxCrossEntropy"/>; operands already validated.</summary>
    protected abstract void SoftmaxCrossEntropyCore(Tensor losses, Tensor logits, Tensor targets, int ignoreIndex);
    /// <summary>Kernel of <see cref="SoftmaxCrossEntropyBackward"/>; operands already validated.</summary>
    protected abstract void SoftmaxCrossEntropyBackwardCore(Tensor gradLogits, Tensor gradLosses, Tensor logits, Tensor targets, int ignoreIndex);
}
