using DeepScaleLM.Native;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary><see cref="Backend.RoundToPrecision"/> against a scalar round-to-nearest-even reference in float64.</summary>
public sealed class PrecisionTests
{
    /// <summary>A binary format as the reference sees it: stored mantissa bits, smallest normal exponent, largest finite.</summary>
    private sealed record Format(int MantissaBits, int MinExponent, double MaxFinite);

    private static readonly Format Bfloat16 = new(7, -126, (2 - Math.Pow(2, -7)) * Math.Pow(2, 127));
    private static readonly Format Half = new(10, -14, 65504);

    private static Format Of(ComputePrecision precision) => precision == ComputePrecision.Bf16 ? Bfloat16 : Half;

    /// <summary>
    /// IEEE round-to-nearest-even of a float32 to the format, by the definition: the quantum 2^(e - mantissaBits) of
    /// x's binade (never below the subnormal quantum), x / quantum rounded half-to-even (exact in float64), and
    /// infinity when the rounded value exceeds the largest finite one.
    /// </summary>
    private static float Reference(float value, Format format)
    {
        if (float.IsNaN(value) || float.IsInfinity(value) || value == 0) return value;
        double magnitude = Math.Abs((double)value);
        int exponent = Math.Max(Math.ILogB(magnitude), format.MinExponent);
        double quantum = Math.ScaleB(1.0, exponent - format.MantissaBits);
        double rounded = Math.Round(magnitude / quantum, MidpointRounding.ToEven) * quantum;
        if (rounded > format.MaxFinite) rounded = double.PositiveInfinity;
        return (float)Math.CopySign(rounded, value);
    }

    /// <summary>Random values of every magnitude, exact ties of both formats, and the special values.</summary>
    private static float[] Values(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            uint bits = (uint)random.NextInt64(0, 1L << 32);
            values[i] = (i % 9) switch
            {
                0 => BitConverter.UInt32BitsToSingle((bits & 0xFFFF0000u) | 0x8000u),                     // a bf16 tie
                1 => BitConverter.UInt32BitsToSingle((bits & 0xC7FFE000u) | 0x1000u),                     // an fp16 tie
                2 => (2 * random.Next(1024) + 1) * MathF.Pow(2, -25) * (random.Next(2) == 0 ? 1 : -1),    // an fp16 subnormal tie
                3 => (float)(random.NextDouble() * 70000 - 35000) * 2,                                   // around fp16 overflow
                4 => (float)(random.NextDouble() * Math.Pow(2, -13)),                                    // fp16 subnormals
                5 => BitConverter.UInt32BitsToSingle(bits & 0x807FFFFFu),                                // float32 subnormals
                _ => BitConverter.UInt32BitsToSingle(bits),                                              // anything, NaNs included
            };
        }
        float[] specials = [0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, -float.NaN,
            BitConverter.UInt32BitsToSingle(0x7F812345u), 65504f, 65519.99f, 65520f, -65520f, float.MaxValue, -float.MaxValue,
            MathF.Pow(2, -24), MathF.Pow(2, -25), 1.5f * MathF.Pow(2, -25), MathF.Pow(2, -14), float.Epsilon, 1f, 1.00390625f];
        for (int i = 0; i < Math.Min(count, specials.Length); i++) values[(i * 7) % count] = specials[i];
        return values;
    }

    private static float[] Round(Backend backend, float[] values, ComputePrecision precision, bool inPlace)
    {
        using var input = backend.Allocate(values.Length);
        using var output = backend.Allocate(values.Length);
        backend.Upload<float>(input, values);
        backend.RoundToPrecision(inPlace ? input : output, input, precision);
        var result = new float[values.Length];
        backend.Download<float>(result, inPlace ? input : output);
        return result;
    }

    [Theory]
    [InlineData(ComputePrecision.Bf16)]
    [InlineData(ComputePrecision.Fp16)]
    public void EveryLengthMatchesTheScalarReference(ComputePrecision precision)
    {
        using var backend = new CpuBackend(2);
        for (int length = 0; length <= 300; length++)
        {
            var values = Values(length, length);
            var result = Round(backend, values, precision, inPlace: length % 2 == 1);
            for (int i = 0; i < length; i++)
            {
                float expected = Reference(values[i], Of(precision));
                if (float.IsNaN(values[i]))
                {
                    Assert.True(float.IsNaN(result[i]), $"length {length}, element {i}: NaN became {result[i]}");
                    Assert.Equal(float.IsNegative(values[i]), float.IsNegative(result[i]));
                    // A quiet NaN keeping the payload bits the format has.
                    uint kept = precision == ComputePrecision.Bf16 ? 0xFFFF0000u : 0xFFFFE000u;
                    Assert.Equal((BitConverter.SingleToUInt32Bits(values[i]) & kept) | 0x00400000u, BitConverter.SingleToUInt32Bits(result[i]));
                }
                else
                    Assert.True(BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(result[i]),
                        $"length {length}, element {i}: {values[i]:R} (0x{BitConverter.SingleToUInt32Bits(values[i]):X8}) rounded to {result[i]:R}, expected {expected:R}");
            }
        }
    }

    [Fact]
    public void HalfRoundingAgreesWithSystemHalf()
    {
        using var backend = new CpuBackend(1);
        var values = Values(5000, 42);
        var result = Round(backend, values, ComputePrecision.Fp16, inPlace: false);
        for (int i = 0; i < values.Length; i++)
            Assert.Equal(BitConverter.SingleToUInt32Bits((float)(Half)values[i]), BitConverter.SingleToUInt32Bits(result[i]));
    }

    [Fact]
    public void KnownValuesRoundAsTheFormatsDefine()
    {
        using var backend = new CpuBackend(1);
        // bf16: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 and goes to the even 1; 1 + 3 * 2^-8 goes up to 1 + 2^-6.
        Assert.Equal([1f, 1.015625f, float.PositiveInfinity, -3f],
            Round(backend, [1.00390625f, 1.01171875f, float.MaxValue, -3f], ComputePrecision.Bf16, false));
        // fp16: 65519.99 stays finite, 65520 overflows, 2^-25 is a tie that goes to 0, 1.5 * 2^-25 goes to 2^-24.
        Assert.Equal([65504f, float.PositiveInfinity, 0f, MathF.Pow(2, -24), 0.333251953125f],
            Round(backend, [65519.99f, 65520f, MathF.Pow(2, -25), 1.5f * MathF.Pow(2, -25), 1f / 3], ComputePrecision.Fp16, false));
        Assert.Equal([1f / 3], Round(backend, [1f / 3], ComputePrecision.Fp32, false));
    }

    [Fact]
    public void BadOperandsAreNamed()
    {
        using var backend = new CpuBackend(1);
        using var a = backend.Allocate(4);
        using var b = backend.Allocate(5);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => backend.RoundToPrecision(b, a, ComputePrecision.Bf16)).ParamName);
        Assert.Equal("precision", Assert.Throws<ArgumentException>(() => backend.RoundToPrecision(a, a, (ComputePrecision)7)).ParamName);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => backend.RoundToPrecision(a.Slice(1, 3), a.Slice(0, 3), ComputePrecision.Fp16)).ParamName);
    }

    [Fact]
    public void WarmCallAllocatesNothing()
    {
        using var backend = new CpuBackend(1);
        using var tensor = backend.Allocate(1000);
        Allocations.AssertWarmCallAllocatesNothing(() => backend.RoundToPrecision(tensor, tensor, ComputePrecision.Fp16));
    }
}
