using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    // Rows split into at most this many chunks. The count depends on the shape only, never on the thread count, so
    // the per-chunk weight/bias gradient partials and their fixed-order sum give the same bits on any machine.
    private const int MaxRowChunks = 64;
    // Cap on the partials (chunks * 2 * channels floats): very wide rows get fewer chunks instead of a huge workspace.
    private const int MaxPartialFloats = 1 << 21;
    // Elements per work item of the elementwise residual ops (256 KiB of floats: long enough to amortise a job).
    private const int ElementChunk = 1 << 16;

    // Backward workspace, grow-only and owned by the backend (hence the lease): per row chunk, the partial
    // gradWeight [channels] then gradBias [channels].
    private float[] _layerNormPartials = [];

    /// <inheritdoc/>
    protected override unsafe void ResidualLayerNormCore(Tensor? residualOutput, Tensor normOutput, Tensor mean, Tensor rstd, Tensor x, Tensor? branch,
        float lambda, float beta, Tensor? weight, Tensor? bias, float epsilon)
    {
        var job = new LayerNormForwardJob
        {
            Rows = new RowChunks(x),
            X = Floats(x),
            Branch = branch is null ? null : Floats(branch),
            Residual = residualOutput is null ? null : Floats(residualOutput),
            Output = Floats(normOutput),
            Mean = Floats(mean),
            Rstd = Floats(rstd),
            Weight = weight is null ? null : Floats(weight),
            Bias = bias is null ? null : Floats(bias),
            Lambda = lambda,
            Beta = beta,
            Epsilon = epsilon,
        };
        _pool.For(job.Rows.Count, ref job);
    }

    /// <inheritdoc/>
    protected override unsafe void ResidualLayerNormBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor? gradWeight, Tensor? gradBias, Tensor gradNormOutput,
        Tensor? gradResidualOutput, Tensor normInput, Tensor mean, Tensor rstd, Tensor? weight, float lambda, float beta, bool hasBranch)
    {
        using var lease = LeaseWorkspaces(nameof(ResidualLayerNormBackward));
        var rows = new RowChunks(normInput);
        bool affine = gradWeight is not null || gradBias is not null;
        if (affine && _layerNormPartials.Length < 2L * rows.Count * rows.Channels)
            _layerNormPartials = new float[2 * rows.Count * rows.Channels];
        fixed (float* partials = _layerNormPartials)
        {
            var job = new LayerNormBackwardJob
            {
                Rows = rows,
                GradX = gradX is null ? null : Floats(gradX),
                GradBranch = gradBranch is null ? null : Floats(gradBranch),
                GradNormOutput = Floats(gradNormOutput),
                GradResidual = gradResidualOutput is null ? null : Floats(gradResidualOutput),
                Input = Floats(normInput),
                Mean = Floats(mean),
                Rstd = Floats(rstd),
                Weight = weight is null ? null : Floats(weight),
                Partials = affine ? partials : null,
                // Without a branch the norm read x itself: s = x, so ds flows to x unscaled.
                LambdaX = hasBranch ? lambda : 1f,
                Beta = beta,
            };
            _pool.For(rows.Count, ref job);
            if (!affine || rows.Count == 0) return;

            // Sum the chunk partials in chunk order (deterministic), then accumulate into the gradients.
            int c = rows.Channels;
            var total = new Span<float>(partials, 2 * c);
            for (int chunk = 1; chunk < rows.Count; chunk++)
                TensorPrimitives.Add(total, new ReadOnlySpan<float>(partials + 2L * chunk * c, 2 * c), total);
            if (gradWeight is not null) AddScaled(Floats(gradWeight), partials, 1f, c);
            if (gradBias is not null) AddScaled(Floats(gradBias), partials + c, 1f, c);
        }
    }

    /// <inheritdoc/>
    protected override unsafe void ResidualCore(Tensor output, Tensor x, Tensor branch, float lambda, float beta)
    {
        var job = new ResidualJob { Count = output.ElementCount, Output = Floats(output), X = Floats(x), Branch = Floats(branch), Lambda = lambda, Beta = beta };
        _pool.For(ElementChunks(output.ElementCount), ref job);
    }

    /// <inheritdoc/>
    protected override unsafe void ResidualBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor gradOutput, float lambda, float beta)
    {
        var job = new ResidualBackwardJob
        {
            Count = gradOutput.ElementCount,
            GradOutput = Floats(gradOutput),
            GradX = gradX is null ? null : Floats(gradX),
            GradBranch = gradBranch is null ? null : Floats(gradBranch),
            Lambda = lambda,
            Beta = beta,
        };
        _pool.For(ElementChunks(gradOutput.ElementCount), ref job);
    }

    private static int ElementChunks(long count) => checked((int)((count + ElementChunk - 1) / ElementChunk));

    /// <summary>How the rows [..., channels] of a tensor split into work chunks; see <see cref="MaxRowChunks"/>.</summary>
    private readonly struct RowChunks
    {
        public RowChunks(Tensor tensor)
        {
            Channels = tensor.Shape[-1];
            Total = (int)(tensor.ElementCount / Channels);
            Count = Math.Min(Total, Math.Clamp(MaxPartialFloats / (2 * Channels), 1, MaxRowChunks));
        }

        public readonly int Channels, Total, Count;

        /// <summary>Rows [start, end) of chunk <paramref name="chunk"/>.</summary>
        public (int Start, int End) Of(int chunk) => WorkerPool.Partition(chunk, Count, Total);
    }

    /// <summary>One row chunk of the forward: s = lambda x + beta branch, then the normalised, affine row.</summary>
    private unsafe struct LayerNormForwardJob : IParallelJob
    {
        public RowChunks Rows;
        public float* X, Branch, Residual, Output, Mean, Rstd, Weight, Bias;
        public float Lambda, Beta, Epsilon;

        public readonly void Execute(int chunk)
        {
            int c = Rows.Channels;
            var (start, end) = Rows.Of(chunk);
            for (int r = start; r < end; r++)
            {
                long at = (long)r * c;
                float* input = X + at;
                if (Branch is not null)
                {
                    input = Residual + at;
                    Combine(input, X + at, Lambda, Branch + at, Beta, c);
                }
                // Two passes (mean, then squared deviations) rather than E[s^2] - mean^2, which cancels badly when |mean| >> std.
                float mean = Sum(input, c) / c;
                float rstd = 1f / MathF.Sqrt(SquaredDeviation(input, mean, c) / c + Epsilon);
                Normalize(Output + at, input, mean, rstd, Weight, Bias, c);
                Mean[r] = mean;
                Rstd[r] = rstd;
            }
        }
    }

    /// <summary>
    /// One row chunk of the backward. With xhat = (s - mean) rstd and g = gradNormOutput * weight, the layer-norm
    /// backward is ds = rstd (g - mean(g) - xhat mean(g xhat)); plus the gradient arriving at s directly.
    /// </summary>
    private unsafe struct LayerNormBackwardJob : IParallelJob
    {
        public RowChunks Rows;
        public float* GradX, GradBranch, GradNormOutput, GradResidual, Input, Mean, Rstd, Weight, Partials;
        public float LambdaX, Beta;

        public readonly void Execute(int chunk)
        {
            int c = Rows.Channels;
            float* partialWeight = Partials is null ? null : Partials + 2L * chunk * c;
            if (partialWeight is not null) new Span<float>(partialWeight, 2 * c).Clear();
            var (start, end) = Rows.Of(chunk);
            for (int r = start; r < end; r++)
            {
                long at = (long)r * c;
                var (sumG, sumGXhat) = GradientSums(Input + at, GradNormOutput + at, Weight, Mean[r], Rstd[r], partialWeight, c);
                InputGradient(new RowGradient
                {
                    Input = Input + at, GradOutput = GradNormOutput + at, GradResidual = GradResidual is null ? null : GradResidual + at,
                    GradX = GradX is null ? null : GradX + at, GradBranch = GradBranch is null ? null : GradBranch + at,
                    Weight = Weight, Mean = Mean[r], Rstd = Rstd[r], MeanG = sumG / c, MeanGXhat = sumGXhat / c, LambdaX = LambdaX, Beta = Beta,
                }, c);
            }
        }
    }

    private unsafe struct ResidualJob : IParallelJob
    {
        public long Count;
        public float* Output, X, Branch;
        public float Lambda, Beta;

        public readonly void Execute(int chunk)
        {
            long start = (long)chunk * ElementChunk;
            Combine(Output + start, X + start, Lambda, Branch + start, Beta, (int)Math.Min(ElementChunk, Count - start));
        }
    }

    private unsafe struct ResidualBackwardJob : IParallelJob
    {
        public long Count;
        public float* GradOutput, GradX, GradBranch;
        public float Lambda, Beta;

        public readonly void Execute(int chunk)
        {
            long start = (long)chunk * ElementChunk;
            int n = (int)Math.Min(ElementChunk, Count - start);
            if (GradX is not null) AddScaled(GradX + start, GradOutput + start, Lambda, n);
            if (GradBranch is not null) AddScaled(GradBranch + start, GradOutput + start, Beta, n);
        }
    }

    /// <summary><c>destination = lambda * x + beta * branch</c> (DSLM's residual, dslm-theory 2.9), fused, the same
    /// bits in the vector body and the tail. Each element is read before it is written, so the destination may be
    /// the branch itself.</summary>
    private static unsafe void Combine(float* destination, float* x, float lambda, float* branch, float beta, int count)
    {
        var l = Vector512.Create(lambda);
        var b = Vector512.Create(beta);
        int j = 0;
        for (; j <= count - Vector512<float>.Count; j += Vector512<float>.Count)
            Vector512.FusedMultiplyAdd(Vector512.Load(x + j), l, Vector512.Load(branch + j) * b).Store(destination + j);
        for (; j < count; j++) destination[j] = MathF.FusedMultiplyAdd(x[j], lambda, branch[j] * beta);
    }

    /// <summary><c>destination += factor * source</c> (Combine with the destination as the branch, weight 1).</summary>
    private static unsafe void AddScaled(float* destination, float* source, float factor, int count) =>
        Combine(destination, source, factor, destination, 1f, count);

    /// <summary>Sum of a row, lanes fixed by position (see <see cref="Dot"/>).</summary>
    private static unsafe float Sum(float* row, int count)
    {
        var acc = Vector512<float>.Zero;
        int j = 0;
        for (; j <= count - Vector512<float>.Count; j += Vector512<float>.Count) acc += Vector512.Load(row + j);
        float sum = Vector512.Sum(acc);
        for (; j < count; j++) sum += row[j];
        return sum;
    }

    /// <summary><c>sum((row - mean)^2)</c>, lanes fixed by position.</summary>
    private static unsafe float SquaredDeviation(float* row, float mean, int count)
    {
        var m = Vector512.Create(mean);
        var acc = Vector512<float>.Zero;
        int j = 0;
        for (; j <= count - Vector512<float>.Count; j += Vector512<float>.Count)
        {
            var d = Vector512.Load(row + j) - m;
            acc = Vector512.FusedMultiplyAdd(d, d, acc);
        }
        float sum = Vector512.Sum(acc);
        for (; j < count; j++)
        {
            float d = row[j] - mean;
            sum = MathF.FusedMultiplyAdd(d, d, sum);
        }
        return sum;
    }

    /// <summary><c>destination = (row - mean) * rstd * weight + bias</c>, weight and bias optional.</summary>
    private static unsafe void Normalize(float* destination, float* row, float mean, float rstd, float* weight, float* bias, int count)
    {
        var m = Vector512.Create(mean);
        var r = Vector512.Create(rstd);
        int j = 0;
        for (; j <= count - Vector512<float>.Count; j += Vector512<float>.Count)
        {
            var y = (Vector512.Load(row + j) - m) * r;
            if (weight is not null) y *= Vector512.Load(weight + j);
            if (bias is not null) y += Vector512.Load(bias + j);
            y.Store(destination + j);
        }
        for (; j < count; j++)
        {
            float y = (row[j] - mean) * rstd;
            if (weight is not null) y *= weight[j];
            if (bias is not null) y += bias[j];
            destination[j] = y;
        }
    }

    /// <summary>
    /// First backward pass over a row: returns <c>sum(g)</c> and <c>sum(g * xhat)</c>, and when
    /// <paramref name="partialWeight"/> is given accumulates <c>gradOutput * xhat</c> into it and <c>gradOutput</c>
    /// into the gradBias partial that follows it.
    /// </summary>
    private static unsafe (float SumG, float SumGXhat) GradientSums(float* row, float* gradOutput, float* weight, float mean, float rstd,
        float* partialWeight, int count)
    {
        var m = Vector512.Create(mean);
        var r = Vector512.Create(rstd);
        var sumG = Vector512<float>.Zero;
        var sumGXhat = Vector512<float>.Zero;
        float* partialBias = partialWeight + count;
        int j = 0;
        for (; j <= count - Vector512<float>.Count; j += Vector512<float>.Count)
        {
            var xhat = (Vector512.Load(row + j) - m) * r;
            var dy = Vector512.Load(gradOutput + j);
            var g = weight is null ? dy : dy * Vector512.Load(weight + j);
            sumG += g;
            sumGXhat = Vector512.FusedMultiplyAdd(g, xhat, sumGXhat);
            if (partialWeight is null) continue;
            Vector512.FusedMultiplyAdd(dy, xhat, Vector512.Load(partialWeight + j)).Store(partialWeight + j);
            (Vector512.Load(partialBias + j) + dy).Store(partialBias + j);
        }
        float g0 = Vector512.Sum(sumG), gx0 = Vector512.Sum(sumGXhat);
        for (; j < count; j++)
        {
            float xhat = (row[j] - mean) * rstd, dy = gradOutput[j];
            float g = weight is null ? dy : dy * weight[j];
            g0 += g;
            gx0 = MathF.FusedMultiplyAdd(g, xhat, gx0);
            if (partialWeight is null) continue;
            partialWeight[j] = MathF.FusedMultiplyAdd(dy, xhat, partialWeight[j]);
            partialBias[j] += dy;
        }
        return (g0, gx0);
    }

    /// <summary>The operands of <see cref="InputGradient"/> for one row.</summary>
    private unsafe struct RowGradient
    {
        public float* Input, GradOutput, GradResidual, GradX, GradBranch, Weight;
        public float Mean, Rstd, MeanG, MeanGXhat, LambdaX, Beta;
    }

    /// <summary>Second backward pass: <c>ds = rstd (g - mean(g) - xhat mean(g xhat)) + gradResidual</c>;
    /// <c>gradX += lambdaX ds</c>, <c>gradBranch += beta ds</c>.</summary>
    private static unsafe void InputGradient(in RowGradient a, int count)
    {
        var m = Vector512.Create(a.Mean);
        var r = Vector512.Create(a.Rstd);
        var meanG = Vector512.Create(a.MeanG);
        var meanGXhat = Vector512.Create(a.MeanGXhat);
        var lambdaX = Vector512.Create(a.LambdaX);
        var beta = Vector512.Create(a.Beta);
        int j = 0;
        for (; j <= count - Vector512<float>.Count; j += Vector512<float>.Count)
        {
            var xhat = (Vector512.Load(a.Input + j) - m) * r;
            var dy = Vector512.Load(a.GradOutput + j);
            var g = a.Weight is null ? dy : dy * Vector512.Load(a.Weight + j);
            var ds = Vector512.FusedMultiplyAdd(-xhat, meanGXhat, g - meanG) * r;
            if (a.GradResidual is not null) ds += Vector512.Load(a.GradResidual + j);
            if (a.GradX is not null) Vector512.FusedMultiplyAdd(ds, lambdaX, Vector512.Load(a.GradX + j)).Store(a.GradX + j);
            if (a.GradBranch is not null) Vector512.FusedMultiplyAdd(ds, beta, Vector512.Load(a.GradBranch + j)).Store(a.GradBranch + j);
        }
        for (; j < count; j++)
        {
            float xhat = (a.Input[j] - a.Mean) * a.Rstd, dy = a.GradOutput[j];
            float g = a.Weight is null ? dy : dy * a.Weight[j];
            float ds = MathF.FusedMultiplyAdd(-xhat, a.MeanGXhat, g - a.MeanG) * a.Rstd;
            if (a.GradResidual is not null) ds += a.GradResidual[j];
            if (a.GradX is not null) a.GradX[j] = MathF.FusedMultiplyAdd(ds, a.LambdaX, a.GradX[j]);
            if (a.GradBranch is not null) a.GradBranch[j] = MathF.FusedMultiplyAdd(ds, a.Beta, a.GradBranch[j]);
        }
    }
}
