using DeepScaleLM.Native;

namespace DeepScaleLM.Cli;

/// <summary>The transformer-sized shape <c>dslm bench ops</c> runs every op at.</summary>
internal sealed record OpBenchShape(int Batch, int Tokens, int Channels, int Heads, int Vocabulary)
{
    public int Rows => Batch * Tokens;

    public void Validate()
    {
        if (Batch < 1 || Tokens < 1 || Channels < 1 || Heads < 1 || Vocabulary < 1)
            throw new ArgumentException($"--batch, --tokens, --channels, --heads and --vocab must be positive (got {Batch}, {Tokens}, {Channels}, {Heads}, {Vocabulary})");
        if (Channels % Heads != 0) throw new ArgumentException($"--channels ({Channels}) must be a multiple of --heads ({Heads})");
    }
}

/// <summary>One op to time: what it is, the bytes it must move and the flops it must do.</summary>
internal sealed record OpBenchCase(string Name, string Shape, double Bytes, double Flops, Action Run);

/// <summary>Inputs for every op at one shape, allocated once; <see cref="Cases"/> lists the timed calls.</summary>
internal sealed class OpBench : IDisposable
{
    private const double Float = sizeof(float);
    private readonly Backend _backend;
    private readonly OpBenchShape _s;
    private readonly List<Tensor> _owned = [];

    public OpBench(Backend backend, OpBenchShape shape)
    {
        _backend = backend;
        _s = shape;
    }

    private Tensor Random(params int[] dims) => Keep(BenchCommands.Random(_backend, _owned.Count + 1, dims));
    private Tensor Zeros(params int[] dims) => Keep(_backend.Allocate(dims));
    private Tensor Keep(Tensor tensor) { _owned.Add(tensor); return tensor; }

    public IEnumerable<OpBenchCase> Cases()
    {
        int n = _s.Rows, d = _s.Channels, h = 4 * d, v = _s.Vocabulary;
        double nd = (double)n * d, nh = (double)n * h, nv = (double)n * v;
        string rowsByD = $"{n} x {d}", rowsByH = $"{n} x {h}";

        // Linear layer d -> 4d (PyTorch layout: weight [4d, d]).
        var x = Random(n, d);
        var weight = Random(h, d);
        var bias = Random(h);
        var y = Zeros(n, h);
        var dy = Random(n, h);
        var dx = Zeros(n, d);
        var dWeight = Zeros(h, d);
        var dBias = Zeros(h);
        double linearFlops = 2.0 * n * d * h;
        yield return new("matmul+bias forward", $"{n} x {d} x {h}", (nd + nh + (double)h * d) * Float, linearFlops,
            () => _backend.MatMul(y, x, weight, transposeB: true, bias: bias));
        yield return new("matmul+bias backward", $"{n} x {d} x {h}", (2 * nd + nh + 2.0 * h * d) * Float, 2 * linearFlops,
            () => _backend.MatMulBackward(dx, dWeight, dBias, dy, x, weight, transposeB: true));

        // Residual combine fused with layer norm.
        var branch = Random(n, d);
        var residual = Zeros(n, d);
        var norm = Zeros(n, d);
        var mean = Zeros(n);
        var rstd = Zeros(n);
        var gamma = Random(d);
        var beta = Random(d);
        var dNorm = Random(n, d);
        var dBranch = Zeros(n, d);
        var dGamma = Zeros(d);
        var dBeta = Zeros(d);
        yield return new("residual+layernorm forward", rowsByD, 4 * nd * Float, 0,
            () => _backend.ResidualLayerNorm(residual, norm, mean, rstd, x, branch, 0.9f, 0.43f, gamma, beta));
        yield return new("residual+layernorm backward", rowsByD, 6 * nd * Float, 0,
            () => _backend.ResidualLayerNormBackward(dx, dBranch, dGamma, dBeta, dNorm, null, residual, mean, rstd, gamma, 0.9f, 0.43f, hasBranch: true));

        // Attention, causal, probabilities kept for backward.
        int headDim = d / _s.Heads;
        var q = Random(_s.Batch, _s.Tokens, d);
        var k = Random(_s.Batch, _s.Tokens, d);
        var value = Random(_s.Batch, _s.Tokens, d);
        var attended = Zeros(_s.Batch, _s.Tokens, d);
        var probabilities = Zeros(_s.Batch, _s.Heads, _s.Tokens, _s.Tokens);
        var dq = Zeros(_s.Batch, _s.Tokens, d);
        var dk = Zeros(_s.Batch, _s.Tokens, d);
        var dv = Zeros(_s.Batch, _s.Tokens, d);
        var dAttended = Random(_s.Batch, _s.Tokens, d);
        var options = new AttentionOptions { Heads = _s.Heads, Causal = true };
        // Flops counted as for the full T x T matrix (QK^T and PV: 4*B*H*T*T*headDim); a causal kernel may skip half.
        double attentionFlops = 4.0 * _s.Batch * _s.Heads * _s.Tokens * (double)_s.Tokens * headDim;
        double probabilityBytes = (double)_s.Batch * _s.Heads * _s.Tokens * _s.Tokens * Float;
        string attentionShape = $"{_s.Batch}x{_s.Tokens}x{_s.Heads}x{headDim} causal";
        yield return new("attention forward", attentionShape, 4 * nd * Float + probabilityBytes, attentionFlops,
            () => _backend.Attention(attended, probabilities, q, k, value, options));
        yield return new("attention backward", attentionShape, 7 * nd * Float + probabilityBytes, 2 * attentionFlops,
            () => _backend.AttentionBackward(dq, dk, dv, null, null, dAttended, probabilities, q, k, value, options));

        // Activations on the 4d-wide hidden layer.
        var hidden = Random(n, h);
        var activated = Zeros(n, h);
        var dHidden = Zeros(n, h);
        foreach (var function in new[] { ActivationFunction.Relu, ActivationFunction.GeluErf, ActivationFunction.GeluTanh, ActivationFunction.ScaledLeakyRelu(0.35f) })
        {
            yield return new($"{function.Kind} forward", rowsByH, 2 * nh * Float, 0, () => _backend.Activation(activated, hidden, function));
            yield return new($"{function.Kind} backward", rowsByH, 4 * nh * Float, 0, () => _backend.ActivationBackward(dHidden, dy, hidden, function));
        }

        // Dropout on a branch output.
        yield return new("dropout forward", rowsByD, 2 * nd * Float, 0, () => _backend.Dropout(residual, x, 0.1f, 7, 0));
        yield return new("dropout backward", rowsByD, 3 * nd * Float, 0, () => _backend.DropoutBackward(dBranch, dNorm, 0.1f, 7, 0));

        // Embedding of B x T tokens from a V x d table with learned positions.
        var ids = Keep(_backend.Allocate(DType.Int32, _s.Batch, _s.Tokens));
        var random = new Random(5);
        _backend.Upload<int>(ids, Enumerable.Range(0, n).Select(_ => random.Next(v)).ToArray());
        var table = Random(v, d);
        var positions = Random(_s.Tokens, d);
        var dTable = Zeros(v, d);
        var dPositions = Zeros(_s.Tokens, d);
        var embedded = Zeros(_s.Batch, _s.Tokens, d);
        var dEmbedded = Random(_s.Batch, _s.Tokens, d);
        yield return new("embedding forward", $"{n} of {v} x {d}", 3 * nd * Float, 0, () => _backend.Embedding(embedded, ids, table, positions));
        yield return new("embedding backward", $"{n} of {v} x {d}", 4 * nd * Float, 0, () => _backend.EmbeddingBackward(dTable, dPositions, dEmbedded, ids));

        // Softmax cross-entropy over the vocabulary.
        var logits = Random(n, v);
        var dLogits = Zeros(n, v);
        var targets = Keep(_backend.Allocate(DType.Int32, n));
        _backend.Upload<int>(targets, Enumerable.Range(0, n).Select(_ => random.Next(v)).ToArray());
        var losses = Zeros(n);
        var dLosses = Keep(_backend.Allocate(n));
        _backend.Upload<float>(dLosses, Enumerable.Repeat(1f / n, n).ToArray());
        yield return new("softmax+xent forward", $"{n} x {v}", nv * Float, 0, () => _backend.SoftmaxCrossEntropy(losses, logits, targets));
        yield return new("softmax+xent backward", $"{n} x {v}", 3 * nv * Float, 0, () => _backend.SoftmaxCrossEntropyBackward(dLogits, dLosses, logits, targets));

        // Optimizer over a 12 d^2-per-layer-sized parameter block (one GPT block at this width).
        int parameterCount = 12 * d * d;
        var parameters = Random(parameterCount);
        var gradients = Random(parameterCount);
        var firstMoment = Zeros(parameterCount);
        var secondMoment = Zeros(parameterCount);
        string parameterShape = $"{parameterCount:N0} params";
        yield return new("adamw step", parameterShape, 7.0 * parameterCount * Float, 0,
            () => _backend.AdamW(parameters, gradients, firstMoment, secondMoment, new AdamWOptions(1e-4f, WeightDecay: 0.1f), 10));
        yield return new("global norm", parameterShape, (double)parameterCount * Float, 0, () => _backend.GlobalNorm(gradients));
        yield return new("moments", $"{_s.Batch}x{_s.Tokens}x{d}", nd * Float, 0, () => _backend.Moments(q));
    }

    public void Dispose()
    {
        foreach (var tensor in _owned) tensor.Dispose();
    }
}
