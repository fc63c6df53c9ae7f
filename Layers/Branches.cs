using DeepScaleLM.Native;

namespace DeepScaleLM.Layers;

/// <summary>The stored tensors of one branch f; the gradient scratch uses the same layout.</summary>
internal abstract class BranchActivations
{
    /// <summary>f's output [batch, tokens, d].</summary>
    public abstract Tensor Output { get; }
}

/// <summary>A sublayer's function f: attention or feed-forward, forward and backward side by side.</summary>
internal abstract class Branch
{
    /// <summary>Carves one set of this branch's activations.</summary>
    public abstract BranchActivations Activations(Carver take);

    /// <summary>a.Output = f(input) (cross-attention reads keys and values from <paramref name="context"/>).</summary>
    public abstract void Forward(Backend backend, BranchActivations a, Tensor input, Tensor? context, ComputePrecision precision);

    /// <summary>From gradient.Output, accumulates the weight gradients, <paramref name="gradInput"/> and <paramref name="gradContext"/>.</summary>
    public abstract void Backward(Backend backend, BranchActivations a, BranchActivations gradient, Tensor input, Tensor gradInput,
        Tensor? context, Tensor? gradContext);
}

/// <summary>
/// Multi-head attention, PyTorch names <c>{name}.query/key/value/output.weight|bias</c>; self-attention (causal in
/// decoders) or cross-attention (keys and values from the encoder output). Vanilla self-attention adds E-SPA's
/// fixed bias B_l and rescale D_l and the trainable per-head mix <c>{name}.mix_alpha</c>, <c>{name}.mix_beta</c>:
/// output = D_l (alpha I + beta softmax(Q K^T / sqrt(dk) + B_l)) V (spa-theory.md 2.1, 2.5).
/// </summary>
internal sealed class AttentionBranch : Branch
{
    private readonly int _batch, _tokens, _width, _heads;

    public AttentionBranch(ParameterCarver take, string name, ModelShape shape, bool causal, bool mix, Tensor? bias, Tensor? rescale, bool cross = false)
    {
        IsCrossAttention = cross;
        (_batch, _tokens, _width, _heads) = (shape.Batch, shape.Tokens, shape.Width, shape.Heads);
        Query = new Linear(take, name + ".query", _width, _width);
        Key = new Linear(take, name + ".key", _width, _width);
        Value = new Linear(take, name + ".value", _width, _width);
        Output = new Linear(take, name + ".output", _width, _width);
        if (mix)
        {
            MixAlpha = take.Take(name + ".mix_alpha", decay: false, _heads);
            MixBeta = take.Take(name + ".mix_beta", decay: false, _heads);
        }
        Options = new AttentionOptions
        {
            Heads = _heads, Causal = causal, Bias = bias, Rescale = rescale, MixAlpha = MixAlpha?.Value, MixBeta = MixBeta?.Value,
        };
    }

    /// <summary>Keys and values come from the encoder output.</summary>
    public bool IsCrossAttention { get; }
    public Linear Query { get; }
    public Linear Key { get; }
    public Linear Value { get; }
    public Linear Output { get; }
    /// <summary>Value-SkipInit alpha per head [heads] (vanilla self-attention only).</summary>
    public Parameter? MixAlpha { get; }
    /// <summary>Value-SkipInit beta per head [heads].</summary>
    public Parameter? MixBeta { get; }
    public AttentionOptions Options { get; }

    public static long Count(int width, int heads, bool mix) => 4 * Linear.Count(width, width) + (mix ? 2L * heads : 0);

    /// <summary>Q, K, V, Attended, Output [B, T, d] and the probabilities [B, H, T, T].</summary>
    public static long ActivationCount(ModelShape s) => 5 * s.StreamElements + (long)s.Batch * s.Heads * s.Tokens * s.Tokens;

    public override BranchActivations Activations(Carver take) => new AttentionActivations(take, _batch, _tokens, _width, _heads);

    public override void Forward(Backend backend, BranchActivations activations, Tensor input, Tensor? context, ComputePrecision precision)
    {
        var a = (AttentionActivations)activations;
        var source = context ?? input;
        Query.Forward(backend, a.Query, input);
        Key.Forward(backend, a.Key, source);
        Value.Forward(backend, a.Value, source);
        Rounding.Apply(backend, precision, a.Query, a.Key, a.Value);
        backend.Attention(a.Attended, a.Probabilities, a.Query, a.Key, a.Value, Options);
        Rounding.Apply(backend, precision, a.Attended);
        Output.Forward(backend, a.Output, a.Attended);
    }

    public override void Backward(Backend backend, BranchActivations activations, BranchActivations gradient, Tensor input, Tensor gradInput,
        Tensor? context, Tensor? gradContext)
    {
        var (a, g) = ((AttentionActivations)activations, (AttentionActivations)gradient);
        Output.Backward(backend, g.Attended, g.Output, a.Attended);
        backend.AttentionBackward(g.Query, g.Key, g.Value, MixAlpha?.Gradient, MixBeta?.Gradient, g.Attended, a.Probabilities, a.Query, a.Key, a.Value, Options);
        Query.Backward(backend, gradInput, g.Query, input);
        Key.Backward(backend, gradContext ?? gradInput, g.Key, context ?? input);
        Value.Backward(backend, gradContext ?? gradInput, g.Value, context ?? input);
    }


    private sealed class AttentionActivations(Carver take, int batch, int tokens, int width, int heads) : BranchActivations
    {
        public readonly Tensor Query = take.Take(batch, tokens, width), Key = take.Take(batch, tokens, width), Value = take.Take(batch, tokens, width);
        public readonly Tensor Probabilities = take.Take(batch, heads, tokens, tokens);
        public readonly Tensor Attended = take.Take(batch, tokens, width);
        private readonly Tensor _output = take.Take(batch, tokens, width);
        public override Tensor Output => _output;
    }
}

/// <summary>The feed-forward branch <c>{name}.input</c> (d -&gt; hidden), activation, <c>{name}.output</c> (hidden -&gt; d).</summary>
internal sealed class FeedForwardBranch(ParameterCarver take, string name, ModelShape shape, ActivationFunction activation) : Branch
{
    public Linear Input { get; } = new(take, name + ".input", shape.Width, shape.Hidden);
    public Linear Output { get; } = new(take, name + ".output", shape.Hidden, shape.Width);

    public static long Count(int width, int hidden) => Linear.Count(width, hidden) + Linear.Count(hidden, width);

    /// <summary>Hidden and Activated [B, T, hidden], Output [B, T, d].</summary>
    public static long ActivationCount(ModelShape s) => 2L * s.Batch * s.Tokens * s.Hidden + s.StreamElements;

    public override BranchActivations Activations(Carver take) => new FeedForwardActivations(take, shape);

    public override void Forward(Backend backend, BranchActivations activations, Tensor input, Tensor? context, ComputePrecision precision)
    {
        var a = (FeedForwardActivations)activations;
        Input.Forward(backend, a.Hidden, input);
        backend.Activation(a.Activated, a.Hidden, activation);
        Rounding.Apply(backend, precision, a.Activated);
        Output.Forward(backend, a.Output, a.Activated);
    }

    public override void Backward(Backend backend, BranchActivations activations, BranchActivations gradient, Tensor input, Tensor gradInput,
        Tensor? context, Tensor? gradContext)
    {
        var (a, g) = ((FeedForwardActivations)activations, (FeedForwardActivations)gradient);
        Output.Backward(backend, g.Activated, g.Output, a.Activated);
        backend.ActivationBackward(g.Hidden, g.Activated, a.Hidden, activation);
        Input.Backward(backend, gradInput, g.Hidden, input);
    }

    private sealed class FeedForwardActivations(Carver take, ModelShape s) : BranchActivations
    {
        public readonly Tensor Hidden = take.Take(s.Batch, s.Tokens, s.Hidden), Activated = take.Take(s.Batch, s.Tokens, s.Hidden);
        private readonly Tensor _output = take.Take(s.Batch, s.Tokens, s.Width);
        public override Tensor Output => _output;
    }
}

/// <summary>The sizes every layer needs: batch, tokens, width, heads, hidden width.</summary>
internal sealed record ModelShape(int Batch, int Tokens, int Width, int Heads, int Hidden)
{
    /// <summary>Elements of one residual stream [batch, tokens, width].</summary>
    public long StreamElements => (long)Batch * Tokens * Width;
}
