using DeepScaleLM.Native;
using DeepScaleLM.Theory;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Cli.Demo;

/// <summary>
/// A small Pre-LN causal transformer written directly against the op contract, llm.c style: parameters,
/// gradients, AdamW moments and activations each live in one flat allocation, and forward/backward call one
/// fused op per step of the block. It exercises every op of the contract end to end until the Layers
/// project brings the real models. Init and residual scaling come from Theory's DSLM plan (<see cref="DslmInit"/>:
/// the official stds and V/O recursion of dslm-theory.md 4.1, out = lam*x + beta*f with lam^2 + beta^2 = 1).
/// </summary>
internal sealed class DemoModel : IDisposable
{
    private readonly Backend _backend;
    private readonly DemoConfig _config;
    private readonly InitPlan _plan;
    private readonly float _lambda, _beta, _logitScale;
    private readonly AttentionOptions _attention;

    private readonly Tensor _parameters, _gradients, _firstMoment, _secondMoment, _activations, _activationGrads;
    private readonly Weights _w, _dw;
    private readonly Stream[] _streams;      // residual stream x_l and its normalisation, l = 0..L (L = final)
    private readonly Stream[] _dStreams;
    private readonly Block[] _blocks, _dBlocks;
    private readonly Tensor _logits, _dLogits, _losses, _dLosses, _tokens, _targets;
    private readonly float[] _lossesHost;

    public DemoModel(Backend backend, DemoConfig config)
    {
        config.Validate();
        _backend = backend;
        _config = config;
        int layers = config.Layers, d = config.Channels, rows = config.Batch * config.Tokens;
        _plan = DslmInit.Plan(new TransformerShape(layers, d, config.Heads, config.Tokens, config.Dropout));
        _lambda = (float)_plan.Residual.Skip;
        _beta = (float)_plan.Residual.Branch;
        // DSLM pre-scales the final hidden state so tied-embedding logits have unit variance (dslm-theory.md 4.1).
        _logitScale = (float)_plan.LogitScale;
        _attention = new AttentionOptions { Heads = config.Heads, Causal = true };

        long parameterCount = Weights.Count(config);
        _parameters = backend.Allocate((int)parameterCount);
        _gradients = backend.Allocate((int)parameterCount);
        _firstMoment = backend.Allocate((int)parameterCount);
        _secondMoment = backend.Allocate((int)parameterCount);
        _w = new Weights(config, new Carver(_parameters));
        _dw = new Weights(config, new Carver(_gradients));

        long activationCount = (layers + 1) * Stream.Count(config) + layers * Block.Count(config) + (long)rows * DemoConfig.Vocabulary + rows;
        _activations = backend.Allocate((int)activationCount);
        _activationGrads = backend.Allocate((int)activationCount);
        var a = new Carver(_activations);
        var da = new Carver(_activationGrads);
        _streams = new Stream[layers + 1];
        _dStreams = new Stream[layers + 1];
        _blocks = new Block[layers];
        _dBlocks = new Block[layers];
        for (int l = 0; l <= layers; l++) { _streams[l] = new Stream(config, a); _dStreams[l] = new Stream(config, da); }
        for (int l = 0; l < layers; l++) { _blocks[l] = new Block(config, a); _dBlocks[l] = new Block(config, da); }
        _logits = a.Take(rows, DemoConfig.Vocabulary);
        _dLogits = da.Take(rows, DemoConfig.Vocabulary);
        _losses = a.Take(rows);
        // The loss gradient is a constant 1/rows (mean over rows); it lives apart from the activation gradients,
        // which are zeroed every step.
        _dLosses = backend.Allocate(rows);
        backend.Upload<float>(_dLosses, Enumerable.Repeat(1f / rows, rows).ToArray());
        _tokens = backend.Allocate(DType.Int32, config.Batch, config.Tokens);
        _targets = backend.Allocate(DType.Int32, rows);
        _lossesHost = new float[rows];
        ParameterCount = parameterCount;
        Initialize(new GaussianSampler(new Random(config.Seed)));
    }

    /// <summary>Trainable scalars.</summary>
    public long ParameterCount { get; }

    /// <summary>Residual scaling in use.</summary>
    public (float Lambda, float Beta) Residual => (_lambda, _beta);

    /// <summary>Forward pass on one batch; returns the mean loss.</summary>
    public float Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets, ulong dropoutOffset)
    {
        _backend.Upload(_tokens, tokens);
        _backend.Upload(_targets, targets);
        var first = _streams[0];
        _backend.Embedding(first.X, _tokens, _w.TokenTable, _w.PositionTable);
        _backend.ResidualLayerNorm(null, first.Norm, first.Mean, first.Rstd, first.X, null, 1f, 1f, _w.Blocks[0].Ln1Weight, _w.Blocks[0].Ln1Bias);
        for (int l = 0; l < _config.Layers; l++)
        {
            var (w, b, input, output) = (_w.Blocks[l], _blocks[l], _streams[l], _streams[l + 1]);
            ulong offset = dropoutOffset + 2UL * (ulong)l;
            _backend.MatMul(b.Query, input.Norm, w.Query, transposeB: true, bias: w.QueryBias);
            _backend.MatMul(b.Key, input.Norm, w.Key, transposeB: true, bias: w.KeyBias);
            _backend.MatMul(b.Value, input.Norm, w.Value, transposeB: true, bias: w.ValueBias);
            _backend.Attention(b.Attended, b.Probabilities, b.Query, b.Key, b.Value, _attention);
            _backend.MatMul(b.Projected, b.Attended, w.Output, transposeB: true, bias: w.OutputBias);
            _backend.Dropout(b.ProjectedDropped, b.Projected, _config.Dropout, (ulong)_config.Seed, offset);
            // s = lam*x + beta*attn, fused with the feed-forward's layer norm.
            _backend.ResidualLayerNorm(b.Middle, b.MiddleNorm, b.MiddleMean, b.MiddleRstd, input.X, b.ProjectedDropped, _lambda, _beta, w.Ln2Weight, w.Ln2Bias);
            _backend.MatMul(b.Hidden, b.MiddleNorm, w.FeedForwardIn, transposeB: true, bias: w.FeedForwardInBias);
            _backend.Activation(b.Activated, b.Hidden, ActivationFunction.Relu);
            _backend.MatMul(b.FeedForward, b.Activated, w.FeedForwardOut, transposeB: true, bias: w.FeedForwardOutBias);
            _backend.Dropout(b.FeedForwardDropped, b.FeedForward, _config.Dropout, (ulong)_config.Seed, offset + 1);
            // x_{l+1} = lam*s + beta*ffn, fused with the next block's (or the final) layer norm.
            var (normWeight, normBias) = NextNorm(l);
            _backend.ResidualLayerNorm(output.X, output.Norm, output.Mean, output.Rstd, b.Middle, b.FeedForwardDropped, _lambda, _beta, normWeight, normBias);
        }
        var last = _streams[_config.Layers];
        int rows = _config.Batch * _config.Tokens;
        // Tied head: logits [rows, V] = scale * norm [rows, d] * tokenTable^T.
        _backend.MatMul(_logits, last.Norm.View(rows, _config.Channels), _w.TokenTable, transposeB: true, alpha: _logitScale);
        _backend.SoftmaxCrossEntropy(_losses, _logits, _targets);
        _backend.Download<float>(_lossesHost, _losses);
        double sum = 0;
        foreach (var loss in _lossesHost) sum += loss;
        return (float)(sum / rows);
    }

    /// <summary>Backward pass of the last <see cref="Forward"/>: fills the parameter gradients.</summary>
    public void Backward(ulong dropoutOffset)
    {
        int rows = _config.Batch * _config.Tokens;
        _backend.Zero(_gradients);
        _backend.Zero(_activationGrads);
        var last = _streams[_config.Layers];
        var dLast = _dStreams[_config.Layers];
        _backend.SoftmaxCrossEntropyBackward(_dLogits, _dLosses, _logits, _targets);
        _backend.MatMulBackward(dLast.Norm.View(rows, _config.Channels), _dw.TokenTable, null, _dLogits, last.Norm.View(rows, _config.Channels), _w.TokenTable, transposeB: true, alpha: _logitScale);
        for (int l = _config.Layers - 1; l >= 0; l--)
        {
            var (w, dw, b, db) = (_w.Blocks[l], _dw.Blocks[l], _blocks[l], _dBlocks[l]);
            var (input, dInput, output, dOutput) = (_streams[l], _dStreams[l], _streams[l + 1], _dStreams[l + 1]);
            ulong offset = dropoutOffset + 2UL * (ulong)l;
            var (normWeight, _) = NextNorm(l);
            var (dNormWeight, dNormBias) = NextNormGrad(l);
            _backend.ResidualLayerNormBackward(db.Middle, db.FeedForwardDropped, dNormWeight, dNormBias, dOutput.Norm,
                l == _config.Layers - 1 ? null : dOutput.X, output.X, output.Mean, output.Rstd, normWeight, _lambda, _beta, hasBranch: true);
            _backend.DropoutBackward(db.FeedForward, db.FeedForwardDropped, _config.Dropout, (ulong)_config.Seed, offset + 1);
            _backend.MatMulBackward(db.Activated, dw.FeedForwardOut, dw.FeedForwardOutBias, db.FeedForward, b.Activated, w.FeedForwardOut, transposeB: true);
            _backend.ActivationBackward(db.Hidden, db.Activated, b.Hidden, ActivationFunction.Relu);
            _backend.MatMulBackward(db.MiddleNorm, dw.FeedForwardIn, dw.FeedForwardInBias, db.Hidden, b.MiddleNorm, w.FeedForwardIn, transposeB: true);
            _backend.ResidualLayerNormBackward(dInput.X, db.ProjectedDropped, dw.Ln2Weight, dw.Ln2Bias, db.MiddleNorm, db.Middle,
                b.Middle, b.MiddleMean, b.MiddleRstd, w.Ln2Weight, _lambda, _beta, hasBranch: true);
            _backend.DropoutBackward(db.Projected, db.ProjectedDropped, _config.Dropout, (ulong)_config.Seed, offset);
            _backend.MatMulBackward(db.Attended, dw.Output, dw.OutputBias, db.Projected, b.Attended, w.Output, transposeB: true);
            _backend.AttentionBackward(db.Query, db.Key, db.Value, null, null, db.Attended, b.Probabilities, b.Query, b.Key, b.Value, _attention);
            _backend.MatMulBackward(dInput.Norm, dw.Query, dw.QueryBias, db.Query, input.Norm, w.Query, transposeB: true);
            _backend.MatMulBackward(dInput.Norm, dw.Key, dw.KeyBias, db.Key, input.Norm, w.Key, transposeB: true);
            _backend.MatMulBackward(dInput.Norm, dw.Value, dw.ValueBias, db.Value, input.Norm, w.Value, transposeB: true);
        }
        var first = _streams[0];
        var dFirst = _dStreams[0];
        _backend.ResidualLayerNormBackward(dFirst.X, null, _dw.Blocks[0].Ln1Weight, _dw.Blocks[0].Ln1Bias, dFirst.Norm, null,
            first.X, first.Mean, first.Rstd, _w.Blocks[0].Ln1Weight, 1f, 1f, hasBranch: false);
        _backend.EmbeddingBackward(_dw.TokenTable, _dw.PositionTable, dFirst.X, _tokens);
    }

    /// <summary>Clips the gradient to <paramref name="maxNorm"/> and takes one AdamW step; returns the pre-clip norm.</summary>
    public double Step(int step, float learningRate, float maxNorm)
    {
        double norm = _backend.ClipByGlobalNorm(maxNorm, _gradients);
        if (double.IsFinite(norm))
            _backend.AdamW(_parameters, _gradients, _firstMoment, _secondMoment, new AdamWOptions(learningRate), step);
        return norm;
    }

    /// <summary>Moments of the residual stream entering each block and leaving the last (after the last <see cref="Forward"/>).</summary>
    public MomentStatistics[] StreamMoments() => Array.ConvertAll(_streams, s => _backend.Moments(s.X));

    private (Tensor Weight, Tensor Bias) NextNorm(int layer) => layer + 1 < _config.Layers
        ? (_w.Blocks[layer + 1].Ln1Weight, _w.Blocks[layer + 1].Ln1Bias) : (_w.FinalNormWeight, _w.FinalNormBias);

    private (Tensor Weight, Tensor Bias) NextNormGrad(int layer) => layer + 1 < _config.Layers
        ? (_dw.Blocks[layer + 1].Ln1Weight, _dw.Blocks[layer + 1].Ln1Bias) : (_dw.FinalNormWeight, _dw.FinalNormBias);

    private void Initialize(GaussianSampler random)
    {
        // Every std from the DSLM plan; biases 0; layer norms gamma 1, beta 0.
        Fill(_w.TokenTable, random, _plan.EmbeddingStd);
        Fill(_w.PositionTable, random, _plan.EmbeddingStd);
        for (int l = 0; l < _w.Blocks.Length; l++)
        {
            var block = _w.Blocks[l];
            Fill(block.Query, random, _plan.QueryKeyStd);
            Fill(block.Key, random, _plan.QueryKeyStd);
            Fill(block.Value, random, _plan.ValueStd[l]);
            Fill(block.Output, random, _plan.OutputStd[l]);
            Fill(block.FeedForwardIn, random, _plan.FeedForwardInputStd);
            Fill(block.FeedForwardOut, random, _plan.FeedForwardOutputStd);
            Ones(block.Ln1Weight);
            Ones(block.Ln2Weight);
        }
        Ones(_w.FinalNormWeight);
    }

    private void Fill(Tensor tensor, GaussianSampler random, double std)
    {
        var values = new float[tensor.ElementCount];
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(std * random.Next());
        _backend.Upload<float>(tensor, values);
    }

    private void Ones(Tensor tensor) => _backend.Upload<float>(tensor, Enumerable.Repeat(1f, (int)tensor.ElementCount).ToArray());

    public void Dispose()
    {
        foreach (var t in new[] { _parameters, _gradients, _firstMoment, _secondMoment, _activations, _activationGrads, _dLosses, _tokens, _targets }) t.Dispose();
    }

    /// <summary>Hands out consecutive views of one flat tensor.</summary>
    private sealed class Carver(Tensor flat)
    {
        private long _next;
        public Tensor Take(params int[] dims)
        {
            var view = flat.Slice(_next, dims);
            _next += view.ElementCount;
            return view;
        }
    }

    /// <summary>Every parameter tensor (PyTorch layouts: Linear weight [out, in]).</summary>
    private sealed class Weights
    {
        public readonly Tensor TokenTable, PositionTable, FinalNormWeight, FinalNormBias;
        public readonly BlockWeights[] Blocks;

        public Weights(DemoConfig c, Carver take)
        {
            TokenTable = take.Take(DemoConfig.Vocabulary, c.Channels);
            PositionTable = take.Take(c.Tokens, c.Channels);
            Blocks = new BlockWeights[c.Layers];
            for (int l = 0; l < c.Layers; l++) Blocks[l] = new BlockWeights(c, take);
            FinalNormWeight = take.Take(c.Channels);
            FinalNormBias = take.Take(c.Channels);
        }

        public static long Count(DemoConfig c) =>
            (DemoConfig.Vocabulary + c.Tokens + 2L) * c.Channels + c.Layers * BlockWeights.Count(c);
    }

    private sealed class BlockWeights(DemoConfig c, Carver take)
    {
        public readonly Tensor Ln1Weight = take.Take(c.Channels), Ln1Bias = take.Take(c.Channels);
        public readonly Tensor Query = take.Take(c.Channels, c.Channels), QueryBias = take.Take(c.Channels);
        public readonly Tensor Key = take.Take(c.Channels, c.Channels), KeyBias = take.Take(c.Channels);
        public readonly Tensor Value = take.Take(c.Channels, c.Channels), ValueBias = take.Take(c.Channels);
        public readonly Tensor Output = take.Take(c.Channels, c.Channels), OutputBias = take.Take(c.Channels);
        public readonly Tensor Ln2Weight = take.Take(c.Channels), Ln2Bias = take.Take(c.Channels);
        public readonly Tensor FeedForwardIn = take.Take(c.Hidden, c.Channels), FeedForwardInBias = take.Take(c.Hidden);
        public readonly Tensor FeedForwardOut = take.Take(c.Channels, c.Hidden), FeedForwardOutBias = take.Take(c.Channels);

        public static long Count(DemoConfig c) => 4L * (c.Channels * c.Channels + c.Channels) + 4L * c.Channels + 2L * c.Hidden * c.Channels + c.Hidden + c.Channels;
    }

    /// <summary>The residual stream entering a block (or leaving the last) and its layer norm.</summary>
    private sealed class Stream(DemoConfig c, Carver take)
    {
        public readonly Tensor X = take.Take(c.Batch, c.Tokens, c.Channels), Norm = take.Take(c.Batch, c.Tokens, c.Channels);
        public readonly Tensor Mean = take.Take(c.Batch * c.Tokens), Rstd = take.Take(c.Batch * c.Tokens);
        public static long Count(DemoConfig c) => 2L * c.Batch * c.Tokens * (c.Channels + 1);
    }

    /// <summary>A block's intermediate activations, each [batch, tokens, width] unless noted.</summary>
    private sealed class Block(DemoConfig c, Carver take)
    {
        public readonly Tensor Query = take.Take(c.Batch, c.Tokens, c.Channels), Key = take.Take(c.Batch, c.Tokens, c.Channels), Value = take.Take(c.Batch, c.Tokens, c.Channels);
        public readonly Tensor Probabilities = take.Take(c.Batch, c.Heads, c.Tokens, c.Tokens);
        public readonly Tensor Attended = take.Take(c.Batch, c.Tokens, c.Channels), Projected = take.Take(c.Batch, c.Tokens, c.Channels), ProjectedDropped = take.Take(c.Batch, c.Tokens, c.Channels);
        public readonly Tensor Middle = take.Take(c.Batch, c.Tokens, c.Channels), MiddleNorm = take.Take(c.Batch, c.Tokens, c.Channels);
        public readonly Tensor MiddleMean = take.Take(c.Batch * c.Tokens), MiddleRstd = take.Take(c.Batch * c.Tokens);
        public readonly Tensor Hidden = take.Take(c.Batch, c.Tokens, c.Hidden), Activated = take.Take(c.Batch, c.Tokens, c.Hidden);
        public readonly Tensor FeedForward = take.Take(c.Batch, c.Tokens, c.Channels), FeedForwardDropped = take.Take(c.Batch, c.Tokens, c.Channels);

        public static long Count(DemoConfig c)
        {
            long btd = (long)c.Batch * c.Tokens * c.Channels;
            return 10 * btd + (long)c.Batch * c.Heads * c.Tokens * c.Tokens + 2L * c.Batch * c.Tokens + 2L * c.Batch * c.Tokens * c.Hidden;
        }
    }
}
