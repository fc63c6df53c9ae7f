namespace DeepScaleLM.Native.Cuda;

/// <summary>The outcome of one conformance check.</summary>
/// <param name="Name">The op checked (a method of the contract, e.g. <c>AttentionBackward</c>).</param>
/// <param name="MaxAbsoluteError">The largest |candidate - reference| over every output compared.</param>
/// <param name="MaxError">The largest |candidate - reference| / (1 + |reference|): absolute for small values,
/// relative for large ones. It is what the tolerance bounds.</param>
/// <param name="Tolerance">The bound on <paramref name="MaxError"/> (0: the outputs must be bit-identical).</param>
/// <param name="WorstOutput">The output where <paramref name="MaxError"/> occurred, with its index.</param>
/// <param name="Failure">Why the check could not run or disagreed in kind (an exception, a different error), or null.</param>
public sealed record ConformanceResult(string Name, double MaxAbsoluteError, double MaxError, double Tolerance, string WorstOutput, string? Failure)
{
    /// <summary>The check ran and stayed within its tolerance.</summary>
    public bool Passed => Failure is null && MaxError <= Tolerance;
}

/// <summary>
/// The op conformance suite: every op of the contract, forward and backward, run on a reference backend (the CPU)
/// and a candidate (CUDA) with the same random inputs, outputs compared element by element. Gradients start from
/// random values, so the backward ops' accumulation (+=) is checked too. Used by tests/ConformanceTests.cs and by
/// <c>dslm selftest</c>.
/// </summary>
/// <remarks>
/// Tolerances (on <see cref="ConformanceResult.MaxError"/>), for fp32 with the inputs here (|x| &lt;= 1, inner
/// dimensions below 64): 0 where both backends compute the same operations in the same order (dropout, embedding,
/// the residual combine, AdamW, scale, index errors); 1e-6 for the activations (float64 on both sides, the CPU's
/// erfc fit within 1.2e-7); 1e-5 for row reductions (layer norm, cross-entropy, moments: summation order
/// differs); 1e-4 for everything through a GEMM (cuBLAS blocks the sums differently). TF32 GEMMs exceed these.
/// </remarks>
public static class Conformance
{
    private const double Exact = 0, ElementWise = 1e-6, Reduction = 1e-5, Product = 1e-4, Norm = 1e-10;

    private static readonly (string Name, double Tolerance, Action<Session> Run)[] Checks =
    [
        ("MatMul", Product, MatMulCheck),
        ("MatMulBackward", Product, MatMulBackwardCheck),
        ("ResidualLayerNorm", Reduction, ResidualLayerNormCheck),
        ("ResidualLayerNormBackward", Reduction, ResidualLayerNormBackwardCheck),
        ("Residual", Exact, ResidualCheck),
        ("ResidualBackward", Exact, ResidualBackwardCheck),
        ("Activation", ElementWise, ActivationCheck),
        ("ActivationBackward", ElementWise, ActivationBackwardCheck),
        ("Dropout", Exact, DropoutCheck),
        ("DropoutBackward", Exact, DropoutBackwardCheck),
        ("Attention", Product, AttentionCheck),
        ("AttentionBackward", Product, AttentionBackwardCheck),
        ("Embedding", Exact, EmbeddingCheck),
        ("EmbeddingBackward", Exact, EmbeddingBackwardCheck),
        ("SoftmaxCrossEntropy", Reduction, CrossEntropyCheck),
        ("SoftmaxCrossEntropyBackward", Reduction, CrossEntropyBackwardCheck),
        ("AdamW", Exact, AdamWCheck),
        ("GlobalNorm", Norm, GlobalNormCheck),
        ("ClipByGlobalNorm", Reduction, ClipCheck),
        ("Scale", Exact, ScaleCheck),
        ("Moments", Reduction, MomentsCheck),
        ("InvalidIndex", Exact, InvalidIndexCheck),
        ("RoundToPrecision", Exact, RoundToPrecisionCheck),
        ("RandomNormal", ElementWise, RandomNormalCheck),
        ("TrainingSteps", Product, TrainingStepsCheck),
    ];

    /// <summary>The names of the checks, in the order <see cref="RunAll"/> runs them.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Checks.Select(check => check.Name)];

    /// <summary>Runs every check.</summary>
    public static IReadOnlyList<ConformanceResult> RunAll(Backend reference, Backend candidate, int seed = 1) =>
        [.. Names.Select(name => Run(name, reference, candidate, seed))];

    /// <summary>Runs the check <paramref name="name"/> (one of <see cref="Names"/>).</summary>
    /// <exception cref="ArgumentException">No check has that name.</exception>
    public static ConformanceResult Run(string name, Backend reference, Backend candidate, int seed = 1)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(candidate);
        int index = Array.FindIndex(Checks, check => check.Name == name);
        if (index < 0) throw new ArgumentException($"no conformance check is named '{name}'; the checks are {string.Join(", ", Names)}", nameof(name));
        var (_, tolerance, run) = Checks[index];
        using var session = new Session(reference, candidate, seed);
        try
        {
            run(session);
            return new ConformanceResult(name, session.MaxAbsoluteError, session.MaxError, tolerance, session.WorstOutput, null);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new ConformanceResult(name, session.MaxAbsoluteError, session.MaxError, tolerance, session.WorstOutput, $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>
    /// The products of the contract: a Linear layer with bias, a batched product with a shared operand, transposed
    /// operands, and alpha/beta accumulation into an existing output.
    /// </summary>
    private static readonly (int[] A, int[] B, bool TransposeA, bool TransposeB, float Alpha, float Beta, bool Bias)[] Products =
    [
        ([5, 7], [6, 7], false, true, 1f, 0f, true),
        ([3, 4, 5], [5, 6], false, false, 1f, 0f, false),
        ([3, 5, 4], [3, 6, 5], true, true, 0.5f, 0f, true),
        ([6, 2], [3, 6, 4], true, false, 1f, 0f, false),
        ([4, 9], [9, 3], false, false, 0.7f, 0.3f, false),
    ];

    private static int[] ProductShape(int[] a, int[] b, bool transposeA, bool transposeB)
    {
        int m = transposeA ? a[^1] : a[^2], n = transposeB ? b[^2] : b[^1];
        return a.Length == 3 || b.Length == 3 ? [a.Length == 3 ? a[0] : b[0], m, n] : [m, n];
    }

    private static void MatMulCheck(Session s)
    {
        foreach (var (aDims, bDims, ta, tb, alpha, beta, hasBias) in Products)
        {
            var a = s.Random(aDims);
            var b = s.Random(bDims);
            var output = s.Random(ProductShape(aDims, bDims, ta, tb));
            Pair? bias = hasBias ? s.Random(output.Reference.Shape[-1]) : null;
            s.Both((backend, i) => backend.MatMul(output[i], a[i], b[i], ta, tb, alpha, beta, bias?[i]));
            s.Compare("output", output);
        }
    }

    private static void MatMulBackwardCheck(Session s)
    {
        foreach (var (aDims, bDims, ta, tb, alpha, _, hasBias) in Products)
        {
            var a = s.Random(aDims);
            var b = s.Random(bDims);
            var gradOutput = s.Random(ProductShape(aDims, bDims, ta, tb));
            var gradA = s.Random(aDims);
            var gradB = s.Random(bDims);
            Pair? gradBias = hasBias ? s.Random(gradOutput.Reference.Shape[-1]) : null;
            s.Both((backend, i) => backend.MatMulBackward(gradA[i], gradB[i], gradBias?[i], gradOutput[i], a[i], b[i], ta, tb, alpha));
            s.Compare("gradA", gradA);
            s.Compare("gradB", gradB);
            if (gradBias is Pair pair) s.Compare("gradBias", pair);
        }
    }

    private static void ResidualLayerNormCheck(Session s)
    {
        int[] dims = [2, 5, 33];
        var x = s.Random(dims);
        var branch = s.Random(dims);
        var weight = s.Random(33);
        var bias = s.Random(33);
        var residual = s.Zeros(dims);
        var norm = s.Zeros(dims);
        var mean = s.Zeros(10);
        var rstd = s.Zeros(10);
        s.Both((backend, i) => backend.ResidualLayerNorm(residual[i], norm[i], mean[i], rstd[i], x[i], branch[i], 0.8f, 0.6f, weight[i], bias[i]));
        s.Compare("residualOutput", residual);
        s.Compare("normOutput", norm);
        s.Compare("mean", mean);
        s.Compare("rstd", rstd);
        // A plain layer norm of a wide row (no branch, no affine), with a large mean: the two-pass variance (rstd).
        // x - mean cancels: each backend's fp32 mean of values near 100 is off by a few ulp(100) = 7.6e-6 in its own
        // summation order, which moves every output by that times rstd (seen on an H100: 2.6e-5). The outputs are
        // compared relative to the offset, the scale of that error; a wrong mean or variance is still caught (1e-3).
        const float offset = 100f;
        var wide = s.Random(3, 1000, scale: 1f, offset: offset);
        var wideNorm = s.Zeros(3, 1000);
        var wideMean = s.Zeros(3);
        var wideRstd = s.Zeros(3);
        s.Both((backend, i) => backend.ResidualLayerNorm(null, wideNorm[i], wideMean[i], wideRstd[i], wide[i], null, 0f, 0f, null, null));
        s.Compare("plain normOutput", wideNorm, condition: offset);
        s.Compare("plain mean", wideMean);
        s.Compare("plain rstd", wideRstd);
    }

    private static void ResidualLayerNormBackwardCheck(Session s)
    {
        int[] dims = [2, 5, 33];
        var x = s.Random(dims);
        var branch = s.Random(dims);
        var weight = s.Random(33);
        var residual = s.Zeros(dims);
        var norm = s.Zeros(dims);
        var mean = s.Zeros(10);
        var rstd = s.Zeros(10);
        s.Both((backend, i) => backend.ResidualLayerNorm(residual[i], norm[i], mean[i], rstd[i], x[i], branch[i], 0.8f, 0.6f, weight[i], null));
        var gradNorm = s.Random(dims);
        var gradResidual = s.Random(dims);
        var gradX = s.Random(dims);
        var gradBranch = s.Random(dims);
        var gradWeight = s.Random(33);
        var gradBias = s.Random(33);
        s.Both((backend, i) => backend.ResidualLayerNormBackward(gradX[i], gradBranch[i], gradWeight[i], gradBias[i], gradNorm[i], gradResidual[i],
            residual[i], mean[i], rstd[i], weight[i], 0.8f, 0.6f, hasBranch: true));
        s.Compare("gradX", gradX);
        s.Compare("gradBranch", gradBranch);
        s.Compare("gradWeight", gradWeight);
        s.Compare("gradBias", gradBias);
    }

    private static void ResidualCheck(Session s)
    {
        var x = s.Random(7, 13);
        var branch = s.Random(7, 13);
        var output = s.Zeros(7, 13);
        s.Both((backend, i) => backend.Residual(output[i], x[i], branch[i], 0.6f, 0.8f));
        s.Compare("output", output);
    }

    private static void ResidualBackwardCheck(Session s)
    {
        var gradOutput = s.Random(7, 13);
        var gradX = s.Random(7, 13);
        var gradBranch = s.Random(7, 13);
        s.Both((backend, i) => backend.ResidualBackward(gradX[i], gradBranch[i], gradOutput[i], 0.6f, 0.8f));
        s.Compare("gradX", gradX);
        s.Compare("gradBranch", gradBranch);
    }

    private static void RoundToPrecisionCheck(Session s)
    {
        // Values up to 2^17 (fp16 overflow), and tiny ones (fp16 subnormals): both formats' edge cases in one draw.
        foreach (var precision in new[] { ComputePrecision.Bf16, ComputePrecision.Fp16 })
        {
            var large = s.Random(1, 1031, scale: 131072f);
            var tiny = s.Random(1, 1031, scale: 1e-6f);
            var output = s.Zeros(1, 1031);
            s.Both((backend, i) => backend.RoundToPrecision(output[i], large[i], precision));
            s.Compare($"{precision} large", output);
            s.Both((backend, i) => backend.RoundToPrecision(tiny[i], tiny[i], precision));
            s.Compare($"{precision} tiny in place", tiny);
        }
    }

    private static readonly ActivationFunction[] Activations =
        [ActivationFunction.Relu, ActivationFunction.GeluErf, ActivationFunction.GeluTanh, ActivationFunction.ScaledLeakyRelu(0.2f)];

    private static void ActivationCheck(Session s)
    {
        foreach (var function in Activations)
        {
            var input = s.Random(1, 1031, scale: 6f);
            var output = s.Zeros(1, 1031);
            s.Both((backend, i) => backend.Activation(output[i], input[i], function));
            s.Compare($"{function.Kind} output", output);
        }
    }

    private static void ActivationBackwardCheck(Session s)
    {
        foreach (var function in Activations)
        {
            var input = s.Random(1, 1031, scale: 6f);
            var gradOutput = s.Random(1, 1031);
            var gradInput = s.Random(1, 1031);
            s.Both((backend, i) => backend.ActivationBackward(gradInput[i], gradOutput[i], input[i], function));
            s.Compare($"{function.Kind} gradInput", gradInput);
        }
    }

    private static void DropoutCheck(Session s)
    {
        var input = s.Random(1001);
        var output = s.Zeros(1001);
        s.Both((backend, i) => backend.Dropout(output[i], input[i], 0.3f, seed: 0x1234_5678_9ABCUL, offset: 77));
        s.Compare("output", output);
        s.Both((backend, i) => backend.Dropout(input[i], input[i], 0.5f, seed: 5, offset: 1UL << 40));
        s.Compare("in-place output", input);
    }

    // Box-Muller in float64 on both sides: only the last bits of log and sin/cos may differ before the rounding to
    // float. 1003 elements end inside a Philox block; the offset has its high word set.
    private static void RandomNormalCheck(Session s)
    {
        var output = s.Zeros(1003);
        s.Both((backend, i) => backend.RandomNormal(output[i], seed: 0xFEDC_BA98_7654UL, offset: (1UL << 33) + 5, mean: 0.25f, std: 1.5f));
        s.Compare("output", output);
    }

    private static void DropoutBackwardCheck(Session s)
    {
        var gradOutput = s.Random(1001);
        var gradInput = s.Random(1001);
        s.Both((backend, i) => backend.DropoutBackward(gradInput[i], gradOutput[i], 0.3f, seed: 0x1234_5678_9ABCUL, offset: 77));
        s.Compare("gradInput", gradInput);
    }

    /// <summary>Self-attention with every option (causal, a bias with -infinity entries, rescale, mix), and plain
    /// cross-attention with more keys than queries.</summary>
    private static IEnumerable<(Pair Query, Pair Key, Pair Value, Pair Probabilities, Func<int, AttentionOptions> Options)> AttentionCases(Session s)
    {
        int batch = 2, tokens = 7, heads = 3, channels = 12;
        var bias = s.Random(tokens, tokens);
        float[] biasValues = new float[tokens * tokens];
        s.Download(bias, biasValues);
        biasValues[3 * tokens + 1] = float.NegativeInfinity;
        s.Upload(bias, biasValues);
        var rescale = s.Random(tokens);
        var alpha = s.Random(heads);
        var beta = s.Random(heads);
        yield return (s.Random(batch, tokens, channels), s.Random(batch, tokens, channels), s.Random(batch, tokens, channels),
            s.Zeros(batch, heads, tokens, tokens),
            i => new AttentionOptions { Heads = heads, Causal = true, Bias = bias[i], Rescale = rescale[i], MixAlpha = alpha[i], MixBeta = beta[i] });
        yield return (s.Random(batch, 5, channels), s.Random(batch, 9, channels), s.Random(batch, 9, channels), s.Zeros(batch, heads, 5, 9),
            _ => new AttentionOptions { Heads = heads, Scale = 0.4f });
    }

    private static void AttentionCheck(Session s)
    {
        foreach (var (query, key, value, probabilities, options) in AttentionCases(s))
        {
            var output = s.Zeros(query.Reference.Shape[0], query.Reference.Shape[1], query.Reference.Shape[2]);
            s.Both((backend, i) => backend.Attention(output[i], probabilities[i], query[i], key[i], value[i], options(i)));
            s.Compare("output", output);
            s.Compare("probabilities", probabilities);
        }
    }

    private static void AttentionBackwardCheck(Session s)
    {
        foreach (var (query, key, value, probabilities, options) in AttentionCases(s))
        {
            var output = s.Zeros(query.Reference.Shape[0], query.Reference.Shape[1], query.Reference.Shape[2]);
            s.Both((backend, i) => backend.Attention(output[i], probabilities[i], query[i], key[i], value[i], options(i)));
            var gradOutput = s.Random(query.Reference.Shape[0], query.Reference.Shape[1], query.Reference.Shape[2]);
            var gradQuery = s.Random(query.Reference.Shape[0], query.Reference.Shape[1], query.Reference.Shape[2]);
            var gradKey = s.Random(key.Reference.Shape[0], key.Reference.Shape[1], key.Reference.Shape[2]);
            var gradValue = s.Random(key.Reference.Shape[0], key.Reference.Shape[1], key.Reference.Shape[2]);
            bool mix = options(0).MixAlpha is not null;
            int heads = options(0).Heads;
            var gradAlpha = s.Random(heads);
            var gradBeta = s.Random(heads);
            s.Both((backend, i) => backend.AttentionBackward(gradQuery[i], gradKey[i], gradValue[i], mix ? gradAlpha[i] : null, mix ? gradBeta[i] : null,
                gradOutput[i], probabilities[i], query[i], key[i], value[i], options(i)));
            s.Compare("gradQuery", gradQuery);
            s.Compare("gradKey", gradKey);
            s.Compare("gradValue", gradValue);
            if (!mix) continue;
            s.Compare("gradMixAlpha", gradAlpha);
            s.Compare("gradMixBeta", gradBeta);
        }
    }

    /// <summary>Token ids with repeats (the scatter-add must add both), batch 3 of 11 tokens, vocabulary 17.</summary>
    private static Pair Tokens(Session s) => s.Indices([.. Enumerable.Range(0, 33).Select(i => i * 7 % 17 / 2)], 3, 11);

    private static void EmbeddingCheck(Session s)
    {
        var tokens = Tokens(s);
        var table = s.Random(17, 10);
        var positions = s.Random(12, 10);
        var output = s.Zeros(3, 11, 10);
        s.Both((backend, i) => backend.Embedding(output[i], tokens[i], table[i], positions[i]));
        s.Compare("output", output);
    }

    private static void EmbeddingBackwardCheck(Session s)
    {
        var tokens = Tokens(s);
        var gradOutput = s.Random(3, 11, 10);
        var gradTable = s.Random(17, 10);
        var gradPositions = s.Random(12, 10);
        s.Both((backend, i) => backend.EmbeddingBackward(gradTable[i], gradPositions[i], gradOutput[i], tokens[i]));
        s.Compare("gradTokenTable", gradTable);
        s.Compare("gradPositionTable", gradPositions);
    }

    /// <summary>Nine rows of 37 classes with logits up to +-20 (a confident row, where p_t - 1 cancels), two ignored.</summary>
    private static (Pair Logits, Pair Targets) CrossEntropyInputs(Session s) =>
        (s.Random(9, 37, scale: 20f), s.Indices([3, -100, 36, 0, 17, 17, -100, 5, 9], 9));

    private static void CrossEntropyCheck(Session s)
    {
        var (logits, targets) = CrossEntropyInputs(s);
        var losses = s.Zeros(9);
        s.Both((backend, i) => backend.SoftmaxCrossEntropy(losses[i], logits[i], targets[i]));
        s.Compare("losses", losses);
    }

    private static void CrossEntropyBackwardCheck(Session s)
    {
        var (logits, targets) = CrossEntropyInputs(s);
        var gradLosses = s.Random(9);
        var gradLogits = s.Random(9, 37);
        s.Both((backend, i) => backend.SoftmaxCrossEntropyBackward(gradLogits[i], gradLosses[i], logits[i], targets[i]));
        s.Compare("gradLogits", gradLogits);
    }

    private static void AdamWCheck(Session s)
    {
        var parameters = s.Random(517);
        var gradients = s.Random(517);
        var first = s.Random(517, scale: 0.1f);
        var second = s.Random(517, scale: 0.1f);
        s.Both((backend, i) => backend.Scale(second[i], 0f));
        var options = new AdamWOptions(1e-2f, WeightDecay: 0.1f);
        for (int step = 1; step <= 2; step++)
            s.Both((backend, i) => backend.AdamW(parameters[i], gradients[i], first[i], second[i], options, step, gradientScale: 0.5f));
        s.Compare("parameters", parameters);
        s.Compare("firstMoment", first);
        s.Compare("secondMoment", second);
    }

    private static void GlobalNormCheck(Session s)
    {
        var a = s.Random(3000);
        var b = s.Random(5, 7);
        s.CompareNumbers("norm", s.Each((backend, i) => backend.GlobalNorm(a[i], b[i])));
    }

    private static void ClipCheck(Session s)
    {
        var a = s.Random(3000);
        var b = s.Random(5, 7);
        s.CompareNumbers("norm", s.Each((backend, i) => backend.ClipByGlobalNorm(1.5f, a[i], b[i])));
        s.Compare("a", a);
        s.Compare("b", b);
    }

    private static void ScaleCheck(Session s)
    {
        var a = s.Random(1000);
        s.Both((backend, i) => backend.Scale(a[i], -0.3f));
        s.Compare("tensor", a);
    }

    private static void MomentsCheck(Session s)
    {
        var x = s.Random(3, 6, 40);
        var (reference, candidate) = s.Each((backend, i) => backend.Moments(x[i]));
        s.CompareNumbers("mean", (reference.Mean, candidate.Mean));
        s.CompareNumbers("variance", (reference.Variance, candidate.Variance));
        s.CompareNumbers("correlation", (reference.Correlation, candidate.Correlation));
    }

    /// <summary>A token id outside the vocabulary: both backends must reject it with the same message (position and value).</summary>
    private static void InvalidIndexCheck(Session s)
    {
        var tokens = s.Indices([1, 2, 3, 40, 5, -2], 2, 3);
        var table = s.Random(17, 4);
        var output = s.Zeros(2, 3, 4);
        var (reference, candidate) = s.Each((backend, i) =>
        {
            try
            {
                backend.Embedding(output[i], tokens[i], table[i], null);
                return "no error";
            }
            catch (ArgumentException e)
            {
                return e.Message;
            }
        });
        if (reference != candidate) throw new InvalidOperationException($"the reference says \"{reference}\" but the candidate \"{candidate}\"");
    }

    /// <summary>
    /// Five AdamW steps of a one-block causal language model built from the ops (embedding with positions, layer
    /// norm, attention, residual combine, output projection with bias, cross-entropy), forward and backward on
    /// both backends: the mean losses of every step (4.13 falling to 2.03 on the CPU) and the final parameters must
    /// agree: the loss curve of a short training run, with the ops used the way a model uses them.
    /// </summary>
    private static void TrainingStepsCheck(Session s)
    {
        const int batch = 2, tokens = 8, vocabulary = 13, channels = 16, rows = batch * tokens;
        var ids = s.Indices([.. Enumerable.Range(0, rows).Select(i => i * 5 % vocabulary)], batch, tokens);
        var targets = s.Indices([.. Enumerable.Range(0, rows).Select(i => (i * 5 + 3) % vocabulary)], rows);
        Pair[] parameters = [s.Random(vocabulary, channels), s.Random(tokens, channels), s.Random(channels), s.Random(channels),
            s.Random(vocabulary, channels), s.Random(vocabulary)];
        var (table, positions, normWeight, normBias, projection, projectionBias) =
            (parameters[0], parameters[1], parameters[2], parameters[3], parameters[4], parameters[5]);
        Pair[] gradients = [.. parameters.Select(s.ZerosLike)];
        Pair[] first = [.. parameters.Select(s.ZerosLike)];
        Pair[] second = [.. parameters.Select(s.ZerosLike)];
        var (x, h, attended, output) = (s.Zeros(batch, tokens, channels), s.Zeros(batch, tokens, channels), s.Zeros(batch, tokens, channels), s.Zeros(batch, tokens, channels));
        var (mean, rstd, probabilities) = (s.Zeros(rows), s.Zeros(rows), s.Zeros(batch, 2, tokens, tokens));
        var (logits, losses, gradLosses) = (s.Zeros(rows, vocabulary), s.Zeros(rows), s.Zeros(rows));
        var (gradX, gradH, gradAttended, gradOutput, gradLogits) = (s.Zeros(batch, tokens, channels), s.Zeros(batch, tokens, channels),
            s.Zeros(batch, tokens, channels), s.Zeros(batch, tokens, channels), s.Zeros(rows, vocabulary));
        s.Upload(gradLosses, [.. Enumerable.Repeat(1f / rows, rows)]);
        var options = new AttentionOptions { Heads = 2, Causal = true };
        var adam = new AdamWOptions(3e-2f, WeightDecay: 0.01f);
        for (int step = 1; step <= 5; step++)
        {
            s.Both((b, i) =>
            {
                foreach (var gradient in (Pair[])[.. gradients, gradX, gradH, gradAttended, gradOutput, gradLogits]) b.Zero(gradient[i]);
                b.Embedding(x[i], ids[i], table[i], positions[i]);
                b.ResidualLayerNorm(null, h[i], mean[i], rstd[i], x[i], null, 0f, 0f, normWeight[i], normBias[i]);
                b.Attention(attended[i], probabilities[i], h[i], h[i], h[i], options);
                b.Residual(output[i], x[i], attended[i], 0.8f, 0.6f);
                var flat = output[i].View(rows, channels); // [batch, tokens, channels] -> [rows, channels]
                b.MatMul(logits[i], flat, projection[i], transposeB: true, bias: projectionBias[i]);
                b.SoftmaxCrossEntropy(losses[i], logits[i], targets[i]);
                b.SoftmaxCrossEntropyBackward(gradLogits[i], gradLosses[i], logits[i], targets[i]);
                b.MatMulBackward(gradOutput[i].View(rows, channels), gradients[4][i], gradients[5][i], gradLogits[i], flat, projection[i], transposeB: true);
                b.ResidualBackward(gradX[i], gradAttended[i], gradOutput[i], 0.8f, 0.6f);
                // Query, key and value are all h: their three gradients add into one view.
                b.AttentionBackward(gradH[i], gradH[i], gradH[i], null, null, gradAttended[i], probabilities[i], h[i], h[i], h[i], options);
                b.ResidualLayerNormBackward(gradX[i], null, gradients[2][i], gradients[3][i], gradH[i], null, x[i], mean[i], rstd[i], normWeight[i], 0f, 0f, hasBranch: false);
                b.EmbeddingBackward(gradients[0][i], gradients[1][i], gradX[i], ids[i]);
                for (int p = 0; p < parameters.Length; p++) b.AdamW(parameters[p][i], gradients[p][i], first[p][i], second[p][i], adam, step);
            });
            s.CompareNumbers($"step {step} mean loss", s.Each((b, i) =>
            {
                var values = new float[rows];
                b.Download<float>(values, losses[i]);
                return values.Average(v => (double)v);
            }));
        }
        for (int p = 0; p < parameters.Length; p++) s.Compare($"parameter {p}", parameters[p]);
    }

    /// <summary>One tensor on each backend holding the same values.</summary>
    private readonly record struct Pair(Tensor Reference, Tensor Candidate)
    {
        public Tensor this[int side] => side == 0 ? Reference : Candidate;
    }

    /// <summary>The two backends of a check, a seeded source of inputs, the tensors made, and the largest errors seen.</summary>
    private sealed class Session(Backend reference, Backend candidate, int seed) : IDisposable
    {
        private readonly Random _random = new(seed);
        private readonly List<Tensor> _tensors = [];

        public double MaxAbsoluteError { get; private set; }
        public double MaxError { get; private set; }
        public string WorstOutput { get; private set; } = "";

        /// <summary>Uniform values in [-scale, scale).</summary>
        public Pair Random(params int[] dims) => Random(dims, 1f, 0f);

        /// <summary>Uniform values in [offset - scale, offset + scale).</summary>
        public Pair Random(int rows, int columns, float scale, float offset = 0f) => Random([rows, columns], scale, offset);

        public Pair Random(int count, float scale) => Random([count], scale, 0f);

        private Pair Random(int[] dims, float scale, float offset = 0f)
        {
            var pair = Zeros(dims);
            var values = new float[pair.Reference.ElementCount];
            for (int j = 0; j < values.Length; j++) values[j] = offset + scale * (2f * _random.NextSingle() - 1f);
            Upload(pair, values);
            return pair;
        }

        public Pair Zeros(params int[] dims) => Make(DType.Float32, dims);

        public Pair ZerosLike(Pair pair) => Zeros(pair.Reference.Shape.Dimensions.ToArray());

        public Pair Indices(int[] values, params int[] dims)
        {
            var pair = Make(DType.Int32, dims);
            reference.Upload<int>(pair.Reference, values);
            candidate.Upload<int>(pair.Candidate, values);
            return pair;
        }

        private Pair Make(DType dtype, int[] dims)
        {
            var pair = new Pair(reference.Allocate(dtype, dims), candidate.Allocate(dtype, dims));
            _tensors.Add(pair.Reference);
            _tensors.Add(pair.Candidate);
            return pair;
        }

        public void Upload(Pair pair, float[] values)
        {
            reference.Upload<float>(pair.Reference, values);
            candidate.Upload<float>(pair.Candidate, values);
        }

        public void Download(Pair pair, float[] values) => reference.Download<float>(values, pair.Reference);

        /// <summary>Runs an op on the reference (side 0), then on the candidate (side 1).</summary>
        public void Both(Action<Backend, int> op)
        {
            op(reference, 0);
            op(candidate, 1);
        }

        /// <summary>Runs a function on both sides and returns both answers.</summary>
        public (T Reference, T Candidate) Each<T>(Func<Backend, int, T> function) => (function(reference, 0), function(candidate, 1));

        /// <summary>
        /// Downloads both tensors and folds their element-wise differences, divided by <paramref name="condition"/>,
        /// into the maxima: an output computed through a cancellation is that many times less accurate in fp32.
        /// </summary>
        public void Compare(string output, Pair pair, double condition = 1)
        {
            var expected = new float[pair.Reference.ElementCount];
            var actual = new float[pair.Candidate.ElementCount];
            reference.Download<float>(expected, pair.Reference);
            candidate.Download<float>(actual, pair.Candidate);
            for (int j = 0; j < expected.Length; j++) Fold($"{output}[{j}]", expected[j] / condition, actual[j] / condition);
        }

        public void CompareNumbers(string output, (double Reference, double Candidate) values) => Fold(output, values.Reference, values.Candidate);

        /// <summary>Equal values (NaN and infinities included) differ by 0; NaN against a number is an infinite error.</summary>
        private void Fold(string output, double expected, double actual)
        {
            double absolute = expected.Equals(actual) ? 0 : Math.Abs(actual - expected);
            if (double.IsNaN(absolute)) absolute = double.PositiveInfinity;
            double error = absolute / (1 + Math.Abs(expected));
            MaxAbsoluteError = Math.Max(MaxAbsoluteError, absolute);
            if (error <= MaxError && WorstOutput.Length > 0) return;
            MaxError = error;
            WorstOutput = output;
        }

        public void Dispose()
        {
            foreach (var tensor in _tensors) tensor.Dispose();
        }
    }
}
