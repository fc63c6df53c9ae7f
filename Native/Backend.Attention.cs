namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// Multi-head scaled dot-product attention as described by <see cref="AttentionOptions"/>.
    /// </summary>
    /// <param name="output">[batch, queryTokens, heads * headDim].</param>
    /// <param name="probabilities">[batch, heads, queryTokens, keyTokens]: the softmax P, saved for backward.</param>
    /// <param name="query">[batch, queryTokens, heads * headDim].</param>
    /// <param name="key">[batch, keyTokens, heads * headDim].</param>
    /// <param name="value">[batch, keyTokens, heads * headDim].</param>
    /// <param name="options">Heads, mask, bias, rescale and mix.</param>
    /// <exception cref="ArgumentException">Shapes disagree, channels do not split into heads, or a causal mask
    /// leaves a row with no key.</exception>
    public void Attention(Tensor output, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        AttentionCore(output, probabilities, query, key, value, options);
    }

    /// <summary>
    /// Backward of <see cref="Attention"/>: accumulates into the gradients of query, key, value and (when the
    /// options carry a mix) the per-head mix weights.
    /// </summary>
    /// <param name="gradQuery">Shaped like query, or null.</param>
    /// <param name="gradKey">Shaped like key, or null.</param>
    /// <param name="gradValue">Shaped like value, or null.</param>
    /// <param name="gradMixAlpha">[heads], or null.</param>
    /// <param name="gradMixBeta">[heads], or null.</param>
    /// <param name="gradOutput">Shaped like the forward output.</param>
    /// <param name="probabilities">Saved by the forward.</param>
    /// <param name="query">The forward's query.</param>
    /// <param name="key">The forward's key.</param>
    /// <param name="value">The forward's value.</param>
    /// <param name="options">The forward's options.</param>
    public void AttentionBackward(Tensor? gradQuery, Tensor? gradKey, Tensor? gradValue, Tensor? gradMixAlpha, Tensor? gradMixBeta,
        Tensor gradOutput, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        AttentionBackwardCore(gradQuery, gradKey, gradValue, gradMixAlpha, gradMixBeta, gradOutput, probabilities, query, key, value, options);
    }

    /// <summary>Kernel of <see cref="Attention"/>; operands already validated.</summary>
    protected abstract void AttentionCore(Tensor output, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options);
    /// <summary>Kernel of <see cref="AttentionBackward"/>; operands already validated.</summary>
    protected abstract void AttentionBackwardCore(Tensor? gradQuery, Tensor? gradKey, Tensor? gradValue, Tensor? gradMixAlpha, Tensor? gradMixBeta, Tensor gradOutput, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options);
}
