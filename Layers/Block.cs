using DeepScaleLM.Native;

namespace DeepScaleLM.Layers;

/// <summary>
/// A transformer block: self-attention, cross-attention (decoder of an encoder-decoder model), feed-forward, each a
/// <see cref="Sublayer"/>; the stream between two sublayers lives in the block's activations.
/// </summary>
internal sealed class Block(IReadOnlyList<Sublayer> sublayers, ModelShape shape)
{
    public IReadOnlyList<Sublayer> Sublayers => sublayers;

    /// <summary>Everything one block stores: each sublayer's tensors and the streams between sublayers.</summary>
    public BlockActivations Activations(Carver take) => new(sublayers.Select(s => s.Activations(take)).ToArray(),
        Enumerable.Range(0, sublayers.Count - 1).Select(_ => take.Take(shape.Batch, shape.Tokens, shape.Width)).ToArray());

    /// <summary>output = block(input); activations land in <paramref name="a"/>.</summary>
    public void Forward(Backend backend, BlockActivations a, Tensor input, Tensor output, Tensor? context, DropoutStep dropout, ComputePrecision precision)
    {
        for (int i = 0; i < sublayers.Count; i++)
            sublayers[i].Forward(backend, a.Sublayers[i], i == 0 ? input : a.Streams[i - 1], i == sublayers.Count - 1 ? output : a.Streams[i], context, dropout, precision);
    }

    /// <summary>Accumulates into <paramref name="gradInput"/> and the weight gradients; <paramref name="g"/> must be zeroed.</summary>
    public void Backward(Backend backend, BlockActivations a, BlockActivations g, Tensor input, Tensor gradInput, Tensor gradOutput,
        Tensor? context, Tensor? gradContext, DropoutStep dropout)
    {
        for (int i = sublayers.Count - 1; i >= 0; i--)
            sublayers[i].Backward(backend, a.Sublayers[i], g.Sublayers[i], i == 0 ? input : a.Streams[i - 1], i == 0 ? gradInput : g.Streams[i - 1],
                i == sublayers.Count - 1 ? gradOutput : g.Streams[i], context, gradContext, dropout);
    }
}

/// <summary>The stored tensors of one block (or, with the same layout, its gradient scratch).</summary>
internal sealed record BlockActivations(SublayerActivations[] Sublayers, Tensor[] Streams);
