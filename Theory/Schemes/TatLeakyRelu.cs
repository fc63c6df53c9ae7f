using DeepScaleLM.Theory.Components;

namespace DeepScaleLM.Theory.Schemes;

/// <summary>
/// The TAT-shaped leaky ReLU output_scale * leaky_relu(x, a) for a plain chain of n activations (spa-theory.md 3, dks
/// `activation_transform.py`): the negative slope a is the one at which the chain's C-map at 0, C_f(0), equals the
/// target eta, found by the dks bisection.
/// </summary>
/// <param name="NegativeSlope">a, the slope for x &lt; 0.</param>
/// <param name="OutputScale">sqrt(2 / (1 + a^2)), which keeps Q(1) = 1.</param>
public sealed record TatLeakyRelu(double NegativeSlope, double OutputScale)
{
    /// <summary>eta = 0.9, dks's default `c_val_0_target` (spa-theory.md 3).</summary>
    public const double DefaultTarget = 0.9;

    /// <summary>
    /// C_f(0) for a chain of n activations: the C-map applied n times to 0, which is dks's `subnet_max_func` for a
    /// plain chain (the whole chain is the maximising subnetwork, since C(c) &gt;= c; spa-theory.md 3).
    /// </summary>
    /// <param name="chainLength">n, the number of activations in the chain.</param>
    /// <param name="negativeSlope">a.</param>
    public static double ChainZeroCorrelation(int chainLength, double negativeSlope)
    {
        double c = 0;
        for (int i = 0; i < chainLength; i++) c = LeakyReluKernel.CorrelationMap(c, negativeSlope);
        return c;
    }

    /// <summary>
    /// The slope for C_f(0) = eta, by dks's `_solve_increasing` on 1 - C_f(0)(a) (increasing in a) with target 1 - eta,
    /// start 0.5, bracket [0, 1], tolerance 1e-8, at most 100 evaluations (spa-theory.md 3).
    /// </summary>
    /// <param name="chainLength">n, the number of activations in the chain.</param>
    /// <param name="target">eta, the target C_f(0).</param>
    /// <exception cref="ArgumentException">No slope reaches eta: even ReLU (a = 0) leaves C_f(0) below it, as for
    /// chains of 12 or fewer activations at eta = 0.9 (spa-theory.md 3.1).</exception>
    public static TatLeakyRelu Solve(int chainLength, double target = DefaultTarget)
    {
        const double Tolerance = 1e-8;
        const int MaxEvaluations = 100;
        double low = 0, high = 1, slope = 0.5, goal = 1 - target;
        for (int evaluation = 0; evaluation < MaxEvaluations; evaluation++)
        {
            double value = 1 - ChainZeroCorrelation(chainLength, slope);
            if (Math.Abs(value - goal) < Tolerance)
                return new TatLeakyRelu(slope, LeakyReluKernel.OutputScale(slope));
            if (value > goal)
            {
                high = slope;
                slope = 0.5 * (slope + low);
            }
            else if (value < goal)
            {
                low = slope;
                slope = 0.5 * (slope + high);
            }
        }
        throw new ArgumentException(
            $"No leaky-ReLU slope gives C_f(0) = {target:R} for a chain of {chainLength} activations (even a = 0 gives " +
            $"{ChainZeroCorrelation(chainLength, 0):F6}): a Leaky-ReLU MLP of only a few layers may not be able to achieve " +
            $"the C(0) target of {target:R} (spa-theory.md 3).", nameof(chainLength));
    }
}
