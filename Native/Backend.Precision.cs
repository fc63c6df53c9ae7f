namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary>
    /// <c>output[i] = fp32(round(input[i]))</c>: each float32 rounded to <paramref name="precision"/> with
    /// round-to-nearest-even and widened back to float32 exactly, as a GPU storing the value in 16 bits and loading
    /// it again would see it. bf16 and fp16 overflow to +-infinity (fp16 from 65520 in magnitude up); fp16 keeps
    /// its subnormals (multiples of 2^-24) and flushes below 2^-25 to a signed zero; infinities pass; a NaN stays a
    /// quiet NaN with its sign and the payload bits the format keeps. <see cref="ComputePrecision.Fp32"/> copies.
    /// <paramref name="output"/> may be <paramref name="input"/> itself.
    /// </summary>
    /// <param name="output">Shaped like input.</param>
    /// <param name="input">Any float32 tensor.</param>
    /// <param name="precision">The format to round to.</param>
    /// <exception cref="ArgumentException">Shapes differ, the tensors partly overlap, or the precision is unknown.</exception>
    public void RoundToPrecision(Tensor output, Tensor input, ComputePrecision precision)
    {
        Check.Operand(this, output, nameof(output));
        Check.Operand(this, input, nameof(input));
        Check.SameShape(output, nameof(output), input, nameof(input));
        Check.SameViewOrDisjoint(output, nameof(output), input, nameof(input));
        if (!Enum.IsDefined(precision))
            throw new ArgumentException($"'{nameof(precision)}' is {(int)precision}, which is not a ComputePrecision", nameof(precision));
        RoundToPrecisionCore(output, input, precision);
        KeepAlive(output, input);
    }

    /// <summary>Kernel of <see cref="RoundToPrecision"/>; operands already validated.</summary>
    protected abstract void RoundToPrecisionCore(Tensor output, Tensor input, ComputePrecision precision);
}
