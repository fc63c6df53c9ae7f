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
    /// <exception cref="ArgumentException">Shapes differ, tensors overlap, step &lt; 1, or a hyper-parameter is not finite or out of range
    /// (learning rate, epsilon and weight decay must be finite and &gt;= 0, betas in [0, 1)).</exception>
    public void AdamW(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWOptions options, int step, float gradientScale = 1f)
    {
        Check.Operand(this, parameters, nameof(parameters));
        Check.Operand(this, gradients, nameof(gradients));
        Check.Operand(this, firstMoment, nameof(firstMoment));
        Check.Operand(this, secondMoment, nameof(secondMoment));
        Check.SameShape(gradients, nameof(gradients), parameters, nameof(parameters));
        Check.SameShape(firstMoment, nameof(firstMoment), parameters, nameof(parameters));
        Check.SameShape(secondMoment, nameof(secondMoment), parameters, nameof(parameters));
        Check.Disjoint(parameters, nameof(parameters), gradients, nameof(gradients));
        Check.Disjoint(parameters, nameof(parameters), firstMoment, nameof(firstMoment));
        Check.Disjoint(parameters, nameof(parameters), secondMoment, nameof(secondMoment));
        Check.Disjoint(firstMoment, nameof(firstMoment), gradients, nameof(gradients));
        Check.Disjoint(secondMoment, nameof(secondMoment), gradients, nameof(gradients));
        Check.Disjoint(firstMoment, nameof(firstMoment), secondMoment, nameof(secondMoment));
        Check.InRange(options.LearningRate, $"{nameof(options)}.{nameof(options.LearningRate)}", 0f, float.MaxValue);
        // A beta of 1 would make the bias correction 1 - beta^t zero.
        Check.Fraction(options.Beta1, $"{nameof(options)}.{nameof(options.Beta1)}");
        Check.Fraction(options.Beta2, $"{nameof(options)}.{nameof(options.Beta2)}");
        Check.InRange(options.Epsilon, $"{nameof(options)}.{nameof(options.Epsilon)}", 0f, float.MaxValue);
        Check.InRange(options.WeightDecay, $"{nameof(options)}.{nameof(options.WeightDecay)}", 0f, float.MaxValue);
        Check.Positive(step, nameof(step));
        Check.Finite(gradientScale, nameof(gradientScale));
        AdamWCore(parameters, gradients, firstMoment, secondMoment, options, step, gradientScale);
        KeepAlive(parameters, gradients, firstMoment, secondMoment);
    }

    /// <summary>The L2 norm of all elements of all <paramref name="tensors"/> together, accumulated in float64.</summary>
    /// <exception cref="ArgumentException">A tensor is not a float32 tensor of this backend, (tensors must not overlap: shared elements would count twice).</exception>
    public double GlobalNorm(params ReadOnlySpan<Tensor> tensors)
    {
        CheckTensorList(tensors, nameof(tensors));
        double norm = GlobalNormCore(tensors);
        KeepAlive(tensors);
        return norm;
    }

    /// <summary>
    /// Scales every tensor by <c>min(1, maxNorm / norm)</c> where norm is their <see cref="GlobalNorm"/>, and
    /// returns the norm before clipping (NaN or infinity is returned unchanged and nothing is scaled, so the
    /// caller can skip the step).
    /// </summary>
    /// <exception cref="ArgumentException">maxNorm is negative or not finite, or a tensor is invalid (tensors must not overlap: shared elements would be scaled twice).</exception>
    public double ClipByGlobalNorm(float maxNorm, params ReadOnlySpan<Tensor> tensors)
    {
        Check.InRange(maxNorm, nameof(maxNorm), 0f, float.MaxValue);
        CheckTensorList(tensors, nameof(tensors));
        double norm = ClipByGlobalNormCore(maxNorm, tensors);
        KeepAlive(tensors);
        return norm;
    }

    /// <summary><c>tensor *= factor</c> in place.</summary>
    /// <exception cref="ArgumentException">The factor is not finite.</exception>
    public void Scale(Tensor tensor, float factor)
    {
        Check.Operand(this, tensor, nameof(tensor));
        Check.Finite(factor, nameof(factor));
        ScaleCore(tensor, factor);
        KeepAlive(tensor);
    }

    /// <summary>Kernel of <see cref="AdamW"/>; operands already validated.</summary>
    protected abstract void AdamWCore(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWOptions options, int step, float gradientScale);
    /// <summary>Kernel of <see cref="GlobalNorm"/>; operands already validated.</summary>
    protected abstract double GlobalNormCore(ReadOnlySpan<Tensor> tensors);
    /// <summary>Kernel of <see cref="ClipByGlobalNorm"/>; operands already validated. The default measures the norm
    /// with <see cref="GlobalNormCore"/> and scales with <see cref="ScaleCore"/>.</summary>
    protected virtual double ClipByGlobalNormCore(float maxNorm, ReadOnlySpan<Tensor> tensors)
    {
        double norm = GlobalNormCore(tensors);
        if (double.IsFinite(norm) && norm > maxNorm)
        {
            float factor = (float)(maxNorm / norm);
            foreach (var tensor in tensors) ScaleCore(tensor, factor);
        }
        return norm;
    }
    /// <summary>Kernel of <see cref="Scale"/>; operands already validated.</summary>
    protected abstract void ScaleCore(Tensor tensor, float factor);

    // Overlap between the tensors is not checked: models carve many tensors out of one storage, and a pairwise
    // check would cost O(n^2) per step.
    private void CheckTensorList(ReadOnlySpan<Tensor> tensors, string name)
    {
        foreach (var tensor in tensors) Check.Operand(this, tensor, name);
    }
}
