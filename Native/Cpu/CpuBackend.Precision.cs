using System.Numerics;
using System.Runtime.CompilerServices;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override unsafe void RoundToPrecisionCore(Tensor output, Tensor input, ComputePrecision precision)
    {
        float* y = Floats(output), x = Floats(input);
        switch (precision)
        {
            case ComputePrecision.Fp32:
                if (y != x) CopyCore(output, input);
                break;
            case ComputePrecision.Bf16:
                ElementWise.For(_pool, input.ElementCount, new RoundingKernel<Bfloat16Rounding>(y, x));
                break;
            case ComputePrecision.Fp16:
                ElementWise.For(_pool, input.ElementCount, new RoundingKernel<HalfRounding>(y, x));
                break;
        }
    }

    /// <summary>A rounding to a narrower format on the float32 bit patterns, one <see cref="Vector{T}"/> at a time.</summary>
    private interface IRounding
    {
        static abstract Vector<uint> Round(Vector<uint> bits);
    }

    /// <summary>
    /// Runs an <see cref="IRounding"/> over a chunk. The rounding works on integer lanes, which the float-typed
    /// <see cref="IWidth{TFloat, TDouble}"/> does not offer, so it uses <see cref="Vector{T}"/> (the JIT's preferred
    /// width) whatever width the driver picked; the tail goes through a zero-padded stack vector so every element is
    /// rounded by the same code.
    /// </summary>
    private readonly unsafe struct RoundingKernel<TRounding>(float* output, float* input) : IRangeKernel where TRounding : IRounding
    {
        public void Run<TWidth, TFloat, TDouble>(long start, int length) where TWidth : IWidth<TFloat, TDouble>
        {
            uint* x = (uint*)(input + start), y = (uint*)(output + start);
            int lanes = Vector<uint>.Count, i = 0;
            for (; i <= length - lanes; i += lanes)
                TRounding.Round(Vector.Load(x + i)).Store(y + i);
            if (i == length) return;
            uint* tail = stackalloc uint[lanes];
            new Span<uint>(tail, lanes).Clear();
            new ReadOnlySpan<uint>(x + i, length - i).CopyTo(new Span<uint>(tail, lanes));
            TRounding.Round(Vector.Load(tail)).Store(tail);
            new ReadOnlySpan<uint>(tail, length - i).CopyTo(new Span<uint>(y + i, length - i));
        }
    }

    /// <summary>
    /// bfloat16 keeps float32's upper 16 bits. Round to nearest even by adding 0x7FFF plus the lowest kept bit and
    /// truncating: a carry out of the mantissa bumps the exponent, and past the largest finite value it lands exactly
    /// on infinity's pattern, which is the IEEE overflow result. A NaN is truncated and forced quiet instead (the
    /// addition could carry it into infinity).
    /// </summary>
    private readonly struct Bfloat16Rounding : IRounding
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<uint> Round(Vector<uint> bits)
        {
            var kept = new Vector<uint>(0xFFFF0000u);
            var rounded = (bits + new Vector<uint>(0x7FFFu) + ((bits >>> 16) & Vector<uint>.One)) & kept;
            var nan = (bits & kept) | new Vector<uint>(QuietBit);
            return Vector.ConditionalSelect(IsNaN(bits), nan, rounded);
        }
    }

    /// <summary>
    /// IEEE binary16 seen from float32. Normal range (|x| &gt;= 2^-14): keep 10 of the 23 mantissa bits with the same
    /// add-and-truncate rounding as bfloat16; a result of 2^16 or more (|x| &gt;= 65520) overflows to infinity.
    /// Subnormal range: binary16 spaces values 2^-24 apart there, which is float32's spacing in [0.5, 1), so
    /// (|x| + 0.5) - 0.5 rounds |x| to that grid by the hardware's own round-to-nearest-even, exactly. NaN as for
    /// bfloat16, keeping the 10 payload bits binary16 has.
    /// </summary>
    private readonly struct HalfRounding : IRounding
    {
        private const uint SmallestNormal = 0x38800000u; // 2^-14
        private const uint Overflow = 0x47800000u;       // 2^16: the first rounded value binary16 cannot hold
        private const uint Infinity = 0x7F800000u;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<uint> Round(Vector<uint> bits)
        {
            var sign = bits & new Vector<uint>(0x80000000u);
            var magnitude = bits & new Vector<uint>(0x7FFFFFFFu);
            var kept = new Vector<uint>(0xFFFFE000u);
            var normal = (magnitude + new Vector<uint>(0xFFFu) + ((magnitude >>> 13) & Vector<uint>.One)) & kept;
            normal = Vector.ConditionalSelect(Vector.GreaterThanOrEqual(normal, new Vector<uint>(Overflow)), new Vector<uint>(Infinity), normal);
            var half = new Vector<float>(0.5f);
            var subnormal = Vector.AsVectorUInt32(Vector.AsVectorSingle(magnitude) + half - half);
            var finite = sign | Vector.ConditionalSelect(Vector.LessThan(magnitude, new Vector<uint>(SmallestNormal)), subnormal, normal);
            var nan = (bits & kept) | new Vector<uint>(QuietBit);
            return Vector.ConditionalSelect(IsNaN(bits), nan, finite);
        }
    }

    /// <summary>The float32 quiet-NaN bit (the top mantissa bit).</summary>
    private const uint QuietBit = 0x00400000u;

    /// <summary>All ones in the lanes whose float32 pattern is a NaN (magnitude above infinity's).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<uint> IsNaN(Vector<uint> bits) =>
        Vector.GreaterThan(bits & new Vector<uint>(0x7FFFFFFFu), new Vector<uint>(0x7F800000u));
}
