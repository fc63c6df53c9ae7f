using DeepScaleLM.Native;

namespace DeepScaleLM.Layers;

/// <summary>Where the model emulates a GPU's 16-bit storage: every tensor a GPU would keep in the compute dtype (matmul
/// inputs, stored activations, the logit and weight gradients) is rounded to it in place; fp32 leaves it as is.</summary>
internal static class Rounding
{
    /// <summary>Rounds <paramref name="tensors"/> in place to <paramref name="precision"/>.</summary>
    public static void Apply(Backend backend, ComputePrecision precision, params ReadOnlySpan<Tensor> tensors)
    {
        if (precision == ComputePrecision.Fp32) return;
        foreach (var tensor in tensors) backend.RoundToPrecision(tensor, tensor, precision);
    }
}
