namespace DeepScaleLM.Theory.Components;

/// <summary>
/// The kernel of the TAT-scaled leaky ReLU output_scale * leaky_relu(x, a) (spa-theory.md 3, dks
/// `activation_transform.py`): its local C-map (how the normalised correlation of two unit-variance inputs maps
/// through it) and the output scale that keeps Q(1) = 1.
/// </summary>
public static class LeakyReluKernel
{
    /// <summary>
    /// C(c) = [(1 - a)^2 (sqrt(1 - c^2) + (pi - arccos c) c) / pi + 2 a c] / (1 + a^2), dks `_leaky_relu_cmap`
    /// (spa-theory.md 3). C(1) = 1; for ReLU (a = 0) C(0) = 1/pi.
    /// </summary>
    /// <param name="correlation">c, the normalised correlation E[x y] of two unit-variance inputs.</param>
    /// <param name="negativeSlope">a, the slope for x &lt; 0.</param>
    public static double CorrelationMap(double correlation, double negativeSlope)
    {
        double c = Assumptions.ClampCorrelation(correlation), a = negativeSlope;
        return ((1 - a) * (1 - a) * (Math.Sqrt(1 - c * c) + (Math.PI - Math.Acos(c)) * c) / Math.PI + 2 * a * c) / (1 + a * a);
    }

    /// <summary>
    /// sqrt(2 / (1 + a^2)), "the value required to achieve Q(1) = 1 for Leaky ReLUs" (spa-theory.md 3): a
    /// unit-variance input keeps a unit second moment.
    /// </summary>
    /// <param name="negativeSlope">a, the slope for x &lt; 0.</param>
    public static double OutputScale(double negativeSlope) => Math.Sqrt(2 / (1 + negativeSlope * negativeSlope));
}
