namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// Multi-head scaled dot-product attention as described by <see cref="AttentionOptions"/>: per batch entry b
    /// and head h, <c>S = scale * Q K^T + bias + mask</c>, <c>P = softmax(S)</c> row-wise,
    /// <c>M = mixAlpha[h] * I + mixBeta[h] * P</c> (or <c>M = P</c>), <c>output[i] = rescale[i] * (M V)[i]</c>.
    /// </summary>
    /// <remarks>
    /// A query row whose scores are all -infinity (every key masked by the bias, or no keys at all) gets
    /// <c>P = 0</c> for that row instead of NaN, so its output is <c>rescale[i] * mixAlpha * V[i]</c> (0 without a mix).
    /// </remarks>
    /// <param name="output">[batch, queryTokens, heads * headDim].</param>
    /// <param name="probabilities">[batch, heads, queryTokens, keyTokens]: the softmax P, saved for backward
    /// (0 where masked).</param>
    /// <param name="query">[batch, queryTokens, heads * headDim].</param>
    /// <param name="key">[batch, keyTokens, heads * headDim].</param>
    /// <param name="value">[batch, keyTokens, heads * headDim].</param>
    /// <param name="options">Heads, mask, bias, rescale and mix.</param>
    /// <exception cref="ArgumentException">Shapes disagree, channels do not split into heads, a causal mask or a mix
    /// meets queryTokens != keyTokens, the scale is not finite, or the output overlaps an input.</exception>
    public void Attention(Tensor output, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        CheckAttentionInputs(probabilities, query, key, value, options);
        Check.Operand(this, output, nameof(output));
        Check.SameShape(output, nameof(output), query, nameof(query));
        CheckDisjointFromAttentionReads(output, nameof(output), probabilities, null, query, key, value, options);
        CheckDisjointFromAttentionReads(probabilities, nameof(probabilities), null, null, query, key, value, options);
        AttentionCore(output, probabilities, query, key, value, options);
        KeepAlive(output, probabilities, query, key, value, options);
    }

    /// <summary>
    /// Backward of <see cref="Attention"/>: accumulates into the gradients of query, key, value and (when the
    /// options carry a mix) the per-head mix weights. With <c>G = rescale * gradOutput</c> (row-scaled) and
    /// <c>dM = G V^T</c>: <c>gradValue += M^T G</c>, <c>gradMixAlpha[h] += trace(dM)</c>,
    /// <c>gradMixBeta[h] += sum(dM * P)</c>, <c>dS = P * (dP - rowsum(dP * P))</c> with <c>dP = mixBeta * dM</c>,
    /// <c>gradQuery += scale * dS K</c>, <c>gradKey += scale * dS^T Q</c>. Results are bit-identical run to run.
    /// </summary>
    /// <param name="gradQuery">Shaped like query, or null.</param>
    /// <param name="gradKey">Shaped like key, or null.</param>
    /// <param name="gradValue">Shaped like value, or null.</param>
    /// <param name="gradMixAlpha">[heads], or null; only with a mix.</param>
    /// <param name="gradMixBeta">[heads], or null; only with a mix.</param>
    /// <param name="gradOutput">Shaped like the forward output.</param>
    /// <param name="probabilities">Saved by the forward.</param>
    /// <param name="query">The forward's query.</param>
    /// <param name="key">The forward's key.</param>
    /// <param name="value">The forward's value.</param>
    /// <param name="options">The forward's options.</param>
    /// <exception cref="ArgumentException">Shapes disagree with the forward's, a mix gradient is given without a
    /// mix, a gradient overlaps a tensor the backward reads, or two gradients partly overlap (the very same view
    /// twice is allowed).</exception>
    public void AttentionBackward(Tensor? gradQuery, Tensor? gradKey, Tensor? gradValue, Tensor? gradMixAlpha, Tensor? gradMixBeta,
        Tensor gradOutput, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        CheckAttentionInputs(probabilities, query, key, value, options);
        Check.Operand(this, gradOutput, nameof(gradOutput));
        Check.SameShape(gradOutput, nameof(gradOutput), query, nameof(query));
        CheckAttentionGradient(gradQuery, nameof(gradQuery), query, nameof(query), gradOutput, probabilities, query, key, value, options);
        CheckAttentionGradient(gradKey, nameof(gradKey), key, nameof(key), gradOutput, probabilities, query, key, value, options);
        CheckAttentionGradient(gradValue, nameof(gradValue), value, nameof(value), gradOutput, probabilities, query, key, value, options);
        if ((gradMixAlpha ?? gradMixBeta) is Tensor gradMix && options.MixAlpha is null)
        {
            string name = gradMixAlpha is null ? nameof(gradMixBeta) : nameof(gradMixAlpha);
            throw new ArgumentException($"operand '{name}' {gradMix.Shape} is given, but the options carry no mix", name);
        }
        CheckAttentionGradient(gradMixAlpha, nameof(gradMixAlpha), options.MixAlpha, "options.MixAlpha", gradOutput, probabilities, query, key, value, options);
        CheckAttentionGradient(gradMixBeta, nameof(gradMixBeta), options.MixBeta, "options.MixBeta", gradOutput, probabilities, query, key, value, options);
        // Heads are written by several threads: gradients may be one view twice, never partly overlap.
        Check.OutputsApart([(gradQuery, nameof(gradQuery)), (gradKey, nameof(gradKey)), (gradValue, nameof(gradValue)),
            (gradMixAlpha, nameof(gradMixAlpha)), (gradMixBeta, nameof(gradMixBeta))]);
        AttentionBackwardCore(gradQuery, gradKey, gradValue, gradMixAlpha, gradMixBeta, gradOutput, probabilities, query, key, value, options);
        KeepAlive(gradQuery, gradKey, gradValue, gradMixAlpha, gradMixBeta, gradOutput, probabilities, query, key, value, options);
    }

    /// <summary>Kernel of <see cref="Attention"/>; operands already validated.</summary>
    protected abstract void AttentionCore(Tensor output, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options);
    /// <summary>Kernel of <see cref="AttentionBackward"/>; operands already validated.</summary>
    protected abstract void AttentionBackwardCore(Tensor? gradQuery, Tensor? gradKey, Tensor? gradValue, Tensor? gradMixAlpha, Tensor? gradMixBeta, Tensor gradOutput, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options);

    /// <summary>The operands forward and backward share: q/k/v/probabilities shapes and every option.</summary>
    private void CheckAttentionInputs(Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Check.Positive(options.Heads, "options.Heads");
        Check.Operand(this, query, nameof(query));
        Check.Operand(this, key, nameof(key));
        Check.Operand(this, value, nameof(value));
        Check.Operand(this, probabilities, nameof(probabilities));
        Check.Rank(query, nameof(query), 3, 3);
        Check.Rank(key, nameof(key), 3, 3);
        Check.SameShape(value, nameof(value), key, nameof(key));
        int batch = query.Shape[0], queryTokens = query.Shape[1], channels = query.Shape[2], keyTokens = key.Shape[1];
        if (channels == 0 || channels % options.Heads != 0)
            throw new ArgumentException(
                $"operand 'query' {query.Shape} has {channels} channels, which do not split into {options.Heads} heads of at least one channel", nameof(query));
        Check.Shape(key, nameof(key), [batch, keyTokens, channels], $"query {query.Shape}, key {key.Shape}, {options.Heads} heads");
        Check.Shape(probabilities, nameof(probabilities), [batch, options.Heads, queryTokens, keyTokens], $"query {query.Shape}, key {key.Shape}, {options.Heads} heads");
        if (options.Scale is float scale) Check.Finite(scale, "options.Scale");
        if ((options.Causal || options.MixAlpha is not null) && queryTokens != keyTokens)
            throw new ArgumentException(
                $"{(options.Causal ? "a causal mask" : "a mix alpha*I + beta*P")} needs as many query as key tokens, but query is {query.Shape} and key {key.Shape}",
                options.Causal ? "options.Causal" : "options.MixAlpha");
        if ((options.MixAlpha is null) != (options.MixBeta is null))
            throw new ArgumentException(
                $"options.MixAlpha and options.MixBeta are given together or not at all, but only {(options.MixAlpha is null ? "MixBeta" : "MixAlpha")} is",
                options.MixAlpha is null ? "options.MixBeta" : "options.MixAlpha");
        CheckAttentionOption(options.Bias, "options.Bias", query, key, options.Heads, queryTokens, keyTokens);
        CheckAttentionOption(options.Rescale, "options.Rescale", query, key, options.Heads, queryTokens);
        CheckAttentionOption(options.MixAlpha, "options.MixAlpha", query, key, options.Heads, options.Heads);
        CheckAttentionOption(options.MixBeta, "options.MixBeta", query, key, options.Heads, options.Heads);
    }

    private void CheckAttentionOption(Tensor? tensor, string name, Tensor query, Tensor key, int heads, params ReadOnlySpan<int> expected)
    {
        if (tensor is null) return;
        Check.Operand(this, tensor, name);
        Check.Shape(tensor, name, expected, $"query {query.Shape}, key {key.Shape}, {heads} heads");
    }

    /// <summary>A gradient: shaped like what it differentiates and disjoint from everything the backward reads.</summary>
    private void CheckAttentionGradient(Tensor? gradient, string name, Tensor? input, string inputName, Tensor gradOutput, Tensor probabilities,
        Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        if (gradient is null || input is null) return;
        Check.Operand(this, gradient, name);
        Check.SameShape(gradient, name, input, inputName);
        CheckDisjointFromAttentionReads(gradient, name, probabilities, gradOutput, query, key, value, options);
    }

    /// <summary>A tensor an attention op writes shares no memory with one it reads (kernels read inputs after writing).</summary>
    private static void CheckDisjointFromAttentionReads(Tensor written, string name, Tensor? probabilities, Tensor? gradOutput,
        Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        Check.Disjoint(written, name, query, nameof(query));
        Check.Disjoint(written, name, key, nameof(key));
        Check.Disjoint(written, name, value, nameof(value));
        if (probabilities is not null) Check.Disjoint(written, name, probabilities, nameof(probabilities));
        if (gradOutput is not null) Check.Disjoint(written, name, gradOutput, nameof(gradOutput));
        if (options.Bias is not null) Check.Disjoint(written, name, options.Bias, "options.Bias");
        if (options.Rescale is not null) Check.Disjoint(written, name, options.Rescale, "options.Rescale");
        if (options.MixAlpha is not null) Check.Disjoint(written, name, options.MixAlpha, "options.MixAlpha");
        if (options.MixBeta is not null) Check.Disjoint(written, name, options.MixBeta, "options.MixBeta");
    }
}
