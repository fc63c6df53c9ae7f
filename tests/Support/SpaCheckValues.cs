namespace DeepScaleLM.Tests.Support;

/// <summary>The published E-SPA test vectors of spa-theory.md 2.4 (T = 6, L = 4, gamma_L = 0.005), shared by the
/// Theory tests (the builder) and the attention-op tests (the op reproduces A_1 from B_1 and D_1).</summary>
internal static class SpaCheckValues
{
    /// <summary>A_1, lower triangle, row by row (5 decimals, as printed).</summary>
    public static readonly double[][] A1Rows =
    [
        [1.00000],
        [0.82714, 0.56199],
        [0.68417, 0.46485, 0.56199],
        [0.56590, 0.38450, 0.46485, 0.56199],
        [0.46808, 0.31803, 0.38450, 0.46485, 0.56199],
        [0.38717, 0.26306, 0.31803, 0.38450, 0.46485, 0.56199],
    ];

    /// <summary>D_1: the row sums of A_1 (6 decimals, as printed).</summary>
    public static readonly double[] D1 = [1, 1.389134, 1.711004, 1.977237, 2.197449, 2.379597];
}
