using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace DeepScaleLM.Native.Cpu;

/// <summary>Float32 transcendental functions on vectors, where the runtime's own are not accurate enough.</summary>
internal static class VectorMath
{
    // ln(x) of the largest float, and of the smallest normal float.
    private const float Highest = 88.7228390f, Lowest = -87.3365448f;

    /// <summary>
    /// e^x by Cephes' expf: x = n ln 2 + r with |r| &lt;= ln2 / 2 (ln 2 split in two for an exact reduction), a
    /// degree-7 polynomial for e^r, and 2^n put into the exponent. Measured within 1.01 ulp of e^x over the whole
    /// normal range and exact at 0 (Vector512.Exp is 1.8 ulp off and gives e^0 = 1 + 2^-23, enough to put a 12%
    /// error on a softmax loss of 1e-6). Results below the normal range flush to 0, above it become infinity.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var n = Vector512.Round(x * Vector512.Create(1.44269504088896341f));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693359375f), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(2.12194440e-4f), r);
        var p = Vector512.Create(1.9875691500e-4f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.3981999507e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(8.3334519073e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(4.1665795894e-2f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.6666665459e-1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(5.0000001201e-1f));
        p = Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        // Inside the range n lies in [-126, 128], and 2^128 is not a float: scale by 2^(n/2) and 2^(n - n/2),
        // both normal, each multiplication exact.
        var k = Vector512.ConvertToInt32(n);
        var half = Vector512.ShiftRightArithmetic(k, 1);
        var result = p * Power(half) * Power(k - half);
        result = Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512.Create(Highest)), Vector512.Create(float.PositiveInfinity), result);
        return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(Lowest)), Vector512<float>.Zero, result);
    }

    /// <summary>2^k for k in [-126, 127], built in the exponent field.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Power(Vector512<int> k) => ((k + Vector512.Create(127)) << 23).AsSingle();
}
