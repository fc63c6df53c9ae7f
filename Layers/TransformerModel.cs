using DeepScaleLM.Native;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Layers;

/// <summary>
/// A decoder, encoder or encoder-decoder transformer on the op contract (docs/layers.md). Parameters, gradients,
/// the compute-precision copy of the weights and every activation live in flat buffers allocated once by
/// <see cref="Create"/>; <see cref="Forward"/> and <see cref="Backward"/> allocate nothing.
/// </summary>
/// <remarks>
/// Gradient rules: <see cref="Backward"/> zeroes <see cref="Gradients"/> and every activation gradient it uses, then
/// the ops accumulate (+=), as the op contract prescribes. Not thread-safe: one forward/backward at a time.
/// </remarks>
public sealed class TransformerModel : IDisposable
{
    private readonly ModelShape _shape;
    private readonly Tensor _compute, _constants, _activations, _gradientScratch;
    private readonly Tensor _tokens, _sourceTokens, _targets, _logits, _gradLogits, _losses, _gradLosses, _headInput, _gradHeadInput;
    private readonly Parameter _tokenTable, _headWeight;
    private readonly Stack[] _stacks;
    private readonly float _logitScale;
    private readonly float[] _lossesHost, _gradLossesHost;
    private readonly int _sites;
    private DropoutStep _lastDropout;
    private int _lastCount = -1;
    private float[]? _logitsHost;

    private TransformerModel(Backend backend, ModelConfig config, int batchSize, int tokens)
    {
        Backend = backend;
        Config = config;
        BatchSize = batchSize;
        Tokens = tokens;
        _shape = Shape(config, batchSize, tokens);
        var layout = Layout.Of(config, batchSize, tokens);
        ParameterCount = layout.Parameters;
        Parameters = backend.Allocate(Checked(layout.Parameters, "parameters"));
        Gradients = backend.Allocate(Checked(layout.Parameters, "parameters"));
        _compute = config.Precision == ComputePrecision.Fp32 ? Parameters : backend.Allocate(Checked(layout.Parameters, "parameters"));
        _constants = backend.Allocate(Checked(Math.Max(layout.Constants, 1), "constants"));
        _activations = AllocateFlat(backend, layout.Activations);
        _gradientScratch = AllocateFlat(backend, layout.GradientScratch);

        var parameters = new ParameterCarver(Parameters, Gradients, _compute);
        var constants = new Carver(_constants);
        var activations = new Carver(_activations);
        _tokenTable = parameters.Take("token_embedding.weight", decay: false, config.Vocabulary, config.ModelWidth);
        _stacks = new Stack[layout.Roles.Count];
        int site = 0;
        double contextCorrelation = 1;
        for (int i = 0; i < _stacks.Length; i++)
        {
            var role = layout.Roles[i];
            var init = StackInit.For(config, role.Layers, tokens, role.Causal, contextCorrelation);
            _stacks[i] = new Stack(role, config, _shape, init, parameters, constants, activations, _gradientScratch, site);
            site += _stacks[i].Sites;
            contextCorrelation = init.FinalCorrelation;
        }
        _sites = site;
        _headWeight = config.TiedHead ? _tokenTable : parameters.Take("lm_head.weight", decay: true, config.Vocabulary, config.ModelWidth);
        _logitScale = (float)Main.Init.LogitScale;
        NamedParameters = parameters.Named;

        int rows = batchSize * tokens;
        _logits = activations.Take(rows, config.Vocabulary);
        _gradLogits = activations.Take(rows, config.Vocabulary);
        _losses = activations.Take(rows);
        _gradLosses = activations.Take(rows);
        if (parameters.Used != layout.Parameters || activations.Used != layout.Activations || constants.Used != layout.Constants)
            throw new InvalidOperationException(
                $"model layout drifted from its formula: parameters {parameters.Used} vs {layout.Parameters}, activations {activations.Used} vs {layout.Activations}, constants {constants.Used} vs {layout.Constants}");
        _headInput = Main.Output.View(rows, config.ModelWidth);             // [B, T, d] -> [B*T, d]
        _gradHeadInput = Main.GradOutput.View(rows, config.ModelWidth);     // [B, T, d] -> [B*T, d]
        _tokens = backend.Allocate(DType.Int32, batchSize, tokens);
        _sourceTokens = backend.Allocate(DType.Int32, batchSize, tokens);
        _targets = backend.Allocate(DType.Int32, rows);
        _lossesHost = new float[rows];
        _gradLossesHost = new float[rows];
        Memory = layout.Report(config, batchSize, tokens);
        Initialize();
    }

    /// <summary>Builds a model for batches of <paramref name="batchSize"/> sequences of <paramref name="tokens"/> tokens and initialises it from <see cref="ModelConfig.Seed"/>.</summary>
    /// <param name="backend">Where the buffers live and the ops run.</param>
    /// <param name="config">The architecture; validated here.</param>
    /// <param name="batchSize">Sequences per forward, at least 1.</param>
    /// <param name="tokens">Tokens per sequence (decoder and, for encoder-decoder, source), 1 to SequenceLength.</param>
    /// <exception cref="ArgumentException">The config is invalid, or the batch or token count is out of range.</exception>
    public static TransformerModel Create(Backend backend, ModelConfig config, int batchSize, int tokens)
    {
        ArgumentNullException.ThrowIfNull(backend);
        CheckSizes(config, batchSize, tokens);
        return new TransformerModel(backend, config, batchSize, tokens);
    }

    /// <summary>The memory a model of this config would hold, without allocating it (e.g. for 1000 layers).</summary>
    /// <exception cref="ArgumentException">As for <see cref="Create"/>.</exception>
    public static MemoryReport EstimateMemory(ModelConfig config, int batchSize, int tokens)
    {
        CheckSizes(config, batchSize, tokens);
        return Layout.Of(config, batchSize, tokens).Report(config, batchSize, tokens);
    }

    /// <summary>The architecture.</summary>
    public ModelConfig Config { get; }
    /// <summary>Where the model lives.</summary>
    public Backend Backend { get; }
    /// <summary>Sequences per forward.</summary>
    public int BatchSize { get; }
    /// <summary>Tokens per sequence.</summary>
    public int Tokens { get; }
    /// <summary>Trainable scalars.</summary>
    public long ParameterCount { get; }
    /// <summary>Every parameter, flat fp32 ([ParameterCount]), in the order of <see cref="NamedParameters"/>.</summary>
    public Tensor Parameters { get; }
    /// <summary>Their gradients, same layout, written by <see cref="Backward"/>.</summary>
    public Tensor Gradients { get; }
    /// <summary>Every parameter with its name (docs/checkpoint-format.md, "Parameter names").</summary>
    public IReadOnlyList<NamedParameter> NamedParameters { get; }
    /// <summary>
    /// What the theory needs to predict this model's moments (Theory's <c>DepthRecursion</c>): the shape, the init plan
    /// and the norm placement of its last (or only) stack at <see cref="Tokens"/> tokens, or null when the model has no
    /// such prediction (vanilla E-SPA blocks).
    /// </summary>
    public (DeepScaleLM.Theory.TransformerShape Shape, DeepScaleLM.Theory.Schemes.InitPlan Plan)? TheoryPlan()
    {
        if (Config.Init == InitScheme.Espa || Config.Norm == NormPlacement.None) return null;
        var (shape, depthScaling) = StackInit.TheoryShape(Config, Config.Layers, Tokens, causal: Config.Kind != ModelKind.Encoder);
        return (shape, StackInit.TheoryPlan(Config, shape, depthScaling));
    }

    /// <summary>The bytes this model holds.</summary>
    public MemoryReport Memory { get; }
    /// <summary>The blocks whose output <see cref="ForwardMoments"/> and <see cref="GradientMoments"/> report, like
    /// <c>decoder.layers.7</c>: every block, or with recomputation every k-th (and the last) of each stack.</summary>
    public IReadOnlyList<string> MonitoredBlocks => [.. Monitored().Select(m => $"{m.Stack.Role.Name}.layers.{m.Layer}")];

    private Stack Main => _stacks[^1];

    /// <summary>
    /// Forward pass on one batch; returns the mean cross-entropy over the targets that are not -100 (0 when all are).
    /// </summary>
    /// <param name="tokens">[batch * tokens] row-major input ids (decoder input, or encoder input of an encoder model).</param>
    /// <param name="targets">[batch * tokens] the ids to predict at each position, or -100 to ignore it.</param>
    /// <param name="sourceTokens">[batch * tokens] encoder input of an encoder-decoder model; empty otherwise.</param>
    /// <param name="training">Whether dropout applies.</param>
    /// <param name="dropoutSeed">Philox key of the dropout masks.</param>
    /// <param name="dropoutOffset">Per step: distinct offsets give independent masks.</param>
    /// <exception cref="ArgumentException">A span has the wrong length or an id is out of range.</exception>
    public float Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, ReadOnlySpan<int> sourceTokens = default,
        bool training = true, ulong dropoutSeed = 0, ulong dropoutOffset = 0)
    {
        int rows = BatchSize * Tokens;
        CheckLength(tokens.Length, rows, nameof(tokens));
        CheckLength(targets.Length, rows, nameof(targets));
        bool pair = Config.Kind == ModelKind.EncoderDecoder;
        CheckLength(sourceTokens.Length, pair ? rows : 0, nameof(sourceTokens));
        _lastCount = -1;
        if (_compute != Parameters) Backend.RoundToPrecision(_compute, Parameters, Config.Precision);
        Backend.Upload(_tokens, tokens);
        Backend.Upload(_targets, targets);
        var dropout = new DropoutStep(training ? Config.Dropout : 0f, dropoutSeed, dropoutOffset, _sites);
        if (pair)
        {
            Backend.Upload(_sourceTokens, sourceTokens);
            _stacks[0].Forward(Backend, _sourceTokens, _tokenTable, null, dropout, Config.Precision);
            Main.Forward(Backend, _tokens, _tokenTable, _stacks[0].Output, dropout, Config.Precision);
        }
        else
            Main.Forward(Backend, _tokens, _tokenTable, null, dropout, Config.Precision);
        // logits [B*T, V] = scale * h [B*T, d] W^T (W: the tied token table or lm_head, [V, d]).
        Backend.MatMul(_logits, _headInput, _headWeight.Compute, transposeB: true, alpha: _logitScale);
        Backend.SoftmaxCrossEntropy(_losses, _logits, _targets);
        Backend.Download<float>(_lossesHost, _losses);
        double sum = 0;
        int count = 0;
        for (int i = 0; i < rows; i++)
        {
            if (targets[i] == -100) continue;
            sum += _lossesHost[i];
            count++;
        }
        _lastDropout = dropout;
        _lastCount = count;
        return count == 0 ? 0f : (float)(sum / count);
    }

    /// <summary>
    /// Gradients of the last <see cref="Forward"/>'s mean loss times <paramref name="lossScale"/> (the loss gradient is
    /// scaled, for fp16 loss scaling), written over <see cref="Gradients"/>. With recomputation, segments are
    /// recomputed with the forward's dropout masks, so the gradients are bit-identical to keeping everything.
    /// </summary>
    /// <exception cref="InvalidOperationException">No forward has run since the model was made (or the last one failed).</exception>
    /// <exception cref="ArgumentException">The scale is not finite.</exception>
    public void Backward(float lossScale = 1f)
    {
        if (_lastCount < 0) throw new InvalidOperationException("Backward needs a completed Forward first");
        if (!float.IsFinite(lossScale)) throw new ArgumentException($"lossScale must be finite (got {lossScale})", nameof(lossScale));
        Array.Fill(_gradLossesHost, _lastCount == 0 ? 0f : lossScale / _lastCount);
        Backend.Upload<float>(_gradLosses, _gradLossesHost);
        Backend.Zero(Gradients);
        Backend.Zero(_gradLogits);
        Backend.SoftmaxCrossEntropyBackward(_gradLogits, _gradLosses, _logits, _targets);
        // The GPU keeps the logit gradient and the weight gradients in the compute dtype: round them here too, so an
        // fp16 loss scale that is too large overflows to infinity on the CPU exactly where it would there.
        Rounding.Apply(Backend, Config.Precision, _gradLogits);
        Main.ZeroOutputGradient(Backend);
        Backend.MatMulBackward(_gradHeadInput, _headWeight.Gradient, null, _gradLogits, _headInput, _headWeight.Compute, transposeB: true, alpha: _logitScale);
        BackwardFromHeadInputGradient();
    }

    /// <summary>
    /// Gradients of the last <see cref="Forward"/> for a given gradient at the head's input (the final LayerNorm's output,
    /// or the last block's output without one) in place of the loss's, written over <see cref="Gradients"/>; the head
    /// adds nothing to its weight's gradient (a tied table still gets the embedding's). A probe of signal propagation: Theory's gradient recursion assumes a top gradient
    /// independent of the forward pass, which the loss's is not where the head input has a large common part across
    /// tokens (docs/theory.md, "Vanilla E-SPA stacks").
    /// </summary>
    /// <param name="headInputGradient">[batch * tokens * d] row-major.</param>
    /// <exception cref="InvalidOperationException">No forward has run since the model was made (or the last one failed).</exception>
    /// <exception cref="ArgumentException">The span is not batch * tokens * d long.</exception>
    public void BackwardFromHeadInput(ReadOnlySpan<float> headInputGradient)
    {
        if (_lastCount < 0) throw new InvalidOperationException("Backward needs a completed Forward first");
        CheckLength(headInputGradient.Length, checked((int)_gradHeadInput.ElementCount), nameof(headInputGradient));
        Backend.Zero(Gradients);
        Main.ZeroOutputGradient(Backend);
        Backend.Upload(_gradHeadInput, headInputGradient);
        Rounding.Apply(Backend, Config.Precision, _gradHeadInput);
        BackwardFromHeadInputGradient();
    }

    /// <summary>The head input [batch * tokens * d] of the last <see cref="Forward"/>.</summary>
    /// <exception cref="InvalidOperationException">No forward has run.</exception>
    /// <exception cref="ArgumentException">The destination is not batch * tokens * d long.</exception>
    public void HeadInput(Span<float> destination)
    {
        if (_lastCount < 0) throw new InvalidOperationException("HeadInput needs a completed Forward first");
        CheckLength(destination.Length, checked((int)_headInput.ElementCount), nameof(destination));
        Backend.Download(destination, _headInput);
    }

    /// <summary>The stacks' backward from the gradient at the head input.</summary>
    private void BackwardFromHeadInputGradient()
    {
        if (Config.Kind == ModelKind.EncoderDecoder)
        {
            var encoder = _stacks[0];
            encoder.ZeroOutputGradient(Backend);
            Main.Backward(Backend, _tokens, _tokenTable, encoder.Output, encoder.GradOutput, _lastDropout, Config.Precision);
            encoder.Backward(Backend, _sourceTokens, _tokenTable, null, null, _lastDropout, Config.Precision);
        }
        else
            Main.Backward(Backend, _tokens, _tokenTable, null, null, _lastDropout, Config.Precision);
        Rounding.Apply(Backend, Config.Precision, Gradients);
    }

    /// <summary>Logits [batch, vocabulary] at one position of the last <see cref="Forward"/> (for generation).</summary>
    /// <exception cref="ArgumentException">The position is outside [0, Tokens) or the destination is not batch * vocabulary long.</exception>
    /// <exception cref="InvalidOperationException">No forward has run.</exception>
    public void LogitsAt(int position, Span<float> destination)
    {
        if (_lastCount < 0) throw new InvalidOperationException("LogitsAt needs a completed Forward first");
        if (position < 0 || position >= Tokens) throw new ArgumentException($"position {position} is outside [0, {Tokens})", nameof(position));
        int vocabulary = Config.Vocabulary;
        CheckLength(destination.Length, BatchSize * vocabulary, nameof(destination));
        _logitsHost ??= new float[_logits.ElementCount];
        Backend.Download<float>(_logitsHost, _logits);
        for (int b = 0; b < BatchSize; b++)
            _logitsHost.AsSpan((b * Tokens + position) * vocabulary, vocabulary).CopyTo(destination.Slice(b * vocabulary, vocabulary));
    }

    /// <summary>Mean, variance and token correlation of each monitored block's output stream after the last forward.</summary>
    public IReadOnlyList<MomentStatistics> ForwardMoments() => [.. Monitored().Select(m => Backend.Moments(m.Stack.BlockOutput(m.Layer)))];

    /// <summary>Moments of the loss gradient at each monitored block's output stream after the last backward.</summary>
    public IReadOnlyList<MomentStatistics> GradientMoments() => [.. Monitored().Select(m => Backend.Moments(m.Stack.BlockOutputGradient(m.Layer)))];

    /// <summary>
    /// Per block of the main (last) stack, the moments of its residual stream and of the loss gradient there, as
    /// Theory's DepthRecursion indexes them (docs/theory.md, "Simulation"): the block output for Pre-LN (before the
    /// final LayerNorm), the pre-norm sum lam x + beta f(x) of its last sublayer for Post-LN (the block output is that
    /// sum's LayerNorm). Call after a <see cref="Forward"/> and <see cref="Backward"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">No forward has run, or blocks are recomputed (RecomputeEvery &gt; 1), so
    /// their activations are not all kept.</exception>
    public IReadOnlyList<(MomentStatistics Stream, MomentStatistics Gradient)> ResidualStreamMoments()
    {
        if (_lastCount < 0) throw new InvalidOperationException("ResidualStreamMoments needs a completed Forward and Backward first");
        if (Config.Segment > 1)
            throw new InvalidOperationException($"ResidualStreamMoments reads every block's activations: build the model without recomputation (recompute_every = {Config.RecomputeEvery})");
        using var scratch = Backend.Allocate(BatchSize, Tokens, Config.ModelWidth);
        var moments = new (MomentStatistics, MomentStatistics)[Main.Blocks.Count];
        for (int l = 0; l < moments.Length; l++)
            moments[l] = (Backend.Moments(Main.ResidualStream(l)), Backend.Moments(Main.ResidualStreamGradient(Backend, l, scratch)));
        return moments;
    }

    /// <summary>Moments of the loss gradient at the head's input (the final LayerNorm's output, or the last block's output
    /// without one) after the last backward: the top of Theory's gradient recursion.</summary>
    public MomentStatistics HeadInputGradientMoments() => Backend.Moments(Main.GradOutput);

    private IEnumerable<(Stack Stack, int Layer)> Monitored() =>
        _stacks.SelectMany(stack => Enumerable.Range(0, stack.Blocks.Count).Where(stack.Keeps).Select(l => (stack, l)));

    /// <summary>Releases every buffer.</summary>
    public void Dispose()
    {
        foreach (var tensor in new[] { Parameters, Gradients, _compute, _constants, _activations, _gradientScratch, _tokens, _sourceTokens, _targets })
            tensor.Dispose();
    }

    private static ModelShape Shape(ModelConfig c, int batch, int tokens) => new(batch, tokens, c.ModelWidth, c.Heads, c.HiddenWidth);

    private static void CheckSizes(ModelConfig config, int batchSize, int tokens)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (batchSize < 1) throw new ArgumentException($"batchSize must be at least 1 (got {batchSize})", nameof(batchSize));
        if (tokens < 1 || tokens > config.SequenceLength)
            throw new ArgumentException($"tokens must lie in [1, sequence_length = {config.SequenceLength}] (got {tokens})", nameof(tokens));
    }

    private static void CheckLength(int length, int expected, string name)
    {
        if (length != expected) throw new ArgumentException($"{name} has {length} elements but {expected} are required (batch x tokens)", name);
    }

    /// <summary>
    /// A buffer of at least <paramref name="count"/> floats to carve views from: one dimension while it fits an int,
    /// else rows of 2^20 (GPT-2-small's activations at batch 8 x 1024 tokens are 3.5e9 floats; each view carved
    /// from it is far smaller).
    /// </summary>
    private static Tensor AllocateFlat(Backend backend, long count)
    {
        const int row = 1 << 20;
        return count <= int.MaxValue ? backend.Allocate((int)count) : backend.Allocate(checked((int)((count + row - 1) / row)), row);
    }

    private static int Checked(long count, string what) => count <= int.MaxValue ? (int)count
        : throw new ArgumentException($"the model's {what} need {count} floats, more than one buffer of {int.MaxValue} holds");

    /// <summary>Every parameter's init from its stack's <see cref="StackInit"/>; E-SPA's bias and rescale.</summary>
    private void Initialize()
    {
        var sampler = new InitSampler(Backend, Config.Seed);
        void Normal(Parameter p, double std) => sampler.Normal(p.Value, std, p.Index);
        void Weight(Parameter p, double std, bool orthogonal)
        {
            if (orthogonal) sampler.Orthogonal(p.Value, ScaledUniformOrthogonal.Scale(p.Value.Shape[1], p.Value.Shape[0]), p.Index);
            else Normal(p, std);
        }
        Normal(_tokenTable, Main.Init.EmbeddingStd);
        if (_headWeight != _tokenTable) Normal(_headWeight, Main.Init.EmbeddingStd);
        foreach (var stack in _stacks)
        {
            var init = stack.Init;
            Normal(stack.PositionTable, init.EmbeddingStd);
            for (int l = 0; l < stack.Blocks.Count; l++)
                foreach (var sublayer in stack.Blocks[l].Sublayers)
                {
                    if (sublayer.Norm is { } norm) sampler.Constant(norm.Weight.Value, 1f);
                    if (sublayer.Branch is AttentionBranch attention)
                    {
                        bool cross = attention.IsCrossAttention;
                        Normal(attention.Query.Weight, init.QueryStd);
                        Normal(attention.Key.Weight, init.KeyStd);
                        Weight(attention.Value.Weight, cross ? init.CrossValueOutputStd : init.ValueStd[l], init.Orthogonal);
                        Weight(attention.Output.Weight, cross ? init.CrossValueOutputStd : init.OutputStd[l], init.Orthogonal);
                        // E-SPA at init: alpha = 0, beta = 1, so the layer computes exactly D_l softmax(B_l) V = A_l V.
                        if (attention.MixAlpha is { } alpha) sampler.Constant(alpha.Value, 0f);
                        if (attention.MixBeta is { } beta) sampler.Constant(beta.Value, 1f);
                    }
                    else if (sublayer.Branch is FeedForwardBranch feedForward)
                    {
                        Weight(feedForward.Input.Weight, init.FeedForwardInputStd, init.Orthogonal);
                        Weight(feedForward.Output.Weight, init.FeedForwardOutputStd, init.Orthogonal);
                    }
                }
            if (stack.FinalNorm is { } finalNorm) sampler.Constant(finalNorm.Weight.Value, 1f);
            foreach (var (layer, rescale) in stack.PositionRescales)
                Backend.Upload<float>(rescale, init.AttentionRescale![layer].Select(v => (float)v).ToArray());
            foreach (var (layer, bias, rescale) in stack.EspaLayers)
            {
                int n = layer.Rescale.Length;
                var values = new float[n * n];
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < n; j++) values[i * n + j] = (float)layer.Bias[i, j];
                Backend.Upload<float>(bias, values);
                Backend.Upload<float>(rescale, Array.ConvertAll(layer.Rescale, v => (float)v));
            }
        }
    }

    /// <summary>The sizes of every buffer, from formulas (so they can be known without allocating).</summary>
    private sealed record Layout(IReadOnlyList<StackRole> Roles, long Parameters, long Constants, long Activations, long GradientScratch,
        long ActivationsWithoutRecomputation, long BlockBytes)
    {
        public static Layout Of(ModelConfig c, int batch, int tokens)
        {
            var shape = Shape(c, batch, tokens);
            StackRole[] roles = c.Kind switch
            {
                ModelKind.Decoder => [new("decoder", "position_embedding.weight", c.Layers, Causal: true, CrossAttention: false)],
                ModelKind.Encoder => [new("encoder", "position_embedding.weight", c.Layers, Causal: false, CrossAttention: false)],
                _ => [new("encoder", "encoder.position_embedding.weight", c.EncoderDepth, Causal: false, CrossAttention: false),
                      new("decoder", "position_embedding.weight", c.Layers, Causal: true, CrossAttention: true)],
            };
            bool vanilla = c.Norm == NormPlacement.None;
            int d = c.ModelWidth;
            long norm = vanilla ? 0 : LayerNormWeights.Count(d);
            long parameters = (long)c.Vocabulary * d * (c.TiedHead ? 1 : 2), constants = 0, activations = 0, withoutRecomputation = 0, scratch = 0, blockBytes = 0;
            long rows = (long)batch * tokens, head = 2 * rows * c.Vocabulary + 2 * rows;
            foreach (var role in roles)
            {
                long block = norm + AttentionBranch.Count(d, c.Heads, vanilla) + norm + FeedForwardBranch.Count(d, c.HiddenWidth)
                    + (role.CrossAttention ? norm + AttentionBranch.Count(d, c.Heads, mix: false) : 0);
                parameters += (long)c.SequenceLength * d + role.Layers * block + (c.HasFinalNorm ? LayerNormWeights.Count(d) : 0);
                if (vanilla) constants += role.Layers * ((long)tokens * tokens + tokens);
                if (c.Init == InitScheme.DslmPosition) constants += (long)role.Layers * tokens;
                activations += Stack.ActivationCount(c, shape, role.Layers, role.CrossAttention);
                withoutRecomputation += Stack.ActivationCount(c with { RecomputeEvery = 0 }, shape, role.Layers, role.CrossAttention);
                long blockActivations = Stack.BlockActivationCount(shape, c.Norm, role.CrossAttention, c.Dropout > 0);
                scratch = Math.Max(scratch, blockActivations);
                blockBytes = Math.Max(blockBytes, 4 * (blockActivations + 2 * shape.StreamElements));
            }
            return new Layout(roles, parameters, constants, activations + head, scratch, withoutRecomputation + head, blockBytes);
        }

        public MemoryReport Report(ModelConfig c, int batch, int tokens)
        {
            long buffers = Constants + GradientScratch + 3L * batch * tokens; // constants, block gradient scratch, the id tensors (int32)
            int blocks = Roles.Sum(r => r.Layers);
            long activationBytes = 4 * (Activations + buffers), withoutBytes = 4 * (ActivationsWithoutRecomputation + buffers);
            return new MemoryReport(4 * Parameters, 4 * Parameters, c.Precision == ComputePrecision.Fp32 ? 0 : 4 * Parameters,
                activationBytes, withoutBytes, BlockBytes, activationBytes / blocks);
        }
    }
}
