using DeepScaleLM.Native;

namespace DeepScaleLM.Layers;

/// <summary>
/// One parameter tensor of a model, as checkpoints and optimizers see it: a PyTorch-style name and layout
/// (Linear weight [out, in]), its value and gradient (views into the model's flat buffers), and whether weight
/// decay applies (matrices only: not biases, norms, embeddings or the Value-SkipInit mix).
/// </summary>
/// <param name="Name">Like <c>decoder.layers.3.attention.query.weight</c>.</param>
/// <param name="Value">The fp32 master value.</param>
/// <param name="Gradient">The gradient, same shape, filled by <see cref="TransformerModel.Backward"/>.</param>
/// <param name="DecayWeight">Whether AdamW's weight decay applies.</param>
public sealed record NamedParameter(string Name, Tensor Value, Tensor Gradient, bool DecayWeight);

/// <summary>A parameter as the layers use it: master value, gradient, the copy matmuls read (rounded to the compute
/// precision), and its index in the model's parameter list (its init stream).</summary>
internal sealed record Parameter(Tensor Value, Tensor Gradient, Tensor Compute, int Index);

/// <summary>Hands out consecutive views of one flat tensor (llm.c's carving of one allocation).</summary>
internal sealed class Carver(Tensor flat)
{
    private long _next;

    /// <summary>Elements handed out so far.</summary>
    public long Used => _next;

    /// <summary>The next <c>product(dims)</c> elements, shaped <paramref name="dims"/>.</summary>
    public Tensor Take(params int[] dims)
    {
        var view = flat.Slice(_next, dims);
        _next += view.ElementCount;
        return view;
    }
}

/// <summary>
/// Carves every parameter at once from the parameter, gradient and compute-copy buffers (one layout for all three)
/// and records its name and decay flag.
/// </summary>
internal sealed class ParameterCarver
{
    private readonly Carver _values, _gradients;
    private readonly Carver? _compute;
    private readonly List<NamedParameter> _named = [];

    /// <summary>A carver over real buffers (<paramref name="compute"/> may be <paramref name="values"/> itself).</summary>
    public ParameterCarver(Tensor values, Tensor gradients, Tensor compute)
    {
        _values = new Carver(values);
        _gradients = new Carver(gradients);
        _compute = ReferenceEquals(compute, values) ? null : new Carver(compute);
    }

    /// <summary>Scalars carved so far.</summary>
    public long Used => _values.Used;

    /// <summary>Every parameter in carving order.</summary>
    public IReadOnlyList<NamedParameter> Named => _named;

    /// <summary>The next parameter, named <paramref name="name"/>.</summary>
    public Parameter Take(string name, bool decay, params int[] dims)
    {
        var value = _values.Take(dims);
        var gradient = _gradients.Take(dims);
        _named.Add(new NamedParameter(name, value, gradient, decay));
        return new Parameter(value, gradient, _compute?.Take(dims) ?? value, _named.Count - 1);
    }
}
