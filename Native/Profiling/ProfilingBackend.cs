using DeepScaleLM.Interop;
using DeepScaleLM.Native.Cuda;

namespace DeepScaleLM.Native.Profiling;

/// <summary>
/// A backend that runs every op on another backend (<see cref="Inner"/>: CPU or CUDA) and records, per op, the calls,
/// the device time and the work (<see cref="OpCosts"/>: matrix-product FLOPs and bytes moved). Results are the inner
/// backend's, bit for bit; its tensors are this backend's tensors (same device, same storage).
/// </summary>
/// <remarks>
/// <para>Timing: on the CPU a stopwatch around each call (its ops are synchronous); on a GPU a pair of CUDA events
/// recorded on the stream around each call, read only by <see cref="Collect"/> after one wait, so a step is never
/// synchronized by the profiler. With NVTX present (libnvToolsExt) each call is also an NVTX range named after the
/// op, and <see cref="PushRange"/> / <see cref="PopRange"/> mark larger regions (a step), for Nsight Systems.</para>
/// <para>Each call is validated twice, by this backend's public method and by the inner backend's; the token-range
/// check of the embedding and cross-entropy ops is left to the inner backend alone, which scans on its own device and
/// throws the same <see cref="ArgumentException"/>. Nothing is allocated per call once the CUDA event pool has grown
/// to the most calls between two collections.</para>
/// </remarks>
public sealed class ProfilingBackend : Backend
{
    private static readonly string[] OpNames = Enum.GetNames<ProfiledOp>();
    private readonly OpTimer _timer;
    private readonly bool _ownsInner;
    private readonly long[] _calls = new long[OpNames.Length];
    private readonly double[] _seconds = new double[OpNames.Length], _flops = new double[OpNames.Length], _bytes = new double[OpNames.Length];

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <param name="inner">The backend that runs the ops.</param>
    /// <param name="ownsInner">Dispose <paramref name="inner"/> with this backend.</param>
    /// <param name="nvtxRanges">Mark each call as an NVTX range when libnvToolsExt is present.</param>
    public ProfilingBackend(Backend inner, bool ownsInner = false, bool nvtxRanges = true)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (inner is ProfilingBackend)
            throw new ArgumentException("the inner backend is already a ProfilingBackend: wrap the device's backend once", nameof(inner));
        Inner = inner;
        _ownsInner = ownsInner;
        _timer = OpTimer.For(inner);
        NvtxRanges = nvtxRanges && Nvtx.IsAvailable;
    }

    /// <summary>The backend that runs the ops.</summary>
    public Backend Inner { get; }

    /// <inheritdoc/>
    public override Device Device => Inner.Device;

    /// <summary>How op times are measured (stopwatch or CUDA events), in words.</summary>
    public string TimingMethod => _timer.Method;

    /// <summary>Whether each call is an NVTX range (asked for, and libnvToolsExt found).</summary>
    public bool NvtxRanges { get; }

    /// <summary>Opens an NVTX range named <paramref name="name"/> (a step, a phase); no-op without NVTX ranges.</summary>
    public void PushRange(string name)
    {
        if (NvtxRanges) Nvtx.Push(name);
    }

    /// <summary>Closes the range <see cref="PushRange"/> opened.</summary>
    public void PopRange()
    {
        if (NvtxRanges) Nvtx.Pop();
    }

    /// <inheritdoc/>
    public override void Synchronize() => Inner.Synchronize();

    /// <summary>
    /// Adds the device time of every call since the last collection to the totals, waiting for the last of them. Call it
    /// between steps (not inside one) to keep the CUDA event pool as small as one step's calls.
    /// </summary>
    public void Collect() => _timer.Collect(_seconds);

    /// <summary>The ops called since the profiler was made or <see cref="Reset"/>, most time first (collects first).</summary>
    public IReadOnlyList<OpProfile> Profile()
    {
        Collect();
        var rows = new List<OpProfile>();
        for (int i = 0; i < OpNames.Length; i++)
            if (_calls[i] > 0) rows.Add(new OpProfile((ProfiledOp)i, _calls[i], _seconds[i], _flops[i], _bytes[i]));
        return [.. rows.OrderByDescending(row => row.Seconds).ThenBy(row => row.Op)];
    }

    /// <summary>Forgets everything measured so far (after warmup steps, say).</summary>
    public void Reset()
    {
        _timer.Discard();
        Array.Clear(_calls);
        Array.Clear(_seconds);
        Array.Clear(_flops);
        Array.Clear(_bytes);
    }

    private void Begin(ProfiledOp op)
    {
        if (NvtxRanges) Nvtx.Push(OpNames[(int)op]);
        _timer.Start(op);
    }

    private void End(ProfiledOp op, OpCost cost)
    {
        _timer.Stop();
        if (NvtxRanges) Nvtx.Pop();
        _calls[(int)op]++;
        _flops[(int)op] += cost.Flops;
        _bytes[(int)op] += cost.Bytes;
    }

    /// <inheritdoc/>
    protected override TensorStorage AllocateStorage(long byteLength)
    {
        // The inner backend's AllocateStorage is protected: allocate through its public Allocate (Int32 words; every
        // dtype is 4 bytes) and keep the storage, which the caller's tensor will own.
        long words = byteLength / sizeof(int);
        if (words <= int.MaxValue) return Inner.Allocate(DType.Int32, (int)words).Storage;
        int columns = 1 << 20;
        if (words % columns != 0 || words / columns > int.MaxValue)
            throw new NotSupportedException($"the profiler cannot allocate {byteLength} bytes in one piece (more than {int.MaxValue} words, not a multiple of {columns})");
        return Inner.Allocate(DType.Int32, (int)(words / columns), columns).Storage;
    }

    /// <inheritdoc/>
    protected override void UploadCore<T>(Tensor destination, ReadOnlySpan<T> source)
    {
        Begin(ProfiledOp.Upload);
        try { Inner.Upload(destination, source); }
        finally { End(ProfiledOp.Upload, OpCosts.Write(destination, alsoRead: false)); }
    }

    /// <inheritdoc/>
    protected override void DownloadCore<T>(Span<T> destination, Tensor source)
    {
        Begin(ProfiledOp.Download);
        try { Inner.Download(destination, source); }
        finally { End(ProfiledOp.Download, OpCosts.Read(source)); }
    }

    /// <inheritdoc/>
    protected override void ZeroCore(Tensor tensor)
    {
        Begin(ProfiledOp.Zero);
        try { Inner.Zero(tensor); }
        finally { End(ProfiledOp.Zero, OpCosts.Write(tensor, alsoRead: false)); }
    }

    /// <inheritdoc/>
    protected override void CopyCore(Tensor destination, Tensor source)
    {
        Begin(ProfiledOp.Copy);
        try { Inner.Copy(destination, source); }
        finally { End(ProfiledOp.Copy, OpCosts.Write(destination, alsoRead: true)); }
    }

    /// <inheritdoc/>
    protected override void MatMulCore(Tensor output, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha, float beta, Tensor? bias)
    {
        Begin(ProfiledOp.MatMul);
        try { Inner.MatMul(output, a, b, transposeA, transposeB, alpha, beta, bias); }
        finally { End(ProfiledOp.MatMul, OpCosts.MatMul(output, a, b, transposeA, transposeB, beta, bias)); }
    }

    /// <inheritdoc/>
    protected override void MatMulBackwardCore(Tensor? gradA, Tensor? gradB, Tensor? gradBias, Tensor gradOutput, Tensor a, Tensor b,
        bool transposeA, bool transposeB, float alpha)
    {
        Begin(ProfiledOp.MatMulBackward);
        try { Inner.MatMulBackward(gradA, gradB, gradBias, gradOutput, a, b, transposeA, transposeB, alpha); }
        finally { End(ProfiledOp.MatMulBackward, OpCosts.MatMulBackward(gradA, gradB, gradBias, gradOutput, a, b, transposeA, transposeB)); }
    }

    /// <inheritdoc/>
    protected override void AttentionCore(Tensor output, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        Begin(ProfiledOp.Attention);
        try { Inner.Attention(output, probabilities, query, key, value, options); }
        finally { End(ProfiledOp.Attention, OpCosts.Attention(output, probabilities, query, key, value, options)); }
    }

    /// <inheritdoc/>
    protected override void AttentionBackwardCore(Tensor? gradQuery, Tensor? gradKey, Tensor? gradValue, Tensor? gradMixAlpha, Tensor? gradMixBeta,
        Tensor gradOutput, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        Begin(ProfiledOp.AttentionBackward);
        try { Inner.AttentionBackward(gradQuery, gradKey, gradValue, gradMixAlpha, gradMixBeta, gradOutput, probabilities, query, key, value, options); }
        finally
        {
            End(ProfiledOp.AttentionBackward,
                OpCosts.AttentionBackward(gradQuery, gradKey, gradValue, gradMixAlpha, gradMixBeta, gradOutput, probabilities, query, key, value, options));
        }
    }

    /// <inheritdoc/>
    protected override void ResidualLayerNormCore(Tensor? residualOutput, Tensor normOutput, Tensor mean, Tensor rstd, Tensor x, Tensor? branch,
        float lambda, float beta, Tensor? weight, Tensor? bias, float epsilon)
    {
        Begin(ProfiledOp.ResidualLayerNorm);
        try { Inner.ResidualLayerNorm(residualOutput, normOutput, mean, rstd, x, branch, lambda, beta, weight, bias, epsilon); }
        finally { End(ProfiledOp.ResidualLayerNorm, OpCosts.ResidualLayerNorm(residualOutput, normOutput, mean, rstd, x, branch, weight, bias)); }
    }

    /// <inheritdoc/>
    protected override void ResidualLayerNormBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor? gradWeight, Tensor? gradBias,
        Tensor gradNormOutput, Tensor? gradResidualOutput, Tensor normInput, Tensor mean, Tensor rstd, Tensor? weight, float lambda, float beta,
        bool hasBranch)
    {
        Begin(ProfiledOp.ResidualLayerNormBackward);
        try
        {
            Inner.ResidualLayerNormBackward(gradX, gradBranch, gradWeight, gradBias, gradNormOutput, gradResidualOutput, normInput, mean, rstd, weight,
                lambda, beta, hasBranch);
        }
        finally
        {
            End(ProfiledOp.ResidualLayerNormBackward, OpCosts.ResidualLayerNormBackward(gradX, gradBranch, gradWeight, gradBias, gradNormOutput,
                gradResidualOutput, normInput, mean, rstd, weight));
        }
    }

    /// <inheritdoc/>
    protected override void ResidualCore(Tensor output, Tensor x, Tensor branch, float lambda, float beta)
    {
        Begin(ProfiledOp.Residual);
        try { Inner.Residual(output, x, branch, lambda, beta); }
        finally { End(ProfiledOp.Residual, OpCosts.Residual(output, x, branch)); }
    }

    /// <inheritdoc/>
    protected override void ResidualBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor gradOutput, float lambda, float beta)
    {
        Begin(ProfiledOp.ResidualBackward);
        try { Inner.ResidualBackward(gradX, gradBranch, gradOutput, lambda, beta); }
        finally { End(ProfiledOp.ResidualBackward, OpCosts.ResidualBackward(gradX, gradBranch, gradOutput)); }
    }

    /// <inheritdoc/>
    protected override void ActivationCore(Tensor output, Tensor input, ActivationFunction function)
    {
        Begin(ProfiledOp.Activation);
        try { Inner.Activation(output, input, function); }
        finally { End(ProfiledOp.Activation, OpCosts.Map(output, input)); }
    }

    /// <inheritdoc/>
    protected override void ActivationBackwardCore(Tensor gradInput, Tensor gradOutput, Tensor input, ActivationFunction function)
    {
        Begin(ProfiledOp.ActivationBackward);
        try { Inner.ActivationBackward(gradInput, gradOutput, input, function); }
        finally { End(ProfiledOp.ActivationBackward, OpCosts.MapBackward(gradInput, gradOutput, input)); }
    }

    /// <inheritdoc/>
    protected override void DropoutCore(Tensor output, Tensor input, float probability, ulong seed, ulong offset)
    {
        Begin(ProfiledOp.Dropout);
        try { Inner.Dropout(output, input, probability, seed, offset); }
        finally { End(ProfiledOp.Dropout, OpCosts.Dropout(output, input, probability)); }
    }

    /// <inheritdoc/>
    protected override void DropoutBackwardCore(Tensor gradInput, Tensor gradOutput, float probability, ulong seed, ulong offset)
    {
        Begin(ProfiledOp.DropoutBackward);
        try { Inner.DropoutBackward(gradInput, gradOutput, probability, seed, offset); }
        finally { End(ProfiledOp.DropoutBackward, OpCosts.MapBackward(gradInput, gradOutput, null)); }
    }

    /// <inheritdoc/>
    protected override void EmbeddingCore(Tensor output, Tensor tokens, Tensor tokenTable, Tensor? positionTable)
    {
        Begin(ProfiledOp.Embedding);
        try { Inner.Embedding(output, tokens, tokenTable, positionTable); }
        finally { End(ProfiledOp.Embedding, OpCosts.Embedding(output, tokens, positionTable)); }
    }

    /// <inheritdoc/>
    protected override void EmbeddingBackwardCore(Tensor? gradTokenTable, Tensor? gradPositionTable, Tensor gradOutput, Tensor tokens)
    {
        Begin(ProfiledOp.EmbeddingBackward);
        try { Inner.EmbeddingBackward(gradTokenTable, gradPositionTable, gradOutput, tokens); }
        finally { End(ProfiledOp.EmbeddingBackward, OpCosts.EmbeddingBackward(gradTokenTable, gradPositionTable, gradOutput, tokens)); }
    }

    /// <inheritdoc/>
    /// <remarks>Reports every index valid: the inner backend's public method, which the op forwards to, scans the indices
    /// on its own device and throws for a bad one (this backend cannot call its protected scan).</remarks>
    protected override (long Position, int Value) FindInvalidIndexCore(Tensor indices, int limit, int? allowed) => (-1, 0);

    /// <inheritdoc/>
    protected override void SoftmaxCrossEntropyCore(Tensor losses, Tensor logits, Tensor targets, int ignoreIndex)
    {
        Begin(ProfiledOp.SoftmaxCrossEntropy);
        try { Inner.SoftmaxCrossEntropy(losses, logits, targets, ignoreIndex); }
        finally { End(ProfiledOp.SoftmaxCrossEntropy, OpCosts.SoftmaxCrossEntropy(losses, logits, targets)); }
    }

    /// <inheritdoc/>
    protected override void SoftmaxCrossEntropyBackwardCore(Tensor gradLogits, Tensor gradLosses, Tensor logits, Tensor targets, int ignoreIndex)
    {
        Begin(ProfiledOp.SoftmaxCrossEntropyBackward);
        try { Inner.SoftmaxCrossEntropyBackward(gradLogits, gradLosses, logits, targets, ignoreIndex); }
        finally { End(ProfiledOp.SoftmaxCrossEntropyBackward, OpCosts.SoftmaxCrossEntropyBackward(gradLogits, gradLosses, logits, targets)); }
    }

    /// <inheritdoc/>
    protected override void AdamWCore(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWOptions options, int step,
        float gradientScale)
    {
        Begin(ProfiledOp.AdamW);
        try { Inner.AdamW(parameters, gradients, firstMoment, secondMoment, options, step, gradientScale); }
        finally { End(ProfiledOp.AdamW, OpCosts.AdamW(parameters, gradients, firstMoment, secondMoment)); }
    }

    /// <inheritdoc/>
    protected override double GlobalNormCore(ReadOnlySpan<Tensor> tensors)
    {
        Begin(ProfiledOp.GlobalNorm);
        try { return Inner.GlobalNorm(tensors); }
        finally { End(ProfiledOp.GlobalNorm, OpCosts.Read(tensors)); }
    }

    /// <inheritdoc/>
    protected override double ClipByGlobalNormCore(float maxNorm, ReadOnlySpan<Tensor> tensors)
    {
        double norm = double.NaN;
        Begin(ProfiledOp.ClipByGlobalNorm);
        try { return norm = Inner.ClipByGlobalNorm(maxNorm, tensors); }
        finally { End(ProfiledOp.ClipByGlobalNorm, OpCosts.ClipByGlobalNorm(tensors, scaled: double.IsFinite(norm) && norm > maxNorm)); }
    }

    /// <inheritdoc/>
    protected override void ScaleCore(Tensor tensor, float factor)
    {
        Begin(ProfiledOp.Scale);
        try { Inner.Scale(tensor, factor); }
        finally { End(ProfiledOp.Scale, OpCosts.Write(tensor, alsoRead: true)); }
    }

    /// <inheritdoc/>
    protected override MomentStatistics MomentsCore(Tensor activations)
    {
        Begin(ProfiledOp.Moments);
        try { return Inner.Moments(activations); }
        finally { End(ProfiledOp.Moments, OpCosts.Read(activations)); }
    }

    /// <inheritdoc/>
    protected override void RoundToPrecisionCore(Tensor output, Tensor input, ComputePrecision precision)
    {
        Begin(ProfiledOp.RoundToPrecision);
        try { Inner.RoundToPrecision(output, input, precision); }
        finally { End(ProfiledOp.RoundToPrecision, OpCosts.Map(output, input)); }
    }

    /// <inheritdoc/>
    protected override void RandomNormalCore(Tensor output, ulong seed, ulong offset, float mean, float std)
    {
        Begin(ProfiledOp.RandomNormal);
        try { Inner.RandomNormal(output, seed, offset, mean, std); }
        finally { End(ProfiledOp.RandomNormal, OpCosts.Fill(output)); }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (!disposing) return;
        _timer.Dispose();
        if (_ownsInner) Inner.Dispose();
    }
}
