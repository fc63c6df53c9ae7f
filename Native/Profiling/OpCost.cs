namespace DeepScaleLM.Native.Profiling;

/// <summary>The work one op call must do: floating-point operations and bytes moved to and from memory.</summary>
/// <param name="Flops">Floating-point operations of the matrix products in the call (a multiply-add is 2); 0 for the
/// memory-bound ops, which are judged by <paramref name="Bytes"/> alone.</param>
/// <param name="Bytes">The least traffic the call needs: every operand it reads once, every output it writes once, and
/// every gradient it accumulates into (+=) read and written.</param>
public readonly record struct OpCost(double Flops, double Bytes);

/// <summary>
/// <see cref="OpCost"/> of each op of the contract, from its operands' shapes alone (docs/profiling.md, "What the
/// columns count"). FLOPs are counted for matrix products only, the way GEMM and attention benchmarks count them:
/// <c>2 m n k</c> per product; element-wise epilogues (bias, alpha, softmax, mask) are not counted. Bytes assume each
/// operand crosses the memory bus once: caches and re-reads inside a kernel do not count, so GB/s here is a lower bound
/// on the traffic the kernel really made.
/// </summary>
public static class OpCosts
{
    /// <summary>MatMul: <c>2 batch m n k</c> FLOPs; reads a, b and the bias (and the output when beta != 0), writes the
    /// output. A rank-2 operand shared by a batch is read once.</summary>
    public static OpCost MatMul(Tensor output, Tensor a, Tensor b, bool transposeA, bool transposeB, float beta, Tensor? bias)
    {
        var shape = MatMulShape.Of(a, b, transposeA, transposeB);
        return new(ProductFlops(shape), Bytes(a) + Bytes(b) + Bytes(bias) + Bytes(output) * (beta != 0 ? 2 : 1));
    }

    /// <summary>MatMulBackward: <c>2 batch m n k</c> FLOPs for each of gradA (<c>G op(b)^T</c>) and gradB
    /// (<c>op(a)^T G</c>) that is asked for; reads the output gradient and the operand each product needs, and reads and
    /// writes every gradient it accumulates into.</summary>
    public static OpCost MatMulBackward(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b,
        bool transposeA, bool transposeB)
    {
        var shape = MatMulShape.Of(a, b, transposeA, transposeB);
        int products = (gradA is null ? 0 : 1) + (gradB is null ? 0 : 1);
        double reads = Bytes(gradOutput) + (gradB is null ? 0 : Bytes(a)) + (gradA is null ? 0 : Bytes(b));
        return new(products * ProductFlops(shape), reads + Accumulated(gradA) + Accumulated(gradB) + Accumulated(gradBias));
    }

    /// <summary>
    /// Attention: two products per head, <c>S = Q K^T</c> and <c>P V</c>, <c>2 * 2 * batch * heads * Tq * Tk * headDim</c>
    /// FLOPs, halved for a causal mask (FlashAttention's convention: the upper triangle is useless work). Reads Q, K, V
    /// and the bias, rescale and mix; writes the output and the probabilities P (this contract saves P for backward).
    /// </summary>
    public static OpCost Attention(Tensor output, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        double reads = Bytes(query) + Bytes(key) + Bytes(value) + OptionBytes(options);
        return new(2 * AttentionProductFlops(query, key, options), reads + Bytes(output) + Bytes(probabilities));
    }

    /// <summary>
    /// AttentionBackward: one product of <see cref="AttentionProductFlops"/> each for <c>dV = P^T dO</c> (gradValue),
    /// <c>dP = dO V^T</c> (needed by gradQuery and gradKey), <c>dQ = dS K</c> and <c>dK = dS^T Q</c>: twice the forward
    /// when every gradient is asked for. (P is saved, not recomputed: FlashAttention counts 2.5 times the forward
    /// because its backward recomputes <c>Q K^T</c>.) Reads dO, P, Q, K, V and the options' tensors; reads and writes
    /// every gradient.
    /// </summary>
    public static OpCost AttentionBackward(Tensor? gradQuery, Tensor? gradKey, Tensor? gradValue, Tensor? gradMixAlpha, Tensor? gradMixBeta,
        Tensor gradOutput, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        int products = (gradValue is null ? 0 : 1) + (gradQuery is null && gradKey is null ? 0 : 1)
            + (gradQuery is null ? 0 : 1) + (gradKey is null ? 0 : 1);
        double reads = Bytes(gradOutput) + Bytes(probabilities) + Bytes(query) + Bytes(key) + Bytes(value) + OptionBytes(options);
        double gradients = Accumulated(gradQuery) + Accumulated(gradKey) + Accumulated(gradValue) + Accumulated(gradMixAlpha) + Accumulated(gradMixBeta);
        return new(products * AttentionProductFlops(query, key, options), reads + gradients);
    }

    /// <summary>
    /// FLOPs of one of attention's batched products, <c>2 * batch * heads * Tq * Tk * headDim</c>, halved with a causal
    /// mask. Summed over heads <c>heads * headDim</c> is the channel count, so it is <c>2 * batch * Tq * Tk * channels</c>.
    /// </summary>
    public static double AttentionProductFlops(Tensor query, Tensor key, AttentionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        double batch = query.Shape[0], queryTokens = query.Shape[1], channels = query.Shape[2], keyTokens = key.Shape[1];
        return 2 * batch * queryTokens * keyTokens * channels * (options.Causal ? 0.5 : 1);
    }

    /// <summary>ResidualLayerNorm: reads x, the branch and the affine weights; writes s, the norm output, mean and rstd.</summary>
    public static OpCost ResidualLayerNorm(Tensor? residualOutput, Tensor normOutput, Tensor mean, Tensor rstd, Tensor x, Tensor? branch,
        Tensor? weight, Tensor? bias) =>
        new(0, Bytes(x) + Bytes(branch) + Bytes(weight) + Bytes(bias) + Bytes(residualOutput) + Bytes(normOutput) + Bytes(mean) + Bytes(rstd));

    /// <summary>ResidualLayerNormBackward: reads the output gradients, the saved input and statistics and the gain;
    /// reads and writes every gradient.</summary>
    public static OpCost ResidualLayerNormBackward(Tensor? gradX, Tensor? gradBranch, Tensor? gradWeight, Tensor? gradBias, Tensor gradNormOutput,
        Tensor? gradResidualOutput, Tensor normInput, Tensor mean, Tensor rstd, Tensor? weight) =>
        new(0, Bytes(gradNormOutput) + Bytes(gradResidualOutput) + Bytes(normInput) + Bytes(mean) + Bytes(rstd) + Bytes(weight)
            + Accumulated(gradX) + Accumulated(gradBranch) + Accumulated(gradWeight) + Accumulated(gradBias));

    /// <summary>Residual: reads x and the branch, writes the output.</summary>
    public static OpCost Residual(Tensor output, Tensor x, Tensor branch) => new(0, Bytes(x) + Bytes(branch) + Bytes(output));

    /// <summary>ResidualBackward: reads the output gradient; reads and writes both gradients.</summary>
    public static OpCost ResidualBackward(Tensor? gradX, Tensor? gradBranch, Tensor gradOutput) =>
        new(0, Bytes(gradOutput) + Accumulated(gradX) + Accumulated(gradBranch));

    /// <summary>RandomNormal: writes the output, reads nothing.</summary>
    public static OpCost Fill(Tensor output) => new(0, Bytes(output));

    /// <summary>An element-wise map (Activation, RoundToPrecision): reads the input, writes the output.</summary>
    public static OpCost Map(Tensor output, Tensor input) => new(0, Bytes(input) + Bytes(output));

    /// <summary>Dropout: a <see cref="Map"/>, except that with probability 0 in place it is the identity and need move
    /// nothing (the CPU backend returns at once).</summary>
    public static OpCost Dropout(Tensor output, Tensor input, float probability) =>
        probability == 0f && output.Storage == input.Storage && output.Offset == input.Offset ? default : Map(output, input);

    /// <summary>An element-wise backward (ActivationBackward reads the input too; DropoutBackward does not): reads the
    /// output gradient (and <paramref name="input"/>), reads and writes the input gradient.</summary>
    public static OpCost MapBackward(Tensor gradInput, Tensor gradOutput, Tensor? input) =>
        new(0, Bytes(gradOutput) + Bytes(input) + Accumulated(gradInput));

    /// <summary>Embedding: reads the ids, one token-table row per output row and the position rows once; writes the output.</summary>
    public static OpCost Embedding(Tensor output, Tensor tokens, Tensor? positionTable) =>
        new(0, Bytes(tokens) + 2 * Bytes(output) + (positionTable is null ? 0 : PositionRowBytes(output)));

    /// <summary>EmbeddingBackward: reads the ids and the output gradient; reads and writes one token-table row per id
    /// and each position row once.</summary>
    public static OpCost EmbeddingBackward(Tensor? gradTokenTable, Tensor? gradPositionTable, Tensor gradOutput, Tensor tokens) =>
        new(0, Bytes(tokens) + Bytes(gradOutput) + (gradTokenTable is null ? 0 : 2 * Bytes(gradOutput))
            + (gradPositionTable is null ? 0 : 2 * PositionRowBytes(gradOutput)));

    /// <summary>SoftmaxCrossEntropy: reads the logits and targets, writes the per-row losses.</summary>
    public static OpCost SoftmaxCrossEntropy(Tensor losses, Tensor logits, Tensor targets) =>
        new(0, Bytes(logits) + Bytes(targets) + Bytes(losses));

    /// <summary>SoftmaxCrossEntropyBackward: reads the logits, targets and loss gradients; reads and writes the logit gradients.</summary>
    public static OpCost SoftmaxCrossEntropyBackward(Tensor gradLogits, Tensor gradLosses, Tensor logits, Tensor targets) =>
        new(0, Bytes(logits) + Bytes(targets) + Bytes(gradLosses) + Accumulated(gradLogits));

    /// <summary>AdamW: reads parameters, gradients and both moments, writes parameters and both moments (7 passes).</summary>
    public static OpCost AdamW(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment) =>
        new(0, Bytes(gradients) + Accumulated(parameters) + Accumulated(firstMoment) + Accumulated(secondMoment));

    /// <summary>GlobalNorm (and Moments, Download): reads every tensor once.</summary>
    public static OpCost Read(params ReadOnlySpan<Tensor> tensors)
    {
        double bytes = 0;
        foreach (var tensor in tensors) bytes += Bytes(tensor);
        return new(0, bytes);
    }

    /// <summary>ClipByGlobalNorm: reads every tensor for the norm and, when it <paramref name="scaled"/> them, reads and
    /// writes them again.</summary>
    public static OpCost ClipByGlobalNorm(ReadOnlySpan<Tensor> tensors, bool scaled) => new(0, Read(tensors).Bytes * (scaled ? 3 : 1));

    /// <summary>Scale and Copy move a tensor's bytes twice (read and write); Zero and Upload once (write).</summary>
    public static OpCost Write(Tensor tensor, bool alsoRead) => new(0, Bytes(tensor) * (alsoRead ? 2 : 1));

    /// <summary>The bytes a tensor holds (0 for a missing optional operand).</summary>
    public static double Bytes(Tensor? tensor) => tensor is null ? 0 : (double)tensor.ElementCount * tensor.DType.SizeInBytes();

    private static double ProductFlops(MatMulShape shape) => 2.0 * shape.Batch * shape.M * shape.N * shape.K;

    /// <summary>A gradient the op accumulates into (+=): read and written.</summary>
    private static double Accumulated(Tensor? gradient) => 2 * Bytes(gradient);

    private static double OptionBytes(AttentionOptions options) =>
        Bytes(options.Bias) + Bytes(options.Rescale) + Bytes(options.MixAlpha) + Bytes(options.MixBeta);

    /// <summary>The position rows an embedding of [batch, tokens, channels] touches: tokens x channels floats.</summary>
    private static double PositionRowBytes(Tensor rows) => (double)rows.Shape[1] * rows.Shape[2] * sizeof(float);
}
