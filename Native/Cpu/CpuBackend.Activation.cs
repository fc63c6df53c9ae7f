using System.Runtime.CompilerServices;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <inheritdoc/>
    protected override unsafe void ActivationCore(Tensor output, Tensor input, ActivationFunction function)
    {
        float* y = Floats(output), x = Floats(input);
        long n = input.ElementCount;
        switch (function.Kind)
        {
            case ActivationKind.Relu: ElementWise.Map(_pool, y, x, n, new Relu()); break;
            case ActivationKind.GeluErf: ElementWise.Map(_pool, y, x, n, new Wide<GeluErf>()); break;
            case ActivationKind.GeluTanh: ElementWise.Map(_pool, y, x, n, new Wide<GeluTanh>()); break;
            case ActivationKind.ScaledLeakyRelu: ElementWise.Map(_pool, y, x, n, new ScaledLeakyRelu(function.NegativeSlope)); break;
        }
    }

    /// <inheritdoc/>
    protected override unsafe void ActivationBackwardCore(Tensor gradInput, Tensor gradOutput, Tensor input, ActivationFunction function)
    {
        float* gx = Floats(gradInput), gy = Floats(gradOutput), x = Floats(input);
        long n = input.ElementCount;
        switch (function.Kind)
        {
            case ActivationKind.Relu: ElementWise.Accumulate(_pool, gx, x, gy, n, new ReluGradient()); break;
            case ActivationKind.GeluErf: ElementWise.Accumulate(_pool, gx, x, gy, n, new WideGradient<GeluErf>()); break;
            case ActivationKind.GeluTanh: ElementWise.Accumulate(_pool, gx, x, gy, n, new WideGradient<GeluTanh>()); break;
            case ActivationKind.ScaledLeakyRelu: ElementWise.Accumulate(_pool, gx, x, gy, n, new ScaledLeakyReluGradient(function.NegativeSlope)); break;
        }
    }

    /// <summary>max(x, 0); NaN stays NaN.</summary>
    private readonly struct Relu : IUnaryOperator
    {
        public TFloat Invoke<TWidth, TFloat, TDouble>(TFloat x) where TWidth : IWidth<TFloat, TDouble> =>
            TWidth.Max(x, TWidth.Broadcast(0f));
    }

    /// <summary>g where x &gt; 0, else 0 (the derivative at the kink is taken as 0, as PyTorch does).</summary>
    private readonly struct ReluGradient : IBinaryOperator
    {
        public TFloat Invoke<TWidth, TFloat, TDouble>(TFloat x, TFloat g) where TWidth : IWidth<TFloat, TDouble> =>
            TWidth.And(TWidth.GreaterThan(x, TWidth.Broadcast(0f)), g);
    }

    /// <summary>
    /// TAT's sqrt(2/(1+a^2)) * leaky_relu(x, a) as two slopes, s for x &gt;= 0 and s*a below, each formed in
    /// float64 and rounded once so the forward is one rounding of an exact product away from the real value.
    /// </summary>
    private readonly struct ScaledLeakyRelu(float negativeSlope) : IUnaryOperator
    {
        private readonly float _positive = (float)Gain(negativeSlope), _negative = (float)(Gain(negativeSlope) * negativeSlope);

        public TFloat Invoke<TWidth, TFloat, TDouble>(TFloat x) where TWidth : IWidth<TFloat, TDouble> =>
            TWidth.Multiply(x, TWidth.Select(TWidth.GreaterThanOrEqual(x, TWidth.Broadcast(0f)), TWidth.Broadcast(_positive), TWidth.Broadcast(_negative)));

        /// <summary>sqrt(2 / (1 + a^2)): the output scale giving Q(1) = 1 (spa-theory.md section 3).</summary>
        public static double Gain(double a) => Math.Sqrt(2.0 / (1.0 + a * a));
    }

    /// <summary>g * s where x &gt; 0, g * s * a elsewhere (the kink takes the negative slope, as PyTorch's leaky ReLU does).</summary>
    private readonly struct ScaledLeakyReluGradient(float negativeSlope) : IBinaryOperator
    {
        private readonly float _positive = (float)ScaledLeakyRelu.Gain(negativeSlope), _negative = (float)(ScaledLeakyRelu.Gain(negativeSlope) * negativeSlope);

        public TFloat Invoke<TWidth, TFloat, TDouble>(TFloat x, TFloat g) where TWidth : IWidth<TFloat, TDouble> =>
            TWidth.Multiply(g, TWidth.Select(TWidth.GreaterThan(x, TWidth.Broadcast(0f)), TWidth.Broadcast(_positive), TWidth.Broadcast(_negative)));
    }

    /// <summary>A scalar function and its derivative on float64 lanes: the GeLUs, which need float64 to stay accurate in their tails.</summary>
    private interface IWideFunction
    {
        static abstract TDouble Value<TWidth, TFloat, TDouble>(TDouble x) where TWidth : IWidth<TFloat, TDouble>;
        static abstract TDouble Derivative<TWidth, TFloat, TDouble>(TDouble x) where TWidth : IWidth<TFloat, TDouble>;
    }

    /// <summary>f(x) computed in float64 and rounded once to float32.</summary>
    private readonly struct Wide<TFunction> : IUnaryOperator where TFunction : IWideFunction
    {
        public TFloat Invoke<TWidth, TFloat, TDouble>(TFloat x) where TWidth : IWidth<TFloat, TDouble>
        {
            var (lo, hi) = TWidth.Widen(x);
            return TWidth.Narrow(TFunction.Value<TWidth, TFloat, TDouble>(lo), TFunction.Value<TWidth, TFloat, TDouble>(hi));
        }
    }

    /// <summary>g * f'(x) computed in float64 and rounded once to float32.</summary>
    private readonly struct WideGradient<TFunction> : IBinaryOperator where TFunction : IWideFunction
    {
        public TFloat Invoke<TWidth, TFloat, TDouble>(TFloat x, TFloat g) where TWidth : IWidth<TFloat, TDouble>
        {
            var (xlo, xhi) = TWidth.Widen(x);
            var (glo, ghi) = TWidth.Widen(g);
            return TWidth.Narrow(TWidth.Multiply(glo, TFunction.Derivative<TWidth, TFloat, TDouble>(xlo)), TWidth.Multiply(ghi, TFunction.Derivative<TWidth, TFloat, TDouble>(xhi)));
        }
    }

    /// <summary>
    /// The exact GeLU x * Phi(x), derivative Phi(x) + x * phi(x). Phi comes from erfc by the Chebyshev fit of
    /// Numerical Recipes (Press et al., 2nd ed., section 6.2, <c>erfcc</c>): erfc(z) = t exp(-z^2 + P(t)),
    /// t = 1 / (1 + z/2), with fractional error below 1.2e-7 for every z &gt;= 0 (measured: 1.05e-7 against a series /
    /// continued-fraction float64 erfc). It is applied to |x| only, as Phi(-|x|) = erfc(|x|/sqrt 2) / 2, so the
    /// lower tail keeps that relative accuracy instead of losing it to 1 + erf(x) cancelling; Phi(|x|) =
    /// 1 - Phi(-|x|) is then within 6e-8 of 1. Evaluated in float64 (x^2 is exact there), GeLU comes out within
    /// 1.3e-7 relative of the true value after rounding to float32 (measured), about 1.1 float32 ulp, on every
    /// normal result.
    /// </summary>
    private readonly struct GeluErf : IWideFunction
    {
        private const double InverseSqrt2 = 0.70710678118654752, InverseSqrt2Pi = 0.39894228040143268;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TDouble Value<TWidth, TFloat, TDouble>(TDouble x) where TWidth : IWidth<TFloat, TDouble> =>
            TWidth.Multiply(x, Cdf<TWidth, TFloat, TDouble>(x));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TDouble Derivative<TWidth, TFloat, TDouble>(TDouble x) where TWidth : IWidth<TFloat, TDouble>
        {
            // phi(x) = exp(-x^2/2) / sqrt(2 pi).
            var pdf = TWidth.Multiply(TWidth.Broadcast(InverseSqrt2Pi), TWidth.Exp(TWidth.Multiply(TWidth.Multiply(TWidth.Broadcast(-0.5), x), x)));
            return TWidth.Fma(x, pdf, Cdf<TWidth, TFloat, TDouble>(x));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static TDouble Cdf<TWidth, TFloat, TDouble>(TDouble x) where TWidth : IWidth<TFloat, TDouble>
        {
            var one = TWidth.Broadcast(1.0);
            var a = TWidth.Abs(x);
            var t = TWidth.Divide(one, TWidth.Fma(a, TWidth.Broadcast(0.5 * InverseSqrt2), one));
            var p = TWidth.Broadcast(0.17087277);
            p = TWidth.Fma(p, t, TWidth.Broadcast(-0.82215223));
            p = TWidth.Fma(p, t, TWidth.Broadcast(1.48851587));
            p = TWidth.Fma(p, t, TWidth.Broadcast(-1.13520398));
            p = TWidth.Fma(p, t, TWidth.Broadcast(0.27886807));
            p = TWidth.Fma(p, t, TWidth.Broadcast(-0.18628806));
            p = TWidth.Fma(p, t, TWidth.Broadcast(0.09678418));
            p = TWidth.Fma(p, t, TWidth.Broadcast(0.37409196));
            p = TWidth.Fma(p, t, TWidth.Broadcast(1.00002368));
            p = TWidth.Fma(p, t, TWidth.Broadcast(-1.26551223));
            // Phi(-|x|) = erfc(|x| / sqrt 2) / 2, with z^2 = x^2 / 2.
            var lower = TWidth.Multiply(TWidth.Multiply(TWidth.Broadcast(0.5), t), TWidth.Exp(TWidth.Fma(TWidth.Multiply(TWidth.Broadcast(-0.5), a), a, p)));
            return TWidth.Select(TWidth.GreaterThanOrEqual(x, TWidth.Broadcast(0.0)), TWidth.Subtract(one, lower), lower);
        }
    }

    /// <summary>
    /// GPT-2's 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), evaluated as x * sigmoid(2u) (the same
    /// function: 1 + tanh(u) = 2 sigmoid(2u)). Unlike the tanh form in float32 this keeps full relative precision
    /// for negative x, where 1 + tanh(u) cancels.
    /// </summary>
    private readonly struct GeluTanh : IWideFunction
    {
        // 2 sqrt(2/pi) and 2 sqrt(2/pi) * 0.044715: 2u = x * (A + B x^2).
        private const double A = 1.5957691216057308, B = A * 0.044715;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TDouble Value<TWidth, TFloat, TDouble>(TDouble x) where TWidth : IWidth<TFloat, TDouble> =>
            TWidth.Multiply(x, Sigmoid<TWidth, TFloat, TDouble>(x));

        /// <summary>
        /// d/dx [x sigmoid(2u)] = s + x (2u)' s (1 - s). In float64 the cancellation in 1 - s costs at most 1e-16
        /// absolute, far below the float32 result, and unlike exp(-2u) s^2 it cannot form infinity * 0.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TDouble Derivative<TWidth, TFloat, TDouble>(TDouble x) where TWidth : IWidth<TFloat, TDouble>
        {
            var s = Sigmoid<TWidth, TFloat, TDouble>(x);
            var slope = TWidth.Fma(TWidth.Broadcast(3 * B), TWidth.Multiply(x, x), TWidth.Broadcast(A));
            return TWidth.Fma(TWidth.Multiply(x, slope), TWidth.Multiply(s, TWidth.Subtract(TWidth.Broadcast(1.0), s)), s);
        }

        /// <summary>sigmoid(2u) = 1 / (1 + exp(-2u)); exp overflowing to infinity gives exactly 0.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static TDouble Sigmoid<TWidth, TFloat, TDouble>(TDouble x) where TWidth : IWidth<TFloat, TDouble>
        {
            var one = TWidth.Broadcast(1.0);
            var minusTwoU = TWidth.Multiply(TWidth.Subtract(TWidth.Broadcast(0.0), x), TWidth.Fma(TWidth.Broadcast(B), TWidth.Multiply(x, x), TWidth.Broadcast(A)));
            return TWidth.Divide(one, TWidth.Add(one, TWidth.Exp(minusTwoU)));
        }
    }
}
