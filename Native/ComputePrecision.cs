namespace DeepScaleLM.Native;

/// <summary>
/// The number format a model computes in: where a GPU would store matmul inputs and activations in 16 bits, the
/// CPU rounds them to this format (<see cref="Backend.RoundToPrecision"/>) and keeps computing in float32, so
/// mixed-precision logic is testable here. Master weights, gradients and accumulation stay float32.
/// </summary>
public enum ComputePrecision
{
    /// <summary>IEEE binary32: no rounding.</summary>
    Fp32,
    /// <summary>bfloat16: 8 exponent and 7 stored mantissa bits (float32's range, 2^-8 relative spacing).</summary>
    Bf16,
    /// <summary>IEEE binary16: 5 exponent and 10 mantissa bits, largest finite 65504, subnormals down to 2^-24.</summary>
    Fp16,
}
