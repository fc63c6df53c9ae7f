namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// One AdamW step with bias correction, in place on fp32 parameters and moments:
    /// <c>g = gradientScale * grad; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    /// p -= lr * (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + weightDecay * p)</c>.
    /// </summary>
    /// <param name="parameters">Any shape; updated in place.</param>
    /// <param name="gradients">Shaped like parameters.</param>
    /// <param name="firstMoment">Shaped like parameters; updated in place.</param>
    /// <param name="secondMoment">Shaped like parameters; updated in place.</param>
    /// <param name="options">Learning rate, betas, epsilon, weight decay.</param>
    /// <param name="step">1-based step number t, for bias correction.</param>
    /// <param name="gradientScale">Multiplies the gradient first (clipping factor, 1/loss-scale).</param>
    /// <exception cref="ArgumentException">Shapes differ, step &lt; 1, or a hyper-parameter is not finite or out of range.</exception>
    public void AdamW(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWOptions options, int step, float gradientScale = 1f)
    {
        AdamWCore(parameters, gradients, firstMoment, secondMoment, options, step, gradientScale);
    }

    /// <summary>The L2 norm of all elements of all <paramref name="tensors"/> together, accumulated in float64.</summary>
    public double GlobalNorm(params ReadOnlySpan<Tensor> tensors)
    {
        return GlobalNormCore(tensors);
    }

    /// <summary>
    /// Scales every tensor by <c>min(1, maxNorm / norm)</c> where norm is their <see cref="GlobalNorm"/>, and
    /// returns the norm before clipping (NaN or infinity is returned unchanged and nothing is scaled, so the
    /// caller can skip the step).
    /// </summary>
    public double ClipByGlobalNorm(float maxNorm, params ReadOnlySpan<Tensor> tensors)
    {
        return ClipByGlobalNormCore(maxNorm, tensors);
    }

    /// <summary><c>tensor *= factor</c> in place.</summary>
    public void Scale(Tensor tensor, float factor)
    {
        ScaleCore(tensor, factor);
    }

    /// <summary>Kernel of <see cref="AdamW"/>; operands already validated.</summary>
    protected abstract void AdamWCore(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWOptions options, int step, float gradientScale);
    /// <summary>Kernel of <see cref="GlobalNorm"/>; operands already validated.</summary>
    protected abstract double GlobalNormCore(ReadOnlySpan<Tensor> tensors);
    /// <summary>Kernel of <see cref="ClipByGlobalNorm"/>; operands already validated.</summary>
    protected abstract double ClipByGlobalNormCore(float maxNorm, ReadOnlySpan<Tensor> tensors);
    /// <summary>Kernel of <see cref="Scale"/>; operands already validated.</summary>
    protected abstract void ScaleCore(Tensor tensor, float factor);
}
