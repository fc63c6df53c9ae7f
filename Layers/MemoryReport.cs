namespace DeepScaleLM.Layers;

/// <summary>
/// Bytes a <see cref="TransformerModel"/> holds (fp32 everywhere), from <see cref="TransformerModel.EstimateMemory"/>
/// or <see cref="TransformerModel.Memory"/> (the same numbers: the estimate is the allocation formula).
/// </summary>
/// <param name="ParameterBytes">The fp32 master parameters.</param>
/// <param name="GradientBytes">Their gradients.</param>
/// <param name="ComputeWeightBytes">The copy of the parameters rounded to the compute precision (0 at fp32).</param>
/// <param name="ActivationBytes">Every activation, gradient stream, scratch buffer, logits and loss buffer in use.</param>
/// <param name="ActivationBytesWithoutRecomputation">What <paramref name="ActivationBytes"/> would be with RecomputeEvery = 1.</param>
/// <param name="BlockActivationBytes">What one block keeps without recomputation: its activations, its output stream and that stream's gradient.</param>
/// <param name="BlockActivationBytesWithRecomputation">Per block with the config's recomputation: the kept streams and the
/// one segment of scratch, divided by the number of blocks.</param>
public sealed record MemoryReport(long ParameterBytes, long GradientBytes, long ComputeWeightBytes, long ActivationBytes,
    long ActivationBytesWithoutRecomputation, long BlockActivationBytes, long BlockActivationBytesWithRecomputation)
{
    /// <summary>Everything: parameters, gradients, compute copy and activations (optimizer moments are the trainer's).</summary>
    public long TotalBytes => ParameterBytes + GradientBytes + ComputeWeightBytes + ActivationBytes;
}
