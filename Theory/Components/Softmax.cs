using System.Numerics.Tensors;

namespace DeepScaleLM.Theory.Components;

/// <summary>Moments of softmax weights over i.i.d. Gaussian logits (<see cref="Softmax.WeightMoments"/>).</summary>
/// <param name="SquareSum">E[sum_j p_j^2].</param>
/// <param name="TiltedMeanSquare">E[(sum_j p_j z_j)^2], z_j the standardised logits.</param>
/// <param name="TiltedSquareSum">E[sum_j p_j^2 z_j^2].</param>
/// <param name="CubeSum">E[sum_j p_j^3].</param>
/// <param name="SquareSumSquared">E[(sum_j p_j^2)^2].</param>
/// <param name="FourthPowerSum">E[sum_j p_j^4].</param>
public readonly record struct SoftmaxWeightMoments(double SquareSum, double TiltedMeanSquare, double TiltedSquareSum, double CubeSum,
    double SquareSumSquared, double FourthPowerSum)
{
    /// <summary>
    /// E[sum_j p_j^2 (1 - 2 p_j + sum_k p_k^2)]: the square norm of the softmax Jacobian applied to independent unit
    /// inputs, sum_j p_j^2 (x_j - sum_k p_k x_k)^2 in expectation; 0 for one key, whose weight cannot move.
    /// </summary>
    public double JacobianSquareSum => SquareSum - 2 * CubeSum + SquareSumSquared;

    /// <summary>
    /// E[sum_{j != l} p_j p_l (1 - p_j - p_l + 2 p_j p_l)] = 1 - 3 E[sum p^2] + 2 E[sum p^3] + 2 E[(sum p^2)^2] - 2 E[sum p^4]:
    /// how the random overlaps x_j . x_l of independent d-dimensional keys (variance 1/d each) reach the logit
    /// gradient's image in Q; 0 for one key, ~1 for many.
    /// </summary>
    public double PairOverlapSum => 1 - 3 * SquareSum + 2 * CubeSum + 2 * SquareSumSquared - 2 * FourthPowerSum;
}

/// <summary>Which of the official softmax variance formulas to use (dslm-theory.md 2.6).</summary>
public enum SoftmaxApproximation
{
    /// <summary>"V1": variance (exp((1 - r) s2) - 1) / L^2.</summary>
    Approximate,

    /// <summary>"V2": the full form with e = exp((1 - r) s2 L / (L - 1)).</summary>
    Full,
}

/// <summary>
/// Softmax over a length-L vector whose entries have mean 0, variance s2 and pairwise correlation r, e.g. one row of
/// attention logits (dslm-theory.md 2.6, `softmax.py`). Checked by the authors for s &lt;= 1; V2 and both backward
/// forms run 5-7% high at s = 1, r = 0, L = 300. The incoming gradient is taken i.i.d. across entries, as the official
/// simulation draws it.
/// </summary>
public static class Softmax
{
    /// <summary>Every output has mean 1/L: the L outputs sum to 1 and are exchangeable (dslm-theory.md 2.6).</summary>
    /// <param name="length">L, the number of entries.</param>
    public static double OutputMean(int length) => 1.0 / length;

    /// <summary>
    /// The output variance: V1 (exp((1 - r) s2) - 1) / L^2, or V2 (e - 1) e^2 / ((L - 1) exp((1 - r) s2) + 1)^2 with
    /// e = exp((1 - r) s2 L / (L - 1)) (dslm-theory.md 2.6).
    /// </summary>
    /// <param name="logits">Moments of the entries; the mean must be 0.</param>
    /// <param name="length">L, the number of entries.</param>
    /// <param name="approximation">Which official formula.</param>
    /// <exception cref="ArgumentException">The mean of the entries is not 0.</exception>
    public static double OutputVariance(SignalMoments logits, int length, SoftmaxApproximation approximation)
    {
        Assumptions.RequireZeroMean(logits, "Softmax (dslm-theory.md 2.6)");
        double spread = (1 - logits.Correlation) * logits.Variance, l = length;
        if (approximation == SoftmaxApproximation.Approximate)
            return (Math.Exp(spread) - 1) / (l * l);
        double e = Math.Exp(spread * l / (l - 1));
        double denominator = (l - 1) * Math.Exp(spread) + 1;
        return (e - 1) * e * e / (denominator * denominator);
    }

    /// <summary>
    /// Moments of the softmax p of <paramref name="keys"/> i.i.d. logits s_j = sigma z_j, z_j ~ N(0, 1), sigma^2 = s2: the
    /// square sum E[sum_j p_j^2] (how much of the values' independent part survives the attention average), the tilted
    /// mean square E[(sum_j p_j z_j)^2] and the tilted square sum E[sum_j p_j^2 z_j^2] (for the part of a value that lies
    /// along the logits' own direction, averaged with weights that favour it), and E[sum_j p_j^3], E[(sum_j p_j^2)^2],
    /// E[sum_j p_j^4] (for the gradient through the logits). Not in the reference: 2.7 uses the
    /// many-key limits exp(s2) / L and s2, which at L = 1 say e and s2 where the truth is 1 (one key takes weight 1); a
    /// causal query at position t sees only t + 1 keys. Exact up to quadrature via 1/a^2 = int_0^inf u exp(-u a) du:
    /// with X = exp(s) and S the sum over the keys, E[X_1^2 / S^2] = int_0^inf u E[X^2 exp(-u X)] E[exp(-u X)]^(L-1) du,
    /// and likewise with z X or z^2 X^2 in the numerator (and u^2/2, u^3/6 for the third and fourth powers of S); each
    /// expectation is a Gaussian integral over z. All are
    /// trapezoid sums (step 0.4 in z on [-9, 9 + 2 sigma], and in ln u over the integrand's support), which converge
    /// geometrically for these analytic integrands: within 1e-7 relative of a fine-grid reference (step 0.25 reaches
    /// 1e-13 at 2.5x the cost in each of the two dimensions).
    /// </summary>
    /// <param name="keys">L &gt;= 1, the number of keys; fractional values interpolate (1 / sum of squared mean weights
    /// for non-uniform attention).</param>
    /// <param name="logitVariance">s2 &gt;= 0, the variance of the logits' independent part.</param>
    /// <exception cref="ArgumentOutOfRangeException">L &lt; 1 or s2 &lt; 0 (or either not finite).</exception>
    public static SoftmaxWeightMoments WeightMoments(double keys, double logitVariance)
    {
        if (!(keys >= 1) || double.IsInfinity(keys)) throw new ArgumentOutOfRangeException(nameof(keys), keys, "need at least one key");
        if (!(logitVariance >= 0) || double.IsInfinity(logitVariance))
            throw new ArgumentOutOfRangeException(nameof(logitVariance), logitVariance, "need a finite non-negative logit variance");
        if (keys == 1) return new SoftmaxWeightMoments(1, 1, 1, 1, 1, 1);
        if (logitVariance == 0)
            return new SoftmaxWeightMoments(1 / keys, 1 / keys, 1 / keys, 1 / (keys * keys), 1 / (keys * keys), 1 / (keys * keys * keys));
        const double Step = 0.4;
        double sigma = Math.Sqrt(logitVariance);
        int points = (int)Math.Ceiling((18 + 2 * sigma) / Step) + 1;
        // Per node z: X = exp(sigma z) and the Gaussian weight times each power of X (and z) the sums need.
        var value = new double[points];
        var weights = new double[6][]; // X^0, X^2, X^3, X^4, X^2 z^2, X z
        for (int k = 0; k < weights.Length; k++) weights[k] = new double[points];
        for (int i = 0; i < points; i++)
        {
            double z = -9 + i * Step, x = value[i] = Math.Exp(sigma * z), w = Math.Exp(-z * z / 2) / Math.Sqrt(2 * Math.PI) * Step;
            (weights[0][i], weights[1][i], weights[2][i], weights[3][i], weights[4][i], weights[5][i]) =
                (w, w * x * x, w * x * x * x, w * x * x * x * x, w * x * x * z * z, w * x * z);
        }
        var decay = new double[points];
        // ln u runs around ln(1 / (L E[X])) = -ln L - s2 / 2, where S exp(-u S) peaks.
        double centre = -Math.Log(keys) - logitVariance / 2, squares = 0, tiltedSquares = 0, tiltedCross = 0, cubes = 0, quartics = 0, fourths = 0;
        for (double y = centre - 16; y <= centre + 8 + 8 * sigma; y += Step)
        {
            double u = Math.Exp(y);
            TensorPrimitives.Multiply(value, -u, decay);
            TensorPrimitives.Exp(decay, decay); // exp(-u X) at every node
            double laplace = TensorPrimitives.Dot(decay, weights[0]);
            if (laplace <= 0) continue;
            double second = TensorPrimitives.Dot(decay, weights[1]), third = TensorPrimitives.Dot(decay, weights[2]);
            double fourth = TensorPrimitives.Dot(decay, weights[3]), tiltedSecond = TensorPrimitives.Dot(decay, weights[4]);
            double tiltedFirst = TensorPrimitives.Dot(decay, weights[5]);
            double rest = Math.Exp((keys - 2) * Math.Log(laplace)), measure = u * u; // du = u d(ln u)
            squares += measure * second * rest * laplace;
            tiltedSquares += measure * tiltedSecond * rest * laplace;
            tiltedCross += measure * tiltedFirst * tiltedFirst * rest;
            // 1/a^3 = int u^2/2 exp(-u a) du and 1/a^4 = int u^3/6 exp(-u a) du, again with du = u d(ln u).
            cubes += u * u * u / 2 * third * rest * laplace;
            fourths += u * u * u * u / 6 * fourth * rest * laplace;
            quartics += u * u * u * u / 6 * keys * (keys - 1) * second * second * rest;
        }
        double tiltedSquareSum = keys * Step * tiltedSquares;
        return new SoftmaxWeightMoments(keys * Step * squares, tiltedSquareSum + keys * (keys - 1) * Step * tiltedCross, tiltedSquareSum,
            keys * Step * cubes, keys * Step * fourths + Step * quartics, keys * Step * fourths);
    }

    /// <summary>
    /// The variance of the gradient at the logits: V1 exp((1 - r) s2) g2 / L^2 and V2 g2 (V2 output variance + 1 / L^2)
    /// (dslm-theory.md 2.6). V1's form is g2 (V1 output variance + 1 / L^2) too, so both share one expression.
    /// </summary>
    /// <param name="logits">Moments of the entries; the mean must be 0.</param>
    /// <param name="length">L, the number of entries.</param>
    /// <param name="outputGradientVariance">g2, the variance of the i.i.d. gradient at the softmax output.</param>
    /// <param name="approximation">Which official formula.</param>
    /// <exception cref="ArgumentException">The mean of the entries is not 0.</exception>
    public static double GradientVariance(SignalMoments logits, int length, double outputGradientVariance, SoftmaxApproximation approximation)
    {
        double l = length;
        return outputGradientVariance * (OutputVariance(logits, length, approximation) + 1 / (l * l));
    }
}
