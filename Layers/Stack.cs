using DeepScaleLM.Native;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Layers;

/// <summary>What a stack is: its name, depth, attention mask and whether its blocks cross-attend.</summary>
internal sealed record StackRole(string Name, string PositionName, int Layers, bool Causal, bool CrossAttention);

/// <summary>
/// One stack of blocks over a token sequence (the decoder, or the encoder): learned positions added to the shared
/// token embedding, embedding dropout, the blocks, an optional final LayerNorm; its residual streams and block
/// activations, kept whole or (RecomputeEvery = k &gt; 1) only at every k-th block input and recomputed in backward.
/// </summary>
/// <remarks>
/// Stream i is the input of block i (stream L: the last block's output). With k = 1 every stream and every block's
/// activations have their own buffers. With k &gt; 1 stream i lives in kept[i / k] when i % k == 0 and in its own
/// buffer when i = L, otherwise in scratch[i % k - 1]; block l's activations in slot l % k. The gradient streams
/// have the same layout; the block gradients use one scratch, zeroed before each block, shared by every block.
/// </remarks>
internal sealed class Stack
{
    private readonly ModelShape _shape;
    private readonly ModelConfig _config;
    private readonly int _layers, _segment, _embeddingSite;
    private readonly Tensor[] _streams, _gradStreams;
    private readonly BlockActivations[] _activations;
    private readonly BlockActivations _gradients;
    private readonly Tensor _gradientScratch, _gradEmbedding;
    private readonly NormActivations? _finalNorm, _gradFinalNorm;

    public Stack(StackRole role, ModelConfig config, ModelShape shape, StackInit init, ParameterCarver parameters, Carver constants,
        Carver activations, Tensor gradientScratch, int firstSite)
    {
        (_shape, _config, _layers, _segment, _embeddingSite) = (shape, config, role.Layers, Math.Min(config.Segment, role.Layers), firstSite);
        Role = role;
        Init = init;
        PositionTable = parameters.Take(role.PositionName, decay: false, config.SequenceLength, shape.Width);
        var activation = StackInit.Activation(config);
        bool vanilla = config.Norm == NormPlacement.None, distinctDropout = config.Dropout > 0;
        using var spa = vanilla ? ExponentialSignalPropagation.Build(shape.Tokens, role.Layers, causal: role.Causal).GetEnumerator() : null;
        var blocks = new Block[role.Layers];
        int site = firstSite + 1;
        var (lambda, beta) = ((float)init.Residual.Skip, (float)init.Residual.Branch);
        var (crossLambda, crossBeta) = ((float)init.CrossResidual.Skip, (float)init.CrossResidual.Branch);
        for (int l = 0; l < role.Layers; l++)
        {
            string prefix = $"{role.Name}.layers.{l}";
            LayerNormWeights? Norm(string name) => vanilla ? null : new LayerNormWeights(parameters, $"{prefix}.{name}", shape.Width);
            Tensor? bias = null, rescale = null;
            if (spa is not null && spa.MoveNext())
            {
                (bias, rescale) = (constants.Take(shape.Tokens, shape.Tokens), constants.Take(shape.Tokens));
                EspaLayers.Add((spa.Current, bias, rescale));
            }
            else if (init.AttentionRescale is not null)
            {
                rescale = constants.Take(shape.Tokens);
                PositionRescales.Add((l, rescale));
            }
            var attentionNorm = Norm("attention_norm");
            var sublayers = new List<Sublayer>
            {
                new(new AttentionBranch(parameters, $"{prefix}.attention", shape, role.Causal, mix: vanilla, bias, rescale),
                    config.Norm, attentionNorm, skip: false, lambda, beta, site++, shape, distinctDropout),
            };
            if (role.CrossAttention)
            {
                var crossNorm = Norm("cross_attention_norm");
                sublayers.Add(new(new AttentionBranch(parameters, $"{prefix}.cross_attention", shape, causal: false, mix: false, null, null, cross: true),
                    config.Norm, crossNorm, skip: true, crossLambda, crossBeta, site++, shape, distinctDropout));
            }
            var feedForwardNorm = Norm("feed_forward_norm");
            sublayers.Add(new(new FeedForwardBranch(parameters, $"{prefix}.feed_forward", shape, activation),
                config.Norm, feedForwardNorm, skip: false, lambda, beta, site++, shape, distinctDropout));
            blocks[l] = new Block(sublayers, shape);
        }
        Blocks = blocks;
        Sites = site - firstSite;
        if (config.HasFinalNorm) FinalNorm = new LayerNormWeights(parameters, $"{role.Name}.final_norm", shape.Width);

        int streamCount = StreamBuffers(role.Layers, config.Segment);
        _streams = TakeStreams(activations, streamCount);
        _gradStreams = TakeStreams(activations, streamCount);
        _activations = new BlockActivations[ActivationSets(role.Layers, config.Segment)];
        for (int i = 0; i < _activations.Length; i++) _activations[i] = blocks[0].Activations(activations);
        _gradEmbedding = activations.Take(shape.Batch, shape.Tokens, shape.Width);
        if (FinalNorm is not null)
        {
            _finalNorm = new NormActivations(activations, shape.Batch, shape.Tokens, shape.Width);
            _gradFinalNorm = new NormActivations(activations, shape.Batch, shape.Tokens, shape.Width);
        }
        // The block gradient scratch is shared with the other stack (never in use at the same time).
        var scratch = new Carver(gradientScratch);
        _gradients = blocks[0].Activations(scratch);
        _gradientScratch = gradientScratch.Slice(0, (int)scratch.Used);
    }

    public StackRole Role { get; }
    public StackInit Init { get; }
    public Parameter PositionTable { get; }
    public IReadOnlyList<Block> Blocks { get; }
    public LayerNormWeights? FinalNorm { get; }
    /// <summary>Dropout sites: the embedding's, then one per sublayer.</summary>
    public int Sites { get; }
    /// <summary>E-SPA's layers and the tensors their bias and rescale go to (vanilla stacks only).</summary>
    public List<(ESpaLayer Layer, Tensor Bias, Tensor Rescale)> EspaLayers { get; } = [];
    /// <summary>The position-aware scheme's layers and the tensors their attention rescale [tokens] goes to.</summary>
    public List<(int Layer, Tensor Rescale)> PositionRescales { get; } = [];

    /// <summary>The stack's output [batch, tokens, d]: the final LayerNorm's, or the last stream.</summary>
    public Tensor Output => _finalNorm?.Output ?? Stream(_layers);
    /// <summary>The gradient of <see cref="Output"/>; callers zero it (<see cref="ZeroOutputGradient"/>) and accumulate into it.</summary>
    public Tensor GradOutput => _gradFinalNorm?.Output ?? GradStream(_layers);

    /// <summary>Stream buffers for <paramref name="layers"/> blocks kept every <paramref name="segment"/>-th.</summary>
    public static int StreamBuffers(int layers, int segment)
    {
        int k = Math.Min(Math.Max(segment, 1), layers);
        return k == 1 ? layers + 1 : (layers + k - 1) / k + 1 + (k - 1);
    }

    /// <summary>Block activation sets: one per block, or one segment's worth.</summary>
    public static int ActivationSets(int layers, int segment) => segment <= 1 ? layers : Math.Min(segment, layers);

    /// <summary>Scalars of one block's activations (beyond its output stream).</summary>
    public static long BlockActivationCount(ModelShape s, NormPlacement placement, bool crossAttention, bool distinctDropout)
    {
        long attention = AttentionBranch.ActivationCount(s) + Sublayer.ActivationCount(s, placement, skip: false, distinctDropout);
        long cross = crossAttention ? AttentionBranch.ActivationCount(s) + Sublayer.ActivationCount(s, placement, skip: true, distinctDropout) + s.StreamElements : 0;
        long feedForward = FeedForwardBranch.ActivationCount(s) + Sublayer.ActivationCount(s, placement, skip: false, distinctDropout);
        return attention + cross + feedForward + s.StreamElements;
    }

    /// <summary>Scalars of the activations a stack carves (the block gradient scratch apart).</summary>
    public static long ActivationCount(ModelConfig config, ModelShape s, int layers, bool crossAttention) =>
        2L * StreamBuffers(layers, config.Segment) * s.StreamElements
        + ActivationSets(layers, config.Segment) * BlockActivationCount(s, config.Norm, crossAttention, config.Dropout > 0)
        + s.StreamElements + (config.HasFinalNorm ? 2 * NormActivations.Count(s.Batch, s.Tokens, s.Width) : 0);

    private Tensor[] TakeStreams(Carver take, int count)
    {
        var streams = new Tensor[count];
        for (int i = 0; i < count; i++) streams[i] = take.Take(_shape.Batch, _shape.Tokens, _shape.Width);
        return streams;
    }

    /// <summary>Stream i (the input of block i; i = L the last output) in its buffer.</summary>
    private Tensor Stream(int i) => _streams[StreamIndex(i)];
    private Tensor GradStream(int i) => _gradStreams[StreamIndex(i)];

    private int StreamIndex(int i)
    {
        if (_segment == 1) return i;
        int kept = (_layers + _segment - 1) / _segment;
        if (i == _layers) return kept;
        return i % _segment == 0 ? i / _segment : kept + i % _segment;
    }

    private BlockActivations ActivationsOf(int layer) => _activations[_segment == 1 ? layer : layer % _segment];

    /// <summary>Whether block l's output stays in memory after a forward (every block without recomputation).</summary>
    public bool Keeps(int layer) => _segment == 1 || (layer + 1) % _segment == 0 || layer == _layers - 1;

    /// <summary>The output stream of block l (valid when <see cref="Keeps"/>).</summary>
    public Tensor BlockOutput(int layer) => Stream(layer + 1);
    /// <summary>The gradient at the output stream of block l after a backward (valid when <see cref="Keeps"/>).</summary>
    public Tensor BlockOutputGradient(int layer) => GradStream(layer + 1);

    /// <summary>
    /// Block l's residual stream as Theory's DepthRecursion indexes it: the block output for Pre-LN and vanilla blocks;
    /// for Post-LN the last sublayer's pre-norm sum s = lam x + beta f(x), the LayerNorm input (the block output is
    /// LN(s), unit variance by construction). Valid after a forward when every block is kept (no recomputation).
    /// </summary>
    public Tensor ResidualStream(int layer) => _config.Norm == NormPlacement.Post ? ActivationsOf(layer).Sublayers[^1].Sum : BlockOutput(layer);

    /// <summary>
    /// The gradient at <see cref="ResidualStream"/>(l) after a backward: the block output's gradient for Pre-LN and
    /// vanilla blocks; for Post-LN the LayerNorm backward of it through the last sublayer's saved statistics, written
    /// into <paramref name="scratch"/> (the fused backward never stores ds on its own).
    /// </summary>
    public Tensor ResidualStreamGradient(Backend backend, int layer, Tensor scratch)
    {
        if (_config.Norm != NormPlacement.Post) return BlockOutputGradient(layer);
        var a = ActivationsOf(layer).Sublayers[^1];
        backend.Zero(scratch);
        backend.ResidualLayerNormBackward(scratch, null, null, null, BlockOutputGradient(layer), null, a.Sum, a.Mean, a.Rstd,
            Blocks[layer].Sublayers[^1].Norm!.Weight.Value, 1f, 1f, hasBranch: false);
        return scratch;
    }

    /// <summary>Embeds the tokens and runs every block (and the final norm): <see cref="Output"/> holds the result.</summary>
    public void Forward(Backend backend, Tensor tokens, Parameter tokenTable, Tensor? context, DropoutStep dropout, ComputePrecision precision)
    {
        var input = Stream(0);
        backend.Embedding(input, tokens, tokenTable.Value, PositionTable.Value);
        backend.Dropout(input, input, dropout.Probability, dropout.Seed, dropout.Offset(_embeddingSite));
        if (_config.Norm != NormPlacement.Pre) Rounding.Apply(backend, precision, input);
        for (int l = 0; l < _layers; l++)
            Blocks[l].Forward(backend, ActivationsOf(l), Stream(l), Stream(l + 1), context, dropout, precision);
        if (_finalNorm is not null)
        {
            _finalNorm.Forward(backend, Stream(_layers), FinalNorm!);
            Rounding.Apply(backend, precision, _finalNorm.Output);
        }
    }

    /// <summary>Sets <see cref="GradOutput"/> to zero before the head (or the decoder) accumulates into it.</summary>
    public void ZeroOutputGradient(Backend backend) => backend.Zero(GradOutput);

    /// <summary>
    /// Backward from <see cref="GradOutput"/>: accumulates every parameter gradient of the stack, the token table's,
    /// and <paramref name="gradContext"/>. Segments run last to first; each but the last (whose activations the
    /// forward left in place) is first recomputed from its kept input with the forward's dropout masks.
    /// </summary>
    public void Backward(Backend backend, Tensor tokens, Parameter tokenTable, Tensor? context, Tensor? gradContext, DropoutStep dropout, ComputePrecision precision)
    {
        if (_finalNorm is not null)
        {
            backend.Zero(GradStream(_layers));
            _finalNorm.Backward(backend, GradStream(_layers), _gradFinalNorm!.Output, Stream(_layers), FinalNorm!);
        }
        int lastSegmentStart = (_layers - 1) / _segment * _segment;
        for (int start = lastSegmentStart; start >= 0; start -= _segment)
        {
            int end = Math.Min(start + _segment, _layers);
            if (_segment > 1 && start != lastSegmentStart)
                for (int l = start; l < end; l++)
                    Blocks[l].Forward(backend, ActivationsOf(l), Stream(l), Stream(l + 1), context, dropout, precision);
            for (int l = end - 1; l >= start; l--)
            {
                backend.Zero(GradStream(l));
                backend.Zero(_gradientScratch);
                Blocks[l].Backward(backend, ActivationsOf(l), _gradients, Stream(l), GradStream(l), GradStream(l + 1), context, gradContext, dropout);
            }
        }
        backend.Zero(_gradEmbedding);
        backend.DropoutBackward(_gradEmbedding, GradStream(0), dropout.Probability, dropout.Seed, dropout.Offset(_embeddingSite));
        backend.EmbeddingBackward(tokenTable.Gradient, PositionTable.Gradient, _gradEmbedding, tokens);
    }
}
