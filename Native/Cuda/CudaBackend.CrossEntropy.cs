namespace DeepScaleLM.Native.Cuda;

public sealed partial class CudaBackend
{
    /// <inheritdoc/>
    protected override void SoftmaxCrossEntropyCore(Tensor losses, Tensor logits, Tensor targets, int ignoreIndex)
    {
        int rows = logits.Shape[0], classes = logits.Shape[1];
        if (rows == 0) return;
        Launch(_kernels.CrossEntropyForward, (uint)rows, 1, RowThreads(classes, 1024), new KernelArguments()
            .With(Pointer(losses)).With(Pointer(logits)).With(Pointer(targets)).With(classes).With(ignoreIndex));
    }

    /// <inheritdoc/>
    protected override void SoftmaxCrossEntropyBackwardCore(Tensor gradLogits, Tensor gradLosses, Tensor logits, Tensor targets, int ignoreIndex)
    {
        int rows = logits.Shape[0], classes = logits.Shape[1];
        if (rows == 0) return;
        Launch(_kernels.CrossEntropyBackward, (uint)rows, 1, RowThreads(classes, 1024), new KernelArguments()
            .With(Pointer(gradLogits)).With(Pointer(gradLosses)).With(Pointer(logits)).With(Pointer(targets)).With(classes).With(ignoreIndex));
    }
}
