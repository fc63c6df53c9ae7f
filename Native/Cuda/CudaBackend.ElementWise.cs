namespace DeepScaleLM.Native.Cuda;

public sealed partial class CudaBackend
{
    /// <inheritdoc/>
    protected override void ActivationCore(Tensor output, Tensor input, ActivationFunction function)
    {
        var (positive, negative) = LeakySlopes(function);
        LaunchElements(_kernels.ActivationForward, input.ElementCount, new KernelArguments()
            .With(Pointer(output)).With(Pointer(input)).With(input.ElementCount).With((int)function.Kind).With(positive).With(negative));
    }

    /// <inheritdoc/>
    protected override void ActivationBackwardCore(Tensor gradInput, Tensor gradOutput, Tensor input, ActivationFunction function)
    {
        var (positive, negative) = LeakySlopes(function);
        LaunchElements(_kernels.ActivationBackward, input.ElementCount, new KernelArguments()
            .With(Pointer(gradInput)).With(Pointer(gradOutput)).With(Pointer(input)).With(input.ElementCount).With((int)function.Kind).With(positive).With(negative));
    }

    /// <inheritdoc/>
    protected override void RoundToPrecisionCore(Tensor output, Tensor input, ComputePrecision precision)
    {
        if (precision == ComputePrecision.Fp32)
        {
            if (Pointer(output) != Pointer(input)) CopyCore(output, input);
            return;
        }
        LaunchElements(_kernels.RoundToPrecision, input.ElementCount, new KernelArguments()
            .With(Pointer(output)).With(Pointer(input)).With(input.ElementCount).With((int)precision));
    }

    /// <summary>
    /// The scaled leaky ReLU's slopes s = sqrt(2 / (1 + a^2)) for x &gt;= 0 and s a below (spa-theory.md section 3),
    /// each formed in float64 and rounded once, as the CPU backend does; unused by the other kinds.
    /// </summary>
    private static (float Positive, float Negative) LeakySlopes(ActivationFunction function)
    {
        double a = function.NegativeSlope, gain = Math.Sqrt(2.0 / (1.0 + a * a));
        return ((float)gain, (float)(gain * a));
    }

    /// <inheritdoc/>
    protected override void DropoutCore(Tensor output, Tensor input, float probability, ulong seed, ulong offset)
    {
        if (probability == 0f)
        {
            if (Pointer(output) != Pointer(input)) CopyCore(output, input);
            return;
        }
        LaunchDropout(output, input, probability, seed, offset, accumulate: false);
    }

    /// <inheritdoc/>
    protected override void DropoutBackwardCore(Tensor gradInput, Tensor gradOutput, float probability, ulong seed, ulong offset)
    {
        if (probability == 0f) AccumulateScaled(gradInput, gradOutput, 1f);
        else LaunchDropout(gradInput, gradOutput, probability, seed, offset, accumulate: true);
    }

    private void LaunchDropout(Tensor destination, Tensor source, float probability, ulong seed, ulong offset, bool accumulate)
    {
        long count = source.ElementCount, groups = (count + 3) / 4;
        if (groups > 0)
            Launch(_kernels.DropoutApply, ElementBlocks(groups), 1, ElementThreads, new KernelArguments()
                .With(Pointer(destination)).With(Pointer(source)).With(count).With(seed).With(offset)
                .With(Philox.KeepThreshold(probability)).With(1f - probability).With(accumulate ? 1 : 0));
    }

    /// <inheritdoc/>
    protected override void RandomNormalCore(Tensor output, ulong seed, ulong offset, float mean, float std)
    {
        long count = output.ElementCount, groups = (count + 3) / 4;
        if (groups > 0)
            Launch(_kernels.RandomNormal, ElementBlocks(groups), 1, ElementThreads, new KernelArguments()
                .With(Pointer(output)).With(count).With(seed).With(offset).With(mean).With(std));
    }

    /// <inheritdoc/>
    protected override void ResidualCore(Tensor output, Tensor x, Tensor branch, float lambda, float beta) =>
        LaunchElements(_kernels.ResidualForward, output.ElementCount, new KernelArguments()
            .With(Pointer(output)).With(Pointer(x)).With(Pointer(branch)).With(lambda).With(beta).With(output.ElementCount));

    /// <inheritdoc/>
    protected override void ResidualBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor gradOutput, float lambda, float beta) =>
        LaunchElements(_kernels.ResidualBackward, gradOutput.ElementCount, new KernelArguments()
            .With(PointerOrNull(gradX)).With(PointerOrNull(gradBranch)).With(Pointer(gradOutput)).With(lambda).With(beta).With(gradOutput.ElementCount));

    /// <summary><c>destination += factor * source</c> (the residual backward's kernel with one gradient).</summary>
    private void AccumulateScaled(Tensor destination, Tensor source, float factor) =>
        LaunchElements(_kernels.ResidualBackward, source.ElementCount, new KernelArguments()
            .With(Pointer(destination)).With(0UL).With(Pointer(source)).With(factor).With(0f).With(source.ElementCount));

    /// <inheritdoc/>
    protected override void ScaleCore(Tensor tensor, float factor) =>
        LaunchElements(_kernels.Scale, tensor.ElementCount, new KernelArguments().With(Pointer(tensor)).With(tensor.ElementCount).With(factor));
}
