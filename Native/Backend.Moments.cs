namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>Measures <see cref="MomentStatistics"/> of <paramref name="activations"/> [batch, tokens, channels], accumulating in float64.</summary>
    /// <exception cref="ArgumentException">The tensor is not rank 3 or is empty.</exception>
    public MomentStatistics Moments(Tensor activations)
    {
        Check.Operand(this, activations, nameof(activations));
        Check.Rank(activations, nameof(activations), 3, 3);
        if (activations.ElementCount == 0)
            throw new ArgumentException($"operand '{nameof(activations)}' has shape {activations.Shape}, which holds no elements to measure", nameof(activations));
        var result = MomentsCore(activations);
        KeepAlive(activations);
        return result;
    }

    /// <summary>Kernel of <see cref="Moments"/>; operands already validated.</summary>
    protected abstract MomentStatistics MomentsCore(Tensor activations);
}
